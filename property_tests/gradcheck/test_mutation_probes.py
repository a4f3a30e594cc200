"""One group's probes (`probe_group`) and the grouped difference built on them, held to
what their docstrings promise (issue 13): each member's share of ``<dout, J>``, the
outputs each member owns, the rounding estimate of each entry, the count of outputs that
no single member explains (moved by two, or cancelled in one probe), whether those are
few, and whether anything is evidence against the grouping.

Entries sit in [-1, 1] and the step is a power of two, so that every probe moves an entry
by exactly ``multiplier · step`` (the multipliers of a group of 2 are 1.25 and 1.75,
exact in binary): the expected values below are computed from the documented formulas
with those moves.
"""

import numpy as np
import pytest

from gradcheck.numerical import (GroupProbe, _GroupProber, discover_coloring,
                                 grouped_difference, probe_group)

H = 2.0 ** -20
EPS = np.finfo(np.float64).eps
#: The two probes' multipliers of a group of two (``_owner_steps(2)``): r, and s = r rolled.
R, S = np.array([1.25, 1.75]), np.array([1.75, 1.25])
#: A central difference's truncation error is (t²/6)·y''' (t ≤ 1.75 H: below 1e-12 for the
#: functions here) and its rounding eps·|y|/t ≈ 1e-10: shares are exact to 1e-9.
SHARE_TOL = 1e-9


def _probe(f, values, dout, members=(0, 1), complex_=False):
    """``probe_group`` of ``members`` of ``values``, the layer ``f(x)``; and the prober."""
    x = np.array(values, dtype=np.complex128 if complex_ else np.float64)
    prober = _GroupProber(lambda: f(x), x, H, complex_)
    y0 = None if complex_ else f(x).copy()
    found = probe_group(prober, np.array(members), np.asarray(dout, dtype=np.float64), y0)
    return found, prober


def _assert_probe(found, *, share, wrong, few_wrong, blameless, owned):
    assert isinstance(found, GroupProbe)
    np.testing.assert_allclose(found.share, share, rtol=0, atol=SHARE_TOL)
    assert found.wrong == wrong and found.few_wrong is few_wrong
    assert found.blameless is blameless
    assert found.owned.dtype == np.int64 and found.owned.tolist() == owned


@pytest.mark.parametrize("complex_", [False, True])
def test_a_group_that_moves_no_output_is_attributed_nothing(complex_):
    """A dead ReLU's inputs: nothing to attribute, nothing wrong, no third probe."""
    found, prober = _probe(lambda x: np.full(3, 2.0) + 0 * np.sum(x), [-0.5, -0.25],
                           [1.0, 2.0, 3.0], complex_=complex_)
    _assert_probe(found, share=[0, 0], wrong=0, few_wrong=True, blameless=False, owned=[0, 0])
    assert np.array_equal(found.rounding, [0.0, 0.0])
    assert prober.calls == (1 if complex_ else 2)


@pytest.mark.parametrize("complex_", [False, True])
def test_one_entry_owns_every_output_it_moves(complex_):
    """One member: its share is the derivative of <dout, y>, with no third probe."""
    def f(x):
        return np.stack([x[0] ** 3, 2 * x[0], 7.0 + 0 * x[0]])

    dout = np.array([1.0, -2.0, 3.0])
    found, prober = _probe(f, [0.5], dout, members=[0], complex_=complex_)
    _assert_probe(found, share=[3 * 0.25 - 4.0], wrong=0, few_wrong=True, blameless=False,
                  owned=[2])
    assert prober.calls == (1 if complex_ else 2)
    if complex_:
        assert np.array_equal(found.rounding, [0.0])
    else:
        # (Σ|dout ⊙ y| + Σ|dout|) / h over the outputs moved, y at the step 1.5 H (a single
        # member's multiplier). An estimate of rounding: 1e-3 is all a user relies on.
        y_plus = f(np.array([0.5 + 1.5 * H]))[:2]
        expected = (np.sum(np.abs(dout[:2] * y_plus)) + np.sum(np.abs(dout[:2]))) / (1.5 * H)
        np.testing.assert_allclose(found.rounding, [expected], rtol=1e-3)


def _disjoint(x):
    """x0 moves outputs 0 and 2, x1 output 1; output 3 is constant."""
    return np.stack([np.sin(x[0]), x[1] ** 2, 3 * x[0], 5.0 + 0 * x[0]])


@pytest.mark.parametrize("complex_", [False, True])
def test_members_that_move_disjoint_outputs_each_get_their_own_share(complex_):
    dout = np.array([1.0, -2.0, 0.5, 4.0])
    x = [0.5, -0.25]
    found, prober = _probe(_disjoint, x, dout, complex_=complex_)
    _assert_probe(found, share=[np.cos(0.5) + 1.5, -2.0 * 2 * -0.25], wrong=0,
                  few_wrong=True, blameless=False, owned=[2, 1])
    assert prober.calls == (2 if complex_ else 3)
    if complex_:
        assert np.array_equal(found.rounding, [0.0, 0.0])
    else:
        # Each member's (Σ|dout ⊙ y| + Σ|dout|) / h over the outputs it owns, y at +r h.
        y_plus = _disjoint(np.array(x) + R * H)
        owned = [[0, 2], [1]]
        expected = [(np.sum(np.abs(dout[o] * y_plus[o])) + np.sum(np.abs(dout[o])))
                    / (R[k] * H) for k, o in enumerate(owned)]
        np.testing.assert_allclose(found.rounding, expected, rtol=1e-3)


@pytest.mark.parametrize("complex_", [False, True])
def test_an_output_moved_by_two_members_is_wrong_and_evidence(complex_):
    """A sum moves alike with both: its ratio is 1, no member's (1.4 and 1/1.4)."""
    found, _ = _probe(lambda x: np.stack([x[0] + x[1], x[0], 2 * x[1]]), [0.5, 0.25],
                      [1.0, 1.0, 1.0], complex_=complex_)
    assert found.wrong == 1 and found.few_wrong is False and found.blameless is False


@pytest.mark.parametrize("shared, few", [(3, True), (4, False)])
def test_few_unmatched_outputs_are_at_most_one_percent_of_those_moved(shared, few):
    """300 outputs moved: 3 moved by both members are few (1 %), 4 are not."""
    def f(x):
        return np.concatenate([np.arange(1, 151) * x[0], np.arange(1, 151 - shared) * x[1],
                               np.full(shared, x[0] + x[1])])

    found, _ = _probe(f, [0.5, 0.25], np.ones(300))
    assert found.wrong == shared and found.few_wrong is few and found.blameless is False


def test_outputs_cancelled_in_one_probe_but_moved_in_the_other_are_wrong():
    """1.75 x0 - 1.25 x1 does not move at the multipliers (1.25, 1.75), and 1.25 x0 - 1.75 x1
    not at (1.75, 1.25): each is moved by both entries, seen in one probe only."""
    def f(x):
        return np.stack([1.75 * x[0] - 1.25 * x[1], 1.25 * x[0] - 1.75 * x[1], x[0], x[1]])

    found, _ = _probe(f, [0.5, 0.25], np.ones(4))
    assert found.wrong == 2 and found.few_wrong is False and found.blameless is False
    # The same with one member whose change is lost: still evidence, not a kink.
    found, _ = _probe(lambda x: f(x)[[0, 2, 3]], [0.5, 0.25], np.ones(3))
    assert found.wrong == 1 and found.blameless is False


def test_an_output_bent_by_a_kink_within_the_step_is_no_evidence():
    """relu(x0 + x1 - 0.75 + 1e-7): both entries move it, but across a kink 1e-7 away (the
    probes move the sum by ±3 H ≈ 3e-6): unmatched, and blameless."""
    def f(x):
        return np.stack([np.maximum(x[0] + x[1] - 0.75 + 1e-7, 0.0), x[0], x[1]])

    found, _ = _probe(f, [0.5, 0.25], np.ones(3))
    assert found.wrong == 1 and found.blameless is True


def _barely(x, weight):
    """An output that moves by ~1e-12 of its size (its ratio is lost in rounding), ``weight``
    times as much in <dout, y> as the rest would make it."""
    return np.stack([x[0], x[1], weight * (1.0 + 3e-7 * (x[0] + x[1]))])


def test_an_output_too_noisy_to_name_its_owner_is_not_counted_when_its_weight_is_small():
    found, _ = _probe(lambda x: _barely(x, 1.0), [0.5, 0.25], np.ones(3))
    assert found.wrong == 0 and found.blameless is False
    # It goes to the nearest member unverified: 3e-7 of a share at most.
    np.testing.assert_allclose(found.share, [1.0, 1.0], rtol=0, atol=1e-6)


def test_a_complex_output_that_barely_moves_is_not_counted_when_its_weight_is_small():
    """1 + 1e-14 (x0 + x1): its imaginary part, 3e-44, is within 4 eps of the output's size
    times the step (1.75e-30): too noisy to name an owner, and its weight is 1e-14 of all."""
    found, _ = _probe(lambda x: np.stack([x[0], x[1], 1.0 + 1e-14 * (x[0] + x[1])]),
                      [0.5, 0.25], np.ones(3), complex_=True)
    assert found.wrong == 0 and found.blameless is False


def test_outputs_too_noisy_to_name_their_owner_refuse_the_group_when_they_weigh_much():
    """Over 1 % of <dout, change> in outputs whose owner is unclear: refused, blamelessly."""
    found, _ = _probe(lambda x: _barely(x, 1.0), [0.5, 0.25], [1.0, 1.0, 1e7])
    assert found.wrong == 1 and found.blameless is True


# ---- grouped_difference: calls, groups, refusal, and every entry exact ----------------


def _cubic(x):
    return np.tanh(x) * x


def test_a_grouped_difference_of_a_large_group_is_exact_for_every_entry():
    """An elementwise function, 2,000 entries in one group: multipliers stay in [1, 2)
    whatever the group's size (the step never grows with it), so every entry is exact.
    (A few entries near 0, whose change barely shows, are probed again in halves.)"""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 2000)
    dout = rng.standard_normal(2000)
    found = grouped_difference(lambda: _cubic(x), x, dout, np.zeros(2000, dtype=np.int64))
    exact = dout * (np.tanh(x) + x / np.cosh(x) ** 2)
    # Steps up to 2 · STEP (6e-6): truncation (t²/6)|y'''| < 1e-10, rounding ~1e-10.
    np.testing.assert_allclose(found.grad, exact, rtol=0, atol=1e-8)
    assert found.groups == 1


@pytest.mark.parametrize("order", ["C", "F", "T"])
def test_a_grouped_difference_probes_any_memory_layout_in_place(order):
    """A Fortran-ordered or transposed array (not C-contiguous) is moved in place too.
    (Outputs and dout are flat, as the checker passes them.)"""
    base = np.array([[0.5, -0.25, 0.75], [0.125, -0.5, 0.25]])
    x = base.T.copy().T if order == "F" else base.T if order == "T" else base.copy()
    before = x.copy()
    dout = np.arange(1.0, x.size + 1)
    found = grouped_difference(lambda: (np.sin(x) * 2).reshape(-1), x, dout,
                               np.arange(x.size).reshape(x.shape) % 2, step=H)
    np.testing.assert_allclose(found.grad, 2 * np.cos(before) * dout.reshape(x.shape),
                               rtol=0, atol=SHARE_TOL)
    assert found.calls == 1 + 2 * 3 and found.groups == 2
    assert np.array_equal(x, before)


def test_a_refused_grouping_reports_its_calls_and_groups():
    """Every entry moves the sum: the one group is refused, after 1 + 3 calls."""
    x = np.array([0.5, -0.25, 0.75, 0.125, -0.5])
    found = grouped_difference(lambda: np.array([np.sum(x)]), x, np.ones(1),
                               np.zeros(5, dtype=np.int64), step=H)
    assert found.grad is None and found.calls == 4 and found.groups == 1
    assert found.blameless is False


def test_a_grouped_rounding_adds_each_groups_estimate_to_its_members():
    """Rounding is added to what the caller's array holds, member by member."""
    x = np.array([0.5, -0.25])
    rounding = np.full(2, 10.0)
    dout = np.array([1.0, -2.0, 0.5, 4.0])
    found = grouped_difference(lambda: _disjoint(x), x, dout, np.zeros(2, dtype=np.int64),
                               step=H, rounding=rounding)
    own, _ = _probe(_disjoint, [0.5, -0.25], dout)
    np.testing.assert_allclose(rounding, 10.0 + own.rounding, rtol=1e-12)
    np.testing.assert_allclose(found.grad, own.share, rtol=1e-12)


def test_a_member_that_owns_nothing_is_probed_again_without_the_stronger_one():
    """x1 moves output 0 1e-7 as much as x0 does (lost within the match tolerance of 1e-6),
    and nothing else: probed again alone, its share is found."""
    x = np.array([0.5, 0.25])
    dout = np.array([1.0, 1.0])

    def f():
        return np.array([x[0] + 1e-7 * x[1], 3 * x[0]])

    found = grouped_difference(f, x, dout, np.zeros(2, dtype=np.int64), step=H)
    # x1's change, 1e-7 · 2.5 H, against the rounding of an output of 0.5: 5e-4 relative.
    np.testing.assert_allclose(found.grad, [4.0, 1e-7], rtol=1e-3, atol=0)
    assert found.calls == 1 + 3 + 2          # y0; the pair; x1 alone (2 calls)


def test_a_group_with_a_few_kinks_is_halved_until_each_kink_is_alone():
    """A ReLU's 400 inputs in one group, one of them within a step of 0: the kink bends
    one output, the group is halved (not refused), and every entry ends exact."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 1.0, 400) * rng.choice([-1.0, 1.0], 400)
    x[123] = 1e-7
    dout = rng.standard_normal(400)
    found = grouped_difference(lambda: np.maximum(x, 0.0), x, dout,
                               np.zeros(400, dtype=np.int64), step=H)
    assert found.grad is not None
    exact = np.where(x > 0, dout, 0.0)
    mask = np.arange(400) != 123            # at the kink, any one-sided slope will do
    np.testing.assert_allclose(found.grad[mask], exact[mask], rtol=0, atol=SHARE_TOL)


def _partition(colors):
    """The groups of a coloring, as sets of flat indices (whatever the colors' values)."""
    flat = colors.reshape(-1)
    return sorted(tuple(np.flatnonzero(flat == c)) for c in np.unique(flat))


def _discover(f, x, dout):
    return discover_coloring(lambda: f(x).reshape(-1), x, np.asarray(dout).reshape(-1), step=H)


@pytest.mark.parametrize("taps, period", [(3, 3), (2, 2)])
def test_discovered_periods_of_a_convolution_like_layer(taps, period):
    """A filter of 2 or 3 taps along the last axis, rows independent: period 1 across rows,
    the filter's width along it; entries with the same indices modulo those in one group."""
    x = np.random.default_rng(2).uniform(-1, 1, (4, 10))
    weights = [1.0, 2.0, -1.0][:taps]

    def f(x):
        return sum(w * x[:, k:10 - taps + 1 + k] for k, w in enumerate(weights))

    colors, periods, calls = _discover(f, x, np.ones((4, 11 - taps)))
    assert periods == (1, period)
    assert colors.dtype == np.int64 and colors.shape == x.shape
    assert _partition(colors) == _partition(np.broadcast_to(np.arange(10) % period, (4, 10)))
    assert calls >= 1 + 3


def test_a_row_that_mixes_its_entries_is_found_through_the_tensors_center():
    """Rows of a (5, 6) tensor pass through, but for the middle one, summed: entries along
    the middle row share an output, so no period but the whole axis holds along it."""
    x = np.random.default_rng(3).uniform(-1, 1, (5, 6))

    def f(x):
        return np.concatenate([x.reshape(-1), [np.sum(x[2])]])

    _, periods, _ = _discover(f, x, np.ones(31))
    assert periods == (1, 6)


def test_a_kink_within_a_step_does_not_break_an_elementwise_period():
    """A ReLU over 300 entries, one within a step of 0: 1 output in 300 bends, which is a
    kink (few), not entries sharing outputs: period 1."""
    x = np.random.default_rng(4).uniform(0.1, 1.0, 300)
    x[150] = 1e-7
    _, periods, _ = _discover(lambda x: np.maximum(x, 0.0), x, np.ones(300))
    assert periods == (1,)


def test_an_empty_tensor_has_an_empty_gradient_and_no_groups():
    x = np.zeros((0, 3))
    found = grouped_difference(lambda: np.zeros(2), x, np.ones(2),
                               np.zeros((0, 3), dtype=np.int64))
    assert found.grad.shape == (0, 3) and found.groups == 0


def test_weak_members_that_share_a_strong_members_output_are_halved_not_refused():
    """x1 and x2 each move output 0 1e-7 as much as x0 (lost in its change): probed again
    without x0, they share that output, and are halved until each is alone."""
    x = np.array([0.5, 0.25, -0.25])

    def f():
        return np.array([x[0] + 1e-7 * (x[1] + x[2]), 3 * x[0]])

    found = grouped_difference(f, x, np.ones(2), np.zeros(3, dtype=np.int64), step=H)
    # x1's and x2's changes, 1e-7 · 2.5 H, against the rounding of an output of 0.5.
    np.testing.assert_allclose(found.grad, [4.0, 1e-7, 1e-7], rtol=1e-3, atol=0)


# ---- probe_group's match and cancellation allowances at their edges -------------------
# An output's ratio is matched to max(1e-6, c σ) of its owner's, c = 100 (central) or 10
# (complex), σ = its rounding over its change; matched that way within a quarter of the
# members' spacing ((1.4 - 1/1.4) / 4 = 0.1714 for two) it names its owner, else it is
# unclear (its ratio says nothing). A sum of both members (ratio 1) is then wrong when
# clear, and passes unverified when unclear and light.

SPACING_4 = (1.4 - 1 / 1.4) / 4


@pytest.mark.parametrize("at, wrong", [(0.995, 1), (1.02, 0)])
def test_a_light_shared_output_is_wrong_only_while_its_ratio_is_clear(at, wrong):
    """1 + c (x0 + x1): σ = 4 eps (|y⁺| + |y⁻| + |y_s| + |y0|) ≈ 16 eps over its change
    d1 = 6 c H (moves 2 r_k H); c puts 100 σ at ``at`` times the quarter spacing."""
    c = 100 * 16 * EPS / (6 * H * at * SPACING_4)
    found, _ = _probe(lambda x: np.stack([x[0], x[1], 1.0 + c * (x[0] + x[1])]), [0.5, 0.25],
                      np.ones(3))
    assert found.wrong == wrong


@pytest.mark.parametrize("at, wrong", [(0.995, 1), (1.02, 0)])
def test_a_light_shared_complex_output_is_wrong_only_while_its_ratio_is_clear(at, wrong):
    """The complex step: σ = 4 eps (|y| max t1 + max|d1|) with t1 = r · 1e-30; 1 + c (x0 + x1)
    beside x0 and x1 themselves: σ = 4 eps · 1.75e-30 · (1 + 1), d1 = 3 c 1e-30."""
    c = 10 * 4 * EPS * 1.75 * 2 / (3 * at * SPACING_4)
    found, _ = _probe(lambda x: np.stack([x[0], x[1], 1.0 + c * (x[0] + x[1])]), [0.5, 0.25],
                      np.ones(3), complex_=True)
    assert found.wrong == wrong


@pytest.mark.parametrize("w, wrong", [(1.1e-6, 0), (1.6e-6, 1)])
def test_a_mixture_is_matched_to_1e_6_of_its_owners_ratio(w, wrong):
    """x0 + w x1: its ratio (1.75 + 1.25 w) / (1.25 + 1.75 w) is 0.96 w below x0's 1.4,
    matched within 1e-6 · 1.4 (the output's rounding is far below: 1e-6 is the floor)."""
    found, _ = _probe(lambda x: np.stack([x[0] + w * x[1], x[1]]), [0.5, 0.25], np.ones(2))
    assert found.wrong == wrong


@pytest.mark.parametrize("c, wrong", [(2.0 ** -4, 0), (2.0 ** 2, 1)])
def test_a_cancelled_output_must_move_over_1e8_times_its_rounding_in_the_other_probe(c, wrong):
    """1 + c (1.75 x0 - 1.25 x1): unmoved at r (exactly), moved by 1.5 c H at s; counted
    when that is over 1e8 σ (σ ≈ 16 eps ≈ 3.6e-15): c = 1/16 (9e-8) is not, 4 (6e-6) is."""
    found, _ = _probe(lambda x: np.stack([1.0 + c * (1.75 * x[0] - 1.25 * x[1]), x[0], x[1]]),
                      [0.5, 0.25], np.ones(3))
    assert found.wrong == wrong


def test_an_output_whose_owner_has_slope_0_is_not_cancelled_by_its_curvature():
    """x0² at x0 = 0 does not move at ±r H (it bends), and moves by (s H)² at s: that is
    curvature (below 2 · its bend), not two entries cancelling."""
    found, _ = _probe(lambda x: np.stack([x[0] ** 2, x[1]]), [0.0, 0.25], np.ones(2))
    assert found.wrong == 0


@pytest.mark.parametrize("k, wrong", [(0.3, 1), (0.6, 0)])
def test_two_entries_cancelling_are_seen_through_up_to_twice_the_curvature(k, wrong):
    """1.75 x0 - 1.25 x1 + (k/H) x0² at x0 = 0: cancelled at r, moved by 1.5 H + 3.06 k H at
    s against a bend of 3.125 k H; counted while the change is over 2 bends: k < 0.47."""
    found, _ = _probe(lambda x: np.stack([1.75 * x[0] - 1.25 * x[1] + (k / H) * x[0] ** 2,
                                          x[1] + 2.0]), [0.0, 0.25], np.ones(2))
    assert found.wrong == wrong


@pytest.mark.parametrize("c, wrong", [(1e-8, 0), (5e-8, 1)])
def test_a_complex_cancelled_output_must_move_over_1e7_times_its_rounding(c, wrong):
    """1 + c (1.75 x0 - 1.25 x1): its imaginary part is 0 at r (exactly) and 1.5 c 1e-30 at
    s, against σ = 4 eps (1 · 1.75e-30 + 1.75e-30): counted over 1e7 σ, c > 2.1e-8."""
    found, _ = _probe(lambda x: np.stack([1.0 + c * (1.75 * x[0] - 1.25 * x[1]), x[0], x[1]]),
                      [0.5, 0.25], np.ones(3), complex_=True)
    assert found.wrong == wrong
