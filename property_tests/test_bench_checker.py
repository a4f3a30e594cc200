"""The checker benchmark measures like against like, and reads its goals right (no timing here)."""

import csv
import re

import numpy as np
import pytest
import torch

from benchmarks import bench_checker as bench
from benchmarks.bench_checker import (
    BIG_CASES, CASES, COLUMNS, RUNNERS, TINY_CASES, TORCH_EPS, Recorder, entries, prepare,
    summarize, table, write_csv,
)


def _name(case):
    return case.name


@pytest.mark.parametrize("case", CASES + BIG_CASES, ids=_name)
def test_the_cases_build_at_their_documented_sizes(case):
    layer, x = case.build()
    y = np.asarray(layer.forward(x.copy()))
    assert np.all(np.isfinite(y))
    assert layer.complex_safe      # ours_full is the complex step on every case
    if case.name == "conv":        # the conv: x, W and b
        assert entries(layer, x) == 8776
    if case in BIG_CASES:
        assert x.size >= 10**6


def test_every_case_has_a_tiny_version_with_the_same_methods():
    big = {c.name: c.methods for c in CASES + BIG_CASES}
    assert {c.name: c.methods for c in TINY_CASES} == big


@pytest.mark.parametrize("case", TINY_CASES, ids=_name)
def test_every_method_runs_on_a_tiny_case_and_they_agree(case):
    setup = prepare(*case.build())
    outcomes = {method: RUNNERS[method](setup) for method in case.methods}
    assert {method: o.passed for method, o in outcomes.items()} == \
        {method: True for method in case.methods}
    for method, o in outcomes.items():
        assert o.forward_calls > 0, method
        # every method's numerical derivative is measured, and is close to the exact one
        assert o.accuracy is not None and 0 <= o.accuracy < 1e-6, (method, o.accuracy)
        assert (o.ours_rel_error is not None) == method.startswith("ours"), method


def _torch_inputs(setup):
    return [torch.tensor(setup.x, requires_grad=True)] + \
        [torch.tensor(setup.layer.params[k], requires_grad=True) for k in setup.names]


def _fn(setup):
    return lambda x, *ps: setup.twin(x, dict(zip(setup.names, ps)))


def test_the_recorder_reads_back_torchs_own_central_differences():
    setup = prepare(*TINY_CASES[0].build())
    inputs = _torch_inputs(setup)
    recorder = Recorder(_fn(setup), inputs, setup.G)
    assert torch.autograd.gradcheck(recorder, tuple(inputs), fast_mode=False)
    n = sum(t.numel() for t in inputs)
    assert len(recorder.pairs) == n and recorder.calls >= 2 * n
    fn = _fn(setup)
    with torch.no_grad():
        for k, index, _, value in recorder.pairs:
            args = [t.detach().clone() for t in inputs]
            entry = float(args[k].view(-1)[index])
            args[k].view(-1)[index] = entry - TORCH_EPS
            low = fn(*args)
            args[k].view(-1)[index] = entry + TORCH_EPS
            high = fn(*args)
            by_hand = float(((high - low) / (2 * TORCH_EPS) * torch.tensor(setup.G)).sum())
            assert value == pytest.approx(by_hand, rel=1e-13, abs=1e-13)
    # and the accuracy is that of these differences against the exact gradient
    exact = [setup.exact["x"]] + [setup.exact[k] for k in setup.names]
    assert 0 < recorder.accuracy(exact, fast=False) < 1e-8


def test_the_recorder_finds_the_direction_of_torchs_fast_mode():
    setup = prepare(*TINY_CASES[1].build())
    inputs = _torch_inputs(setup)
    recorder = Recorder(_fn(setup), inputs, setup.G)
    assert torch.autograd.gradcheck(recorder, tuple(inputs), fast_mode=True)
    assert len(recorder.pairs) == len(inputs)
    exact = [setup.exact["x"]] + [setup.exact[k] for k in setup.names]
    assert recorder.accuracy(exact, fast=True) < 1e-6
    assert recorder.direction == "torch's own u (redrawn)"


def _row(case, method, seconds, calls, **extra):
    return {"case": case, "shape": "s", "entries": 1, "method": method, "seconds": seconds,
            "forward_calls": calls, "passed": True, **extra}


def test_the_csv_has_the_documented_columns(tmp_path):
    for column in COLUMNS:          # each column is explained in the module's docstring
        assert f"``{column}``" in bench.__doc__, column
    rows = [_row("conv", "ours_full", 0.5, 10, accuracy=1e-16, ours_rel_error=2e-15,
                 time_vs_torch_slow=0.025, calls_vs_torch_slow=0.5),
            {"case": "conv", "shape": "s", "entries": 1, "method": "torch_slow",
             "accuracy": None, "note": "skipped (--quick)"}]
    path = tmp_path / "sub" / "bench_checker.csv"
    write_csv(rows, path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        read = list(reader)
    assert read[0]["seconds"] == "0.5" and read[0]["passed"] == "True"
    assert read[1]["seconds"] == "" and read[1]["accuracy"] == ""
    assert len(table(rows)) == 2 + len(rows)


def test_the_summary_reads_both_goals():
    rows = [_row("conv", "ours_full", 0.1, 100), _row("conv", "torch_slow", 20.0, 17600),
            _row("relu_1e6", "ours_fast", 0.2, 8), _row("dense_1e6", "ours_fast", 0.4, 9),
            _row("dense_1e6", "torch_fast", 5.0, 8)]
    speed, fast = summarize(rows)
    assert re.match(r"ours full vs torch slow on the conv: 200\.0× faster \(goal ≥ 100×\): "
                    r"goal met", speed)
    assert "176.0× fewer" in speed
    assert fast.startswith("fast mode on a 10^6-entry input: 0.400 s (goal < 1 s): goal met")
    rows[0]["seconds"], rows[3]["seconds"] = 2.0, 1.5
    speed, fast = summarize(rows)
    assert "10.0× faster (goal ≥ 100×): GOAL NOT MET" in speed
    assert "1.500 s (goal < 1 s): GOAL NOT MET" in fast


def test_the_summary_says_what_quick_left_out():
    rows = [_row("conv", "ours_full", 0.1, 100),
            {"case": "conv", "method": "torch_slow", "note": "skipped (--quick)"}]
    speed, fast = summarize(rows)
    assert speed == ("ours full vs torch slow on the conv: not measured "
                     "(torch's slow mode skipped, --quick)")
    assert fast == "fast mode on a 10^6-entry input: not measured"


def test_the_thread_count_reaches_both_libraries():
    default = torch.get_num_threads()
    try:
        words = bench.set_threads(1)
        assert torch.get_num_threads() == 1
        assert words == "torch 1, OpenBLAS 1" or "unchanged" in words
    finally:
        bench.set_threads(default)
