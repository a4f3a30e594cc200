"""Reference 2-D max and average pooling layers (derivation, section 4).

Layout is the derivation's: activations have shape ``(n_H, n_W, n_C, m)`` --
height, width, channels, and the examples LAST.  Everything is vectorized
NumPy: no Python loop runs over output positions or examples.  The only
Python loops run over the offsets inside the pooling window (each offset is
one strided slice covering every output position, channel and example at
once); small and medium problems use a fixed number of whole-array calls
instead (see the strategy notes below ``__all__``).

Conventions (all chosen to agree with PyTorch's
``torch.nn.functional.max_pool2d`` / ``avg_pool2d`` with ``ceil_mode=False``,
``dilation=1``):

* window ``(f_H, f_W)``, stride ``(s_H, s_W)`` (default: the window) and zero
  padding ``(p_H, p_W)`` with ``0 <= p <= f // 2`` per axis; each may be given
  as an int or an ``(H, W)`` pair.
* output size per axis: ``floor((n + 2 p - f) / s) + 1``.
* overlapping windows (``stride < window``): an input position that belongs
  to several windows receives the SUM of the gradients of all of them.
* max pooling: padded positions behave as ``-inf`` and never win.  A tie
  inside a window goes to the FIRST maximum in row-major window order (rows
  top to bottom, within a row left to right) -- exactly the entry PyTorch
  picks.  NaN propagates as the max, and its gradient goes to the LAST NaN
  of the window in that order (PyTorch's CPU rule).
* average pooling: ``count_include_pad=True`` (the default, as in PyTorch)
  divides every window by ``f_H * f_W``; ``count_include_pad=False`` divides
  by the number of non-padded positions in the window.
* complex input (complex-step differentiation) works for both.  Max pooling
  chooses each window's winner on the REAL part, with the same tie rule
  (first maximum in row-major window order, padding never wins), and outputs
  the complex value of that entry: for ``x`` real and ``h`` tiny the winners
  are those of ``x``, so ``Im A(x + i h v) / h`` is the derivative of the
  pooling in direction ``v`` (at a tie: the one PyTorch's choice gives).
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from reference_impls.dense import require_ndarray

__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "MaxPool2D",
    "AvgPool2D",
]

# Implementation strategies (all vectorized; chosen by problem size, the
# cut-overs measured on the 2-core machine; see benchmarks/bench_layers.py):
#   max forward   "small"   copy windows to (..., K), argmax over the last axis
#                 "stacked" copy windows to (K, ...), reduce over the first axis
#                 "direct"  loop over the K window offsets (strided slices)
#   max backward  scatter by flat index (bincount / fancy assignment), or the
#                 "direct" loop over window offsets
#   avg           "small"   two small matrix products (separable averaging)
#                 "direct"  loop over the K window offsets
#                 "separable" rows then columns: f_H + f_W offset passes
# ``_FORCE = None`` picks by size; the tests force each strategy in turn
# ("small", "stacked", "direct", "separable") and compare all with torch.
_FORCE = None

_SMALL_MAX_FWD_ROWS_PER_K = 24   # max fwd "small" if output size <= this * K
_STACKED_MAX_FWD = 1_000_000     # max fwd "stacked" if output size * K <= this
_SMALL_AVG = 16_000              # avg "small" if K > 4 and output size * K <= this


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------

def _as_pair(name, value):
    """Return ``value`` (an int or a pair of ints) as a tuple of two ints."""
    t = type(value)
    if t is int:
        return (value, value)
    if t is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return value
    bad = TypeError(f"`{name}` must be an int or a pair of ints (H, W), got {value!r}")
    if isinstance(value, (bool, np.bool_)):
        raise bad
    if isinstance(value, numbers.Integral):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        items = list(value)
        if len(items) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in items
        ):
            return (int(items[0]), int(items[1]))
    raise bad


def _parse_config(window, stride, padding):
    """Validate ``window`` / ``stride`` / ``padding`` (the input-independent part)."""
    f = _as_pair("window", window)
    if f[0] < 1 or f[1] < 1:
        raise ValueError(f"`window` must be >= 1 per axis, got {f}")
    s = f if stride is None else _as_pair("stride", stride)
    if s[0] < 1 or s[1] < 1:
        raise ValueError(f"`stride` must be >= 1 per axis, got {s}")
    p = _as_pair("padding", padding)
    if not (0 <= p[0] <= f[0] // 2 and 0 <= p[1] <= f[1] // 2):
        raise ValueError(
            f"`padding` {p} must be >= 0 and at most half the window {f} "
            f"(padding <= window // 2 per axis, as in torch)"
        )
    return f, s, p


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool, got {value!r}")
    return bool(value)


def _check_input(A_prev, f, s, p, *, allow_complex):
    """Validate ``A_prev`` against the configuration; return it as an ndarray."""
    if not isinstance(A_prev, np.ndarray):
        try:
            A_prev = np.asarray(A_prev)
        except Exception as exc:
            raise TypeError(f"`A_prev` must be array-like, got {type(A_prev).__name__}") from exc
    kind = A_prev.dtype.kind
    if kind == "c" and not allow_complex:
        raise TypeError(
            f"`A_prev` has complex dtype {A_prev.dtype}; max pooling needs an ordering, "
            f"use a real floating dtype"
        )
    if kind != "f" and not (kind == "c" and allow_complex):
        raise TypeError(
            f"`A_prev` must have a floating{' or complex' if allow_complex else ''} dtype, "
            f"got {A_prev.dtype}"
        )
    if A_prev.ndim != 4:
        raise ValueError(
            f"`A_prev` must be 4-D with shape (n_H, n_W, n_C, m), got ndim={A_prev.ndim} "
            f"(shape {A_prev.shape})"
        )
    n_H, n_W = A_prev.shape[:2]
    if n_H < 1 or n_W < 1:
        raise ValueError(
            f"`A_prev` must have n_H >= 1 and n_W >= 1 (every window needs a real, "
            f"non-padded entry), got shape {A_prev.shape}"
        )
    padded = (n_H + 2 * p[0], n_W + 2 * p[1])
    if f[0] > padded[0] or f[1] > padded[1]:
        raise ValueError(
            f"`window` {f} is larger than the padded input {padded} "
            f"(`A_prev.shape[:2]`={(n_H, n_W)}, `padding`={p})"
        )
    return A_prev


def _check_upstream(dA, cache, kind):
    """Validate the backward inputs; return ``dA`` as an ndarray."""
    if not isinstance(cache, dict) or cache.get("kind") != kind:
        got = cache.get("kind") if isinstance(cache, dict) else type(cache).__name__
        raise TypeError(
            f"`cache` must be the cache returned by {kind}_pool2d_forward, got {got!r}"
        )
    if not isinstance(dA, np.ndarray):
        try:
            dA = np.asarray(dA)
        except Exception as exc:
            raise TypeError(f"`dA` must be array-like, got {type(dA).__name__}") from exc
    if dA.dtype.kind not in ("f", "c"):
        raise TypeError(f"`dA` must have a floating or complex dtype, got {dA.dtype}")
    if dA.shape != cache["out_shape"]:
        raise ValueError(
            f"`dA` has shape {dA.shape}, expected {cache['out_shape']} "
            f"(the shape of A returned by the forward pass)"
        )
    return dA


def _all_finite(x):
    """True iff ``x`` holds no inf / NaN.  For big arrays a single sum is
    used; an overflow of that sum is only a false alarm that sends the caller
    to its slower, always-correct path."""
    if x.size < 50_000:
        return bool(np.isfinite(x).all())
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(x.sum()))


# ---------------------------------------------------------------------------
# geometry: which input positions each window offset reads
# ---------------------------------------------------------------------------

def _axis_slices(n_in, n_out, f, s, p):
    """Per window offset ``d`` along one axis: ``(out_slice, in_slice)``.

    Output positions ``i`` in ``out_slice`` read the input position
    ``i * s + d - p`` (together: ``in_slice``); the other output positions
    see padding at this offset.  Both are basic slices, so indexing gives
    views.
    """
    res = []
    for d in range(f):
        off = d - p
        lo = 0 if off >= 0 else (-off + s - 1) // s      # first i with i*s + off >= 0
        hi = min(n_out, (n_in - 1 - off) // s + 1)         # past last i with i*s + off < n_in
        if hi <= lo:
            res.append((slice(0, 0), slice(0, 0)))
        else:
            start = lo * s + off
            res.append((slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s)))
    return tuple(res)


@functools.lru_cache(maxsize=512)
def _plan(n_H, n_W, f, s, p):
    """Output size, per-axis slices, and per window offset
    ``k = d_H * f_W + d_W`` (row-major) the tuple
    ``(k, out_rows, out_cols, in_rows, in_cols)``.  Depends on sizes only."""
    oH = (n_H + 2 * p[0] - f[0]) // s[0] + 1
    oW = (n_W + 2 * p[1] - f[1]) // s[1] + 1
    rows = _axis_slices(n_H, oH, f[0], s[0], p[0])
    cols = _axis_slices(n_W, oW, f[1], s[1], p[1])
    offsets = tuple(
        (k, rows[k // f[1]][0], cols[k % f[1]][0], rows[k // f[1]][1], cols[k % f[1]][1])
        for k in range(f[0] * f[1])
    )
    return oH, oW, rows, cols, offsets


def _prefer_separable(n_W, oH, oW, f, s, backward):
    """Average pooling: separable (rows, then columns: f_H + f_W strided
    passes) or direct (one pass per window offset, f_H * f_W passes)?
    Measured: separable wins for windows of at least 3 x 3, in the backward
    pass only when windows overlap (non-overlapping windows are written, not
    accumulated, by the direct pass)."""
    if _FORCE in ("direct", "separable"):
        return _FORCE == "separable"
    if min(f) < 3 or (backward and s[0] >= f[0] and s[1] >= f[1]):
        return False
    return f[0] * oH * n_W + f[1] * oH * oW <= 1.2 * f[0] * f[1] * oH * oW


def _index_dtype(k):
    if k <= np.iinfo(np.uint8).max:
        return np.uint8
    if k <= np.iinfo(np.uint16).max:
        return np.uint16
    return np.uint32


def _ax(axis, sl):
    """Index tuple applying slice ``sl`` on ``axis`` (0 or 1)."""
    return (sl,) if axis == 0 else (slice(None), sl)


def _sum_axis(X, slices, n_out, axis):
    """1-D sum pooling along ``axis``: ``out[i] = sum over d of X[i*s + d - p]``
    (offsets that fall on padding are skipped).  Starts from a copy of an
    offset that every output position sees, if there is one, else from 0."""
    full = [d for d, (o, _) in enumerate(slices) if o == slice(0, n_out)]
    if full:
        out = X[_ax(axis, slices[full[0]][1])].copy()
        rest = slices[:full[0]] + slices[full[0] + 1:]
    else:
        shape = list(X.shape)
        shape[axis] = n_out
        out = np.zeros(shape, dtype=X.dtype)
        rest = slices
    for o, i in rest:
        view = out[_ax(axis, o)]
        view += X[_ax(axis, i)]
    return out


def _scatter_axis(G, slices, n_in, axis, overlap):
    """Adjoint of ``_sum_axis``: ``out[i*s + d - p] += G[i]``
    for every offset ``d`` (assignment when windows do not overlap)."""
    shape = list(G.shape)
    shape[axis] = n_in
    out = np.zeros(shape, dtype=G.dtype)
    for o, i in slices:
        view = out[_ax(axis, i)]
        if overlap:   # overlapping windows: contributions ADD UP
            view += G[_ax(axis, o)]
        else:
            view[...] = G[_ax(axis, o)]
    return out


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------

def _window_view(Ap, oH, oW, f, s):
    """Read-only strided view of shape (oH, oW, C, m, f_H, f_W) onto the
    C-contiguous array ``Ap``: element [i, j, c, e, a, b] is
    ``Ap[i*s_H + a, j*s_W + b, c, e]``."""
    st = Ap.strides
    view = np.ndarray(
        (oH, oW) + Ap.shape[2:] + f, Ap.dtype, Ap, 0,
        (s[0] * st[0], s[1] * st[1], st[2], st[3], st[0], st[1]),
    )
    view.flags.writeable = False
    return view


def _max_forward_small(A_prev, f, s, p, oH, oW):
    """Few NumPy calls: copy the windows to (oH, oW, C, m, K) and take the
    argmax over the last axis (np.argmax returns the FIRST maximum: the
    row-major tie rule).  Returns None if the result holds inf/NaN (NaN and
    all -inf padded windows follow their own rules in the direct path)."""
    n_H, n_W, n_C, m = A_prev.shape
    if p == (0, 0):
        Ap = np.ascontiguousarray(A_prev)
    else:
        Ap = np.full((n_H + 2 * p[0], n_W + 2 * p[1], n_C, m), -np.inf, dtype=A_prev.dtype)
        Ap[p[0]:p[0] + n_H, p[1]:p[1] + n_W] = A_prev
    Wc = _window_view(Ap, oH, oW, f, s).reshape(oH, oW, n_C, m, f[0] * f[1])
    A = Wc.max(axis=-1)
    if not _all_finite(A):
        return None
    return A, Wc.argmax(axis=-1)


def _max_forward_direct(A_prev, f, s, p, oH, oW, offsets):
    """Loop over the K window offsets only; each step is one vectorized
    operation on a strided slice covering all outputs, channels, examples."""
    n_C, m = A_prev.shape[2:]
    K = f[0] * f[1]
    out_shape = (oH, oW, n_C, m)
    # 1) the max values: a running np.maximum (propagates NaN, as torch),
    #    started from an offset that every output sees (if any; the order
    #    does not matter for a max).
    full = [o for o in offsets if o[1] == slice(0, oH) and o[2] == slice(0, oW)]
    if full:
        k0, _, _, ri, ci = full[0]
        A = A_prev[ri, ci].copy()
        todo = [o for o in offsets if o[0] != k0]
    else:
        A = np.full(out_shape, -np.inf, dtype=A_prev.dtype)
        todo = offsets
    for _, ro, co, ri, ci in todo:
        Ao = A[ro, co]
        np.maximum(Ao, A_prev[ri, ci], out=Ao)
    # 2) the winner: the FIRST offset (row-major) whose value equals the max.
    #    After offset k, ``found`` flags "max seen at an offset <= k"; the
    #    winner is K minus the number of offsets after which it was set.
    #    Padded positions are never compared, so they never win, and a padded
    #    window whose real entries are all -inf goes to its first real entry
    #    (torch's rule).
    found = np.zeros(out_shape, dtype=bool)
    eq = np.empty(out_shape, dtype=bool)
    count = np.zeros(out_shape, dtype=_index_dtype(K))
    for _, ro, co, ri, ci in offsets:
        e, fo = eq[ro, co], found[ro, co]
        np.equal(A_prev[ri, ci], A[ro, co], out=e)
        np.logical_or(fo, e, out=fo)
        np.add(count, found, out=count, casting="unsafe")
    idx = np.subtract(K, count, dtype=count.dtype)
    return A, idx


def _max_forward_stacked(A_prev, f, s, p, oH, oW):
    """Medium problems, a fixed number of NumPy calls: copy the K window
    offsets into S of shape (K, oH, oW, C, m) (one strided copy), take the
    max over axis 0, and find the FIRST offset equal to it (the reductions
    run over the leading axis, so they stream through contiguous memory).
    Returns None if the result holds inf/NaN (handled by the direct path)."""
    n_H, n_W, n_C, m = A_prev.shape
    K = f[0] * f[1]
    if p == (0, 0):
        Ap = np.ascontiguousarray(A_prev)
    else:
        Ap = np.full((n_H + 2 * p[0], n_W + 2 * p[1], n_C, m), -np.inf, dtype=A_prev.dtype)
        Ap[p[0]:p[0] + n_H, p[1]:p[1] + n_W] = A_prev
    S = np.empty(f + (oH, oW, n_C, m), dtype=A_prev.dtype)
    S[...] = _window_view(Ap, oH, oW, f, s).transpose(4, 5, 0, 1, 2, 3)
    S = S.reshape((K, oH, oW, n_C, m))
    A = S.max(axis=0)
    if not _all_finite(A):
        return None
    # weight K - k where offset k equals the max, else 0; the largest weight
    # marks the FIRST such offset.
    dt = _index_dtype(K)
    weights = np.arange(K, 0, -1, dtype=dt).reshape(K, 1, 1, 1, 1)
    w = np.multiply(S == A, weights, dtype=dt)
    idx = w.max(axis=0)
    np.subtract(K, idx, out=idx)
    return A, idx


def _fix_nan_winners(A, idx, A_prev, offsets):
    """NaN windows: torch's CPU kernel makes the LAST NaN (row-major) win."""
    nan_out = np.isnan(A)
    if nan_out.any():
        for k, ro, co, ri, ci in offsets:
            hit = np.isnan(A_prev[ri, ci]) & nan_out[ro, co]
            idx[ro, co][hit] = k
    return idx


def _max_forward_complex(A_prev, f, s, p):
    """Complex input: the winners are those of the real part (the real path,
    whatever its strategy, so the same tie and NaN rules), the output is the
    complex value at each winner (one gather by flat index)."""
    _, cache = _max_forward(A_prev.real, f, s, p)
    flat = _flat_targets(cache["argmax"], A_prev.shape, f, s, p)
    cache["dtype"] = A_prev.dtype
    return np.take(A_prev, flat), cache


def _max_forward(A_prev, f, s, p):
    A_prev = _check_input(A_prev, f, s, p, allow_complex=True)
    if A_prev.dtype.kind == "c":
        return _max_forward_complex(A_prev, f, s, p)
    n_H, n_W, n_C, m = A_prev.shape
    oH, oW, rows, cols, offsets = _plan(n_H, n_W, f, s, p)
    K = f[0] * f[1]
    out_size = oH * oW * n_C * m
    res = None
    if _FORCE == "small" or (_FORCE is None and out_size <= _SMALL_MAX_FWD_ROWS_PER_K * K):
        res = _max_forward_small(A_prev, f, s, p, oH, oW)
    elif _FORCE == "stacked" or (_FORCE is None and out_size * K <= _STACKED_MAX_FWD):
        res = _max_forward_stacked(A_prev, f, s, p, oH, oW)
    if res is None:
        A, idx = _max_forward_direct(A_prev, f, s, p, oH, oW, offsets)
        res = A, _fix_nan_winners(A, idx, A_prev, offsets)
    A, idx = res
    cache = {
        "kind": "max",
        "in_shape": A_prev.shape,
        "dtype": A_prev.dtype,
        "out_shape": A.shape,
        "window": f,
        "stride": s,
        "padding": p,
        "argmax": idx,
    }
    return A, cache


def max_pool2d_forward(A_prev, *, window, stride=None, padding=0):
    """Max pooling forward pass (derivation, section 4).

    Parameters
    ----------
    A_prev : ndarray, shape (n_H_prev, n_W_prev, n_C, m)
        Input activations, examples last.  Real floating or complex dtype;
        complex input (complex-step differentiation) is ordered by its REAL
        part, see Notes.  Not modified.
    window : int or (int, int)
        Window size ``(f_H, f_W)``.
    stride : int or (int, int), optional
        ``(s_H, s_W)``; default equals ``window`` (non-overlapping windows).
        ``stride < window`` gives overlapping windows.
    padding : int or (int, int), default 0
        ``(p_H, p_W)`` with ``0 <= p <= f // 2`` per axis (torch's rule).
        Padded positions act as ``-inf`` and never win.

    Returns
    -------
    A : ndarray, shape (n_H, n_W, n_C, m)
        ``n_H = (n_H_prev + 2 p_H - f_H) // s_H + 1`` (likewise ``n_W``);
        same dtype as ``A_prev``, fresh memory.
    cache : dict
        What :func:`max_pool2d_backward` needs: ``"argmax"``, an integer array
        of shape (n_H, n_W, n_C, m) with the winning window offset
        ``d_H * f_W + d_W`` of every output entry (row-major index into the
        window), and the configuration.

    Notes
    -----
    Ties: the winner is the FIRST maximum in row-major window order (rows top
    to bottom, within a row left to right) -- the entry PyTorch picks.  If all
    real entries of a padded window are ``-inf``, the first real entry wins
    (as in PyTorch).  NaN propagates: the output is NaN and the winner is the
    last NaN of the window (PyTorch's CPU rule).  Overlapping windows are
    handled in the backward pass (their gradients add up).

    Complex ``A_prev``: the winner of each window is chosen on ``A_prev.real``
    by exactly these rules, and ``A`` holds the complex value of the winner
    (dtype complex).  For ``A_prev = x + i h v`` with real ``x`` and tiny
    ``h`` this is the holomorphic extension of the pooling at ``x``:
    ``Im A / h`` is the derivative in direction ``v``, consistent with
    :func:`max_pool2d_backward` even at ties.

    Raises
    ------
    TypeError
        ``window``/``stride``/``padding`` not an int or pair of ints;
        ``A_prev`` neither real floating nor complex.
    ValueError
        Non-positive window or stride; padding outside ``[0, f // 2]``;
        ``A_prev`` not 4-D; window larger than the padded input.
    """
    f, s, p = _parse_config(window, stride, padding)
    return _max_forward(A_prev, f, s, p)


def _flat_targets(idx, in_shape, f, s, p):
    """Flat index, into ``A_prev`` (C order), of the entry that each output
    entry's gradient goes to: its window's winner (never a padded position).

    The flat index of input entry (i*s_H + d_H - p_H, j*s_W + d_W - p_W, c, e)
    is ``step[d_H * f_W + d_W] + corner[i, j] + lane[c, e]``.
    """
    n_H, n_W, n_C, m = in_shape
    oH, oW = idx.shape[:2]
    step, corner, lane = _flat_tables(oH, oW, n_W, n_C, m, f, s, p)
    flat = np.take(step, idx)
    if idx.size <= 1 << 17:   # small enough to keep corner + lane cached
        flat += _flat_base(oH, oW, n_W, n_C, m, f, s, p)
    else:
        flat += corner
        flat += lane
    return flat


@functools.lru_cache(maxsize=64)
def _flat_tables(oH, oW, n_W, n_C, m, f, s, p):
    cm = n_C * m
    step = (((np.arange(f[0]) - p[0])[:, None] * n_W
             + (np.arange(f[1]) - p[1])[None, :]) * cm).ravel()
    corner = (np.arange(oH)[:, None] * (s[0] * n_W) + np.arange(oW)[None, :] * s[1]) * cm
    corner = corner[:, :, None, None]
    lane = np.arange(cm).reshape(1, 1, n_C, m)
    for a in (step, corner, lane):
        a.flags.writeable = False
    return step, corner, lane


@functools.lru_cache(maxsize=32)
def _flat_base(oH, oW, n_W, n_C, m, f, s, p):
    _, corner, lane = _flat_tables(oH, oW, n_W, n_C, m, f, s, p)
    base = corner + lane
    base.flags.writeable = False
    return base


def max_pool2d_backward(dA, cache):
    """Max pooling backward pass (derivation, section 4).

    Each pooled gradient ``dA[h, w, c, i]`` is routed to the position of the
    maximum of its window in ``A_prev`` -- the window's FIRST maximum in
    row-major order at a tie, as in PyTorch; the other positions of the
    window get 0.  With overlapping windows (``stride < window``) one input
    position can win several windows: its gradient is the SUM of their
    upstream gradients.  Gradients never flow into the padding.

    Parameters
    ----------
    dA : ndarray, shape (n_H, n_W, n_C, m)
        Upstream gradient, the shape of ``A`` from the forward pass.  Not
        modified.
    cache : dict
        The cache returned by :func:`max_pool2d_forward`.

    Returns
    -------
    dA_prev : ndarray, shape (n_H_prev, n_W_prev, n_C, m)
        Gradient w.r.t. ``A_prev``; dtype ``result_type(dA, A_prev)``, fresh
        memory.

    Raises
    ------
    TypeError
        ``cache`` not from :func:`max_pool2d_forward`; non-floating ``dA``.
    ValueError
        ``dA`` not of the output shape.
    """
    dA = _check_upstream(dA, cache, "max")
    f, s, p = cache["window"], cache["stride"], cache["padding"]
    in_shape = cache["in_shape"]
    n_H, n_W, n_C, m = in_shape
    idx = cache["argmax"]
    dtype = np.result_type(dA.dtype, cache["dtype"])
    overlap = s[0] < f[0] or s[1] < f[1]

    if _FORCE != "direct":
        # scatter by flat index (measured faster than the per-offset loop):
        flat = _flat_targets(idx, in_shape, f, s, p).ravel()
        size = n_H * n_W * n_C * m
        if not overlap:    # each input entry wins at most one window
            g = np.zeros(size, dtype=dtype)
            g[flat] = dA.ravel()
        elif dA.dtype.kind == "f":
            # bincount sums the gradients of all the windows whose max sits
            # at the same input entry: overlapping windows ADD UP.
            g = np.bincount(flat, weights=dA.ravel(), minlength=size).astype(dtype, copy=False)
        else:              # complex dA: bincount takes real weights only
            g = np.zeros(size, dtype=dtype)
            np.add.at(g, flat, dA.ravel())
        return g.reshape(in_shape)

    # one masked copy / add per window offset
    oH, oW, rows, cols, offsets = _plan(n_H, n_W, f, s, p)
    finite = _all_finite(dA)
    dA_prev = np.zeros(in_shape, dtype=dtype)
    mask = np.empty(idx.shape, dtype=bool)
    tmp = np.empty(idx.shape, dtype=dtype) if overlap and finite else None
    for k, ro, co, ri, ci in offsets:
        M = mask[ro, co]
        np.equal(idx[ro, co], k, out=M)
        T = dA_prev[ri, ci]
        G = dA[ro, co]
        if not finite:   # masked: inf * 0 must not leak NaN into other entries
            if overlap:
                np.add(T, G, out=T, where=M)
            else:
                np.copyto(T, G, where=M)
        elif overlap:    # windows share inputs: gradients ADD UP
            t = tmp[ro, co]
            np.multiply(G, M, out=t)
            T += t
        else:            # each input position lies in at most one window
            np.multiply(G, M, out=T)
    return dA_prev


# ---------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------

def _avg_counts(n, o, f, s, p, count_include_pad):
    """Per output position along one axis: how many window entries count."""
    if count_include_pad:
        return np.full(o, f, dtype=np.int64)
    start = np.arange(o) * s - p
    return np.minimum(start + f, n) - np.maximum(start, 0)


def _avg_divisor(n_H, n_W, oH, oW, f, s, p, count_include_pad, real_dtype):
    """Divisor per output position: a Python int, or shape (oH, oW, 1, 1)."""
    if count_include_pad or p == (0, 0):
        return f[0] * f[1]
    ch = _avg_counts(n_H, oH, f[0], s[0], p[0], False)
    cw = _avg_counts(n_W, oW, f[1], s[1], p[1], False)
    return (ch[:, None] * cw[None, :]).astype(real_dtype)[:, :, None, None]


@functools.lru_cache(maxsize=256)
def _avg_matrices(n_H, n_W, oH, oW, f, s, p, count_include_pad, real_dtype):
    """Averaging is linear and separable: rows with P_H (oH, n_H), then
    columns with P_W (oW, n_W).  ``P[i, x] = 1 / count_i`` if input x lies in
    window i, else 0; the padding has no column, so it adds nothing."""
    mats = []
    for n, o, f_, s_, p_ in ((n_H, oH, f[0], s[0], p[0]), (n_W, oW, f[1], s[1], p[1])):
        start = np.arange(o)[:, None] * s_ - p_
        x = np.arange(n)[None, :]
        inside = (x >= start) & (x < start + f_)
        cnt = _avg_counts(n, o, f_, s_, p_, count_include_pad)
        P = (inside / cnt[:, None]).astype(real_dtype)
        P.flags.writeable = False
        mats.append(P)
    return tuple(mats)


def _use_small_avg(out_size, K):
    """Two matrix products beat the offset loop only if the loop is long."""
    if _FORCE is not None:
        return _FORCE == "small"
    return K > 4 and out_size * K <= _SMALL_AVG


def _avg_forward(A_prev, f, s, p, cip):
    A_prev = _check_input(A_prev, f, s, p, allow_complex=True)
    n_H, n_W, n_C, m = A_prev.shape
    oH, oW, rows, cols, offsets = _plan(n_H, n_W, f, s, p)
    real = A_prev.real.dtype if A_prev.dtype.kind == "c" else A_prev.dtype
    cache = {
        "kind": "avg",
        "in_shape": A_prev.shape,
        "dtype": A_prev.dtype,
        "out_shape": (oH, oW, n_C, m),
        "window": f,
        "stride": s,
        "padding": p,
        "count_include_pad": cip,
    }
    if _use_small_avg(oH * oW * n_C * m, f[0] * f[1]) and _all_finite(A_prev):
        # two small matrix products (only without inf/NaN: 0 * inf = NaN).
        PH, PW = _avg_matrices(n_H, n_W, oH, oW, f, s, p, cip, real)
        X = PH @ A_prev.reshape(n_H, n_W * n_C * m)
        A = np.matmul(PW, X.reshape(oH, n_W, n_C * m)).reshape(oH, oW, n_C, m)
        return A, cache

    if _prefer_separable(n_W, oH, oW, f, s, backward=False):
        A = _sum_axis(_sum_axis(A_prev, rows, oH, 0), cols, oW, 1)
    else:
        # Sum in row-major window order (torch's order), then divide.
        if p == (0, 0):
            _, ro, co, ri, ci = offsets[0]
            A = A_prev[ri, ci].copy()
            todo = offsets[1:]
        else:
            A = np.zeros(cache["out_shape"], dtype=A_prev.dtype)
            todo = offsets
        for _, ro, co, ri, ci in todo:
            Ao = A[ro, co]
            Ao += A_prev[ri, ci]
    A /= _avg_divisor(n_H, n_W, oH, oW, f, s, p, cip, real)
    return A, cache


def avg_pool2d_forward(A_prev, *, window, stride=None, padding=0, count_include_pad=True):
    """Average pooling forward pass (derivation, section 4).

    Parameters
    ----------
    A_prev : ndarray, shape (n_H_prev, n_W_prev, n_C, m)
        Input activations, examples last.  Real floating or complex dtype
        (complex works, for complex-step differentiation).  Not modified.
    window : int or (int, int)
        Window size ``(f_H, f_W)``.
    stride : int or (int, int), optional
        ``(s_H, s_W)``; default equals ``window``.  ``stride < window`` gives
        overlapping windows.
    padding : int or (int, int), default 0
        Zero padding ``(p_H, p_W)`` with ``0 <= p <= f // 2`` per axis.
    count_include_pad : bool, default True
        ``True`` (PyTorch's default): every window is divided by
        ``f_H * f_W``, padded zeros included.  ``False``: divided by the
        number of non-padded positions in that window.

    Returns
    -------
    A : ndarray, shape (n_H, n_W, n_C, m)
        ``n_H = (n_H_prev + 2 p_H - f_H) // s_H + 1`` (likewise ``n_W``);
        same dtype as ``A_prev``, fresh memory.
    cache : dict
        Configuration for :func:`avg_pool2d_backward` (no arrays).

    Notes
    -----
    Average pooling has no ties.  Overlapping windows are handled in the
    backward pass (their gradients add up).

    Raises
    ------
    TypeError
        Bad ``window``/``stride``/``padding`` type; non-bool
        ``count_include_pad``; non-floating, non-complex ``A_prev``.
    ValueError
        Non-positive window or stride; padding outside ``[0, f // 2]``;
        ``A_prev`` not 4-D; window larger than the padded input.
    """
    f, s, p = _parse_config(window, stride, padding)
    return _avg_forward(A_prev, f, s, p, _check_bool("count_include_pad", count_include_pad))


def avg_pool2d_backward(dA, cache):
    """Average pooling backward pass (derivation, section 4).

    Each pooled gradient ``dA[h, w, c, i]`` is spread evenly over its window:
    every position of the window receives ``dA[h, w, c, i] / divisor`` (the
    forward pass's divisor, see ``count_include_pad``).  With overlapping
    windows (``stride < window``) the contributions of all the windows that
    contain a position ADD UP.  The share that falls on padding is dropped.
    Average pooling has no ties: every entry of a window gets the same share.

    Parameters
    ----------
    dA : ndarray, shape (n_H, n_W, n_C, m)
        Upstream gradient, the shape of ``A`` from the forward pass.  Real or
        complex.  Not modified.
    cache : dict
        The cache returned by :func:`avg_pool2d_forward`.

    Returns
    -------
    dA_prev : ndarray, shape (n_H_prev, n_W_prev, n_C, m)
        Gradient w.r.t. ``A_prev``; dtype ``result_type(dA, A_prev)``, fresh
        memory.

    Raises
    ------
    TypeError
        ``cache`` not from :func:`avg_pool2d_forward`; non-floating ``dA``.
    ValueError
        ``dA`` not of the output shape.
    """
    dA = _check_upstream(dA, cache, "avg")
    f, s, p = cache["window"], cache["stride"], cache["padding"]
    cip = cache["count_include_pad"]
    in_shape = cache["in_shape"]
    n_H, n_W, n_C, m = in_shape
    oH, oW, rows, cols, offsets = _plan(n_H, n_W, f, s, p)
    dtype = np.result_type(dA.dtype, cache["dtype"])
    real = np.zeros((), cache["dtype"]).real.dtype
    if _use_small_avg(dA.size, f[0] * f[1]) and _all_finite(dA):
        PH, PW = _avg_matrices(n_H, n_W, oH, oW, f, s, p, cip, real)
        Y = np.matmul(PW.T, dA.reshape(oH, oW, n_C * m))
        dA_prev = (PH.T @ Y.reshape(oH, n_W * n_C * m)).reshape(in_shape)
        return dA_prev if dA_prev.dtype == dtype else dA_prev.astype(dtype)

    G = np.divide(dA, _avg_divisor(n_H, n_W, oH, oW, f, s, p, cip, real), dtype=dtype)
    if _prefer_separable(n_W, oH, oW, f, s, backward=True):
        Gc = _scatter_axis(G, cols, n_W, 1, s[1] < f[1])
        return _scatter_axis(Gc, rows, n_H, 0, s[0] < f[0])
    overlap = s[0] < f[0] or s[1] < f[1]
    dA_prev = np.zeros(in_shape, dtype=dtype)
    for _, ro, co, ri, ci in offsets:
        T = dA_prev[ri, ci]
        if overlap:   # windows share inputs: contributions ADD UP
            T += G[ro, co]
        else:
            T[...] = G[ro, co]
    return dA_prev


# ---------------------------------------------------------------------------
# layers (the project's Layer protocol: params / grads dicts, forward/backward)
# ---------------------------------------------------------------------------

class MaxPool2D:
    """Max pooling layer, layout ``(n_H, n_W, n_C, m)`` (derivation, section 4).

    Stateful wrapper around :func:`max_pool2d_forward` /
    :func:`max_pool2d_backward`: overlapping windows add up their gradients,
    padding acts as ``-inf`` (never wins), a tie goes to the first maximum in
    row-major window order (PyTorch's choice).  No trainable parameters.
    Complex input picks its winners on the real part (``complex_safe``).

    Parameters
    ----------
    window : int or (int, int)
    stride : int or (int, int), optional
        Default: ``window``.
    padding : int or (int, int), default 0
        At most ``window // 2`` per axis.
    """

    input_name = "A_prev"
    complex_safe = True

    def __init__(self, window, *, stride=None, padding=0):
        self.window, self.stride, self.padding = _parse_config(window, stride, padding)
        self.params = {}
        self.grads = {}
        self.cache = None

    def forward(self, x):
        """``x``: (n_H_prev, n_W_prev, n_C, m) -> ``A``: (n_H, n_W, n_C, m)."""
        require_ndarray(self.input_name, x)
        A, self.cache = _max_forward(x, self.window, self.stride, self.padding)
        return A

    def backward(self, dout):
        """``dout``: the shape of ``A`` -> ``dA_prev``: the shape of the last ``x``."""
        if self.cache is None:
            raise RuntimeError("MaxPool2D.backward called before forward")
        require_ndarray("dout", dout)
        return max_pool2d_backward(dout, self.cache)

    def __repr__(self):
        return f"MaxPool2D(window={self.window}, stride={self.stride}, padding={self.padding})"

    def jacobian_coloring(self, name, shape):
        """Return groups of entries of ``x`` (of ``shape``) that move disjoint outputs.

        Input rows closer than the window feed a common output; rows a window
        apart never do. One group per (row mod f_H, column mod f_W), across all
        channels and examples.
        """
        if name != "x":
            return None
        (f_H, f_W), (n_H, n_W) = self.window, shape[:2]
        phase = (np.arange(n_H)[:, None] % f_H) * f_W + np.arange(n_W)[None, :] % f_W
        return np.broadcast_to(phase[:, :, None, None], shape).copy()



class AvgPool2D:
    """Average pooling layer, layout ``(n_H, n_W, n_C, m)`` (derivation, section 4).

    Stateful wrapper around :func:`avg_pool2d_forward` /
    :func:`avg_pool2d_backward`: each pooled gradient is spread evenly over
    its window, overlapping windows add up their gradients, padded zeros count
    in the divisor iff ``count_include_pad`` (default True, as PyTorch).  No
    ties, no trainable parameters.  Works with complex input.

    Parameters
    ----------
    window : int or (int, int)
    stride : int or (int, int), optional
        Default: ``window``.
    padding : int or (int, int), default 0
        At most ``window // 2`` per axis.
    count_include_pad : bool, default True
    """

    input_name = "A_prev"
    complex_safe = True

    def __init__(self, window, *, stride=None, padding=0, count_include_pad=True):
        self.window, self.stride, self.padding = _parse_config(window, stride, padding)
        self.count_include_pad = _check_bool("count_include_pad", count_include_pad)
        self.params = {}
        self.grads = {}
        self.cache = None

    def forward(self, x):
        """``x``: (n_H_prev, n_W_prev, n_C, m) -> ``A``: (n_H, n_W, n_C, m)."""
        require_ndarray(self.input_name, x)
        A, self.cache = _avg_forward(x, self.window, self.stride, self.padding,
                                     self.count_include_pad)
        return A

    def backward(self, dout):
        """``dout``: the shape of ``A`` -> ``dA_prev``: the shape of the last ``x``."""
        if self.cache is None:
            raise RuntimeError("AvgPool2D.backward called before forward")
        require_ndarray("dout", dout)
        return avg_pool2d_backward(dout, self.cache)

    def __repr__(self):
        return (f"AvgPool2D(window={self.window}, stride={self.stride}, "
                f"padding={self.padding}, count_include_pad={self.count_include_pad})")

    def jacobian_coloring(self, name, shape):
        """Return groups of entries of ``x`` (of ``shape``) that move disjoint outputs.

        Input rows closer than the window feed a common output; rows a window
        apart never do. One group per (row mod f_H, column mod f_W), across all
        channels and examples.
        """
        if name != "x":
            return None
        (f_H, f_W), (n_H, n_W) = self.window, shape[:2]
        phase = (np.arange(n_H)[:, None] % f_H) * f_W + np.arange(n_W)[None, :] % f_W
        return np.broadcast_to(phase[:, :, None, None], shape).copy()

