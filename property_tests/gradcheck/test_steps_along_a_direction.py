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
