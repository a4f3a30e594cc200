"""Self-checks: properties every correct layer has, checked before any gradient.

Each returns ``None`` or a message saying what is wrong and what usually
causes it. A layer that fails one cannot be judged by finite differences
alone (a nondeterministic forward makes every difference noise), so the
check fails with that message at its head.
"""

from __future__ import annotations

import numpy as np

__all__ = ["changed", "nondeterminism", "nonlinearity"]


def _first_difference(before, after):
    diff = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    index = tuple(int(i) for i in np.argwhere(diff)[0])
    return int(diff.sum()), index


def changed(what, before, after):
    """Return a message if ``after`` differs from ``before`` (an array the layer must not write)."""
    if before.shape == after.shape and np.array_equal(before, after, equal_nan=True):
        return None
    if before.shape != after.shape:
        return f"{what}: its shape changed from {before.shape} to {after.shape}"
    count, index = _first_difference(before, after)
    return (f"{what}: {count} of {before.size} entries changed, the first at {index} "
            f"({before[index].item()!r} -> {after[index].item()!r})")


#: Rounding allowed between two results that are equal in exact arithmetic:
#: 64 units of the precision's epsilon, relative to the largest value (a
#: reduction summed in another order by a threaded library, a term that
#: cancels to zero only in exact arithmetic).
ROUNDING_ULPS = 64


def _distinct(a, b):
    """``a`` and ``b`` printed with as many digits as it takes to tell them apart."""
    for digits in (6, 10, 17):
        left, right = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if left != right:
            break
    return f"{left} vs {right} (a difference of {abs(a - b):.2g})"


def nondeterminism(y1, y2, what="layer.forward", eps=float(np.finfo(np.float64).eps)):
    """Return a message if two forward calls on the same input disagree beyond rounding.

    ``eps`` is the epsilon of the outputs' precision: results differing by at
    most :data:`ROUNDING_ULPS` of it (relative to the largest output) agree.
    """
    if np.array_equal(y1, y2, equal_nan=True):
        return None
    scale = max(float(np.max(np.abs(y1), initial=0.0)), np.finfo(np.float64).tiny)
    diff = np.abs(y1 - y2)
    # Parallel reductions may differ in the last bits between calls: that is
    # not a bug and finite differences tolerate it.
    if float(np.max(diff)) <= ROUNDING_ULPS * eps * scale:
        return None
    beyond = diff > ROUNDING_ULPS * eps * scale
    index = tuple(int(i) for i in np.argwhere(beyond)[0])
    return (f"{what} is nondeterministic: two calls on the same input differ beyond rounding "
            f"in {int(beyond.sum())} of {y1.size} entries (at {index}: "
            f"{_distinct(float(y1[index]), float(y2[index]))}). Finite differences cannot "
            "judge it; fix its randomness (e.g. a dropout mask drawn once and kept, or a "
            "seeded generator) for the check")


def nonlinearity(grads_zero, grads_one, grads_two, eps=float(np.finfo(np.float64).eps)):
    """Return a message if backward is not linear in ``dout``.

    ``grads_*`` are the dicts of gradients (``x`` and every param) returned
    for ``dout = 0``, ``G`` and ``2G``. Doubling is exact in floating point,
    so a linear backward gives exactly twice the gradients, up to reductions
    reordered by a library (:data:`ROUNDING_ULPS` of the largest gradient
    allowed); ``backward(0)`` may leave terms that cancel only in exact
    arithmetic, at most as large, relative to the largest gradient for ``G``.
    """
    overall = max((float(np.max(np.abs(g), initial=0.0)) for g in grads_one.values()),
                  default=0.0)
    for name, g0 in grads_zero.items():
        size = float(np.max(np.abs(g0), initial=0.0))
        if size > ROUNDING_ULPS * eps * overall:
            return (f"backward is not linear in dout: backward(0) returned a nonzero gradient "
                    f"for {name!r} (max |g| = {size:.3g}, against {overall:.3g} for the "
                    "upstream gradient of the check); a term that does not depend on dout "
                    "was added, or stale gradients were returned")
    for name, g1 in grads_one.items():
        g2 = grads_two[name]
        scale = max(float(np.max(np.abs(g1), initial=0.0)), np.finfo(np.float64).tiny)
        worst = float(np.max(np.abs(g2 - 2 * g1), initial=0.0))
        if worst > ROUNDING_ULPS * eps * scale:
            return (f"backward is not linear in dout: backward(2·dout) differs from "
                    f"2·backward(dout) for {name!r} by up to {worst:.3g} (scale {scale:.3g}); "
                    "is dout used in a nonlinear way, or are gradients accumulated across calls?")
    return None
