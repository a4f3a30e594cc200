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
           "measure_complex_noise",
           "diagonal_difference",
           "directional_difference", "entry_probe", "direction_probe", "refine", "Refinement",
           "grouped_difference", "Grouped", "discover_coloring", "extension_matches", "smooth_outputs",
           "probe_group", "GroupProbe", "MAX_GROUP"]

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


def smooth_outputs(y_plus, y_minus, y0, bend=1e-3):
    """Outputs whose change across ``±h`` is straight to ``O(h²)``: no kink within the step.

    ``y_plus + y_minus - 2 y0`` is ``h² · (curvature)`` for a smooth output,
    ``~h · (jump in slope)`` for one bent by a kink within the step (a ReLU
    input within ``h`` of 0): an output whose bend exceeds 1e-3 of its change
    (and its rounding) is not smooth. Leaving a smooth output out wrongly is
    harmless where this is used (out of both sides of a comparison).

    Parameters
    ----------
    y_plus, y_minus, y0 : ndarray, shape (m,)
    bend : float
        The bend, relative to the change, above which an output is not
        smooth. At a step ``10^4`` times smaller, 1e-7 still flags a tie whose
        entries move almost alike (its bend is the same fraction of its change
        at any step), and no smooth output.

    Returns
    -------
    ndarray of bool, shape (m,)
    """
    eps = np.finfo(np.float64).eps
    bent = np.abs(y_plus + y_minus - 2 * y0)
    rounding = 4 * eps * (np.abs(y_plus) + np.abs(y_minus) + 2 * np.abs(y0))
    return bent <= bend * np.abs(y_plus - y_minus) + 100 * rounding


def extension_matches(y_complex, y_plus, y_minus, h, y0):
    """Whether a complex step along a direction gives every output's derivative central
    differences give along it.

    ``y_complex`` is ``y(x + i COMPLEX_STEP d)``, ``y_plus``/``y_minus`` are
    ``y(x ± h d)``. Where the forward computes its holomorphic extension, the
    two agree to the central difference's error: truncation ``O(h²)``
    (~1e-10 relative, 1e-7 allowed for large third derivatives) and the
    rounding of its outputs (``eps |y| / h``, 100× allowed). A forward that
    is not (``abs``, a cast, ``conj``) gives an output's derivative wrong by
    its own size; outputs below 1e-8 of the largest derivative are not judged,
    nor those a kink within the step bends (:func:`smooth_outputs`), where
    central differences are wrong; with none left, the answer is no.

    Parameters
    ----------
    y_complex : ndarray of complex, shape (m,)
    y_plus, y_minus, y0 : ndarray, shape (m,)
    h : float

    Returns
    -------
    bool
    """
    eps = np.finfo(np.float64).eps
    smooth = smooth_outputs(y_plus, y_minus, y0)
    exact = y_complex.imag[smooth] / COMPLEX_STEP
    central = (y_plus[smooth] - y_minus[smooth]) / (2 * h)
    rounding = 8 * eps * (np.abs(y_plus[smooth]) + np.abs(y_minus[smooth])) / (2 * h)
    allowed = (1e-7 * np.abs(central) + 1e-8 * np.max(np.abs(central), initial=0.0)
               + 100 * rounding)
    return bool(smooth.any() and np.all(np.abs(exact - central) <= allowed))


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


def direction_probe(evaluate, array, direction, step=STEP, scale=None):
    """Return ``(probe, h)`` for :func:`refine`: ``probe(t)`` evaluates at ``array + t · direction``.

    ``h`` is ``step · max(1, max|array|)``, or ``step · scale`` when ``scale`` is given.
    """
    original = array.copy()

    def probe(t):
        try:
            np.add(original, t * direction, out=array)
            return evaluate(), t
        finally:
            np.copyto(array, original)

    return probe, float(_step(step, float(np.max(np.abs(original), initial=0.0)), array.dtype,
                              scale))


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
    noise : float or ndarray
        Absolute rounding noise of ``Δ``; or, per output, the rounding of
        ``dout ⊙ y``, of which the outputs the probes moved are summed (an
        entry that moves one output of 10^6 rounds like one output).

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
    if np.ndim(noise):       # per output: the rounding of the outputs this probe moved
        noise = float(np.sum(noise[moved]))
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


def measure_complex_noise(evaluate, array, dout, direction):
    """Return the rounding noise of the complex step's ``<dout, J direction>``, measured.

    ``array`` is complex. The derivative along ``direction`` is taken at four
    imaginary steps that are not powers of two apart, 1, 0.71, 1.37 and 0.53
    times :data:`COMPLEX_STEP` (4 calls): the complex
    step takes no difference, so they agree but for the rounding inside the
    forward (terms of size 1 that cancel: a saturated softmax computes
    ``s(1 - s)`` from ``s ≈ 1``), whose pattern changes with the step's
    mantissa. Their standard deviation is returned: for a forward that adds a
    large constant, which the outputs' size would wrongly call noisy, only
    the rounding of the projection on ``dout`` (~eps Σ|dout|).
    """
    original = array.copy()
    values = []
    try:
        for factor in (1.0, 0.71, 1.37, 0.53):
            h = factor * COMPLEX_STEP
            np.add(original, 1j * h * direction, out=array)
            values.append(float(np.sum(np.reshape(dout, -1) * np.reshape(evaluate(), -1).imag))
                          / h)
    finally:
        np.copyto(array, original)
    return float(np.std(values))


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
    blameless : bool
        When ``grad`` is None: no output showed the grouping wrong. Every
        output that refused it was bent by a kink or a tie within the step, or
        too much of the change sat in outputs too noisy to name their owner
        (a saturated softmax): the grouping may well be right.
    """

    grad: object
    calls: int
    groups: int
    blameless: bool = False


MAX_GROUP = 10_000
#: Unmatched outputs up to which a large group is halved rather than given up.
_BISECT_OUTPUTS = 64


def _owner_steps(count):
    """Step multipliers of a group's two probes: ``r`` distinct in [1, 2), and ``s`` = ``r``
    rolled by half the group, so that no entry keeps its multiplier.

    An output's ratio of its two changes names its owner, ``s_k / r_k``;
    these are distinct (above 1 in one half, below in the other, monotone in
    each), at least ~``1/(8 count)`` apart. An output moved alike by every
    entry (a sum) changes by ``Σ s = Σ r``, ratio 1: no entry has it.
    """
    r = 1.0 + (np.arange(count) + 0.5) / count
    return r, np.roll(r, count // 2)


def grouped_difference(evaluate, array, dout, colors, *, step=STEP, complex_=False, y0=None,
                       rounding=None):
    """Return the gradient of ``<dout, evaluate()>`` perturbing a whole group of entries at once.

    Entries of one color are meant to affect disjoint sets of outputs (the
    Curtis–Powell–Reid grouping of the columns of a sparse Jacobian): then
    one perturbation of the whole group gives, output by output, the
    derivative with respect to the one entry that affects it. Which entry
    that is comes from a second probe in which entry ``k`` moves by another
    multiple ``s_k`` of its step than in the first (``r_k``): the ratio of an
    output's two changes is its owner's ``s_k / r_k``. An output whose ratio
    matches no entry was moved by two of them: the grouping is wrong and
    ``grad`` is None, so a wrong guess costs calls, never correctness.
    Outputs that do not move have no owner and add nothing.

    Each group costs 2 forward calls with the complex step (``array``
    complex: the imaginary parts at ``r`` and at ``s``), 3 with central
    differences: ``y(x + r h)`` and ``y(x - r h)`` give the central
    difference and the output's curvature, ``y(x + s h)`` against ``y0`` the
    second change, whose ratio is corrected for that curvature (exact to
    O(h²), as the central difference itself).

    Parameters
    ----------
    evaluate, array, dout
        As for :func:`central_difference` (or :func:`complex_step`).
    colors : ndarray of int, shape ``array.shape``
        The group of each entry.
    step : float
    complex_ : bool
    y0 : ndarray, optional
        ``evaluate()`` at ``array`` (one call saved); central differences only.
    rounding : ndarray of ``array.shape``, optional
        Central differences: filled as by :func:`central_difference`, each
        entry's ``(Σ|dout ⊙ y| + Σ|dout|) / h`` over the outputs it owns.

    Returns
    -------
    Grouped
    """
    flat_colors = np.asarray(colors).reshape(-1)
    groups = _groups(flat_colors) if array.size else []
    # The multipliers of a group are 1/size apart: keep that well above the match tolerance.
    stack = [(chunk, False) for g in groups
             for chunk in np.array_split(g, -(-len(g) // MAX_GROUP))]
    prober = _GroupProber(evaluate, array, step, complex_)
    if not complex_ and y0 is None:
        y0 = prober.call()
    grad = np.zeros(array.size, dtype=np.float64)
    while stack:
        members, halved = stack.pop()
        found = probe_group(prober, members, dout, y0)
        if found.wrong:
            # A few unmatched outputs among many (at most 1 %, and 64) may be
            # kinks within a step of some entries (their change bends with the
            # step); more mean the entries share outputs. Halving the group
            # tells them apart: a kink ends in a group of one, which is exact
            # whatever it shares; a small group is not worth halving.
            if not halved and not found.few_wrong:
                return Grouped(grad=None, calls=prober.calls, groups=len(groups),
                               blameless=found.blameless)
            half = len(members) // 2
            stack += [(members[:half], True), (members[half:], True)]
            continue
        grad[members] += found.share
        if rounding is not None:
            rounding.reshape(-1)[members] += found.rounding
        # A member that owns no output may still move one that a much stronger
        # member of its group moves too (its share lost in the mixture, within
        # the match tolerance): the members that own nothing are probed again
        # together, without the others.
        idle = members[found.owned == 0]
        if 0 < len(idle) < len(members):
            stack.append((idle, True))
    return Grouped(grad=grad.reshape(array.shape), calls=prober.calls, groups=len(groups))


def _groups(flat_colors):
    """Flat indices of the entries of each color, colors in increasing order."""
    order = np.argsort(flat_colors, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(flat_colors[order])) + 1)


class _GroupProber:
    """Calls ``evaluate`` with a set of entries of ``array`` moved by multiples of their steps."""

    def __init__(self, evaluate, array, step, complex_):
        self.evaluate, self.array, self.step, self.complex_ = evaluate, array, step, complex_
        self.flat = array.reshape(-1) if array.flags.c_contiguous else None
        self.index = (None if self.flat is not None
                      else np.unravel_index(np.arange(array.size), array.shape))
        self.original = array.copy()
        self.calls = 0

    def call(self):
        self.calls += 1
        return self.evaluate()

    def moved(self, members, scale):
        """Outputs with ``members`` moved by ``scale`` times their steps, and the moves made.

        Central differences: real moves of ``scale · step · max(1, |v|)``, as
        represented (the difference of the floats). Complex step: imaginary
        moves of ``scale · COMPLEX_STEP``.
        """
        where = members if self.flat is not None else tuple(axis[members] for axis in self.index)
        target = self.flat if self.flat is not None else self.array
        base = (self.original.reshape(-1)[members] if self.flat is not None
                else self.original[where])
        try:
            if self.complex_:
                target[where] = base + 1j * COMPLEX_STEP * scale
                return self.call(), COMPLEX_STEP * scale
            target[where] = base + _step(self.step, np.abs(base.real), self.array.dtype) * scale
            return self.call(), (target[where] - base).real
        finally:
            target[where] = base


@dataclass(frozen=True)
class GroupProbe:
    """What one group's probes found: each member's share of ``<dout, J>``, or unmatched outputs.

    Attributes
    ----------
    share : ndarray, shape ``(members,)``
        The derivative of ``<dout, y>`` by each member (valid when ``wrong`` is 0).
    rounding : ndarray, shape ``(members,)``
        Central differences: each member's ``(Σ|dout ⊙ y| + Σ|dout|) / h``
        over the outputs it owns (see :func:`central_difference`); else zeros.
    wrong : int
        Outputs whose change matches no single member (moved by two of them).
    few_wrong : bool
        Whether those are few enough among the moved outputs (at most 1 %,
        and 64) to be kinks within a step rather than a wrong grouping.
    blameless : bool
        Whether no output is evidence that the grouping is wrong: every
        unmatched output is bent by a kink or a tie within the step (central
        differences), or the group was refused only because outputs too
        noisy to name an owner carry too much of the change.
    owned : ndarray of int, shape ``(members,)``
        The outputs each member was found to own.
    """

    share: np.ndarray
    wrong: int
    few_wrong: bool
    rounding: np.ndarray
    blameless: bool = False
    owned: np.ndarray | None = None


def _owners(ratio, ratios):
    """The member whose ratio is nearest each output's."""
    sort = np.argsort(ratios)
    if len(ratios) == 1:
        return np.zeros(len(ratio), dtype=np.int64)
    pos = np.clip(np.searchsorted(ratios[sort], ratio), 1, len(ratios) - 1)
    left, right = ratios[sort][pos - 1], ratios[sort][pos]
    return sort[np.where(np.abs(ratio - left) <= np.abs(ratio - right), pos - 1, pos)]


def probe_group(prober, members, dout, y0=None):
    """Probe one group of entries; return a :class:`GroupProbe`.

    Central differences: ``y(x + r h)``, ``y(x - r h)``, and (for two
    members or more) ``y(x + s h)`` against ``y0``, 3 calls. Complex step:
    the imaginary parts at ``r`` and (two members or more) ``s``, 2 calls.
    Multipliers from :func:`_owner_steps`. Past the calls, the work is on
    the outputs the probes moved only.
    """
    eps = np.finfo(np.float64).eps
    r, s = _owner_steps(len(members))
    if prober.complex_:
        y_r, t1 = prober.moved(members, r)
        d1 = y_r.imag
    else:
        y_plus, t_plus = prober.moved(members, r)
        y_minus, t_minus = prober.moved(members, -r)
        d1, t1 = y_plus - y_minus, t_plus - t_minus
    if not np.any(d1):          # nothing moved (a dead ReLU's inputs): nothing to attribute
        zeros = np.zeros(len(members))
        return GroupProbe(share=zeros, wrong=0, few_wrong=True, rounding=zeros,
                          owned=np.zeros(len(members), dtype=np.int64))
    if len(members) > 1:
        # Both probes move the entries by distinct multiples of their steps: a
        # probe moving all of them alike could be a direction the layer ignores
        # (a softmax shifted by a constant).
        y_s, t_s = prober.moved(members, s)
        e = y_s.imag if prober.complex_ else y_s - y0
        at = np.flatnonzero((d1 != 0) | (e != 0))
        e = e[at]
    else:
        at = np.flatnonzero(d1)
    d1, g = d1[at], dout[at]
    moved = d1 != 0
    if prober.complex_:
        # Cancellation inside the forward leaves ~eps of its largest terms:
        # the imaginary parts, and the output itself times the step (a
        # saturated softmax computes s(1 - s) from s ≈ 1).
        noise = 4 * eps * (np.abs(y_r.real[at]) * np.max(t1)
                           + np.max(np.abs(d1), initial=0.0))
        size = np.zeros(len(at))       # what rounding acts on (see central_difference)
    else:
        y_plus, y_minus = y_plus[at], y_minus[at]
        noise = 4 * eps * (np.abs(y_plus) + np.abs(y_minus))
        size = np.abs(g * y_plus) + np.abs(g)
    if len(members) == 1:       # one entry: its change is its own, however it bends
        return GroupProbe(share=np.array([np.sum(g * d1) / t1[0]]), wrong=0, few_wrong=True,
                          rounding=np.array([np.sum(size) / (t1[0] / 2)]),
                          owned=np.array([int(np.count_nonzero(moved))]))
    if prober.complex_:
        ratios, curvature = t_s / t1, np.zeros(len(at))
        ratio = e[moved] / d1[moved]
    else:
        # y(x + s h) - y0 = a ρ + b ρ² for an owner with ρ = 2 t_s / t1, where
        # d1 = 2a and y(x + r h) + y(x - r h) - 2 y0 = 2b: solve for ρ (two
        # fixed-point steps leave O(h²) of it, as in the central difference).
        ratios = 2.0 * t_s / t1
        y_0 = y0[at]
        curvature = y_plus + y_minus - 2.0 * y_0
        noise = noise + 4 * eps * (np.abs(y_s[at]) + np.abs(y_0))
        ratio = 2.0 * e[moved] / d1[moved]
        for _ in range(2):
            ratio = (2.0 * e[moved] - curvature[moved] * ratio ** 2) / d1[moved]
    owner = _owners(ratio, ratios)
    # An output moved by two entries has a ratio between theirs, a weighted
    # mean; it passes for a single owner only by landing within the match
    # tolerance of one. A change carries rounding: of the outputs a central
    # difference subtracts, or ~eps of the largest terms for the complex step;
    # its ratio is known to ``σ = noise / |change|``, and is matched to
    # ``max(1e-6, c σ)`` (c = 100 for central differences, whose rounding is
    # estimated from the outputs while a forward that cancels larger terms,
    # batch norm's mean of shifted inputs, rounds a few times more; 10 for the
    # complex step). An output matched that way to within a quarter of the
    # members' spacing names its owner (a mixture of two lands on another
    # member's ratio by chance only); one that cannot (it barely moves, or
    # is saturated) goes to the nearest member unverified, as long as such
    # outputs carry at most 1 % of <dout, change>: else nothing vouches for
    # the grouping (a loss whose one output barely moves) and it is refused.
    # Noise never below the normal range (subnormal changes carry few digits).
    noise = np.maximum(noise, np.finfo(np.float64).tiny)
    match = np.maximum(1e-6, (10 if prober.complex_ else 100) * noise[moved]
                       / np.abs(d1[moved]))
    clear = match < np.min(np.diff(np.sort(ratios))) / 4
    mismatched = clear & (np.abs(ratio - ratios[owner]) > match * ratios[owner])
    weight = np.abs(g[moved] * d1[moved])
    unclear = np.sum(weight[~clear]) > 1e-2 * np.sum(weight)
    wrong = mismatched | ~clear if unclear else mismatched
    margin = 1e7 if prober.complex_ else 1e8
    # An output still in one probe but clearly moved in the other: two entries
    # cancelled (a saturated output that rounds to no change at all is not
    # that, nor the curvature of an output whose owner's slope is 0).
    cancelled = ~moved & (np.abs(e) >= margin * noise + 2.0 * np.abs(curvature))
    wrong_count = int(wrong.sum()) + int(np.count_nonzero(cancelled))
    share = np.bincount(owner, weights=g[moved] * d1[moved] / t1[owner],
                        minlength=len(members))
    # Outputs that a kink or a tie bends within the step (central differences
    # show it) are no evidence against the grouping: entries at kinks end
    # alone when halved, or one at a time.
    bent = (np.zeros(len(at), dtype=bool) if prober.complex_
            else ~smooth_outputs(y_plus, y_minus, y_0))
    # Evidence against the grouping: a clear mismatch or a cancellation that no kink bends.
    evidence = int(np.count_nonzero(mismatched & ~bent[moved]))
    evidence += int(np.count_nonzero(cancelled & ~bent))
    return GroupProbe(share=share, wrong=wrong_count,
                      few_wrong=wrong_count <= min(_BISECT_OUTPUTS, int(moved.sum()) // 100),
                      blameless=wrong_count > 0 and evidence == 0,
                      owned=np.bincount(owner, minlength=len(members)),
                      rounding=np.bincount(owner, weights=size[moved], minlength=len(members))
                      / (t1 / 2))


#: Largest period along an axis that :func:`discover_coloring` looks for: a
#: footprint up to 16 entries wide (a 16-tap kernel); beyond, the axis is
#: taken as dense (every entry its own group).
_MAX_PERIOD = 16


def discover_coloring(evaluate, array, dout, *, step=STEP, complex_=False, y0=None):
    """Find a grouping of ``array``'s entries by probing the function: no declaration needed.

    For each axis, the smallest period ``p`` such that the entries ``p``
    apart on a line through the tensor's center move disjoint outputs: 1
    for the examples of a batch or an elementwise function, the kernel's
    width along a convolution's spatial axes, the axis length along an axis
    whose entries all mix (channels, features). Each trial is one group
    probed as :func:`grouped_difference` probes it (3 calls, 2 with the
    complex step), whose ratios tell whether two entries shared an output:
    ``1``, then ``min(16, n // 2)`` and smaller ones (see :func:`_axis_period`).
    The grouping returned puts entries whose indices agree modulo the
    periods in one group; it is a guess about the rest of the tensor (its
    borders, other lines), which :func:`grouped_difference` verifies as it
    uses it.

    Parameters
    ----------
    evaluate, array, dout, step, complex_, y0
        As for :func:`grouped_difference`.

    Returns
    -------
    colors : ndarray of int, shape ``array.shape``
    periods : tuple of int
        One per axis.
    calls : int
    """
    prober = _GroupProber(evaluate, array, step, complex_)
    if not complex_ and y0 is None:
        y0 = prober.call()
    center = np.array([n // 2 for n in array.shape], dtype=np.int64)

    def holds(axis, p):
        """Whether entries ``p`` apart along ``axis``, through the center, share no output."""
        along = np.arange(center[axis] % p, array.shape[axis], p)[:MAX_GROUP]
        if len(along) < 2:
            return True
        line = np.repeat(center[None, :], len(along), axis=0)
        line[:, axis] = along
        found = probe_group(prober, np.ravel_multi_index(tuple(line.T), array.shape), dout, y0)
        return found.wrong == 0 or found.few_wrong

    periods = tuple(_axis_period(lambda p, a=axis: holds(a, p), n)
                    for axis, n in enumerate(array.shape))
    index = np.indices(array.shape, sparse=True)
    colors = np.zeros(array.shape, dtype=np.int64)
    for axis, p in enumerate(periods):
        colors = colors * p + index[axis] % p
    return colors, periods, prober.calls


#: Periods tried along an axis whose widest period fails: entries that share
#: outputs at several offsets (an LSTM's gates, ``H`` apart along ``4H``) leave
#: the periods without a multiple among them; primes have the fewest multiples.
_PRIME_PERIODS = (2, 3, 5, 7, 11, 13)


def _axis_period(holds, n):
    """The smallest period found to hold along an axis of length ``n`` (``n``: none does).

    ``1``; else the widest, ``min(16, n // 2)``, and if it holds the first of
    ``2, 3, ...`` that does (a local footprint: a kernel's width); if it
    fails, the first prime below it that holds (outputs shared at several
    offsets), else ``n``.
    """
    if n == 1 or holds(1):
        return 1
    top = min(_MAX_PERIOD, n // 2)
    if top < 2:
        return n
    if holds(top):
        return next(p for p in range(2, top + 1) if p == top or holds(p))
    return next((p for p in _PRIME_PERIODS if p < top and holds(p)), n)
