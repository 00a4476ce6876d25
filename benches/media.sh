#!/usr/bin/env bash
# Makes the benchmark content (cached; delete the directory to rebuild):
#   DIR/hls720.mp4       2 min 1280x720 25 fps H.264 at ~3 Mbit/s (CBR with
#                        filler, so segments really are ~1.5 MB) + AAC,
#                        one muxed file as mezzanines usually are
#   DIR/ladder/*.mp4     the same 2 min as a 3-rendition ladder (720p 3 Mbit/s,
#                        480p 1.4 Mbit/s, 360p 0.7 Mbit/s), keyframes aligned,
#                        plus audio.m4a
#   DIR/hour.mp4         a one-hour asset (54,000 video + 169,200 audio samples)
# All with 2 s GOPs, so 4 s segments. Usage: media.sh DIR
set -euo pipefail
out=${1:?usage: media.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/ladder"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
src=(-f lavfi -i "testsrc2=size=1280x720:rate=25:duration=120" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=120")
gop=(-g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -preset veryfast -profile:v high)
if [ ! -s "$out/hls720.mp4" ]; then
  ff "${src[@]}" -c:v libx264 "${gop[@]}" -b:v 3M -minrate 3M -maxrate 3M -bufsize 3M -x264-params nal-hrd=cbr \
     -c:a aac -b:a 128k "$out/hls720.tmp.mp4"
  mv "$out/hls720.tmp.mp4" "$out/hls720.mp4"
fi
if [ ! -s "$out/ladder/audio.m4a" ]; then
  ff "${src[@]}" -filter_complex "[0:v]split=3[a][b][c];[b]scale=854:480[b2];[c]scale=640:360[c2]" \
     -map "[a]" -c:v libx264 "${gop[@]}" -b:v 3M -maxrate 3M -bufsize 6M -an "$out/ladder/720p.mp4" \
     -map "[b2]" -c:v libx264 "${gop[@]}" -b:v 1400k -maxrate 1400k -bufsize 2800k -an "$out/ladder/480p.mp4" \
     -map "[c2]" -c:v libx264 "${gop[@]}" -b:v 700k -maxrate 700k -bufsize 1400k -an "$out/ladder/360p.mp4" \
     -map 1:a -c:a aac -b:a 128k -vn "$out/ladder/audio.tmp.m4a"
  mv "$out/ladder/audio.tmp.m4a" "$out/ladder/audio.m4a"
fi
"$here/../tests/media/generate-long.sh" "$out"
