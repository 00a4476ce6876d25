#!/usr/bin/env bash
# The one-command demo: installs what is missing, builds headwater, makes a
# demo ladder if the media directory is empty, starts the server and prints
# the URLs to play. Ctrl-C stops it.
#
#   scripts/demo.sh [MEDIA_DIR] [PORT]     (defaults: ./media, 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
media=${1:-media}
port=${2:-8080}

scripts/setup.sh --demo
cargo build --release --bin headwater

mkdir -p "$media"
if [ -z "$(ls -A "$media")" ]; then
  echo "demo: making a demo ladder in $media/demo (about half a minute)"
  scripts/make-demo.sh "$media/demo"
fi

base="http://127.0.0.1:$port"
echo
echo "headwater is serving $media on $base"
for asset in $(ls "$media" | sed -E 's/\.(mp4|m4a)$//' | sort -u); do
  echo "  $asset:"
  echo "    HLS  $base/vod/$asset/hls/master.m3u8"
  echo "    DASH $base/vod/$asset/dash/manifest.mpd"
done
echo
echo "Play: ffplay $base/vod/demo/hls/master.m3u8"
echo "  or open https://hlsjs.video-dev.org/demo/?src=$base/vod/demo/hls/master.m3u8 in a browser"
echo "  (CORS is open by default), or Safari with the HLS URL directly."
echo "Probe: target/release/headwater probe $media/demo/*.mp4 $media/demo/*.m4a"
echo
exec target/release/headwater serve --media-root "$media" --listen "127.0.0.1:$port"
