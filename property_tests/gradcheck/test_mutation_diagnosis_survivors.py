"""Diagnoses at their edges (issue 13), through gradcheck.diagnosis.diagnose: the sentences a
user reads for a wrong gradient, where a pattern only nearly holds, holds exactly at its
threshold, or sits on axes of length 1 or 2.

- A transformed gradient "matches" to 1e-6 of the larger magnitude, inclusive, and of its own
  size (a factor of 1e-4 with a scatter of 1e-3 of itself is no factor); a factor within 1e-5
  of 1 must match to a tenth of its distance from 1; a gradient within 1e-8 of the reference
  is no factor of 1, and a size of 1 is never the factor.
- Transposes and 180° rotations of 2 × 2 gradients are named; axes of length 1 are never
  "swapped" or "flipped".
- A shift seen only in the border columns, errors every 3rd index or on an axis of exactly 4,
  borders around an inside of 2 × 3, a row that is also a border.
- A difference constant (or affine in the input) along an axis: at a spread (a residual) of
  exactly a thousandth of the difference and 0.05 % either side, as large as the gradient
  itself, and with a slope of exactly 1; input values in float16 are fitted in float64.
- Zeros at exactly half the wrong entries (and fewer), at the largest entry; the overall
  sentence counts an entry of equal magnitude as not larger; 2, 3 and 5 wrong entries, all
  entries wrong, empty gradients, gradients of 1e-170 and gradients given in float16.

Every expected sentence is derived by hand from the documented patterns.
"""

import numpy as np
import pytest

from gradcheck.diagnosis import diagnose

AFFINE = "a constant plus a multiple of the input in every slice"


def _grad(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def _all(shape):
    return np.ones(shape, dtype=bool)


def _factors(found):
    return [s for s in found if s.startswith("a constant factor")]


# ------------------------------------------------------------------ constant factors

def test_a_tiny_factor_with_a_scatter_of_a_thousandth_is_no_constant_factor():
    # analytic = 1e-4 × numeric, each entry off by up to 1e-3 of itself: the match is to
    # 1e-6 of the gradient's own size (1e-4), not of 1, so no factor is claimed.
    r = _grad((4, 5), seed=1)
    wobble = 1.0 + 1e-3 * np.random.default_rng(2).uniform(-1, 1, size=r.shape)
    a = 1e-4 * r * wobble
    assert not _factors(diagnose(a, r, _all(r.shape)))


def _near_one(scatter):
    """analytic = (1 + 8e-6) · numeric plus a scatter orthogonal to numeric (so the fitted
    factor is 1 + 8e-6 to rounding) of ``scatter`` times the largest entry."""
    r = _grad((4, 5), seed=3)
    p = _grad((4, 5), seed=4)
    p -= (np.sum(p * r) / np.sum(r * r)) * r
    k = 1.0 + 8e-6
    a = k * r + scatter * float(np.max(np.abs(k * r))) * p / float(np.max(np.abs(p)))
    return diagnose(a, r, _all(r.shape))


@pytest.mark.parametrize("scatter, named", [(7.6e-7, True), (9e-7, False)])
def test_a_factor_near_one_must_match_to_a_tenth_of_its_distance_from_one(scatter, named):
    # |k - 1| = 8e-6: the match is to 8e-7 (a tenth of it, under 1e-6). A scatter of
    # 7.6e-7 is within it (5 % margin, rounding ~1e-16); 9e-7 is not, though under 1e-6.
    found = _factors(_near_one(scatter))
    assert bool(found) == named, found
    if named:
        assert found[0] == "a constant factor: analytic ≈ 1.00001 × numeric"


def test_a_gradient_within_1e_minus_9_of_the_reference_is_no_factor_of_one():
    r = _grad((3, 4), seed=5)
    assert not _factors(diagnose((1.0 + 1e-9) * r, r, _all(r.shape)))


def test_a_factor_of_1e_minus_12_is_still_named():
    # Exactly representable: k = (1e-12 · 1) / (1 · 1) = 1e-12, the smallest factor named.
    r = np.array([1.0, 0.0, 0.0, 0.0])
    a = np.array([1e-12, 0.0, 0.0, 0.0])
    assert diagnose(a, r, a != r) == ["a constant factor: analytic ≈ 1e-12 × numeric"]


def test_a_factor_with_no_note_is_the_sentence_alone():
    r = _grad((4, 3), seed=6)
    assert diagnose(3.0 * r, r, _all(r.shape)) == ["a constant factor: analytic ≈ 3 × numeric"]


def test_a_size_of_one_is_never_the_factor():
    # k = 1 + 5e-7 is within 1e-6 of 1 = 1/1 = 1, but a size of 1 explains nothing.
    r = _grad((4, 3), seed=7)
    found = diagnose((1.0 + 5e-7) * r, r, _all(r.shape), sizes=[("x.shape[0]", 1)])
    assert found == ["a constant factor: analytic ≈ 1 × numeric"]


@pytest.mark.parametrize("k, note", [
    (3.0 * (1.0 + 5e-7), " = 3, x.shape[0] (a missing 1/m, or a sum where a mean belongs?)"),
    ((1.0 + 5e-7) / 4.0, " = 1/4, one over x.shape[1] (a mean taken twice, or an extra 1/m?)"),
])
def test_a_size_is_named_to_a_relative_1e_minus_6(k, note):
    # 5e-7 relative: within the match of 1e-6 of the factor (for 3: 1.5e-6 < 3e-6).
    r = _grad((3, 4), seed=8)
    found = diagnose(k * r, r, _all(r.shape), sizes=[("x.shape[0]", 3), ("x.shape[1]", 4)])
    label = "3" if k > 1 else "0.25"
    assert found == [f"a constant factor: analytic ≈ {label} × numeric{note}"]


# --------------------------------------------------------- transposes and rotations

def test_a_2_by_2_transpose_and_rotation_are_named():
    r = np.array([[0.9, -0.3], [0.6, 0.2]])
    assert diagnose(r.T, r, _all(r.shape)) == [
        "a transpose: analytic ≈ numeric with axes 0 and 1 swapped (a missing or extra "
        "transpose?)"]
    assert diagnose(r[::-1, ::-1], r, _all(r.shape)) == [
        "a 180° rotation: analytic ≈ numeric flipped along axes 0 and 1 (a kernel not "
        "rotated by ROT180, or rotated twice?)"]


def test_a_transpose_matches_to_1e_minus_6_of_the_largest_entry_inclusive():
    # The swapped gradient differs from the reference by exactly 1e-6 (1e-6 - 0.0) where
    # the largest entry is exactly 1.0: at the edge, still a transpose.
    r = np.array([[1.0, 0.5], [0.25, 0.0]])
    a = r.T.copy()
    a[1, 1] = 1e-6
    assert diagnose(a, r, _all(r.shape))[0].startswith(
        "a transpose: analytic ≈ numeric with axes 0 and 1 swapped")


def test_axes_of_length_one_are_never_swapped_or_flipped():
    # One entry off by 5e-7 of the largest (within the 1e-6 match): swapping or flipping
    # axes 0 and 1 of length 1 changes nothing, so neither may be claimed.
    r = np.array([1.0, 0.5, 0.25, 0.125, 1e-3]).reshape(1, 1, 5)
    a = r.copy()
    a[0, 0, 4] += 5e-7
    assert diagnose(a, r, a != r) == ["only 1 entry wrong: (0, 0, 4)"]


# ---------------------------------------------------------------------------- shifts

def test_a_zero_gradient_is_not_a_shift():
    # The interior of the analytic gradient is 0, as is the reference moved by 1 there:
    # two zeros match nothing (no scale), so no shift is claimed.
    r = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    a = np.zeros(6)
    assert diagnose(a, r, a != r) == ["only 1 entry wrong: (4,)"]


def test_a_shift_seen_only_in_the_border_columns_is_named():
    # Columns 1-4 are constant along axis 0, so moving along axis 0 changes only columns 0
    # and 5: the interior of axes (0, 1) agrees, that of axis 0 alone shows the shift.
    rng = np.random.default_rng(9)
    r = np.tile(rng.normal(size=6), (6, 1))
    r[:, [0, 5]] = rng.normal(size=(6, 2))
    a = np.roll(r, 1, axis=0)
    assert diagnose(a, r, a != r) == [
        "analytic ≈ numeric moved by 1 along axis 0 (away from the borders): an off-by-one "
        "in padding or cropping, a window placed one entry off?"]


# ---------------------------------------------------- borders, periods, subsets, counts

def _ring(shape, width):
    """Reference and analytic wrong within ``width`` of the borders of axes 0 and 1."""
    r = _grad(shape, seed=10)
    a = r.copy()
    inner = np.zeros(shape, dtype=bool)
    inner[width:shape[0] - width, width:shape[1] - width] = True
    a[~inner] += 1.0 + np.abs(r[~inner])
    return a, r


@pytest.mark.parametrize("shape", [(6, 7), (7, 6)])
def test_a_border_of_2_around_an_inside_of_2_by_3_is_no_border(shape):
    a, r = _ring(shape, 2)
    assert not any("borders" in s for s in diagnose(a, r, a != r))


def _rows_wrong(shape, rows):
    r = _grad(shape, seed=11)
    a = r.copy()
    a[rows] = -a[rows] - 1.0
    return a, r


def test_errors_every_third_index_are_named():
    a, r = _rows_wrong((7, 3), [1, 4])
    assert ("errors only at every 3th index of axis 0 (indices 1, 4): where overlapping "
            "windows meet, or a stride?") in diagnose(a, r, a != r)


def test_errors_every_other_index_of_an_axis_of_4_are_named():
    a, r = _rows_wrong((4, 3), [1, 3])
    assert ("errors only at every 2th index of axis 0 (indices 1, 3): where overlapping "
            "windows meet, or a stride?") in diagnose(a, r, a != r)


@pytest.mark.parametrize("shape, rows", [((3, 5), [0, 2]),   # an axis of 3 has no period
                                         ((6, 3), [2])])      # one index is no period
def test_no_period_on_an_axis_of_3_or_from_one_index(shape, rows):
    a, r = _rows_wrong(shape, rows)
    assert not any("every" in s for s in diagnose(a, r, a != r))


def test_two_wrong_entries_are_only_listed():
    # Patterns need 3 entries: two wrong entries forming a row are listed, nothing more.
    a, r = _rows_wrong((4, 2), [1])
    assert diagnose(a, r, a != r) == ["only 2 entries wrong: (1, 0), (1, 1)"]


def test_three_wrong_entries_forming_a_row_are_named_as_that_row():
    a, r = _rows_wrong((4, 3), [1])
    assert diagnose(a, r, a != r) == [
        "errors only at index 1 of axis 0 (1 of 4: examples, channels or units?)",
        "only 3 entries wrong: (1, 0), (1, 1), (1, 2)"]


def test_a_wrong_first_row_is_named_as_a_row_not_as_a_border_and_five_are_listed():
    a, r = _rows_wrong((5, 5), [0])
    assert diagnose(a, r, a != r) == [
        "errors only at index 0 of axis 0 (1 of 5: examples, channels or units?)",
        "only 5 entries wrong: (0, 0), (0, 1), (0, 2), (0, 3), (0, 4)"]


def test_when_every_entry_is_wrong_none_is_listed():
    r = np.array([[1.0, -2.0], [3.0, 0.5]])
    a = np.array([[2.0, 1.0], [-1.0, 0.25]])
    # Larger in magnitude: only |2| > |1|; the same sign: (2, 1) and (0.25, 0.5).
    assert diagnose(a, r, _all(r.shape)) == [
        "4 of 4 entries differ: analytic is larger in magnitude at 1 of them and has "
        "numeric's sign at 2; the formula itself differs (a term missing, extra or of the "
        "wrong quantity?)"]


def test_an_entry_of_the_same_magnitude_is_not_larger():
    r = np.array([1.0, -2.0, 3.0, 4.0, -5.0, 6.0, 0.5])
    a = np.array([-1.0, 1.0, 3.5, -4.0, -7.0, 1.0, 0.5])
    # Entries 0 and 3 have numeric's magnitude (not larger); larger: 3.5 and -7; numeric's
    # sign: 3.5, -7 and 1.
    assert diagnose(a, r, a != r) == [
        "6 of 7 entries differ: analytic is larger in magnitude at 2 of them and has "
        "numeric's sign at 3; the formula itself differs (a term missing, extra or of the "
        "wrong quantity?)"]


# ----------------------------------------------------------------------------- zeros

def _lost(zero, doubled, swap=False):
    r = np.arange(1.0, 13.0).reshape(3, 4)
    a = r.copy()
    a.flat[zero] = 0.0
    a.flat[doubled] *= 2.0
    return (r, a) if swap else (a, r)


def _zeros_said(found):
    return [s for s in found if " is 0 at " in s]


def test_zeros_at_the_largest_entry_are_counted():
    # Columns 2 and 3 lost, with the largest entry (12, which is 1.0 once scaled).
    a, r = _lost([2, 3, 6, 7, 10, 11], [])
    assert _zeros_said(diagnose(a, r, a != r)) == [
        "analytic is 0 at 6 of the 6 wrong entries where numeric is not: a contribution "
        "never written, or overwritten (= where += belongs?)"]
    assert _zeros_said(diagnose(r, a, a != r)) == [
        "numeric is 0 at 6 of the 6 wrong entries where analytic is not: gradient sent "
        "where the output does not depend on it"]


@pytest.mark.parametrize("swap", [False, True])
def test_zeros_are_named_at_half_the_wrong_entries_and_not_fewer(swap):
    a, r = _lost([0, 5, 10], [3, 6, 9], swap)         # 3 zeros of 6 wrong entries
    said = _zeros_said(diagnose(a, r, a != r))
    who = ("numeric", "analytic") if swap else ("analytic", "numeric")
    assert len(said) == 1 and said[0].startswith(
        f"{who[0]} is 0 at 3 of the 6 wrong entries where {who[1]} is not")
    a, r = _lost([0, 5], [3, 6, 9], swap)              # 2 zeros of 5
    assert not _zeros_said(diagnose(a, r, a != r))


# ------------------------------------------------- differences constant along an axis

def _offsets(r, c):
    """analytic = numeric + c (one offset per column)."""
    a = r + c
    return diagnose(a, r, a != r)


def test_a_constant_difference_as_large_as_the_gradient_is_named():
    # Column 0 of numeric is 0 and its offset 1.0 is the largest entry of either side:
    # the difference's largest magnitude is exactly 1.0 after scaling.
    r = np.random.default_rng(12).uniform(-0.25, 0.25, size=(4, 5))
    r[:, 0] = 0.0
    found = _offsets(r, np.array([1.0, 0.5, -0.25, 0.3, 0.1]))
    assert any(s.startswith("analytic − numeric is the same along axis 0 (4 entries each)")
               for s in found), found


def test_a_spread_of_exactly_a_thousandth_of_the_difference_is_still_the_same():
    # Exact in binary: column 0 of the difference is [0, 0, 1e-3], column 1 is 1.0 (the
    # largest magnitude), columns 2-3 are 0.5 and -0.25 on dyadic numerics; the threshold,
    # 1e-6 × 1e3 × 1.0, rounds to the double 1e-3 as well.
    r = np.array([[0.0, -0.5, 0.25, 0.5], [0.0, -0.25, -0.125, 0.25],
                  [0.0, 0.0, 0.375, -0.5]])
    a = r + np.array([0.0, 1.0, 0.5, -0.25])
    a[2, 0] = 1e-3
    found = diagnose(a, r, a != r)
    assert any(s.startswith("analytic − numeric is the same along axis 0 (3 entries each)")
               for s in found), found


@pytest.mark.parametrize("spread, same", [(0.9995e-3, True), (1.0005e-3, False)])
def test_the_constant_is_held_to_a_thousandth_either_side(spread, same):
    # Largest difference 1.0 (column 0); column 1 spreads by ``spread`` along axis 0. The
    # 0.05 % margins dwarf the rounding of (r + c) - r (~1e-16).
    r = _grad((4, 5), seed=13) * 0.1
    c = np.tile(np.array([1.0, 0.2, -0.3, 0.4, -0.5]), (4, 1))
    c[3, 1] += spread
    found = _offsets(r, c)
    assert any("the same along axis 0" in s for s in found) == same, found


# ------------------------------------------ differences affine in the input along an axis

def _affine_exact(label="numeric"):
    """analytic − numeric = α + β · values along axis 1 in each row, all in binary exactly;
    the largest entry (analytic[0, 3] = 1.0, where numeric is 0) is the difference's."""
    values = np.array([[0.0, 1.0, 2.0, 4.0], [1.0, -1.0, 0.5, 2.0]])
    diff = np.array([[0.0], [0.125]]) + np.array([[0.25], [0.25]]) * values
    r = np.array([[0.125, -0.25, 0.0625, 0.0], [-0.125, 0.25, 0.125, -0.0625]])
    a = r + diff
    return diagnose(a, r, a != r, values=values, label=label)


def test_a_difference_affine_in_the_input_as_large_as_the_gradient_is_named_in_full():
    assert ("analytic − torch is, along axis 1, a constant plus a multiple of the input in "
            "every slice: terms through a mean or a variance over axis 1 are missing or wrong "
            "(a normalization's statistics treated as constants, or a term of their backward "
            "forgotten?)") in _affine_exact("torch")


def test_a_difference_equal_to_the_input_plus_a_constant_is_named():
    # Slope exactly 1 in both rows (binary-exact numbers): analytic = numeric + x + α.
    values = np.array([[0.0, 0.25, 0.5, -0.25], [0.5, -0.5, 0.25, 0.0]])
    r = np.array([[0.5, -0.25, 0.25, 0.125], [-0.25, 0.5, -0.125, 0.25]])
    a = r + np.array([[0.25], [-0.125]]) + values
    assert any(AFFINE in s for s in diagnose(a, r, a != r, values=values))


def _affine_residual(rho):
    """Row 1: analytic − numeric = values / 4 exactly (slope 0.25, largest entry 1.0); row 0:
    constant values and a difference ρ · [1, -1, -1, 1] (mean 0), so a residual of ρ."""
    values = np.array([[0.5, 0.5, 0.5, 0.5], [0.0, 1.0, 2.0, 4.0]])
    r = np.array([[0.0, 0.0, 0.0, 0.0], [0.5, -0.25, 0.25, 0.0]])
    diff = np.vstack([rho * np.array([1.0, -1.0, -1.0, 1.0]), values[1] / 4.0])
    a = r + diff
    return any(AFFINE in s for s in diagnose(a, r, a != r, values=values))


@pytest.mark.parametrize("rho, found", [(0.9995e-3, True), (1e-3, True), (1.0005e-3, False)])
def test_the_fit_is_held_to_a_thousandth_of_the_difference_inclusive(rho, found):
    # Every quantity is exact for rho = 1e-3 (row 0 is rho ± 0 and its mean is 0; row 1 is
    # dyadic), so the residual equals the threshold 1e-3 × 1.0 bit for bit (1e-6 × 1e3
    # rounds to the double 1e-3). The 0.05 % margins dwarf any rounding (~1e-16).
    assert _affine_residual(rho) == found


def test_a_nearly_constant_difference_over_constant_inputs_is_not_affine_in_them():
    # Inputs constant along axis 1 in every row: no slope can be fitted (it is 0), so a
    # difference within 8e-4 of its mean (spread 1.6e-3: not "the same") is not affine.
    values = np.tile(np.array([[0.5], [-1.5], [2.0]]), (1, 4))
    r = _grad((3, 4), seed=14) * 0.1
    diff = np.array([[1.0], [0.5], [-0.7]]) + 8e-4 * np.array([1.0, -1.0, -1.0, 1.0])
    a = r + diff
    found = diagnose(a, r, a != r, values=values)
    assert not any(AFFINE in s or "the same along" in s for s in found), found


def test_input_values_in_float16_are_fitted_in_float64():
    # values / 400 is the difference exactly; in float16 the squares of the centered values
    # (up to 225²) would sum past float16's largest number, 65504.
    values = np.array([[0.0, 100.0, 200.0, 400.0], [100.0, -100.0, 50.0, 200.0]])
    r = np.array([[0.125, -0.25, 0.0625, 0.0], [-0.125, 0.25, 0.125, -0.0625]])
    a = r + values / 400.0
    found = diagnose(a, r, a != r, values=values.astype(np.float16))
    assert any(AFFINE in s for s in found), found


# ----------------------------------------------------------- what diagnose accepts

def test_empty_gradients_have_no_diagnosis():
    empty = np.zeros((0, 3))
    assert diagnose(empty, empty, np.zeros((0, 3), dtype=bool)) == []


def test_gradients_of_1e_minus_170_are_diagnosed_as_at_any_scale():
    # Their squares (1e-340) underflow to 0; the diagnosis is made in units of the largest.
    r = _grad((3, 4), seed=15) * 1e-170
    assert diagnose(2.0 * r, r, _all(r.shape)) == [
        "a constant factor: analytic ≈ 2 × numeric (a forgotten 1/2 of a squared loss, or a "
        "term counted twice?)"]


def test_gradients_in_float16_are_diagnosed_at_their_values():
    # Small integers, exact in float16; scaled by 1/5 in float64 both sides agree exactly,
    # in float16 they would differ by its rounding (~5e-4), far over the 1e-6 match.
    r = np.array([[5.0, 1.0, -3.0], [2.0, 4.0, -1.0], [3.0, -2.0, 1.0]])
    found = diagnose(r.T.astype(np.float16), r.astype(np.float16), _all(r.shape))
    assert found == ["a transpose: analytic ≈ numeric with axes 0 and 1 swapped (a missing or "
                     "extra transpose?)"]


@pytest.mark.parametrize("k", [2.0, 2.0000015, -1.9999985])
def test_a_factor_of_2_is_never_named_a_size_of_2(k):
    # Found by a surviving mutant (issue 13): a size n is named within 1e-6 · n of k,
    # 2e-6 for n = 2, while "2 is a forgotten 1/2" took only 1e-6: at k = 2.0000015 the
    # message said "= 2, x.shape[1] (a missing 1/m...)". Both now take the same 2e-6.
    r = _grad((3, 4), seed=21)
    (found,) = _factors(diagnose(k * r, r, _all(r.shape), sizes=[("x.shape[1]", 2)]))
    assert found.endswith("(a forgotten 1/2 of a squared loss, or a term counted twice?)")
