"""The closer looks a failing comparison gets, as a user meets them (issue 13): the order in
which suspects are refined and ties named, what counts as agreement, the rounding noise that
keeps a smooth point from reading as a kink (entry by entry, along a tie, along a random
direction, and when the complex step's failure is confirmed), the kinks a check along one
direction must send entry by entry, and the edges of the confirmation of the complex step.

The inputs are crafted so that the expected numbers follow by hand: ``dout`` of ones, linear
pieces and powers of two (exact in float64), outputs beside a large constant whose rounding
is the noise, and, for the edges, values found by stepping one float at a time.
"""

import numpy as np

import gradcheck
from gradcheck import core
from gradcheck.numerical import STEP, entry_probe, refine

U = np.finfo(np.float64).eps / 2      # unit roundoff of float64
TOL = 1e-6                            # the default tolerance against central differences


def _first(result):
    (check,) = result.checks
    return check


# ------------------------------------------------------------- the order of ties in the notes
def _maxout(v):
    return v.max(axis=1), v


def _argmax_in_even_rows_every_max_in_odd(dout, v):
    """A maxout whose backward breaks ties by argmax in even rows (right) and sends the
    gradient to every tied maximum in odd rows (wrong)."""
    grad = np.zeros(v.shape)
    for i, row in enumerate(v):
        if i % 2:
            grad[i] = (row == row.max()) * dout[i]
        else:
            grad[i, np.argmax(row)] = dout[i]
    return grad


def test_wrong_ties_are_named_in_reading_order():
    """16 rows tied at 1: the right rows' entries have errors 0.5 and 1, the wrong rows'
    0.5 and 0.5 (equal errors). The notes name the first wrong ties in the tensor's order,
    rows 1, 3 and 5, whatever order the equal errors would take in an unstable sort."""
    x = np.ones((16, 2))
    check = _first(gradcheck.check_function(_maxout, _argmax_in_even_rows_every_max_in_odd, x,
                                            dout=np.ones(16), complex_step=False))
    assert not check.passed and check.tied == 16 and check.mismatched == 8
    assert check.worst_index == (1, 0)
    firsts = [note.split("(the first at ")[1].split(")")[0] + ")" for note in check.diagnosis[1:4]]
    assert firsts == ["(1, 0)", "(3, 0)", "(5, 0)"]


# ------------------------------------------------- agreement at the tolerance (which suspects)
N = 40                        # wrong entries, more than the 32 refined before giving up
# Found by search: a float a with |a - SLOPE| == 1e-6 · a exactly exists (for most slopes
# none does: 1e-6 · a must fall on SLOPE's grid of 2^-52).
SLOPE = 1.0002394448965788


def _edge_of_agreement(est):
    """The float ``a`` with ``|a - est| == 1e-6 · a`` (the tolerance, inclusive)."""
    a = est / (1 - TOL)
    while abs(a - est) > TOL * a:
        a = np.nextafter(a, 0.0)
    while abs(a - est) < TOL * a:
        a = np.nextafter(a, 2.0)
    return a


def _suspects(a0):
    """y = 2x for 40 entries, whose gradient is 1e-4 too large; entry 0 is SLOPE · x + 8 x³
    at x = 0, where central differences at the user's step of 1e-2 read SLOPE + 8e-4 (the
    worst error, refined first) and Richardson's estimate at that step cancels the h² term:
    it is SLOPE to the bit; its gradient is ``a0``. The last entry, 1e4, keeps smaller steps
    from being tried (all of them ≥ 1)."""
    x = np.concatenate([[0.0], np.random.default_rng(7).uniform(0.2, 0.9, N), [1e4]])

    def forward(v):
        y = 2.0 * v
        y[0] = SLOPE * v[0] + 8.0 * v[0] ** 3
        y[-1] = 2.0 ** -20 * v[-1]
        return y, v

    def backward(dout, v):
        grad = 2.0 * (1 + 1e-4) * dout
        grad[0] = a0 * dout[0]
        grad[-1] = 2.0 ** -20 * dout[-1]
        return grad

    return forward, backward, x


def test_a_refinement_that_agrees_within_exactly_the_tolerance_lets_every_suspect_be_refined():
    """Once one refined estimate agrees with its gradient, the other suspects are worth a
    closer look too: all 41 are refined (4 calls each); when none agrees after 32, the rest
    are not. Agreement is within the tolerance, inclusive: a gradient exactly 1e-6 (relative)
    from the estimate agrees like an exact one; one float further it does not."""
    forward, _, x = _suspects(0.0)
    xv = x.copy()
    probe, h = entry_probe(lambda: forward(xv)[0], xv, (0,), 1e-2)
    est = refine(probe, h, np.ones(x.size), forward(xv)[0]).estimate
    assert est == SLOPE                  # the cubic term cancels: exact
    edge = _edge_of_agreement(est)
    assert abs(edge - est) == TOL * edge

    def calls(a0):
        _, backward, _ = _suspects(a0)
        result = gradcheck.check_function(forward, backward, x, dout=np.ones(x.size),
                                          complex_step=False, step=1e-2, mode="full")
        assert not result.passed and _first(result).mismatched >= N
        return result.forward_calls

    exact = calls(est)
    assert calls(edge) == exact
    assert calls(np.nextafter(edge, 2.0)) == exact - 4 * (N + 1 - 32)


# ---------------------------------------------- rounding noise: no kink at a smooth entry
def _tiny_slope_beside_a_constant(x, slope, **options):
    """y = 1e-6 x + 1e3: a change of ~6e-12 over the step against a rounding of 1.1e-13 in
    each output; its gradient given as ``slope``."""
    return gradcheck.check_function(lambda v: (1e-6 * v + 1e3, v), lambda d, v: slope * d, x,
                                    complex_step=False, **options)


def test_a_plain_error_beside_a_large_constant_is_not_said_to_sit_at_kinks():
    """The rounding of 1e3 bends the change of a tiny slope by ~2 % of itself: counted as
    the outputs' noise it is no kink, and a gradient twice too large is a plain error,
    compared with Richardson's estimate (within its rounding, 3 % of 1e-6)."""
    x = np.random.default_rng(0).uniform(0.2, 0.9, size=6)
    check = _first(_tiny_slope_beside_a_constant(x, 2e-6, dout=np.ones(6)))
    assert not check.passed and check.mismatched == 6 and check.nondifferentiable == 0
    assert not any("kink" in note for note in check.diagnosis)
    assert abs(check.reference - 1e-6) <= 0.03e-6


def test_a_check_along_a_direction_beside_a_large_constant_stays_along_it():
    """Mode 'fast' (dout drawn by the checker, seed 0): the same function's rounding along the
    direction is noise, not a kink, so a gradient 10 times too large fails along the direction
    (6 calls: 2, then 4 to refine) instead of being sent entry by entry."""
    x = np.random.default_rng(4).uniform(0.2, 0.9, size=6)
    check = _first(_tiny_slope_beside_a_constant(x, 1e-5, mode="fast"))
    assert not check.passed and check.method == "fast"
    assert check.plan == "along one random direction (mode='fast'); 6 forward calls"


def test_a_tie_beside_a_large_constant_is_judged_by_its_sum():
    """sin(2e4 · max(x0, x1)) + 1e9 at a tie: K·h = 0.12, so the cubic term of the tie's move
    leaves a least-squares residual (1.3e-4) above 1e-3 · h · its slope (1.1e-4), but below
    100 times the rounding of 1e9 (7e-4), the outputs' noise: it is smooth, and Richardson's
    estimate judges the sum (truncation (K h)⁴/480 ~ 5e-7 and rounding, both far below the
    100 % by which the gradient sent to both maxima is off: it fails)."""
    k, c = 2e4, 1e9
    x = np.array([0.3, 0.3])

    def forward(v):
        return np.array([np.sin(k * max(v[0], v[1])) + c]), v

    def first(dout, v):
        return np.array([k * np.cos(k * v[0]) * dout[0], 0.0])

    def every(dout, v):
        return np.array([k * np.cos(k * v[0]) * dout[0]] * 2)

    right = _first(gradcheck.check_function(forward, first, x, dout=np.ones(1),
                                            complex_step=False))
    assert right.passed and right.tied == 2 and right.nondifferentiable == 0
    wrong = _first(gradcheck.check_function(forward, every, x, dout=np.ones(1),
                                            complex_step=False))
    assert not wrong.passed and wrong.tied == 0
    assert "— 2× the derivative" in wrong.diagnosis[1]


# ----------------------------------------------------------------------------- tie judgement
def _relu_sum_and_maxout(v):
    return np.array([max(v[0] + v[1], 0.0), max(v[2], v[3])]), v


def _relu_and_every_max(dout, v):
    grad = np.zeros(4)
    grad[:2] = dout[0] * (v[0] + v[1] > 0)
    grad[2:] = dout[1] * (v[2:] == max(v[2], v[3]))
    return grad


def test_a_set_of_equal_kinks_that_is_no_tie_does_not_stop_the_judgement_of_later_ties():
    """x0 = x1 = 0 under relu(x0 + x1): equal kinks, but moving both is still a kink (no
    tie); they come first (errors 1 against 0.5). The maxout tie x2 = x3 = 1 after them is
    still judged: the gradient sent to both maxima fails, named as a doubled tie."""
    x = np.array([0.0, 0.0, 1.0, 1.0])
    check = _first(gradcheck.check_function(_relu_sum_and_maxout, _relu_and_every_max, x,
                                            dout=np.ones(2), complex_step=False))
    assert not check.passed and check.mismatched == 1 and check.nondifferentiable == 3
    assert "a tie of 2 equal entries (the first at (2,))" in check.diagnosis[1]
    assert "— 2× the derivative" in check.diagnosis[1]


TIE_SLOPE = 2.0 ** -20            # y = TIE_SLOPE · max(x0, x1): the tie's move is exact
BYSTANDER = 1024.0                # y = 1024 x2 at x2 = 1: the floor is RHO · 1024 = 10.24


def _tie_with_floor(a0, a1):
    """A tie at 0 of slope 2^-20 beside an entry of gradient 1024: the tie's sum is compared
    with its derivative at the tensor's floor 10.24 (both gradients are far below it)."""
    def forward(v):
        return np.array([TIE_SLOPE * max(v[0], v[1]), BYSTANDER * v[2]]), v

    def backward(dout, v):
        return np.array([a0 * dout[0], a1 * dout[0], BYSTANDER * dout[1]])

    return _first(gradcheck.check_function(forward, backward, np.array([0.0, 0.0, 1.0]),
                                           dout=np.ones(2), complex_step=False,
                                           coloring=False))


def test_a_tie_whose_sum_is_off_by_exactly_the_tolerance_is_judged_right():
    """The sum a0 + a1 against the derivative 2^-20 of the joint move, at the floor 10.24:
    a relative error of exactly 1e-6 (a1 = -2^-16, a0 found one float at a time) is a tie
    judged right, both entries tied; one float more is a wrong tie."""
    a1 = -(2.0 ** -16)
    floor = 0.01 * BYSTANDER

    def error(a0):
        return gradcheck.relative_errors(np.array([a0 + a1]), np.array([TIE_SLOPE]), floor)[0]

    a0 = TIE_SLOPE + TOL * floor - a1
    while error(a0) > TOL:
        a0 = np.nextafter(a0, 0.0)
    while error(a0) < TOL:
        a0 = np.nextafter(a0, 1.0)
    assert error(a0) == TOL
    at_edge = _tie_with_floor(a0, a1)
    assert at_edge.floor == floor
    assert at_edge.passed and at_edge.tied == 2 and at_edge.diagnosis == ()
    beyond = _tie_with_floor(np.nextafter(a0, 1.0), a1)
    assert not beyond.passed and beyond.tied == 0
    assert beyond.diagnosis[0].startswith("1 tie(s) whose gradients do not add up")


def test_a_tie_off_by_a_hair_is_not_called_a_multiple_of_the_derivative():
    """With fd_tolerance=1e-8 a tie whose gradients sum to 1 + 1e-7 (its derivative: 1) is
    wrong; its ratio rounds to 1, which is no count of tied entries: the note gives the two
    numbers and claims no 'N× the derivative'."""
    check = _first(gradcheck.check_function(
        lambda v: (np.array([max(v[0], v[1])]), v),
        lambda d, v: np.array([(1 + 1e-7) * d[0], 0.0]), np.array([0.0, 0.0]),
        dout=np.ones(1), complex_step=False, fd_tolerance=1e-8))
    assert not check.passed and check.mismatched == 1
    assert check.diagnosis[1] == ("a tie of 2 equal entries (the first at (0,)) that move "
                                  "together: their gradients sum to 1.0000001, moving them "
                                  "together changes J at 1")


# ------------------------------------------------- kinks along one direction (mode 'fast')
def _small_relu_term(v):
    return v + 1e-3 * np.maximum(v, 0.0), v


def _small_relu_term_backward(dout, v):
    return dout * (1 + 1e-3 * (v > 0))


def test_a_kink_that_bends_no_output_enough_is_found_along_the_direction():
    """y = x + 1e-3 relu(x) with one input at 0: each output bends by 1e-3 of its slope,
    under the 1e-3 of its change that marks a bent output, but the one-sided slopes along the
    direction jump: a kink, so the tensor (10 entries) is checked entry by entry, where the
    kink is judged (any value in [1, 1.001] is valid) and the correct gradient passes."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0.3, 0.9, size=10) * rng.choice([-1.0, 1.0], size=10)
    x[3] = 0.0
    check = _first(gradcheck.check_function(_small_relu_term, _small_relu_term_backward, x,
                                            mode="fast", complex_step=False))
    assert check.passed and check.method == "full" and check.nondifferentiable == 1
    assert check.plan.startswith("every entry by central differences, one entry at a time; ")


# ------------------------------------------- the complex step's failure, confirmed or not
def test_an_abs_kink_within_the_users_step_is_judged_by_its_range_at_that_step():
    """|x - c| at x = 0, c = 0.6 · step (step=1e-3): the complex step reads 0 (abs is not
    holomorphic); the closer look at the user's step straddles the kink, with one-sided
    slopes from -1 to -0.2. The gradient -1 is in that range: a valid one-sided slope, the
    entry is counted at a kink and the check passes. A gradient of +1 is outside it: fails."""
    c = 0.6e-3

    def check(slope):
        return _first(gradcheck.check_function(
            lambda v: (np.abs(v - c), v), lambda d, v: slope * d, np.array([0.0]),
            dout=np.ones(1), complex_step=True, step=1e-3))

    right, wrong = check(-1.0), check(1.0)
    assert right.passed and right.nondifferentiable == 1
    assert not wrong.passed and wrong.mismatched == 1


STEP2 = 2.0 ** -10                    # a user's step in which every probe below is exact


def test_rounding_noise_keeps_a_bent_smooth_point_from_reading_as_a_kink():
    """y = 2^20 + a z - 2a z³/step², z = x.real (a cast: not holomorphic), at x = 0 with
    step = 2^-10 and a = 2^-12: every probe is exact; the one-sided slopes (-a to a/2) leave
    a least-squares residual of 0.95 a·step (2.3e-7), over 1e-3 · step · a but under 100
    times the rounding of 2^20 (7.5e-7). Smooth, so Richardson's estimate a (exact) stands
    against the complex step's 0, which it differs from by more than the resolution (2^-16):
    overturned, and the check passes. A second entry of gradient 4096 sets a floor
    (RHO · 4096) that central differences at 6e-6 resolve."""
    c, a = 2.0 ** 20, 2.0 ** -12
    b = -2 * a / STEP2 ** 2

    def forward(v):
        z = v.real.copy()
        return np.array([c + a * z[0] + b * z[0] ** 3, 4096.0 * v[1]]), v

    def backward(dout, v):
        z = v.real
        return np.array([(a + 3 * b * z[0] ** 2) * dout[0], 4096.0 * dout[1]])

    result = gradcheck.check_function(forward, backward, np.array([0.0, 0.5]), dout=np.ones(2),
                                      complex_step=True, step=STEP2)
    check = _first(result)
    assert result.passed and check.oracle == "finite_differences"
    assert "the complex step's failure at (0,) was not theirs" in check.plan


def _abs_beside_a_constant(slope):
    """slope · |x| + 1e6 at x = 0.5: the complex step reads 0; central differences read
    ``slope`` within the rounding of 1e6 over the step (~1 % of the resolution below)."""
    return _first(gradcheck.check_function(
        lambda v: (slope * np.abs(v) + 1e6, v), lambda d, v: slope * np.sign(v.real) * d,
        np.array([0.5]), dout=np.ones(1), complex_step=True))


def test_central_differences_overturn_the_complex_step_beyond_twice_their_rounding():
    """The resolution is twice the outputs' rounding over the step, 2 · 64 u (1e6 + 1) / h
    (h = 6.06e-6 at 0.5): a derivative of 2.5 times the rounding is resolved against the
    complex step's 0 (overturned, passes); one of 1.5 times is not (the complex step keeps
    its failure)."""
    h = float(np.finfo(np.float64).eps ** (1 / 3))
    rounding = 64 * U * (1e6 + 1) / h
    resolved = _abs_beside_a_constant(2.5 * rounding)
    assert resolved.passed and resolved.oracle == "finite_differences"
    unresolved = _abs_beside_a_constant(1.5 * rounding)
    assert not unresolved.passed and unresolved.oracle == "complex_step"


def test_the_complex_step_keeps_its_failure_when_the_difference_is_exactly_the_resolution():
    """64 + A·x.real + q·x at x = 0, step = 2^-10: the complex step reads q, central
    differences A + q (every probe exact). Their difference A, less the tolerance's share
    1e-6·(A + q), is exactly the resolution 2 · 64 u · 65 / 2^-10 = 65 · 2^-36: not a clear
    difference, so the complex step's failure stands; with A one step (2^-35) larger it is
    overturned. All numbers are exact: A and q on a grid of 2^-35."""
    c = 64.0
    resolution = 2 * (64 * U * (c + 1)) / STEP2
    assert resolution == 65 * 2.0 ** -36
    k = 65537                           # odd: 1e-6 · E rounds to k · 2^-36 exactly
    total = 500000 * k * 2.0 ** -35     # E = A + q, the derivative
    assert TOL * total == k * 2.0 ** -36

    def check(a):
        return _first(gradcheck.check_function(
            lambda v: (c + a * v.real + (total - a) * v, v), lambda d, v: total * d,
            np.array([0.0]), dout=np.ones(1), complex_step=True, step=STEP2))

    a = (65 + k) * 2.0 ** -36
    assert (a - TOL * total) - resolution == 0.0
    at_edge = check(a)
    assert not at_edge.passed and at_edge.oracle == "complex_step"
    beyond = check(a + 2.0 ** -35)
    assert beyond.passed and beyond.oracle == "finite_differences"


# ------------------------------------- a kink along the direction of a tensor too large
KINK_NOTE = ("the function has a kink along the random direction (ReLU at 0, ties?) and the "
             "tensor is too large to check entry by entry (> 4); check a smaller input with "
             "mode='full', or make the function complex-safe")


def test_the_too_large_to_check_note_is_given_only_over_the_tolerance(monkeypatch):
    """6 entries over a limit of 4: sin(x) + 1e-3 relu(x) + 10 with an input at 0 bends no
    output enough to be left out (at the step or 1e4 times below it), but the one-sided
    slopes along the direction jump: a kink, checked along the direction by the mean of the
    slopes, against a floor set by a constant output of 1e9. The projection of a gradient
    on the direction is reported, so the direction is read back entry by entry (its largest
    entry is ±1 exactly) and a gradient is placed at a relative error of exactly 1e-6: no
    note; one float further, the note says why the kink was not checked entry by entry."""
    monkeypatch.setattr(core, "FAST_FALLBACK_LIMIT", 4)
    x = np.random.default_rng(3).uniform(0.3, 0.9, size=6) * np.array([1, -1, 1, 1, -1, 1.0])
    x[3] = 0.0

    def forward(v):
        return np.concatenate([np.sin(v) + 1e-3 * np.maximum(v, 0.0) + 10.0, [1e9]]), v

    def check(gradient):
        return _first(gradcheck.check_function(forward, lambda dout, v: gradient * dout[0], x,
                                               dout=np.ones(7), mode="fast",
                                               complex_step=False))

    direction = np.array([check(np.eye(6)[i]).analytic for i in range(6)])
    j = int(np.argmax(np.abs(direction)))
    assert abs(direction[j]) == 1.0
    central = check(np.cos(x) + 1e-3 * (x > 0)).reference     # right: judged at once
    far = check(1e6 * np.eye(6)[j])                            # refined: the slopes' mean
    assert far.method == "fast" and far.diagnosis == (KINK_NOTE,)
    estimate, floor = far.reference, far.floor
    away = 1.0 if estimate >= central else -1.0     # from central differences: refined

    def error(p):
        return gradcheck.relative_errors(np.array([p]), np.array([estimate]), floor)[0]

    p = estimate + away * TOL * floor
    while error(p) > TOL:
        p = np.nextafter(p, estimate)
    while error(p) < TOL:
        p = np.nextafter(p, away * np.inf)
    at_edge = check(p * direction[j] * np.eye(6)[j])
    assert at_edge.analytic == p and at_edge.reference == estimate
    assert at_edge.max_rel_error == TOL and at_edge.mismatched == 0
    assert at_edge.diagnosis == ()
    beyond = check(np.nextafter(p, away * np.inf) * direction[j] * np.eye(6)[j])
    assert beyond.mismatched == 1 and beyond.diagnosis == (KINK_NOTE,)


def test_a_flat_gradient_along_a_direction_with_kinks_is_compared_after_a_reshape(
        monkeypatch):
    """Mode 'fast' over the fallback limit (4): a ReLU with two inputs at 0 bends two
    outputs, left out of G, and the backward is called again without them; its gradient
    comes back flat, (20,) for (4, 5). The shape is named, and the values are compared
    after a reshape: they match (correct), or not (the gradient transposed)."""
    monkeypatch.setattr(core, "FAST_FALLBACK_LIMIT", 4)
    x = np.random.default_rng(0).normal(size=(4, 5))
    x[1, 2] = x[3, 0] = 0.0

    def check(backward):
        return _first(gradcheck.check_function(lambda v: (np.maximum(v, 0.0), v), backward, x,
                                               mode="fast"))

    flat = check(lambda d, v: (d * (v > 0)).ravel())
    assert flat.method == "fast" and "left out of G" in flat.plan
    assert flat.shape_error.startswith("the gradient has shape (20,), the tensor (4, 5)")
    assert "after a reshape the values match" in flat.shape_error
    transposed = check(lambda d, v: (d * (v > 0)).T.copy())
    assert "the values differ even after a reshape" in transposed.shape_error


def _abs_near_kinks(v):
    return np.abs(v - 0.6 * STEP), v


def test_a_complex_step_failure_beyond_the_refined_entries_is_overturned_at_its_kink():
    """40 entries of |x - c| at x = 0, c = 0.6 · step, forced through the complex step
    (which reads 0: abs is not holomorphic). The first 32 gradients, -1.01, lie outside
    their one-sided slopes [-1, -0.2]: refined, none agrees, so the last 8 (-1, a valid
    slope) are not refined and the worst is among them. Its refinement finds the kink with
    -1 in range and 0 outside: central differences overturn the complex step and judge the
    tensor: it fails (the 32 are wrong)."""
    a = np.full(40, -1.0)
    a[:32] = -1.01
    check = _first(gradcheck.check_function(_abs_near_kinks, lambda d, v: a * d, np.zeros(40),
                                            dout=np.ones(40), complex_step=True,
                                            coloring=False))
    assert check.oracle == "finite_differences"
    assert "the complex step's failure at (32,) was not theirs" in check.plan
    assert not check.passed and check.mismatched >= 32
