#!/usr/bin/env bash
# Makes a one-hour asset for benchmarks: 54,000 video samples (15 fps,
# 2 s GOP, 4 s segments) and ~169,000 AAC frames (48 kHz), built by
# stream-copying a 10 s encode 360 times, so it takes seconds, not an hour
# of encoding. Usage: generate-long.sh OUTDIR (writes OUTDIR/hour.mp4).
set -euo pipefail
out=${1:?usage: generate-long.sh OUTDIR}
mkdir -p "$out"
[ -s "$out/hour.mp4" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ffmpeg -nostdin -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=160x90:rate=15:duration=10" -f lavfi -i "sine=frequency=300:sample_rate=48000:duration=10" \
  -c:v libx264 -threads 1 -preset ultrafast -g 30 -keyint_min 30 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -b:a 64k -fflags +bitexact -flags:v +bitexact -flags:a +bitexact "$tmp/ten.mp4"
for _ in $(seq 360); do echo "file '$tmp/ten.mp4'"; done > "$tmp/list.txt"
ffmpeg -nostdin -hide_banner -loglevel error -y -f concat -safe 0 -i "$tmp/list.txt" -c copy \
  -fflags +bitexact "$tmp/hour.mp4"
mv "$tmp/hour.mp4" "$out/hour.mp4"
