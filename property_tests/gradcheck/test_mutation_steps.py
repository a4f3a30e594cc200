"""The steps and allowances of gradcheck.numerical, as their docstrings state them (issue
13): the step ``STEP · max(1, |v|)``, never below 8 spacings of a low-precision tensor at
its own magnitude; outputs of any shape; each entry's rounding estimate; and the literal
allowances of :func:`smooth_outputs` and :func:`extension_matches` at their edges.
"""

import warnings

import numpy as np
import pytest

from gradcheck.numerical import (COMPLEX_STEP, STEP, central_difference, diagonal_difference,
                                 direction_probe, directional_difference, entry_probe,
                                 extension_matches, smooth_outputs)

EPS = np.finfo(np.float64).eps


@pytest.mark.parametrize("value", [0.5, -0.25, 3.0, -1000.0])
def test_an_entrys_step_is_relative_to_its_size_above_1(value):
    x = np.array([value, 2.0])
    _, h = entry_probe(lambda: x * 1.0, x, (0,))
    assert h == STEP * max(1.0, abs(value))
    _, h = direction_probe(lambda: x * 1.0, x, np.array([1.0, 0.0]))
    assert h == STEP * max(1.0, abs(value), 2.0)


@pytest.mark.parametrize("value", [0.25, 1.0, 48.0])
def test_a_float16_tensor_is_stepped_by_8_spacings_at_its_own_magnitude(value):
    """STEP (6e-6) is below a float16's spacing (1e-3 at 1): 8 spacings at |v| instead,
    whether |v| is below 1 or above."""
    x = np.array([value, -value / 2], dtype=np.float16)
    spacing = float(np.spacing(np.float16(value)))
    _, h = entry_probe(lambda: x.astype(np.float64), x, (0,))
    assert h == 8 * spacing
    _, h = direction_probe(lambda: x.astype(np.float64), x, np.array([1.0, 0.5]))
    assert h == 8 * spacing
    # Along a direction, the derivative of a cubic is off by h² (its truncation, y''' = 6):
    # within 8 spacings' worth, not a coarser step's.
    derivative, calls = directional_difference(
        lambda: x.astype(np.float64) ** 3, x, np.array([1.0, 0.0]), np.array([1.0, 0.0]))
    assert calls == 2
    assert abs(derivative - 3 * value ** 2) <= 1.01 * (8 * spacing) ** 2


def test_central_and_diagonal_differences_take_outputs_of_any_shape():
    x = np.array([[0.5, -0.25, 0.75], [0.125, -0.5, 0.25]])

    def f():
        return np.sin(x).T * 2.0          # (3, 2) outputs

    dout = np.arange(1.0, 7.0).reshape(3, 2)
    rounding = np.zeros(x.shape)
    grad, calls = central_difference(f, x, dout, rounding=rounding)
    exact = 2 * np.cos(x) * dout.T
    # Truncation (h²/6)|y'''| ≈ 1e-11 and rounding eps|y|/h ≈ 1e-10 at h = STEP.
    np.testing.assert_allclose(grad, exact, rtol=0, atol=1e-9)
    assert grad.dtype == np.float64 and calls == 2 * x.size
    # Each entry moves one output: (|dout ⊙ y⁺| + |dout|) / h of that output.
    h = STEP
    expected = (np.abs(dout.T * 2 * np.sin(x + h)) + np.abs(dout.T)) / h
    np.testing.assert_allclose(rounding, expected, rtol=1e-3)
    diagonal = diagonal_difference(lambda: np.sin(x) * 2.0, x, dout.T)
    np.testing.assert_allclose(diagonal, exact, rtol=0, atol=1e-9)


def test_an_entrys_rounding_counts_only_the_outputs_it_moves():
    """Output 1 ignores x: it adds nothing to x's rounding, however large."""
    x = np.array([0.5])
    dout = np.array([2.0, 3.0])
    rounding = np.zeros(1)
    central_difference(lambda: np.array([4 * x[0], 1e6]), x, dout, rounding=rounding)
    h = STEP
    np.testing.assert_allclose(rounding, [(2 * 4 * (0.5 + h) + 2) / h], rtol=1e-6)


def test_the_rounding_of_huge_outputs_is_capped_without_a_warning():
    x = np.array([0.5])
    rounding = np.zeros(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grad, _ = central_difference(lambda: 1e300 * np.array([1 + x[0], 2 + x[0]]), x,
                                     np.array([1e10, 1e10]), rounding=rounding)
    assert rounding[0] == np.finfo(np.float64).max


# smooth_outputs: bent ≤ 1e-3 |y⁺ - y⁻| + 100 · 4 eps (|y⁺| + |y⁻| + 2 |y0|).
# With y⁺ = y⁻ = 1 + m eps and y0 = 1 the bend is 2 m eps and the allowance 1600 eps (to
# 1e-13 relative): m = 800 is straight, m = 801 bent.


@pytest.mark.parametrize("m, smooth", [(800, True), (801, False)])
def test_an_unmoved_output_is_straight_up_to_100_times_its_rounding(m, smooth):
    y = np.array([1.0 + m * EPS])
    assert smooth_outputs(y, y.copy(), np.array([1.0])).tolist() == [smooth]


# extension_matches: |exact - central| ≤ 1e-7 |central| + 1e-8 max|central|
#                                        + 100 · 8 eps (|y⁺| + |y⁻|) / (2 h).


def _extension(exact, y_plus, y_minus, y0, h):
    y_complex = np.asarray(y0, dtype=np.complex128) + 1j * COMPLEX_STEP * np.asarray(exact)
    return extension_matches(y_complex, np.asarray(y_plus), np.asarray(y_minus), h,
                             np.asarray(y0))


@pytest.mark.parametrize("ratio, matches", [(0.9, True), (1.005, False)])
def test_an_unmoved_output_matches_within_100_times_the_rounding_of_its_difference(
        ratio, matches):
    """y = 1000 at x ± h: the central difference is 0, known to 100 · 8 eps · 2000 / 2h."""
    h = 1e-6
    allowed = 100 * 8 * EPS * 2000.0 / (2 * h)
    y = [1000.0]
    assert _extension([ratio * allowed], y, y, y, h) is matches


@pytest.mark.parametrize("error, matches", [(1.0e-10, True), (1.2e-10, False)])
def test_a_small_derivative_matches_to_1e_7_of_itself_and_1e_8_of_the_largest(error, matches):
    """Derivatives 1e-3 (the largest) from outputs near 0: 1.1e-10 is allowed."""
    h = 1e-6
    central = 1e-3
    assert _extension([central + error], [central * h], [-central * h], [0.0], h) is matches


def test_no_smooth_output_is_no_match_and_no_error():
    """Every output bent by a kink within the step: nothing judged, the answer is no."""
    h = 1e-6
    assert _extension([1.0], [h], [0.0], [0.0], h) is False
