#!/usr/bin/env bash
# The first request of the 1-hour asset after a restart, for two builds of
# headwater side by side (run.sh measures one build against its target).
# Each round starts A then B on a loopback port with the asset's file in the
# page cache, times the first `master.m3u8` with curl, and stops it.
#
#   benches/first-request.sh BIN_A BIN_B [ROUNDS]    (default 7 rounds)
#
# Prints each build's times sorted and their medians, in ms.
# Environment: MEDIA (default target/bench-media), PORT (default 18190).
set -euo pipefail
cd "$(dirname "$0")/.."
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-7}
media=$(realpath -m "${MEDIA:-target/bench-media}")
port=${PORT:-18190}
[ -f "$media/hour.mp4" ] || benches/media.sh "$media"
cat "$media/hour.mp4" >/dev/null
declare -A times=([A]="" [B]="")
for _ in $(seq "$rounds"); do
  for which in A B; do
    bin=$a; [ "$which" = B ] && bin=$b
    "$bin" serve --media-root "$media" --listen "127.0.0.1:$port" \
      --admin-listen off --rtmp-listen off --srt-listen off >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 200); do
      curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
      sleep 0.05
    done
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/vod/hour/hls/master.m3u8")
    times[$which]+="$t "
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
for which in A B; do
  # shellcheck disable=SC2086
  printf '%s\n' ${times[$which]} | sort -g | awk -v w="$which" '{ v[NR] = $1 * 1000; s = s sprintf("%.2f ", v[NR]) }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%s: %s| median %.2f ms\n", w, s, m }'
done
