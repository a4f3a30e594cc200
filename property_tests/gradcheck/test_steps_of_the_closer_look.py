"""The steps of the checker's closer looks: the refinement of an entry over tolerance, the
judgement of a tie, and the noise measured where the assumed noise decides, each at the
steps the check itself took.

Two defects lived here: the refinement and the tie's probe stepped by the default step
(cbrt(eps)), not the user's ``step=``, so a function whose rounding asks for a large step
(``sin(x) + 1e6``) failed where it was refined; and the measured noise was divided by the
usual step after a retry with steps 1e-2 of a tensor's magnitude (past a domain edge),
which made its floor 70 times too small and failed a correct function. A third: the entries
of a tie judged wrong were also counted among kinks that "belong to no tie". A fourth: a
pass with smaller steps was refused when any entry, even one the usual steps had passed,
could not be resolved at them.
"""

import numpy as np
import pytest

import gradcheck


def _sin_beside_a_constant(v):
    """sin(x) + 1e6: rounding of 1.2e-10 in each output, 2e-5 of the slope over a step of
    6e-6, below 1e-8 of it over 1e-2."""
    return np.sin(v) + 1e6, v


@pytest.mark.parametrize("factor, passed", [(1.0, True), (1.0 + 1e-4, False)],
                         ids=["correct", "1e-4 off"])
def test_an_entry_is_refined_at_the_users_step(factor, passed):
    """With step=1e-2, central differences are off by their h² term (h² cos/6 ~ 1e-5 of
    the slope): every entry is refined, at that step, where Richardson's estimate is within
    (h/2)⁴/30 ~ 2e-11 of the derivative. At the default step the outputs' rounding (2e-5
    of the slope) failed the correct gradient. An error of 1e-4 is still seen."""
    x = np.random.default_rng(0).uniform(-1, 1, size=8)
    result = gradcheck.check_function(_sin_beside_a_constant,
                                      lambda d, v: factor * d * np.cos(v), x,
                                      dout=np.ones(8), complex_step=False, step=1e-2)
    assert result.passed is passed
    if passed:
        # Richardson's truncation and the rounding over 5e-3: well below 1e-6.
        assert result.checks[0].max_rel_error < 1e-7
    else:
        assert result.checks[0].mismatched == 8


def _tie_beside_a_constant(v):
    return np.array([np.sin(max(v[0], v[1])) + 1e6]), v


@pytest.mark.parametrize("to_both, passed", [(False, True), (True, False)],
                         ids=["one maximum", "both maxima"])
def test_a_tie_is_judged_at_the_users_step(to_both, passed):
    """sin(max(x0, x1)) + 1e6 at a tie, step=1e-2: moving both together is smooth, and its
    derivative, refined at the user's step, is cos(x0). The gradient sent to one maximum
    sums to it (passes); sent to both it is twice that (fails)."""
    x = np.array([0.3, 0.3])

    def backward(d, v):
        g = np.cos(v[0]) * d[0]
        return np.array([g, g if to_both else 0.0])

    result = gradcheck.check_function(_tie_beside_a_constant, backward, x, dout=np.ones(1),
                                      complex_step=False, step=1e-2)
    check = result.checks[0]
    assert result.passed is passed
    if passed:
        assert check.tied == 2
    else:
        assert "— 2× the derivative" in check.diagnosis[1]


def _refuses_negative(v):
    """2000 + tanh(x), refusing any negative entry, as a user's input check does."""
    if np.any(v < 0):
        raise ValueError("negative input")
    return 2000.0 + np.tanh(v), v


def _tanh_backward(d, v):
    return d * (1 - np.tanh(v) ** 2)


@pytest.mark.parametrize("seed", range(4))
def test_the_noise_past_a_domain_edge_is_over_the_steps_taken(seed):
    """One entry 1e-6 from a domain edge: the check retries with steps 1e-2 of the largest
    magnitude (~8e-8), where the rounding of 2000 is ~1e-4 of the slope. The noise measured
    there, over those steps, lets the correct gradient pass; a 1 % error is 100 times that
    floor's tolerance and fails at every entry."""
    x = np.random.default_rng(seed).uniform(0.5, 1.5, size=(3, 4))
    x[0, 0] = 1e-6
    right = gradcheck.check_function(_refuses_negative, _tanh_backward, x, complex_step=False)
    assert right.passed
    assert right.notes[0].endswith("a probe left the function's domain")
    wrong = gradcheck.check_function(_refuses_negative,
                                     lambda d, v: 1.01 * _tanh_backward(d, v), x,
                                     complex_step=False)
    assert not wrong.passed and wrong.checks[0].mismatched == x.size


def test_the_entries_of_a_wrong_tie_are_not_said_to_belong_to_no_tie():
    """A maxout that doubles the gradient of its first maximum: row 0's tie of two sums to
    2 against a derivative of 1 (a wrong tie, named as such), and its first entry, 2, is
    outside its one-sided slopes [0, 1]. The note on kinks outside every tie does not count
    it: the tie's note names it. Row 1 (no tie) is a plain factor of 2."""
    x = np.array([[1.0, 1.0, 0.2], [0.5, 0.1, 0.3]])

    def doubled_to_the_first(d, v):
        g = np.zeros_like(v)
        g[np.arange(2), v.argmax(axis=1)] = 2 * d
        return g

    check = gradcheck.check_function(lambda v: (v.max(axis=1), v), doubled_to_the_first, x,
                                     dout=np.ones(2), complex_step=False).checks[0]
    assert not check.passed and check.mismatched == 2 and check.tied == 0
    assert check.diagnosis[1].startswith("a tie of 2 equal entries (the first at (0, 0))")
    assert not any("belong to no tie" in note for note in check.diagnosis)


def _normalized_beside_a_weak_entry(v):
    """v[:5] / ||v[:5]|| and 1e9 + 1e-3 v[5]: an L2 normalization of tiny inputs, and one
    entry whose steps of 4e-14 move its output of 1e9 by no bit."""
    return np.concatenate([v[:5] / np.sqrt(np.sum(v[:5] ** 2)), [1e9 + 1e-3 * v[5]]]), v


def _normalized_backward(cross_terms):
    def backward(d, v):
        norm = np.sqrt(np.sum(v[:5] ** 2))
        y = v[:5] / norm
        g = (d[:5] - cross_terms * y * np.dot(d[:5], y)) / norm
        return np.concatenate([g, [1e-3 * d[5]]])

    return backward


@pytest.mark.parametrize("cross_terms, passed", [(1.0, True), (0.0, False)],
                         ids=["correct", "cross terms dropped"])
def test_a_retry_is_judged_where_the_usual_steps_failed(cross_terms, passed):
    """Inputs ~1e-8: the usual steps (≥ 6e-6) fail the normalization, and steps relative to
    the largest magnitude (4e-14) judge it, with a floor of its gradients' (~1e8) at the
    entries that failed. The weak entry cannot be resolved at those steps (its floor ~1e14), but the
    usual steps passed it: the correct gradient passes with the note; the gradient without
    its cross terms fails."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=6) * 1e-8
    result = gradcheck.check_function(_normalized_beside_a_weak_entry,
                                      _normalized_backward(cross_terms), x,
                                      dout=rng.normal(size=6), complex_step=False)
    assert result.passed is passed
    if passed:
        assert result.notes[0].endswith("the usual steps, never below step · max(1, |v|), "
                                        "failed it")
    else:
        assert result.checks[0].mismatched >= 4
