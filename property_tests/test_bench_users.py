"""The user-style layers are right, the torch wrapper checks the same code, and the
benchmark's CSV and table are written right (no timing here)."""

import ast
import csv
import inspect

import numpy as np
import pytest
import torch

import gradcheck
from benchmarks import bench_users as bench
from benchmarks import user_layers as ul
from benchmarks.bench_checker import COLUMNS, write_csv
from benchmarks.bench_users import (
    BIG_CASES, CASES, TINY_CASES, BigCase, TorchWrapped, UserCase, entries, goal_lines,
    markdown, measure_big, merge_csv, ours_check, torch_check, torch_inputs,
)


def _name(case):
    return case.name


def test_the_layers_are_plain_numpy():
    tree = ast.parse(inspect.getsource(ul))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "numpy", "numpy.lib.stride_tricks"}
    assert not any(hasattr(getattr(ul, name), "jacobian_coloring") for name in ul.__all__)


def test_the_tiny_cases_mirror_the_benchmark():
    assert [c.name for c in TINY_CASES] == [c.name for c in CASES]
    sizes = {c.name: entries(c.build()) for c in CASES}
    assert sizes["user_conv"] == 4 * 8 * 16 * 16 + 8 * 8 * 9 + 8
    assert sizes["user_lstm_toy"] == 4 * 10 + 2 * 4 * 8 + (10 + 8 + 1) * 32
    assert sizes["user_lstm"] == 16 * 32 + 2 * 16 * 32 + (32 + 32 + 1) * 128
    assert sizes["user_attention"] == 3 * 4 * 16 * 16
    assert [b.entries for b in BIG_CASES] == [10**6, 10**7]


@pytest.mark.parametrize("case", TINY_CASES, ids=_name)
def test_every_layer_passes_both_checkers(case):
    args = case.build()
    result = ours_check(case, args)
    assert result.passed, result.message()
    for fast_mode in (False, True):
        passed, calls = torch_check(case, args, fast_mode)
        assert passed and calls > 0, fast_mode


def test_the_wrapper_runs_the_users_own_forward_and_backward():
    case = TINY_CASES[[c.name for c in TINY_CASES].index("user_lstm")]
    args = case.build()
    wrapped = TorchWrapped(case.forward, case.backward)
    inputs = torch_inputs(args)
    next_h, next_c = wrapped(*inputs)
    *outputs, cache = case.forward(*args)
    rng = np.random.default_rng(5)
    douts = [rng.normal(size=o.shape) for o in outputs]
    grads = torch.autograd.grad((next_h, next_c), inputs, [torch.tensor(d) for d in douts])
    expected = case.backward(*douts, cache)
    assert wrapped.calls == 1
    np.testing.assert_array_equal(next_h.detach().numpy(), outputs[0])
    for got, want in zip(grads, expected):
        np.testing.assert_array_equal(got.numpy(), want)


def test_the_wrapper_passes_labels_and_hyperparameters_through():
    conv = TINY_CASES[0]
    x, w, b, conv_param = conv.build()
    inputs = torch_inputs((x, w, b, conv_param))
    assert inputs[3] is conv_param
    out = TorchWrapped(conv.forward, conv.backward)(*inputs)
    out.sum().backward()
    assert all(t.grad is not None for t in inputs[:3])
    loss_case = TINY_CASES[[c.name for c in TINY_CASES].index("user_softmax")]
    scores, y = loss_case.build()
    loss = TorchWrapped(*loss_case.pair())(*torch_inputs((scores, y)))
    assert loss.shape == () and float(loss.detach()) == pytest.approx(ul.softmax_loss(scores, y)[0])


def conv_backward_not_flipped(dout, cache):
    """A classic bug: dx correlates dout with the filters as they are, not turned by 180°."""
    x, w, conv_param = cache
    return ul.conv_backward(dout, (x, w[:, :, ::-1, ::-1], conv_param))


def softmax_loss_without_mean(scores, y):
    """Another: the 1/N of the mean forgotten in the gradient."""
    loss, dscores = ul.softmax_loss(scores, y)
    return loss, dscores * scores.shape[0]


@pytest.mark.parametrize("buggy", [
    UserCase("conv", "", "", TINY_CASES[0].build, ul.conv_forward, conv_backward_not_flipped),
    UserCase("softmax", "", "", TINY_CASES[5].build, softmax_loss_without_mean),
], ids=_name)
def test_a_planted_bug_fails_both_checkers(buggy):
    args = buggy.build()
    result = ours_check(buggy, args)
    assert not result.passed
    assert [c.gradient for c in result.failures()] == ["dx" if buggy.name == "conv" else "dscores"]
    assert not torch_check(buggy, args, fast_mode=False)[0]
    # torch's fast mode is not asserted: its directions are uniform on [0, 1), and
    # <v, J u> hardly changes when the kernel is turned by 180° (the kernel's sum,
    # which a positive average direction mostly sees, is the same), so it lets the
    # conv bug through on these inputs.


def _row(case, method, seconds=None, calls=None, passed=True, **extra):
    row = {"case": case, "shape": "s", "entries": 10, "method": method, **extra}
    if seconds is not None:
        row.update(seconds=seconds, forward_calls=calls, passed=passed)
    return row


def test_the_user_rows_replace_their_own_and_keep_the_reference_rows(tmp_path):
    path = tmp_path / "bench_checker.csv"
    reference = [_row("conv", "ours_full", 0.1, 296), _row("relu_1e6", "ours_fast", 0.05, 7)]
    with open(path, "w", newline="") as f:          # an older file, without peak_mb
        writer = csv.DictWriter(f, fieldnames=[c for c in COLUMNS if c != "peak_mb"])
        writer.writeheader()
        writer.writerows(reference)
    merge_csv([_row("user_conv", "ours_full", 5.0, 9000)], path)
    merge_csv([_row("user_conv", "ours_full", 0.2, 300),
               _row("user_relu_1e7", "ours_auto", 3.0, 20, peak_mb=512.0)], path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        read = list(reader)
    assert [(r["case"], r["seconds"]) for r in read] == [
        ("conv", "0.1"), ("relu_1e6", "0.05"), ("user_conv", "0.2"), ("user_relu_1e7", "3.0")]
    assert read[3]["peak_mb"] == "512.0" and read[0]["peak_mb"] == ""
    write_csv([_row("conv", "ours_full", 0.1, 296)], path)   # bench_checker rewrites the file
    merge_csv([], path)
    assert len(list(csv.DictReader(open(path, newline="")))) == 1


def _rows(conv_seconds=0.2, maxpool_seconds=0.5, big=None):
    rows = [_row("user_conv", "ours_full", conv_seconds, 300),
            _row("user_conv", "torch_slow", 30.0, 17554),
            _row("user_conv", "torch_fast", 0.01, 8),
            _row("user_maxpool", "ours_full", maxpool_seconds, 100),
            _row("user_maxpool", "torch_slow", 15.0, 16386),
            _row("user_dense", "ours_full", 0.1, 50, passed=False),
            _row("user_dense", "torch_slow", 2.0, 6210),
            _row("user_lstm", "ours_full", 0.1, 50),
            _row("user_relu_1e6", "ours_auto", 0.5, 9, peak_mb=40.0, note="method fast")]
    return rows + ([big] if big else [])


def _goal(lines, label):
    return next(line for line in lines if line.startswith(f"- {label}"))


def test_the_goals_are_read_from_the_rows():
    lines = goal_lines(_rows(big=_row("user_relu_1e7", "ours_auto", 4.0, 9, peak_mb=900.0)))
    assert _goal(lines, "conv:").endswith("150.0×, ≥ 50× (goal 100×): met")
    assert _goal(lines, "max pool:").endswith("30.0×, ≥ 50× (goal 100×): NOT MET")
    assert _goal(lines, "dense:").endswith("20.0×, ≥ 10×: NOT MET (our check failed)")
    assert _goal(lines, "LSTM step:").endswith("not measured, ≥ 10×: not measured")
    assert _goal(lines, "default mode").endswith("4.00 s, 900 MB, < 10 s and < 2 GB: met")
    lines = goal_lines(_rows(conv_seconds=0.5, maxpool_seconds=0.2,
                             big=_row("user_relu_1e7", "ours_auto", 4.0, 9, peak_mb=3000.0)))
    partly = "≥ 50× (goal 100×): met (goal 100× not reached)"
    assert _goal(lines, "conv:").endswith(f"60.0×, {partly}")
    assert _goal(lines, "max pool:").endswith(f"75.0×, {partly}")
    assert _goal(lines, "default mode").endswith(": NOT MET")


def test_a_timeout_or_a_skip_is_said_so():
    timeout = _row("user_relu_1e7", "ours_auto", note="timeout after 600 s")
    assert _goal(goal_lines(_rows(big=timeout)), "default mode").endswith(
        "not measured, < 10 s and < 2 GB: NOT MET (timeout after 600 s)")
    skipped = _row("user_relu_1e7", "ours_auto", note="skipped (--quick)")
    assert _goal(goal_lines(_rows(big=skipped)), "default mode").endswith(": not measured")


def test_the_markdown_table_has_a_line_per_measured_case():
    lines = markdown(_rows() + [_row("user_maxpool", "torch_fast", note="skipped (--quick)")],
                     "context")
    assert lines[:3] == ["## Checker speed on user-style layers", "", "context"]
    assert "| conv | 10 | 0.2 / 300 | 30 / 17,554 | 0.01 / 8 | 150.0× |" in lines
    assert "| max pool | 10 | 0.5 / 100 | 15 / 16,386 | skipped (--quick) | 30.0× |" in lines
    assert "| dense | 10 | 0.1 / 50 FAILED | 2 / 6,210 | not measured | 20.0× |" in lines
    assert "| ReLU 1000x1000 | 1,000,000 | 0.5 / 9 | 40 | yes | method fast |" in lines
    assert not any(line.startswith("| attention") for line in lines)


def test_a_big_check_runs_in_a_subprocess_and_is_killed_at_its_timeout_or_error():
    row = measure_big(BigCase("user_relu_1e6", "tiny", 20, 30), log=lambda line: None)
    assert row["passed"] is True and row["forward_calls"] > 0 and row["peak_mb"] >= 0
    assert row["entries"] == 600 and row["method"] == "ours_auto"
    row = measure_big(BigCase("user_relu_1e7", "tiny", 20, 30), timeout=0.01,
                      log=lambda line: None)
    assert row["note"] == "timeout after 0.01 s" and "seconds" not in row
    row = measure_big(BigCase("user_relu_1e7", "tiny", -1, 30), log=lambda line: None)
    assert row["note"].startswith("the check raised: ValueError") and "seconds" not in row
