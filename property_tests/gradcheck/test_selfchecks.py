"""Self-checks: each broken habit is named, and a correct layer raises none."""

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
        (lambda: (InPlaceReLU(), np.random.default_rng(1).normal(size=(3, 4))),
         "layer.forward modified its input x"),
        (lambda: _dense(Dropout), "layer.forward is nondeterministic"),
        (lambda: _dense(ScalesDoutInPlace), "layer.backward modified its argument dout"),
        (lambda: _dense(AddsAConstant), "backward is not linear in dout: backward(0)"),
        (lambda: _dense(Accumulates), "backward is not linear in dout"),
        (lambda: _dense(MovesItsBias), "layer.forward modified layer.params['b']"),
    ],
    ids=["mutates-input", "nondeterministic", "mutates-dout", "affine-backward",
         "accumulates", "moves-params"],
)
def test_each_self_check_fails_the_check_with_its_own_message(make, expected):
    layer, x = make()
    before = x.copy()
    result = gradcheck.check_layer(layer, x)
    assert not result.passed
    assert any(expected in p for p in result.problems), result.problems
    assert "self-check: " + expected in result.message()
    np.testing.assert_array_equal(x, before)   # the caller's x is never the one mutated


def test_a_correct_layer_raises_no_self_check():
    layer, x = _dense(Dense)
    result = gradcheck.check_layer(layer, x)
    assert result.passed and result.problems == ()


def test_parameters_moved_by_the_layer_are_restored():
    layer, x = _dense(MovesItsBias)
    before = layer.params["b"].copy()
    gradcheck.check_layer(layer, x)
    np.testing.assert_array_equal(layer.params["b"], before)
