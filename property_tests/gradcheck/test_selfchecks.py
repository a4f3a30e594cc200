"""Self-checks: each broken habit is named, and a correct layer raises none."""

import re

import numpy as np
import pytest

import gradcheck
from reference_impls import Dense, ReLU


def _dense(cls, seed=0):
    rng = np.random.default_rng(seed)
    return cls(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))), rng.normal(size=(2, 4))


class InPlaceReLU(ReLU):
    def forward(self, x):
        np.maximum(x, 0.0, out=x)          # writes into the caller's array
        return super().forward(x)


class Dropout(Dense):
    """Draws a new mask on every forward: nondeterministic."""

    rng = np.random.default_rng(0)

    def forward(self, x):
        self.mask = self.rng.random(x.shape) > 0.5
        return super().forward(x * self.mask)

    def backward(self, dout):
        return super().backward(dout) * self.mask


class ScalesDoutInPlace(Dense):
    def backward(self, dout):
        dout *= 0.5
        return super().backward(2 * dout)


class AddsAConstant(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = self.grads["b"] + 1.0
        return dx


class Accumulates(Dense):
    """Adds into grads across calls, as frameworks with zero_grad() do."""

    def backward(self, dout):
        old = dict(self.grads)
        dx = super().backward(dout)
        self.grads = {k: v + old.get(k, 0.0) for k, v in self.grads.items()}
        return dx


class MovesItsBias(Dense):
    def forward(self, x):
        self.params["b"] += 1e-3
        return super().forward(x)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: _dense(Dropout), "layer.forward is nondeterministic"),
        (lambda: _dense(AddsAConstant), "backward is not linear in dout: backward(0)"),
        (lambda: _dense(Accumulates), "backward is not linear in dout"),
    ],
    ids=["nondeterministic", "affine-backward", "accumulates"],
)
def test_each_self_check_fails_the_check_with_its_own_message(make, expected):
    layer, x = make()
    before = x.copy()
    result = gradcheck.check_layer(layer, x)
    assert not result.passed
    assert any(expected in p for p in result.problems), result.problems
    assert "self-check: " + expected in result.message()
    np.testing.assert_array_equal(x, before)   # the caller's x is never the one mutated


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: (InPlaceReLU(), np.random.default_rng(1).normal(size=(3, 4))),
         "layer.forward modified its input x"),
        (lambda: _dense(ScalesDoutInPlace), "layer.backward modified its argument dout"),
    ],
    ids=["mutates-input", "mutates-dout"],
)
def test_a_write_into_the_callers_data_is_a_hazard_that_fails_only_when_strict(make, expected):
    layer, x = make()
    before = x.copy()
    with pytest.warns(gradcheck.HazardWarning, match=re.escape(expected)):
        result = gradcheck.check_layer(layer, x)
    assert result.passed and result.problems == ()        # the gradients are right
    assert any(expected in h for h in result.hazards), result.hazards
    message = result.message()
    assert "the gradients are right, but 1 hazard(s)" in message
    assert "hazard: " + expected in message
    np.testing.assert_array_equal(x, before)   # the caller's x is never the one mutated
    with pytest.warns(gradcheck.HazardWarning):
        strict = gradcheck.check_layer(layer, x, strict=True)
    assert not strict.passed and strict.hazards == result.hazards
    assert "1 hazard(s) (strict)" in strict.message()


def test_a_forward_that_moves_its_params_is_a_hazard_and_cannot_be_judged():
    layer, x = _dense(MovesItsBias)
    with pytest.warns(gradcheck.HazardWarning, match=r"layer.forward modified layer.params\['b'\]"):
        result = gradcheck.check_layer(layer, x)
    # Every call sees another bias: the outputs differ beyond rounding.
    assert not result.passed
    assert any("layer.forward is nondeterministic" in p for p in result.problems)


def test_rounding_is_neither_nondeterminism_nor_nonlinearity():
    class RoundingNoise(Dense):
        """Outputs and backward(0) off by a few ulps, as threaded reductions and cancelling
        terms leave them."""

        calls = 0

        def forward(self, x):
            RoundingNoise.calls += 1
            out = super().forward(x)
            return out * (1 + 4 * np.finfo(float).eps * (RoundingNoise.calls % 2))

        def backward(self, dout):
            dx = super().backward(dout)
            return dx + 1e-17 * (not dout.any())

    layer, x = _dense(RoundingNoise)
    result = gradcheck.check_layer(layer, x, complex_step=False)
    assert result.problems == ()
    assert result.passed, result.message()


def test_values_that_differ_are_printed_with_the_digits_that_tell_them_apart():
    class Jitters(Dense):
        calls = 0

        def forward(self, x):
            Jitters.calls += 1
            return super().forward(x) + 1e-9 * Jitters.calls

    result = gradcheck.check_layer(*_dense(Jitters))
    (problem,) = result.problems
    left, right = re.search(r": (\S+) vs (\S+) \(a difference of", problem).groups()
    assert left != right


def test_a_correct_layer_raises_no_self_check():
    layer, x = _dense(Dense)
    result = gradcheck.check_layer(layer, x)
    assert result.passed and result.problems == ()


def test_parameters_moved_by_the_layer_are_restored():
    layer, x = _dense(MovesItsBias)
    before = layer.params["b"].copy()
    gradcheck.check_layer(layer, x)
    np.testing.assert_array_equal(layer.params["b"], before)
