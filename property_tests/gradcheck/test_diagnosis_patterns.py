"""Edges of two diagnoses, through gradcheck.diagnosis.diagnose: errors confined to some
slices of an axis ("errors only at index 1 of axis 0"), and a difference that is, along
an axis, a constant plus a multiple of the input (a normalization's statistics treated
as constants). Each case states the sentence a user reads, or its absence."""

import numpy as np
import pytest

from gradcheck.diagnosis import diagnose

AFFINE = "a constant plus a multiple of the input"


def _reference(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def _with_wrong_slices(shape, axis, wrong, fraction=1.0):
    """Reference and analytic with the slices ``wrong`` of ``axis`` off (a share of
    ``fraction`` of each such slice's entries), and the mismatch mask."""
    r = _reference(shape)
    mismatch = np.zeros(shape, dtype=bool)
    for index in wrong:
        piece = np.moveaxis(mismatch, axis, 0)[index]
        flat = piece.reshape(-1)
        flat[:int(round(fraction * flat.size))] = True
        np.moveaxis(mismatch, axis, 0)[index] = flat.reshape(piece.shape)
    a = np.where(mismatch, r + 0.5 + np.abs(r), r)
    return a, r, mismatch


@pytest.mark.parametrize("shape, axis, wrong, fraction, said", [
    ((2, 6), 0, [1], 1.0, "errors only at index 1 of axis 0 (1 of 2"),   # a 2-long axis
    ((1, 8), 1, [0, 1, 2], 1.0, "errors only at indices 0, 1, 2 of axis 1 (3 of 8"),  # n=1 first
    ((4, 4), 0, [0], 0.75, "errors only at index 0 of axis 0 (1 of 4"),  # 3/4 is dense
    ((4, 4), 0, [2], 1.0, "errors only at index 2 of axis 0 (1 of 4"),
    ((4, 5), 0, [1, 3], 1.0, "errors only at indices 1, 3 of axis 0 (2 of 4"),  # half
])
def test_errors_confined_to_some_slices_are_named(shape, axis, wrong, fraction, said):
    a, r, mismatch = _with_wrong_slices(shape, axis, wrong, fraction)
    assert any(sentence.startswith(said) for sentence in diagnose(a, r, mismatch)), \
        diagnose(a, r, mismatch)


@pytest.mark.parametrize("shape, wrong, fraction", [
    ((3, 5), [0, 1], 1.0),     # 2 of 3 slices: more than half, not "only"
    ((4, 4), [0], 0.5),        # half of a slice: not systematic
])
def test_errors_in_most_slices_or_sparse_ones_are_not_said_to_be_confined(shape, wrong,
                                                                             fraction):
    a, r, mismatch = _with_wrong_slices(shape, 0, wrong, fraction)
    assert not any("errors only at ind" in s for s in diagnose(a, r, mismatch))


def _affine_case(shape, axis, *, noise=0.0, spread=1.0, seed=1):
    """analytic − reference = α + β · values along ``axis`` in each slice, plus noise
    (relative to the difference's size); values of the given spread."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=shape)
    values = spread * rng.normal(size=shape)
    other = tuple(n if k != axis else 1 for k, n in enumerate(shape))
    alpha, beta = rng.normal(size=other), 1.0 + rng.random(size=other)
    diff = 0.1 * (alpha + beta * values / spread)
    diff = diff + noise * float(np.max(np.abs(diff))) * rng.uniform(-1, 1, size=shape)
    a = r + diff
    return a, r, np.ones(shape, dtype=bool), values


@pytest.mark.parametrize("shape, axis", [((3, 5), 0), ((2, 5), 1), ((3, 4, 5), 0),
                                         ((4, 3, 5), 1)])
def test_a_difference_affine_in_the_input_along_an_axis_is_named(shape, axis):
    a, r, mismatch, values = _affine_case(shape, axis)
    said = [s for s in diagnose(a, r, mismatch, values=values) if AFFINE in s]
    assert said and f"along axis {axis}," in said[0], diagnose(a, r, mismatch, values=values)


def test_small_input_values_are_still_seen():
    # The slope is fitted whatever the values' spread (here ~1e-2: variances ~1e-4).
    a, r, mismatch, values = _affine_case((3, 5), 0, spread=1e-2)
    assert any(AFFINE in s for s in diagnose(a, r, mismatch, values=values))


@pytest.mark.parametrize("noise, found", [(1e-5, True), (1e-2, False)])
def test_the_fit_is_to_a_thousandth_of_the_difference(noise, found):
    a, r, mismatch, values = _affine_case((3, 5), 0, noise=noise)
    assert any(AFFINE in s for s in diagnose(a, r, mismatch, values=values)) == found


def test_a_small_difference_is_held_to_its_own_size_not_to_the_gradient():
    # The difference is 1e-3 of the gradient and its noise 1e-2 of itself: no fit.
    rng = np.random.default_rng(3)
    r, values = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    diff = 1e-3 * (rng.normal(size=(1, 5)) + values)
    diff = diff * (1 + 1e-2 * rng.uniform(-1, 1, size=(3, 5)))
    assert not any(AFFINE in s for s in diagnose(r + diff, r, np.ones((3, 5), dtype=bool),
                                                 values=values))


def test_no_affine_diagnosis_for_one_axis_or_values_of_another_shape():
    a, r, mismatch, values = _affine_case((3, 5), 0)
    assert not any(AFFINE in s for s in diagnose(a[:, 0], r[:, 0], mismatch[:, 0],
                                                 values=values[:, 0]))
    assert not any(AFFINE in s for s in diagnose(a, r, mismatch, values=values[:2]))


# ----------------------------------------------------------------- a shift, a constant

def _says(a, r, text):
    return [s for s in diagnose(a, r, np.ones(a.shape, dtype=bool)) if text in s]


@pytest.mark.parametrize("shape, step, axis, said", [
    ((4,), 1, 0, "moved by 1 along axis 0 "),           # an axis of exactly 4
    ((6,), -1, 0, "moved by -1 along axis 0 "),
    ((3, 8), 1, 1, "moved by 1 along axis 1 "),         # past axes too short to shift
])
def test_a_gradient_moved_by_one_entry_is_named(shape, step, axis, said):
    r = _reference(shape, seed=4)
    a = np.roll(r, step, axis=axis)
    assert _says(a, r, said), diagnose(a, r, np.ones(shape, dtype=bool))


def test_a_shift_by_two_or_broken_next_to_a_border_is_not_a_shift():
    r = _reference((8, 5), seed=5)
    assert not _says(np.roll(r, 2, axis=0), r, "moved by")
    for row in (1, 6):               # the first and last rows of the interior
        a = np.roll(r, 1, axis=0)
        a[row] = -a[row] - 1.0
        assert not _says(a, r, "moved by"), row


@pytest.mark.parametrize("shape, axis", [((2, 5), 0), ((5, 3), 1)])
def test_a_difference_constant_along_an_axis_is_named(shape, axis):
    r = _reference(shape, seed=6)
    other = tuple(n if k != axis else 1 for k, n in enumerate(shape))
    a = r + 0.3 * (1.0 + np.abs(_reference(other, seed=7)))
    assert _says(a, r, f"the same along axis {axis} ({shape[axis]} entries each)")


@pytest.mark.parametrize("noise, found", [(1e-5, True), (1e-2, False)])
def test_the_constant_is_held_to_a_thousandth_of_the_difference(noise, found):
    r = _reference((4, 5), seed=8)
    constant = 0.3 * (1.0 + np.abs(_reference((1, 5), seed=9)))
    wobble = 1.0 + noise * np.random.default_rng(10).uniform(-1, 1, size=(4, 5))
    assert bool(_says(r + constant * wobble, r, "the same along axis 0")) == found


def test_a_small_constant_difference_is_held_to_its_own_size():
    r = _reference((4, 5), seed=11)
    small = 1e-3 * (1.0 + np.abs(_reference((1, 5), seed=12)))
    wobble = 1.0 + 1e-2 * np.random.default_rng(13).uniform(-1, 1, size=(4, 5))
    assert not _says(r + small * wobble, r, "the same along axis")


def test_no_constant_along_a_one_long_axis_or_in_one_dimension():
    r = _reference((1, 6), seed=14)
    a = r + _reference((1, 6), seed=15)
    assert not _says(a, r, "the same along axis")
    assert not _says(r[0] + 0.3, r[0], "the same along axis")
