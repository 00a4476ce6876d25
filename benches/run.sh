#!/usr/bin/env bash
# The side-by-side benchmark of issue 6: headwater packaging mezzanines just in
# time vs Debian's nginx serving `loadtest mirror`'s copy of the same bytes.
# Everything talks to 127.0.0.1 only and every run is bounded in time.
#
#   benches/run.sh [OUT]     results in OUT (default target/bench-results):
#                            one JSON per workload, summary.md (the table)
#
# Environment: DURATION (s per run, default 10), ROUNDS (default 3),
# MEDIA (default target/bench-media), SEGMENT_CACHE (memfd, the default
# configuration, or tmpfs: where headwater keeps gathered segments;
# benches/segment-cache.sh), MISS=0 to skip the miss workload (benches/miss.sh,
# run twice: both servers beside the client on every core, then each server
# pinned to CPU 0 and the client to CPU 1). Runs scripts/setup.sh --bench.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(realpath -m "${1:-target/bench-results}")
media=$(realpath -m "${MEDIA:-target/bench-media}")
duration=${DURATION:-10}
rounds=${ROUNDS:-3}
cores=$(nproc)
mkdir -p "$out"

scripts/setup.sh --bench >/dev/null
cargo build --release --locked -p headwater -p loadtest
hw=$root/target/release/headwater
lt=$root/target/release/loadtest
benches/media.sh "$media"

. benches/segment-cache.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; segment_cache_cleanup "$out"; }
trap cleanup EXIT
segment_cache_setup "$out"

# Ports: fixed, loopback, unlikely to be taken; override with PORT_BASE.
base=${PORT_BASE:-18080}
hw_port=$base; hw1_port=$((base + 1)); ng_port=$((base + 2))

wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# utime + stime of a process and its threads, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_headwater() { # PORT [extra args]; sets $!
  local port=$1; shift
  RUST_LOG=warn ${PIN:+taskset -c "$PIN"} "$hw" serve --media-root "$media" --listen "127.0.0.1:$port" --admin-listen off --rtmp-listen off --srt-listen off ${hw_args[@]+"${hw_args[@]}"} "$@" >"$out/headwater-$port.log" 2>&1 &
}

start_nginx() { # WORKERS DIR [taskset cpu]; sets ng_pid
  local workers=$1 dir=$2 run=$out/nginx-run
  mkdir -p "$run"
  sed -e "s|@WORKERS@|$workers|" -e "s|@RUN@|$run|" -e "s|@ROOT@|$dir|" -e "s|@PORT@|$ng_port|" \
    benches/nginx.conf.in >"$run/nginx.conf"
  ${3:+taskset -c "$3"} nginx -e "$run/startup-error.log" -p "$run" -c "$run/nginx.conf" &
  ng_pid=$!
  pids+=("$ng_pid")
  wait_port "$ng_port"
}
stop_nginx() { kill "$ng_pid"; wait "$ng_pid" 2>/dev/null || true; }

nginx_cpu_ticks() { # master + workers
  local t=0 p
  for p in $ng_pid $(pgrep -P "$ng_pid"); do t=$((t + $(cpu_ticks "$p"))); done
  echo $t
}

# Gathered segment payloads live in memfds (shared memory), not in the RSS:
# measured as the growth of the machine's Shmem from before headwater starts.
shmem_kb() { awk '/^Shmem:/ {print $2}' /proc/meminfo; }
shmem0=$(shmem_kb)
H=http://127.0.0.1:$hw_port
N=http://127.0.0.1:$ng_port
start_headwater "$hw_port"; hw_pid=$!; pids+=("$hw_pid"); wait_port "$hw_port"

echo "== mirror (headwater's output, byte for byte, for nginx)"
rm -rf "$out/mirror"
for a in hls720 ladder hour; do
  "$lt" mirror -q "$H/vod/$a/hls/master.m3u8" "$out/mirror"
  "$lt" mirror -q "$H/vod/$a/dash/manifest.mpd" "$out/mirror"
done
"$lt" mirror -q "$H/vod/hls720/hls-ts/master.m3u8" "$out/mirror"
start_nginx "$cores" "$out/mirror"

rss_log=$out/rss.txt; : >"$rss_log"
note_rss() { echo "$1 $(rss_kb "$hw_pid")" >>"$rss_log"; echo "shmem-$1 $(( $(shmem_kb) - shmem0 ))" >>"$rss_log"; }
note_rss start

compare() { # NAME MODE URL-PATH [loadtest args]
  local name=$1 mode=$2 path=$3; shift 3
  echo "== $name"
  "$lt" "$mode" "$H$path" --compare "$N$path" --rounds "$rounds" -d "${duration}s" --json "$@" >"$out/$name.json"
  note_rss "$name"
}

for round in 1 2; do
  # Two passes over the throughput workloads: the second shows whether memory grows.
  compare "segments-32-r$round" segments /vod/hls720/hls/master.m3u8 -c 32
  compare "segments-256-r$round" segments /vod/hls720/hls/master.m3u8 -c 256
  compare "ladder-32-r$round" segments /vod/ladder/hls/master.m3u8 -c 32
  compare "ts-32-r$round" segments /vod/hls720/hls-ts/master.m3u8 -c 32
  compare "playlists-1h-r$round" manifests /vod/hour/hls/master.m3u8 -c 32
done

echo "== 10,000 idle keep-alive connections"
"$lt" idle "$H/vod/hls720/hls/master.m3u8" --connections 10000 --hold 8s --json >"$out/idle.json" &
idle=$!
peak=0
while kill -0 "$idle" 2>/dev/null; do
  r=$(rss_kb "$hw_pid"); [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.2
done
wait "$idle" || true
echo "idle_peak $peak" >>"$rss_log"
note_rss after-idle

echo "== scaling: --threads 1 vs $cores threads"
start_headwater "$hw1_port" --threads 1; hw1_pid=$!; pids+=("$hw1_pid"); wait_port "$hw1_port"
"$lt" segments "http://127.0.0.1:$hw1_port/vod/hls720/hls/master.m3u8" --compare "$H/vod/hls720/hls/master.m3u8" \
  --rounds "$rounds" -d "${duration}s" -c 32 --json >"$out/scaling.json"
kill "$hw1_pid"; wait "$hw1_pid" 2>/dev/null || true

echo "== first request of the 1-hour asset after a restart (page cache warm)"
kill "$hw_pid"; wait "$hw_pid" 2>/dev/null || true
cat "$media/hour.mp4" >/dev/null
: >"$out/coldstart.txt"
for i in $(seq 5); do
  start_headwater "$hw_port"; hw_pid=$!; pids+=("$hw_pid"); wait_port "$hw_port"
  for p in /vod/hour/hls/master.m3u8 /vod/hour/hls/v1.m3u8; do
    curl -s -o /dev/null -w "headwater $p %{time_total}\n" "$H$p" >>"$out/coldstart.txt"
  done
  curl -s -o /dev/null -w "nginx /vod/hour/hls/v1.m3u8 %{time_total}\n" "$N/vod/hour/hls/v1.m3u8" >>"$out/coldstart.txt"
  kill "$hw_pid"; wait "$hw_pid" 2>/dev/null || true
done

echo "== CPU time per segment: server on CPU 0, loadtest on CPU 1"
stop_nginx
start_nginx 1 "$out/mirror" 0
PIN=0 start_headwater "$hw_port" --threads 1; hw_pid=$!; pids+=("$hw_pid"); wait_port "$hw_port"
requests=${CPU_REQUESTS:-6000}
: >"$out/cpu.txt"
# CPU time is noisier than throughput on a shared machine: more rounds.
for round in $(seq "${CPU_ROUNDS:-5}"); do
  for who in headwater nginx; do
    if [ $who = headwater ]; then url=$H; before=$(cpu_ticks "$hw_pid"); else url=$N; before=$(nginx_cpu_ticks); fi
    taskset -c 1 "$lt" segments "$url/vod/hls720/hls/master.m3u8" --renditions v1 -n "$requests" -c 8 --warmup 0s \
      --threads 1 --json -q >"$out/cpu-$who-$round.json"
    if [ $who = headwater ]; then after=$(cpu_ticks "$hw_pid"); else after=$(nginx_cpu_ticks); fi
    echo "$round $who $((after - before)) $requests" >>"$out/cpu.txt"
  done
done
kill "$hw_pid"; wait "$hw_pid" 2>/dev/null || true
stop_nginx

python3 benches/summarize.py "$out" | tee "$out/summary.md"

if [ "${MISS:-1}" != 0 ]; then
  # The miss workload of issue 19: a catalog four times the segment cache,
  # every segment once per shuffled cycle, as a CDN's misses arrive.
  NO_SETUP=1 benches/miss.sh "$out/miss"
  NO_SETUP=1 LAYOUT=pinned MIRROR="$out/miss/mirror" benches/miss.sh "$out/miss-pinned"
  for layout in miss miss-pinned; do
    printf '\n%s\n\n' "Miss workload ($layout):"
    cat "$out/$layout/miss.md"
  done | tee -a "$out/summary.md"
fi
