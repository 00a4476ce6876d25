#!/usr/bin/python3
"""What GStreamer presents, and when: per track, the running time of the first
presented buffer and the encoded samples that reached the decoder.

    /usr/bin/python3 tests/av/gst_offsets.py MODE SOURCE... [options]

MODE
  file   filesrc ! qtdemux ! decodebin, one branch per SOURCE file (several
         files play in one pipeline, so their running times share a clock
         origin: a directory asset's video and audio files)
  hls    souphttpsrc ! hlsdemux ! decodebin on a multivariant playlist URL
         (fMP4 or MPEG-TS media playlists, EXT-X-MEDIA audio included)
  dash   souphttpsrc ! dashdemux ! decodebin on an MPD URL

Every decoded pad goes to queue ! fakesink sync=false. Needs Debian's
python3-gi and gir1.2-gstreamer-1.0 (run it with /usr/bin/python3, not a
virtualenv's python).

Prints ONE JSON object on stdout (also on errors and timeouts):

  {"mode": ..., "sources": [...], "gstreamer": "1.22.0", "stopped": "eos"|"seconds"|"timeout",
   "errors": [...], "warnings": [...], "elements": ["avdec_aac", "hlsdemux", ...],
   "tracks": [{"kind": "video"|"audio", "source": 0, "decoder": "avdec_h264",
               "codec": "video/x-h264", "sizes": [[320, 180]],  # decoded sizes seen
               "first": 0.08,        # running time (s) of the first presented buffer
               "first_end": 0.12,    # ... and of its end
               "last_end": 3.2,      # end of the last presented buffer
               "presented": 78, "eos": false,
               "segment": {...},     # first segment seen by the sink
               "encoded": {"count": 80, "end": 3.24,   # end of the latest encoded sample
                           "packets": [[rt, size, duration, key, hash, tail], ...]}}]}

"Presented" means decoded and not clipped: the buffer reached the sink and
overlaps the segment (decoders clip to the segment; an audio buffer that
straddles the segment start arrives already cut to it, a straddling video
frame keeps its own timestamp, which may be negative). Running times are
seconds, negative when a timestamp lies before the segment start.

"packets" are the encoded buffers at the decoder's sink pad in arrival
(decode) order: running time of the PTS (null if none), size in bytes,
duration, keyframe flag, the first 12 hex digits of the buffer's MD5, and
the 64-bit FNV-1a hash (16 hex digits) of its last 64 bytes, trailing zero
bytes left out. The tail survives repackaging that changes the head of an
access unit (MPEG-TS: ADTS headers on AAC, start codes and access unit
delimiters on H.264 and HEVC, a parser inserting parameter sets) or pads
its end with zeros (a 4-byte start code split by a parser), so samples
can be matched to the source's by their bytes.

Options
  --seconds S    stop once every expected track has presented S seconds of
                 media (default 4 for hls/dash; 0 = play to EOS, the default
                 for file)
  --timeout T    wall-clock limit in seconds (default 40; a pipeline that
                 will not even stop is abandoned 10 s later)
  --packets N    keep the first N encoded packets per track (default 60 for
                 hls/dash, 0 = all, the default for file)
  --height H     pick the video variant/representation whose height is H
                 (hls: the variant's RESOLUTION sets connection-speed;
                 dash: max-video-height, but dashdemux still starts on the
                 first representation and switches at the next segment)
  --expect KINDS tracks that must appear before --seconds can stop the run:
                 "av" (default), "v" or "a"
  --demuxer v2   hls/dash through uridecodebin3 (hlsdemux2/dashdemux2)
                 instead of the legacy elements
"""

import argparse
import hashlib
import json
import os
import re
import sys
import threading
import urllib.request

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

Gst.init(None)
NS = 1_000_000_000
TIME = Gst.Format.TIME
NONE = Gst.CLOCK_TIME_NONE
INTERESTING = re.compile(r"demux|dec|parse", re.I)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["file", "hls", "dash"])
    p.add_argument("sources", nargs="+")
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--timeout", type=float, default=40.0)
    p.add_argument("--packets", type=int, default=None)
    p.add_argument("--height", type=int, default=0)
    p.add_argument("--expect", default="av", choices=["av", "v", "a"])
    p.add_argument("--demuxer", default="legacy", choices=["legacy", "v2"])
    a = p.parse_args()
    if a.mode != "file" and len(a.sources) != 1:
        p.error(f"{a.mode} takes one URL")
    if a.seconds is None:
        a.seconds = 0.0 if a.mode == "file" else 4.0
    if a.packets is None:
        a.packets = 0 if a.mode == "file" else 60
    return a


ARGS = parse_args()
OUT = {
    "mode": ARGS.mode,
    "sources": ARGS.sources,
    "gstreamer": Gst.version_string().split()[-1],
    "stopped": None,
    "errors": [],
    "warnings": [],
    "elements": [],
    "tracks": [],
}
LOCK = threading.RLock()
TRACKS = {}  # (branch, kind) -> track record
BRANCH_SOURCE = {}  # branch element name -> index of its source
# File mode: audio and video streams the demuxers exposed. The pipeline's
# EOS message only says every sink present then has ended; a stream whose
# decoder exposes its pad late (seen under load with several files) adds
# its sink afterwards, so the run ends when this many tracks have ended.
DEMUXED = [0]
LOOP = GLib.MainLoop()
PRINTED = threading.Event()


def fnv64(data):
    """FNV-1a, 64 bits, as 16 hex digits (testkit's av.rs computes the same)."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def secs(ns):
    return None if ns is None else round(ns / NS, 9)


def running_time(seg, ts):
    """Signed running time in ns of timestamp ts in segment seg, or None."""
    if seg is None or ts == NONE:
        return None
    sign, rt = seg.to_running_time_full(TIME, ts)
    if sign == 0:
        return None
    return rt if sign > 0 else -rt


def seg_dict(seg):
    f = lambda v: None if v in (NONE, -1) or v >= 2**63 else secs(v)  # noqa: E731
    return {"start": f(seg.start), "stop": f(seg.stop), "time": f(seg.time), "base": f(seg.base), "rate": seg.rate}


def track(branch, kind):
    with LOCK:
        key = (branch, kind)
        t = TRACKS.get(key)
        if t is None:
            t = {
                "kind": kind,
                "source": BRANCH_SOURCE.get(branch, 0),
                "branch": branch,
                "decoder": None,
                "codec": None,
                "sizes": [],
                "first": None,
                "first_end": None,
                "last_end": None,
                "presented": 0,
                "eos": False,
                "segment": None,
                "encoded": {"count": 0, "end": None, "packets": []},
                "_sink_seg": None,
                "_dec_seg": None,
                "_end_ns": None,
            }
            TRACKS[key] = t
        return t


def branch_of(element):
    """Name of the branch root (our decodebin / uridecodebin3) that holds element."""
    e = element
    while e is not None:
        if e.get_name() in BRANCH_SOURCE:
            return e.get_name()
        e = e.get_parent()
    return None


# ------------------------------------------------------------------ probes


def on_decoder_sink(pad, info, t):
    if info.type & Gst.PadProbeType.EVENT_DOWNSTREAM:
        ev = info.get_event()
        if ev.type == Gst.EventType.SEGMENT:
            t["_dec_seg"] = ev.parse_segment()
        elif ev.type == Gst.EventType.CAPS and t["codec"] is None:
            t["codec"] = ev.parse_caps().get_structure(0).get_name()
        return Gst.PadProbeReturn.OK
    buf = info.get_buffer()
    rt = running_time(t["_dec_seg"], buf.pts)
    dur = None if buf.duration == NONE else buf.duration
    enc = t["encoded"]
    enc["count"] += 1
    if rt is not None:
        end = rt + (dur or 0)
        if t["_end_ns"] is None or end > t["_end_ns"]:
            t["_end_ns"] = end
            enc["end"] = secs(end)
    if ARGS.packets == 0 or len(enc["packets"]) < ARGS.packets:
        ok, m = buf.map(Gst.MapFlags.READ)
        data = bytes(m.data) if ok else b""
        if ok:
            buf.unmap(m)
        enc["packets"].append([
            secs(rt),
            buf.get_size(),
            secs(dur),
            not buf.has_flags(Gst.BufferFlags.DELTA_UNIT),
            hashlib.md5(data).hexdigest()[:12],
            fnv64(data.rstrip(b"\0")[-64:]),
        ])
    return Gst.PadProbeReturn.OK


def on_sink(pad, info, t):
    if info.type & Gst.PadProbeType.EVENT_DOWNSTREAM:
        ev = info.get_event()
        if ev.type == Gst.EventType.SEGMENT:
            seg = ev.parse_segment()
            t["_sink_seg"] = seg
            if t["segment"] is None:
                t["segment"] = seg_dict(seg)
        elif ev.type == Gst.EventType.EOS:
            t["eos"] = True
            GLib.idle_add(check_done)
        elif ev.type == Gst.EventType.CAPS:
            s = ev.parse_caps().get_structure(0)
            if s.has_field("width"):
                size = [s.get_value("width"), s.get_value("height")]
                if size not in t["sizes"]:
                    t["sizes"].append(size)
        return Gst.PadProbeReturn.OK
    buf = info.get_buffer()
    seg = t["_sink_seg"]
    if seg is None or buf.pts == NONE:
        return Gst.PadProbeReturn.OK
    dur = 0 if buf.duration == NONE else buf.duration
    # Presented = overlaps the segment (decoders already dropped or clipped the rest).
    if seg.stop not in (NONE, -1) and buf.pts >= seg.stop:
        return Gst.PadProbeReturn.OK
    if dur and buf.pts + dur <= seg.start:
        return Gst.PadProbeReturn.OK
    rt = running_time(seg, buf.pts)
    if rt is None:
        return Gst.PadProbeReturn.OK
    t["presented"] += 1
    if t["first"] is None:
        t["first"] = secs(rt)
        t["first_end"] = secs(rt + dur)
    t["last_end"] = secs(rt + dur)
    if ARGS.seconds > 0 and (rt + dur) / NS - t["first"] >= ARGS.seconds:
        GLib.idle_add(check_done)
    return Gst.PadProbeReturn.OK


def check_done():
    with LOCK:
        tracks = list(TRACKS.values())
        kinds = {t["kind"] for t in tracks if t["first"] is not None or t["eos"]}
        if not all(k in kinds for k in {"av": ("video", "audio"), "v": ("video",), "a": ("audio",)}[ARGS.expect]):
            if not (tracks and all(t["eos"] for t in tracks)):
                return False
        if ARGS.mode == "file" and sum(1 for t in tracks if t["eos"]) < DEMUXED[0]:
            return False
        done = True
        for t in tracks:
            if t["eos"]:
                continue
            if ARGS.seconds <= 0 or t["first"] is None or t["last_end"] - t["first"] < ARGS.seconds:
                done = False
        if done:
            stop("eos" if all(t["eos"] for t in tracks) else "seconds")
    return False


def stop(reason):
    if OUT["stopped"] is None:
        OUT["stopped"] = reason
    LOOP.quit()


# ------------------------------------------------------------------ pipeline

PIPE = Gst.Pipeline.new("av-offsets")


def add_sink(pad, t):
    q = Gst.ElementFactory.make("queue")
    q.set_property("max-size-buffers", 0)
    q.set_property("max-size-bytes", 0)
    q.set_property("max-size-time", 0)
    sink = Gst.ElementFactory.make("fakesink")
    sink.set_property("sync", False)
    sink.set_property("async", False)
    for e in (q, sink):
        PIPE.add(e)
    q.link(sink)
    for e in (q, sink):
        e.sync_state_with_parent()
    if t is not None:
        sink.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM, on_sink, t)
    pad.link(q.get_static_pad("sink"))


def kind_of(pad):
    caps = pad.get_current_caps() or pad.query_caps(None)
    name = caps.get_structure(0).get_name() if caps and caps.get_size() else ""
    return "video" if name.startswith("video/") else "audio" if name.startswith("audio/") else None


def on_decoded_pad(element, pad):
    branch = branch_of(element) or element.get_name()
    kind = kind_of(pad)
    add_sink(pad, track(branch, kind) if kind else None)


def on_demuxed_pad(element, pad):
    caps = pad.get_current_caps() or pad.query_caps(None)
    name = caps.get_structure(0).get_name() if caps and caps.get_size() else ""
    if ARGS.mode == "file" and not (name.startswith("video/") or name.startswith("audio/")):
        add_sink(pad, None)  # subtitles, timecodes: not measured, but linked
        return
    db = Gst.ElementFactory.make("decodebin")
    with LOCK:
        BRANCH_SOURCE[db.get_name()] = BRANCH_SOURCE.get(element.get_name(), 0)
        DEMUXED[0] += 1
    db.connect("pad-added", on_decoded_pad)
    # A queue per demuxed stream: qtdemux pushes all its streams from one
    # thread, and a decoder that holds frames back (avdec_h265) must not
    # starve the others.
    q = Gst.ElementFactory.make("queue")
    PIPE.add(q)
    PIPE.add(db)
    q.link(db)
    db.sync_state_with_parent()
    q.sync_state_with_parent()
    pad.link(q.get_static_pad("sink"))


def on_deep_element_added(_bin, _sub, element):
    f = element.get_factory()
    if f is None:
        return
    name = f.get_name()
    klass = f.get_metadata("klass") or ""
    if INTERESTING.search(name) and name not in OUT["elements"]:
        OUT["elements"].append(name)
    if name in ("hlsdemux2", "dashdemux2"):
        configure_demuxer(element)
    if "Decoder" in klass and ("Video" in klass or "Audio" in klass):
        branch = branch_of(element)
        if branch is None:
            return
        t = track(branch, "video" if "Video" in klass else "audio")
        t["decoder"] = name
        element.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM, on_decoder_sink, t)


def hls_variant_kbps(url, height):
    """connection-speed (kbit/s) that makes hlsdemux pick the variant of this height."""
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode("utf-8", "replace")
    for line in text.splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            bw = re.search(r"[:,]BANDWIDTH=(\d+)", line)
            res = re.search(r"RESOLUTION=\d+x(\d+)", line)
            if bw and res and int(res.group(1)) == height:
                return int(bw.group(1)) // 1000 + 1
    raise SystemExit(f"no variant of height {height} in {url}")


def configure_demuxer(demux):
    if ARGS.height:
        if ARGS.mode == "hls":
            demux.set_property("connection-speed", hls_variant_kbps(ARGS.sources[0], ARGS.height))
            demux.set_property("bitrate-limit", 1.0)
        else:
            demux.set_property("max-video-height", ARGS.height)
            demux.set_property("connection-speed", 4_000_000)
    elif ARGS.mode in ("hls", "dash"):
        # Loopback is fast; a fixed speed keeps the first choice (and the run) deterministic.
        demux.set_property("connection-speed", 4_000_000)


def build():
    PIPE.connect("deep-element-added", on_deep_element_added)
    if ARGS.mode == "file":
        for i, path in enumerate(ARGS.sources):
            if not os.path.isfile(path):
                raise SystemExit(f"no such file: {path}")
            src = Gst.ElementFactory.make("filesrc")
            src.set_property("location", path)
            demux = Gst.ElementFactory.make("qtdemux", f"qtdemux{i}")
            BRANCH_SOURCE[demux.get_name()] = i
            PIPE.add(src)
            PIPE.add(demux)
            src.link(demux)
            demux.connect("pad-added", on_demuxed_pad)
        return
    url = ARGS.sources[0]
    if ARGS.demuxer == "v2":
        udb = Gst.ElementFactory.make("uridecodebin3", "udb3")
        udb.set_property("uri", url)
        BRANCH_SOURCE[udb.get_name()] = 0
        udb.connect("pad-added", on_decoded_pad)
        PIPE.add(udb)
        return
    src = Gst.ElementFactory.make("souphttpsrc")
    src.set_property("location", url)
    demux = Gst.ElementFactory.make("hlsdemux" if ARGS.mode == "hls" else "dashdemux", "demux")
    configure_demuxer(demux)
    BRANCH_SOURCE[demux.get_name()] = 0
    PIPE.add(src)
    PIPE.add(demux)
    src.link(demux)
    demux.connect("pad-added", on_demuxed_pad)


def on_message(_bus, msg):
    if msg.type == Gst.MessageType.EOS:
        if ARGS.mode == "file":
            # Each track's own EOS ends the run (check_done), late ones too.
            GLib.idle_add(check_done)
            return
        for t in TRACKS.values():
            t["eos"] = True
        stop("eos")
    elif msg.type == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        OUT["errors"].append(f"{msg.src.get_name()}: {err.message}")
        stop("error")
    elif msg.type == Gst.MessageType.WARNING:
        err, _ = msg.parse_warning()
        if len(OUT["warnings"]) < 10:
            OUT["warnings"].append(f"{msg.src.get_name()}: {err.message}")


def emit():
    if PRINTED.is_set():
        return
    PRINTED.set()
    with LOCK:
        tracks = sorted(TRACKS.values(), key=lambda t: (t["kind"] != "video", t["source"], t["branch"]))
        OUT["tracks"] = [{k: v for k, v in t.items() if not k.startswith("_") and k != "branch"} for t in tracks]
        sys.stdout.write(json.dumps(OUT) + "\n")
        sys.stdout.flush()


def hard_timeout():
    # The main loop is stuck (a state change that never returns): report what
    # we have and leave without tearing the pipeline down.
    OUT["errors"].append(f"hard timeout after {ARGS.timeout + 10:.0f} s")
    OUT["stopped"] = OUT["stopped"] or "timeout"
    emit()
    os._exit(3)


def main():
    try:
        build()
    except SystemExit as e:
        OUT["errors"].append(str(e))
        emit()
        return 2
    bus = PIPE.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.timeout_add(int(ARGS.timeout * 1000), lambda: (OUT["errors"].append(f"timeout after {ARGS.timeout:.0f} s"), stop("timeout")))
    watchdog = threading.Timer(ARGS.timeout + 10, hard_timeout)
    watchdog.daemon = True
    watchdog.start()
    if PIPE.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        OUT["errors"].append("pipeline refused to play")
        OUT["stopped"] = "error"
    else:
        LOOP.run()
    PIPE.set_state(Gst.State.NULL)
    watchdog.cancel()
    emit()
    return 0 if OUT["stopped"] in ("eos", "seconds") and not OUT["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
