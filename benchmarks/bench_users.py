"""Checker speed on plain user-style layers (no hints), against torch.autograd.gradcheck.

The layers are those of :mod:`benchmarks.user_layers`, written as a student
writes them: an ``(out, cache)`` forward and a ``backward(dout, cache)``, no
``jacobian_coloring``, no ``complex_safe``. For each case, in one process, on
one thread (``benchmarks.bench_checker.set_threads``), the same user code is
checked three ways:

- ``ours_full``: ``gradcheck.check_function(forward, backward, *args,
  mode="full")`` (``check_value_and_grad(fn, *args, mode="full")`` for the
  loss);
- ``torch_slow`` and ``torch_fast``: ``torch.autograd.gradcheck`` with
  ``fast_mode=False`` / ``True`` (eps 1e-6, atol 1e-5, rtol 1e-3: torch's
  defaults) on the user's own forward and backward, wrapped by
  :class:`TorchWrapped` in a ``torch.autograd.Function`` whose forward calls
  the NumPy forward and keeps its cache, and whose backward calls the NumPy
  backward. So both libraries judge the same user code, each with its own
  numerical derivative. Forward calls are counted as the calls of the user's
  forward (torch's own bookkeeping around them is part of its time).

Wall time is that of ``benchmarks.bench_checker.timed``: a check under 0.5 s
is run up to five times and its fastest run kept, a longer one once. The
speed-up of a case is torch slow seconds / ours full seconds.

Then the default mode (``mode`` not given: ``"auto"``) on ``relu_forward``
over 10^6 entries (1000×1000) and 10^7 entries (10000×1000), each in a fresh
subprocess (``python -m benchmarks.bench_users --child ROWS COLS``) with a
timeout (``--timeout``; 600 s by default, 120 s with ``--quick``: a check
that takes longer is killed and recorded as a timeout, and the benchmark
goes on). Peak memory there is the growth of the resident set during the
check: the peak resident set after it (``VmHWM`` of ``/proc/self/status``)
minus the resident set just before it (``/proc/self/statm``), with the
input already built, a tiny warm-up check done, and the peak reset to the
current resident set (``5`` written to ``/proc/self/clear_refs``) just before
the check. Not ``resource.getrusage``'s ``ru_maxrss``: Linux carries it over
from the parent through fork and exec, so in the child it reads the parent
benchmark's size. Where the peak cannot be reset, ``VmHWM`` is the
process's peak so far, an upper bound, and the row's note says so.

The goals (speed-up against torch slow): conv and max pool ≥ 50× (goal
100×); dense, layer norm, attention and the LSTM step ≥ 10×; the default mode
on 10^7 entries under 10 s and 2 GB. The LSTM step (N=16, D=32, H=32) and
attention (B=4, T=16, d=16) carry their goals at those sizes; each is also
measured at a toy size (N=4, D=10, H=8; 2×8×8), without a goal: there a
forward call takes ~0.1 ms, the checker's own work per call weighs as much,
and attention's K, every entry of which moves every output of its batch,
needs one probe per entry of a batch whatever the method (64 groups, 2
calls each, against torch's 2 calls per entry of all three tensors).
Avg pool and the softmax loss are measured without a goal.

Run: ``python -m benchmarks.bench_users [--quick] [--out reports/bench_checker.csv]``
(``make bench`` runs it after ``benchmarks.bench_checker``). ``--quick``
skips torch's slow mode on the conv (its longest part) and the 10^7 row.
The rows go into the CSV given by ``--out``, the file
``benchmarks.bench_checker`` writes, with its columns
(``benchmarks.bench_checker.COLUMNS``): the previous ``user_*`` rows are
replaced, every other row is kept. The table, with the goals marked, is
printed and written to ``bench_users.md`` next to the CSV (section
"Checker speed on user-style layers").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gradcheck
from benchmarks import user_layers as ul
from benchmarks.bench_checker import (
    COLUMNS, TORCH_ATOL, TORCH_EPS, TORCH_RTOL, Outcome, _fmt, _load, method_note, set_threads,
    timed, write_csv,
)
from benchmarks.progress import echo, progress

PREFIX = "user_"
METHODS = ("ours_full", "torch_slow", "torch_fast")
BIG_METHOD = "ours_auto"
TIMEOUT, QUICK_TIMEOUT = 600.0, 120.0
GOAL_BIG_SECONDS, GOAL_BIG_MB = 10.0, 2048.0
ROOT = Path(__file__).absolute().parents[1]


# --------------------------------------------------------------- the arguments
def conv_args(N=4, C=8, F=8, size=16, kernel=3, pad=1, seed=0):
    """``(x, w, b, conv_param)`` for :func:`~benchmarks.user_layers.conv_forward`, stride 1."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(F, C, kernel, kernel)) / np.sqrt(C * kernel * kernel)
    return (rng.normal(size=(N, C, size, size)), w, rng.normal(size=F),
            {"stride": 1, "pad": pad})


def pool_args(N=4, C=8, size=16, window=3, stride=2, seed=0):
    """``(x, pool_param)`` for the pooling layers: overlapping windows when stride < window."""
    pool_param = {"pool_height": window, "pool_width": window, "stride": stride}
    return np.random.default_rng(seed).normal(size=(N, C, size, size)), pool_param


def dense_args(N=16, D=64, M=32, seed=0):
    """``(x, w, b)`` for :func:`~benchmarks.user_layers.affine_forward`."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)), rng.normal(size=(D, M)) / np.sqrt(D), rng.normal(size=M)


def layernorm_args(N=16, D=64, seed=0):
    """``(x, gamma, beta, ln_param)`` for :func:`~benchmarks.user_layers.layernorm_forward`."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(N, D)), 1.0 + 0.1 * rng.normal(size=D), rng.normal(size=D),
            {"eps": 1e-5})


def softmax_args(N=16, K=10, seed=0):
    """``(scores, y)`` for :func:`~benchmarks.user_layers.softmax_loss`: integer labels."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, K)), rng.integers(0, K, size=N)


def lstm_args(N=4, D=10, H=8, seed=0):
    """``(x, prev_h, prev_c, Wx, Wh, b)`` for :func:`~benchmarks.user_layers.lstm_step_forward`."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H)),
            rng.normal(size=(D, 4 * H)) / np.sqrt(D), rng.normal(size=(H, 4 * H)) / np.sqrt(H),
            rng.normal(size=4 * H))


def attention_args(B=2, T=8, d=8, seed=0):
    """``(Q, K, V)`` for :func:`~benchmarks.user_layers.attention_forward`."""
    rng = np.random.default_rng(seed)
    return tuple(rng.normal(size=(B, T, d)) for _ in range(3))


def relu_args(rows=1000, cols=1000, seed=0):
    """``(x,)`` for :func:`~benchmarks.user_layers.relu_forward`."""
    return (np.random.default_rng(seed).normal(size=(rows, cols)),)


# ------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class UserCase:
    """One user layer at one size.

    ``backward`` None means ``forward`` is a value-and-grad function
    (``fn(*args) -> (value, gradients)``). ``goal`` is ``(minimum, target)``
    of the speed-up against torch slow (``target`` None: the minimum is the
    goal), or None for a case without one.
    """

    name: str
    label: str
    shape: str
    build: object                 # () -> args
    forward: object
    backward: object = None
    goal: tuple | None = None

    def pair(self):
        """The case as a ``(forward, backward)`` pair (a value-and-grad function adapted)."""
        if self.backward is None:
            return value_and_grad_pair(self.forward)
        return self.forward, self.backward


@dataclass(frozen=True)
class BigCase:
    """The default mode on ``relu_forward`` over a ``rows × cols`` input, in a subprocess."""

    name: str
    label: str
    rows: int
    cols: int

    @property
    def entries(self):
        return self.rows * self.cols


def _cases(size):
    """The comparison cases, each built by ``size[name]`` (a dict of argument builders)."""
    return [
        UserCase("user_conv", "conv", "x (4,8,16,16), w (8,8,3,3), b (8,), stride 1, pad 1",
                 size["conv"], ul.conv_forward, ul.conv_backward, (50.0, 100.0)),
        UserCase("user_maxpool", "max pool", "x (4,8,16,16), 3x3 windows, stride 2",
                 size["pool"], ul.max_pool_forward, ul.max_pool_backward, (50.0, 100.0)),
        UserCase("user_avgpool", "avg pool", "x (4,8,16,16), 3x3 windows, stride 2",
                 size["pool"], ul.avg_pool_forward, ul.avg_pool_backward),
        UserCase("user_dense", "dense", "x (16,64), w (64,32), b (32,)",
                 size["dense"], ul.affine_forward, ul.affine_backward, (10.0, None)),
        UserCase("user_layernorm", "layer norm", "x (16,64), gamma (64,), beta (64,)",
                 size["layernorm"], ul.layernorm_forward, ul.layernorm_backward, (10.0, None)),
        UserCase("user_softmax", "softmax loss", "scores (16,10), integer labels (16,)",
                 size["softmax"], ul.softmax_loss),
        UserCase("user_lstm_toy", "LSTM step (toy)", "N=4, D=10, H=8",
                 size["lstm_toy"], ul.lstm_step_forward, ul.lstm_step_backward),
        UserCase("user_lstm", "LSTM step", "N=16, D=32, H=32",
                 size["lstm"], ul.lstm_step_forward, ul.lstm_step_backward, (10.0, None)),
        UserCase("user_attention_toy", "attention (toy)", "Q, K, V (2,8,8)",
                 size["attention_toy"], ul.attention_forward, ul.attention_backward),
        UserCase("user_attention", "attention", "Q, K, V (4,16,16)",
                 size["attention"], ul.attention_forward, ul.attention_backward, (10.0, None)),
    ]


#: The benchmark's sizes.
CASES = _cases({"conv": conv_args, "pool": pool_args, "dense": dense_args,
                "layernorm": layernorm_args, "softmax": softmax_args,
                "lstm_toy": lstm_args, "lstm": lambda: lstm_args(N=16, D=32, H=32),
                "attention_toy": attention_args,
                "attention": lambda: attention_args(B=4, T=16, d=16)})
#: The same layers, tiny: for the tests and the warm-up (their ``shape`` is the big one's).
TINY_CASES = _cases({
    "conv": lambda: conv_args(N=2, C=2, F=3, size=5),
    "pool": lambda: pool_args(N=2, C=2, size=7),
    "dense": lambda: dense_args(N=3, D=4, M=5),
    "layernorm": lambda: layernorm_args(N=3, D=6),
    "softmax": lambda: softmax_args(N=5, K=4),
    "lstm_toy": lambda: lstm_args(N=3, D=4, H=5),
    "lstm": lambda: lstm_args(N=3, D=4, H=5),
    "attention_toy": lambda: attention_args(B=2, T=3, d=4),
    "attention": lambda: attention_args(B=2, T=3, d=4),
})
BIG_CASES = [BigCase("user_relu_1e6", "ReLU 1000x1000", 1000, 1000),
             BigCase("user_relu_1e7", "ReLU 10000x1000", 10000, 1000)]
#: The case torch's slow mode is skipped on with --quick; the big case with a goal.
CONV_CASE, BIG_GOAL_CASE = "user_conv", "user_relu_1e7"


def differentiable(arg):
    """Whether ``check_function`` differentiates ``arg`` by default: a floating ndarray.

    (It also differentiates dicts of floating arrays; no user layer here takes one.)
    """
    return isinstance(arg, np.ndarray) and np.issubdtype(arg.dtype, np.floating)


def entries(args):
    """Entries of the differentiable arguments: what a full check differentiates."""
    return int(sum(a.size for a in args if differentiable(a)))


# -------------------------------------------------------------- the torch side
def value_and_grad_pair(fn):
    """Adapt ``fn(*args) -> (value, gradients)`` to a ``(forward, backward)`` pair.

    The forward returns ``(value, cache)`` with the gradients as the cache; the
    backward scales them by the upstream gradient of the value.
    """
    def forward(*args):
        value, grads = fn(*args)
        return np.asarray(value, dtype=np.float64), grads

    def backward(dvalue, grads):
        grads = grads if isinstance(grads, tuple) else (grads,)
        return tuple(dvalue * g for g in grads)

    return forward, backward


class TorchWrapped:
    """A user's NumPy ``(forward, backward)`` pair as a ``torch.autograd.Function``.

    ``wrapped(*args)`` takes the forward's arguments with its differentiable
    ones (float arrays) as float64 tensors, everything else (labels,
    hyperparameter dicts) as the user passes it. Its forward converts the
    tensors to NumPy copies, calls the user's forward, keeps the cache and
    returns the outputs as tensors (one tensor, or a tuple for several); its
    backward calls the user's backward with NumPy copies of the upstream
    gradients and the cache, and hands each gradient to its tensor argument
    (None to the others). ``calls`` counts the user forward's calls.

    torch's slow mode calls the backward many times on one forward's cache:
    the user's backward must not consume it (none in
    :mod:`benchmarks.user_layers` does).
    """

    def __init__(self, forward, backward):
        import torch

        self.calls = 0
        wrapper = self

        class UserFunction(torch.autograd.Function):
            @staticmethod
            def forward(ctx, *args):
                wrapper.calls += 1
                *outputs, cache = forward(*(_to_numpy(a) for a in args))
                ctx.cache, ctx.tensors = cache, [torch.is_tensor(a) for a in args]
                outputs = tuple(torch.tensor(np.asarray(o, dtype=np.float64)) for o in outputs)
                return outputs if len(outputs) > 1 else outputs[0]

            @staticmethod
            def backward(ctx, *douts):
                grads = backward(*(_to_numpy(d) for d in douts), ctx.cache)
                grads = iter(grads if isinstance(grads, (tuple, list)) else (grads,))
                return tuple(torch.as_tensor(np.asarray(next(grads), dtype=np.float64))
                             if is_tensor else None for is_tensor in ctx.tensors)

        self.function = UserFunction

    def __call__(self, *args):
        return self.function.apply(*args)


def _to_numpy(value):
    """A NumPy copy of a tensor; anything else unchanged."""
    import torch

    return value.detach().numpy().copy() if torch.is_tensor(value) else value


def torch_inputs(args):
    """The forward's arguments for torch: float arrays as float64 tensors requiring grad."""
    import torch

    return tuple(torch.tensor(a, dtype=torch.float64, requires_grad=True) if differentiable(a)
                 else a for a in args)


def torch_check(case, args, fast_mode):
    """``torch.autograd.gradcheck`` on the case's wrapped user code: (passed, forward calls)."""
    import torch

    wrapped = TorchWrapped(*case.pair())
    passed = torch.autograd.gradcheck(wrapped, torch_inputs(args), eps=TORCH_EPS,
                                      atol=TORCH_ATOL, rtol=TORCH_RTOL, fast_mode=fast_mode,
                                      raise_exception=False)
    return bool(passed), wrapped.calls


# ------------------------------------------------------------------ the methods
def ours_check(case, args, **options):
    """Our check of the case: ``check_function``, or ``check_value_and_grad`` for a loss."""
    if case.backward is None:
        return gradcheck.check_value_and_grad(case.forward, *args, **options)
    return gradcheck.check_function(case.forward, case.backward, *args, **options)


@dataclass(frozen=True)
class Setup:
    """A case with its arguments built: what :func:`benchmarks.bench_checker.timed` runs on."""

    case: UserCase
    args: tuple


def ours_full(setup):
    """Our full check of the case (every entry, or groups of entries that share no output)."""
    result = ours_check(setup.case, setup.args, mode="full")
    return Outcome(forward_calls=result.forward_calls, passed=result.passed, accuracy=None,
                   ours_rel_error=max(result.max_rel_error.values()), note=method_note(result))


def _torch(setup, fast_mode):
    """torch.autograd.gradcheck of the case's user code, as an Outcome."""
    passed, calls = torch_check(setup.case, setup.args, fast_mode)
    return Outcome(forward_calls=calls, passed=passed, accuracy=None,
                   note=f"atol={TORCH_ATOL:g} rtol={TORCH_RTOL:g} eps={TORCH_EPS:g}; "
                        "user code in a torch.autograd.Function")


def torch_slow(setup):
    """torch's slow mode: the whole numerical Jacobian, one entry at a time."""
    return _torch(setup, fast_mode=False)


def torch_fast(setup):
    """torch's fast mode: one random ``<v, J u>`` per input."""
    return _torch(setup, fast_mode=True)


RUNNERS = {"ours_full": ours_full, "torch_slow": torch_slow, "torch_fast": torch_fast}


def measure_case(case, skip=(), log=echo):
    """Time every method on ``case`` (but those in ``skip``); return its rows."""
    setup = Setup(case, case.build())
    rows = []
    for method in METHODS:
        row = {"case": case.name, "shape": case.shape, "entries": entries(setup.args),
               "method": method}
        if method in skip:
            rows.append({**row, "note": "skipped (--quick)"})
        else:
            seconds, runs, outcome = timed(RUNNERS[method], setup)
            rows.append({**row, "seconds": seconds, "runs": runs,
                         "forward_calls": outcome.forward_calls, "passed": outcome.passed,
                         "ours_rel_error": outcome.ours_rel_error, "note": outcome.note})
        log(_line(rows[-1]))
    slow = _find(rows, case.name, "torch_slow")
    for row in rows:
        if slow is not None and row.get("seconds") is not None:
            row["time_vs_torch_slow"] = row["seconds"] / slow["seconds"]
            row["calls_vs_torch_slow"] = row["forward_calls"] / slow["forward_calls"]
    return rows


# ------------------------------------------------------- the big default checks
def _rss_mb():
    """The current resident set, MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb():
    """The peak resident set since the last :func:`_reset_peak`, MiB (``VmHWM``)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _reset_peak():
    """Reset the peak resident set to the current one; False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def child(rows, cols, threads=1):
    """Check ``relu_forward`` on ``rows × cols`` in the default mode; return the measures.

    Runs in the subprocess of :func:`measure_big`: the input is built and a
    tiny check warms up first, then the check is timed and its peak memory
    measured (see the module docstring).
    """
    set_threads(threads)
    gradcheck.check_function(ul.relu_forward, ul.relu_backward, *relu_args(4, 5))
    args = relu_args(rows, cols)
    before, reset = _rss_mb(), _reset_peak()
    t0 = time.perf_counter()
    result = gradcheck.check_function(ul.relu_forward, ul.relu_backward, *args)
    seconds = time.perf_counter() - t0
    peak = _peak_mb() - before
    note = method_note(result) + f"; input {args[0].nbytes / 2**20:.0f} MiB"
    if not reset:
        note += "; peak not reset before the check: peak_mb is an upper bound"
    return {"seconds": seconds, "forward_calls": result.forward_calls,
            "passed": result.passed, "ours_rel_error": max(result.max_rel_error.values()),
            "peak_mb": peak, "note": note}


def measure_big(big, threads=1, timeout=TIMEOUT, log=echo):
    """Run :func:`child` for ``big`` in a fresh subprocess; return its row.

    A child still running after ``timeout`` seconds is killed, and one that
    fails (the check raised) is recorded too, each with a note saying so:
    the benchmark always finishes.
    """
    row = {"case": big.name, "shape": f"x ({big.rows},{big.cols})", "entries": big.entries,
           "method": BIG_METHOD, "threads": threads}
    command = [sys.executable, "-m", "benchmarks.bench_users", "--child", str(big.rows),
               str(big.cols), "--threads", str(threads)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        row["note"] = f"timeout after {timeout:g} s"
    except subprocess.CalledProcessError as error:
        last = (error.stderr.strip().splitlines() or ["no message"])[-1]
        row["note"] = f"the check raised: {last}"
    else:
        row.update(json.loads(done.stdout.strip().splitlines()[-1]), runs=1)
    log(_line(row))
    return row


# ---------------------------------------------------------------------- reports
def _find(rows, case, method, timed=True):
    """The row of ``case`` and ``method``; None if absent, or if not timed and ``timed``."""
    return next((r for r in rows if r["case"] == case and r["method"] == method
                 and (not timed or r.get("seconds") not in (None, ""))), None)


def _line(row):
    """One row as a progress line."""
    if row.get("seconds") is None:
        return f"{row['case']:<16} {row['method']:<11} {row.get('note', '')}"
    return (f"{row['case']:<16} {row['method']:<11} {row['seconds']:9.3f} s "
            f"{row['forward_calls']:8d} calls  {'passed' if row['passed'] else 'FAILED'}")


def _cell(row):
    """``seconds / calls`` of a row (FAILED appended if the check failed), or why not."""
    if row is None:
        return "not measured"
    if row.get("seconds") is None:
        return row.get("note", "")
    text = f"{row['seconds']:.3g} / {row['forward_calls']:,}"
    return text if row["passed"] else text + " FAILED"


def speedup(rows, case):
    """torch slow seconds / ours full seconds on ``case``; None if either is missing."""
    ours, slow = _find(rows, case, "ours_full"), _find(rows, case, "torch_slow")
    return None if ours is None or slow is None else slow["seconds"] / ours["seconds"]


def goal_status(rows, case):
    """Whether ``case`` meets its speed-up goal: "met ...", "NOT MET ..." or "not measured"."""
    minimum, target = case.goal
    ratio, ours = speedup(rows, case.name), _find(rows, case.name, "ours_full")
    if ratio is None:
        return "not measured"
    if not ours["passed"]:
        return "NOT MET (our check failed)"
    if ratio < minimum:
        return "NOT MET"
    if target is not None and ratio < target:
        return f"met (goal {target:g}× not reached)"
    return "met"


def big_status(row):
    """Whether the 10^7 row meets < GOAL_BIG_SECONDS s and < GOAL_BIG_MB MB (and passed)."""
    if row is None or "skipped" in str(row.get("note", "")):
        return "not measured"
    if row.get("seconds") is None:
        return f"NOT MET ({row.get('note', 'no result')})"
    met = (row["passed"] and row["seconds"] < GOAL_BIG_SECONDS
           and row["peak_mb"] < GOAL_BIG_MB)
    return "met" if met else "NOT MET"


def markdown(rows, context=""):
    """The section "Checker speed on user-style layers": the tables and the goals, as lines."""
    lines = ["## Checker speed on user-style layers", ""]
    if context:
        lines += [context, ""]
    lines += ["| layer | entries | ours full s / calls | torch slow s / calls | "
              "torch fast s / calls | speed-up vs slow |",
              "|---|---:|---:|---:|---:|---:|"]
    for case in CASES:
        found = [_find(rows, case.name, m, timed=False) for m in METHODS]
        if not any(found):
            continue
        ratio = speedup(rows, case.name)
        size = next(f"{int(r['entries']):,}" for r in found if r is not None)
        lines.append(f"| {case.label} | {size} | "
                     + " | ".join(_cell(r) for r in found)
                     + f" | {'' if ratio is None else f'{ratio:.1f}×'} |")
    lines += ["", "| default mode (auto) | entries | s / calls | peak MB | passed | note |",
              "|---|---:|---:|---:|---|---|"]
    for big in BIG_CASES:
        row = next((r for r in rows if r["case"] == big.name), None)
        if row is not None:
            passed = "" if row.get("passed") is None else ("yes" if row["passed"] else "NO")
            lines.append(f"| {big.label} | {big.entries:,} | {_cell(row)} | "
                         f"{_fmt(row.get('peak_mb'), '.0f')} | {passed} | "
                         f"{row.get('note', '')} |")
    return lines + ["", "Goals:", ""] + goal_lines(rows)


def goal_lines(rows):
    """One line per goal, with its measured value and status."""
    lines = []
    for case in CASES:
        if case.goal is None:
            continue
        minimum, target = case.goal
        ratio = speedup(rows, case.name)
        wanted = f"≥ {minimum:g}×" + (f" (goal {target:g}×)" if target else "")
        value = "not measured" if ratio is None else f"{ratio:.1f}×"
        lines.append(f"- {case.label}: speed-up vs torch slow {value}, {wanted}: "
                     f"{goal_status(rows, case)}")
    row = next((r for r in rows if r["case"] == BIG_GOAL_CASE), None)
    value = ("not measured" if row is None or row.get("seconds") is None
             else f"{row['seconds']:.2f} s, {row['peak_mb']:.0f} MB")
    lines.append(f"- default mode on 10^7 entries: {value}, < {GOAL_BIG_SECONDS:g} s and "
                 f"< {GOAL_BIG_MB / 1024:g} GB: {big_status(row)}")
    return lines


def merge_csv(rows, path):
    """Write ``rows`` into the CSV at ``path``: its ``user_*`` rows replaced, the others kept.

    The kept rows keep their values as read (text), under :data:`COLUMNS`; a
    column the file lacks is left blank.
    """
    kept = []
    if Path(path).exists():
        with open(path, newline="") as f:
            kept = [{k: v for k, v in row.items() if k in COLUMNS}
                    for row in csv.DictReader(f) if not row["case"].startswith(PREFIX)]
    write_csv(kept + rows, path)


# ------------------------------------------------------------------------- run
def run(out_path, quick=False, threads=1, timeout=TIMEOUT, log=echo):
    """Warm up, measure every case and the big checks, merge the CSV; return the rows."""
    set_threads(threads)
    warm = Setup(TINY_CASES[3], TINY_CASES[3].build())     # imports, first-call costs
    for method in METHODS:
        RUNNERS[method](warm)
    rows = []
    for case in progress(CASES, desc="bench_users"):
        skip = ("torch_slow",) if quick and case.name == CONV_CASE else ()
        rows += [{**r, "threads": threads} for r in measure_case(case, skip, log)]
    for big in BIG_CASES:
        if quick and big.name == BIG_GOAL_CASE:
            rows.append({"case": big.name, "shape": f"x ({big.rows},{big.cols})",
                         "entries": big.entries, "method": BIG_METHOD,
                         "note": "skipped (--quick)"})
            continue
        rows.append(measure_big(big, threads, timeout, log))
    merge_csv(rows, out_path)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/bench_checker.csv", type=Path,
                        help="CSV to merge the rows into (default: reports/bench_checker.csv)")
    parser.add_argument("--md", type=Path, default=None,
                        help="markdown to write (default: bench_users.md next to --out)")
    parser.add_argument("--quick", action="store_true",
                        help="skip torch's slow mode on the conv and the 10^7 row")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for torch and NumPy's BLAS (default 1)")
    parser.add_argument("--timeout", type=float, default=None,
                        help=f"seconds allowed to each big default check (default {TIMEOUT:g}, "
                             f"{QUICK_TIMEOUT:g} with --quick)")
    parser.add_argument("--child", nargs=2, type=int, metavar=("ROWS", "COLS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, threads=args.threads)))
        return 0
    import torch

    context = (f"torch {torch.__version__}, numpy {np.__version__}; threads: "
               f"{set_threads(args.threads)}; {os.cpu_count()} CPUs, load average {_load()}; "
               f"float64{'; --quick' if args.quick else ''}; {time.strftime('%Y-%m-%d')}")
    print(context)
    timeout = args.timeout or (QUICK_TIMEOUT if args.quick else TIMEOUT)
    rows = run(args.out, quick=args.quick, threads=args.threads, timeout=timeout)
    lines = markdown(rows, context + f"; load average at the end {_load()}")
    md = args.md or args.out.parent / "bench_users.md"
    md.write_text("\n".join(lines) + "\n")
    print()
    print("\n".join(lines))
    print(f"written: {args.out}, {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
