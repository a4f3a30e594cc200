"""The check's outer paths, as a user meets them (issue 13): the warnings point at the
user's own call; self-checks judge rounding in the precision the outputs come in; a
nondeterministic function is not grouped, and a discovered grouping that fails is no
user's fault; the user's step is the step of the grouping's discovery; the hazard of a
backward that writes into dout says why it matters; mode 'auto' sends a large tensor that cannot be
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
    # Not even tried: no call is spent on finding a grouping (9 calls here), the cost is
    # that of a check with grouping turned off.
    ungrouped = gradcheck.check_layer(Jitter(), np.linspace(-1, 1, 6), complex_step=False,
                                      coloring=False)
    assert result.forward_calls == ungrouped.forward_calls
    assert result.checks[0].plan == ungrouped.checks[0].plan


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


def _log_of_positives(x):
    """A user's log that refuses its domain edge, as code that validates its input does."""
    if np.any(x <= 0):
        raise ValueError("log of a non-positive entry")
    return np.log(x), x


def test_the_users_step_is_the_step_that_discovers_a_grouping():
    """A log of inputs ~3e-6, within the usual step (6e-6) of 0: with ``step=1e-9`` the
    probes that find the grouping stay inside its domain, and the elementwise log is
    checked in one group (6 calls), not entry by entry (two calls each, and more)."""
    x = np.linspace(2e-6, 4e-6, 64)
    result = gradcheck.check_function(_log_of_positives, lambda dout, x: dout / x, x,
                                      step=1e-9, complex_step=False)
    assert result.passed, result.message()
    assert result.checks[0].plan.startswith(
        "every entry by central differences, in 1 group of entries that move disjoint "
        "outputs (found by probing the function")
    assert result.checks[0].plan.endswith("; 6 forward calls")


def _sine_and_a_corner(x):
    """Elementwise sin, but the first output also takes the last entry's square: a coupling
    off the center lines that discovery probes."""
    y = np.sin(x)
    y[0, 0] += x[-1, -1] ** 2
    return y, x


def _sine_and_a_corner_backward(dout, x):
    dx = dout * np.cos(x)
    dx[-1, -1] += 2 * x[-1, -1] * dout[0, 0]
    return dx


def test_a_discovered_grouping_that_fails_its_verification_warns_no_one():
    """The grouping found by probing is a guess about the rest of the tensor; when its
    verification refuses it, the check goes entry by entry in silence: a GroupingWarning
    would blame a declaration the user never made."""
    x = np.random.default_rng(0).normal(size=(6, 6))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = gradcheck.check_function(_sine_and_a_corner, _sine_and_a_corner_backward,
                                          x, complex_step=False)
    assert result.passed, result.message()
    assert result.checks[0].plan.startswith(
        "every entry by central differences, one entry at a time")
    assert [str(w.message) for w in caught] == []


def test_a_backward_that_writes_into_dout_is_told_why_that_matters():
    """The hazard names the in-place update and who pays for it."""
    with pytest.warns(HazardWarning):
        result = gradcheck.check_layer(ScalesDoutInPlace(), np.linspace(-1, 1, 4))
    (hazard,) = result.hazards
    assert hazard.startswith("layer.backward modified its argument dout: ")
    assert hazard.endswith(
        " (an in-place update of an upstream gradient? a caller that reuses it, as a network "
        "passing it on to another branch does, gets it corrupted)")


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    s = e / e.sum(axis=1, keepdims=True)
    return s, s


def _softmax_rows_backward(dout, s):
    return s * (dout - np.sum(dout * s, axis=1, keepdims=True))


def _softmax_rows_diagonal_only(dout, s):
    return dout * s * (1 - s)           # the cross terms forgotten


def test_a_failed_float32_check_spends_no_calls_on_a_diagnosis_it_cannot_make():
    """A float32 softmax with its cross terms forgotten fails; the diagonal diagnosis (2
    calls an entry, needing agreement within 1e-6, ~100 float32 roundings below what
    float32 differences resolve) is not attempted: the failed check costs the passing
    one's calls plus the 4 that refine each of its 12 failed entries, no more."""
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        good = gradcheck.check_function(_softmax_rows, _softmax_rows_backward, x)
        bad = gradcheck.check_function(_softmax_rows, _softmax_rows_diagonal_only, x)
    assert good.passed, good.message()
    (check,) = bad.failures()
    assert check.mismatched == 12
    assert bad.forward_calls == good.forward_calls + 4 * 12
