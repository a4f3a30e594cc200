"""Grouped (Curtis–Powell–Reid) full checks: far fewer forward calls, never an assumption."""

import warnings

import numpy as np
import pytest
from hypothesis import given

import gradcheck
from gradcheck.numerical import grouped_difference
from property_tests.strategies import conv_cases
from reference_impls import Conv2D, Dense


def _conv(seed=0):
    rng = np.random.default_rng(seed)
    return (Conv2D(rng.normal(size=(3, 3, 8, 8)), rng.normal(size=8), padding=1),
            rng.normal(size=(16, 16, 8, 4)))


@pytest.mark.parametrize("complex_step, per_group", [(True, 2), (False, 3)])
def test_a_conv_is_checked_entry_by_entry_in_a_few_hundred_calls(complex_step, per_group):
    layer, x = _conv()
    result = gradcheck.check_layer(layer, x, mode="full", complex_step=complex_step)
    assert result.passed, result.message()
    # Groups: x by (row phase, column phase, channel) = 3·3·8, W by (a, b, c) = 72, b: 1.
    assert result.forward_calls == 6 + per_group * (72 + 72 + 1)
    entries = x.size + sum(v.size for v in layer.params.values())
    assert entries == 8776


class CouplesItsExamples:
    """Subtracts the batch mean: every output moves with every example."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        return x - x.mean(axis=1, keepdims=True)

    def backward(self, dout):
        return dout - dout.mean(axis=1, keepdims=True)


class ClaimsIndependentExamples(CouplesItsExamples):
    def jacobian_coloring(self, name, shape):
        return np.broadcast_to(np.arange(shape[0])[:, None], shape).copy()


def test_a_wrong_declared_grouping_is_caught_and_the_check_stays_exact():
    x = np.random.default_rng(1).normal(size=(3, 5))
    with pytest.warns(gradcheck.GroupingWarning, match=r"jacobian_coloring\('x'\)"):
        result = gradcheck.check_layer(ClaimsIndependentExamples(), x, complex_step=False)
    assert result.passed, result.message()
    assert result.forward_calls > 2 * x.size       # fell back to one entry at a time


def test_independence_is_found_by_probing_only_where_it_holds():
    x = np.random.default_rng(2).normal(size=(3, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # a trial that fails is silent
        coupled = gradcheck.check_layer(CouplesItsExamples(), x, complex_step=False)
    # Each trial of a period costs 3 calls, each group 3. The rows are
    # independent (period 1 holds along axis 0), the columns (examples) are not
    # (periods 1 and 2 fail along axis 1): 5 groups, one per column.
    assert coupled.passed
    assert coupled.forward_calls == 6 + 3 * 3 + 3 * 5
    assert "entries 1×5 apart along its axes" in coupled.checks[0].plan

    class Elementwise(CouplesItsExamples):
        def forward(self, x):
            self.x = x
            return np.sin(x)

        def backward(self, dout):
            return dout * np.cos(self.x)

    independent = gradcheck.check_layer(Elementwise(), x, complex_step=False)
    assert independent.passed
    # Period 1 holds along both axes: one group of all 15 entries.
    assert independent.forward_calls == 6 + 3 * 2 + 3 * 1


class DoubledW(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = 2 * self.grads["W"]
        return dx


def test_grouping_still_catches_and_localizes_a_bug():
    rng = np.random.default_rng(3)
    layer = DoubledW(rng.normal(size=(4, 6)), rng.normal(size=(4, 1)))
    result = gradcheck.check_layer(layer, rng.normal(size=(6, 5)))
    (failure,) = result.failures()
    assert failure.tensor == "W" and failure.mismatched == 24
    assert "analytic ≈ 2 × numeric" in result.message()


@given(case=conv_cases())
def test_grouped_and_one_by_one_checks_agree_on_every_conv(case):
    grouped = gradcheck.check_layer(case.layer, case.x, mode="full")
    single = gradcheck.check_layer(case.layer, case.x, mode="full", coloring=False)
    assert grouped.passed and single.passed
    # Both are complex-step values of the same derivatives: equal to rounding.
    for a, b in zip(grouped.checks, single.checks):
        assert a.max_rel_error < 1e-12 and b.max_rel_error < 1e-12


def test_grouped_difference_refuses_a_group_whose_entries_share_an_output():
    x = np.array([1.0, 2.0, 3.0])
    found = grouped_difference(lambda: np.array([x.sum()]), x, np.ones(1), np.zeros(3, int))
    assert found.grad is None


def test_a_coloring_of_the_wrong_shape_is_named():
    layer, x = _conv()
    with pytest.raises(ValueError, match=r"`coloring\['x'\]` must be an integer array of shape"):
        gradcheck.check_layer(layer, x, coloring={"x": np.zeros((2, 2), int)})


@pytest.mark.parametrize("complex_step", [True, False])
def test_a_probe_the_layer_ignores_is_not_taken_for_a_zero_gradient(complex_step):
    # Softmax ignores a shift of all its inputs by the same amount: a group
    # probed with one step for all (here the guess that the 3 entries of the
    # single example are independent) would read a zero gradient. The probes
    # use distinct steps, so the guess is refused and the check stays exact.
    from reference_impls import Softmax

    x = np.array([[0.03455842], [0.08216181], [0.03304371]])
    result = gradcheck.check_layer(Softmax(), x, complex_step=complex_step)
    assert result.passed, result.message()
