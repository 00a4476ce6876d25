#!/usr/bin/env bash
# Makes the seed inputs of every fuzz target under fuzz/corpus/{target}
# (and fuzz/small.mp4, the query target's presentation): tiny real files
# from ffmpeg, sample entries cut out of them, and hand-written text. The
# seeds are committed; run this again only to add kinds of input. Files
# the fuzzer adds later sit beside them.
set -euo pipefail
cd "$(dirname "$0")"
c=corpus
mkdir -p "$c"/{mp4,sample_entry,webvtt,http,query,token,config,rtmp,srt,stream_ids}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }

# Real media, as small as a codec allows: 1 s of 64x64 at 5 fps.
v=(-f lavfi -i testsrc=size=64x64:rate=5:duration=1)
a=(-f lavfi -i sine=frequency=440:sample_rate=48000:duration=1)
ff "${v[@]}" "${a[@]}" -c:v libx264 -g 5 -bf 2 -c:a aac -b:a 16k -ac 1 -shortest "$c/mp4/avc-aac.mp4"
ff -i "$c/mp4/avc-aac.mp4" -c copy -movflags faststart "$c/mp4/faststart.mp4"
ff -i "$c/mp4/avc-aac.mp4" -c copy -movflags frag_keyframe+empty_moov+default_base_moof "$c/mp4/fragmented.mp4"
ff -ss 0.5 -i "$c/mp4/avc-aac.mp4" -c copy "$c/mp4/editlist.mp4"
ff "${v[@]}" -c:v libx265 -x265-params log-level=error -tag:v hvc1 "$c/mp4/hevc.mp4"
ff "${v[@]}" -c:v libaom-av1 -cpu-used 8 "$c/mp4/av1.mp4" 2>/dev/null || true
ff "${a[@]}" -c:a libopus -b:a 16k "$c/mp4/opus.mp4"
ff "${a[@]}" -c:a ac3 -b:a 64k "$c/mp4/ac3.mp4"
ff "${a[@]}" -c:a eac3 -b:a 64k "$c/mp4/eac3.mp4"
printf '1\n00:00:00,000 --> 00:00:00,800\nhello\n' >"$tmp/s.srt"
ff "${v[@]}" -i "$tmp/s.srt" -map 0 -map 1 -c:v libx264 -c:s mov_text "$c/mp4/tx3g.mp4"
cp "$c/mp4/avc-aac.mp4" small.mp4

# Each file's sample entries (the first child of every stsd).
python3 - "$c/mp4" "$c/sample_entry" <<'PY'
import os, struct, sys
src, dst = sys.argv[1:]
def boxes(b, at, end):
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", b[at:at + 8])
        if size < 8 or at + size > end:
            return
        yield kind, at, size
        at += size
def walk(b, at, end, out):
    for kind, start, size in boxes(b, at, end):
        if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
            walk(b, start + 8, start + size, out)
        elif kind == b"stsd":
            for _, s, n in boxes(b, start + 16, start + size):
                out.append(b[s:s + n])
for name in sorted(os.listdir(src)):
    data = open(os.path.join(src, name), "rb").read()
    found = []
    walk(data, 0, len(data), found)
    for i, entry in enumerate(found):
        open(os.path.join(dst, f"{name[:-4]}-{i}"), "wb").write(entry)
PY

cat >"$c/webvtt/cues" <<'VTT'
WEBVTT - title

STYLE
::cue { color: red }

1
00:00:00.000 --> 00:00:01.500 align:start line:10%
<v Roger>Hello <b>there</b>

00:01.500 --> 00:02.000
second
VTT
printf 'WEBVTT\n\nNOTE a note\n\n00:00:00.000 --> 00:00:01.000\n&amp; &lt;\n' >"$c/webvtt/note"

printf 'GET /vod/a/hls/v1.m3u8?start=1&end=2 HTTP/1.1\r\nHost: h\r\nRange: bytes=0-99\r\nIf-None-Match: "5f3a", W/"x"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nX-Forwarded-For: 192.0.2.1, 10.0.0.1\r\n\r\n' >"$c/http/get"
printf 'OPTIONS * HTTP/1.1\r\nHost: h\r\nOrigin: https://p\r\nContent-Length: 3\r\n\r\nabc' >"$c/http/options-body"
printf 'HEAD /live/s/hls/v0/segment-3.4.m4s HTTP/1.0\r\nRange: bytes=-500\r\n\r\n' >"$c/http/head"

printf 'start=0.5&end=1' >"$c/query/clip"
printf 'video_height=1-100&audio_language=en&video_codec=avc1' >"$c/query/filter"
printf 'start=%%31&end=abc&start=2' >"$c/query/repeated"

python3 - "$c/token" <<'PY'
import base64, hashlib, hmac, sys
def sign(kind, name, exp, ip=""):
    msg = "\n".join(["headwater-token/1", kind, name, "k1", str(exp), ip]).encode()
    mac = hmac.new(bytes([7] * 32), msg, hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return f"k1.{exp}.{'i' if ip else 'a'}.{sig}"
open(sys.argv[1] + "/asset", "w").write(sign("vod", "a", 1900000000))
open(sys.argv[1] + "/stream-bound", "w").write(sign("live", "s", 1900000000, "192.0.2.1"))
open(sys.argv[1] + "/expired", "w").write(sign("vod", "a", 1700000000))
PY

cp ../conf/headwater.toml "$c/config/shipped.toml"
printf '[server]\nlisten = "127.0.0.1:8080"\nthreads = 2\n[media]\nroot = "/srv"\nsegment_cache_mb = 0\n' >"$c/config/small.toml"

for stage in 0 1 2; do printf "\\x0$stage" >"$c/rtmp/stage$stage"; done

# SRT: what libsrt (GStreamer's srtsink) sends a listener (GStreamer's
# srtsrc), recorded through a UDP relay: handshakes, media, keep-alives,
# acknowledgements of acknowledgements and the shutdown; in the clear and
# encrypted. Then the shapes srt-protocol panics on, each after a real
# handshake, which the gate must keep dropping.
python3 - "$c/srt" <<'PY'
import os, socket, struct, subprocess, sys, time
out = sys.argv[1]
def frame(mode, datagrams):
    return bytes([mode]) + b"".join(struct.pack(">H", len(d)) + d for d in datagrams)
def record(passphrase):
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    relay.settimeout(0.2)
    listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listen.bind(("127.0.0.1", 0))
    port = listen.getsockname()[1]
    listen.close()
    enc = f"&passphrase={passphrase}&pbkeylen=16" if passphrase else ""
    src = subprocess.Popen(["gst-launch-1.0", "-q", "srtsrc", f"uri=srt://127.0.0.1:{port}?mode=listener{enc}", "!", "fakesink"])
    time.sleep(1)
    sink = subprocess.Popen(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=10", "!", "video/x-raw,width=64,height=64,framerate=5/1",
        "!", "x264enc", "!", "mpegtsmux", "!", "srtsink", f"uri=srt://127.0.0.1:{relay.getsockname()[1]}?mode=caller{enc}"])
    caller, sent, deadline = None, [], time.time() + 8
    while time.time() < deadline and len(sent) < 40:
        try:
            data, addr = relay.recvfrom(65536)
        except socket.timeout:
            continue
        if addr[1] == port:
            relay.sendto(data, caller)
        else:
            caller = addr
            sent.append(data)
            relay.sendto(data, ("127.0.0.1", port))
    sink.kill(); src.kill()
    return sent
clear = record(None)
encrypted = record("fuzzing passphrase")
open(f"{out}/libsrt-session", "wb").write(frame(0, clear))
open(f"{out}/libsrt-session-encrypted", "wb").write(frame(1, encrypted))
def extension(datagram, kind):
    at = 16 + 48
    while at + 4 <= len(datagram):
        t, words = struct.unpack(">HH", datagram[at:at + 4])
        if t == kind:
            return datagram[at + 4:at + 4 + words * 4]
        at += 4 + words * 4
    raise SystemExit("libsrt sent no key material")
km = extension(encrypted[1], 3)
hs = struct.pack(">IIII", 0x80000000, 0, 0, 0)
def conclusion(key_field, blocks):
    cif = struct.pack(">IHHIIIiII", 5, key_field, 5, 1, 1500, 8192, -1, 77, 0) + bytes([127, 0, 0, 1]) + bytes(12)
    return hs + cif + b"".join(struct.pack(">HH", t, len(p) // 4) + p for t, p in blocks)
hsreq = bytes([0, 1, 4, 3, 0, 0, 0, 0x3f, 0, 0x78, 0, 0x78])
def control(kind, sub, body):
    return struct.pack(">HH", 0x8000 | kind, sub) + bytes(12) + body
panics = {
    "congestion-extension": (0, conclusion(0, [(1, hsreq), (6, b"live")])),
    "empty-stream-id": (0, conclusion(0, [(5, b""), (1, hsreq)])),
    "key-material-without-passphrase": (0, conclusion(0, [(1, hsreq), (3, km)])),
    "key-response-in-request": (1, conclusion(2, [(1, hsreq), (4, km)])),
    "congestion-warning": (0, control(4, 0, b"")),
    "peer-error": (0, control(8, 0, b"")),
    "srt-stream-id-control": (0, control(0x7FFF, 5, b"")),
    "unterminated-loss-list": (0, control(3, 0, bytes([0x80, 0, 0, 1]))),
}
for name, (mode, datagram) in panics.items():
    # A handshake replaces libsrt's conclusion; anything else follows it.
    before = clear[:1] if datagram[:2] == b"\x80\x00" else clear[:2]
    open(f"{out}/{name}", "wb").write(frame(mode, before + [datagram] + clear[2:6]))
PY

printf '#!::r=live/s,m=publish,k=key' >"$c/stream_ids/srt-acl"
printf 'live/s?key=k' >"$c/stream_ids/srt-plain"
printf 'live?key=k\ns' >"$c/stream_ids/rtmp-app-key"
printf 'live\nlive/s?key=k' >"$c/stream_ids/rtmp-name"
