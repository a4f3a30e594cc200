"""What a user reads off a run (issue 13): the summary CSV's median and its row order, and
the command line's exit code when the user's own layer raises (2: no verdict).
"""

import sys

import pandas as pd
import pytest

from gradcheck import cli
from gradcheck.report import SUMMARY_CSV, write_reports


def _row(layer, gradient, oracle, error, seed):
    return {"test": f"t::{layer}", "layer": layer, "config": "{}", "seed": seed,
            "tensor": gradient[1:], "gradient": gradient, "oracle": oracle, "shape": "3",
            "size": 3, "max_rel_error": error, "max_abs_error": error, "tolerance": 1e-6,
            "mismatched": int(error > 1e-6), "excluded": 0, "nondifferentiable": 0, "tied": 0,
            "method": "full", "passed": error <= 1e-6, "forward_calls": 8, "self_checks": ""}


def test_the_summary_gives_the_median_and_the_worst_of_each_gradients_cases(tmp_path):
    # Four cases: the median (2.5e-9) is neither the mean (2.6e-7) nor a case's value.
    errors = [1e-9, 2e-9, 3e-9, 1e-6]
    rows = [_row("Tanh", "dx", "finite_differences", e, seed) for seed, e in enumerate(errors)]
    write_reports(rows, tmp_path)
    summary = pd.read_csv(tmp_path / SUMMARY_CSV)
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["cases"] == 4
    assert row["median_rel_error"] == pytest.approx(2.5e-9, rel=1e-6)
    assert row["max_rel_error"] == pytest.approx(1e-6, rel=1e-6)
    assert bool(row["passed"])


def test_the_summary_rows_are_ordered_by_layer_then_oracle_then_gradient(tmp_path):
    rows = []
    for layer in ("Softmax", "Conv", "Dense"):
        for oracle in ("torch", "finite_differences"):
            for gradient in ("dx", "dW", "db"):
                rows.append(_row(layer, gradient, oracle, 1e-9, 0))
    write_reports(rows, tmp_path)
    summary = pd.read_csv(tmp_path / SUMMARY_CSV)
    order = list(zip(summary["layer"], summary["oracle"], summary["gradient"]))
    assert order == sorted(order)
    assert order[:3] == [("Conv", "finite_differences", "dW"),
                         ("Conv", "finite_differences", "db"),
                         ("Conv", "finite_differences", "dx")]
    assert order[-1] == ("Softmax", "torch", "dx")


LAYER = '''
import numpy as np


class Explodes:
    def __init__(self, where):
        self.where, self.params, self.grads = where, {}, {}

    def forward(self, x):
        if self.where == "forward":
            raise RuntimeError("a shape my layer did not expect")
        self.x = x
        return np.tanh(x)

    def backward(self, dout):
        if self.where == "backward":
            raise ZeroDivisionError("my backward divided by zero")
        return dout * (1 - np.tanh(self.x) ** 2)


def in_forward():
    return Explodes("forward"), np.linspace(-1, 1, 4)


def in_backward():
    return Explodes("backward"), np.linspace(-1, 1, 4)


def nowhere():
    return Explodes(""), np.linspace(-1, 1, 4)
'''


@pytest.fixture
def module(tmp_path, monkeypatch):
    name = f"exploding_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(LAYER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize("factory, error", [("in_forward", "RuntimeError"),
                                            ("in_backward", "ZeroDivisionError")])
def test_an_exception_raised_in_the_users_layer_exits_2_not_1(module, capsys, factory, error):
    assert (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE) == (0, 1, 2)
    assert cli.main(["check", f"{module}:{factory}"]) == 2
    err = capsys.readouterr().err
    assert error in err
    assert "gradcheck check: error: the command stopped on the exception above" in err
    assert cli.main(["check", f"{module}:nowhere"]) == 0
