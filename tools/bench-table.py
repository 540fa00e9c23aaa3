#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Markdown tables for BENCHMARKS.md from repeated benchmark runs.

Reads any number of `bnorm-bench --json` files (--bnorm) and of
`pytorch-bench.py --json` files (--pytorch), matches rows by shape, layout,
mode, threads and residual (--residual rows pair only with each other), and prints one table per mode with, for each number, the
median over the runs that have it, plus the spread of bnorm's % of roof
(min..max over runs):

  tools/bench-table.py --bnorm b1.json b2.json b3.json --pytorch p1.json p2.json p3.json
"""

import argparse
import json
import statistics
import sys


def load(paths):
    rows = []
    for path in paths:
        try:
            with open(path) as f:
                rows.extend(json.load(f))
        except (OSError, ValueError) as e:
            sys.exit(f"bench-table.py: cannot read '{path}': {e}")
    return rows


def key(row):
    # "residual" is there only in --residual runs.
    return (tuple(row["shape"]), row["layout"], row["mode"], row["threads"],
            row.get("residual", False))


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=3):
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def ratio(value):
    return "–" if value is None else f"{value:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bnorm", nargs="+", required=True, help="bnorm-bench --json files")
    parser.add_argument("--pytorch", nargs="*", default=[], help="pytorch-bench.py --json files")
    args = parser.parse_args()

    bnorm, torch = {}, {}
    order = []
    for row in load(args.bnorm):
        if key(row) not in bnorm:
            order.append(key(row))
        bnorm.setdefault(key(row), []).append(row)
    for row in load(args.pytorch):
        torch.setdefault(key(row), []).append(row["seconds"])

    for mode, residual, title, traffic in (
            ("inference", False, "Inference", "2"),
            ("inference", True, "Inference with a residual, relu(bn(x) + z)", "3"),
            ("training", False, "Training", "3"), ("backward", False, "Backward", "5")):
        keys = [k for k in order if k[2] == mode and k[4] == residual]
        if not keys:
            continue
        print(f"### {title} ({traffic} x bytes of x per value)\n")
        print("| shape (N,C,H,W) | layout | threads | bnorm ms | GB/s | roof GB/s | % roof "
              "(min..max) | oneDNN / bnorm | PyTorch / bnorm | × reference |")
        print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for k in keys:
            runs = bnorm[k]
            seconds = median([r["seconds"] for r in runs])
            pct = [r["pct_roof"] for r in runs]
            onednn = median([r.get("speedup_vs_onednn") for r in runs])
            torch_seconds = median(torch.get(k, []))
            speedup_ref = median([r.get("speedup_vs_reference") for r in runs])
            shape = "×".join(str(d) for d in k[0])
            print(f"| {shape} | {k[1]} | {k[3]} | {fmt(seconds * 1e3)} "
                  f"| {fmt(median([r['gbps'] for r in runs]))} "
                  f"| {fmt(median([r['roof_gbps'] for r in runs]))} "
                  f"| {median(pct):.0f}% ({min(pct):.0f}..{max(pct):.0f}) "
                  f"| {ratio(onednn)} "
                  f"| {ratio(torch_seconds / seconds if torch_seconds else None)} "
                  f"| {fmt(speedup_ref, 2)} |")
        print()


if __name__ == "__main__":
    main()
