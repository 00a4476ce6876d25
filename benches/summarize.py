#!/usr/bin/env python3
"""Turns the results of benches/run.sh into the table of benches/README.md.

Usage: summarize.py RESULTS_DIR. Ratios are headwater / nginx (A / B), as
medians over every round of both passes, with the spread (min..max).
"""

import json
import os
import statistics
import sys

out = sys.argv[1]


def load(name):
    with open(os.path.join(out, name + ".json")) as f:
        return json.load(f)


def rounds(names, key):
    values = []
    for n in names:
        values += load(n)["ratios"][key]["rounds"]
    return values


def fmt(values):
    return f"{statistics.median(values):.2f} ({min(values):.2f}..{max(values):.2f}, {len(values)} rounds)"


def absolute(names, target, key):
    vals = [r[key] for n in names for r in load(n)["runs"] if r["target"] == target]
    return statistics.median(vals)


rows = []


def ratio_row(workload, target, base, key, good):
    names = [f"{base}-r1", f"{base}-r2"]
    values = rounds(names, key)
    med = statistics.median(values)
    if key == "requests_per_s":
        a, b = absolute(names, "a", "requests_per_s"), absolute(names, "b", "requests_per_s")
        detail = f"{a:,.0f} vs {b:,.0f} req/s"
    else:
        a = statistics.median(
            [r["latency_ms"]["p99"] for n in names for r in load(n)["runs"] if r["target"] == "a"])
        b = statistics.median(
            [r["latency_ms"]["p99"] for n in names for r in load(n)["runs"] if r["target"] == "b"])
        detail = f"p99 {a:.2f} vs {b:.2f} ms"
    rows.append((workload, target, fmt(values), detail, "met" if good(med) else "missed"))


ratio_row("fMP4 segments, 32 connections", "≥ 1.0", "segments-32", "requests_per_s", lambda m: m >= 1.0)
ratio_row("fMP4 segments, 256 connections", "≥ 1.0", "segments-256", "requests_per_s", lambda m: m >= 1.0)
ratio_row("fMP4 segment p99 latency, 256 connections", "≤ 1.0", "segments-256", "latency_p99", lambda m: m <= 1.0)
ratio_row("3-rendition ladder segments, 32 connections", "≥ 1.0", "ladder-32", "requests_per_s", lambda m: m >= 1.0)
ratio_row("MPEG-TS segments (muxed H.264+AAC), 32 connections", "≥ 0.5", "ts-32", "requests_per_s", lambda m: m >= 0.5)
ratio_row("media playlists of a 1-hour asset, warm", "≥ 1.0", "playlists-1h", "requests_per_s", lambda m: m >= 1.0)

# First request after a restart.
cold = {}
with open(os.path.join(out, "coldstart.txt")) as f:
    for line in f:
        who, path, secs = line.split()
        cold.setdefault((who, path), []).append(float(secs) * 1000)
master = statistics.median(cold[("headwater", "/vod/hour/hls/master.m3u8")])
media = statistics.median(cold[("headwater", "/vod/hour/hls/v1.m3u8")])
ngx = statistics.median(cold[("nginx", "/vod/hour/hls/v1.m3u8")])
rows.append(("first request of a 1-hour asset after a restart", "≤ 5 ms",
             f"{master:.2f} ms", f"then its media playlist {media:.2f} ms; nginx {ngx:.2f} ms; "
             f"median of {len(cold[('headwater', '/vod/hour/hls/master.m3u8')])} restarts",
             "met" if master <= 5 else "missed"))

# Memory.
rss = []
with open(os.path.join(out, "rss.txt")) as f:
    for line in f:
        k, v = line.split()
        rss.append((k, int(v)))
rssd = dict(rss)
idle = load("idle")["idle"]
rows.append(("10,000 idle keep-alive connections", "all open, RSS < 300 MB",
             f"{idle['open_at_end']} of {idle['connections']} open, peak RSS {rssd['idle_peak'] / 1024:.0f} MB",
             f"established in {idle['establish_s']:.2f} s",
             "met" if idle["open_at_end"] == idle["connections"] and rssd["idle_peak"] < 300 * 1024 else "missed"))
after = rssd["after-idle"] / 1024
p1, p2 = rssd["playlists-1h-r1"] / 1024, rssd["playlists-1h-r2"] / 1024
shm = rssd.get("shmem-after-idle", 0) / 1024
rows.append(("resident memory after all the runs", "< 100 MB, no growth",
             f"{after:.0f} MB", f"after pass 1 {p1:.0f} MB, after pass 2 {p2:.0f} MB; "
             f"plus {shm:.0f} MB of gathered segment payloads in shared memory",
             "met" if after < 100 and p2 <= p1 * 1.05 else "missed"))

# CPU per segment.
cpu = {"headwater": [], "nginx": []}
with open(os.path.join(out, "cpu.txt")) as f:
    for line in f:
        _, who, ticks, n = line.split()
        cpu[who].append(int(ticks) / int(n))
per = [h / n for h, n in zip(cpu["headwater"], cpu["nginx"])]
hz = os.sysconf("SC_CLK_TCK")
h_us = statistics.median(cpu["headwater"]) / hz * 1e6
n_us = statistics.median(cpu["nginx"]) / hz * 1e6
rows.append(("server CPU time per 1.5 MB segment (1 core)", "≤ 1.1",
             fmt(per), f"{h_us:.0f} vs {n_us:.0f} µs per request", "met" if statistics.median(per) <= 1.1 else "missed"))

scaling = load("scaling")["ratios"]["requests_per_s"]["rounds"]
rows.append(("scaling: --threads 1 / all cores (headwater only)", "report",
             fmt(scaling), f"{os.cpu_count()} cores", "-"))

mode = os.path.join(out, "segment-cache.txt")
if os.path.exists(mode):
    print(open(mode).read().strip() + " (headwater's gathered segments; benches/segment-cache.sh)\n")
print("| workload | target | headwater / nginx | absolute | |")
print("|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
