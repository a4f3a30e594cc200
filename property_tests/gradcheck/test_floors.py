"""Each tensor is judged at its own scale: a large gradient elsewhere hides no bug."""

import numpy as np
import pytest

import gradcheck


class SteepShift:
    """y = 1e4 · x + b: dx = 1e4 · G dwarfs db = G summed over the examples."""

    def __init__(self, b, off=0.0):
        self.params, self.grads, self.off = {"b": b}, {}, off

    def forward(self, x):
        return 1e4 * x + self.params["b"]

    def backward(self, dout):
        self.grads = {"b": dout.sum(axis=1, keepdims=True) * (1 + self.off)}
        return 1e4 * dout


@pytest.mark.parametrize("complex_step", [False, True])
def test_a_small_error_in_a_small_gradient_is_seen_beside_a_large_one(complex_step):
    rng = np.random.default_rng(40)
    b, x = rng.normal(size=(3, 1)), 1e-4 * rng.normal(size=(3, 5))     # outputs of unit size
    assert gradcheck.check_layer(SteepShift(b), x, complex_step=complex_step).passed
    # db off by a relative 1e-5: a floor taken from the whole check (1 % of the
    # largest gradient, dx's ~1e4) would be ~1e2 and hide it; db's own is ~1e-2.
    result = gradcheck.check_layer(SteepShift(b, off=1e-5), x, complex_step=complex_step)
    (failure,) = result.failures()
    assert failure.tensor == "b" and failure.floor < 0.1
    assert "1.00001" in " ".join(failure.diagnosis)


def _tiny_tanh(x):
    return 1e-8 * np.tanh(x), x


@pytest.mark.parametrize("factor, passes", [(1.0, True), (1.5, False), (1 + 1e-4, False)])
def test_a_function_of_tiny_outputs_is_judged_at_its_measured_noise(factor, passes):
    # The assumed noise (unit-size terms cancelling inside) would be ~1e8 times too
    # large for outputs of 1e-8 and let any error through; it is measured instead.
    x = np.random.default_rng(41).normal(size=(3, 4))
    result = gradcheck.check_function(
        _tiny_tanh, lambda dout, x: factor * dout * 1e-8 * (1 - np.tanh(x) ** 2), x)
    assert result.passed == passes, result.message()


def test_the_noise_is_measured_only_where_it_decides():
    x = np.random.default_rng(42).normal(size=(3, 4))

    def unit_tanh(x):
        return np.tanh(x), x

    correct = gradcheck.check_function(unit_tanh, lambda d, x: d * (1 - np.tanh(x) ** 2), x)
    plain = gradcheck.check_function(unit_tanh, lambda d, x: d * (1 - np.tanh(x) ** 2), x,
                                     coloring=False, complex_step=False)
    assert correct.passed and plain.passed
    assert plain.forward_calls == 6 + 2 * x.size            # no measurement: nothing hinged on it


def l2_normalize(x):
    """Rows scaled to unit length."""
    norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True))
    return x / norm, (x, norm)


def l2_normalize_backward(dout, cache):
    x, norm = cache
    y = x / norm
    return (dout - y * np.sum(dout * y, axis=1, keepdims=True)) / norm


def l2_normalize_backward_no_projection(dout, cache):
    x, norm = cache
    return dout / norm                    # forgets that the norm moves with x


@pytest.mark.parametrize("magnitude", [1.0, 1e-8])
def test_tiny_inputs_get_steps_of_their_own_size(magnitude):
    # At x ~ 1e-8 the usual steps (never below 6e-6) leave the region where
    # x / |x| is smooth; steps relative to the tensor's size judge it.
    x = magnitude * np.random.default_rng(43).normal(size=(3, 4))
    good = gradcheck.check_function(l2_normalize, l2_normalize_backward, x)
    assert good.passed, good.message()
    bad = gradcheck.check_function(l2_normalize, l2_normalize_backward_no_projection, x)
    assert [c.tensor for c in bad.failures()] == ["x"]
    if magnitude < 1:
        assert "the usual steps, never below step · max(1, |v|), failed it" in good.message()


def test_smaller_steps_never_overturn_a_failure_they_could_not_have_seen():
    # Outputs near 35 round at ~7e-15: a 1e-5 relative error in dx fails with the
    # usual steps, but steps 1e-4 as large carry 10,000 times the rounding noise
    # and would let it through; such a pass is not taken.
    x = np.random.default_rng(44).normal(size=(3, 4))
    subtle = gradcheck.check_function(
        lambda x: (35.0 + np.tanh(x), x), lambda d, x: d * (1 - np.tanh(x) ** 2) * (1 + 1e-5), x)
    assert [c.tensor for c in subtle.failures()] == ["x"]
    assert not any("checked with steps" in n for n in subtle.notes)


@pytest.mark.filterwarnings("error::RuntimeWarning")     # no overflow on the way
@pytest.mark.parametrize("low, high", [(30.0, 40.0), (500.0, 700.0)])
def test_exp_at_large_arguments_is_smooth_and_a_small_error_in_it_is_seen(low, high):
    # exp(700) ~ 1e304: squares of its changes overflow, and a fit on them once
    # read as a kink; per-entry rounding near the float64 limit once read as inf.
    x = np.random.default_rng(45).uniform(low, high, size=(3, 4))
    good = gradcheck.check_function(lambda x: (np.exp(x), x), lambda d, x: d * np.exp(x), x)
    assert good.passed and good.checks[0].nondifferentiable == 0
    bad = gradcheck.check_function(lambda x: (np.exp(x), x),
                                   lambda d, x: 1.001 * d * np.exp(x), x)
    assert "analytic ≈ 1.001 × numeric" in bad.failures()[0].diagnosis[0]
    assert not any("checked with steps" in n for n in bad.notes)
