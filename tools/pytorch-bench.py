#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PyTorch's batch normalization on bnorm-bench's cases, for comparison.

Times torch.nn.functional.batch_norm (CPU, float32) with the same shapes,
layouts, modes and thread counts as bnorm-bench and prints comparable rows:
median seconds per call and GB/s on the same minimum traffic (inference reads
x and writes y, 8 bytes/value; training reads x twice and writes y, 12
bytes/value; backward reads x and dy twice and writes dx, 20 bytes/value).
Layout nhwc uses PyTorch's channels_last memory format.

The backward is what autograd calls per layer:
torch.ops.aten.native_batch_norm_backward (dx, dweight and dbias) with the
save_mean and save_invstd of one torch.ops.aten.native_batch_norm training
call made at set-up, and dy seeded random data in x's memory format.

With --residual (bnorm-bench --residual's peer) the inference is what an
engine runs for "batch norm, add, ReLU" without a fused kernel:
torch.nn.functional.batch_norm, then add_(z) and relu_() in place on its
output, z seeded random data in x's memory format; its traffic is counted as
bnorm-bench counts it, x and z read and y written (12 bytes/value). Training
and backward rows are unchanged. Every row then carries residual (true on
the inference rows).

With --bnorm-json FILE (the output of `bnorm-bench --json`) each row also shows
bnorm's time and the ratio pytorch_seconds / bnorm_seconds (> 1: bnorm is
faster); rows match on shape, layout, mode, threads and residual, so a
residual row pairs only with bnorm-bench --residual's.

bnorm-bench's generated cases run here through their list: `bnorm-bench
--sweep cache --list-cases > sweep.txt`, then `--shapes-file sweep.txt` (the
sweep's sizes are in bnorm-bench's --dtype; PyTorch runs them in float32, so
list them with the default f32 to compare). tools/plot-cache-sweep.py reads
this script's --json beside bnorm-bench's.

PyTorch is optional: Debian's python3-torch (1.13) is enough. Without it this
script says so and exits with status 1.
"""

import argparse
import json
import os
import statistics
import sys
import time

DEFAULT_SHAPE = (32, 256, 56, 56)
EPSILON = 1e-3
KERAS_MOMENTUM = 0.99


def parse_shape(text):
    parts = text.replace("x", ",").split(",")
    shape = []
    for part in parts:
        try:
            size = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' has a size '{part}' that is not an integer") from None
        if size <= 0:
            raise argparse.ArgumentTypeError(
                f"'{text}' has a size of {size}; every size must be >= 1")
        shape.append(size)
    return tuple(shape)


def positive_int(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is too small; expected >= 1")
    return n


def parse_threads(text):
    return [positive_int(part) for part in text.split(",")]


def seconds(text):
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not s >= 0.0:
        raise argparse.ArgumentTypeError(f"'{text}' is negative; expected seconds >= 0")
    return s


def layout_label(shape, layout):
    return "nc" if len(shape) == 2 else layout


def read_shapes_file(parser, path, default_layout):
    """(shape, layout) per line; lines with axis=... are bnorm-only and skipped."""
    cases = []
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        parser.error(f"argument --shapes-file: cannot open '{path}': {e.strerror}")
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"argument --shapes-file: {path}:{number}"
        try:
            shape = parse_shape(words[0])
        except argparse.ArgumentTypeError as e:
            parser.error(f"{where}: {e}")
        layout = default_layout
        if len(words) > 2:
            parser.error(f"{where}: unexpected '{words[2]}' after the layout")
        if len(words) == 2:
            if words[1].startswith("axis="):
                print(f"pytorch-bench: {path}:{number}: skipping {words[0]} {words[1]} "
                      "(only nhwc/nchw layouts compare with PyTorch)", file=sys.stderr)
                continue
            if words[1] not in ("nhwc", "nchw"):
                parser.error(f"{where}: unknown layout '{words[1]}'; expected nhwc or nchw")
            layout = words[1]
        cases.append((shape, layout))
    if not cases:
        parser.error(f"argument --shapes-file: '{path}' holds no shapes")
    return cases


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="pytorch-bench",
        description="Times torch.nn.functional.batch_norm on bnorm-bench's cases.")
    parser.add_argument("--shape", type=parse_shape, action="append", default=[],
                        help="logical N,C,... shape; repeatable (default 32,256,56,56)")
    parser.add_argument("--shapes-file", action="append", default=[],
                        help="one shape per line, optionally followed by nhwc or nchw, e.g. "
                        "the output of bnorm-bench --sweep cache --list-cases")
    parser.add_argument("--layout", choices=("nhwc", "nchw"), default="nhwc",
                        help="nhwc: channels_last memory format (default); nchw: contiguous")
    parser.add_argument("--mode", choices=("inference", "training", "both", "backward", "all"),
                        default="both",
                        help="both: inference and training (default); all: inference, training "
                        "and backward")
    parser.add_argument("--residual", action="store_true",
                        help="inference adds a residual: batch_norm, then add_(z) and relu_() "
                        "in place on its output (12 bytes/value); training and backward "
                        "unchanged")
    parser.add_argument("--threads", type=parse_threads, default=None,
                        help="N or a list N,M (default: all cores)")
    parser.add_argument("--repeat", type=positive_int, default=20,
                        help="timed calls, at least (default 20)")
    parser.add_argument("--min-time", type=seconds, default=0.2,
                        help="seconds of timed calls, at least (default 0.2)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON array on stdout, one object per case and mode")
    parser.add_argument("--bnorm-json", metavar="FILE",
                        help="bnorm-bench --json output: show bnorm's time and the ratio")
    args = parser.parse_args(argv)

    cases = [(shape, args.layout) for shape in args.shape]
    for path in args.shapes_file:
        cases += read_shapes_file(parser, path, args.layout)
    if not cases:
        cases = [(DEFAULT_SHAPE, args.layout)]
    for shape, _ in cases:
        if len(shape) < 2 or len(shape) > 5:
            parser.error(f"argument --shape: {','.join(map(str, shape))} has rank "
                         f"{len(shape)}; pytorch-bench takes N,C,... of rank 2 to 5")
    args.cases = cases
    if args.threads is None:
        args.threads = [len(os.sched_getaffinity(0))]
    args.modes = {"both": ["inference", "training"],
                  "all": ["inference", "training", "backward"]}.get(args.mode, [args.mode])
    if args.residual and "inference" not in args.modes:
        parser.error(f"argument --residual: adds z to the inference pass, which --mode "
                     f"{args.mode} does not run; expected --mode inference, both or all")

    args.bnorm = {}
    if args.bnorm_json:
        try:
            rows = json.load(open(args.bnorm_json, encoding="utf-8"))
        except (OSError, ValueError) as e:
            parser.error(f"argument --bnorm-json: cannot read '{args.bnorm_json}': {e}")
        for row in rows:
            args.bnorm.setdefault(row_key(row), row["seconds"])
    return args


def row_key(row):
    """What pairs a row of this script with one of bnorm-bench: the case, the mode, the
    threads and whether its inference added a residual (a key absent before --residual)."""
    return (tuple(row["shape"]), row["layout"], row["mode"], row["threads"],
            row.get("residual", False))


def import_torch():
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
        hint = ""
        if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
            hint = f" (this is {sys.executable}; Debian's torch is for /usr/bin/python3)"
        print("pytorch-bench: PyTorch is not installed" + hint +
              "; install Debian's python3-torch (apt-get install python3-torch)",
              file=sys.stderr)
        sys.exit(1)
    return torch


def make_input(torch, shape, layout):
    """x of the logical shape N,C,... laid out in memory as the layout says,
    channels with their own mean and spread (like bnorm-bench's data)."""
    n, c = shape[0], shape[1]
    rest = shape[2:]
    generator = torch.Generator().manual_seed(c * 1000003 + n)
    center = 2.0 * torch.rand(c, generator=generator) - 1.0
    spread = 1.25 + 0.75 * (2.0 * torch.rand(c, generator=generator) - 1.0)
    if layout == "nhwc" and rest:
        # Memory [N, ..., C] viewed as N,C,...: channels_last strides.
        memory = torch.rand((n,) + rest + (c,), generator=generator) * 2.0 - 1.0
        memory = memory * spread + center * 2.0
        order = (0, len(shape) - 1) + tuple(range(1, len(shape) - 1))
        x = memory.permute(order)
    else:
        x = torch.rand(shape, generator=generator) * 2.0 - 1.0
        view = (1, c) + (1,) * len(rest)
        x = (x * spread.view(view) + 2.0 * center.view(view)).contiguous()
    params = {
        "running_mean": 2.0 * center + 0.1 * (2.0 * torch.rand(c, generator=generator) - 1.0),
        "running_var": spread * spread / 3.0,
        "weight": 1.0 + 0.5 * (2.0 * torch.rand(c, generator=generator) - 1.0),
        "bias": 0.5 * (2.0 * torch.rand(c, generator=generator) - 1.0),
    }
    return x, params


def make_backward(torch, x, params):
    """The backward call of x's batch norm: dy seeded random data with x's
    strides, and the saved statistics of one training forward made here."""
    generator = torch.Generator().manual_seed(x.numel() * 1000003 + x.shape[1])
    dy = torch.empty_strided(x.size(), x.stride()).uniform_(-1.0, 1.0, generator=generator)
    running_mean = params["running_mean"].clone()
    running_var = params["running_var"].clone()
    _, save_mean, save_invstd = torch.ops.aten.native_batch_norm(
        x, params["weight"], params["bias"], running_mean, running_var, True,
        1.0 - KERAS_MOMENTUM, EPSILON)

    def call():
        torch.ops.aten.native_batch_norm_backward(
            dy, x, params["weight"], running_mean, running_var, save_mean, save_invstd, True,
            EPSILON, [True, True, True])

    return call


def make_residual(torch, x):
    """z of an inference with a residual: seeded random data with x's strides."""
    generator = torch.Generator().manual_seed(x.numel() * 1000033 + x.shape[1])
    return torch.empty_strided(x.size(), x.stride()).uniform_(-1.0, 1.0, generator=generator)


TRAFFIC = {"inference": 8.0, "training": 12.0, "backward": 20.0}  # bytes per value
RESIDUAL_TRAFFIC = 12.0  # x and z read, y written


def measure(call, repeat, min_time):
    """Median, p10, p90 of single calls after a warm-up, as bnorm-bench does."""
    warm_start = time.perf_counter()
    calls = 0
    while calls < 2 or time.perf_counter() - warm_start < min(0.05, min_time / 4.0):
        call()
        calls += 1
    times = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    return {
        "seconds": statistics.median(times),
        "p10_seconds": times[int(0.1 * (n - 1))],
        "p90_seconds": times[-(-9 * (n - 1) // 10)],
        "calls": n,
    }


def run(args):
    torch = import_torch()
    F = torch.nn.functional
    rows = []
    if not args.json:
        header = (f"{'shape':<18} {'layout':<8} {'mode':<9} {'thr':>3} {'median ms':>10} "
                  f"{'p10..p90 ms':>21} {'GB/s':>8}")
        if args.bnorm:
            header += f" {'bnorm ms':>10} {'torch/bn':>8}"
        print(f"pytorch-bench: torch {torch.__version__}, "
              f"{torch.backends.mkldnn.is_available() and 'mkldnn' or 'no mkldnn'}, float32"
              + (", inference: batch_norm, add_(z), relu_() (12 B/value)" if args.residual
                 else ""))
        print(header)
    started = time.perf_counter()
    total = len(args.cases) * len(args.threads)
    done = 0
    with torch.inference_mode():
        for shape, layout in args.cases:
            x, params = make_input(torch, shape, layout)
            elements = x.numel()
            label = layout_label(shape, layout)
            z = make_residual(torch, x) if args.residual else None
            for threads in args.threads:
                done += 1
                if time.perf_counter() - started > 2.0:
                    print(f"pytorch-bench: [{done}/{total}] {'x'.join(map(str, shape))} "
                          f"{label}, {threads} thread(s)", file=sys.stderr)
                torch.set_num_threads(threads)
                for mode in args.modes:
                    residual = args.residual and mode == "inference"
                    if mode == "backward":
                        call = make_backward(torch, x, params)
                    elif residual:
                        running_mean = params["running_mean"]
                        running_var = params["running_var"]

                        def call():
                            y = F.batch_norm(x, running_mean, running_var, params["weight"],
                                             params["bias"], training=False, eps=EPSILON)
                            y.add_(z).relu_()
                    else:
                        training = mode == "training"
                        running_mean = params["running_mean"].clone()
                        running_var = params["running_var"].clone()

                        def call():
                            F.batch_norm(x, running_mean, running_var, params["weight"],
                                         params["bias"], training=training,
                                         momentum=1.0 - KERAS_MOMENTUM, eps=EPSILON)

                    stats = measure(call, args.repeat, args.min_time)
                    traffic = (RESIDUAL_TRAFFIC if residual else TRAFFIC[mode]) * elements
                    row = {
                        "shape": list(shape), "layout": label, "mode": mode, "dtype": "f32",
                        "threads": threads, "framework": "pytorch",
                        "framework_version": torch.__version__, "elements": elements,
                        **stats, "gbps": traffic / stats["seconds"] * 1e-9,
                    }
                    if args.residual:
                        row["residual"] = residual
                    bnorm_seconds = args.bnorm.get(row_key(row))
                    if args.bnorm:
                        row["bnorm_seconds"] = bnorm_seconds
                        row["speedup_of_bnorm"] = (stats["seconds"] / bnorm_seconds
                                                   if bnorm_seconds else None)
                    rows.append(row)
                    if not args.json:
                        spread = (f"{stats['p10_seconds'] * 1e3:.4g}.."
                                  f"{stats['p90_seconds'] * 1e3:.4g}")
                        line = (f"{'x'.join(map(str, shape)):<18} {label:<8} {mode:<9} "
                                f"{threads:>3} {stats['seconds'] * 1e3:>10.4g} {spread:>21} "
                                f"{row['gbps']:>8.2f}")
                        if args.bnorm:
                            if bnorm_seconds:
                                line += (f" {bnorm_seconds * 1e3:>10.4g} "
                                         f"{row['speedup_of_bnorm']:>8.2f}")
                            else:
                                line += f" {'-':>10} {'-':>8}"
                        print(line, flush=True)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    elif args.bnorm:
        print("\ntorch/bn: PyTorch seconds / bnorm seconds (> 1: bnorm is faster)")


def main():
    run(parse_args(sys.argv[1:]))


if __name__ == "__main__":
    main()
