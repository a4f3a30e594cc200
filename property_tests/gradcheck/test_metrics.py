"""The relative error: zero when equal, symmetric, bounded, robust at zero."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gradcheck.metrics import RHO, error_floor, relative_errors

# Subnormal differences divided by the floor underflow to 0: not a case of interest.
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
pairs = st.integers(1, 20).flatmap(
    lambda n: st.tuples(arrays(np.float64, n, elements=finite), arrays(np.float64, n, elements=finite)))


@given(pair=pairs, floor=st.floats(1e-300, 1e3))
def test_relative_error_is_symmetric_bounded_and_zero_only_when_equal(pair, floor):
    a, r = pair
    e = relative_errors(a, r, floor)
    np.testing.assert_array_equal(e, relative_errors(r, a, floor))
    assert np.all((e >= 0) & (e <= 2))
    np.testing.assert_array_equal(e == 0, a == r)


@given(pair=pairs, scale=st.floats(1e-3, 1e3))
def test_relative_error_does_not_depend_on_units(pair, scale):
    # Scaling by a power of two is exact, so the errors must agree bit for bit.
    a, r = pair
    k = 2.0 ** round(np.log2(scale))
    np.testing.assert_array_equal(relative_errors(a, r, 1.0), relative_errors(k * a, k * r, k))


def test_a_true_zero_with_finite_difference_noise_reads_as_small():
    a = np.array([0.0, 3.0])          # a dead unit, and a live one
    r = np.array([2e-11, 3.0 + 3e-10])
    floor = error_floor([(a, r)], noise=0.0, tolerance=1e-6)
    assert floor == pytest.approx(RHO * (3.0 + 3e-10))
    e = relative_errors(a, r, floor)
    assert e[0] < 1e-8 and e[1] == pytest.approx(1e-10, rel=1e-3)


def test_the_noise_floor_applies_when_every_gradient_is_zero():
    a, r = np.zeros(3), np.array([1e-13, -2e-13, 0.0])
    floor = error_floor([(a, r)], noise=1e-11, tolerance=1e-6)
    assert floor == pytest.approx(1e-5)
    np.testing.assert_allclose(relative_errors(a, r, floor), [1e-8, 2e-8, 0.0], rtol=1e-12)


def test_non_finite_entries_read_as_infinite_error():
    e = relative_errors(np.array([np.nan, 1.0, np.inf]), np.array([1.0, 1.0, 1.0]), 1e-3)
    assert np.isinf(e[0]) and e[1] == 0 and np.isinf(e[2])
