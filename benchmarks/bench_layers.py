"""Speed and memory of the reference conv and pooling layers against torch, float64, CPU.

For every shape of a grid, forward + backward of our layer and of
``torch.nn.functional.conv2d`` / ``max_pool2d`` / ``avg_pool2d`` (autograd for
the input, and for the weights and bias of conv) run on the same values, each
in its own layout (ours ``(n_H, n_W, n_C, m)``, torch's NCHW), in one process.
Time is measured in rounds that alternate the two libraries, with a short
pause before each block (idle worker threads of one library spin for a while
and would slow the other); each block's median is taken and the fastest
round kept, which filters out interference from other processes. The ratio
is ours / torch (< 1: we are faster). torch is timed with 1 and with 2 intra-op threads and its
faster time is kept (on this machine torch's 2-thread avg_pool2d forward
carries a fixed ~8 ms overhead that would flatter us); NumPy runs as it is. Peak memory is the growth of the resident set during one
forward + backward, measured in a fresh subprocess per layer and library so
that neither sees the other's allocations.

Run: ``make bench`` (or ``python -m benchmarks.bench_layers [--quick]``).
Writes ``reports/bench_layers.csv`` and prints the table and, per layer, the
geometric-mean ratio against the goals (≤ 1.0, and no shape over 2×).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.progress import echo, progress
from reference_impls.conv import conv2d_backward, conv2d_forward
from reference_impls.pooling import (
    avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
)

# (layer, m, C_in, C_out, H, W, options): C_out only for conv.
GRID = [
    ("conv2d", 1, 1, 2, 8, 8, {"kernel": 3}),
    ("conv2d", 4, 3, 8, 16, 16, {"kernel": 3, "padding": 1}),
    ("conv2d", 8, 16, 16, 16, 16, {"kernel": 3, "padding": 1}),
    ("conv2d", 8, 16, 32, 32, 32, {"kernel": 3, "stride": 2, "padding": 1}),
    ("conv2d", 8, 8, 8, 32, 32, {"kernel": 5, "padding": 2}),
    ("conv2d", 8, 8, 8, 32, 32, {"kernel": 3, "dilation": 2, "padding": 2}),
    ("conv2d", 16, 32, 32, 32, 32, {"kernel": 3, "padding": 1}),
    ("conv2d", 32, 64, 64, 32, 32, {"kernel": 3, "padding": 1}),
    ("max_pool2d", 1, 1, None, 8, 8, {"window": 2}),
    ("max_pool2d", 8, 16, None, 16, 16, {"window": 2}),
    ("max_pool2d", 8, 16, None, 16, 16, {"window": 3, "stride": 2, "padding": 1}),
    ("max_pool2d", 32, 64, None, 32, 32, {"window": 2}),
    ("max_pool2d", 32, 64, None, 32, 32, {"window": 3, "stride": 2}),
    ("avg_pool2d", 1, 1, None, 8, 8, {"window": 2}),
    ("avg_pool2d", 8, 16, None, 16, 16, {"window": 2}),
    ("avg_pool2d", 8, 16, None, 16, 16, {"window": 3, "stride": 2, "padding": 1}),
    ("avg_pool2d", 32, 64, None, 32, 32, {"window": 2}),
    ("avg_pool2d", 32, 64, None, 32, 32, {"window": 3, "stride": 2}),
]
QUICK_GRID = [GRID[0], GRID[1], GRID[8], GRID[13]]
GOAL_GEOMEAN, GOAL_WORST = 1.0, 2.0


def _label(case):
    layer, m, c_in, c_out, h, w, opts = case
    channels = f"{c_in}->{c_out}" if c_out else f"{c_in}"
    extra = " ".join(f"{k}={v}" for k, v in opts.items())
    return f"m={m} C={channels} {h}x{w} {extra}"


def _inputs(case, seed=0):
    layer, m, c_in, c_out, h, w, opts = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(h, w, c_in, m))
    if layer != "conv2d":
        return x, None, None
    k = opts["kernel"]
    return x, rng.normal(size=(k, k, c_in, c_out)), rng.normal(size=c_out)


def _ours(case):
    """Return a zero-argument callable running our forward + backward once."""
    layer, *_, opts = case
    x, W, b = _inputs(case)
    if layer == "conv2d":
        kw = {k: opts[k] for k in ("stride", "padding", "dilation") if k in opts}
        Z, _ = conv2d_forward(x, W, b, **kw)
        dZ = np.random.default_rng(1).normal(size=Z.shape)
        return lambda: conv2d_backward(dZ, conv2d_forward(x, W, b, **kw)[1])
    forward, backward = ((max_pool2d_forward, max_pool2d_backward) if layer == "max_pool2d"
                         else (avg_pool2d_forward, avg_pool2d_backward))
    kw = {k: opts[k] for k in ("stride", "padding") if k in opts}
    A, _ = forward(x, window=opts["window"], **kw)
    dA = np.random.default_rng(1).normal(size=A.shape)
    return lambda: backward(dA, forward(x, window=opts["window"], **kw)[1])


def _torch(case):
    """Return a zero-argument callable running torch's forward + autograd backward once."""
    import torch
    import torch.nn.functional as F

    layer, *_, opts = case
    x, W, b = _inputs(case)
    x_t = torch.tensor(x.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    if layer == "conv2d":
        W_t = torch.tensor(W.transpose(3, 2, 0, 1).copy(), requires_grad=True)
        b_t = torch.tensor(b, requires_grad=True)
        kw = {k: opts[k] for k in ("stride", "padding", "dilation") if k in opts}
        leaves = [x_t, W_t, b_t]

        def op():
            return F.conv2d(x_t, W_t, b_t, **kw)
    else:
        kw = {k: opts[k] for k in ("stride", "padding") if k in opts}
        pool = F.max_pool2d if layer == "max_pool2d" else F.avg_pool2d
        leaves = [x_t]

        def op():
            return pool(x_t, opts["window"], **kw)
    with torch.no_grad():
        shape = op().shape
    m, c, h, w = shape   # the same upstream gradient as ours, drawn in our layout
    grad = torch.tensor(np.random.default_rng(1).normal(size=(h, w, c, m)).transpose(3, 2, 0, 1).copy())
    return lambda: torch.autograd.grad(op(), leaves, grad_outputs=grad)


ROUNDS, PAUSE = 5, 0.05


def _median_seconds(run, budget=0.1, min_repeats=3, max_repeats=100):
    time.sleep(PAUSE)
    run()   # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < budget
                                       and len(times) < max_repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _torch_runs(case):
    """Return {threads: callable} for torch at 1 thread and at its default count."""
    import torch

    return {threads: _torch(case) for threads in sorted({1, torch.get_num_threads()})}


def _best_torch_seconds(runs):
    """Return torch's median time at its faster thread count, and that count."""
    import torch

    default = torch.get_num_threads()
    try:
        timings = []
        for threads, run in runs.items():
            torch.set_num_threads(threads)
            timings.append((_median_seconds(run), threads))
    finally:
        torch.set_num_threads(default)
    return min(timings)


def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_growth(case_index, impl):
    """In this (fresh) process: bytes the resident set grows by during one run.

    Uses the memory map's own high-water mark (VmHWM), reset just before the
    run through /proc/self/clear_refs; getrusage's ru_maxrss would not do, as
    a child inherits its parent's value across fork.
    """
    make = _ours if impl == "ours" else _torch
    make(QUICK_GRID[0])()    # warm-up on a tiny case: imports, thread pools, BLAS buffers
    run = make(GRID[case_index])   # the inputs are allocated before the baseline
    base = _status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")         # reset VmHWM to the current resident size
    run()
    return max(_status_bytes("VmHWM") - base, 0)


def _measure_memory(case_index, impl):
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_layers", "--memory", str(case_index), impl],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(out.stdout)["bytes"]


def run(grid, out_path, memory=True):
    """Measure every case of ``grid``; write the CSV; return the rows."""
    rows = []
    for case in progress(grid, desc="bench_layers"):
        index = GRID.index(case)
        ours_run, torch_runs = _ours(case), _torch_runs(case)
        ours_s, torch_s, threads = float("inf"), float("inf"), None
        for _ in range(ROUNDS):
            ours_s = min(ours_s, _median_seconds(ours_run))
            torch_s, threads = min((torch_s, threads), _best_torch_seconds(torch_runs))
        row = {
            "layer": case[0], "shape": _label(case),
            "ours_ms": 1e3 * ours_s, "torch_ms": 1e3 * torch_s, "torch_threads": threads,
            "time_ratio": ours_s / torch_s,
        }
        if memory:
            ours_b, torch_b = _measure_memory(index, "ours"), _measure_memory(index, "torch")
            row.update(ours_peak_mb=ours_b / 2**20, torch_peak_mb=torch_b / 2**20,
                       memory_ratio=(ours_b / torch_b) if torch_b else float("nan"))
        rows.append(row)
        echo(f"{row['layer']:<11} {row['shape']:<46} ours {row['ours_ms']:9.3f} ms  "
             f"torch {row['torch_ms']:9.3f} ms  ratio {row['time_ratio']:5.2f}"
             + (f"  peak MB ours {row['ours_peak_mb']:7.1f} torch {row['torch_peak_mb']:7.1f}"
                if memory else ""))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def summarize(rows):
    """Return lines: per layer, the geometric-mean and worst time ratio against the goals."""
    lines = []
    for layer in dict.fromkeys(r["layer"] for r in rows):
        ratios = [r["time_ratio"] for r in rows if r["layer"] == layer]
        geo = math.exp(statistics.fmean(math.log(q) for q in ratios))
        worst = max(ratios)
        met = geo <= GOAL_GEOMEAN and worst <= GOAL_WORST
        line = (f"{layer:<11} geometric-mean time ratio {geo:.2f} (goal <= {GOAL_GEOMEAN}), "
                f"worst {worst:.2f} (goal <= {GOAL_WORST}): "
                + ("goal met" if met else "GOAL NOT MET"))
        memory = [r["memory_ratio"] for r in rows if r["layer"] == layer
                  and math.isfinite(r.get("memory_ratio", math.nan)) and r["memory_ratio"] > 0]
        if memory:
            line += (f"; peak memory ratio geometric mean "
                     f"{math.exp(statistics.fmean(math.log(q) for q in memory)):.2f}, "
                     f"worst {max(memory):.2f}")
        lines.append(line)
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/bench_layers.csv", type=Path,
                        help="CSV to write (default: reports/bench_layers.csv)")
    parser.add_argument("--quick", action="store_true", help="four small shapes, no memory")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--memory", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory:
        print(json.dumps({"bytes": _peak_growth(int(args.memory[0]), args.memory[1])}))
        return 0
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}; "
          "float64, forward + backward")
    rows = run(QUICK_GRID if args.quick else GRID, args.out,
               memory=not (args.quick or args.no_memory))
    print("\n".join(summarize(rows)))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
