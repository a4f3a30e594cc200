"""Central differences: accurate, restore what they perturb, count their calls."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck.numerical import STEP, central_difference


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8))
def test_central_difference_of_a_cubic_is_accurate_to_the_truncation_bound(seed, n):
    rng = np.random.default_rng(seed)
    x, G = rng.normal(size=n), rng.normal(size=n)
    grad, calls = central_difference(lambda: x ** 3, x, G)
    exact = 3 * x ** 2 * G
    # Truncation of a central difference on x³ is exactly h² (per unit of G):
    # h = STEP · max(1, |x|) ≤ 6e-6 · 4 here, so ≤ 6e-10; rounding adds ~1e-10.
    h = STEP * np.maximum(1.0, np.abs(x))
    assert np.all(np.abs(grad - exact) <= np.abs(G) * h ** 2 + 1e-9)
    assert calls == 2 * n


def test_entries_are_written_back_bit_for_bit_even_when_evaluate_raises():
    x = np.array([0.1, 1.0 / 3.0, 1e300, -2.5e-300])
    before = x.tobytes()
    central_difference(lambda: np.sin(x), x, np.ones(4))
    assert x.tobytes() == before
    calls = []

    def explode():
        calls.append(1)
        if len(calls) == 3:
            raise FloatingPointError("boom")
        return x.copy()

    with pytest.raises(FloatingPointError):
        central_difference(explode, x, np.ones(4))
    assert x.tobytes() == before


def test_perturbations_reach_the_base_array_of_a_non_contiguous_view():
    base = np.arange(6.0).reshape(2, 3)
    view = base.T
    grad, _ = central_difference(lambda: base * base, view, np.ones((2, 3)))
    np.testing.assert_allclose(grad, 2 * view, rtol=1e-9)


def test_measured_noise_is_rounding_for_a_smooth_function_and_scales_with_it():
    from gradcheck.numerical import measure_noise

    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6))
    G = rng.normal(size=x.size)
    direction = rng.standard_normal(x.shape)
    direction /= np.max(np.abs(direction))
    sigmas = {}
    for scale in (1.0, 1e-8):
        evaluate = lambda: (scale * np.tanh(x) * np.exp(x)).reshape(-1)   # noqa: E731
        sigmas[scale] = measure_noise(evaluate, x, G, direction, 1e-7, evaluate())
    # Rounding of ~24 outputs of unit size, projected: a few 1e-16, and 1e-8 of that
    # for outputs 1e-8 as large (never the unit-size noise a model would assume).
    assert 1e-18 < sigmas[1.0] < 1e-14
    assert sigmas[1e-8] < 1e-20
    assert np.array_equal(x, np.random.default_rng(5).normal(size=(4, 6)))  # restored
