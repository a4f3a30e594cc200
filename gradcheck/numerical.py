"""Numerical gradients of a scalar projection, by several methods.

For a function ``y = f(x)`` and a fixed upstream gradient ``G`` (same shape as
``y``), the scalar ``J(x) = <G, f(x)> = Σ G ⊙ f(x)`` has gradient
``dJ/dx = J_fᵀ G``: exactly what a backward pass returns when handed ``G``.
So one scalar's gradient checks the backward pass without ever forming the
Jacobian of ``f``.

- :func:`central_difference`: every entry, ``2`` forward calls each.
- :func:`complex_step`: every entry, ``1`` call each, exact to rounding, for
  forwards that accept complex input (``Im J(x + i h e_k) / h``).
- :func:`directional_difference`: one random direction, ``2`` calls in all.
- :func:`grouped_difference`: every entry, perturbing groups of entries that
  affect disjoint outputs at once (verified), ``2`` or ``4`` calls per group.
- :func:`refine`: a closer look at one entry (or direction) that disagrees:
  is it a point where ``J`` is not differentiable (a kink), and if not, a
  higher-order (Richardson) estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["STEP", "COMPLEX_STEP", "central_difference", "complex_step", "measure_noise",
           "diagonal_difference",
           "directional_difference", "entry_probe", "direction_probe", "refine", "Refinement",
           "grouped_difference", "Grouped"]

#: Relative step of the central difference, ``cbrt(eps) ≈ 6.06e-6`` for float64.
#: Its error is truncation ``h² |J'''| / 6`` plus rounding ``≈ u |J| / h``
#: (``u = eps/2``); the sum is smallest near ``h = (3u)^(1/3) ≈ 7e-6``, where
#: both are ``~1e-11`` for a function of unit scale. The step is scaled by
#: ``max(1, |x_i|)`` so that it stays above the spacing of large entries.
STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))
#: Imaginary step of the complex step: any tiny number works, since no
#: difference is taken; 1e-30 keeps ``h²`` terms far below float64 resolution.
COMPLEX_STEP = 1e-30


#: A step is at least this many spacings of the array's own dtype at the
#: value: a float16 input in a float64 layer cannot move by 6e-6, and a step
#: that rounds to nothing would divide 0 by 0; 8 spacings leave h/2 (the
#: refinement's inner step) 4 spacings.
_MIN_SPACINGS = 8


def _step(step, magnitude, dtype, scale=None):
    """``step · max(1, |v|)`` (or ``step · scale``), never below what ``dtype`` can hold at ``v``."""
    h = step * (np.maximum(1.0, magnitude) if scale is None else scale)
    if np.issubdtype(dtype, np.floating) and np.finfo(dtype).eps > np.finfo(np.float64).eps:
        h = np.maximum(h, _MIN_SPACINGS * np.spacing(np.asarray(magnitude, dtype=dtype))
                       .astype(np.float64))
    return h


def _project(dout, y_a, y_b):
    """``<dout, y_a - y_b>``: outputs subtracted before projecting (no cancellation of sums)."""
    return float(np.sum(dout * (y_a - y_b)))


def _evaluate_at(evaluate, array, index, value):
    """Return ``evaluate()`` with ``array[index] = value``, and the value actually stored."""
    original = array[index]
    try:
        array[index] = value
        stored = array[index]
        return evaluate(), stored
    finally:
        array[index] = original


def _entry_stencils(evaluate, array, step, scale=None):
    """Yield ``(k, index, y⁺, y⁻, x⁺ - x⁻)`` for every entry (C order), moved to ``v ± h``.

    ``h`` as :func:`_step` gives it (``scale[index]`` when a scale is given);
    the width is that of the values actually stored. Each entry is written
    back bit for bit before the next.
    """
    for k, index in enumerate(np.ndindex(array.shape)):
        original = array[index]
        h = float(_step(step, abs(float(original)), array.dtype,
                        None if scale is None else scale[index]))
        y_plus, x_plus = _evaluate_at(evaluate, array, index, original + h)
        y_minus, x_minus = _evaluate_at(evaluate, array, index, original - h)
        yield k, index, y_plus, y_minus, float(x_plus) - float(x_minus)


def central_difference(evaluate, array, dout, *, step=STEP, scale=None, rounding=None):
    """Return ``d<dout, evaluate()>/d array`` by central differences, entry by entry.

    Each entry ``array[i]`` is moved to ``array[i] ± h_i`` in place, with
    ``h_i = step · max(1, |array[i]|)``, ``evaluate()`` is called at both points,
    and the entry is then written back to its original value (bit for bit).
    The estimate is ``<dout, y⁺ - y⁻> / (x⁺ - x⁻)``, with the step actually
    representable in the array's dtype.

    Parameters
    ----------
    evaluate : callable
        ``evaluate() -> ndarray`` of ``dout``'s shape; it must read ``array``.
    array : ndarray, any shape, floating
        Perturbed in place and restored.
    dout : ndarray, the shape of ``evaluate()``'s output
    step : float
        Relative step; see :data:`STEP`.
    scale : ndarray of ``array.shape``, optional
        Each entry's own scale: ``h_i = step · scale[i]`` instead (steps
        relative to small values, or shrunk away from a domain edge).
    rounding : ndarray of ``array.shape``, optional
        Filled, entry by entry, with ``(Σ|dout ⊙ y| + Σ|dout|) / h_i`` over
        the outputs the entry moved (the others are equal bit for bit in
        ``y⁺`` and ``y⁻`` and add no rounding): times ``c · u``, the
        resolution of that entry's estimate.

    Returns
    -------
    grad : ndarray, float64, shape ``array.shape``
    calls : int
        Number of calls to ``evaluate`` (``2 · array.size``).
    """
    grad = np.empty(array.shape, dtype=np.float64)
    for _, index, y_plus, y_minus, width in _entry_stencils(evaluate, array, step, scale):
        grad[index] = _project(dout, y_plus, y_minus) / width
        if rounding is not None:
            moved = y_plus != y_minus
            g = np.abs(np.reshape(dout, -1)[np.reshape(moved, -1)])
            size = np.abs(np.reshape(y_plus, -1)[np.reshape(moved, -1)])
            with np.errstate(over="ignore"):      # huge outputs: capped, never inf
                total = (np.sum(g * size) + np.sum(g)) / (width / 2)
            rounding[index] = min(float(total), float(np.finfo(np.float64).max))
    return grad, 2 * array.size


def diagonal_difference(evaluate, array, dout, *, step=STEP):
    """Return ``dout_i · ∂y_i/∂x_i`` for every entry: the Jacobian's diagonal, times ``dout``.

    For a function whose output has as many entries as ``array`` (an
    activation, a softmax, a normalization): what a backward that treats the
    Jacobian as diagonal returns. Central differences, 2 calls per entry.

    Returns
    -------
    ndarray, float64, shape ``array.shape``
    """
    flat_dout = np.reshape(dout, -1)
    diagonal = np.empty(array.shape, dtype=np.float64)
    for k, index, y_plus, y_minus, width in _entry_stencils(evaluate, array, step):
        change = np.reshape(y_plus, -1)[k] - np.reshape(y_minus, -1)[k]
        diagonal[index] = flat_dout[k] * change / width
    return diagonal


def complex_step(evaluate, array, dout, *, step=COMPLEX_STEP):
    """Return ``d<dout, evaluate()>/d array`` by the complex step, entry by entry.

    ``array`` must be complex (a complex copy of the real tensor): each entry
    gets ``+ i·h`` in turn and the derivative is ``Im <dout, y> / h``. There is
    no subtraction, so the result is exact up to the rounding of the forward
    itself (~1e-16 relative), for any ``h``; the forward must compute the
    holomorphic extension of the real function (no ``abs``, ``conj``, or
    comparisons of complex numbers).

    Returns
    -------
    grad : ndarray, float64, shape ``array.shape``
    calls : int
        ``array.size``.
    """
    grad = np.empty(array.shape, dtype=np.float64)
    for index in np.ndindex(array.shape):
        y, _ = _evaluate_at(evaluate, array, index, array[index] + 1j * step)
        grad[index] = float(np.sum(dout * y.imag)) / step
    return grad, array.size


def directional_difference(evaluate, array, dout, direction, *, step=STEP, complex_=False):
    """Return the derivative of ``<dout, evaluate()>`` along ``direction`` (2 calls; 1 if complex).

    ``array`` moves to ``array ± h · direction`` in place (restored bit for
    bit), with ``h = step · max(1, max|array|)``; ``direction`` should have
    ``max|direction| = 1``. With ``complex_``, ``array`` is complex and the
    derivative is ``Im <dout, y(array + i h direction)> / h``.

    Returns
    -------
    derivative : float
    calls : int
    """
    original = array.copy()
    try:
        if complex_:
            array += 1j * COMPLEX_STEP * direction
            y = evaluate()
            return float(np.sum(dout * y.imag)) / COMPLEX_STEP, 1
        h = float(_step(step, float(np.max(np.abs(original), initial=0.0)), array.dtype))
        array += h * direction
        y_plus = evaluate()
        np.copyto(array, original)
        array -= h * direction
        y_minus = evaluate()
        return _project(dout, y_plus, y_minus) / (2 * h), 2
    finally:
        np.copyto(array, original)


@dataclass(frozen=True)
class Refinement:
    """What a closer look at one entry found.

    Attributes
    ----------
    kink : bool
        ``J`` is not differentiable at (or within a step of) this point: its
        one-sided slopes disagree by more than curvature can explain.
    estimate : float
        For a smooth entry, the Richardson-extrapolated central difference
        (error ``O(h⁴)``); for a kink, the mean of the one-sided slopes.
    low, high : float
        The range of the one-sided slopes: at a kink, any value in it is a
        valid (sub)gradient.
    calls : int
    moved : ndarray of bool or None
        The outputs that changed in any of the probes: the entry's footprint
        (tie sets are entries of equal value whose footprints meet).
    """

    kink: bool
    estimate: float
    low: float
    high: float
    calls: int
    moved: object = None


def entry_probe(evaluate, array, index, step=STEP, scale=None):
    """Return ``(probe, h)`` for :func:`refine`: ``probe(t)`` evaluates with ``array[index] += t``.

    ``h = step · max(1, |v|)``, or ``step · scale`` when a scale is given.
    """
    original = array[index]

    def probe(t):
        y, stored = _evaluate_at(evaluate, array, index, original + t)
        return y, float(stored) - float(original)

    return probe, float(_step(step, abs(float(original)), array.dtype, scale))


def direction_probe(evaluate, array, direction, step=STEP):
    """Return ``(probe, h)`` for :func:`refine`: ``probe(t)`` evaluates at ``array + t · direction``."""
    original = array.copy()

    def probe(t):
        try:
            np.add(original, t * direction, out=array)
            return evaluate(), t
        finally:
            np.copyto(array, original)

    return probe, float(_step(step, float(np.max(np.abs(original), initial=0.0)), array.dtype))


def refine(probe, h, dout, y0, *, noise=0.0):
    """Look closer at one entry (or direction): a kink, or a smooth point with a better estimate?

    Evaluates ``Δ(t) = <dout, y(t) - y0>`` at ``t = ±h/2, ±h`` (4 calls) through
    ``probe(t) -> (y, t_actual)``, and the one-sided slopes ``Δ(t)/t``. A kink
    at the point shows as a jump between the left and right slopes that the
    bend along each side (``J''``) cannot explain; a kink within a step of the
    point, as a least-squares residual of ``Δ(t) ≈ a t + b t²`` above both
    ``1e-3 · h ·`` (largest slope) and ``100 ·`` the rounding noise of ``Δ``
    (a smooth ``J`` leaves ``O(h³)``). For a smooth point the estimate is
    Richardson's ``(4 D(h/2) - D(h)) / 3`` on the central differences ``D``,
    whose error is ``O(h⁴)``.

    Parameters
    ----------
    probe : callable
        From :func:`entry_probe` or :func:`direction_probe`.
    h : float
        Step.
    dout : ndarray
        The upstream gradient.
    y0 : ndarray
        The output at the unperturbed point.
    noise : float
        Absolute rounding noise of ``Δ``.

    Returns
    -------
    Refinement
    """
    ts, deltas = [], []
    moved = np.zeros(np.shape(y0), dtype=bool)
    for t in (-h, -h / 2, h / 2, h):
        y, t_actual = probe(t)
        ts.append(t_actual)
        deltas.append(_project(dout, y, y0))
        moved |= y != y0
    t, d = np.array(ts), np.array(deltas)
    slopes = d / t          # one-sided: left at h, left at h/2, right at h/2, right at h
    # A kink at the point: the one-sided slopes jump between the sides while
    # each side is straight. Smooth: the jump (h/2)·J'' is twice the change
    # along a side (h/4)·J'', so 8x that change never reads as a jump.
    jump = abs(slopes[2] - slopes[1])
    bend = abs(slopes[3] - slopes[2]) + abs(slopes[1] - slopes[0])
    kink_here = jump > 8 * bend + 8 * noise / (h / 2)
    # A kink within a step of the point: Δ is no longer quadratic.
    # The fit in units of the largest change and of h, so that neither huge changes
    # (exp at large arguments: its squares overflow) nor tiny ones lose the test.
    size = max(float(np.max(np.abs(d))), np.finfo(np.float64).tiny)
    basis = np.stack([t / h, (t / h) ** 2], axis=1)
    fit, *_ = np.linalg.lstsq(basis, d / size, rcond=None)
    residual = float(np.linalg.norm(d / size - basis @ fit))
    kink_near = residual > max(1e-3 * h * float(np.max(np.abs(slopes))), 100 * noise) / size
    kink = kink_here or kink_near
    central_h = (d[3] - d[0]) / (t[3] - t[0])
    central_half = (d[2] - d[1]) / (t[2] - t[1])
    estimate = float(np.mean(slopes)) if kink else (4 * central_half - central_h) / 3
    return Refinement(kink=bool(kink), estimate=float(estimate), low=float(slopes.min()),
                      high=float(slopes.max()), calls=4, moved=moved)


def measure_noise(evaluate, array, dout, direction, h, y0):
    """Return the rounding noise of ``<dout, evaluate()>``, measured, not assumed.

    Evaluates at ``array + i h direction`` for ``i = -4..4`` (8 calls; ``y0`` is
    the output at ``i = 0``) and takes the differences of order ``k = 3..6`` of
    the outputs, projected on ``dout``: for a smooth function and a tiny ``h``
    their smooth part (``h^k J^(k)``) vanishes, and what is left is the jitter
    of rounding. With ``γ_k = (k!)² / (2k)!``, ``sqrt(γ_k mean((Δ^k J)²))`` is the
    standard deviation of that noise for every ``k`` (Moré and Wild's ECnoise,
    2011); their median is returned. A kink within ``4h`` only makes it larger.
    """
    original = array.copy()
    ys = []
    try:
        for i in range(-4, 5):
            if i == 0:
                ys.append(np.asarray(y0))
                continue
            np.add(original, i * h * direction, out=array)
            ys.append(evaluate())
    finally:
        np.copyto(array, original)
    diffs = np.stack(ys)
    sigmas = []
    for k in range(1, 7):
        diffs = np.diff(diffs, axis=0)
        projected = diffs @ np.reshape(dout, -1)
        gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
        if k >= 3:
            size = float(np.max(np.abs(projected), initial=0.0))
            spread = float(np.mean((projected / size) ** 2)) if size > 0 else 0.0
            sigmas.append(size * math.sqrt(gamma * spread))
    return float(np.median(sigmas))


@dataclass(frozen=True)
class Grouped:
    """What :func:`grouped_difference` found.

    Attributes
    ----------
    grad : ndarray or None
        The gradient, or None when some output was affected by two entries of
        one group (the grouping was wrong; nothing is assumed then).
    calls : int
    groups : int
    """

    grad: object
    calls: int
    groups: int


_MAX_GROUP = 10_000
#: Unmatched outputs up to which a large group is halved rather than given up.
_BISECT_OUTPUTS = 64


def _owner_steps(count):
    """Distinct step multipliers in [1, 2): an output's ratio of two probes names its owner."""
    return 1.0 + (np.arange(count) + 0.5) / count


def grouped_difference(evaluate, array, dout, colors, *, step=STEP, complex_=False):
    """Return the gradient of ``<dout, evaluate()>`` perturbing a whole group of entries at once.

    Entries of one color are meant to affect disjoint sets of outputs (the
    Curtis–Powell–Reid grouping of the columns of a sparse Jacobian): then
    one perturbation of the whole group gives, output by output, the
    derivative with respect to the one entry that affects it. Which entry
    that is comes from a second probe in which entry ``i`` moves by
    ``r_i`` times its step, all ``r_i`` distinct: the ratio of an output's two
    changes is the ``r`` of its owner. An output whose ratio matches no entry
    was moved by two of them: the grouping is wrong and ``grad`` is None, so a
    wrong guess costs calls, never correctness. Outputs that do not move
    have no owner and add nothing.

    Each group costs 2 forward calls with the complex step (``array`` complex),
    4 with central differences.

    Parameters
    ----------
    evaluate, array, dout
        As for :func:`central_difference` (or :func:`complex_step`).
    colors : ndarray of int, shape ``array.shape``
        The group of each entry.
    step : float
    complex_ : bool

    Returns
    -------
    Grouped
    """
    flat_colors = np.asarray(colors).reshape(-1)
    grad = np.zeros(array.size, dtype=np.float64)
    flat = array.reshape(-1) if array.flags.c_contiguous else None
    index = None if flat is not None else np.unravel_index(np.arange(array.size), array.shape)
    order = np.argsort(flat_colors, kind="stable")
    bounds = np.flatnonzero(np.diff(flat_colors[order])) + 1
    groups = np.split(order, bounds) if array.size else []
    # The multipliers of a group are 1/size apart: keep that well above the match tolerance.
    stack = [(chunk, False) for g in groups
             for chunk in np.array_split(g, -(-len(g) // _MAX_GROUP))]
    original = array.copy()
    calls = 0

    def probe(members, scale):
        """Perturb ``members`` by ``scale`` times their steps; return (change, steps, noise)."""
        nonlocal calls
        where = members if flat is not None else tuple(axis[members] for axis in index)
        target = flat if flat is not None else array
        base = original.reshape(-1)[members] if flat is not None else original[where]
        try:
            if complex_:
                target[where] = base + 1j * COMPLEX_STEP * scale
                calls += 1
                y = evaluate()
                t = COMPLEX_STEP * scale * np.ones(len(members))
                # Cancellation inside the forward leaves ~eps of its largest terms:
                # the imaginary parts, and the output itself times the step (a
                # saturated softmax computes s(1 - s) from s ≈ 1).
                noise = 4 * np.finfo(np.float64).eps * (
                    np.abs(y.real) * np.max(t) + np.max(np.abs(y.imag), initial=0.0))
                return y.imag, t, noise
            h = _step(step, np.abs(base.real), array.dtype) * scale
            target[where] = base + h
            plus = target[where].copy()
            y_plus = evaluate()
            target[where] = base - h
            minus = target[where].copy()
            y_minus = evaluate()
            calls += 2
            noise = 4 * np.finfo(np.float64).eps * (np.abs(y_plus) + np.abs(y_minus))
            return y_plus - y_minus, (plus - minus).real, noise
        finally:
            np.copyto(array, original)

    while stack:
        members, halved = stack.pop()
        # Both probes move the entries by distinct multiples of their steps (the
        # second in reverse order): a probe moving all of them alike could be a
        # direction the layer ignores (a softmax shifted by a constant).
        r = _owner_steps(len(members))
        d1, t1, noise = probe(members, r)
        d2, t2, _ = probe(members, r[::-1])
        moved = d1 != 0
        ratios = t2 / t1
        if len(members) == 1:      # one entry: its change is its own, however it bends
            grad[members] += np.sum(dout[moved] * d1[moved]) / t1[0]
            continue
        # An output moved by two entries has a ratio between theirs, a weighted
        # mean; it passes for a single owner only by landing within 1e-6 of one
        # (a chance of ~1e-6 per member). A change carries rounding: of the
        # outputs a central difference subtracts, or ~eps of the largest terms
        # for the complex step. Where that is over 1e-7 of the change (an
        # output that barely moves, or a saturated one) the ratio cannot name
        # an owner to 1e-6, and the output goes to the nearest one (its share
        # is small, and an entry it puts over tolerance gets a second look one
        # entry at a time); the other outputs must match to 1e-6.
        ratio = d2[moved] / d1[moved] if moved.any() else np.zeros(0)
        sort = np.argsort(ratios)
        pos = np.clip(np.searchsorted(ratios[sort], ratio), 1, len(r) - 1)
        left, right = ratios[sort][pos - 1], ratios[sort][pos]
        owner = sort[np.where(np.abs(ratio - left) <= np.abs(ratio - right), pos - 1, pos)]
        # Rounding noise, and never below the normal range (subnormal changes
        # carry few digits).
        noise = np.maximum(np.broadcast_to(noise, d1.shape), np.finfo(np.float64).tiny)
        # Central differences get a wider margin: the rounding they subtract is
        # estimated from the outputs, and a forward that cancels larger terms
        # (batch norm's mean of shifted inputs) rounds a few times more.
        margin = 1e7 if complex_ else 1e8
        clear = np.abs(d1[moved]) >= margin * noise[moved]
        wrong = clear & (np.abs(ratio - ratios[owner]) > 1e-6 * ratios[owner])
        # An output still in one probe but clearly moved in the other: two entries
        # cancelled (a saturated output that rounds to no change at all is not that).
        cancelled = (d1 == 0) & (np.abs(d2) >= margin * noise)
        wrong_count = int(wrong.sum()) + int(np.count_nonzero(cancelled))
        if wrong_count:
            # A few unmatched outputs among many (at most 1 %, and 64) may be
            # kinks within a step of some entries (their change bends with the
            # step); more mean the entries share outputs. Halving the group
            # tells them apart: a kink ends in a group of one, which is exact
            # whatever it shares; a small group is not worth halving.
            if not halved and wrong_count > min(_BISECT_OUTPUTS, int(moved.sum()) // 100):
                return Grouped(grad=None, calls=calls, groups=len(groups))
            half = len(members) // 2
            stack += [(members[:half], True), (members[half:], True)]
            continue
        contribution = dout[moved] * d1[moved] / t1[owner]
        grad[members] += np.bincount(owner, weights=contribution, minlength=len(members))
    return Grouped(grad=grad.reshape(array.shape), calls=calls, groups=len(groups))
