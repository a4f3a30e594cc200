"""Gradients the numerical oracle cannot resolve are never "passed".

Outputs that dwarf their change (``y = x + 1e12``: a step of 1e-5 moves the
output by 1e-5 while its rounding is 1e-4) leave central differences no digit
to judge with. A check whose gradient agrees with its oracle only within that
resolution, where an error of a tenth of the gradient would pass as well,
says so (``TensorCheck.unjudged``) and fails.
"""

import numpy as np
import pytest

import gradcheck

X = np.random.default_rng(0).normal(size=(3, 4))


def _offset(offset, factor):
    """``y = x + offset`` with its backward ``factor · dout`` (right for factor 1)."""
    def forward(x):
        return x + offset, None

    def backward(dout, cache):
        return factor * dout

    return forward, backward


@pytest.mark.parametrize("offset, factor", [(1e12, 1.5), (1e12, 1.0), (1e14, -1.0),
                                            (1e300, 2.0)])
def test_central_differences_cannot_judge_outputs_that_dwarf_their_change(offset, factor):
    result = gradcheck.check_function(*_offset(offset, factor), X, complex_step=False)
    check = result.checks[0]
    assert not result.passed and not check.passed
    assert "resolves this gradient only to" in check.unjudged
    message = result.message()
    assert "1 could not be judged" in message and "could not be judged" in check.describe()
    assert check.to_row()["unjudged"] == check.unjudged


@pytest.mark.parametrize("offset", [1e12, 1e300])
def test_the_complex_step_takes_no_difference_and_judges_them(offset):
    # y + offset in complex arithmetic keeps the imaginary part h exactly.
    assert gradcheck.check_function(*_offset(offset, 1.0), X).passed


@pytest.mark.parametrize("offset, factor", [(1e12, 1.5), (1e300, 2.0)])
def test_a_wrong_derivative_there_never_passes_by_default(offset, factor):
    result = gradcheck.check_function(*_offset(offset, factor), X)
    assert not result.passed


@pytest.mark.parametrize("offset", [1e4, 1e6])
def test_outputs_a_step_resolves_are_judged(offset):
    # At 1e6 the rounding of y over the step is ~1e-5 of the derivative: resolved.
    good = gradcheck.check_function(*_offset(offset, 1.0), X, complex_step=False)
    assert good.passed and not good.checks[0].unjudged
    bad = gradcheck.check_function(*_offset(offset, 1.5), X, complex_step=False)
    assert not bad.passed and not bad.checks[0].unjudged


def test_a_dead_relu_moves_nothing_and_is_judged_exactly():
    # Every output stays 0 bit for bit: a zero gradient is resolved, not unjudged.
    def forward(x):
        return np.maximum(x, 0.0), x

    def backward(dout, x):
        return dout * (x > 0)

    result = gradcheck.check_function(forward, backward, -1.0 - np.abs(X),
                                      complex_step=False)
    assert result.passed and not result.checks[0].unjudged


def test_the_fast_mode_cannot_judge_them_either():
    result = gradcheck.check_function(*_offset(1e12, 1.5), X, mode="fast", complex_step=False)
    assert not result.passed and result.checks[0].unjudged


@pytest.mark.parametrize("offset", [1e6, 3e7, 1e12])
@pytest.mark.parametrize("factor", [1.0001, 1.01, 1.03])
@pytest.mark.parametrize("complex_step", [None, True])
def test_a_small_error_beside_a_large_constant_is_caught_by_the_complex_step(
        offset, factor, complex_step):
    # The complex step adds i·h to x: y + offset keeps it exactly. Its floor is measured
    # (0 here), not assumed from the outputs' size, and central differences, which
    # cannot resolve 1e-4 of the derivative there, do not overturn its verdict.
    bad = gradcheck.check_function(*_offset(offset, factor), X, complex_step=complex_step)
    assert not bad.passed and bad.checks[0].oracle == "complex_step"
    assert "was not theirs" not in bad.checks[0].plan
    good = gradcheck.check_function(*_offset(offset, 1.0), X, complex_step=complex_step)
    assert good.passed


def _abs_pair():
    """``y = 2 |x|``: right, but not holomorphic (the complex step reads 0 for it)."""
    def forward(x):
        return 2.0 * np.abs(x), x

    def backward(dout, x):
        return 2.0 * np.sign(x) * dout

    return forward, backward


@pytest.mark.parametrize("shape", [(1,), (3, 4)])
def test_central_differences_overturn_a_forced_complex_step_where_it_cannot_hold(shape):
    # Forced: the complex step is not tested first; it fails at abs, and central
    # differences, which resolve 2 sign(x) well, show its failure was not the backward's.
    x = np.random.default_rng(5).uniform(0.5, 1.5, size=shape) * np.where(
        np.arange(np.prod(shape)).reshape(shape) % 2, 1.0, -1.0)
    result = gradcheck.check_function(*_abs_pair(), x, complex_step=True)
    assert result.passed, result.message()
    assert result.checks[0].oracle == "finite_differences"
    assert "was not theirs" in result.checks[0].plan


def test_a_wrong_shape_keeps_the_complex_steps_verdict():
    def forward(x):
        return 3.0 * x, None

    def backward(dout, cache):
        return (3.0 * dout).T            # the right values, transposed

    result = gradcheck.check_function(forward, backward, X, complex_step=True)
    check = result.checks[0]
    assert not result.passed and check.shape_error
    assert check.oracle == "complex_step" and "was not theirs" not in check.plan


def _logistic_loss(z, labels):
    """A course's logistic loss, written the plain way: log of a sigmoid."""
    p = 1 / (1 + np.exp(-z))
    return np.mean(-(labels * np.log(p) + (1 - labels) * np.log1p(-p))), (z, labels)


def _logistic_loss_backward(dout, cache):
    z, labels = cache
    return dout * (1 / (1 + np.exp(-z)) - labels) / z.size


@pytest.mark.parametrize("z", [[30.0, -29.0, 31.5, -30.5], [29.0, -30.0, 30.5, -31.5]])
def test_a_saturated_loss_whose_sigmoid_rounds_near_1_is_not_judged_rather_than_failed(z):
    # Found killing mutants (issue 13). At |z| ≈ 30, p = 1 - 1e-13 is stored as 1 - k u:
    # -log(p) moves by whole ulps of p, a gradient of 2e-14 is far below what a step of
    # 2e-4 resolves. The noise measured at a step of 1e-7 (p unmoved: no noise) once set
    # the floor, and two correct entries failed; measured at the check's own step too,
    # the rounding shows, and the check says it cannot judge.
    z = np.array(z)
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    check = gradcheck.check_function(lambda z: _logistic_loss(z, labels),
                                     _logistic_loss_backward, z).checks[0]
    assert check.unjudged and not check.passed
    assert not any(d.startswith("only") for d in check.diagnosis)
