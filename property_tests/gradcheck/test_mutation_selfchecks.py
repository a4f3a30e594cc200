"""Self-checks at their edges (issue 13): what each one must catch, with its message, and
the rounding it must forgive, at the margins the README gives.

The layers are written here as a user would write them (y = x · w + b over a batch).
"""

import numpy as np
import pytest

import gradcheck
from gradcheck.selfcheck import changed, nondeterminism, nonlinearity
from property_tests.gradcheck.test_bad_input import UserDense


Affine = UserDense      # y = x @ W + b, a user's fully connected layer


def _affine(cls=Affine, seed=0):
    rng = np.random.default_rng(seed)
    return cls(rng.normal(size=(3, 2)), rng.normal(size=2)), rng.normal(size=(4, 3))


class DecaysInBackward(Affine):
    """Applies weight decay to W inside backward: the caller's parameters change."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.params["W"] *= 0.99
        return dx


def test_a_backward_that_writes_into_the_params_is_a_hazard_named_after_backward():
    layer, x = _affine(DecaysInBackward)
    W = layer.params["W"].copy()
    with pytest.warns(gradcheck.HazardWarning, match=r"layer\.backward modified"):
        result = gradcheck.check_layer(layer, x)
    assert any("layer.backward modified layer.params['W']" in h for h in result.hazards)
    assert not any("layer.forward" in h for h in result.hazards)
    np.testing.assert_array_equal(layer.params["W"], W)        # given back
    with pytest.warns(gradcheck.HazardWarning):
        strict = gradcheck.check_layer(layer, x, strict=True)
    assert not strict.passed


class JittersByEpsilons(Affine):
    """A forward whose output moves by ~1e-12 relative between calls (a random
    perturbation far below float32's resolution, far above float64's rounding)."""

    rng = np.random.default_rng(1)

    def forward(self, x):
        y = super().forward(x)
        return y * (1.0 + 1e-12 * self.rng.standard_normal(y.shape))


def test_a_forward_that_differs_by_1e_12_between_calls_is_nondeterministic_in_float64():
    layer, x = _affine(JittersByEpsilons)
    result = gradcheck.check_layer(layer, x)
    assert not result.passed
    assert any("layer.forward is nondeterministic" in p for p in result.problems)


def test_nondeterminism_forgives_64_ulps_of_the_largest_output_and_no_more():
    eps = np.finfo(np.float64).eps
    y = np.array([4.0, -1.0, 0.5])
    assert nondeterminism(y, y.copy()) is None
    assert nondeterminism(y, y + np.array([0.0, 60 * eps * 4.0, 0.0])) is None
    found = nondeterminism(y, y + np.array([0.0, 80 * eps * 4.0, 0.0]), "f")
    assert found is not None and found.startswith("f is nondeterministic")
    assert "in 1 of 3 entries (at (1,):" in found
    # float32 outputs: 64 units of float32's epsilon.
    eps32 = float(np.finfo(np.float32).eps)
    assert nondeterminism(y, y + 60 * eps32 * 4.0, eps=eps32) is None
    assert nondeterminism(y, y + 80 * eps32 * 4.0, eps=eps32) is not None
    assert nondeterminism(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) is None


class BiasOnlyOffset(Affine):
    """Adds a constant to db alone (its other gradients are linear in dout)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = self.grads["b"] + 0.1
        return dx


def test_backward_of_zero_is_checked_for_every_gradient_not_only_all_at_once():
    layer, x = _affine(BiasOnlyOffset)
    result = gradcheck.check_layer(layer, x)
    assert not result.passed
    message = next(p for p in result.problems if "backward(0)" in p)
    assert "nonzero gradient for 'b'" in message


def test_nonlinearity_names_the_gradient_and_forgives_rounding():
    eps = np.finfo(np.float64).eps
    g = {"x": np.array([1.0, -2.0]), "W": np.array([[0.5]])}
    two = {k: 2 * v for k, v in g.items()}
    zero = {k: np.zeros_like(v) for k, v in g.items()}
    assert nonlinearity(zero, g, two) is None
    # backward(0) within 64 ulps of the largest gradient (2.0): rounding.
    assert nonlinearity({"x": np.zeros(2), "W": np.array([[60 * eps * 2.0]])}, g, two) is None
    found = nonlinearity({"x": np.zeros(2), "W": np.array([[80 * eps * 2.0]])}, g, two)
    assert "backward(0) returned a nonzero gradient for 'W'" in found
    # backward(2G) against 2·backward(G), per gradient, relative to its own scale.
    off = dict(two, W=np.array([[1.0 + 80 * eps]]))
    assert "differs from 2·backward(dout) for 'W'" in nonlinearity(zero, g, off)
    close = dict(two, W=np.array([[1.0 + 16 * eps]]))       # 64 ulps of 0.5: 32 eps
    assert nonlinearity(zero, g, close) is None


def test_changed_names_the_first_entry_and_counts_them():
    before = np.array([[1.0, 2.0], [3.0, np.nan]])
    assert changed("w", before, before.copy()) is None
    after = before.copy()
    after[1, 0] = 5.0
    after[0, 1] = 7.0
    assert changed("w", before, after) == (
        "w: 2 of 4 entries changed, the first at (0, 1) (2.0 -> 7.0)")
    assert changed("w", before, before[:1]) == "w: its shape changed from (2, 2) to (1, 2)"


def test_backward_of_zero_is_judged_against_the_gradients_own_scale_however_small():
    """Gradients of 1e-3 for G: a residue of 1e-15 from backward(0) is 1e-12 of them, far
    over 64 ulps of rounding (1.4e-17): not linear. The same residue beside gradients of 1
    and over is within rounding only if under 64 ulps of their size."""
    small = {"x": np.array([1e-3, -5e-4])}
    said = nonlinearity({"x": np.array([1e-15, 0.0])}, small,
                        {k: 2 * v for k, v in small.items()})
    assert said is not None and "backward(0) returned a nonzero gradient for 'x'" in said
    large = {"x": np.array([2.0, -1.0])}
    assert nonlinearity({"x": np.array([1e-15, 0.0])}, large,
                        {k: 2 * v for k, v in large.items()}) is None


def test_a_nonlinear_backward_is_judged_against_the_gradients_own_scale_however_small():
    """backward(2G) off 2·backward(G) by 1e-15 beside gradients of 1e-3: 1e-12 of them."""
    g1 = {"x": np.array([1e-3, -5e-4])}
    zero = {"x": np.zeros(2)}
    said = nonlinearity(zero, g1, {"x": 2 * g1["x"] + np.array([1e-15, 0.0])})
    assert said is not None and "backward(2·dout) differs from 2·backward(dout) for 'x'" in said
    assert nonlinearity(zero, g1, {"x": 2 * g1["x"]}) is None


def test_nondeterminism_names_the_forward_by_default_and_judges_small_outputs_by_their_size():
    y1 = np.array([1e-3, 2e-3, -1e-3])
    said = nondeterminism(y1, y1 + np.array([1e-15, 0.0, 0.0]))
    assert said.startswith("layer.forward is nondeterministic: two calls on the same input "
                           "differ beyond rounding in 1 of 3 entries (at (0,): ")


def test_nondeterminism_counts_only_the_entries_beyond_rounding_of_the_largest_output():
    """Outputs of 1000: 1e-12 is within 64 ulps of them (1.4e-11), 1e-6 is not."""
    y1 = np.array([1000.0, 1000.0, 3.0])
    said = nondeterminism(y1, y1 + np.array([1e-6, 1e-12, 0.0]), what="f")
    assert said.startswith("f is nondeterministic: two calls on the same input differ beyond "
                           "rounding in 1 of 3 entries (at (0,): ")
