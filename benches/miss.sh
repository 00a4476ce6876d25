#!/usr/bin/env bash
# The miss workload of issue 19: what a CDN's cache misses cost the origin.
# A library of COPIES (default 24) copies of the 2-minute 720p asset, four
# times the default segment cache, every video segment of every copy asked
# for once per seeded shuffled cycle, so a URL comes back only after ~1 GB
# of others. headwater runs in its default configuration (no tmpfs, no
# tuning; HW_ARGS adds flags to try a variant) against Debian's nginx serving
# `loadtest mirror`'s copy of the same bytes. Both read the page cache (the
# library fits in memory): the misses are the segment cache's.
#
#   benches/miss.sh [OUT]    results in OUT (default target/bench-results/miss):
#                            one line per run in runs.txt, miss.md (the table)
#
# Workloads (WORKLOADS, default "muxed split ts"):
#   muxed  fMP4 video segments of one-file muxed assets (H.264 + AAC
#          interleaved: a 1.5 MB segment is ~100 ranges of its source)
#   split  the same with each copy as video.mp4 + audio.m4a (one range)
#   ts     MPEG-TS segments of the muxed assets (video + audio program)
# Clients (CLIENTS, default "loadtest wrk"): loadtest discards bodies in the
# kernel (recv MSG_TRUNC); wrk copies them to user space, as a CDN edge does.
# Server CPU per request is utime + stime from /proc over each run. Rounds
# alternate headwater and nginx (ROUNDS, default 3; DURATION s, default 10).
#
# LAYOUT (default shared): `shared` runs both servers on every core beside the
# client, as a small box does; `pinned` puts each server on CPU 0 (one worker,
# `--threads 1`) and the client on CPU 1. On loopback the receiver's side of
# TCP (and a copying client's page walks) is partly charged to whichever
# process the softirq interrupts, so only the pinned layout separates the
# server's own CPU from the client's, as a NIC would. MIRROR reuses a mirror
# made by an earlier run of the same build.
#
# LIBRARY=bucket (issue 20) serves the same library from object storage:
# s3s-fs (target/tools, scripts/setup.sh) holding the files the workloads
# read, uploaded with `curl --aws-sigv4` (so s3s-fs stores each object's
# ETag; a file placed in its directory by hand would have its MD5 computed
# on every GET, ~120 ms per request whatever the range), headwater on
# `s3://lib` with its chunk cache on local disk at
# OBJECT_CACHE_MB (default 256: the catalog is four times it, as it is four
# times the segment cache), so segments miss both caches and their chunks
# come from the S3 server by ranged GETs of OBJECT_CHUNK_KB (default 4096,
# the built-in chunk size). nginx still serves the mirror
# from disk: the ratio is what the bucket costs against local files.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(realpath -m "${1:-target/bench-results/miss}")
media=$(realpath -m "${MEDIA:-target/bench-media}")
duration=${DURATION:-10}
rounds=${ROUNDS:-3}
copies=${COPIES:-24}
conns=${CONNECTIONS:-64}
workloads=${WORKLOADS:-muxed split ts}
clients=${CLIENTS:-loadtest wrk}
layout=${LAYOUT:-shared}
read -r -a hw_extra <<<"${HW_ARGS:-}"
case $layout in
  shared) srv=(); cli=(); workers=$(nproc); client_threads=2 ;;
  pinned) srv=(taskset -c 0); cli=(taskset -c 1); workers=1; client_threads=1; hw_extra+=(--threads 1) ;;
  *) echo "LAYOUT is shared or pinned, not $layout" >&2; exit 2 ;;
esac
mkdir -p "$out"

if [ -z "${NO_SETUP:-}" ]; then
  scripts/setup.sh --bench >/dev/null
  cargo build --release --locked -p headwater -p loadtest
fi
hw=$root/target/release/headwater
lt=$root/target/release/loadtest
benches/media.sh "$media"

# The library: muxed copies (mNN.mp4) and split copies (sNN/video.mp4 + audio.m4a,
# a lossless remux of the same streams). Distinct files, so distinct pages.
lib=$media/miss
mkdir -p "$lib"
if [ ! -s "$media/split-audio.m4a" ]; then
  ffmpeg -nostdin -loglevel error -y -i "$media/hls720.mp4" -map 0:v -c copy "$media/split-video.mp4"
  ffmpeg -nostdin -loglevel error -y -i "$media/hls720.mp4" -map 0:a -c copy "$media/split-audio.m4a"
fi
names=()
for i in $(seq -w 1 "$copies"); do
  [ -s "$lib/m$i.mp4" ] || cp "$media/hls720.mp4" "$lib/m$i.mp4"
  mkdir -p "$lib/s$i"
  [ -s "$lib/s$i/video.mp4" ] || cp "$media/split-video.mp4" "$lib/s$i/video.mp4"
  [ -s "$lib/s$i/audio.m4a" ] || cp "$media/split-audio.m4a" "$lib/s$i/audio.m4a"
  names+=("$i")
done

base=${PORT_BASE:-18280}
hw_port=$base; ng_port=$((base + 2)); s3_port=$((base + 3))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

hw_root=$lib
if [ "${LIBRARY:-dir}" = bucket ]; then
  bucket=$out/bucket
  rm -rf "$bucket"; mkdir -p "$bucket/s3/lib" "$bucket/chunks"
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL=http://127.0.0.1:$s3_port
  "$root/target/tools/bin/s3s-fs" --host 127.0.0.1 --port "$s3_port" --access-key "$AWS_ACCESS_KEY_ID" \
    --secret-key "$AWS_SECRET_ACCESS_KEY" "$bucket/s3" >"$out/s3s-fs.log" 2>&1 &
  pids+=($!); wait_port "$s3_port"
  put() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$lib/$1" "$AWS_ENDPOINT_URL/lib/$1" >/dev/null; }
  for i in "${names[@]}"; do
    case " $workloads " in *" muxed "*|*" ts "*) put "m$i.mp4" ;; esac
    case " $workloads " in *" split "*) put "s$i/video.mp4"; put "s$i/audio.m4a" ;; esac
  done
  printf '[media]\nobject_cache_dir = "%s"\nobject_cache_mb = %s\nobject_chunk_kb = %s\n' "$bucket/chunks" "${OBJECT_CACHE_MB:-256}" "${OBJECT_CHUNK_KB:-4096}" >"$bucket/headwater.toml"
  hw_root=s3://lib
  hw_extra+=(--config "$bucket/headwater.toml")
fi
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
shmem_kb() { awk '/^Shmem:/ {print $2}' /proc/meminfo; }

shmem0=$(shmem_kb)
RUST_LOG=warn ${srv[@]+"${srv[@]}"} "$hw" serve --media-root "$hw_root" --listen "127.0.0.1:$hw_port" \
  --admin-listen off --rtmp-listen off --srt-listen off ${hw_extra[@]+"${hw_extra[@]}"} >"$out/headwater.log" 2>&1 &
hw_pid=$!; pids+=("$hw_pid"); wait_port "$hw_port"
H=http://127.0.0.1:$hw_port
N=http://127.0.0.1:$ng_port

urls() { # WORKLOAD ORIGIN
  local i
  for i in "${names[@]}"; do
    case $1 in
      muxed) echo "$2/vod/m$i/hls/master.m3u8" ;;
      split) echo "$2/vod/s$i/hls/master.m3u8" ;;
      ts) echo "$2/vod/m$i/hls-ts/master.m3u8" ;;
    esac
  done
}
# The video rendition (TS: the program of video and first audio) of each.
rendition() { case $1 in muxed) echo v1 ;; split) echo video-v1 ;; ts) echo v1.a2 ;; esac; }

echo "== mirror"
mirror=$(realpath -m "${MIRROR:-$out/mirror}")
if [ ! -d "$mirror" ]; then
  for w in $workloads; do mapfile -t u < <(urls "$w" "$H"); "$lt" mirror -q "${u[@]}" "$mirror.tmp"; done
  mv "$mirror.tmp" "$mirror"
fi
run=$out/nginx-run; mkdir -p "$run"
sed -e "s|@WORKERS@|$workers|" -e "s|@RUN@|$run|" -e "s|@ROOT@|$mirror|" -e "s|@PORT@|$ng_port|" \
  benches/nginx.conf.in >"$run/nginx.conf"
${srv[@]+"${srv[@]}"} nginx -e "$run/startup-error.log" -p "$run" -c "$run/nginx.conf" &
ng_pid=$!; pids+=("$ng_pid"); wait_port "$ng_port"
nginx_pids() { echo "$ng_pid" $(pgrep -P "$ng_pid"); }

# wrk walks the same paths in its own seeded shuffle (each thread from its own
# offset) and copies every body; miss.lua prints one JSON line at the end.
paths_file() { # WORKLOAD -> file of request paths (video segments, as loadtest asks)
  local f=$out/paths-$1.txt r
  r=$(rendition "$1")
  if [ ! -s "$f" ]; then
    case $1 in
      muxed) (cd "$mirror" && ls vod/m*/cmaf/"$r"/*.m4s) ;;
      split) (cd "$mirror" && ls vod/s*/cmaf/"$r"/*.m4s) ;;
      ts) (cd "$mirror" && ls vod/m*/ts/"$r"/*.ts) ;;
    esac | sed 's|^|/|' >"$f"
  fi
  echo "$f"
}

# Both trees as a reader finds them in production: evicted from the page
# cache and read back through readahead, so neither server's pages keep the
# folio sizes of how the files happened to be written (benches/README.md,
# finding 8).
echo "== page cache: evict and read back the library and the mirror"
python3 - "$lib" "$mirror" <<'PY'
import os, sys
for top in sys.argv[1:]:
    for d, _, files in os.walk(top):
        for f in files:
            fd = os.open(os.path.join(d, f), os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            while os.read(fd, 1 << 20):
                pass
            os.close(fd)
PY

: >"$out/runs.txt"
one_run() { # WORKLOAD CLIENT WHO ROUND
  local w=$1 client=$2 who=$3 round=$4 origin pidlist before after json
  if [ "$who" = headwater ]; then origin=$H; pidlist=$hw_pid; else origin=$N; pidlist=$(nginx_pids); fi
  json=$out/$w-$client-$who-$round.json
  before=$(cpu_ticks $pidlist)
  if [ "$client" = loadtest ]; then
    mapfile -t u < <(urls "$w" "$origin")
    ${cli[@]+"${cli[@]}"} "$lt" segments "${u[@]}" --renditions "$(rendition "$w")" -c "$conns" -d "${duration}s" \
      --warmup 0s --threads "$client_threads" --seed "$round" -q --json >"$json" || true
    read -r reqs rps p99 < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["runs"][0]; print(r["requests"], r["requests_per_s"], r["latency_ms"]["p99"])' "$json")
  else
    PATHS=$(paths_file "$w") SEED=$round ${cli[@]+"${cli[@]}"} wrk -t"$client_threads" -c"$conns" -d"${duration}s" -s benches/miss.lua "$origin" >"$json.txt"
    grep '^{' "$json.txt" >"$json"
    read -r reqs rps p99 < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["requests"], r["requests_per_s"], r["p99_ms"])' "$json")
  fi
  after=$(cpu_ticks $pidlist)
  echo "$w $client $who $round $reqs $rps $p99 $((after - before))" | tee -a "$out/runs.txt"
}

for w in $workloads; do
  for client in $clients; do
    echo "== $w, $client"
    for round in $(seq "$rounds"); do
      for who in headwater nginx; do one_run "$w" "$client" "$who" "$round"; done
    done
  done
done
echo "rss_kb $(awk '/^VmRSS/ {print $2}' "/proc/$hw_pid/status")" >"$out/memory.txt"
echo "shmem_kb $(( $(shmem_kb) - shmem0 ))" >>"$out/memory.txt"
cat "$out/memory.txt"
echo "layout $layout" >>"$out/memory.txt"
python3 benches/miss_summary.py "$out" | tee "$out/miss.md"
