"""Grouped differences and mode 'auto''s budget at their limits (issue 13): a grouping that
mixes a weak term into a strong one's output is refused, never trusted to 1 %; a tensor
one call over the budget goes along a direction, and one that fits is checked in full.
"""

import warnings

import numpy as np
import pytest

import gradcheck
from gradcheck import core
from gradcheck.numerical import grouped_difference


def _mixing(weak):
    """Output 0 moved by x0 and, ``weak`` times as much, by x1; the others by one entry."""
    x = np.array([0.7, -0.4, 1.3, 0.2])

    def evaluate():
        return np.array([x[0] + weak * x[1], np.sin(x[2]), x[3] ** 2, 0.5 * x[1]])

    G = np.array([1.0, -0.5, 0.8, 0.3])
    exact = np.array([G[0], weak * G[0] + 0.5 * G[3], np.cos(x[2]) * G[1], 2 * x[3] * G[2]])
    return evaluate, x, G, exact


@pytest.mark.parametrize("weak", [1e-2, 1e-3, 1e-4])
@pytest.mark.parametrize("complex_", [False, True])
def test_a_group_whose_members_share_a_weak_output_is_refused(weak, complex_):
    evaluate, x, G, exact = _mixing(weak)
    colors = np.zeros(4, dtype=np.int64)
    if complex_:
        z = x.astype(np.complex128)
        found = grouped_difference(lambda: np.array([z[0] + weak * z[1], np.sin(z[2]),
                                                     z[3] ** 2, 0.5 * z[1]]),
                                   z, G, colors, complex_=True)
    else:
        found = grouped_difference(evaluate, x, G, colors)
    assert found.grad is None or np.allclose(found.grad, exact, rtol=1e-8, atol=0)


def test_a_valid_grouping_gives_every_entry_exactly():
    evaluate, x, G, exact = _mixing(1e-3)
    found = grouped_difference(evaluate, x, G, np.array([0, 1, 0, 1]))
    np.testing.assert_allclose(found.grad, exact, rtol=1e-8)
    assert found.groups == 2


class SharesAnOutput:
    """y = [x0 + 1e-4 · x1, x1, x2] per row: x1 feeds x0's output weakly."""

    params, grads = {}, {}

    def forward(self, x):
        self.x = x
        return np.stack([x[:, 0] + 1e-4 * x[:, 1], x[:, 1], x[:, 2]], axis=1)

    def backward(self, dout):
        dx = dout.copy()
        dx[:, 1] += 1e-4 * dout[:, 0]
        return dx

    def jacobian_coloring(self, name, shape):
        return np.zeros(shape, dtype=np.int64)     # wrong: every entry in one group


@pytest.mark.parametrize("complex_step", [False, True])
def test_a_wrong_declared_grouping_costs_calls_never_the_verdict(complex_step):
    x = np.random.default_rng(0).normal(size=(3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gradcheck.GroupingWarning)
        right = gradcheck.check_layer(SharesAnOutput(), x, mode="full",
                                      complex_step=complex_step)
    assert right.passed, right.message()
    assert right.max_rel_error["x"] < 1e-8

    class LosesTheWeakTerm(SharesAnOutput):
        def backward(self, dout):
            return dout.copy()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gradcheck.GroupingWarning)
        wrong = gradcheck.check_layer(LosesTheWeakTerm(), x, mode="full",
                                      complex_step=complex_step)
    assert not wrong.passed


class _Timed:
    """A case as the planner sees it: a measured cost per forward call."""

    def __init__(self, seconds):
        self.seconds = seconds

    def seconds_per_call(self, complex_=False):
        return self.seconds


def test_the_auto_budget_is_10000_calls_and_5_seconds_a_tensor_inclusive():
    fast = _Timed(1e-6)
    assert core._over_budget(fast, 10_000) == ""
    assert "10,001 forward calls" in core._over_budget(fast, 10_001)
    assert "(10,000 calls, 5 s a tensor)" in core._over_budget(fast, 10_001)
    slow = _Timed(1e-3)
    assert core._over_budget(slow, 5_000) == ""            # 5 s: at the limit
    assert core._over_budget(slow, 5_001).startswith("every entry would take ~5,001 forward "
                                                     "calls (~5 s), over the budget")
    assert "at least ~" in core._over_budget(slow, 5_001, least=True)


def _sum_of_sines(x):
    return np.array([np.sum(np.sin(x))]), x


def _sum_of_sines_backward(dout, x):
    return dout[0] * np.cos(x)


def test_a_tensor_one_entry_over_the_auto_budget_goes_along_a_direction():
    # One output: no grouping; central differences take 2 calls an entry, 10,002 here.
    x = np.random.default_rng(1).normal(size=5_001)
    result = gradcheck.check_function(_sum_of_sines, _sum_of_sines_backward, x,
                                      complex_step=False)
    check = result.checks[0]
    assert result.passed
    assert check.method == "fast"
    assert "every entry would take ~10,002 forward calls" in check.plan
    assert result.forward_calls < 20
