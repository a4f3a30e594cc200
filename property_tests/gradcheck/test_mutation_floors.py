"""Where a comparison is decided (issue 13): the one-sided range of a kink and its slack, the
entries refined and what that costs, ties judged by their sums, the complex step tested and
confirmed, and the floors of the relative error (an entry that moves no output, the measured
noise, smaller steps, what the oracle cannot resolve), each held at its documented edge.

The inputs are crafted so that the expected numbers follow by hand: ``dout`` of ones,
functions linear on each side of a kink (their one-sided slopes are exact), multiplications
by powers of two (exact in float64), and counts of forward calls from the documented cost of
each step (2 calls per entry for central differences, 4 per refined entry).
"""

import numpy as np
import pytest

import gradcheck
from gradcheck.numerical import STEP

U = np.finfo(np.float64).eps / 2          # unit roundoff of float64
TOL = 1e-6                                # the default tolerance against central differences


def _kink(forward, at_zero):
    """One entry at 0 of a function linear on each side; its gradient there is ``at_zero``."""
    def f(x):
        return forward(x), x

    def backward(dout, x):
        return dout * at_zero

    return gradcheck.check_function(f, backward, np.array([0.0]), dout=np.ones(1),
                                    complex_step=False).checks[0]


def _left_minus_two(x):
    return np.maximum(x, -2.0 * x)        # one-sided slopes -2 (left) and 1 (right), exact


def _right_two(x):
    return np.maximum(2.0 * x, -x)        # one-sided slopes -1 (left) and 2 (right), exact


# ------------------------------------------------------------------- kinks: the one-sided range
def test_a_kink_accepts_its_range_widened_by_the_tolerance_of_the_largest_slope():
    # At a kink any value in [low, high] is valid, within a slack of tol · max(|low|, |high|,
    # |a|). Slopes -2 and 1: the slack is 2e-6, so 1 + 2e-6 (the sum the checker forms, to the
    # bit) is accepted and the next float above it is not.
    edge = 1.0 + TOL * 2.0
    check = _kink(_left_minus_two, edge)
    assert check.passed and check.nondifferentiable == 1
    beyond = _kink(_left_minus_two, np.nextafter(edge, 2.0))
    assert not beyond.passed and beyond.nondifferentiable == 0
    # Mirrored: slopes -1 and 2, the low edge -1 - 2e-6 is accepted.
    low_edge = -1.0 - TOL * 2.0
    check = _kink(_right_two, low_edge)
    assert check.passed and check.nondifferentiable == 1
    assert not _kink(_right_two, np.nextafter(low_edge, -2.0)).passed


def test_the_slack_of_a_kink_counts_the_analytic_value_itself():
    # ReLU at 0: slopes 0 and 1, a = 1 + 1.0000005e-6. Outside [0, 1] by 1.0000005e-6, less
    # than tol · |a| = 1.0000010000005e-6: at the kink, so counted non-differentiable.
    check = _kink(lambda x: np.maximum(x, 0.0), 1.0 + 1.0000005e-6)
    assert check.passed and check.nondifferentiable == 1


@pytest.mark.parametrize("a, nearest", [(5.0, 1.0), (-5.0, -2.0)])
def test_a_value_outside_the_range_of_a_kink_is_compared_with_its_nearest_slope(a, nearest):
    # Slopes -2 and 1: 5 is compared with 1 (relative error 4/5), -5 with -2 (3/5).
    check = _kink(_left_minus_two, a)
    assert not check.passed and check.mismatched == 1 and check.nondifferentiable == 0
    assert check.reference == nearest
    assert check.max_rel_error == pytest.approx(abs(a - nearest) / abs(a), rel=1e-15)


def _relu_pair(x):
    return np.maximum(x, 0.0), x


def test_the_kink_note_counts_the_wrong_entries_at_kinks_and_only_them():
    def backward(dout, x):
        dx = dout * (x > 0)
        dx[x == 0] = 3.0 * dout[x == 0]       # slopes 0 and 1 at 0: 3 is neither
        dx[1] *= 1.5                          # and a plain error away from any kink
        return dx

    x = np.array([0.0, 0.5, -0.7, 0.0, 1.2])
    check = gradcheck.check_function(_relu_pair, backward, x, complex_step=False).checks[0]
    assert not check.passed and check.mismatched == 3
    notes = [n for n in check.diagnosis if "sit at kinks" in n]
    assert len(notes) == 1 and notes[0].startswith("2 of the wrong entries sit at kinks ")
    # A plain error, at no kink, gets no such note.
    plain = gradcheck.check_function(_relu_pair, lambda d, x: 1.5 * d * (x > 0),
                                     np.array([0.5, -0.7, 1.2]), complex_step=False).checks[0]
    assert not plain.passed
    assert not any("kink" in n for n in plain.diagnosis)


def test_a_torch_comparison_has_no_kinks_to_note():
    import torch

    def backward(dout, x):
        return 1.5 * dout * np.cos(x)

    check = gradcheck.check_function(lambda x: (np.sin(x), x), backward,
                                     np.array([0.3, -0.8, 1.1]), torch_fn=torch.sin).checks
    (by_torch,) = [c for c in check if c.oracle == "torch"]
    assert not by_torch.passed
    assert not any("kink" in n for n in by_torch.diagnosis)


# ---------------------------------------------------------- which entries are refined, at what cost
N = 40         # entries, more than the 32 suspects refined before giving up on a tensor


def _refined(bug, sine_at_0=False):
    """A check of y = (2x, 2x) whose gradient is 1e-4 too large where ``bug``; its forward
    calls. Entry 0 is 1e4 (steps 1e4 · STEP; smaller steps are never tried, all ≥ 1)."""
    x = np.random.default_rng(0).uniform(0.2, 0.9, size=N)
    x[0] = 1e4
    # sin(K x) with K x = 2π · 2626 at x = 1e4, K ≈ 1.65: K h ≈ 0.1, so the central difference
    # is off by (K h)² / 6 ≈ 1.7e-3, more than the bugs' 1e-4, and Richardson's estimate only by
    # (K h)⁴ / 480 ≈ 2e-7 < 1e-6: the first entry refined, and it agrees.
    k = 2 * np.pi * 2626 / 1e4

    def forward(x):
        y = 2.0 * x
        if sine_at_0:
            y[0] = np.sin(k * x[0])
        return np.stack([y, y], axis=1), x        # 2 outputs an entry: no diagonal diagnosis

    def backward(dout, x):
        g = (dout[:, 0] + dout[:, 1]) * 2.0 * np.where(bug, 1 + 1e-4, 1.0)
        if sine_at_0:
            g[0] = (dout[0, 0] + dout[0, 1]) * k * np.cos(k * x[0])
        return g

    result = gradcheck.check_function(forward, backward, x, dout=np.ones((N, 2)),
                                      complex_step=False, coloring=False, mode="full")
    return result


def test_a_wrong_gradient_in_every_entry_costs_32_refinements_not_one_each():
    right, wrong = _refined(np.zeros(N, bool)), _refined(np.ones(N, bool))
    assert right.passed and not wrong.passed and wrong.checks[0].mismatched == N
    # Everything else is the same in both checks: 32 entries refined, 4 calls each.
    assert wrong.forward_calls - right.forward_calls == 4 * 32


def test_once_a_refinement_agrees_every_suspect_is_refined():
    bug = np.ones(N, bool)
    bug[0] = False
    right = _refined(np.zeros(N, bool), sine_at_0=True)
    wrong = _refined(bug, sine_at_0=True)
    assert right.passed and not wrong.passed
    (check,) = wrong.checks
    assert check.mismatched == N - 1 and check.worst_index != (0,)
    # Entry 0, the worst before refinement, is refined in both; the other 39 only in the
    # wrong check, all of them since that refinement agreed.
    assert wrong.forward_calls - right.forward_calls == 4 * (N - 1)


def test_an_error_equal_to_the_tolerance_passes_and_is_not_refined():
    # y = 128 x0 (exact: the central difference is 128 to the bit); x1 moves nothing. The floor
    # is RHO · 128 = 1.28 for both, so a gradient a1 for x1 has the relative error a1 / 1.28:
    # equal to 1e-6 it passes without a closer look (the calls of an exact gradient), one ulp
    # more fails.
    floor = 0.01 * 128.0
    edge = 1e-6 * floor
    while edge / floor > 1e-6:
        edge = np.nextafter(edge, 0.0)
    while edge / floor < 1e-6:
        edge = np.nextafter(edge, 1.0)

    def run(a1):
        return gradcheck.check_function(lambda v: (128.0 * v[:1], v),
                                        lambda d, v: np.array([128.0 * d[0], a1 * d[0]]),
                                        np.array([0.0, 0.3]), dout=np.ones(1),
                                        complex_step=False)

    exact, at_edge, beyond = run(0.0), run(edge), run(np.nextafter(edge, 1.0))
    assert at_edge.checks[0].max_rel_error == 1e-6 and at_edge.checks[0].floor == floor
    assert exact.passed and at_edge.passed and not beyond.passed
    assert at_edge.forward_calls == exact.forward_calls


# ------------------------------------------------------------------------------------------- ties
def _counts(forward, backward, x, n_out):
    check = gradcheck.check_function(lambda v: (forward(v), v), backward, np.array(x),
                                     dout=np.ones(n_out), complex_step=False).checks[0]
    return check


def test_equal_kinks_whose_joint_move_is_still_a_kink_keep_their_one_sided_verdicts():
    # relu(x0 + x1) at 0: moving both together is relu(2t), a kink: no tie. Each entry keeps
    # its one-sided verdict (slopes 0 and 1, gradient 1: valid).
    check = _counts(lambda v: np.array([max(v[0] + v[1], 0.0), v[2] ** 2]),
                    lambda d, v: np.array([d[0], d[0], 2 * v[2] * d[1]]), [0.0, 0.0, 1.5], 2)
    assert check.passed and check.tied == 0 and check.nondifferentiable == 2


def test_kinks_of_unequal_values_are_no_tie():
    # max(x0, x1 - 1) at (0, 1): both at a kink, moving one output, but of unequal values.
    check = _counts(lambda v: np.array([max(v[0], v[1] - 1.0)]),
                    lambda d, v: np.array([d[0], 0.0]), [0.0, 1.0], 1)
    assert check.passed and check.tied == 0 and check.nondifferentiable == 2


def _maxout(v):
    return v.max(axis=1)


def _maxout_every(dout, v):
    return (v == v.max(axis=1, keepdims=True)) * dout[:, None]


def _maxout_first(dout, v):
    mask = np.zeros(v.shape)
    mask[np.arange(len(v)), v.argmax(axis=1)] = 1.0
    return mask * dout[:, None]


# Row 0 is a tie of two 1s; the value 1 also sits in rows 1 and 2, at no tie.
MAXOUT_X = [[1.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.0, 0.5]]


def test_a_wrong_tie_is_compared_with_the_value_that_would_make_its_sum_right():
    check = _counts(_maxout, _maxout_every, MAXOUT_X, 4)
    assert not check.passed and check.mismatched == 1 and check.worst_index == (0, 0)
    # Gradients 1 and 1 against a derivative of 1 (Richardson's, exact to ~1e-11 for a
    # linear move): the first entry's reference is 1 + 1 - 2 = 0, a relative error of 1.
    assert check.reference == pytest.approx(0.0, abs=1e-9)
    assert check.max_rel_error == pytest.approx(1.0, abs=1e-9)
    assert "a tie of 2 equal entries (the first at (0, 0)) that move together: their " \
           "gradients sum to 2, moving them together changes J at 1 — 2× the derivative" \
           in check.diagnosis[1]
    right = _counts(_maxout, _maxout_first, MAXOUT_X, 4)
    assert right.passed and right.tied == 2


def test_a_tie_that_moves_nothing_together_is_reported_without_a_ratio():
    # max(x0, x1) - x0 at a tie: moving both leaves y = 0 exactly (the derivative is 0); the
    # gradients (0, 1) sum to 1. No ratio to 0 is formed.
    check = _counts(lambda v: np.array([max(v[0], v[1]) - v[0]]),
                    lambda d, v: np.array([0.0, d[0]]), [0.5, 0.5], 1)
    assert not check.passed
    assert check.diagnosis[1] == ("a tie of 2 equal entries (the first at (0,)) that move "
                                  "together: their gradients sum to 1, moving them together "
                                  "changes J at 0")


def test_ties_of_a_float32_layer_are_judged_at_its_own_step():
    x = np.array(MAXOUT_X, dtype=np.float32)
    with pytest.warns(gradcheck.PrecisionWarning):
        result = gradcheck.check_function(lambda v: (_maxout(v), v), _maxout_first, x,
                                          complex_step=False)
    assert result.passed and result.checks[0].tied == 2


def test_ties_beside_a_large_constant_are_still_ties():
    # y = max(row) + 1e3: the rounding of 1e3 (~1e-13) jitters the one-sided slopes of a
    # tie's move by ~2e-8 relative; only the outputs' rounding, counted as noise, keeps that
    # jitter from reading as a kink. 60 rows, 20 ties.
    x = np.random.default_rng(5).integers(0, 3, size=(60, 2)).astype(np.float64)
    ties = int(np.sum(x[:, 0] == x[:, 1]))
    check = _counts(lambda v: v.max(axis=1) + 1e3, _maxout_first, x, 60)
    assert check.passed and check.tied == 2 * ties and check.nondifferentiable == 0


# ------------------------------------------------------------------ the complex step, tested
def test_a_function_that_is_not_holomorphic_is_named_and_checked_by_central_differences():
    # 2|x| at |x| ~ 1e6: the test's direction is scaled to the entries (steps ~6), where
    # central differences read 2 sign(x) and the complex step 0.
    x = 1e6 * np.random.default_rng(1).uniform(1, 2, size=5) * np.array([1, -1, 1, -1, 1])
    check = gradcheck.check_function(lambda v: (2 * np.abs(v), v),
                                     lambda d, v: 2 * np.sign(v) * d, x).checks[0]
    assert check.passed and check.oracle == "finite_differences"
    assert ("central differences: the function's complex extension did not match them (abs, a "
            "cast to float, conj, or a kink along the direction)") in check.plan


def test_a_relu_input_beyond_a_step_of_its_kink_is_checked_by_complex_step():
    # 1.5 steps from 0: a probe of one step (the entry is below 1) stays on the smooth side.
    check = gradcheck.check_function(_relu_pair, lambda d, x: d * (x > 0),
                                     np.array([1.5 * STEP])).checks[0]
    assert check.passed and check.oracle == "complex_step"
    assert ("complex step: the function's complex extension matched central differences along "
            "a random direction, output by output") in check.plan


# ------------------------------------------------------------ the complex step's failure, confirmed
def _forced(forward, backward, x, **options):
    return gradcheck.check_function(lambda v: (forward(v), v), backward, np.array(x),
                                    complex_step=True, **options).checks[0]


def test_a_complex_step_that_reads_a_derivative_where_nothing_moves_is_overturned():
    # conj(x) - x is 0 on real inputs (gradient 0), but -2i·h on complex ones: central
    # differences move no output and agree with 0 exactly, at no resolution at all.
    check = _forced(lambda v: np.conj(v) - v, lambda d, v: 0.0 * d, [0.7, -1.3, 0.4])
    assert check.passed and check.oracle == "finite_differences"
    assert "the complex step's failure at (0,) was not theirs" in check.plan


def test_a_failure_overturned_is_checked_anew_by_groups():
    # 2000|x| with a gradient 1e-7 too large: central differences agree within 1e-6 of 2000
    # (= 2e-3, far more than 2e-4); elementwise, one group holds every entry.
    check = _forced(lambda v: 2000 * np.abs(v),
                    lambda d, v: 2000 * (1 + 1e-7) * np.sign(v) * d, [0.7, -1.3, 0.4])
    assert check.passed and check.oracle == "finite_differences"
    assert check.plan.startswith("every entry by central differences, in 1 group of entries")


def test_central_differences_at_their_own_resolution_overturn_the_complex_step():
    # 2|x| + 1e6: central differences' estimate jitters by the rounding of 1e6 over the step
    # (~1e-5 of 2), more than 1e-6, but within their resolution: they still show the
    # complex step's 0 wrong.
    check = _forced(lambda v: 2 * np.abs(v) + 1e6, lambda d, v: 2 * np.sign(v) * d,
                    [0.7, -1.3, 0.4])
    assert check.passed and check.oracle == "finite_differences"


def test_a_smooth_point_is_judged_by_its_estimate_not_by_its_one_sided_slopes():
    # |x|³ (complex step: 2 x |x|, not 3 x |x|) with a gradient 3e-6 too large: Richardson's
    # estimate (error ~h⁴) disagrees with it, so the complex step's failure stands, although
    # the one-sided slopes 3 ± 6 · h / 2 ≈ 3 ± 1.8e-5 would bracket it.
    check = _forced(lambda v: np.abs(v) ** 3, lambda d, v: 3 * (1 + 3e-6) * v * np.abs(v) * d,
                    [1.0, -0.8])
    assert not check.passed and check.oracle == "complex_step"
    assert "was not theirs" not in check.plan


def test_the_closer_look_at_a_complex_step_failure_is_at_the_users_step():
    # 2|x| at 5e-4 with step=1e-3: the complex step reads 0 (abs is not holomorphic); the
    # closer look at the user's step straddles the kink, where the gradient 2 is one of the
    # one-sided slopes: counted at a kink, and the correct gradient passes (at the default
    # 6e-6 the point is smooth and central differences overturn the complex step instead).
    check = _forced(lambda v: 2 * np.abs(v), lambda d, v: 2 * np.sign(v.real) * d, [5e-4],
                    step=1e-3)
    assert check.passed and check.nondifferentiable == 1
    default = _forced(lambda v: 2 * np.abs(v), lambda d, v: 2 * np.sign(v.real) * d, [5e-4])
    assert default.passed and default.nondifferentiable == 0
    assert "was not theirs" in default.plan


def test_a_fast_check_by_complex_step_keeps_its_verdict():
    # 10,001 entries moving both outputs: no grouping, over mode 'auto''s 10,000 calls, so
    # along one direction by complex step; a gradient 1 % off fails there, unconfirmed.
    x = np.random.default_rng(2).normal(size=10_001)
    result = gradcheck.check_function(
        lambda v: (np.array([np.sum(v * v), np.sum(np.sin(v))]), v),
        lambda d, v: 2.02 * v * d[0] + np.cos(v) * d[1], x)
    (check,) = result.checks
    assert not check.passed and check.method == "fast" and check.oracle == "complex_step"


# ------------------------------------------------------------------------------ the error floors
def test_an_entry_whose_derivative_rounds_away_is_resolved_to_its_outputs_rounding():
    # tanh at 20-21 is 1.0 to the bit: every probe leaves the outputs equal, and the true
    # derivative 4 e^(-2x) ~ 1e-17 cannot be seen. Each entry is resolved to the rounding of
    # the output it would move, c u max(|G ⊙ y| + |G|) / h (c = 64, y = 1, G = 1, h = STEP·x).
    x = 20.0 + np.random.default_rng(3).uniform(0, 1, size=100)

    def check(error):
        def backward(d, v):
            g = d * 4 * np.exp(-2 * v)
            g[0] += error
            return g

        return gradcheck.check_function(lambda v: (np.tanh(v), v), backward, x,
                                        dout=np.ones(100), complex_step=False,
                                        coloring=False).checks[0]

    right = check(0.0)
    # No entry is wrong: the checker says it cannot judge them.
    assert right.mismatched == 0 and "resolves this gradient only to" in right.unjudged
    resolution = 64 * U * 2.0 / (STEP * x[0])          # ~1.2e-10 at entry 0
    wrong = check(8.5 * resolution)                    # 8.5 times its resolution: seen
    assert wrong.mismatched == 1 and wrong.worst_index == (0,)
    assert wrong.floor == pytest.approx(resolution / TOL, rel=1e-9)


def test_a_function_of_no_outputs_has_a_zero_gradient():
    check = gradcheck.check_function(lambda v: (v[:0], v), lambda d, v: np.zeros_like(v),
                                     np.array([1.0, 2.0]), complex_step=False).checks[0]
    assert check.passed and check.max_rel_error == 0.0


@pytest.mark.parametrize("factor, passes", [(1.0, True), (1.5, False), (1 + 1e-4, False)])
def test_tiny_outputs_are_judged_at_their_measured_noise_by_central_differences(factor, passes):
    # 1e-8 tanh(x): the assumed noise (unit-size terms, ~1e-3 as a floor) would pass anything;
    # the measured one is ~1e-18, below RHO · M ~ 1e-10, which then decides: every entry
    # wrong by 1e-4 is seen, and judged (not "unresolved").
    x = np.random.default_rng(41).normal(size=(3, 4))
    check = gradcheck.check_function(
        lambda v: (1e-8 * np.tanh(v), v),
        lambda d, v: factor * d * 1e-8 * (1 - np.tanh(v) ** 2), x,
        complex_step=False).checks[0]
    assert check.passed == passes and not check.unjudged
    assert check.mismatched == (0 if passes else x.size)


@pytest.mark.parametrize("k, passes", [(0.9, True), (1.1, False)])
def test_the_measured_floor_is_four_units_of_the_projected_outputs(k, passes):
    # y = (2^-27 x, 1): exact multiplications, no noise to measure (σ ~ 1e-24); the measured
    # floor is 4 u Σ|G ⊙ y| / h (over 1e-6), far above RHO · M ~ 7e-11 and below the assumed
    # ~1e-3. An error of 0.9 times 4 u Σ|G ⊙ y| / h passes, 1.1 times fails.
    x = np.random.default_rng(4).uniform(0.5, 1.0, size=4)
    s = 2.0 ** -27
    threshold = 4 * U * (np.sum(s * x) + 1.0) / STEP
    result = gradcheck.check_function(lambda v: (np.concatenate([s * v, [1.0]]), v),
                                      lambda d, v: d[:4] * (s + k * threshold), x,
                                      dout=np.ones(5), complex_step=False, coloring=False)
    (check,) = result.checks
    assert check.passed == passes and not check.unjudged
    assert check.floor == pytest.approx(threshold / TOL, rel=1e-6)


# ------------------------------------------------------------------------ what cannot be judged
def test_an_excluded_entry_does_not_make_the_rest_look_judged():
    # y = x + 1e12: central differences resolve the gradient only to ~5e2. An entry left out
    # with fd_exclude, whatever its gradient (1e6), sets no scale for the others.
    x = np.random.default_rng(0).normal(size=(3, 4))
    mask = np.zeros((3, 4), dtype=bool)
    mask[0, 0] = True

    def forward(x):
        return x + 1e12, x

    def backward(dout, x):
        g = 1.5 * dout
        g[0, 0] = 1e6
        return g

    check = gradcheck.check_function(forward, backward, x, complex_step=False,
                                     fd_exclude={"x": mask}).checks[0]
    assert not check.passed and check.excluded == 1
    assert check.unjudged.startswith("numeric resolves this gradient only to ±")


def test_a_resolution_below_a_tenth_of_a_large_gradient_is_judged():
    # y = 1e3 x + 1e9: the rounding of 1e9 over the step resolves ~0.2 of a gradient of ~1e3:
    # judged, even though both are far from 1.
    x = np.random.default_rng(0).normal(size=(3, 4))
    check = gradcheck.check_function(lambda v: (1e3 * v + 1e9, v), lambda d, v: 1e3 * d, x,
                                     complex_step=False).checks[0]
    assert check.passed and check.unjudged == ""


def test_the_first_non_finite_entry_is_named():
    def backward(dout, x):
        g = dout * np.cos(x)
        g[0, 1] = np.nan
        g[2, 3] = np.nan
        return g

    x = np.random.default_rng(0).normal(size=(3, 4))
    check = gradcheck.check_function(lambda v: (np.sin(v), v), backward, x).checks[0]
    assert check.diagnosis[0] == ("the gradient has 2 non-finite entries (NaN or inf), the "
                                  "first at (0, 1): a division by zero, or a log or sqrt of 0, "
                                  "in the backward?")


# ------------------------------------------------------------------------------- smaller steps
def _l2_rows(x):
    norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True))
    return x / norm, (x, norm)


def _l2_rows_backward(dout, cache):
    x, norm = cache
    y = x / norm
    return (dout - y * np.sum(dout * y, axis=1, keepdims=True)) / norm


def _note(step, largest, why):
    return (f"'x' checked with steps {step:.2g} (relative to its largest magnitude, "
            f"{largest:.2g}): {why}")


FAILED = "the usual steps, never below step · max(1, |v|), failed it"


def test_a_row_of_tiny_entries_beside_large_ones_gets_steps_relative_to_the_largest():
    # Row 0 ~ 1e-6: the usual step 6e-6 fails the correct gradient. Steps STEP · 1.5 are no
    # smaller (skipped); STEP · 1.5e-2 = 9e-8 are ~10 % of row 0 and fail too; STEP · 1.5e-4
    # = 9e-10 pass.
    x = np.random.default_rng(7).uniform(0.5, 1.0, size=(2, 3))
    x[0] *= 1e-6
    x[1, 0] = 1.5
    result = gradcheck.check_function(_l2_rows, _l2_rows_backward, x, complex_step=False)
    assert result.passed, result.message()
    note = _note(STEP * 1.5 * 1e-4, 1.5, FAILED)
    assert result.notes == (note,) and result.checks[0].diagnosis[0] == note


def test_tiny_entries_get_steps_relative_to_the_largest_of_them():
    x = 1e-8 * np.random.default_rng(43).normal(size=(3, 4))
    largest = float(np.max(np.abs(x)))
    result = gradcheck.check_function(_l2_rows, _l2_rows_backward, x, complex_step=False)
    assert result.passed
    assert result.notes == (_note(STEP * largest, largest, FAILED),)


@pytest.mark.parametrize("largest", [1.0, 1.5, 3.0])
def test_a_failure_is_retried_with_the_two_smaller_steps(largest):
    # y = (3x, 3x) with 6x as its gradient fails at every step. Largest magnitude ≥ 1: steps
    # STEP · largest are no smaller than the usual ones and are skipped; 1e-2 and 1e-4 of it
    # are tried, each 2 calls an entry and the 4 refinements of each of the n suspects.
    n = 4
    x = np.array([0.3, -0.6, 0.8, largest])

    def check(factor):
        return gradcheck.check_function(lambda v: (np.stack([3 * v, 3 * v], axis=1), v),
                                        lambda d, v: factor * (d[:, 0] + d[:, 1]), x,
                                        dout=np.ones((n, 2)), complex_step=False,
                                        coloring=False, mode="full")

    right, wrong = check(3.0), check(6.0)
    assert right.passed and not wrong.passed and not wrong.notes
    assert wrong.forward_calls - right.forward_calls == 4 * n + 2 * (2 * n + 4 * n)


def test_a_domain_edge_note_names_the_steps_taken():
    # log(x - 1 + 1e-7) at x = 1: the usual step 6e-6 leaves the domain; STEP (relative to the
    # largest magnitude, 1) too, and 1e-2 of it (6e-8) stays inside.
    def forward(x):
        if np.any(x - 1.0 + 1e-7 <= 0):
            raise ValueError("log of a non-positive number")
        return np.log(x - 1.0 + 1e-7), x

    x = np.array([1.0, 0.5 + 0.5])
    result = gradcheck.check_function(forward, lambda d, v: d / (v - 1.0 + 1e-7), x,
                                      complex_step=False, coloring=False)
    assert result.notes == (_note(STEP * 1e-2, 1.0, "a probe left the function's domain"),)


def test_a_pass_at_smaller_steps_must_be_sharp_for_small_gradients_too():
    # As for 35 + tanh(x) (test_floors), scaled by 1e-2: gradients ~1e-2 wrong by 1e-5. Smaller
    # steps bring a noise floor far above RHO · 1e-2; their pass is not taken.
    x = np.random.default_rng(44).normal(size=(3, 4))
    result = gradcheck.check_function(
        lambda v: (1e-2 * (35.0 + np.tanh(v)), v),
        lambda d, v: 1e-2 * d * (1 - np.tanh(v) ** 2) * (1 + 1e-5), x, complex_step=False)
    assert [c.tensor for c in result.failures()] == ["v"]
    assert not result.notes


# ---------------------------------------------------------------------- kinks along a direction
@pytest.mark.parametrize("zeros, said", [(1, "1 output that a kink bends"),
                                         (2, "2 outputs that a kink bends")])
def test_a_large_fast_check_says_how_many_outputs_it_left_out(zeros, said):
    rng = np.random.default_rng(8)
    x = rng.uniform(0.5, 1.5, 100_001) * rng.choice([-1.0, 1.0], 100_001)
    x[:zeros] = 0.0
    check = gradcheck.check_function(_relu_pair, lambda d, v: d * (v > 0), x, mode="fast",
                                     complex_step=False).checks[0]
    assert check.passed and check.method == "fast"
    assert f"({said} within the step left out of G, and the backward called again" in check.plan


def test_a_large_fast_check_reshapes_a_gradient_of_the_right_size():
    rng = np.random.default_rng(9)
    x = rng.uniform(0.5, 1.5, (2, 50_001)) * rng.choice([-1.0, 1.0], (2, 50_001))
    x[0, 0] = 0.0

    def backward(d, v):
        return (d * (v > 0)).reshape(-1)        # the right values, flattened

    check = gradcheck.check_function(_relu_pair, backward, x, mode="fast",
                                     complex_step=False).checks[0]
    assert not check.passed and check.method == "fast"
    assert check.shape_error.startswith("the gradient has shape (100002,), the tensor "
                                        "(2, 50001)")
    assert "after a reshape the values match" in check.shape_error
