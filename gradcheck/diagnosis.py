"""Diagnosis: what a wrong gradient looks like, in the words a user would use.

:func:`diagnose` compares the analytic gradient with the reference as a
whole and returns the patterns it recognizes, most specific first: a
constant factor (and whether it is ``1/n`` or ``n`` for a size of the
input), a sign flip, a transpose, a kernel rotated by 180°, errors confined
to the borders of two axes (padding), to a periodic subset of an axis
(overlapping windows, strides), to some indices of one axis (some examples
of a batch, some channels), or to a few entries. The checker knows no layout,
so it names axes by number.
"""

from __future__ import annotations

import numpy as np

__all__ = ["diagnose"]

_MATCH = 1e-6      # a transformed analytic gradient "matches" the reference to this relative error
_MAX_LISTED = 5    # entries listed by index when only a few are wrong


def _close(a, r, tol=_MATCH):
    scale = max(float(np.max(np.abs(r), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    return scale > 0 and float(np.max(np.abs(a - r))) <= tol * scale


def _factor(a, r, sizes, label="numeric"):
    rr = float(np.sum(r * r))
    if rr == 0.0:
        return None
    k = float(np.sum(a * r)) / rr
    if not _close(a, k * r, min(_MATCH, abs(k - 1.0) / 10)) or abs(k - 1.0) < 1e-8 or abs(k) < 1e-12:
        return None
    if abs(k + 1.0) < 1e-6:
        return f"a sign flip: analytic ≈ -1 × {label}"
    note = ""
    # Within the tolerance a size of 2 would be named at (1e-6 of it): 2 is more often a
    # forgotten 1/2 or a doubled term than a size.
    if abs(abs(k) - 2.0) < 2e-6 or abs(abs(k) - 0.5) < 1e-6:
        sizes = ()
        note = " (a forgotten 1/2 of a squared loss, or a term counted twice?)"
    for name, n in sizes:
        if n > 1 and abs(k * n - 1.0) < 1e-6:
            note = f" = 1/{n}, one over {name} (a mean taken twice, or an extra 1/m?)"
            break
        if n > 1 and abs(k - n) < 1e-6 * n:
            note = f" = {n}, {name} (a missing 1/m, or a sum where a mean belongs?)"
            break
    return f"a constant factor: analytic ≈ {k:.6g} × {label}{note}"


def _axis_pairs(ndim):
    pairs = [(0, 1)] if ndim >= 2 else []
    if ndim >= 3:
        pairs.append((ndim - 2, ndim - 1))
    return pairs


def _permuted(a, r, label="numeric"):
    for i, j in _axis_pairs(a.ndim):
        if a.shape[i] == a.shape[j] and a.shape[i] > 1 and _close(np.swapaxes(a, i, j), r):
            return (f"a transpose: analytic ≈ {label} with axes {i} and {j} swapped "
                    "(a missing or extra transpose?)")
        flipped = np.flip(a, axis=(i, j))
        if max(a.shape[i], a.shape[j]) > 1 and _close(flipped, r):
            return (f"a 180° rotation: analytic ≈ {label} flipped along axes {i} and {j} "
                    "(a kernel not rotated by ROT180, or rotated twice?)")
    return None


def _shifted(a, r, label):
    """``a`` is ``r`` moved by one entry along one or two axes, away from the borders."""
    scale = float(np.max(np.abs(r), initial=0.0))
    if scale == 0.0:
        return None
    for axes in _axis_pairs(a.ndim) + [(k,) for k in range(a.ndim)]:
        if any(a.shape[k] < 4 for k in axes):
            continue
        inner = [slice(None)] * a.ndim
        for k in axes:
            inner[k] = slice(1, a.shape[k] - 1)
        inner = tuple(inner)
        if _close(a[inner], r[inner]):
            continue       # no shift: the interior already agrees
        for shift in np.ndindex(*(3,) * len(axes)):
            step = tuple(s - 1 for s in shift)
            if not any(step):
                continue
            if _close(a[inner], np.roll(r, step, axis=axes)[inner]):
                return (f"analytic ≈ {label} moved by {step if len(step) > 1 else step[0]} "
                        f"along {'axes' if len(axes) > 1 else 'axis'} "
                        f"{axes if len(axes) > 1 else axes[0]} (away from the borders): an "
                        "off-by-one in padding or cropping, a window placed one entry off?")
    return None


def _borders(mismatch):
    for i, j in _axis_pairs(mismatch.ndim):
        n_i, n_j = mismatch.shape[i], mismatch.shape[j]
        for width in (1, 2):
            # A border means something only around an inside of at least 3 × 3.
            if n_i < 2 * width + 3 or n_j < 2 * width + 3:
                break
            inner = [slice(None)] * mismatch.ndim
            inner[i], inner[j] = slice(width, n_i - width), slice(width, n_j - width)
            if not mismatch[tuple(inner)].any():
                return (f"errors only within {width} of the borders of axes ({i}, {j}) "
                        "(padding, or the edge of a window?)")
    return None


def _periodic(mismatch):
    for axis in range(mismatch.ndim):
        n = mismatch.shape[axis]
        hit = np.flatnonzero(mismatch.any(axis=tuple(k for k in range(mismatch.ndim) if k != axis)))
        for period in (2, 3):
            if n >= 2 * period and len(hit) > 1 and len(set(hit % period)) == 1:
                return (f"errors only at every {period}th index of axis {axis} (indices "
                        f"{', '.join(map(str, hit[:6]))}{', …' if len(hit) > 6 else ''}): "
                        "where overlapping windows meet, or a stride?")
    return None


def _subset(mismatch, batch_axes):
    for axis in range(mismatch.ndim):
        n = mismatch.shape[axis]
        if n < 2:
            continue
        hit = np.flatnonzero(mismatch.any(axis=tuple(k for k in range(mismatch.ndim) if k != axis)))
        # Systematic: the slices that have errors are mostly wrong, the others all right.
        dense = np.take(mismatch, hit, axis=axis).mean() >= 0.75 if len(hit) else False
        if dense and 0 < len(hit) < n and len(hit) <= max(1, n // 2):
            where = ("examples of the batch?" if axis in batch_axes
                     else "examples, channels or units?")
            return (f"errors only at {'index' if len(hit) == 1 else 'indices'} "
                    f"{', '.join(map(str, hit[:6]))} of axis {axis} ({len(hit)} of {n}: {where})")
    return None


def _constant_difference(a, r, label):
    """The difference ``a - r`` is the same along an axis: a term of a sum or mean missing."""
    diff = a - r
    scale = float(np.max(np.abs(diff), initial=0.0))
    if a.ndim < 2 or scale == 0.0:
        return None
    for axis in range(a.ndim):
        n = a.shape[axis]
        spread = np.max(diff, axis=axis) - np.min(diff, axis=axis)
        if n > 1 and float(np.max(spread)) <= _MATCH * 1e3 * scale:
            return (f"analytic − {label} is the same along axis {axis} ({n} entries each): a "
                    f"term of a sum or mean over axis {axis} is missing or extra (the gradient "
                    "through a mean, as in batch or layer norm?)")
    return None


def _affine_in_values(a, r, values, label):
    """Along an axis, ``a - r`` is ``α + β · values`` in each slice: mean and variance terms."""
    if values is None or np.shape(values) != a.shape or a.ndim < 2:
        return None
    diff = a - r
    scale = float(np.max(np.abs(diff), initial=0.0))
    if scale == 0.0:
        return None
    v = np.asarray(values, dtype=np.float64)
    for axis in range(a.ndim):
        n = a.shape[axis]
        if n < 3:
            continue
        d_rows = np.moveaxis(diff, axis, -1).reshape(-1, n)
        v_rows = np.moveaxis(v, axis, -1).reshape(-1, n)
        v_centered = v_rows - v_rows.mean(axis=1, keepdims=True)
        d_centered = d_rows - d_rows.mean(axis=1, keepdims=True)
        var = np.sum(v_centered ** 2, axis=1, keepdims=True)
        beta = np.divide(np.sum(v_centered * d_centered, axis=1, keepdims=True), var,
                         out=np.zeros_like(var), where=var > 0)
        residual = d_centered - beta * v_centered
        if float(np.max(np.abs(residual))) <= _MATCH * 1e3 * scale and np.any(beta != 0):
            return (f"analytic − {label} is, along axis {axis}, a constant plus a multiple of "
                    "the input in every slice: terms through a mean or a variance over "
                    f"axis {axis} are missing or wrong (a normalization's statistics treated "
                    "as constants, or a term of their backward forgotten?)")
    return None


def _zeros(a, r, mismatch, label):
    """Entries where one side is exactly 0 and the other is not: a contribution lost or misplaced."""
    lost = mismatch & (a == 0) & (r != 0)
    extra = mismatch & (r == 0) & (a != 0)
    count = int(mismatch.sum())
    if lost.sum() * 2 >= count:
        return (f"analytic is 0 at {int(lost.sum())} of the {count} wrong entries where "
                f"{label} is not: a contribution never written, or overwritten (= where += "
                "belongs?)")
    if extra.sum() * 2 >= count:
        return (f"{label} is 0 at {int(extra.sum())} of the {count} wrong entries where "
                "analytic is not: gradient sent where the output does not depend on it")
    return None


def _overall(a, r, mismatch, label):
    """What is left to say: how many entries, how far, and whether too large or too small."""
    count = int(mismatch.sum())
    ratio = np.abs(a[mismatch]) / np.maximum(np.abs(r[mismatch]), np.finfo(np.float64).tiny)
    larger = int(np.count_nonzero(ratio > 1))
    same_sign = int(np.count_nonzero(np.sign(a[mismatch]) == np.sign(r[mismatch])))
    return (f"{count} of {mismatch.size} entries differ: analytic is larger in magnitude at "
            f"{larger} of them and has {label}'s sign at {same_sign}; the formula itself "
            "differs (a term missing, extra or of the wrong quantity?)")


def diagnose(analytic, reference, mismatch, *, sizes=(), batch_axes=(), label="numeric",
             values=None):
    """Return sentences describing how ``analytic`` differs from ``reference``.

    Parameters
    ----------
    analytic, reference : ndarray, same shape
    mismatch : ndarray of bool, same shape
        Entries over the tolerance.
    sizes : sequence of (str, int)
        Named sizes a constant factor may be (``("x.shape[1]", 5)``).
    batch_axes : sequence of int
        Axes that may hold the examples of a batch.
    label : str
        What the reference is called in sentences (``"numeric"``, ``"torch"``).
    values : ndarray, same shape, optional
        The tensor's own values (for patterns in terms of the input).

    Returns
    -------
    list of str
        Empty when nothing is recognized.
    """
    a, r = np.asarray(analytic, np.float64), np.asarray(reference, np.float64)
    # In units of the largest magnitude: the patterns do not depend on it, and the
    # sums of squares below cannot overflow for gradients near 1e300.
    unit = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(r), initial=0.0)))
    if np.isfinite(unit) and unit > 0:
        a, r = a / unit, r / unit
    count = int(mismatch.sum())
    if count == 0:
        return []
    whole = _factor(a, r, sizes, label) or _permuted(a, r, label) or _shifted(a, r, label)
    if whole:
        return [whole]
    found = []
    if count > 2:   # patterns need a few entries to mean anything
        subset = _subset(mismatch, batch_axes)
        found = [p for p in (subset, _periodic(mismatch), None if subset else _borders(mismatch),
                             _constant_difference(a, r, label)
                             or _affine_in_values(a, r, values, label),
                             _zeros(a, r, mismatch, label))
                 if p]
    if count <= _MAX_LISTED and count < mismatch.size:
        entries = ", ".join(str(tuple(int(i) for i in idx)) for idx in np.argwhere(mismatch))
        found.append(f"only {count} {'entry' if count == 1 else 'entries'} wrong: {entries}")
    if not found:
        found.append(_overall(a, r, mismatch, label))
    return found
