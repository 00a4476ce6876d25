#!/usr/bin/env bash
# A library in object storage (issue 20), measured beside the same files on
# disk. s3s-fs (crates.io, target/tools; scripts/setup.sh installs it) holds
# COPIES (default 8) copies of the 2-minute 720p muxed asset, put there by
# curl (--aws-sigv4), an independent S3 client. Two headwater processes in
# the default configuration: one on the directory, one on the bucket (chunk
# cache on local disk, default 4 MiB chunks).
#
#   1. First request: every video segment of every copy asked for once,
#      one at a time, from the bucket node (its chunks not cached: ranged
#      GETs to the local S3 server), then all of them again (warm: sent
#      from the chunk files), and from the directory node (page cache warm).
#      Medians and p90 of curl's time_total.
#   2. Throughput, warm: loadtest segments over the same URLs, 64
#      connections, ROUNDS (default 3) alternating rounds of DURATION s
#      (default 10); requests/s and server CPU per request (utime + stime
#      from /proc over each run).
#
#   benches/objects.sh [OUT]     (default target/bench-results/objects)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(realpath -m "${1:-target/bench-results/objects}")
media=$(realpath -m "${MEDIA:-target/bench-media}")
copies=${COPIES:-8}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
mkdir -p "$out"
if [ -z "${NO_SETUP:-}" ]; then
  scripts/setup.sh --bench >/dev/null
  cargo build --release --locked -p headwater -p loadtest
fi
hw=$root/target/release/headwater
lt=$root/target/release/loadtest
s3s=$root/target/tools/bin/s3s-fs
benches/media.sh "$media"

work=$(mktemp -d "${TMPDIR:-/tmp}/hw-objects.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

base=${PORT_BASE:-18380}
s3_port=$base; disk_port=$((base + 1)); bucket_port=$((base + 2))
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$s3_port
mkdir -p "$work/s3/media" "$work/disk" "$work/chunks"
"$s3s" --host 127.0.0.1 --port "$s3_port" --access-key "$AWS_ACCESS_KEY_ID" \
  --secret-key "$AWS_SECRET_ACCESS_KEY" "$work/s3" >"$out/s3s-fs.log" 2>&1 &
pids+=($!); wait_port "$s3_port"
for i in $(seq -w 1 "$copies"); do
  cp "$media/hls720.mp4" "$work/disk/c$i.mp4"
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -T "$media/hls720.mp4" "$AWS_ENDPOINT_URL/media/c$i.mp4" >/dev/null
done
printf '[media]\nobject_cache_dir = "%s"\n' "$work/chunks" >"$work/bucket.toml"
serve() { # PORT ROOT [ARGS...]
  local port=$1 lib=$2; shift 2
  RUST_LOG=warn "$hw" serve --media-root "$lib" --listen "127.0.0.1:$port" \
    --admin-listen off --rtmp-listen off --srt-listen off "$@" >>"$out/headwater.log" 2>&1 &
  pids+=($!); wait_port "$port"
}
serve "$disk_port" "$work/disk"; disk_pid=${pids[-1]}
serve "$bucket_port" s3://media --config "$work/bucket.toml"; bucket_pid=${pids[-1]}

# Every video segment of every copy.
paths=()
for i in $(seq -w 1 "$copies"); do
  while read -r seg; do paths+=("/vod/c$i/hls/$seg"); done < <(
    curl -sf "http://127.0.0.1:$disk_port/vod/c$i/hls/v1.m3u8" | grep -v '^#')
done
times() { # PORT -> one time_total per line
  for p in "${paths[@]}"; do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1$p"; done
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f\n", a[int((NR+1)/2)]*1000, a[int(NR*0.9)]*1000}'; }
read -r cold_med cold_p90 < <(times "$bucket_port" | stats)
read -r warm_med warm_p90 < <(times "$bucket_port" | stats)
read -r disk_med disk_p90 < <(times "$disk_port" | stats)
{
  echo "segments ${#paths[@]} (${copies} copies)"
  echo "first_request bucket_cold median_ms $cold_med p90_ms $cold_p90"
  echo "first_request bucket_warm median_ms $warm_med p90_ms $warm_p90"
  echo "first_request disk median_ms $disk_med p90_ms $disk_p90"
} | tee "$out/first-request.txt"

: >"$out/runs.txt"
for round in $(seq "$rounds"); do
  for who in disk bucket; do
    if [ "$who" = disk ]; then port=$disk_port; pid=$disk_pid; else port=$bucket_port; pid=$bucket_pid; fi
    urls=(); for i in $(seq -w 1 "$copies"); do urls+=("http://127.0.0.1:$port/vod/c$i/hls/master.m3u8"); done
    before=$(cpu_ticks "$pid")
    "$lt" segments "${urls[@]}" --renditions v1 -c 64 -d "${duration}s" --warmup 0s --seed "$round" -q --json >"$out/$who-$round.json" || true
    after=$(cpu_ticks "$pid")
    read -r reqs rps < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["runs"][0]; print(r["requests"], r["requests_per_s"])' "$out/$who-$round.json")
    echo "$who $round $reqs $rps $((after - before))" | tee -a "$out/runs.txt"
  done
done
python3 - "$out/runs.txt" <<'PY' | tee "$out/throughput.txt"
import statistics, sys, os
hz = os.sysconf("SC_CLK_TCK")
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(who, f):
    return statistics.median(f(r) for r in rows if r[0] == who)
for who in ("disk", "bucket"):
    rps = med(who, lambda r: float(r[3]))
    cpu = med(who, lambda r: int(r[4]) / hz * 1000 / max(1, int(r[2])))
    print(f"{who} req/s {rps:.0f} cpu_ms_per_req {cpu:.3f}")
PY
