#!/usr/bin/env python3
"""Turns one `cargo bench -p tern-benches` run into the Markdown tables of BENCHMARKS.md.

Usage: cargo bench -p tern-benches 2>&1 | tee bench.log
       python3 benches/report.py bench.log [target/criterion]

Timing numbers come from criterion's own files (target/criterion/<group>/<name>/new/):
the slope estimate (what criterion prints as `time:`), with its 95% confidence interval,
and the throughput declared by the bench. Idle-memory numbers come from the table the
`idle_memory` bench prints into the log.
"""

import json
import os
import re
import sys

GROUPS = [
    ("tell_batched", "tell, batched (1,000 tells + 1 ask per iteration)", "messages/s"),
    ("tell_pingpong", "tell, forced task switch (ping-pong, 2 messages per round trip)", "messages/s"),
    ("ask", "ask round trip", None),
    ("fan_in", "fan-in (8 sender tasks x 1,000 tells, then 1 ask)", "messages/s"),
    ("ring", "ring (1,000 components, token 10 laps = 10,000 hops)", "hops/s"),
    ("spawn", "spawn (1,000 idle components + 1 ask to the last)", "components/s"),
]
ORDER = ["tern", "tern_try_tell", "tokio", "actix", "ractor", "kameo"]


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns"


def fmt_rate(per_s):
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M/s"
    return f"{per_s / 1e3:.0f} K/s"


def load(root, group, name):
    d = os.path.join(root, group, name, "new")
    try:
        est = json.load(open(os.path.join(d, "estimates.json")))
        meta = json.load(open(os.path.join(d, "benchmark.json")))
    except OSError:
        return None
    e = est.get("slope") or est["mean"]
    ci = e["confidence_interval"]
    elems = (meta.get("throughput") or {}).get("Elements", 1)
    return e["point_estimate"], ci["lower_bound"], ci["upper_bound"], elems


def timing_tables(root):
    out = []
    for group, title, unit in GROUPS:
        gdir = os.path.join(root, group)
        if not os.path.isdir(gdir):
            continue
        names = sorted(os.listdir(gdir), key=lambda n: ORDER.index(n) if n in ORDER else 99)
        rows = {n: load(root, group, n) for n in names}
        rows = {n: r for n, r in rows.items() if r}
        tern = rows.get("tern")
        out.append(f"### {group}: {title}\n")
        if unit:
            out.append(f"| framework | time / iteration [95% CI] | {unit} | tern ÷ this (rate) |")
        else:
            out.append("| framework | time / ask [95% CI] | asks/s | tern ÷ this (time) |")
        out.append("|---|---|---|---|")
        for n, (t, lo, hi, elems) in rows.items():
            rate = elems / (t * 1e-9)
            if unit:
                ratio = (t / tern[0]) if tern else float("nan")  # tern rate / this rate
            else:
                ratio = (tern[0] / t) if tern else float("nan")  # tern time / this time
            ratio_s = "—" if n == "tern" else f"{ratio:.2f}x"
            out.append(
                f"| {n} | {fmt_time(t)} [{fmt_time(lo)} – {fmt_time(hi)}] | {fmt_rate(rate)} | {ratio_s} |"
            )
        out.append("")
    return out


def memory_table(log):
    lines = open(log, encoding="utf-8", errors="replace").read().splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("framework bytes/component"):
            rows = []
            for row in lines[i + 1 :]:
                m = re.match(r"^(\w+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(.*)$", row)
                if not m:
                    break
                rows.append(m.groups())
            tern = next((float(r[1]) for r in rows if r[0] == "tern"), None)
            out.append("| framework | heap bytes / idle component | allocations / component | handle size (bytes) | tern ÷ this | biggest live allocations per component |")
            out.append("|---|---|---|---|---|---|")
            for name, per, allocs, _kib, handle, top in rows:
                ratio = "—" if name == "tern" or not tern else f"{tern / float(per):.2f}x"
                out.append(f"| {name} | {float(per):.0f} | {allocs} | {handle} | {ratio} | {top} |")
            out.append("")
            break
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    log = sys.argv[1]
    root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion"
    )
    print("\n".join(timing_tables(root)))
    print("### idle_memory: heap bytes per idle component (10,000 spawned)\n")
    print("\n".join(memory_table(log)))


if __name__ == "__main__":
    main()
