"""The check's outer paths, as a user meets them (issue 13): the warnings point at the
user's own call; self-checks judge rounding in the precision the outputs come in; a
nondeterministic function is not grouped; mode 'auto' sends a large tensor that cannot be
grouped along a direction, and mode 'fast' sends a tensor with a kink of up to
FAST_FALLBACK_LIMIT entries entry by entry.
"""

import warnings

import numpy as np
import pytest

import gradcheck
from gradcheck import core
from gradcheck import HazardWarning, PrecisionWarning

F32_EPS = float(np.finfo(np.float32).eps)


class ScalesDoutInPlace:
    """y = 3x, whose backward multiplies the upstream gradient in place: a hazard."""

    params, grads = {}, {}

    def forward(self, x):
        return 3 * x

    def backward(self, dout):
        dout *= 3
        return dout


class Float32Dense:
    """y = x · 3 rounded to float32; ``jitter``: every other call 1 float32 ulp larger, as a
    threaded float32 reduction may be; ``shift``: backward computes (3 dout + b) - b in
    float32, exact but for float32 rounding."""

    params, grads = {}, {}

    def __init__(self, jitter=False, shift=0.0):
        self.jitter, self.shift, self.calls = jitter, np.float32(shift), 0

    def forward(self, x):
        self.calls += 1
        y = (3 * x).astype(np.float32)
        return y * np.float32(1 + F32_EPS) if self.jitter and self.calls % 2 else y

    def backward(self, dout):
        return (np.float32(3) * dout.astype(np.float32) + self.shift) - self.shift


def test_hazard_and_precision_warnings_point_at_the_users_call():
    x = np.linspace(0.5, 1.5, 6)
    with pytest.warns(HazardWarning) as record:
        gradcheck.check_layer(ScalesDoutInPlace(), x)
    assert {w.filename for w in record if w.category is HazardWarning} == {__file__}
    with pytest.warns(PrecisionWarning) as record:
        gradcheck.check_layer(Float32Dense(), x)
    assert {w.filename for w in record if w.category is PrecisionWarning} == {__file__}


@pytest.mark.parametrize("layer", [Float32Dense(jitter=True), Float32Dense(shift=10.0)],
                         ids=["forward jitters by 1 float32 ulp", "backward rounds in float32"])
def test_self_checks_forgive_rounding_in_the_precision_of_the_outputs(layer):
    """1 float32 ulp is 1e9 float64 ulps: judged in float64, a float32 layer would be
    nondeterministic or nonlinear; judged in float32 (64 ulps allowed) it is neither."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        result = gradcheck.check_layer(layer, np.linspace(0.5, 1.5, 6), complex_step=False)
    assert result.problems == () and result.dtype == "float32"
    assert result.passed, result.message()


class Jitter:
    """y = 3x, off by 1e-9 on every other call: nondeterministic."""

    params, grads = {}, {}

    def __init__(self):
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 3 * x + (self.calls % 2) * 1e-9

    def backward(self, dout):
        return 3 * dout


def test_a_nondeterministic_function_is_not_probed_by_groups():
    """Elementwise, y = 3x would be one group: after a failed self-check, entry by entry."""
    result = gradcheck.check_layer(Jitter(), np.linspace(-1, 1, 6), complex_step=False)
    assert result.problems[0].startswith("layer.forward is nondeterministic")
    assert result.checks[0].plan.startswith("every entry by central differences, one entry "
                                            "at a time; ")


def _sum_of_sines(x):
    return np.sum(np.sin(x)), x


def _sum_of_sines_backward(dout, x):
    return dout * np.cos(x)


def test_a_large_input_of_a_scalar_loss_goes_along_a_direction_in_mode_auto():
    """One output: no grouping can hold, every entry costs its own calls, 20,000 at the
    least (complex step), over the 10,000 calls of mode 'auto'."""
    x = np.random.default_rng(0).normal(size=20_000)
    check = gradcheck.check_function(_sum_of_sines, _sum_of_sines_backward, x).checks[0]
    assert check.method == "fast" and check.passed
    assert check.plan.startswith("along one random direction: every entry would take at "
                                 "least ~20,000 forward calls (~")


def _relu(x):
    return np.maximum(x, 0.0), x


def _relu_backward(dout, x):
    return dout * (x > 0)


@pytest.mark.parametrize("size, method", [(1000, "full"), (1001, "fast")])
def test_mode_fast_checks_a_tensor_with_a_kink_entry_by_entry_up_to_the_limit(
        size, method, monkeypatch):
    """FAST_FALLBACK_LIMIT entries (here 1,000) with a ReLU input at 0 are checked entry by
    entry; one more, and the bent output is left out along the direction."""
    monkeypatch.setattr(core, "FAST_FALLBACK_LIMIT", 1000)
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 1.5, size) * rng.choice([-1.0, 1.0], size)
    x[3] = 0.0
    check = gradcheck.check_function(_relu, _relu_backward, x, mode="fast",
                                     complex_step=False).checks[0]
    assert check.passed and check.method == method
