#!/usr/bin/env bash
# Makes the demo asset: a 30 s ladder of three H.264 renditions (720p,
# 480p, 360p) with keyframes aligned every 2 s, plus AAC audio in a file of
# its own, encoded by GStreamer from its test sources.
# Usage: make-demo.sh DIR   (writes DIR/720p.mp4 ... DIR/audio.m4a)
set -euo pipefail
out=${1:?usage: make-demo.sh DIR}
mkdir -p "$out"
enc="x264enc key-int-max=60 bframes=2 speed-preset=veryfast option-string=scenecut=0:min-keyint=60"
rung() { # width height kbit/s file
  echo "queue ! videoscale ! video/x-raw,width=$1,height=$2 ! $enc bitrate=$3 ! video/x-h264,profile=high ! h264parse ! mp4mux ! filesink location=$out/$4"
}
gst-launch-1.0 -q -e \
  videotestsrc num-buffers=900 pattern=ball ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 \
    ! timeoverlay font-desc="Sans 36" ! tee name=t \
  t. ! $(rung 1280 720 3000 720p.mp4) \
  t. ! $(rung 854 480 1400 480p.mp4) \
  t. ! $(rung 640 360 700 360p.mp4) \
  audiotestsrc num-buffers=1407 samplesperbuffer=1024 wave=ticks ! audio/x-raw,rate=48000,channels=2 \
    ! audioconvert ! avenc_aac bitrate=128000 ! aacparse ! mp4mux ! filesink location="$out/audio.m4a"
