#!/usr/bin/env bash
# Makes the test media corpus with ffmpeg and GStreamer: real encoders, real
# muxers, small and short so CI stays fast. Usage: generate.sh OUTDIR
# Idempotent: files that exist are kept (delete OUTDIR to regenerate).
set -euo pipefail
out=${1:?usage: generate.sh OUTDIR}
mkdir -p "$out/corrupt" "$out/ladder"
cd "$out"
# Single-threaded, bit-exact encoding: the same bytes on every run and machine,
# so golden manifests (which contain sizes and bit rates) stay stable.
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "${@:1:$#-1}" -fflags +bitexact -flags:v +bitexact -flags:a +bitexact "${@: -1}"; }
have() { [ -s "$1" ]; }

# 10 s of 320x180 25 fps video with B-frames and a 2 s GOP, plus 48 kHz AAC.
src=(-f lavfi -i "testsrc2=size=320x180:rate=25:duration=10" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=10")
# x264's assembly differs from its C code (and between CPU generations) in
# the bits it picks, so asm=0: the same bytes on every CPU, for the goldens.
x264=(-c:v libx264 -threads 1 -preset veryfast -profile:v high -bf 3 -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -x264-params asm=0)
aac=(-c:a aac -b:a 96k -ac 2)

# moov after mdat (ffmpeg's default) and B-frames (so an edit list for the reorder delay).
have bframes.mp4 || ff "${src[@]}" "${x264[@]}" "${aac[@]}" bframes.mp4
# moov before mdat.
have faststart.mp4 || ff -i bframes.mp4 -c copy -movflags +faststart faststart.mp4
# Fragmented input: moof/traf/trun with tfdt, an mfra at the end, no sidx.
have fragmented.mp4 || ff -i bframes.mp4 -c copy -movflags +frag_keyframe+empty_moov+default_base_moof fragmented.mp4
# Fragmented input with a sidx before every fragment (DASH-style on-demand).
have fragmented-sidx.mp4 || ff -i bframes.mp4 -c copy -movflags +dash fragmented-sidx.mp4
# An edit list that starts mid-GOP: stream copy from 1.3 s keeps the frames
# the decoder needs and tells players to skip them.
have editlist.mp4 || ff -ss 1.3 -i bframes.mp4 -c copy editlist.mp4
# Audio starting 0.5 s after the video: an empty edit on the audio track.
have delayed-audio.mp4 || ff -i bframes.mp4 -itsoffset 0.5 -i bframes.mp4 -map 0:v -map 1:a -c copy delayed-audio.mp4
# 854x480 pixels of aspect 1280:1281 (what scaling 16:9 to 854 wide gives):
# the track header says 853.33 wide, the frames are 854 (issue 15).
have sar.mp4 || ff -f lavfi -i "testsrc2=size=320x180:rate=25:duration=2" -vf scale=854:480 "${x264[@]}" -an sar.mp4
# A muxed mezzanine as encoders write them: 640x360 at a constant 1.5 Mbit/s
# beside 64 kbit/s AAC, interleaved frame by frame, so a video segment's
# samples are ~100 runs with a little audio between each: its segments span
# the audio (one range, a trun per run; issue 19).
have muxed.mp4 || ff -f lavfi -i "testsrc2=size=640x360:rate=25:duration=8" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=8" \
  -c:v libx264 -threads 1 -preset veryfast -profile:v high -bf 3 -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p \
  -b:v 1500k -minrate 1500k -maxrate 1500k -bufsize 1500k -x264-params asm=0:nal-hrd=cbr -c:a aac -b:a 64k -ac 1 muxed.mp4
# Video only, audio only.
have video-only.mp4 || ff -i bframes.mp4 -map 0:v -c copy video-only.mp4
have audio-only.m4a || ff -i bframes.mp4 -map 0:a -c copy audio-only.m4a

# Codecs beyond H.264/AAC, 6 s each (two segments), same test source. x265 without
# assembly for the same reason as x264; the masked goldens do not depend
# on the bytes of the others. Audio is upmixed so channel counts show.
short=(-f lavfi -i "testsrc2=size=320x180:rate=25:duration=6" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=6")
x265() { echo -c:v libx265 -preset ultrafast -x265-params "asm=0:keyint=50:min-keyint=50:scenecut=0:bframes=3:pools=none:frame-threads=1:log-level=error"; }
# HEVC as hvc1 (parameter sets only in hvcC), 8-bit, with 5.1 AC-3 (fixed-point encoder: the same bits everywhere).
have hevc.mp4 || ff "${short[@]}" $(x265) -tag:v hvc1 -pix_fmt yuv420p -c:a ac3_fixed -b:a 192k -ac 6 hevc.mp4
# HEVC as hev1, Main 10 with PQ (HDR10 signalling in colr), with stereo E-AC-3.
have hdr10.mp4 || ff "${short[@]}" $(x265) -pix_fmt yuv420p10le -color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc -c:a eac3 -b:a 96k -ac 2 hdr10.mp4
# HEVC Main 10 with HLG (transfer arib-std-b67 in colr), AAC.
have hlg.mp4 || ff "${short[@]}" $(x265) -tag:v hvc1 -pix_fmt yuv420p10le -color_primaries bt2020 -color_trc arib-std-b67 -colorspace bt2020nc "${aac[@]}" hlg.mp4
# AV1 (libaom, fastest preset) with stereo Opus.
have av1.mp4 || ff "${short[@]}" -c:v libaom-av1 -cpu-used 8 -threads 1 -row-mt 0 -g 50 -keyint_min 50 -b:v 200k -c:a libopus -b:a 64k -ac 2 av1.mp4
# A codec headwater does not package (MPEG-4 Part 2 video): a clear 422.
have corrupt/mpeg4-part2.mp4 || ff -f lavfi -i "testsrc2=size=320x180:rate=25:duration=1" -c:v mpeg4 corrupt/mpeg4-part2.mp4

# Three audio tracks in one file: English, an English commentary (named in
# hdlr, the same language: it must stay a track of its own) and French.
mkdir -p multi-lang
have multi-audio.mp4 || ff -f lavfi -i "testsrc2=size=320x180:rate=25:duration=6" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=6" -f lavfi -i "sine=frequency=660:sample_rate=48000:duration=6" \
  -f lavfi -i "sine=frequency=880:sample_rate=48000:duration=6" -map 0 -map 1 -map 2 -map 3 "${x264[@]}" "${aac[@]}" \
  -metadata:s:a:0 language=eng -metadata:s:a:1 language=eng -metadata:s:a:1 handler_name=Commentary \
  -metadata:s:a:2 language=fra multi-audio.mp4
# Languages from file names: audio.en.m4a and audio.de.m4a beside the video (mdhd says und).
have multi-lang/video.mp4 || ff -i multi-audio.mp4 -map 0:v -c copy multi-lang/video.mp4
have multi-lang/audio.en.m4a || ff -i multi-audio.mp4 -map 0:a:0 -c copy -metadata:s:a:0 language=und multi-lang/audio.en.m4a
have multi-lang/audio.de.m4a || ff -i multi-audio.mp4 -map 0:a:2 -c copy -metadata:s:a:0 language=und multi-lang/audio.de.m4a

# Subtitles: a directory asset with two audio languages and two WebVTT
# sidecars (a cue spans the 4 s segment boundary), and tx3g inside an MP4.
mkdir -p subs
have subs/video.mp4 || cp multi-lang/video.mp4 subs/video.mp4
have subs/audio.en.m4a || cp multi-lang/audio.en.m4a subs/audio.en.m4a
have subs/audio.fr.m4a || ff -i multi-audio.mp4 -map 0:a:2 -c copy -metadata:s:a:0 language=und subs/audio.fr.m4a
have subs/text.en.vtt || printf 'WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.500\nHello from headwater\n\n2\n00:00:03.000 --> 00:00:05.500 align:start\nAcross the <b>boundary</b>\n\n00:00:05.600 --> 00:00:05.900\nLast words\n' > subs/text.en.vtt
have subs/text.fr.vtt || printf 'WEBVTT\n\n00:00:00.500 --> 00:00:02.500\nBonjour de headwater\n\n00:00:03.000 --> 00:00:05.500\nPar-dessus la limite\n' > subs/text.fr.vtt
if ! have tx3g.mp4; then
  printf '1\n00:00:01,000 --> 00:00:02,500\nFirst line\n\n2\n00:00:04,200 --> 00:00:06,000\nSecond & last\n' > tx3g.srt
  ff -i bframes.mp4 -i tx3g.srt -map 0 -map 1 -c copy -c:s mov_text -metadata:s:s:0 language=eng tx3g.mp4
  rm -f tx3g.srt
fi

# Keyframe cadence edge cases, 320x180, with AAC.
# NTSC: 30000/1001 fps, a 60-frame GOP (2.002 s), B-frames.
have ntsc.mp4 || ff -f lavfi -i "testsrc2=size=320x180:rate=30000/1001:duration=10" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=10" \
  -c:v libx264 -threads 1 -preset veryfast -bf 3 -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -x264-params asm=0 "${aac[@]}" ntsc.mp4
# GOPs of 0.5 s up to 8 s, and a last segment of three frames (keyframes
# forced at these times only).
# Five minutes at 4 fps, a keyframe every 0.5 s, 64x36: long manifests (600
# keyframes in its I-frame playlist) from a file of a few hundred KB.
have long.mp4 || ff -f lavfi -i "testsrc2=size=64x36:rate=4:duration=300" -c:v libx264 -threads 1 -preset ultrafast -crf 45 \
  -g 2 -keyint_min 2 -sc_threshold 0 -pix_fmt yuv420p -x264-params asm=0 long.mp4
have gops.mp4 || ff -f lavfi -i "testsrc2=size=320x180:rate=25:duration=13.62" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=13.62" \
  -c:v libx264 -threads 1 -preset veryfast -bf 2 -g 1000 -keyint_min 1000 -sc_threshold 0 -pix_fmt yuv420p -x264-params asm=0 \
  -force_key_frames "0,0.5,1,1.5,9.5,13.5" "${aac[@]}" gops.mp4
# Open GOPs: x264 open-gop, keyframes are recovery-point I-frames whose
# leading B-frames reference the previous GOP.
have open-gop.mp4 || ff "${src[@]}" -c:v libx264 -threads 1 -preset veryfast -profile:v high -bf 3 -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p \
  -x264-params asm=0:open-gop=1 "${aac[@]}" open-gop.mp4
# B-frames without an edit list: the first composition time is two frames, not zero.
have cts-offset.mp4 || ff -i bframes.mp4 -c copy -use_editlist 0 cts-offset.mp4

# A 20 s 3-rendition ladder made by GStreamer: one decode of the test source,
# scaled three ways, x264enc with the same fixed GOP so keyframes align,
# and AAC audio in a file of its own.
if ! have ladder/360p.mp4 || ! have ladder/270p.mp4 || ! have ladder/180p.mp4 || ! have ladder/audio.m4a; then
  rm -f ladder/*
  enc="x264enc threads=1 key-int-max=50 bframes=2 speed-preset=veryfast option-string=scenecut=0:min-keyint=50"
  gst-launch-1.0 -q -e \
    videotestsrc num-buffers=500 pattern=smpte ! video/x-raw,format=I420,width=640,height=360,framerate=25/1 ! tee name=t \
    t. ! queue ! $enc bitrate=800 ! video/x-h264,profile=high ! h264parse ! mp4mux ! filesink location=ladder/360p.mp4 \
    t. ! queue ! videoscale ! video/x-raw,width=480,height=270 ! $enc bitrate=500 ! video/x-h264,profile=high ! h264parse ! mp4mux ! filesink location=ladder/270p.mp4 \
    t. ! queue ! videoscale ! video/x-raw,width=320,height=180 ! $enc bitrate=250 ! video/x-h264,profile=high ! h264parse ! mp4mux ! filesink location=ladder/180p.mp4 \
    audiotestsrc num-buffers=940 samplesperbuffer=1024 freq=330 ! audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac bitrate=96000 ! aacparse ! mp4mux ! filesink location=ladder/audio.m4a
fi

# Corrupt inputs: each must give a clean error, never a panic.
have corrupt/truncated.mp4 || head -c 60000 faststart.mp4 > corrupt/truncated.mp4
[ -e corrupt/empty.mp4 ] || : > corrupt/empty.mp4
have corrupt/text.mp4 || printf 'this is not an mp4 file\n' > corrupt/text.mp4
if ! have corrupt/garbage-moov.mp4; then
  # Keep the box headers of faststart.mp4 but overwrite the inside of moov.
  cp faststart.mp4 corrupt/garbage-moov.mp4
  moov=$(grep -abo moov faststart.mp4 | head -1 | cut -d: -f1)
  dd if=faststart.mp4 bs=1 skip=50000 count=2000 status=none | dd of=corrupt/garbage-moov.mp4 bs=1 seek=$((moov + 200)) conv=notrunc status=none
fi
echo "test media in $out"
