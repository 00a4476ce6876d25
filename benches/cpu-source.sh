#!/usr/bin/env bash
# Does the CPU time per segment depend on where sendfile reads from? The
# CPU row of run.sh has headwater sending hls720's video segments from a
# memfd (shared memory: they are gathered, see benches/README.md) and nginx
# from ext4's page cache. This runs nginx alone on CPU 0 twice, alternating
# rounds: serving the mirror from disk, and the same files copied to
# /dev/shm (shared memory, like headwater's memfds). loadtest on CPU 1 makes
# the same requests as run.sh's CPU row. Prints CPU µs per request.
#
#   benches/cpu-source.sh [OUT]   OUT: a finished run.sh result directory
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-target/bench-results}")
requests=${CPU_REQUESTS:-6000}
rounds=${CPU_ROUNDS:-5}
lt=target/release/loadtest
[ -d "$out/mirror" ] || { echo "run benches/run.sh first: no $out/mirror" >&2; exit 1; }
shm=$(mktemp -d /dev/shm/headwater-mirror.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$shm"; }
trap cleanup EXIT
chmod 755 "$shm"
cp -r "$out/mirror/." "$shm/"
chmod -R a+rX "$shm"
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; exit 1; }
ticks() { local t=0; for p in "$1" $(pgrep -P "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
hz=$(getconf CLK_TCK)

start() { # NAME ROOT PORT; sets started to the master's pid
  local run=$out/nginx-$1
  mkdir -p "$run"
  sed -e "s|@WORKERS@|1|" -e "s|@RUN@|$run|" -e "s|@ROOT@|$2|" -e "s|@PORT@|$3|" benches/nginx.conf.in >"$run/nginx.conf"
  taskset -c 0 nginx -e "$run/startup-error.log" -p "$run" -c "$run/nginx.conf" &
  started=$!
  pids+=("$started")
}
start disk "$out/mirror" 18282; disk=$started
start shm "$shm" 18284; mem=$started
wait_port 18282; wait_port 18284

echo "round source µs/request"
for round in $(seq "$rounds"); do
  for which in disk shm; do
    if [ $which = disk ]; then pid=$disk port=18282; else pid=$mem port=18284; fi
    before=$(ticks "$pid")
    taskset -c 1 "$lt" segments "http://127.0.0.1:$port/vod/hls720/hls/master.m3u8" --renditions v1 \
      -n "$requests" -c 8 --warmup 0s --threads 1 -q >/dev/null
    after=$(ticks "$pid")
    echo "$round $which $(( (after - before) * 1000000 / hz / requests ))"
  done
done
