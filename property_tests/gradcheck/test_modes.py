"""Methods: full, fast (one random direction per tensor), auto; complex step."""

import numpy as np
import pytest

import gradcheck
from reference_impls import Conv2D, Dense, ReLU


class DoubledW(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = 2 * self.grads["W"]
        return dx


class SlightlyOffW(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"] * (1 + 1e-5)
        return dx


def _dense(cls=Dense, n=3, n_prev=4, m=5, seed=0):
    rng = np.random.default_rng(seed)
    return cls(rng.normal(size=(n, n_prev)), rng.normal(size=(n, 1))), rng.normal(size=(n_prev, m))


@pytest.mark.parametrize("complex_step", [False, True])
def test_fast_mode_costs_a_few_calls_per_tensor_and_passes_a_correct_layer(complex_step):
    layer, x = _dense()
    result = gradcheck.check_layer(layer, x, mode="fast", complex_step=complex_step)
    assert result.passed, result.message()
    assert {c.method for c in result.checks} == {"fast"}
    # 6 calls of self-checks, then 2 per tensor (1 with the complex step).
    assert result.forward_calls == 6 + 3 * (1 if complex_step else 2)


@pytest.mark.parametrize("cls", [DoubledW, SlightlyOffW])
@pytest.mark.parametrize("complex_step", [False, True])
def test_fast_mode_catches_a_wrong_tensor_even_at_a_relative_error_of_1e_5(cls, complex_step):
    layer, x = _dense(cls)
    result = gradcheck.check_layer(layer, x, mode="fast", complex_step=complex_step)
    assert [c.tensor for c in result.failures()] == ["W"]
    assert "along a random direction" in result.message()


def test_auto_checks_small_tensors_fully_and_large_ones_along_a_direction():
    rng = np.random.default_rng(1)
    layer = Dense(rng.normal(size=(4, 2600)), rng.normal(size=(4, 1)))
    x = rng.normal(size=(2600, 4))
    # One entry at a time, x and W would take 2 · 10,400 calls > AUTO_MAX_CALLS.
    result = gradcheck.check_layer(layer, x, complex_step=False, coloring=False)
    methods = {c.tensor: c.method for c in result.checks}
    assert methods == {"x": "fast", "W": "fast", "b": "full"}
    assert result.passed, result.message()
    assert "every entry would take at least ~10,400 forward calls" in result.checks[0].plan
    # With the layer's grouping (2600 groups of 4 entries, 3 calls each) they are under it.
    grouped = gradcheck.check_layer(layer, x, complex_step=False)
    assert {c.method for c in grouped.checks} == {"full"}
    assert grouped.passed and grouped.forward_calls == 6 + 3 * (2600 + 2600 + 1)


def test_fast_mode_is_not_fooled_by_kinks_along_its_direction():
    x = np.random.default_rng(2).normal(size=(60, 80))
    x[::3] = 0.0                              # a third of the entries exactly at the kink
    result = gradcheck.check_layer(ReLU(), x, mode="fast", complex_step=False)
    assert result.passed, result.message()


def test_complex_step_reaches_rounding_level_where_central_differences_stop():
    rng = np.random.default_rng(3)
    layer = Conv2D(rng.normal(size=(3, 3, 2, 3)), rng.normal(size=3), padding=1)
    x = rng.normal(size=(5, 5, 2, 2))
    central = gradcheck.check_layer(layer, x, complex_step=False)
    exact = gradcheck.check_layer(layer, x, complex_step=True)
    assert {c.method for c in exact.checks} == {"complex_step"}
    assert max(exact.max_rel_error.values()) < 1e-13
    assert max(central.max_rel_error.values()) > 1e-12    # rounding of the differences


@pytest.mark.parametrize("mode", ["exact", "FULL", None])
def test_an_unknown_mode_is_named(mode):
    layer, x = _dense()
    with pytest.raises(ValueError, match=r"`mode` must be one of \('auto', 'full', 'fast'\)"):
        gradcheck.check_layer(layer, x, mode=mode)


def test_complex_step_needs_float64():
    rng = np.random.default_rng(4)
    layer = Dense(rng.normal(size=(2, 2)).astype(np.float32), np.zeros((2, 1), np.float32))
    with pytest.warns(gradcheck.PrecisionWarning), \
            pytest.raises(ValueError, match=r"`complex_step`=True needs a float64 layer"):
        gradcheck.check_layer(layer, np.ones((2, 2), np.float32), complex_step=True)
