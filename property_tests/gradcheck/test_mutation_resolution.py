"""What the numerical oracle resolves (issue 13): the rounding each entry's estimate carries,
the noise measured where that decides, the retry with smaller steps, and the verdict "could
not be judged", each held where a user meets it.

The expected numbers follow from the documented formulas: an entry resolved to
``c u (Σ|G ⊙ y| + Σ|G|) / h`` over the outputs it moves (``c = 64``, ``u`` the unit roundoff,
``h = STEP · max(1, |x|)``), an entry that moves no output to one output's rounding
``c u max(|G ⊙ y| + |G|) / h``, and a check's forward calls from its documented cost (6 for
the self-checks, 2 per entry by central differences, 16 for a noise measurement). Where an
edge is exact, the inputs are exact too: ``y = 128 x`` with ``dout`` a power of two, whose
central difference is the derivative to the bit.
"""

import warnings

import numpy as np
import pytest

import gradcheck
from gradcheck.numerical import STEP
from property_tests.gradcheck.test_unjudged import _logistic_loss, _logistic_loss_backward

U = np.finfo(np.float64).eps / 2          # unit roundoff of float64
TOL = 1e-6                                # the default tolerance against central differences
C = 64.0                                  # float64's noise factor (units of rounding)
RHO = 1e-2                                # the relative-error floor's share of the largest


def _tanh_pair(v):
    return np.tanh(v), v


# ------------------------------------------------------------------ each entry's own rounding
def test_an_entry_whose_outputs_carry_a_tiny_upstream_gradient_keeps_its_own_resolution():
    """A wrong gradient of an entry that moves only outputs of tiny upstream gradient is
    caught, even when other entries saturate (move nothing) and bring the resolution of
    the outputs they would move."""
    # Entry 0 (tanh at 0.5) moves its output, whose dout is 1e-7: it is resolved to
    # 64 u · 1e-7 · 1.46 / STEP ~ 2e-16, far below a 1 % error of its 7.9e-8 gradient. The 19
    # saturated entries (tanh at 20-21 is 1.0 to the bit) are resolved to their outputs'
    # rounding, 64 u · 2 / (STEP · x) ~ 1e-10; that resolution is theirs: at entry 0's step
    # it would be 2e-9, and its error, 8e-10, would pass unseen.
    x = 20.0 + np.random.default_rng(3).uniform(0, 1, size=20)
    x[0] = 0.5
    dout = np.ones(20)
    dout[0] = 1e-7

    def check(factor):
        return gradcheck.check_function(_tanh_pair,
                                        lambda d, v: factor * d * (1 - np.tanh(v) ** 2), x,
                                        dout=dout, complex_step=False, coloring=False).checks[0]

    right, wrong = check(1.0), check(1.01)
    assert right.passed
    assert not wrong.passed and wrong.mismatched == 1 and wrong.worst_index == (0,)
    assert wrong.unjudged == ""
    # Its floor is the gradient's own, RHO · M (M = 1.01 · 7.9e-8): within 2 % of it.
    assert wrong.floor == pytest.approx(RHO * 1.01 * 1e-7 * (1 - np.tanh(0.5) ** 2), rel=2e-2)


@pytest.mark.parametrize("scale, k, low", [(1e-3, 1.0, 20.0), (1.0, 20.0, 1.1)],
                         ids=["dout 1e-3", "entries between 1 and 2"])
def test_an_entry_that_moves_no_output_is_resolved_to_its_outputs_rounding_at_its_step(
        scale, k, low):
    """An entry whose probes leave every output equal bit for bit is resolved to the rounding
    of the output it would move, c u max(|G ⊙ y| + |G|) / h: proportional to the upstream
    gradient (however small), and over its own step STEP · max(1, |x|)."""
    # tanh(k x) with k x ≥ 20 is 1.0 to the bit: y = 1, G = scale, so max(|G ⊙ y| + |G|) is
    # 2 · scale. 100 outputs: the measured noise, 4 u Σ|G ⊙ y| / STEP, is above that
    # resolution and lowers nothing.
    x = low + np.random.default_rng(3).uniform(0, 0.1, size=100)
    resolution = C * U * 2 * scale / (STEP * max(1.0, x[0]))

    def backward(d, v):
        g = d * k * (1 - np.tanh(k * v) ** 2)
        g[0] += 8.5 * resolution * d[0] / scale      # 8.5 times its resolution: seen
        return g

    wrong = gradcheck.check_function(lambda v: (np.tanh(k * v), v), backward, x,
                                     dout=np.full(100, scale), complex_step=False,
                                     coloring=False).checks[0]
    assert wrong.mismatched == 1 and wrong.worst_index == (0,)
    # The floor is that resolution over the tolerance; 1e-9 covers the rounding of the sums.
    assert wrong.floor == pytest.approx(resolution / TOL, rel=1e-9)


# ---------------------------------------------------------- rounding of unit-size terms inside
def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_a_saturated_logistic_loss_passes_by_complex_step():
    """A correct logistic loss at |z| ~ 20 passes by complex step: its gradient p - y ~ 2e-9
    is computed from p ≈ 1 and rounds at ~u, which the floor allows for (Σ|G|, the unit-size
    terms that cancel, not only Σ|G ⊙ y|, a loss of ~1e-9)."""
    z = np.array([20.0, -19.0, 21.5, -20.5])
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    result = gradcheck.check_function(lambda z: _logistic_loss(z, labels),
                                      _logistic_loss_backward, z, complex_step=True)
    (check,) = result.checks
    assert result.passed and check.oracle == "complex_step" and check.unjudged == ""
    # A 1 % error is still seen: the floor allows ~64 u Σ|G| = 7e-15 of absolute error only.
    wrong = gradcheck.check_function(lambda z: _logistic_loss(z, labels),
                                     lambda d, c: 1.01 * _logistic_loss_backward(d, c), z,
                                     complex_step=True)
    assert not wrong.passed and wrong.checks[0].mismatched == 4


def test_a_saturated_sigmoid_layer_of_many_outputs_passes_by_complex_step():
    """A correct sigmoid layer at x ~ 20 (50 outputs) passes by complex step: s (1 - s) rounds
    at ~u of its unit-size terms, and the floor, measured or not, allows c u Σ|G| for it."""
    x = 20.0 + np.random.default_rng(5).uniform(0, 1, size=50)
    result = gradcheck.check_function(lambda v: (_sigmoid(v), v),
                                      lambda d, v: d * _sigmoid(v) * (1 - _sigmoid(v)), x,
                                      complex_step=True)
    (check,) = result.checks
    assert result.passed and check.oracle == "complex_step" and check.unjudged == ""
    # A 1 % error (~2e-11 absolute) is far above c u Σ|G| ~ 3e-13: seen.
    wrong = gradcheck.check_function(lambda v: (_sigmoid(v), v),
                                     lambda d, v: 1.01 * d * _sigmoid(v) * (1 - _sigmoid(v)),
                                     x, complex_step=True)
    assert not wrong.passed


# -------------------------------------------------------------------------- the measured noise
def test_a_float32_layer_is_judged_at_its_assumed_noise_without_measuring_it():
    """A float32 layer's floor is its assumed rounding noise: no noise is measured, so the
    check costs 6 self-check calls and 2 per entry (no grouping in float32), no more."""
    x = np.random.default_rng(6).uniform(-1, 1, size=(4, 5)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gradcheck.PrecisionWarning)
        result = gradcheck.check_function(lambda v: (np.float32(100.0) + np.tanh(v), v),
                                          lambda d, v: d * (1 - np.tanh(v) ** 2), x)
    assert result.passed and result.dtype == "float32"
    assert result.forward_calls == 6 + 2 * x.size


def _refuses_negative(offset):
    """``offset + tanh(x)``, refusing (as a user's input check does) any negative entry."""
    def forward(v):
        if np.any(v < 0):
            raise ValueError("negative input")
        return offset + np.tanh(v), v

    return forward


def _tanh_backward(d, v):
    return d * (1 - np.tanh(v) ** 2)


def test_the_noise_is_measured_at_the_smaller_steps_a_domain_edge_forced():
    """Past a domain edge, the check at smaller steps measures its noise at those steps too:
    it stays inside the domain and gives a verdict, not the user's exception."""
    # 1000 + tanh(x): the outputs' rounding decides, so the noise is measured. Entry (0, 0)
    # is 1e-7 from the edge: the usual step 6e-6 leaves the domain, steps 8.7e-8 (1e-2 of the
    # largest magnitude, 1.4) stay inside, and so do 4 of them along the measurement's
    # direction (max |d| = 1). The usual steps there would leave it again.
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(3, 4))
    x[0, 0] = 1e-7
    largest = float(np.max(x))
    result = gradcheck.check_function(_refuses_negative(1000.0), _tanh_backward, x,
                                      complex_step=False)
    assert result.notes == (f"'v' checked with steps {STEP * 1e-2 * largest:.2g} (relative to "
                            f"its largest magnitude, {largest:.2g}): a probe left the "
                            "function's domain",)
    # Correct, and passed (the largest relative error, 6.6e-7, is that of the noise).
    assert result.passed


def test_the_noise_measurement_moves_each_entry_by_its_share_of_a_random_direction():
    """The noise is measured along a random direction at 4 steps of STEP · max(1, max|x|)
    either way: an entry 1.5e-5 from a domain edge, which that direction moves by less, is
    checked with the usual steps, no retry, 46 calls (6 + 2 per entry + 16 to measure)."""
    # 1e6 + tanh(x): the outputs' rounding decides, so the noise is measured. Entries below
    # 1: steps STEP = 6.06e-6 (the probes of entry (0, 0) stay inside). With seed 1 the
    # direction's entry (0, 0) is 0.43 of its largest, so the measurement moves it by at
    # most 4 · 6.06e-6 · 0.43 = 1.04e-5 < 1.5e-5: inside. Twice those steps, or the whole
    # direction's size, would take it past the edge.
    x = np.random.default_rng(0).uniform(0.2, 0.9, size=(3, 4))
    x[0, 0] = 1.5e-5
    result = gradcheck.check_function(_refuses_negative(1e6), _tanh_backward, x,
                                      complex_step=False, coloring=False, seed=1)
    assert result.passed and result.notes == ()
    assert result.forward_calls == 6 + 2 * x.size + 16


# -------------------------------------------------------------------------- edges, to the bit
# y = 128 x0 (one output), with dout = 2^-20: the central difference of x0 is 2^-13 to the
# bit, and x1 moves nothing. The floor of x1 is its outputs' rounding over its step, F =
# 64 u · 2^-20 (|y| + 1) / (STEP · max(1, |x1|)) / TOL, far above RHO · 2^-13 for a large y.
G = 2.0 ** -20


def _exact(x0, x1, a1, seed=0):
    """The check of y = 128 x0 with gradient ``a1`` for x1 (whose true gradient is 0)."""
    return gradcheck.check_function(lambda v: (128.0 * v[:1], v),
                                    lambda d, v: np.array([128.0 * d[0], a1 / G * d[0]]),
                                    np.array([x0, x1]), dout=np.full(1, G),
                                    complex_step=False, seed=seed)


def _at_relative_error(floor, target=TOL):
    """The smallest ``a`` with ``a / floor == target`` exactly (the relative error of ``a``
    against a reference of 0 under that floor)."""
    a = target * floor
    while a / floor > target:
        a = np.nextafter(a, 0.0)
    while a / floor < target:
        a = np.nextafter(a, 1.0)
    assert a / floor == target
    return a


def test_an_error_at_the_tolerance_of_the_gradients_own_floor_costs_no_noise_measurement():
    """An entry whose error is at the tolerance exactly (relative to RHO · M) passes, as it
    would with the noise floor, and its noise is not measured: the check costs the calls of
    an exact gradient, 6 + 2 per entry, and says it was judged."""
    bare = RHO * 2.0 ** -13
    edge = _at_relative_error(bare)
    exact, at_edge = _exact(2.0 ** 27, 0.5, 0.0), _exact(2.0 ** 27, 0.5, edge)
    assert exact.passed and exact.forward_calls == 6 + 2 * 2
    assert at_edge.passed and at_edge.checks[0].unjudged == ""
    assert at_edge.forward_calls == exact.forward_calls
    # One ulp above, it passes only under the noise floor (F ~ 1.6e7 · RHO · M): the noise is
    # measured (16 calls), 4 u Σ|G ⊙ y| / STEP ~ 1.2e-6, and still allows its 1.2e-12.
    above = _exact(2.0 ** 27, 0.5, np.nextafter(edge, 1.0))
    assert above.passed and above.checks[0].unjudged == ""
    assert above.forward_calls == exact.forward_calls + 16


def test_an_error_at_the_tolerance_of_the_noise_floor_gets_the_noise_measured():
    """An entry whose error is at the tolerance of the assumed noise floor exactly is
    measured as one inside it is: the measured noise (y = 128 x is exact) is far smaller,
    and the error is caught."""
    # One ulp past the floor's tolerance the entry fails under it, and the floor reported is
    # that of x1, F (no measurement lowers it).
    estimate = C * U * G * (128.0 * 2.0 ** 27 + 1) / STEP / TOL
    beyond = _exact(2.0 ** 27, 0.5, 1.5 * TOL * estimate).checks[0]
    assert beyond.worst_index == (1,) and beyond.floor == pytest.approx(estimate, rel=1e-9)
    edge = _at_relative_error(beyond.floor)
    check = _exact(2.0 ** 27, 0.5, edge).checks[0]
    # Measured: 4 u Σ|G ⊙ y| / STEP ~ 1.2e-6 ≪ F · TOL ~ 2e-5: x1's error is seen.
    assert not check.passed and check.mismatched == 1 and check.worst_index == (1,)


def test_an_entry_at_the_tolerance_of_a_floor_that_resolves_too_little_is_not_judged():
    """An entry that agrees with its reference exactly at the tolerance of a floor that lets
    a tenth of the gradient through is counted among those the check could not judge."""
    # x1 = 32: its floor F = 64 u G (|y| + 1) / (STEP · 32) / TOL is half the measured one,
    # 4 u Σ|G ⊙ y| / STEP / TOL, which lowers nothing. y = 2^39: F · TOL ~ 2e-5 > 0.1 · 2^-13.
    x0 = 2.0 ** 32
    estimate = C * U * G * (128.0 * x0 + 1) / (STEP * 32) / TOL
    beyond = _exact(x0, 32.0, 1.5 * TOL * estimate).checks[0]
    assert beyond.worst_index == (1,) and beyond.floor == pytest.approx(estimate, rel=1e-9)
    check = _exact(x0, 32.0, _at_relative_error(beyond.floor)).checks[0]
    assert check.mismatched == 0 and not check.passed
    assert check.unjudged.startswith("numeric resolves this gradient only to ±")
    assert "(1 entries)" in check.unjudged


# ------------------------------------------------------------------------------- smaller steps
@pytest.mark.parametrize("offset, error", [(10.0, 1e-3), (0.34, 3e-5)])
def test_a_pass_at_smaller_steps_that_could_not_see_the_error_is_not_taken(offset, error):
    """A small error in one small gradient, caught with the usual steps, stays a failure:
    steps 1e-2 as large (largest magnitude 3) carry 100 times the outputs' rounding, and
    their pass is the verdict only with a floor ≤ 10 · RHO · max|gradient|."""
    # offset + 0.01 tanh(x): gradients ≤ 0.02 (dout ~ N(0, 1)). Entry 0 (x = 3, gradient
    # 3.3e-5) is off by ``error``, caught by the usual steps (at offset 10 it is 23 times what
    # their floor, 1.4e-3, lets through). With offset 10 the smaller steps' floor (~0.06)
    # lets it pass, 30 times 10 · RHO · max|gradient| (2e-3), below an absolute 0.1 and far
    # within 1000 times the gradient; with offset 0.34 their floor is 1.04 times that bound
    # (the outputs' rounding grows with the offset: at 0.30, 0.92 times, and it is taken).
    x = np.random.default_rng(7).uniform(-1.5, 1.5, size=100)
    x[0] = 3.0

    def check(err):
        def backward(d, v):
            g = 0.01 * d * (1 - np.tanh(v) ** 2)
            g[0] *= 1 + err
            return g

        return gradcheck.check_function(lambda v: (offset + 0.01 * np.tanh(v), v), backward,
                                        x, complex_step=False)

    right, wrong = check(0.0), check(error)
    assert right.passed and not right.notes
    assert not wrong.passed and not wrong.notes
    (failed,) = wrong.failures()
    assert failed.mismatched == 1 and failed.worst_index == (0,)


def test_an_entry_that_moves_nothing_at_the_smaller_steps_is_resolved_over_those_steps():
    """Past a domain edge, an entry whose smaller steps move no output bit (a weak input into
    an output of 1000) is resolved to that output's rounding over those steps, not over the
    usual ones: its correct gradient passes, within the noise measured there."""
    # Entry 0 (3e-7) is within the usual step of the edge; the largest magnitude is 40, so
    # steps 2.4e-8 (1e-4 of it) are taken. Entry 3 moves 1000 + 4e-8 x by 1e-15 there, less
    # than half an ulp of 1000 (5.7e-14): its gradient, 4e-8, is beyond those steps. Over the
    # usual steps (STEP · 40) the rounding of 1000 would resolve it to ~3e-8, and fail it.
    x = np.array([3e-7, 0.6, 1.0, 40.0])
    slope = 4e-8

    def forward(v):
        if np.any(v < 0):
            raise ValueError("negative input")
        return np.concatenate([np.tanh(v[:3]), [1000.0 + slope * v[3]]]), v

    def backward(d, v):
        return np.concatenate([d[:3] * (1 - np.tanh(v[:3]) ** 2), [slope * d[3]]])

    result = gradcheck.check_function(forward, backward, x, dout=np.ones(4),
                                      complex_step=False)
    assert result.notes == (f"'v' checked with steps {STEP * 1e-4 * 40:.2g} (relative to its "
                            "largest magnitude, 40): a probe left the function's domain",)
    assert result.passed and result.checks[0].unjudged == ""


def test_a_resolution_of_exactly_a_tenth_of_the_largest_entry_cannot_judge():
    """A gradient resolved to exactly a tenth of its largest entry is not judged: the check
    judges only where its oracle resolves less than that (an error of 10 % would pass)."""
    # y = 128 x0 (x0 = 2^32, gradient 2^-13): x1 moves nothing and is resolved to ±TOL · F,
    # F = 64 u G (|y| + 1) / (STEP · x1) / TOL, below the measured noise for x1 ≥ 16. The x1
    # where TOL · F is 0.1 · 2^-13 to the bit is found from the floors the checker reports.
    x0, target = 2.0 ** 32, 0.1 * 2.0 ** -13

    def floor_of_x1(x1):
        estimate = C * U * G * (128.0 * x0 + 1) / (STEP * x1) / TOL
        check = _exact(x0, x1, 1.5 * TOL * estimate).checks[0]     # fails: F is reported
        assert check.worst_index == (1,)
        return check.floor

    x1 = C * U * G * (128.0 * x0 + 1) / (STEP * target)          # ~50.4
    for _ in range(100):
        floor = floor_of_x1(x1)
        if TOL * floor == target:
            break
        x1 = np.nextafter(x1, np.inf) if TOL * floor > target else np.nextafter(x1, 0.0)
    assert TOL * floor == target
    check = _exact(x0, x1, 0.5 * TOL * floor).checks[0]      # within F, far above RHO · M
    assert check.floor == floor and check.mismatched == 0 and not check.passed
    assert check.unjudged.startswith("numeric resolves this gradient only to ±")
    # One ulp further from the edge, the resolution is below a tenth: judged, and passed.
    x1 = np.nextafter(x1, np.inf)
    while TOL * floor_of_x1(x1) >= target:
        x1 = np.nextafter(x1, np.inf)
    judged = _exact(x0, x1, 0.5 * TOL * floor).checks[0]
    assert judged.passed and judged.unjudged == ""


def test_a_pass_at_smaller_steps_with_a_floor_of_exactly_the_bound_is_taken():
    """A pass at smaller steps whose floor is exactly 10 · RHO · max|gradient| is the verdict
    (the bound is inclusive), with the note that says which steps gave it."""
    # y = (128 x0, K), dout (2^-20, 2^-10): x0's gradient is 2^-13 to the bit; x1 = 64 moves
    # nothing and its gradient a1 = 6e-12 (true: 0) is over the usual steps' floor for it
    # (64 u max(|G ⊙ y| + |G|) / (STEP · 64) / TOL ~ 3e-6, a1 / TOL = 6e-6): they fail it. At
    # steps h = STEP · 0.64 the measured floor, 4 u Σ|G ⊙ y| / h / TOL (y = 128 x0 is exact:
    # nothing else), lets it through and is the largest; K sets it, and the K where it is
    # 0.1 · 2^-13 to the bit is found from the floors the checker reports.
    bound, a1 = 0.1 * 2.0 ** -13, 0.5 * TOL * 0.1 * 2.0 ** -13

    def run(k):
        return gradcheck.check_function(lambda v: (np.array([128.0 * v[0], k]), v),
                                        lambda d, v: np.array([128.0 * d[0], a1 / G * d[0]]),
                                        np.array([1.0, 64.0]), dout=np.array([G, 2.0 ** -10]),
                                        complex_step=False)

    k = (bound * TOL * STEP * 0.64 / (4 * U) - 128.0 * G) / 2.0 ** -10       # ~109
    for _ in range(100):
        result = run(k)
        taken = result.notes != ()              # the smaller steps' floor is ≤ the bound
        if taken and result.checks[0].floor == bound:
            break
        k = np.nextafter(k, np.inf) if taken else np.nextafter(k, 0.0)
    note = (f"'v' checked with steps {STEP * 0.64:.2g} (relative to its largest magnitude, "
            "64): the usual steps, never below step · max(1, |v|), failed it")
    assert result.notes == (note,) and result.checks[0].floor == bound
    assert result.passed and result.checks[0].worst_index == (1,)
    # One ulp of K more, the floor is over the bound: the usual steps' failure stands.
    over = run(np.nextafter(k, np.inf))
    assert not over.passed and over.notes == () and over.checks[0].mismatched == 1
