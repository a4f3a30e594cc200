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
            f"({before[index]!r} -> {after[index]!r})")


def nondeterminism(y1, y2, what="layer.forward"):
    """Return a message if two forward calls on the same input disagree beyond rounding."""
    if np.array_equal(y1, y2, equal_nan=True):
        return None
    scale = max(float(np.max(np.abs(y1), initial=0.0)), np.finfo(np.float64).tiny)
    worst = float(np.max(np.abs(y1 - y2)))
    # Parallel reductions may differ in the last bits between calls: that is
    # not a bug and finite differences tolerate it.
    if worst <= 64 * np.finfo(np.float64).eps * scale:
        return None
    count, index = _first_difference(y1, y2)
    return (f"{what} is nondeterministic: two calls on the same input differ in {count} "
            f"of {y1.size} entries (at {index}: {y1[index]:.6g} vs {y2[index]:.6g}). Finite "
            "differences cannot judge it; fix its randomness (e.g. a dropout mask drawn once "
            "and kept, or a seeded generator) for the check")


def nonlinearity(grads_zero, grads_one, grads_two):
    """Return a message if backward is not linear in ``dout``.

    ``grads_*`` are the dicts of gradients (``x`` and every param) returned
    for ``dout = 0``, ``G`` and ``2G``. Doubling is exact in floating point,
    so a linear backward gives exactly twice the gradients, up to reductions
    reordered by a library (64 ulps of the largest gradient allowed).
    """
    for name, g0 in grads_zero.items():
        if np.any(g0 != 0):
            return (f"backward is not linear in dout: backward(0) returned a nonzero gradient "
                    f"for {name!r} (max |g| = {float(np.max(np.abs(g0))):.3g}); a term that does "
                    "not depend on dout was added, or stale gradients were returned")
    for name, g1 in grads_one.items():
        g2 = grads_two[name]
        scale = max(float(np.max(np.abs(g1), initial=0.0)), np.finfo(np.float64).tiny)
        worst = float(np.max(np.abs(g2 - 2 * g1), initial=0.0))
        if worst > 64 * np.finfo(np.float64).eps * scale:
            return (f"backward is not linear in dout: backward(2·dout) differs from "
                    f"2·backward(dout) for {name!r} by up to {worst:.3g} (scale {scale:.3g}); "
                    "is dout used in a nonlinear way, or are gradients accumulated across calls?")
    return None
