"""Ties judged by their sums: tied maxima found from the forward's behaviour, not its code."""

import numpy as np
import pytest

import gradcheck
from property_tests.detection.mutants import UserMaxout, UserMaxPool
from reference_impls import ReLU


def _integers(seed, *shape):
    return np.random.default_rng(seed).integers(0, 3, size=shape).astype(np.float64)


@pytest.mark.parametrize("rule", ["first", "split"])
@pytest.mark.parametrize("k, s", [(3, 2), (3, 1), (2, 2)])
def test_any_valid_tie_break_passes_with_central_differences(rule, k, s):
    result = gradcheck.check_layer(UserMaxPool(k, s, rule), _integers(1, 2, 2, 7, 7))
    assert result.passed, result.message()
    (check,) = result.checks
    assert check.method == "full" and check.tied > 0


@pytest.mark.parametrize("k, s", [(3, 2), (3, 1), (2, 2)])
def test_the_gradient_sent_to_every_tied_maximum_fails_and_is_named(k, s):
    result = gradcheck.check_layer(UserMaxPool(k, s, "all"), _integers(2, 2, 2, 7, 7))
    assert not result.passed
    (failure,) = result.failures()
    assert "tie(s) whose gradients do not add up" in failure.diagnosis[0]
    assert "mask = window == max" in failure.diagnosis[0]
    assert "a tie of" in failure.diagnosis[1]


def test_without_ties_the_same_layers_need_no_tie_judgement():
    x = np.random.default_rng(3).permutation(98).reshape(1, 2, 7, 7) * 0.1
    for rule in ("first", "all"):       # "all" is right when nothing ties
        result = gradcheck.check_layer(UserMaxPool(3, 2, rule), x)
        assert result.passed and result.checks[0].tied == 0


def test_a_kink_that_is_no_tie_keeps_its_one_sided_verdict():
    x = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 2.0]])     # three ReLU kinks of equal value
    result = gradcheck.check_layer(ReLU(), x, complex_step=False)
    assert result.passed
    assert result.checks[0].tied == 0 and result.nondifferentiable == {"x": 3}


def test_maxout_ties_are_judged_and_the_count_is_reported():
    x = np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [2.0, 2.0, 1.0], [2.0, 1.0, 1.0]])
    good = gradcheck.check_layer(UserMaxout(), x)
    assert good.passed and good.checks[0].tied == 8      # 4 ties of 2 entries
    bad = gradcheck.check_layer(UserMaxout(every=True), x)
    (failure,) = bad.failures()
    assert failure.mismatched == 4                       # one entry per wrong tie
    assert "2× the derivative" in " ".join(failure.diagnosis)
