"""Numerical helpers at the accuracy a user relies on (issue 13): the measured noise is the
noise, the call counts are the documented ones, and the checker's own diagnoses of a
whole function (another tensor transformed, the Jacobian's diagonal only) are named.
"""

import numpy as np
import pytest

import gradcheck
from gradcheck.numerical import complex_step, directional_difference, measure_noise
from gradcheck.selfcheck import changed, nondeterminism


@pytest.mark.parametrize("sigma", [1e-9, 1e-12])
def test_measure_noise_recovers_the_standard_deviation_of_injected_noise(sigma):
    # A smooth function plus fresh noise of known size at every call: the projected noise
    # of <G, y> has standard deviation sigma · ||G||.
    rng = np.random.default_rng(7)
    noise = np.random.default_rng(8)
    x = rng.normal(size=(3, 5))
    G = rng.normal(size=x.size)
    direction = rng.standard_normal(x.shape)
    direction /= np.max(np.abs(direction))

    def evaluate():
        return np.sin(x).reshape(-1) + sigma * noise.standard_normal(x.size)

    estimates = [measure_noise(evaluate, x, G, direction, 1e-7, evaluate()) for _ in range(40)]
    expected = sigma * np.linalg.norm(G)
    assert 0.6 * expected < np.median(estimates) < 1.6 * expected
    assert np.array_equal(x, np.random.default_rng(7).normal(size=(3, 5)))


def test_measure_noise_of_a_smooth_function_is_rounding_at_most():
    x = np.linspace(-1.0, 1.0, 8)
    G = np.ones(8)
    direction = np.ones(8)
    sigma = measure_noise(lambda: x ** 3, x, G, direction, 1e-7, x ** 3)
    assert sigma < 1e-14


def test_directional_and_complex_step_differences_count_their_calls():
    x = np.array([0.3, -0.2, 0.9])
    G = np.array([1.0, 2.0, -1.0])
    direction = np.array([1.0, -0.5, 0.25])
    value, calls = directional_difference(lambda: np.sin(x), x, G, direction)
    assert calls == 2
    assert value == pytest.approx(np.sum(G * np.cos(x) * direction), rel=1e-9)
    z = x.astype(np.complex128)
    value, calls = directional_difference(lambda: np.sin(z), z, G, direction, complex_=True)
    assert calls == 1
    assert value == pytest.approx(np.sum(G * np.cos(x) * direction), rel=1e-14)
    grad, calls = complex_step(lambda: np.sin(z), z, G)
    assert calls == 3 and grad.dtype == np.float64
    np.testing.assert_allclose(grad, G * np.cos(x), rtol=1e-14)


def test_a_large_array_is_probed_with_steps_relative_to_its_largest_entry():
    x = np.array([1e3, -2e3, 0.5])
    G = np.ones(3)
    direction = np.array([0.1, 1.0, -1.0])
    value, _ = directional_difference(lambda: x ** 2, x, G, direction)
    assert value == pytest.approx(np.sum(2 * x * direction), rel=1e-9)


def test_changed_counts_a_nan_appearing_or_vanishing_and_nondeterminism_names_digits():
    before = np.array([np.nan, 1.0, 2.0])
    assert changed("p", before, np.array([1.0, 1.0, 2.0])) == (
        "p: 1 of 3 entries changed, the first at (0,) (nan -> 1.0)")
    assert changed("p", np.array([1.0, 2.0]), np.array([1.0, np.nan])) == (
        "p: 1 of 2 entries changed, the first at (1,) (2.0 -> nan)")
    found = nondeterminism(np.array([1.0, 3.0]), np.array([1.0, 3.0 + 3e-9]))
    assert "(at (1,): 3 vs 3.000000003 (a difference of 3e-09))" in found


class StackedMatmul:
    """y[c] = W[c] @ x for a stack of square matrices; dx sums W[c]ᵀ @ dy[c]."""

    def __init__(self, W, transpose_bug=False):
        self.params, self.grads, self.bug = {"W": W}, {}, transpose_bug

    def forward(self, x):
        self.x = x
        return np.einsum("cij,j->ci", self.params["W"], x)

    def backward(self, dout):
        W = self.params["W"]
        self.grads = {"W": np.einsum("ci,j->cij", dout, self.x)}
        used = np.swapaxes(W, 1, 2) if self.bug else W
        return np.einsum("cij,ci->j", used, dout)


def test_a_backward_that_uses_another_tensor_transposed_is_named_on_its_last_two_axes():
    rng = np.random.default_rng(0)
    layer = StackedMatmul(rng.normal(size=(2, 4, 4)), transpose_bug=True)
    result = gradcheck.check_layer(layer, rng.normal(size=4))
    check = next(c for c in result.checks if c.tensor == "x")
    assert not check.passed
    assert check.diagnosis[0] == ("analytic ≈ the gradient of the same layer with 'W' with axes "
                                  "1 and 2 swapped (a missing or extra transpose?)")
    right = gradcheck.check_layer(StackedMatmul(layer.params["W"]), rng.normal(size=4))
    assert right.passed


class Softmax:
    """A user's softmax whose backward keeps the diagonal of the Jacobian only."""

    params, grads = {}, {}

    def forward(self, x):
        e = np.exp(x - x.max())
        self.y = e / e.sum()
        return self.y

    def backward(self, dout):
        return dout * self.y * (1 - self.y)


def test_a_backward_with_the_jacobians_diagonal_only_is_named():
    x = np.random.default_rng(1).normal(size=6)
    check = gradcheck.check_layer(Softmax(), x).checks[0]
    assert not check.passed
    assert check.diagnosis[0].startswith("analytic ≈ only the diagonal of the Jacobian (each "
                                         "output's dependence on its own entry)")


def test_measure_noise_evaluates_at_the_8_documented_points_and_restores_the_array():
    x = np.array([[0.5, -0.25], [1.0, 2.0]])
    before = x.copy()
    direction = np.array([[1.0, 0.5], [-0.25, 0.0]])
    h = 1e-7
    seen = []

    def evaluate():
        seen.append(x.copy())
        return np.sin(x).reshape(-1)            # flat outputs, as the checker passes them

    y0 = np.sin(x).reshape(-1)
    sigma = measure_noise(evaluate, x, np.ones(4), direction, h, y0)
    expected = [before + i * h * direction for i in range(-4, 5) if i != 0]
    assert len(seen) == 8 and all(np.array_equal(a, b) for a, b in zip(seen, expected))
    assert np.array_equal(x, before)
    assert 0.0 <= sigma < 1e-14                 # sin is smooth: rounding at most


@pytest.mark.parametrize("scale", [1e-200, 1.0, 1e200])
def test_measure_noise_is_measured_at_any_scale_of_the_outputs(scale):
    """The same relative noise at outputs of 1e-200, 1 or 1e200: the same relative estimate
    (no square underflows or overflows)."""
    noise = np.random.default_rng(3)
    x = np.linspace(-1.0, 1.0, 6)
    G = np.ones(6)

    def evaluate():
        return scale * (np.sin(x) + 1e-9 * noise.standard_normal(6))

    estimates = [measure_noise(evaluate, x, G, np.ones(6), 1e-7, evaluate()) / scale
                 for _ in range(20)]
    # sigma · ||G|| = 1e-9 · √6; the median of 20 estimates within a factor of 1.6.
    assert 0.6 < np.median(estimates) / (1e-9 * np.sqrt(6)) < 1.6
