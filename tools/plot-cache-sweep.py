#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Plots bnorm-bench's cache sweep: % of the copy roof against working-set bytes.

Reads `bnorm-bench --sweep cache --json` files (with --compare onednn, oneDNN's
columns too) and, optionally, `tools/pytorch-bench.py --json` files of the same
cases (--pytorch; run it on `bnorm-bench --sweep cache --list-cases`), and writes
one PNG: a panel per layout, mode and thread count, the working set (x and y
bytes) on a log axis with the core's L2 and last-level cache marked, one line
per library and channel count. Several files of a kind are rounds: each point
is their median.

bnorm's points are its own % of roof. oneDNN and PyTorch are put on the same
scale: bnorm's % of roof times bnorm's time over theirs, i.e. bnorm's traffic
and bnorm's roof for the same case (pytorch-bench measures no roof of its own;
oneDNN is timed in turns with that roof, PyTorch in its own process).

  /usr/bin/python3 tools/plot-cache-sweep.py sweep.json --pytorch sweep-torch.json -o sweep.png

Needs Debian's python3-matplotlib (the Agg backend: no display).
"""

import argparse
import json
import statistics
import sys

MODES = ("inference", "training", "backward")
LAYOUTS = ("nhwc", "nchw")
# One colour and line style per library, one marker per channel count.
LIBRARIES = (("bnorm", "tab:blue", "-"), ("oneDNN", "tab:orange", "--"),
             ("PyTorch", "tab:green", ":"))
MARKERS = ("o", "s", "^", "D", "v", "P")
SWEEP_KEYS = ("shape", "layout", "mode", "threads", "seconds", "pct_roof", "working_set_bytes",
              "l2_bytes", "llc_bytes", "size_label")


def fail(message):
    sys.exit(f"plot-cache-sweep.py: {message}")


def load(path, what):
    """The rows of one JSON array of objects, or a clear exit."""
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
    except OSError as e:
        fail(f"cannot read '{path}': {e.strerror}")
    except ValueError as e:
        fail(f"'{path}' is not JSON ({e}); expected the output of {what} --json")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        fail(f"'{path}' is not a JSON array of objects; expected the output of {what} --json")
    return rows


def key(row):
    return (tuple(row["shape"]), row["layout"], row["mode"], row["threads"])


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def sweep_rows(paths, target):
    """bnorm's sweep rows of one target, grouped by case, mode and threads."""
    rows = []
    for path in paths:
        for number, row in enumerate(load(path, "bnorm-bench --sweep cache"), 1):
            if row.get("sweep") != "cache":
                continue
            missing = [k for k in SWEEP_KEYS if k not in row]
            if missing:
                fail(f"'{path}': row {number} lacks {', '.join(missing)}; expected the output of "
                     "bnorm-bench --sweep cache --json")
            rows.append(row)
    if not rows:
        fail(f"{', '.join(repr(p) for p in paths)} holds no rows of bnorm-bench --sweep cache")
    targets = list(dict.fromkeys(row.get("target") for row in rows))
    target = target or targets[0]
    if target not in targets:
        fail(f"--target {target}: the sweep ran {', '.join(map(str, targets))}")
    grouped = {}
    for row in rows:
        if row.get("target") == target:
            grouped.setdefault(key(row), []).append(row)
    return grouped, target, len(targets) > 1


def pytorch_seconds(paths, dtype):
    """PyTorch's median seconds per case, mode and threads, in bnorm's dtype only."""
    seconds = {}
    for path in paths:
        for number, row in enumerate(load(path, "tools/pytorch-bench.py"), 1):
            if not all(k in row for k in ("shape", "layout", "mode", "threads", "seconds")):
                fail(f"'{path}': row {number} is not a pytorch-bench.py --json row")
            if row.get("dtype", "f32") == dtype:
                seconds.setdefault(key(row), []).append(row["seconds"])
    return {k: median(v) for k, v in seconds.items()}


def points(grouped, torch):
    """Per (layout, mode, threads) panel and library and C: [(working set, % roof)]."""
    panels = {}
    for k, runs in grouped.items():
        shape, layout, mode, threads = k
        seconds = median([r["seconds"] for r in runs])
        pct = median([r["pct_roof"] for r in runs])
        if not seconds or pct is None:
            continue
        onednn = median([r.get("onednn_seconds") for r in runs])
        values = {"bnorm": pct,
                  "oneDNN": pct * seconds / onednn if onednn else None,
                  "PyTorch": pct * seconds / torch[k] if torch.get(k) else None}
        lines = panels.setdefault((layout, mode, threads), {})
        for library, value in values.items():
            if value is not None:
                lines.setdefault((library, shape[1]), []).append(
                    (runs[0]["working_set_bytes"], value))
    return panels


def byte_label(value, _=None):
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if value >= size:
            return f"{value / size:g} {unit}iB"
    return f"{value:g} B"


def plot(args, grouped, target, several_targets, torch):
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
        from matplotlib.lines import Line2D  # pylint: disable=import-outside-toplevel
        from matplotlib.ticker import FuncFormatter  # pylint: disable=import-outside-toplevel
    except ImportError:
        fail("matplotlib is not installed; install Debian's python3-matplotlib "
             "(apt-get install python3-matplotlib) and run this with /usr/bin/python3")

    panels = points(grouped, torch)
    first = next(iter(grouped.values()))[0]
    l2, llc = first["l2_bytes"], first["llc_bytes"]
    dtype = first.get("dtype", "f32")
    rows = sorted({(mode, threads) for _, mode, threads in panels},
                  key=lambda r: (MODES.index(r[0]) if r[0] in MODES else len(MODES), r[1]))
    layouts = [l for l in LAYOUTS if any(p[0] == l for p in panels)]
    channels = sorted({c for lines in panels.values() for _, c in lines})
    libraries = [lib for lib in LIBRARIES
                 if any(name == lib[0] for lines in panels.values() for name, _ in lines)]

    top = max([105.0] + [1.05 * y for lines in panels.values() for xy in lines.values()
                         for _, y in xy])
    fig, axes = plt.subplots(len(rows), len(layouts), squeeze=False, sharex=True, sharey=True,
                             figsize=(6.0 * len(layouts), 3.4 * len(rows) + 1.4))
    for i, (mode, threads) in enumerate(rows):
        for j, layout in enumerate(layouts):
            ax = axes[i][j]
            for (library, c), xy in sorted(panels.get((layout, mode, threads), {}).items()):
                colour, style = next((col, sty) for name, col, sty in LIBRARIES if name == library)
                xy.sort()
                ax.plot([x for x, _ in xy], [y for _, y in xy], color=colour, linestyle=style,
                        marker=MARKERS[channels.index(c) % len(MARKERS)], markersize=4)
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(FuncFormatter(byte_label))
            for bytes_, name in ((l2, "L2"), (llc, "LLC")):
                ax.axvline(bytes_, color="grey", linewidth=0.8)
                ax.text(bytes_, 1.0, f" {name}", transform=ax.get_xaxis_transform(),
                        va="top", ha="left", fontsize=8, color="grey")
            ax.axhline(100.0, color="black", linewidth=0.5)
            ax.set_ylim(0.0, top)
            ax.grid(True, which="major", linewidth=0.3)
            ax.set_title(f"{layout} {mode}, {threads} thread{'s' if threads > 1 else ''}",
                         fontsize=10)
            if j == 0:
                ax.set_ylabel("% of copy roof")
            if i == len(rows) - 1:
                ax.set_xlabel("working set (x and y bytes)")

    handles = [Line2D([], [], color=col, linestyle=sty, label=name) for name, col, sty in libraries]
    handles += [Line2D([], [], color="black", linestyle="none",
                       marker=MARKERS[k % len(MARKERS)], label=f"C = {c}")
                for k, c in enumerate(channels)]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
               fontsize=9, frameon=False)
    title = f"bnorm-bench --sweep cache, {dtype}"
    if several_targets:
        title += f", target {target}"
    title += f" (L2 {byte_label(l2)}, LLC {byte_label(llc)})"
    peers = [name for name, _, _ in libraries if name != "bnorm"]
    if peers:
        title += (f"\n{' and '.join(peers)}: bnorm's traffic over their time, against bnorm's "
                  "copy roof for the same case")
        if "PyTorch" in peers:
            title += " (pytorch-bench measures none)"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0.0, 0.04, 1.0, 0.96 if peers else 0.98))
    try:
        fig.savefig(args.output, dpi=args.dpi)
    except OSError as e:
        fail(f"cannot write '{args.output}': {e.strerror}")


def main():
    parser = argparse.ArgumentParser(
        prog="plot-cache-sweep.py", description=__doc__.split("\n\n")[0],
        epilog="/usr/bin/python3 tools/plot-cache-sweep.py sweep.json --pytorch sweep-torch.json "
        "-o sweep.png")
    parser.add_argument("bnorm", nargs="+", metavar="BNORM_JSON",
                        help="bnorm-bench --sweep cache --json output (several: rounds)")
    parser.add_argument("--pytorch", nargs="+", default=[], metavar="TORCH_JSON",
                        help="tools/pytorch-bench.py --json output on the sweep's --list-cases")
    parser.add_argument("-o", "--output", required=True, metavar="PNG", help="the image to write")
    parser.add_argument("--target", help="the SIMD target to plot when the sweep ran several "
                        "(default: the first)")
    parser.add_argument("--dpi", type=int, default=110, help="image resolution (default 110)")
    args = parser.parse_args()

    grouped, target, several_targets = sweep_rows(args.bnorm, args.target)
    dtype = next(iter(grouped.values()))[0].get("dtype", "f32")
    torch = pytorch_seconds(args.pytorch, dtype)
    if args.pytorch and not any(torch.get(k) for k in grouped):
        print(f"plot-cache-sweep.py: no row of {', '.join(args.pytorch)} matches a {dtype} case "
              "of the sweep (same shape, layout, mode, threads): no PyTorch lines",
              file=sys.stderr)
    plot(args, grouped, target, several_targets, torch)


if __name__ == "__main__":
    main()
