"""The complex step's noise, measured (numerical.measure_complex_noise), and the floor it sets.

The complex step takes no difference: a forward that adds a large constant keeps
``i·h`` exactly, and its measured noise is the projection's own rounding; a forward that cancels terms of size
``|x|`` inside leaves ~u of them, which the spread over four imaginary steps shows.
"""

import numpy as np
import pytest

from gradcheck import numerical as num

X = np.random.default_rng(0).normal(size=(3, 4))
G = np.random.default_rng(1).normal(size=12)


class _Counted:
    """``evaluate`` of a complex forward on ``array``, counting its calls."""

    def __init__(self, forward, array):
        self.forward, self.array, self.calls = forward, array, 0

    def __call__(self):
        self.calls += 1
        return self.forward(self.array).reshape(-1)


def _noise(forward, x=X, dout=G, direction=None):
    array = x.astype(np.complex128)
    before = array.copy()
    evaluate = _Counted(forward, array)
    direction = np.ones(x.shape) if direction is None else direction
    sigma = num.measure_complex_noise(evaluate, array, dout, direction)
    assert evaluate.calls == 4 and np.array_equal(array, before)   # 4 calls, restored
    return sigma


def test_a_large_constant_adds_no_noise():
    # Only the projection's own rounding, ~eps of Σ|G|: nothing of the outputs' 1e12.
    projection = 4 * np.finfo(np.float64).eps * float(np.sum(np.abs(G)))
    assert _noise(lambda x: x + 1e12) <= projection
    assert _noise(lambda x: 3.0 * x + 1e300) <= 3 * projection


def test_terms_that_cancel_inside_leave_noise_of_their_size():
    # (x + 1)² - x² - 2x = 1: its derivative 0 is a difference of terms ~2|x| = 2e4.
    def cancels(x):
        return (x + 1) ** 2 - x ** 2 - 2 * x

    big = X + 1e4
    sigma = _noise(cancels, x=big)
    unit = np.finfo(np.float64).eps
    assert 0.0 < sigma < 1e3 * unit * float(np.sum(np.abs(G)) * 4e4)
    # Far more than the same cancellation at |x| ~ 1 leaves.
    assert sigma > 100 * _noise(cancels, x=X)


def test_the_noise_is_that_of_the_projection_on_dout():
    def cancels(x):
        return (x + 1) ** 2 - x ** 2 - 2 * x

    big = X + 1e4
    assert _noise(cancels, x=big, dout=2 * G) == 2 * _noise(cancels, x=big)
    assert _noise(cancels, x=big, dout=np.zeros(12)) == 0.0


def test_the_noise_is_the_spread_of_the_derivative_at_the_four_documented_steps():
    """A forward that rounds its imaginary part to a grid q: the derivative read at the
    steps 1, 0.71, 1.37 and 0.53 times COMPLEX_STEP is off by a known amount at each; their
    standard deviation is returned. Outputs and dout of the tensor's 2-D shape."""
    # A grid incommensurate with the steps: at q = 3e-31 the steps 1 and 2 × COMPLEX_STEP
    # happen to read the same derivative, and a step moved from one to the other passed.
    q = 2.7e-31
    x = np.array([[0.5, -0.25], [0.75, 1.0]])
    dout = np.array([[1.0, -2.0], [0.5, 3.0]])
    direction = np.array([[1.0, 0.5], [-0.25, 0.75]])

    def quantized(z):
        return z.real + 1j * np.round(z.imag / q) * q

    array = x.astype(np.complex128)
    sigma = num.measure_complex_noise(lambda: quantized(array), array, dout, direction)
    values = []
    for factor in (1.0, 0.71, 1.37, 0.53):
        h = factor * num.COMPLEX_STEP
        values.append(float(np.sum(dout * np.round(h * direction / q) * q)) / h)
    assert sigma == pytest.approx(float(np.std(values)), rel=1e-12)
    assert sigma > 0.01 * float(np.sum(np.abs(dout * direction)))    # the grid shows


def test_a_smooth_nonlinear_forward_has_no_noise_but_rounding():
    sigma = _noise(lambda x: np.tanh(x) * x ** 2)
    assert sigma <= 1e3 * np.finfo(np.float64).eps * float(np.sum(np.abs(G)))
