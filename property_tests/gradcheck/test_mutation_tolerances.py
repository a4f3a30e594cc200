"""The tolerances and limits a user relies on, as the numbers the README gives, and what
each one decides: a constant loosened in its table must fail here (issue 13).

Each number is asserted literally (a test that compared with the table itself would pass
whatever the table says), and next to it a check whose verdict depends on it.
"""

import warnings

import numpy as np
import pytest

import gradcheck
from gradcheck import metrics, numerical, options, selfcheck


def test_the_documented_tolerances_and_limits_are_the_numbers_in_force():
    assert options.FD_TOLERANCE == 1e-6
    assert options.TORCH_TOLERANCE == 1e-10
    assert options.COMPLEX_STEP_TOLERANCE == 1e-10
    assert options.AUTO_MAX_CALLS == 10_000
    assert options.AUTO_MAX_SECONDS == 5.0
    assert options.FAST_FALLBACK_LIMIT == 100_000
    float64, float32, float16 = (options.PRECISIONS[k] for k in ("float64", "float32", "float16"))
    assert (float64.fd_tolerance, float64.torch_tolerance, float64.noise_factor) == (
        1e-6, 1e-10, 64.0)
    assert (float32.fd_tolerance, float32.torch_tolerance, float32.noise_factor) == (
        1e-3, 1e-4, 8.0)
    assert (float16.fd_tolerance, float16.torch_tolerance, float16.noise_factor) == (
        3e-2, 3e-2, 4.0)
    assert float64.unit_roundoff == 2.0 ** -53
    assert float32.unit_roundoff == 2.0 ** -24
    assert float64.step == pytest.approx(6.055454e-06, rel=1e-6)
    assert numerical.STEP == float64.step
    assert numerical.COMPLEX_STEP == 1e-30
    assert metrics.RHO == 1e-2
    assert selfcheck.ROUNDING_ULPS == 64


def _sine(scale_error=1.0):
    """A user's elementwise function pair, its backward off by ``scale_error``."""
    def forward(x):
        return np.sin(x) * x, x

    def backward(dout, x):
        return dout * (np.cos(x) * x + np.sin(x)) * scale_error

    return forward, backward


def test_a_complex_step_check_is_judged_at_1e_10():
    x = np.linspace(-2.0, 2.0, 6)
    forward, backward = _sine()
    right = gradcheck.check_function(forward, backward, x, complex_step=True)
    assert right.passed
    assert [(c.method, c.tolerance) for c in right.checks] == [("complex_step", 1e-10)]
    assert right.checks[0].max_rel_error < 1e-14
    assert "<= 1e-10" in right.message()
    # A real error fails it, and is confirmed by central differences.
    forward, backward = _sine(1.0 + 1e-4)
    wrong = gradcheck.check_function(forward, backward, x, complex_step=True)
    assert not wrong.passed
    assert wrong.checks[0].max_rel_error == pytest.approx(1e-4, rel=1e-3)


def test_a_central_difference_check_fails_an_error_of_1e_5_and_passes_one_of_1e_8():
    x = np.linspace(-2.0, 2.0, 7)
    for error, passes in ((1e-5, False), (3e-6, False), (1e-8, True)):
        forward, backward = _sine(1.0 + error)
        result = gradcheck.check_function(forward, backward, x, complex_step=False)
        assert result.passed is passes, (error, result.message())


class Float32Scale:
    """y = w ⊙ x computed in float32, as a user's layer on float32 arrays is."""

    def __init__(self, w, error=1.0):
        self.params, self.grads, self.error = {"w": w}, {}, error

    def forward(self, x):
        self.x = x
        return self.params["w"] * x

    def backward(self, dout):
        self.grads = {"w": (dout * self.x).astype(np.float32)}
        return (dout * self.params["w"] * self.error).astype(np.float32)


def test_a_float32_layer_is_judged_at_1e_3_and_an_error_of_1e_2_fails():
    rng = np.random.default_rng(3)
    w = rng.uniform(0.5, 1.5, size=6).astype(np.float32)
    x = rng.uniform(0.5, 1.5, size=6).astype(np.float32)
    with pytest.warns(gradcheck.PrecisionWarning, match="float32.*tolerance 0.001"):
        right = gradcheck.check_layer(Float32Scale(w), x)
    assert right.passed, right.message()
    assert right.dtype == "float32"
    assert {c.tolerance for c in right.checks} == {1e-3}
    with pytest.warns(gradcheck.PrecisionWarning):
        wrong = gradcheck.check_layer(Float32Scale(w, error=1.01), x)
    assert not wrong.passed
    assert wrong.max_rel_error["x"] == pytest.approx(0.01, rel=0.2)
    assert wrong.max_rel_error["w"] < 1e-3


class RoundsItsOutput:
    """A float64 layer (params and input) whose forward returns float32: y = tanh(x) · w."""

    def __init__(self, w):
        self.params, self.grads = {"w": w}, {}

    def forward(self, x):
        self.x = x
        return (np.tanh(x) * self.params["w"]).astype(np.float32)

    def backward(self, dout):
        self.grads = {"w": dout * np.tanh(self.x)}
        return dout * self.params["w"] * (1.0 - np.tanh(self.x) ** 2)


def test_a_float64_layer_returning_float32_is_warned_about_and_judged_as_float32():
    rng = np.random.default_rng(4)
    layer = RoundsItsOutput(rng.uniform(0.5, 1.5, size=5))
    x = rng.uniform(-1.0, 1.0, size=5)
    with pytest.warns(gradcheck.PrecisionWarning, match="computes in float32"):
        result = gradcheck.check_layer(layer, x)
    assert result.passed, result.message()
    assert result.dtype == "float32"
    assert {c.tolerance for c in result.checks} == {1e-3}


def test_a_float64_layer_gets_no_precision_warning():
    rng = np.random.default_rng(4)
    x = rng.uniform(-1.0, 1.0, size=5)
    forward, backward = _sine()
    with warnings.catch_warnings():
        warnings.simplefilter("error", gradcheck.PrecisionWarning)
        result = gradcheck.check_function(forward, backward, x)
    assert result.dtype == "float64"
