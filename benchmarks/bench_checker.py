"""Cost and accuracy of gradcheck.check_layer against torch.autograd.gradcheck, float64, CPU.

For each case, the same layer on the same input is checked, in one process, by

- ``ours_full``: ``gradcheck.check_layer(layer, x, mode="full")`` (complex step:
  every reference layer is complex-safe),
- ``ours_central``: the same with ``complex_step=False`` (central differences),
- ``ours_fast``: ``mode="fast"`` (one random direction per tensor),
- ``torch_slow``: ``torch.autograd.gradcheck(fn, inputs, fast_mode=False)``,
- ``torch_fast``: the same with ``fast_mode=True``,

where torch's ``fn(x, *params)`` is the layer's torch twin
(``property_tests.torch_twins.torch_twin``), in float64 with
``requires_grad=True`` on the input and every parameter. Note that torch's
gradcheck checks torch's autograd of the twin, ours checks the layer's own
backward: both judge the same function at the same point, each with its own
numerical derivative and cost.

Per method: the wall time (``time.perf_counter``; a check under 0.5 s is run up
to five times and its fastest run kept, a longer one once), the forward calls
(ours: ``result.forward_calls``; torch: calls to ``fn``, counted by a
wrapper), whether it passed, and the accuracy of the numerical derivative the
method used: ``max |a - r| / max |r|`` per tensor, worst tensor, with ``a`` the
method's numerical derivative of ``J = <G, f>`` (``G`` the random upstream
gradient of our check, ``seed=0``) and ``r`` the exact one, by torch autograd.

Both sides run on one thread (torch, and NumPy's OpenBLAS; ``--threads`` to
change it): a check is a long run of small calls, and on a 2-core machine
shared with other processes a 2-thread pool stalls at each call whenever the
other core is taken. Measured here: torch's slow mode on the conv took 12 s at
2 threads with the machine otherwise quiet, 224 s beside another test run,
and 14 s at 1 thread beside it; our full check of it 0.08-0.12 s quiet and
2.3 s beside it.

- ours, full modes: ``a - r`` is read from each tensor's ``max_abs_error``
  (numerical against the layer's backward, which agrees with torch autograd to
  the ``backward_vs_torch`` of the case's rows, ~1e-16);
- ours, fast mode: the directional derivative against ``<backward, V>``;
- torch: torch does not return its numerical Jacobian (no public API), but it
  computes it from the calls it makes to ``fn``, and the wrapper sees them:
  each pair of calls at ``x - d`` and ``x + d`` gives
  ``<G, f(x+d) - f(x-d)> / (2 eps)``, the projection on ``G`` of the Jacobian
  column (slow mode: ``d = eps`` on one entry) or of ``J u`` (fast mode:
  ``d = eps u``, ``|u| = 1``) that torch computed, with its divisor ``2 eps``.
  The slow mode's entries are compared with the exact gradient, the fast
  mode's value with ``<exact gradient, u>`` (``u`` redrawn as torch draws it,
  checked against the step it took; see :meth:`Recorder._nominal`). The
  wrapper's bookkeeping is timed and subtracted from torch's time.

Also ``ours_fast`` (and ``torch_fast`` for comparison) on three inputs of about
10^6 entries: ReLU on (1000, 1000), Dense (32 units) on (1000, 1000), AvgPool2D
on (64, 64, 16, 16). The goals: ours full ≥ 100× faster than torch slow on the
conv, and a fast check of a 10^6-entry input under 1 s.

Run: ``make bench`` (or ``python -m benchmarks.bench_checker [--quick]``;
``--quick`` skips torch's slow mode on the conv, its longest part). Writes
``reports/bench_checker.csv`` with the columns of :data:`COLUMNS`:
``case``, ``shape``, ``entries`` (x and parameters), ``method``, ``seconds``,
``runs`` (timed runs), ``threads`` (torch's and BLAS's),
``forward_calls``, ``passed``, ``accuracy``, ``ours_rel_error`` (ours:
``max(result.max_rel_error.values())``, the checker's own metric),
``backward_vs_torch`` (the layer's backward against torch autograd, same
measure as ``accuracy``), ``time_vs_torch_slow`` and ``calls_vs_torch_slow``
(this method over torch's slow mode on the same case), ``peak_mb`` (the
growth of the resident set during the check, MiB: blank here, filled by
``benchmarks.bench_users`` for its default-mode rows), ``note``.
``benchmarks.bench_users`` merges its ``user_*`` rows into the same file
(``make bench`` runs it after this one, which rewrites the file).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import gradcheck
from benchmarks.progress import echo, progress
from reference_impls import AvgPool2D, Conv2D, Dense, MaxPool2D, ReLU, cnn

COLUMNS = ["case", "shape", "entries", "method", "seconds", "runs", "threads",
           "forward_calls", "passed",
           "accuracy", "ours_rel_error", "backward_vs_torch", "time_vs_torch_slow",
           "calls_vs_torch_slow", "peak_mb", "note"]
METHODS = ("ours_full", "ours_central", "ours_fast", "torch_slow", "torch_fast")
#: torch.autograd.gradcheck's defaults, passed explicitly.
TORCH_EPS, TORCH_ATOL, TORCH_RTOL = 1e-6, 1e-5, 1e-3
GOAL_SPEEDUP, GOAL_FAST_SECONDS = 100.0, 1.0
SEED = 0


# ------------------------------------------------------------------------- cases
def dense_case(n_prev=64, n=32, m=16, seed=0):
    rng = np.random.default_rng(seed)
    layer = Dense(rng.normal(size=(n, n_prev)) / np.sqrt(n_prev), rng.normal(size=(n, 1)))
    return layer, rng.normal(size=(n_prev, m))


def conv_case(m=4, c_in=8, c_out=8, size=16, kernel=3, padding=1, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(kernel, kernel, c_in, c_out)) / np.sqrt(kernel * kernel * c_in)
    layer = Conv2D(W, rng.normal(size=c_out), padding=padding)
    return layer, rng.normal(size=(size, size, c_in, m))


def maxpool_case(size=16, channels=8, m=4, window=2, seed=0):
    rng = np.random.default_rng(seed)
    return MaxPool2D(window), rng.normal(size=(size, size, channels, m))


def avgpool_case(size=64, channels=16, m=16, window=2, seed=0):
    rng = np.random.default_rng(seed)
    return AvgPool2D(window), rng.normal(size=(size, size, channels, m))


def cnn_case(size=12, channels=3, m=2, filters=4, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    Y = np.eye(classes)[:, rng.integers(0, classes, size=m)]
    layer = cnn((size, size, channels),
                [{"filters": filters, "kernel": 3, "padding": 1, "activation": "relu",
                  "pool": {"kind": "max", "window": 2}}],
                [classes], ["identity"], "softmax_cross_entropy", Y, rng=rng)
    return layer, rng.normal(size=(size, size, channels, m))


def relu_case(rows=1000, cols=1000, seed=0):
    return ReLU(), np.random.default_rng(seed).normal(size=(rows, cols))


def dense_big_case(n_prev=1000, n=32, m=1000, seed=0):
    return dense_case(n_prev=n_prev, n=n, m=m, seed=seed)


@dataclass(frozen=True)
class Case:
    name: str
    shape: str
    build: object                 # () -> (layer, x)
    methods: tuple = METHODS


#: The comparison cases: every method on each.
CASES = [
    Case("dense", "Dense 64->32 batch 16", dense_case),
    Case("conv", "Conv2D batch 4 8->8 channels 16x16 3x3 padding 1", conv_case),
    Case("maxpool", "MaxPool2D window 2 on 16x16x8x4", maxpool_case),
    Case("cnn", "CNN 12x12x3 batch 2: conv 3x3 4 filters relu maxpool 2 -> dense 5 "
                "-> softmax cross-entropy", cnn_case),
]
#: The fast-mode cases on about 10^6 input entries.
BIG_CASES = [
    Case("relu_1e6", "ReLU on 1000x1000", relu_case, ("ours_fast", "torch_fast")),
    Case("dense_1e6", "Dense 1000->32 on 1000x1000", dense_big_case, ("ours_fast", "torch_fast")),
    Case("avgpool_1e6", "AvgPool2D window 2 on 64x64x16x16", avgpool_case,
         ("ours_fast", "torch_fast")),
]
#: Tiny versions of every case, for the tests (and the warm-up).
TINY_CASES = [
    Case("dense", "Dense 4->3 batch 2", lambda: dense_case(4, 3, 2)),
    Case("conv", "Conv2D batch 2 2->2 5x5 3x3 padding 1",
         lambda: conv_case(m=2, c_in=2, c_out=2, size=5)),
    Case("maxpool", "MaxPool2D window 2 on 4x4x2x2", lambda: maxpool_case(4, 2, 2)),
    Case("cnn", "CNN 4x4x2 batch 2", lambda: cnn_case(size=4, channels=2, m=2, filters=2,
                                                      classes=3)),
    Case("relu_1e6", "ReLU on 10x10", lambda: relu_case(10, 10), BIG_CASES[0].methods),
    Case("dense_1e6", "Dense 10->3 on 10x10", lambda: dense_big_case(10, 3, 10),
         BIG_CASES[1].methods),
    Case("avgpool_1e6", "AvgPool2D window 2 on 4x4x2x2", lambda: avgpool_case(4, 2, 2),
         BIG_CASES[2].methods),
]
CONV_CASE = "conv"


def entries(layer, x):
    """Entries of the input and the parameters: what a full check differentiates."""
    return int(x.size + sum(p.size for p in layer.params.values()))


# ---------------------------------------------------------------------- methods
@dataclass
class Outcome:
    """What one run of one method gives, before timing."""

    forward_calls: int
    passed: bool
    accuracy: float | None
    ours_rel_error: float | None = None
    bookkeeping: float = 0.0      # seconds of our own recording inside the run, subtracted
    note: str = ""


@dataclass
class Setup:
    """A case made ready: the layer, its input, G, the exact gradients, the torch twin."""

    layer: object
    x: np.ndarray
    G: np.ndarray
    exact: dict
    twin: object
    names: list = field(default_factory=list)


def prepare(layer, x, seed=SEED):
    """Return a Setup: G as check_layer draws it from ``seed``, exact gradients by torch."""
    from gradcheck.core import upstream_gradient
    from gradcheck.torch_oracle import torch_gradients
    from property_tests.torch_twins import torch_twin

    y = np.asarray(layer.forward(x.copy()))
    G = upstream_gradient(seed, y.shape)
    twin = torch_twin(layer)
    exact = torch_gradients(twin, x, layer.params, G)
    return Setup(layer, x, G, exact, twin, list(layer.params))


def _normwise(numeric, exact):
    scale = float(np.max(np.abs(exact), initial=0.0))
    diff = float(np.max(np.abs(numeric - exact), initial=0.0))
    return diff / scale if scale > 0 else diff


def _ours(setup, **options):
    result = gradcheck.check_layer(setup.layer, setup.x, dout=setup.G, **options)
    worst = 0.0
    for check in result.checks:
        if check.method == "fast":    # one number: the derivative along V
            scale = abs(check.analytic)
        else:
            scale = float(np.max(np.abs(setup.exact[check.tensor]), initial=0.0))
        worst = max(worst, check.max_abs_error / scale if scale > 0 else check.max_abs_error)
    return Outcome(forward_calls=result.forward_calls, passed=result.passed, accuracy=worst,
                   ours_rel_error=max(result.max_rel_error.values()), note=method_note(result))


def method_note(result):
    """``"method "`` and the methods a CheckResult used, joined by ``+``."""
    return "method " + "+".join(sorted({c.method for c in result.checks}))


def ours_full(setup):
    return _ours(setup, mode="full")


def ours_central(setup):
    return _ours(setup, mode="full", complex_step=False)


def ours_fast(setup):
    return _ours(setup, mode="fast")


class Recorder:
    """``fn`` for torch.autograd.gradcheck: counts the calls, and reads back the
    numerical derivatives torch computes from them.

    torch's central difference calls ``fn`` at ``x - d`` and then at ``x + d``
    (``d`` on one entry in slow mode, along a unit direction in fast mode) and
    takes ``(f(x+d) - f(x-d)) / (2 eps)``. Each such pair is recognized by
    comparing the inputs with their unperturbed values, and its projection on
    ``G`` is kept: ``(tensor, entry or None, direction, value)``. The time of
    this bookkeeping is summed in ``bookkeeping``.
    """

    def __init__(self, fn, inputs, G, eps=TORCH_EPS):
        import torch

        self.fn, self.eps, self.calls, self.bookkeeping = fn, eps, 0, 0.0
        self.base = [t.detach().clone() for t in inputs]
        self.G = torch.as_tensor(G, dtype=torch.float64)
        self.pending = None
        self.pairs = []
        self.direction = "torch's own u (redrawn)"

    def __call__(self, *inputs):
        import torch

        self.calls += 1
        t0 = time.perf_counter()
        with torch.no_grad():
            moved = [(k, t.detach() - b) for k, (t, b) in enumerate(zip(inputs, self.base))]
            moved = [(k, d) for k, d in moved if bool(d.any())]
        t1 = time.perf_counter()
        out = self.fn(*inputs)
        t2 = time.perf_counter()
        if moved:
            if len(moved) > 1:
                raise RuntimeError("torch moved several inputs at once; cannot read its estimate")
            k, d = moved[0]
            y = out.detach().clone()
            if self.pending is None:
                self.pending = (k, d, y)
            else:
                k0, d0, y0 = self.pending
                self.pending = None
                if k0 != k:
                    raise RuntimeError("unpaired perturbation: torch's differences changed")
                value = float(((y - y0) / (2 * self.eps) * self.G).sum())
                direction = (d - d0) / (2 * self.eps)
                nonzero = torch.nonzero(direction.reshape(-1))
                if nonzero.numel() == 1:   # one entry: a Jacobian column
                    index = int(nonzero[0, 0])
                    sign = 1.0 if float(direction.reshape(-1)[index]) > 0 else -1.0
                    self.pairs.append((k, index, None, sign * value))
                else:
                    self.pairs.append((k, None, direction.numpy().copy(), value))
        self.bookkeeping += (t1 - t0) + (time.perf_counter() - t2)
        return out

    def _nominal(self, k, pair):
        """The direction torch meant for input ``k`` in fast mode, where it can be told.

        torch draws ``u`` with its own generator (``torch.Generator()``, default
        seed): ``torch.rand(numel)`` per input in order, in float64, divided by
        its norm. That is redrawn here with public calls and kept if it matches
        the step torch actually took to 1e-6 (``(x₊ - x₋) / 2eps`` differs from
        ``u`` by the rounding of ``x ± eps u``, which is part of torch's error);
        otherwise the step actually taken is used, and ``self.direction`` says so.
        """
        import torch

        _, index, taken, _ = pair
        if taken is None:
            taken = np.zeros(self.base[k].shape)
            taken.reshape(-1)[index] = 1.0
        g = torch.Generator()
        for j in range(k + 1):
            u = torch.rand(self.base[j].numel(), generator=g).to(torch.float64)
        u = (u / u.norm()).reshape(self.base[k].shape).numpy()
        if np.max(np.abs(u - taken)) <= 1e-6 * np.max(np.abs(u)):
            return u
        self.direction = "the step taken, (x+ - x-)/2eps: torch's u could not be redrawn"
        return taken

    def accuracy(self, exact, fast):
        """Worst tensor's ``max |a - r| / max |r|`` of the recorded estimates; None if none."""
        if not self.pairs:
            return None
        worst = 0.0
        for k, ref in enumerate(exact):
            mine = [p for p in self.pairs if p[0] == k]
            if not mine:
                continue
            if fast:
                a = np.array([p[3] for p in mine])
                r = np.array([float(np.sum(ref * self._nominal(k, p))) for p in mine])
                worst = max(worst, _normwise(a, r))
            else:
                numeric = np.full(ref.size, np.nan)
                for _, index, _, value in mine:
                    numeric[index] = value
                if np.isnan(numeric).any():
                    return None
                worst = max(worst, _normwise(numeric, ref.reshape(-1)))
        return worst


def _torch(setup, fast_mode):
    import torch

    inputs = [torch.tensor(setup.x, dtype=torch.float64, requires_grad=True)]
    inputs += [torch.tensor(setup.layer.params[k], dtype=torch.float64, requires_grad=True)
               for k in setup.names]
    names, twin = setup.names, setup.twin
    recorder = Recorder(lambda x, *ps: twin(x, dict(zip(names, ps))), inputs, setup.G)
    passed = torch.autograd.gradcheck(recorder, tuple(inputs), eps=TORCH_EPS, atol=TORCH_ATOL,
                                      rtol=TORCH_RTOL, fast_mode=fast_mode,
                                      raise_exception=False)
    exact = [setup.exact["x"]] + [setup.exact[k] for k in names]
    accuracy = recorder.accuracy(exact, fast_mode)
    note = (f"atol={TORCH_ATOL:g} rtol={TORCH_RTOL:g} eps={TORCH_EPS:g}; "
            f"recorder time {recorder.bookkeeping:.3f} s subtracted")
    if fast_mode:
        note += f"; accuracy along {recorder.direction}"
    return Outcome(forward_calls=recorder.calls, passed=bool(passed), accuracy=accuracy,
                   bookkeeping=recorder.bookkeeping, note=note)


def torch_slow(setup):
    return _torch(setup, fast_mode=False)


def torch_fast(setup):
    return _torch(setup, fast_mode=True)


RUNNERS = {"ours_full": ours_full, "ours_central": ours_central, "ours_fast": ours_fast,
           "torch_slow": torch_slow, "torch_fast": torch_fast}


# ----------------------------------------------------------------------- timing
PAUSE = 0.05


def timed(run, setup, repeat_below=0.5, budget=2.0, max_runs=5):
    """Return (fastest seconds, runs, last Outcome): one run when it takes ``repeat_below``
    or more, else up to ``max_runs`` within ``budget`` seconds. Bookkeeping is subtracted.

    The fastest run is the one least disturbed by other processes. A short pause
    comes first: idle worker threads of the other library spin for a while.
    """
    times = []
    while True:
        time.sleep(PAUSE)
        t0 = time.perf_counter()
        outcome = run(setup)
        times.append(time.perf_counter() - t0 - outcome.bookkeeping)
        if times[0] >= repeat_below or len(times) >= max_runs or sum(times) >= budget:
            return min(times), len(times), outcome


_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads")


def set_threads(n):
    """Run torch and NumPy's OpenBLAS on ``n`` threads; return what was set, as words.

    OpenBLAS has no Python API for this: its ``*_set_num_threads`` is called
    through ctypes on the library NumPy loaded (as threadpoolctl does). If it
    cannot be found, NumPy keeps its own count and the words say so.
    """
    import ctypes

    import torch

    torch.set_num_threads(n)
    blas = "NumPy BLAS threads unchanged (no OpenBLAS found)"
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()
                     and line.split()[-1].startswith("/")}
    except OSError:
        paths = set()
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        setter = next((getattr(library, name) for name in _BLAS_SETTERS
                       if hasattr(library, name)), None)
        if setter is not None:
            setter(ctypes.c_int(n))
            blas = f"OpenBLAS {n}"
            break
    return f"torch {torch.get_num_threads()}, {blas}"


def measure_case(case, skip=(), log=print):
    """Run every method of ``case`` (but those in ``skip``); return its rows."""
    layer, x = case.build()
    setup = prepare(layer, x)
    analytic = _backward(layer, x, setup.G)
    backward_vs_torch = max(_normwise(analytic[k], setup.exact[k]) for k in analytic)
    rows = []
    for method in case.methods:
        row = {"case": case.name, "shape": case.shape, "entries": entries(layer, x),
               "method": method, "backward_vs_torch": backward_vs_torch}
        if method in skip:
            rows.append({**row, "note": "skipped (--quick)"})
            log(f"{case.name:<12} {method:<13} skipped (--quick)")
            continue
        seconds, runs, outcome = timed(RUNNERS[method], setup)
        row.update(seconds=seconds, runs=runs, forward_calls=outcome.forward_calls,
                   passed=outcome.passed, accuracy=outcome.accuracy,
                   ours_rel_error=outcome.ours_rel_error, note=outcome.note)
        rows.append(row)
        log(_format(row))
    slow = next((r for r in rows if r["method"] == "torch_slow" and r.get("seconds")), None)
    for row in rows:
        if slow is not None and row.get("seconds") is not None:
            row["time_vs_torch_slow"] = row["seconds"] / slow["seconds"]
            row["calls_vs_torch_slow"] = row["forward_calls"] / slow["forward_calls"]
    return rows


def _backward(layer, x, G):
    layer.forward(x.copy())
    dx = layer.backward(G.copy())
    return {"x": np.asarray(dx), **{k: np.asarray(v) for k, v in layer.grads.items()}}


# ---------------------------------------------------------------------- reports
def _fmt(value, spec):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, spec)


def _format(row):
    return (f"{row['case']:<12} {row['method']:<13} {_fmt(row.get('seconds'), '10.3f')} s "
            f"{_fmt(row.get('forward_calls'), '8d')} calls  "
            f"{'passed' if row.get('passed') else 'FAILED':<6}  "
            f"accuracy {_fmt(row.get('accuracy'), '9.2e'):>9}  "
            f"ours rel err {_fmt(row.get('ours_rel_error'), '9.2e'):>9}")


def table(rows):
    """Return the table's lines: one per case and method, with the ratios to torch slow."""
    head = (f"{'case':<12} {'method':<13} {'seconds':>9} {'fwd calls':>9} "
            f"{'passed':>6} {'accuracy':>9} {'ours err':>9} {'t/torch slow':>12} "
            f"{'calls/torch slow':>16}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.get("seconds") is None:
            lines.append(f"{r['case']:<12} {r['method']:<13} {'skipped':>9}")
            continue
        lines.append(
            f"{r['case']:<12} {r['method']:<13} {r['seconds']:9.3f} {r['forward_calls']:9d} "
            f"{'yes' if r['passed'] else 'NO':>6} {_fmt(r.get('accuracy'), '9.1e'):>9} "
            f"{_fmt(r.get('ours_rel_error'), '9.1e'):>9} "
            f"{_fmt(r.get('time_vs_torch_slow'), '12.4f'):>12} "
            f"{_fmt(r.get('calls_vs_torch_slow'), '16.4f'):>16}")
    return lines


def write_csv(rows, path):
    """Write ``rows`` to ``path`` with the columns of :data:`COLUMNS` (blank where absent)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, restval="", extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def summarize(rows):
    """Return the goal lines: ours full against torch slow on the conv, fast mode on 10^6."""
    def find(case, method):
        return next((r for r in rows if r["case"] == case and r["method"] == method
                     and r.get("seconds") is not None), None)

    lines = []
    ours, slow = find(CONV_CASE, "ours_full"), find(CONV_CASE, "torch_slow")
    if ours and slow:
        speedup = slow["seconds"] / ours["seconds"]
        calls = slow["forward_calls"] / ours["forward_calls"]
        lines.append(f"ours full vs torch slow on the conv: {speedup:.1f}× faster "
                     f"(goal ≥ {GOAL_SPEEDUP:g}×): "
                     + ("goal met" if speedup >= GOAL_SPEEDUP else "GOAL NOT MET")
                     + f" ({ours['seconds']:.2f} s vs {slow['seconds']:.2f} s; "
                       f"{ours['forward_calls']} vs {slow['forward_calls']} forward calls, "
                       f"{calls:.1f}× fewer)")
    else:
        lines.append("ours full vs torch slow on the conv: not measured "
                     "(torch's slow mode skipped, --quick)")
    big = [r for r in rows if r["method"] == "ours_fast" and r["case"].endswith("_1e6")
           and r.get("seconds") is not None]
    if big:
        worst = max(big, key=lambda r: r["seconds"])
        each = ", ".join(f"{r['case']} {r['seconds']:.3f} s" for r in big)
        lines.append(f"fast mode on a 10^6-entry input: {worst['seconds']:.3f} s "
                     f"(goal < {GOAL_FAST_SECONDS:g} s): "
                     + ("goal met" if worst["seconds"] < GOAL_FAST_SECONDS else "GOAL NOT MET")
                     + f" (slowest of: {each})")
    else:
        lines.append("fast mode on a 10^6-entry input: not measured")
    return lines


def run(cases, out_path, skip=None, threads=1, log=echo):
    """Set the threads, warm up, measure every case, write the CSV; return the rows."""
    skip = skip or {}
    set_threads(threads)
    for case in TINY_CASES[:1]:          # imports, thread pools, first-call costs
        setup = prepare(*case.build())
        for method in METHODS:
            RUNNERS[method](setup)
    rows = []
    for case in progress(cases, desc="bench_checker"):
        rows += [{**row, "threads": threads}
                 for row in measure_case(case, skip=skip.get(case.name, ()), log=log)]
    write_csv(rows, out_path)
    return rows


def _load():
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/bench_checker.csv", type=Path,
                        help="CSV to write (default: reports/bench_checker.csv)")
    parser.add_argument("--quick", action="store_true",
                        help="skip torch's slow mode on the conv, the longest part")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for torch and NumPy's BLAS (default 1, see the docstring)")
    args = parser.parse_args(argv)
    import torch

    print(f"torch {torch.__version__}, numpy {np.__version__}; threads: "
          f"{set_threads(args.threads)}; {os.cpu_count()} CPUs, load average {_load()} "
          "(other processes slow both sides); float64")
    print("accuracy = max|numerical - exact| / max|exact| of dJ = d<G, f>, worst tensor; "
          "exact by torch autograd")
    skip = {CONV_CASE: ("torch_slow",)} if args.quick else {}
    rows = run(CASES + BIG_CASES, args.out, skip=skip, threads=args.threads)
    print()
    print("\n".join(table(rows)))
    print()
    print("\n".join(summarize(rows)))
    print(f"load average at the end: {_load()}; written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
