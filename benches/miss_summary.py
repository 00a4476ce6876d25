#!/usr/bin/env python3
"""The table of benches/miss.sh: per workload and client, the medians over
rounds of requests/s, p99 and server CPU per request for headwater and nginx,
and headwater / nginx ratios (the median of the per-round ratios, with their
spread). Usage: miss_summary.py OUT (reads OUT/runs.txt)."""

import collections
import os
import statistics
import sys

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
out = sys.argv[1]
runs = collections.defaultdict(dict)  # (workload, client, round) -> who -> values
for line in open(os.path.join(out, "runs.txt")):
    w, client, who, rnd, reqs, rps, p99, ticks = line.split()
    reqs = int(reqs)
    runs[(w, client, rnd)][who] = {
        "rps": float(rps),
        "p99": float(p99),
        "cpu": int(ticks) * TICK_MS / reqs if reqs else float("nan"),
    }


def spread(values):
    return f"{statistics.median(values):.2f} ({min(values):.2f}..{max(values):.2f})"


print("| workload | client | headwater req/s | nginx req/s | req/s ratio | p99 ratio "
      "| CPU/req headwater | CPU/req nginx | CPU/req ratio |")
print("|---|---|---|---|---|---|---|---|---|")
groups = collections.defaultdict(list)
for (w, client, rnd), v in sorted(runs.items()):
    if "headwater" in v and "nginx" in v:
        groups[(w, client)].append(v)
for (w, client), rs in groups.items():
    med = lambda who, k: statistics.median(r[who][k] for r in rs)
    ratio = lambda k: spread([r["headwater"][k] / r["nginx"][k] for r in rs])
    print(f"| {w} | {client} | {med('headwater', 'rps'):,.0f} | {med('nginx', 'rps'):,.0f} "
          f"| {ratio('rps')} | {ratio('p99')} | {med('headwater', 'cpu'):.3f} ms "
          f"| {med('nginx', 'cpu'):.3f} ms | {ratio('cpu')} |")

memory = os.path.join(out, "memory.txt")
if os.path.exists(memory):
    facts = dict(line.split(None, 1) for line in open(memory) if line.strip())
    print()
    print(f"Layout {facts.get('layout', 'shared').strip()}; after the runs headwater's RSS "
          f"{int(facts['rss_kb']) // 1024} MB, shared memory grown by "
          f"{int(facts['shmem_kb']) // 1024} MB (kept segment copies).")
