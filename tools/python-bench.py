#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bnorm from Python: the call overhead of the module, and bnorm against PyTorch from Python.

1. Overhead: median time of layer(x) (inference and training), layer.backward(dy) and
   bnorm.normalize(..., out=) on a 1x64x28x28 NCHW float32 tensor, against the same C++ call
   timed inside the module (bnorm._timing: same layer, arrays and threads, output preallocated),
   in turns (--rounds). The difference is what Python, the argument checks, the new output
   array and the GIL add.
2. Peer: bnorm.BatchNormalization against torch.nn.functional.batch_norm (training and
   inference forward) and PyTorch's batch-norm backward kernel (aten.native_batch_norm_backward,
   what autograd runs) against layer.backward, on every shape of --shapes-file (default
   tools/shapes-resnet.txt, both layouts). torch/bnorm > 1 means bnorm is faster.

Shape parsing, data and timing are tools/pytorch-bench.py's. PyTorch is optional (Debian
python3-torch); without it part 2 is skipped with a message. --json prints one JSON object with
both parts. Run with PYTHONPATH=build/python and Debian's /usr/bin/python3.
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import numpy as np

import bnorm
from bnorm import _timing as timing

HERE = os.path.dirname(os.path.abspath(__file__))
OVERHEAD_SHAPE = (1, 64, 28, 28)


def load_pytorch_bench():
    spec = importlib.util.spec_from_file_location("pytorch_bench",
                                                  os.path.join(HERE, "pytorch-bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pb = load_pytorch_bench()


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=pb.parse_shape, action="append", default=[],
                        help="N,C,... shape for part 2; repeatable (default: --shapes-file)")
    parser.add_argument("--shapes-file", action="append", default=[])
    parser.add_argument("--threads", type=pb.positive_int, default=None,
                        help="thread count for both libraries (default: all cores)")
    parser.add_argument("--repeat", type=pb.positive_int, default=20)
    parser.add_argument("--min-time", type=pb.seconds, default=0.2)
    parser.add_argument("--rounds", type=pb.positive_int, default=7,
                        help="overhead: rounds of Python calls and C++ calls in turns")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run that only proves every part works (one small shape)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.min_time, args.rounds = 3, 0.0, 1
        cases = [((2, 8, 4, 4), "nchw"), ((2, 8, 4, 4), "nhwc"), ((16, 8), "nhwc")]
    else:
        cases = [(shape, "nhwc") for shape in args.shape]
        for path in args.shapes_file or ([] if args.shape else
                                         [os.path.join(HERE, "shapes-resnet.txt")]):
            cases += pb.read_shapes_file(parser, path, "nhwc")
    args.cases = cases
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0))
    return args


def layer_input(shape, layout, torch_x=None):
    """x for bnorm (NHWC memory order for nhwc) and the layer's axis."""
    rng = np.random.default_rng(shape[1])
    if torch_x is not None:
        x = torch_x.permute(0, *range(2, len(shape)), 1) if layout == "nhwc" and len(shape) > 2 \
            else torch_x
        x = np.ascontiguousarray(x.numpy())
    else:
        x = (rng.standard_normal(shape) * 1.25 + 0.5).astype(np.float32)
        if layout == "nhwc" and len(shape) > 2:
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    axis = -1 if layout == "nhwc" or len(shape) == 2 else 1
    return x, axis


def time_bnorm(x, axis, args):
    layer = bnorm.BatchNormalization(axis=axis, momentum=0.99, epsilon=1e-3)
    dy = np.ones_like(x)
    rows = {
        "inference": pb.measure(lambda: layer(x, training=False), args.repeat, args.min_time),
        "training": pb.measure(lambda: layer(x, training=True), args.repeat, args.min_time),
    }
    layer(x, training=True)
    rows["backward"] = pb.measure(lambda: layer.backward(dy), args.repeat, args.min_time)
    return rows


def python_call_seconds(call, calls):
    """Seconds of each of `calls` calls, timed as bnorm._timing times the C++ ones."""
    seconds = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - t0)
    return seconds


def overhead(args):
    """Each op from Python against the same C++ call inside the module (bnorm._timing: the same
    layer, arrays and threads, its output preallocated), in turns: `rounds` rounds of a block of
    Python calls then a block of C++ calls, after a warm-up. The medians over every call."""
    x, axis = layer_input(OVERHEAD_SHAPE, "nchw")
    dy = np.ones_like(x)
    layer = bnorm.BatchNormalization(axis=axis, momentum=0.99, epsilon=1e-3)
    mean, variance = bnorm.moments(x, axis=axis)
    mean = mean.astype(np.float32)
    scale, shift = bnorm.fold(None, None, mean, variance)
    out = np.empty_like(x)

    def backward_python():
        layer(x, training=True)
        return lambda: layer.backward(dy)

    def backward_cpp(calls):
        layer(x, training=True)
        return timing.backward(layer, dy, calls)

    ops = {
        "inference": (lambda: lambda: layer(x, training=False),
                      lambda calls: timing.forward(layer, x, False, calls)),
        "training": (lambda: lambda: layer(x, training=True),
                     lambda calls: timing.forward(layer, x, True, calls)),
        "backward": (backward_python, backward_cpp),
        "normalize": (lambda: lambda: bnorm.normalize(x, mean, scale, shift, axis=axis, out=out),
                      lambda calls: timing.normalize(x, mean, scale, shift, axis, calls)),
    }
    block = max(args.repeat, 200)
    rows = []
    for op, (python_call, cpp_calls) in ops.items():
        python_times, cpp_times = [], []
        call = python_call()
        python_call_seconds(call, block)  # warm-up
        cpp_calls(block)
        for _ in range(args.rounds):
            call = python_call()
            python_times += python_call_seconds(call, block)
            cpp_times += cpp_calls(block)
        py_s, cpp_s = statistics.median(python_times), statistics.median(cpp_times)
        rows.append({"op": op, "python_seconds": py_s, "cpp_seconds": cpp_s,
                     "overhead_seconds": py_s - cpp_s, "calls": len(python_times)})
    return rows


def torch_seconds(torch, x, params, args):
    F = torch.nn.functional
    aten = torch.ops.aten
    rm, rv = params["running_mean"].clone(), params["running_var"].clone()
    w, b = params["weight"], params["bias"]
    rows = {
        "inference": pb.measure(lambda: F.batch_norm(x, rm, rv, w, b, training=False,
                                                     momentum=0.01, eps=1e-3),
                                args.repeat, args.min_time),
        "training": pb.measure(lambda: F.batch_norm(x, rm, rv, w, b, training=True,
                                                    momentum=0.01, eps=1e-3),
                               args.repeat, args.min_time),
    }
    _, save_mean, save_invstd = aten.native_batch_norm(x, w, b, rm, rv, True, 0.01, 1e-3)
    dy = torch.ones_like(x)
    rows["backward"] = pb.measure(
        lambda: aten.native_batch_norm_backward(dy, x, w, rm, rv, save_mean, save_invstd, True,
                                                1e-3, [True, True, True]),
        args.repeat, args.min_time)
    return rows


def peer(args):
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
        print("python-bench: PyTorch is not installed (Debian python3-torch); the comparison "
              "with torch.nn.functional.batch_norm is skipped", file=sys.stderr)
        return None
    torch.set_num_threads(args.threads)
    rows = []
    with torch.inference_mode():
        for shape, layout in args.cases:
            tx, params = pb.make_input(torch, shape, layout)
            x, axis = layer_input(shape, layout, tx)
            ours = time_bnorm(x, axis, args)
            theirs = torch_seconds(torch, tx, params, args)
            for mode in ("training", "inference", "backward"):
                rows.append({"shape": list(shape), "layout": pb.layout_label(shape, layout),
                             "mode": mode, "threads": args.threads,
                             "bnorm_seconds": ours[mode]["seconds"],
                             "torch_seconds": theirs[mode]["seconds"],
                             "torch_over_bnorm": theirs[mode]["seconds"] / ours[mode]["seconds"]})
    return rows


def us(seconds):
    return "-" if seconds is None else f"{seconds * 1e6:.2f}"


def main():
    args = parse_args(sys.argv[1:])
    bnorm.set_max_threads(args.threads)
    result = {"threads": args.threads, "overhead_shape": list(OVERHEAD_SHAPE),
              "overhead": overhead(args), "peer": peer(args)}
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    print(f"python-bench: {args.threads} thread(s); overhead on "
          f"{'x'.join(map(str, OVERHEAD_SHAPE))} nchw float32 (C++: the same call in the "
          f"module, in turns)")
    print(f"{'op':<10} {'python us':>10} {'C++ us':>10} {'extra us':>10}")
    for row in result["overhead"]:
        print(f"{row['op']:<10} {us(row['python_seconds']):>10} {us(row['cpp_seconds']):>10} "
              f"{us(row['overhead_seconds']):>10}")
    if result["peer"]:
        print(f"\n{'shape':<16} {'layout':<6} {'mode':<9} {'bnorm ms':>9} {'torch ms':>9} "
              f"{'torch/bn':>8}")
        for row in result["peer"]:
            print(f"{'x'.join(map(str, row['shape'])):<16} {row['layout']:<6} {row['mode']:<9} "
                  f"{row['bnorm_seconds'] * 1e3:>9.4g} {row['torch_seconds'] * 1e3:>9.4g} "
                  f"{row['torch_over_bnorm']:>8.2f}")
        print("\ntorch/bn: PyTorch seconds / bnorm seconds (> 1: bnorm is faster)")


if __name__ == "__main__":
    main()
