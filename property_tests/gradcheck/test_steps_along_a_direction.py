"""Steps along one random direction: the user's ``step=``, and smaller steps past a domain
edge, as entry by entry.

Mode 'fast' (and mode 'auto' for a tensor over its budget) checks a tensor along one
direction. A ``log`` of inputs ~1e-6, within the usual step (cbrt(eps) ≈ 6e-6) of its
domain edge, made those probes raise the user's own error: the retry with steps fitted to
the tensor ran only entry by entry, and the direction's step ignored ``step=``.
"""

import numpy as np
import pytest

import gradcheck


def log_layer(x):
    """A user's log that refuses its domain edge, as code that validates its input does."""
    if np.any(x <= 0):
        raise ValueError("log of a non-positive entry")
    return np.log(x), x


def log_backward(dout, x):
    return dout / x


def log_backward_half(dout, x):
    return dout / (2 * x)                 # a forgotten factor: half the derivative


def _near_zero(shape):
    return np.random.default_rng(3).uniform(1e-6, 2e-6, size=shape)


@pytest.mark.parametrize("mode, shape", [("fast", (4, 5)), ("auto", (200, 100))],
                         ids=["mode fast", "mode auto, over its budget"])
def test_a_direction_past_a_domain_edge_is_checked_with_smaller_steps(mode, shape):
    """Correct: passes, with the note naming the steps; half the derivative: fails. Never
    the user's ValueError from a probe the checker made."""
    x = _near_zero(shape)
    good = gradcheck.check_function(log_layer, log_backward, x, mode=mode, complex_step=False)
    bad = gradcheck.check_function(log_layer, log_backward_half, x, mode=mode,
                                   complex_step=False)
    assert good.passed, good.message()
    assert good.checks[0].method == "fast"
    (note,) = good.notes
    assert note.startswith("'x' checked with steps ") and note.endswith(
        "a probe left the function's domain")
    assert not bad.passed
    # Half the derivative: a relative error of 1/2 (|a - n| / max(|a|, |n|), a = n/2) over
    # 20 entries; over 20,000 their projection's rounding floor (the assumed Σ|G ⊙ y|
    # noise at a step of 1e-11) dilutes it, still 1000 times the tolerance.
    check = bad.checks[0]
    assert check.max_rel_error > 1e3 * check.tolerance, bad.message()


def test_a_direction_uses_the_users_step():
    """``step=1e-9`` keeps every probe inside the domain: no retry, no note, one refinement
    of the direction (2 + 4 calls), as with any smooth function."""
    x = _near_zero((4, 5))
    result = gradcheck.check_function(log_layer, log_backward, x, mode="fast", step=1e-9,
                                      complex_step=False)
    assert result.passed, result.message()
    assert result.notes == ()
    assert result.checks[0].plan.endswith("; 6 forward calls")


def test_a_function_undefined_on_both_sides_still_raises_along_a_direction():
    """No step stays inside (``x ** 1.5`` at 0 exactly): the error is the user's, raised."""
    def power_3_2(x):
        if np.any(x < 0):
            raise ValueError("negative base")
        return x ** 1.5, x

    with pytest.raises(ValueError, match="negative base"):
        gradcheck.check_function(power_3_2, lambda d, x: 1.5 * d * np.sqrt(x), np.zeros(6),
                                 mode="fast", complex_step=False)


def test_a_grouped_check_past_a_domain_edge_over_the_budget_goes_along_a_direction():
    """Mode 'auto' with a grouping given (all 20,000 entries in one group: log is
    elementwise): 2 calls, in budget, where one entry at a time (40,000) is not. The group's
    probe leaves the domain; the retry with smaller steps goes along one direction, as the
    budget asks, not entry by entry: a few dozen calls, a verdict and the note."""
    x = _near_zero((200, 100))
    colors = {"x": np.zeros(x.shape, dtype=int)}
    good = gradcheck.check_function(log_layer, log_backward, x, coloring=colors,
                                    complex_step=False)
    bad = gradcheck.check_function(log_layer, log_backward_half, x, coloring=colors,
                                   complex_step=False)
    assert good.passed and not bad.passed
    for result in (good, bad):
        assert result.checks[0].method == "fast"
        assert result.forward_calls < 100      # entry by entry: 40,000 calls and more
        (note,) = result.notes
        assert note.endswith("a probe left the function's domain")


def _refuses_negative_sum(v):
    """1000 + Σ tanh(v), one output, refusing any negative entry (a user's input check)."""
    if np.any(v < 0):
        raise ValueError("negative input")
    return np.array([1000.0 + np.sum(np.tanh(v))]), v


def _sum_tanh_backward(factor):
    return lambda dout, v: factor * dout[0] * (1 - np.tanh(v) ** 2)


def test_a_direction_retried_with_the_smallest_steps_allows_their_rounding():
    """One entry 1e-9 from the edge, the largest ~1: steps 6e-6 and 6e-8 leave the domain,
    6e-10 (1e-4 of the largest) stay inside. Over that step the rounding of 1000 is ~1e-4
    of the directional derivative: the floor allows for it, over that step (not the usual
    one), so the correct gradient passes; 10 % off is still seen."""
    x = np.random.default_rng(0).uniform(0.5, 1.0, size=(4, 5))
    x[2, 3] = 1e-9
    good = gradcheck.check_function(_refuses_negative_sum, _sum_tanh_backward(1.0), x,
                                    mode="fast", complex_step=False)
    bad = gradcheck.check_function(_refuses_negative_sum, _sum_tanh_backward(1.1), x,
                                   mode="fast", complex_step=False)
    assert good.passed, good.message()
    assert good.notes == (f"'v' checked with steps {6.06e-6 * 1e-4 * np.max(x):.2g} (relative "
                          f"to its largest magnitude, {np.max(x):.2g}): a probe left the "
                          "function's domain",)
    assert not bad.passed and bad.checks[0].method == "fast"


def test_a_float32_direction_past_a_domain_edge_raises_the_users_error():
    """Smaller steps are for float64: in float32 they would be rounding alone. The user's
    error is raised, with the note that a point the checker made raised it."""
    x = _near_zero((4, 5)).astype(np.float32)
    with pytest.warns(gradcheck.PrecisionWarning), \
            pytest.raises(ValueError, match="log of a non-positive entry") as raised:
        gradcheck.check_function(log_layer, log_backward, x, mode="fast", complex_step=False)
    assert any(note.startswith("(at a point gradcheck made by moving a tensor by its step")
               for note in raised.value.__notes__)
