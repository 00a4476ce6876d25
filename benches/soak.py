#!/usr/bin/env python3
"""Soak: a mixed load on one headwater for a fixed time, sampled every
interval, with a verdict on whether it stayed flat.

The load, all on loopback:
  - VOD: `loadtest segments` (two assets, shuffled) and `loadtest manifests`
    for part of every interval, each interval's p99 and errors recorded;
  - live: three streams pushed by ffmpeg over RTMP, two LL-HLS viewers each
    following the live edge with blocking playlist reloads and part fetches;
  - control API: a ladder created and the previous one deleted twice a second.

Every interval: the server's RSS (and its shared part), open descriptors,
the VOD p99 and request count, and the errors of every client. At the end,
flat means: no error anywhere; RSS and descriptors after the warm-up (the
DVR windows full) grew by at most 10% + 16 MB and 32; the last interval's
VOD p99 within 3x the median after warm-up. Exit status 1 if not.

  benches/soak.py --minutes 60                       # the one-hour run
  benches/soak.py --minutes 10 --dvr 120 --bin target/debug/headwater \\
      --loadtest target/debug/loadtest               # CI's form

Needs the test media (tests/media/generate.sh target/test-media) and ffmpeg.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ADMIN = "soak-admin-token-0123456789abcdef"
KEY = "soak-publish-key-0123456789"
STREAMS = ["s1", "s2", "s3"]
VOD = ["bframes.mp4", "muxed.mp4"]


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--interval", type=float, default=60, help="seconds per sample")
    p.add_argument("--dvr", type=int, default=600, help="live DVR window, seconds")
    p.add_argument("--bin", default="target/release/headwater")
    p.add_argument("--loadtest", default="target/release/loadtest")
    p.add_argument("--media", default="target/test-media")
    p.add_argument("--out", default="target/soak")
    return p.parse_args()


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = 0
        self.last_error = None

    def add(self, ok, why=None):
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.errors += 1
                self.last_error = why

    def take(self):
        with self.lock:
            return self.ok, self.errors, self.last_error


def start_server(a, work):
    media = os.path.join(work, "media")
    os.makedirs(media)
    for f in VOD:
        shutil.copy(os.path.join(a.media, f), media)
    config = os.path.join(work, "headwater.toml")
    with open(config, "w") as f:
        f.write(f"[ingest]\ndvr_window_secs = {a.dvr}\n")
    cmd = [a.bin, "serve", "--config", config, "--media-root", media,
           "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
           "--rtmp-listen", "127.0.0.1:0", "--srt-listen", "off",
           "--admin-token", ADMIN, "--database", f"sqlite://{work}/catalog.db"]
    for s in STREAMS:
        cmd += ["--stream", f"{s}:{KEY}"]
    log = open(os.path.join(work, "headwater.log"), "w")
    env = dict(os.environ, RUST_LOG="info", NO_COLOR="1")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
    addrs = {}
    deadline = time.time() + 30
    while time.time() < deadline and len(addrs) < 3:
        text = open(os.path.join(work, "headwater.log")).read()
        for key, pat in [("data", r"serving listen=(\S+)"),
                         ("admin", r"admin API listening admin=(\S+)"),
                         ("rtmp", r"RTMP listening rtmp=(\S+)")]:
            m = re.search(pat, text)
            if m:
                addrs[key] = m.group(1)
        if proc.poll() is not None:
            sys.exit(f"soak: headwater exited: {text[-2000:]}")
        time.sleep(0.2)
    if len(addrs) < 3:
        sys.exit(f"soak: headwater did not come up: {addrs}")
    return proc, addrs


def push(rtmp, stream, seconds):
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds),
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
         "-g", "50", "-b:v", "300k", "-c:a", "aac", "-b:a", "64k",
         "-f", "flv", f"rtmp://{rtmp}/live/{stream}?key={KEY}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def next_part(playlist):
    """(msn, part) of the part after the last one listed, and its URI if hinted."""
    msn = None
    segments = 0
    parts = 0
    hint = None
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":")[1])
        elif line.startswith("#EXTINF:"):
            segments += 1
            parts = 0
        elif line.startswith("#EXT-X-PART:"):
            parts += 1
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            m = re.search(r'URI="([^"]+)"', line)
            hint = m.group(1) if m else None
    if msn is None:
        return None
    return msn + segments, parts, hint


def completed_parts(playlist):
    """{msn: number of parts} of the complete segments that list parts."""
    msn = None
    parts = 0
    done = {}
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":")[1])
        elif line.startswith("#EXT-X-PART:"):
            parts += 1
        elif line.startswith("#EXTINF:") and msn is not None:
            if parts:
                done[msn] = parts
            msn += 1
            parts = 0
    return done


def viewer(data, stream, until, counter):
    """An LL-HLS client at the live edge: a blocking reload for the next
    part, then that part, over one keep-alive connection."""
    host, port = data.rsplit(":", 1)
    conn = None
    base = f"/live/{stream}/hls/"
    media = None
    state = None
    while time.time() < until:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=15)
            if media is None:
                st, body = get(conn, base + "master.m3u8")
                if st == 404:
                    time.sleep(0.5)  # not on air yet
                    continue
                uris = [line for line in body.decode().splitlines()
                        if line and not line.startswith("#")]
                media = uris[0].split("?")[0]
            path = base + media
            if state:
                path += f"?_HLS_msn={state[0]}&_HLS_part={state[1]}"
            st, body = get(conn, path)
            if st != 200:
                counter.add(False, f"{stream} playlist {st}")
                state = None
                time.sleep(0.5)
                continue
            counter.add(True)
            state = next_part(body.decode())
            if state and state[2]:
                st, _ = get(conn, base + state[2])
                if st == 404:
                    # A hinted part that never came is right when its
                    # segment ended before it (a keyframe came early).
                    _, now = get(conn, path.split("?")[0])
                    done = completed_parts(now.decode()).get(state[0])
                    counter.add(done is not None and done <= state[1],
                                f"{stream} hinted part {state[:2]} 404 but its segment did not end before it")
                else:
                    counter.add(st == 200, f"{stream} part {st}")
        except (OSError, http.client.HTTPException) as e:
            counter.add(False, f"{stream}: {e}")
            conn = None
            time.sleep(0.5)


def api_writer(admin, until, counter):
    host, port = admin.rsplit(":", 1)
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    n = 0
    while time.time() < until:
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=15)
            body = json.dumps({"name": f"soak{n}", "frame_rate": 25, "keyframe_interval_secs": 2,
                               "rungs": [{"name": "a", "width": 320, "height": 180,
                                          "video_bitrate_kbps": 300}]})
            conn.request("POST", "/api/v1/ladders", body, headers)
            r = conn.getresponse()
            r.read()
            counter.add(r.status == 201, f"POST ladder {r.status}")
            if n > 0:
                conn.request("DELETE", f"/api/v1/ladders/soak{n - 1}", headers=headers)
                r = conn.getresponse()
                r.read()
                counter.add(r.status in (200, 204), f"DELETE ladder {r.status}")
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            counter.add(False, f"api: {e}")
        n += 1
        time.sleep(0.5)


def loadtest(a, mode, urls, seconds, conns):
    out = subprocess.run(
        [a.loadtest, mode, *urls, "-c", str(conns), "-d", f"{seconds}s", "--warmup", "0s",
         "--threads", "1", "--json", "-q", "--max-error-rate", "1"],
        capture_output=True, text=True)
    try:
        run = json.loads(out.stdout)["runs"][0]
        return run["ok"], run["failed"], run["latency_ms"]["p99"]
    except (ValueError, KeyError, IndexError):
        return 0, 1, None


def sample(pid):
    status = open(f"/proc/{pid}/status").read()
    kb = {k: int(v.split()[0]) for k, v in re.findall(r"^(VmRSS|RssShmem):\s+(.*)$", status, re.M)}
    return kb.get("VmRSS", 0) / 1024, kb.get("RssShmem", 0) / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def main():
    a = args()
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="soak-", dir=a.out)
    total = a.minutes * 60
    intervals = max(1, round(total / a.interval))
    server, addrs = start_server(a, work)
    until = time.time() + intervals * a.interval
    pushers = [push(addrs["rtmp"], s, int(intervals * a.interval + 30)) for s in STREAMS]
    live, api = Counter(), Counter()
    threads = [threading.Thread(target=viewer, args=(addrs["data"], s, until, live), daemon=True)
               for s in STREAMS for _ in range(2)]
    threads.append(threading.Thread(target=api_writer, args=(addrs["admin"], until, api), daemon=True))
    for t in threads:
        t.start()
    vod = [f"http://{addrs['data']}/vod/{f.rsplit('.', 1)[0]}/hls/master.m3u8" for f in VOD]
    rows = []
    print("interval  rss_mb  shmem_mb  fds  vod_req  vod_p99_ms  vod_err  live_req  live_err  api_req  api_err",
          flush=True)
    try:
        for i in range(1, intervals + 1):
            end = time.time() + a.interval
            busy = max(1, int(a.interval / 3))
            seg = loadtest(a, "segments", vod, busy, 4)
            man = loadtest(a, "manifests", vod[:1], max(1, busy // 2), 2)
            time.sleep(max(0, end - time.time()))
            if server.poll() is not None:
                sys.exit("soak: headwater exited during the run")
            rss, shm, fds = sample(server.pid)
            lok, lerr, lwhy = live.take()
            aok, aerr, awhy = api.take()
            row = {"interval": i, "rss_mb": round(rss, 1), "shmem_mb": round(shm, 1), "fds": fds,
                   "vod_requests": seg[0] + man[0], "vod_p99_ms": seg[2], "vod_errors": seg[1] + man[1],
                   "live_requests": lok, "live_errors": lerr, "api_requests": aok, "api_errors": aerr,
                   "why": lwhy or awhy}
            if rows:
                for k in ("live_requests", "live_errors", "api_requests", "api_errors"):
                    row[k] -= sum(r[k] for r in rows)
            rows.append(row)
            p99 = f"{row['vod_p99_ms']:.2f}" if row["vod_p99_ms"] is not None else "-"
            print(f"{i:8d}  {row['rss_mb']:6.1f}  {row['shmem_mb']:8.1f}  {fds:3d}  {row['vod_requests']:7d}  "
                  f"{p99:>10}  {row['vod_errors']:7d}  {row['live_requests']:8d}  {row['live_errors']:8d}  "
                  f"{row['api_requests']:7d}  {row['api_errors']:7d}", flush=True)
    finally:
        for p in pushers:
            p.send_signal(signal.SIGTERM)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        for p in pushers:
            p.wait(timeout=30)
    return verdict(a, rows)


def verdict(a, rows):
    warm = min(len(rows), max(2, -(-a.dvr // int(a.interval)) + 1))
    base, last = rows[warm - 1], rows[-1]
    after = [r["vod_p99_ms"] for r in rows[warm - 1:] if r["vod_p99_ms"] is not None]
    problems = []
    errors = sum(r["vod_errors"] + r["live_errors"] + r["api_errors"] for r in rows)
    if errors:
        why = [r["why"] for r in rows if r["why"]]
        problems.append(f"{errors} errors ({why[-1] if why else 'VOD'})")
    if last["rss_mb"] > base["rss_mb"] * 1.10 + 16:
        problems.append(f"RSS grew from {base['rss_mb']} MB (interval {warm}) to {last['rss_mb']} MB")
    if last["fds"] > base["fds"] + 32:
        problems.append(f"descriptors grew from {base['fds']} to {last['fds']}")
    if after and last["vod_p99_ms"] is not None and last["vod_p99_ms"] > 3 * statistics.median(after):
        problems.append(f"last p99 {last['vod_p99_ms']:.2f} ms above 3x the median {statistics.median(after):.2f} ms")
    if sum(r["live_requests"] for r in rows) == 0 or sum(r["api_requests"] for r in rows) == 0:
        problems.append("a client made no request")
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump({"minutes": a.minutes, "interval_s": a.interval, "dvr_s": a.dvr, "warm_interval": warm,
                   "rows": rows, "problems": problems}, f, indent=2)
    if problems:
        print("soak: NOT flat: " + "; ".join(problems))
        return 1
    print(f"soak: flat: no errors; RSS {base['rss_mb']} -> {last['rss_mb']} MB and descriptors "
          f"{base['fds']} -> {last['fds']} from interval {warm} to the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
