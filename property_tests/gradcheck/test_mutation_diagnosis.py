"""Diagnoses a user reads (issue 13): each pattern named with its own words, on the axes it
names, and none where the pattern is absent or only nearly there.
"""

import numpy as np
import pytest

from gradcheck.diagnosis import diagnose


def _grad(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def _all(shape):
    return np.ones(shape, dtype=bool)


@pytest.mark.parametrize("k, words", [
    (0.5, "a constant factor: analytic ≈ 0.5 × numeric (a forgotten 1/2 of a squared loss"),
    (2.0, "a constant factor: analytic ≈ 2 × numeric (a forgotten 1/2 of a squared loss"),
    (-2.0, "a constant factor: analytic ≈ -2 × numeric (a forgotten 1/2"),
    (3.0, "a constant factor: analytic ≈ 3 × numeric"),
    (-1.0, "a sign flip: analytic ≈ -1 × numeric"),
])
def test_a_constant_factor_is_named_with_its_value(k, words):
    r = _grad((4, 3))
    found = diagnose(k * r, r, _all(r.shape))
    assert len(found) == 1
    assert found[0].startswith(words)
    if abs(abs(k) - 1.0) > 0.5 and abs(k) != 3.0:
        assert "1/2" in found[0]
    if k == 3.0:
        assert "1/2" not in found[0]


def test_a_factor_of_one_over_a_size_names_that_size_and_two_is_never_a_size():
    r = _grad((4, 3))
    found = diagnose(r / 4, r, _all(r.shape), sizes=[("x.shape[0]", 4)])
    assert found == ["a constant factor: analytic ≈ 0.25 × numeric = 1/4, one over x.shape[0] "
                     "(a mean taken twice, or an extra 1/m?)"]
    found = diagnose(4 * r, r, _all(r.shape), sizes=[("x.shape[0]", 4)])
    assert found[0].endswith("= 4, x.shape[0] (a missing 1/m, or a sum where a mean belongs?)")
    found = diagnose(0.5 * r, r, _all(r.shape), sizes=[("x.shape[1]", 2)])
    assert "one over" not in found[0] and "forgotten 1/2" in found[0]


def test_a_factor_off_by_more_than_rounding_is_no_constant_factor():
    r = _grad((5, 4))
    a = 2.0 * r
    a[0, 0] *= 1.01
    found = diagnose(a, r, _all(r.shape))
    assert not any("constant factor" in f for f in found)


@pytest.mark.parametrize("shape, axes", [((3, 3), (0, 1)), ((2, 4, 4), (1, 2)),
                                         ((5, 2, 3, 3), (2, 3)), ((4, 4, 2), (0, 1))])
def test_a_transpose_is_named_on_the_axes_it_swaps(shape, axes):
    r = _grad(shape)
    a = np.swapaxes(r, *axes)
    found = diagnose(a, r, _all(shape))
    assert found == [f"a transpose: analytic ≈ numeric with axes {axes[0]} and {axes[1]} "
                     "swapped (a missing or extra transpose?)"]


@pytest.mark.parametrize("shape, axes", [((3, 4), (0, 1)), ((2, 3, 5), (1, 2)),
                                         ((2, 2, 3, 3), (2, 3))])
def test_a_180_degree_rotation_is_named_on_its_axes(shape, axes):
    r = _grad(shape)
    a = np.flip(r, axis=axes)
    found = diagnose(a, r, _all(shape), label="torch")
    assert found == [f"a 180° rotation: analytic ≈ torch flipped along axes {axes[0]} and "
                     f"{axes[1]} (a kernel not rotated by ROT180, or rotated twice?)"]


def test_a_swap_of_the_middle_axes_of_a_4d_gradient_is_not_claimed_as_a_transpose():
    r = _grad((2, 3, 3, 2))
    found = diagnose(np.swapaxes(r, 1, 2), r, _all(r.shape))
    assert not any("transpose" in f for f in found)


def test_errors_in_a_few_entries_are_listed_by_index():
    r = _grad((4, 5))
    a = r.copy()
    a[1, 2] += 1.0
    a[3, 0] -= 1.0
    mismatch = np.abs(a - r) > 1e-6
    found = diagnose(a, r, mismatch)
    assert found[-1] == "only 2 entries wrong: (1, 2), (3, 0)"
    a[2, 2] += 1.0
    found = diagnose(a, r, np.abs(a - r) > 1e-6)
    assert found[-1] == "only 3 entries wrong: (1, 2), (2, 2), (3, 0)"


def test_errors_confined_to_some_examples_of_a_batch_are_named():
    r = _grad((6, 4))
    a = r.copy()
    a[:, 1] *= 1.5
    found = diagnose(a, r, np.abs(a - r) > 1e-9, batch_axes=[1])
    assert found[0] == "errors only at index 1 of axis 1 (1 of 4: examples of the batch?)"
    found = diagnose(a, r, np.abs(a - r) > 1e-9)
    assert found[0] == "errors only at index 1 of axis 1 (1 of 4: examples, channels or units?)"


def test_errors_at_the_borders_and_at_every_other_index_are_named():
    r = _grad((7, 7))
    a = r.copy()
    a[0, :] += 1.0
    a[:, -1] += 1.0
    found = diagnose(a, r, np.abs(a - r) > 1e-9)
    assert ("errors only within 1 of the borders of axes (0, 1) (padding, or the edge of a "
            "window?)") in found
    b = r.copy()
    b[:, [0, 2, 4, 6]] *= 1.3
    found = diagnose(b, r, np.abs(b - r) > 1e-9)
    assert any(f.startswith("errors only at every 2th index of axis 1 (indices 0, 2, 4, 6)")
               for f in found), found


def test_the_overall_sentence_counts_larger_entries_and_signs():
    r = np.array([1.0, -2.0, 3.0, 4.0, -5.0, 6.0, 0.5])
    a = np.array([2.0, 1.0, 3.5, -1.0, -7.0, 1.0, 0.25])
    mismatch = np.array([True, True, True, True, True, True, False])
    found = diagnose(a, r, mismatch)
    assert found[-1] == ("6 of 7 entries differ: analytic is larger in magnitude at 3 of them "
                         "and has numeric's sign at 4; the formula itself differs (a term "
                         "missing, extra or of the wrong quantity?)")


def test_a_gradient_with_lost_entries_is_said_to_have_zeros():
    r = _grad((4, 6), seed=3) + 3.0
    a = r.copy()
    a[:, :3] = 0.0
    found = diagnose(a, r, np.abs(a - r) > 1e-9)
    assert any(f.startswith("analytic is 0 at 12 of the 12 wrong entries where numeric is "
                            "not") for f in found), found
    found = diagnose(r, a, np.abs(a - r) > 1e-9)
    assert any(f.startswith("numeric is 0 at 12 of the 12 wrong entries where analytic is "
                            "not") for f in found), found


def test_nothing_is_diagnosed_without_a_mismatch():
    r = _grad((3, 3))
    assert diagnose(2 * r, r, np.zeros(r.shape, dtype=bool)) == []


def _border_errors(shape, width, axes=(0, 1)):
    r = _grad(shape, seed=5)
    a = r.copy()
    index = [slice(None)] * len(shape)
    for axis in axes:
        for edge in (slice(0, width), slice(shape[axis] - width, shape[axis])):
            index[axis] = edge
            a[tuple(index)] += 1.0 + np.abs(r[tuple(index)])
            index[axis] = slice(None)
    return diagnose(a, r, np.abs(a - r) > 1e-9)


def test_border_errors_are_named_with_their_width_down_to_an_inside_of_3_by_3():
    words = "errors only within {} of the borders of axes ({}, {})"
    assert words.format(1, 0, 1) in " ".join(_border_errors((5, 5), 1))
    assert words.format(2, 0, 1) in " ".join(_border_errors((7, 7), 2))
    assert words.format(2, 0, 1) in " ".join(_border_errors((7, 8), 2))
    assert "borders" not in " ".join(_border_errors((6, 6), 2))      # an inside of 2 x 2
    assert "borders" not in " ".join(_border_errors((4, 5), 1))
    assert "borders" not in " ".join(_border_errors((5, 4), 1))
    # A batch axis too short for borders does not hide those of the last two axes.
    assert words.format(1, 1, 2) in " ".join(_border_errors((2, 6, 6), 1, axes=(1, 2)))
