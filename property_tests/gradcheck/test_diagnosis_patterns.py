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
