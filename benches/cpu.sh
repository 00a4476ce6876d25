#!/usr/bin/env bash
# The CPU row of run.sh on its own, with user and system time apart: each
# server alone on CPU 0 (one worker), loadtest on CPU 1 making the same
# requests (the 720p video rendition of hls720, 1.5 MB segments), rounds
# alternating. Prints µs of user, system and total CPU per request, and the
# median ratio headwater / nginx.
#
#   benches/cpu.sh [OUT] [-- extra headwater serve args]
#
# OUT is a finished run.sh result directory (for its mirror; default
# target/bench-results) or a new one (the mirror is made first).
# Environment: CPU_REQUESTS (default 6000), CPU_ROUNDS (default 5),
# MEDIA (default target/bench-media), PORT_BASE (default 18180),
# SEGMENT_CACHE (tmpfs or memfd; benches/segment-cache.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-target/bench-results}")
shift || true
[ "${1:-}" = "--" ] && shift
media=$(realpath -m "${MEDIA:-target/bench-media}")
requests=${CPU_REQUESTS:-6000}
rounds=${CPU_ROUNDS:-5}
base=${PORT_BASE:-18180}
hw=target/release/headwater
lt=target/release/loadtest
mkdir -p "$out"
[ -x "$hw" ] && [ -x "$lt" ] || cargo build --release --locked -p headwater -p loadtest
[ -f "$media/hls720.mp4" ] || benches/media.sh "$media"

. benches/segment-cache.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; segment_cache_cleanup "$out"; }
trap cleanup EXIT
segment_cache_setup "$out"
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
# utime and stime (clock ticks) of a process and its children.
ticks() { local u=0 s=0 p; for p in "$1" $(pgrep -P "$1"); do read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat"); u=$((u + a)); s=$((s + b)); done; echo "$u $s"; }
hz=$(getconf CLK_TCK)

RUST_LOG=warn taskset -c 0 "$hw" serve --media-root "$media" --listen "127.0.0.1:$base" --threads 1 \
  --admin-listen off --rtmp-listen off --srt-listen off ${hw_args[@]+"${hw_args[@]}"} "$@" >"$out/cpu-headwater.log" 2>&1 &
hw_pid=$!; pids+=("$hw_pid"); wait_port "$base"
if [ ! -d "$out/mirror/vod/hls720" ]; then
  "$lt" mirror -q "http://127.0.0.1:$base/vod/hls720/hls/master.m3u8" "$out/mirror"
fi
run=$out/nginx-cpu; mkdir -p "$run"
sed -e "s|@WORKERS@|1|" -e "s|@RUN@|$run|" -e "s|@ROOT@|$out/mirror|" -e "s|@PORT@|$((base + 1))|" \
  benches/nginx.conf.in >"$run/nginx.conf"
taskset -c 0 nginx -e "$run/startup-error.log" -p "$run" -c "$run/nginx.conf" &
ng_pid=$!; pids+=("$ng_pid"); wait_port $((base + 1))

us() { echo $(( $1 * 1000000 / hz / requests )); }
echo "round server user_us system_us total_us" | tee "$out/cpu-split.txt"
for round in $(seq "$rounds"); do
  for who in headwater nginx; do
    if [ $who = headwater ]; then pid=$hw_pid port=$base; else pid=$ng_pid port=$((base + 1)); fi
    read -r u0 s0 < <(ticks "$pid")
    taskset -c 1 "$lt" segments "http://127.0.0.1:$port/vod/hls720/hls/master.m3u8" --renditions v1 \
      -n "$requests" -c 8 --warmup 0s --threads 1 -q >/dev/null
    read -r u1 s1 < <(ticks "$pid")
    echo "$round $who $(us $((u1 - u0))) $(us $((s1 - s0))) $(us $((u1 - u0 + s1 - s0)))" | tee -a "$out/cpu-split.txt"
  done
done
python3 - "$out/cpu-split.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
by = {}
for r, who, u, s, t in rows:
    by.setdefault(who, []).append((int(u), int(s), int(t)))
for who, v in by.items():
    print(f"{who}: median user {statistics.median(x[0] for x in v)} µs, system {statistics.median(x[1] for x in v)} µs, total {statistics.median(x[2] for x in v)} µs")
ratios = [h[2] / n[2] for h, n in zip(by["headwater"], by["nginx"]) if n[2]]
print(f"total ratio headwater / nginx: median {statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f})")
EOF
