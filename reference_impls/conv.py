"""Reference 2-D convolution layer (cross-correlation) in vectorized NumPy.

This module implements the convolutional layer of section 3 of the
derivation that ``gradcheck`` checks against:

* forward, eq. (26): ``z[x, y] = sum_a sum_b a_prev[x + a, y + b] w[a, b] + b``
  -- a cross-correlation, the kernel is *not* flipped;
* weight gradient, eq. (29): ``dW = A_prev ⋆ dZ``;
* bias gradient, eq. (31): ``db = sum_x sum_y dZ[x, y]`` (and over examples);
* input gradient, eq. (37): ``dA_prev = dZ ⋆_full ROT180(W)``.

The derivation treats one filter over one channel with stride 1 and no
padding.  Here the formulas are generalized to several input channels and
filters, a batch of ``m`` examples, a stride ``(s_H, s_W)``, zero padding
(explicit ``(p_H, p_W)``, ``"valid"`` or torch's ``"same"``) and a dilation
``(d_H, d_W)``; every docstring says how each of these changes the equations.

Layout follows the derivation: activations are ``(n_H, n_W, n_C, m)`` (examples
last), weights ``(f_H, f_W, n_C_prev, n_C)``, bias ``(n_C,)``.

Public API: :func:`conv2d_forward`, :func:`conv2d_backward` and the layer
:class:`Conv2D` (the project's Layer protocol: ``params``, ``grads``,
``forward``, ``backward``, ``input_name``).

Implementation (speed).  Everything is vectorized NumPy + BLAS; the only
Python loops run over the ``f_H * f_W`` kernel taps.  Three strategies give
the same results up to rounding (the tests force each one in turn):

* ``"im2col"`` (default): the zero-padded input is copied once into
  ``(channels, rows, columns, examples)`` order and unfolded ("im2col") into a
  ``(f_H f_W n_C_prev + 1, n_H n_W m)`` matrix -- one strided copy, whose last
  row is ones so that the bias rides along.  Forward (26) and ``dW``/``db``
  (29), (31) are then one GEMM each.  ``dA_prev`` (37) is one GEMM to the
  unfolded gradient followed by "col2im": one strided addition per tap, i.e.
  the full correlation with ``ROT180(W)`` summed tap by tap, with the zeros of
  the stride-dilated ``dZ`` skipped.  The unfolded gradient reuses the memory
  of the unfolded input (rebuilt if backward is called twice).
* ``"im2col_eq37"``: as above, but ``dA_prev`` is eq. (37) literally: ``dZ``
  dilated by ``s-1`` zeros, zero-padded by ``d(f-1)``, unfolded and multiplied
  by the rotated, channel-swapped kernel in one GEMM.  Chosen for stride 1
  when it moves fewer numbers than col2im (tiny problems, or ``n_C`` not larger
  than ``n_C_prev``).
* ``"taps"`` (when the unfolded input would exceed 256 MiB): no unfolding.
  The padded input is split into its ``s_H x s_W`` stride phases and flattened
  to a ``(pixels * examples, phases * channels)`` matrix, so that what each
  kernel tap reads is a contiguous block of rows: one GEMM per tap, no copy;
  the output is computed on the whole padded grid and cropped.

Returned arrays are fresh: they never share memory with the inputs, with each
other or with the cache.  ``Z`` and ``dA_prev`` have the derivation's shape
``(n_H, n_W, n_C, m)`` but are transposed views of fresh buffers in a
BLAS-friendly memory order (not C-contiguous).

The arithmetic uses only ``+``, ``*`` and BLAS products -- no ``abs``, no
casts to ``float``, no conjugation -- so complex inputs (complex-step
differentiation) give the holomorphic derivatives.
"""

from __future__ import annotations

import numbers

import numpy as np

from reference_impls.dense import require_float_array, require_ndarray

__all__ = ["conv2d_forward", "conv2d_backward", "Conv2D"]

# Strategy: ``None`` picks by problem size; the tests force each of
# "im2col_eq37", "im2col" and "taps" in turn (they must all agree with torch).
_FORCE = None

# Cut-overs (measured on the 2-core machine against torch; see benchmarks/bench_layers.py):
# * im2col unless the unfolded input would take more than this many bytes
#   (it lives in the cache from forward to backward);
_IM2COL_MAX_BYTES = 256 * 2**20
# * with stride 1, dA_prev literally by eq. (37) (one unfolding of the padded
#   dZ, one GEMM) instead of col2im (f_H*f_W strided additions) when that
#   unfolding is tiny or not much larger than the unfolded gradient col2im
#   adds up.
_EQ37_TINY_ELEMENTS = 1 << 14
_EQ37_RATIO = 1.3


# --------------------------------------------------------------------------
# argument validation
# --------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _pair(value, name):
    """Normalize an int or an (H, W) pair of ints to a tuple of Python ints."""
    if type(value) is int:  # fast path for the common case
        return (value, value)
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int \
            and type(value[1]) is int:
        return value
    if _is_int(value):
        v = int(value)
        return (v, v)
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"`{name}` must be an int or a pair (H, W) of ints, "
                f"got {value!r} of length {len(value)}"
            )
        if not (_is_int(value[0]) and _is_int(value[1])):
            raise TypeError(
                f"`{name}` must be an int or a pair (H, W) of ints, got {value!r}"
            )
        return (int(value[0]), int(value[1]))
    raise TypeError(
        f"`{name}` must be an int or a pair (H, W) of ints, "
        f"got {value!r} of type {type(value).__name__}"
    )


def _check_hyper(stride, padding, dilation):
    """Validate stride / padding / dilation; return (stride, padding, dilation).

    ``padding`` is returned as ``"same"``, or a pair ``(p_H, p_W)``
    (``"valid"`` becomes ``(0, 0)``).
    """
    stride = _pair(stride, "stride")
    if stride[0] < 1 or stride[1] < 1:
        raise ValueError(f"`stride` must be >= 1 per axis, got {stride}")
    dilation = _pair(dilation, "dilation")
    if dilation[0] < 1 or dilation[1] < 1:
        raise ValueError(f"`dilation` must be >= 1 per axis, got {dilation}")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    "`padding`='same' is only supported with `stride`=1 per axis "
                    f"(as in torch), got `stride`={stride}"
                )
        else:
            raise ValueError(
                "`padding` must be an int >= 0, a pair (p_H, p_W), 'same' or "
                f"'valid', got {padding!r}"
            )
    else:
        padding = _pair(padding, "padding")
        if padding[0] < 0 or padding[1] < 0:
            raise ValueError(f"`padding` must be >= 0 per axis, got {padding}")
    return stride, padding, dilation


def _as_numeric_array(x, name):
    if type(x) is not np.ndarray and not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise TypeError(f"`{name}` must be array-like, got {type(x).__name__}") from exc
    if x.dtype.kind not in "iufc":
        raise TypeError(
            f"`{name}` must have a real or complex numeric dtype, got dtype {x.dtype}"
        )
    return x


def _check_weights(W, b):
    W = _as_numeric_array(W, "W")
    b = _as_numeric_array(b, "b")
    if W.ndim != 4:
        raise ValueError(
            "`W` must be a 4-D array of shape (f_H, f_W, n_C_prev, n_C), "
            f"got ndim={W.ndim} (shape {W.shape})"
        )
    if 0 in W.shape:
        raise ValueError(f"`W` must have all dimensions >= 1, got shape {W.shape}")
    if b.shape != (W.shape[3],):
        raise ValueError(
            f"`b` must have shape (n_C,) = ({W.shape[3]},), one bias per filter "
            f"(`W.shape[3]`), got shape {b.shape}"
        )
    return W, b


def _geometry(A_prev, W, b, stride, padding, dilation):
    """Validate everything and return the arrays, dtype and geometry tuple."""
    stride, padding, dilation = _check_hyper(stride, padding, dilation)
    A_prev = _as_numeric_array(A_prev, "A_prev")
    W, b = _check_weights(W, b)
    if A_prev.ndim != 4:
        raise ValueError(
            "`A_prev` must be a 4-D array of shape (n_H, n_W, n_C, m), "
            f"got ndim={A_prev.ndim} (shape {A_prev.shape})"
        )
    if 0 in A_prev.shape:
        raise ValueError(
            f"`A_prev` must have all dimensions >= 1, got shape {A_prev.shape}"
        )
    n_H, n_W, n_C_prev, m = A_prev.shape
    f_H, f_W, w_C_prev, n_C = W.shape
    if w_C_prev != n_C_prev:
        raise ValueError(
            f"`A_prev.shape[2]` ({n_C_prev}) must match `W.shape[2]` ({w_C_prev}), "
            "the number of input channels"
        )
    s_H, s_W = stride
    d_H, d_W = dilation
    e_H = d_H * (f_H - 1) + 1  # rows spanned by the dilated kernel
    e_W = d_W * (f_W - 1) + 1
    if padding == "same":
        # torch: total padding d*(f-1); the odd extra goes bottom / right
        pt = (e_H - 1) // 2
        pl = (e_W - 1) // 2
        pads = (pt, e_H - 1 - pt, pl, e_W - 1 - pl)
    else:
        pads = (padding[0], padding[0], padding[1], padding[1])
    H_p = n_H + pads[0] + pads[1]
    W_p = n_W + pads[2] + pads[3]
    if e_H > H_p:
        raise ValueError(
            f"kernel with dilation spans {e_H} rows (`W.shape[0]`={f_H}, "
            f"`dilation`={dilation}), larger than the padded input's {H_p} rows "
            f"(`A_prev.shape[0]`={n_H}, `padding`=({pads[0]},{pads[1]}) "
            "top/bottom)"
        )
    if e_W > W_p:
        raise ValueError(
            f"kernel with dilation spans {e_W} columns (`W.shape[1]`={f_W}, "
            f"`dilation`={dilation}), larger than the padded input's {W_p} "
            f"columns (`A_prev.shape[1]`={n_W}, `padding`=({pads[2]},{pads[3]}) "
            "left/right)"
        )
    dtype = np.result_type(A_prev.dtype, W.dtype, b.dtype)
    if dtype.kind in "iu":
        dtype = np.dtype(np.float64)
    n_H_out = (H_p - e_H) // s_H + 1
    n_W_out = (W_p - e_W) // s_W + 1
    geom = _Geom(
        m, n_H, n_W, n_C_prev, n_C, f_H, f_W, s_H, s_W, d_H, d_W, pads, H_p, W_p,
        n_H_out, n_W_out,
    )
    return A_prev, W, b, dtype, geom


class _Geom:
    """All sizes of one convolution (plain attribute bag)."""

    __slots__ = (
        "m", "n_H", "n_W", "n_C_prev", "n_C", "f_H", "f_W", "s_H", "s_W",
        "d_H", "d_W", "pads", "H_p", "W_p", "n_H_out", "n_W_out",
    )

    def __init__(self, m, n_H, n_W, n_C_prev, n_C, f_H, f_W, s_H, s_W, d_H, d_W,
                 pads, H_p, W_p, n_H_out, n_W_out):
        self.m, self.n_H, self.n_W, self.n_C_prev, self.n_C = m, n_H, n_W, n_C_prev, n_C
        self.f_H, self.f_W, self.s_H, self.s_W, self.d_H, self.d_W = (
            f_H, f_W, s_H, s_W, d_H, d_W)
        self.pads, self.H_p, self.W_p = pads, H_p, W_p
        self.n_H_out, self.n_W_out = n_H_out, n_W_out


class _ConvCache:
    """What :func:`conv2d_forward` keeps for :func:`conv2d_backward`.

    Holds private arrays only (the padded input, its unfolding and a copy of
    the weights), so later in-place changes of the caller's arrays cannot leak
    into the backward pass.  ``X`` is the unfolded input (im2col paths) or the
    phase-split padded input (taps path); ``Xp`` the padded input from which
    ``X`` can be rebuilt (the im2col backward reuses ``X``'s memory for the
    unfolded input gradient and rebuilds it if backward is called again).
    """

    __slots__ = ("path", "geom", "dtype", "X", "Xp", "Wc", "extra", "x_spent")

    def __init__(self, path, geom, dtype, X, Xp, Wc, extra):
        self.path = path
        self.geom = geom
        self.dtype = dtype
        self.X = X
        self.Xp = Xp
        self.Wc = Wc
        self.extra = extra
        self.x_spent = False


def _strided(base, shape, strides):
    """Strided view of the C-contiguous ``base`` (cheaper than as_strided)."""
    return np.ndarray(shape, base.dtype, base, 0, strides)


# --------------------------------------------------------------------------
# im2col paths (all but huge problems).  The input is unfolded once in "CHWN"
# layout (channels, rows, columns, examples): with stride 1 every copy moves
# contiguous runs of n_W * m numbers.  The output rows are (x, y, n), i.e.
# "HWNC" order, so converting from / to the derivation's (n_H, n_W, n_C, m)
# only transposes the small (n_C, m) block of each pixel.
# --------------------------------------------------------------------------

def _pointwise(g):
    """1x1 kernel with stride 1: the padded input is its own unfolding."""
    return g.f_H == 1 and g.f_W == 1 and g.s_H == 1 and g.s_W == 1


def _unfold(Xp, g):
    """im2col of the padded input ``Xp`` (CHWN), with a last row of ones.

    ``cols[(a, c, ch), (x, y, n)] = A_pad[x*s_H + a*d_H, y*s_W + c*d_W, ch, n]``
    and ``cols[-1] = 1``: the ones row carries the bias through the forward
    GEMM and gives ``db`` in the ``dW`` GEMM.  For a pointwise kernel ``Xp``
    already holds the ones as an extra channel and ``cols`` is a view of it.
    """
    M = g.n_H_out * g.n_W_out * g.m
    if _pointwise(g):
        return Xp.reshape(g.n_C_prev + 1, M)
    K = g.f_H * g.f_W * g.n_C_prev
    s0, s1, s2, s3 = Xp.strides
    cols = np.empty((K + 1, M), Xp.dtype)
    shape = (g.f_H, g.f_W, g.n_C_prev, g.n_H_out, g.n_W_out, g.m)
    cols[:K].reshape(shape)[...] = _strided(
        Xp, shape, (g.d_H * s1, g.d_W * s2, s0, g.s_H * s1, g.s_W * s2, s3)
    )
    cols[K] = 1
    return cols


def _forward_im2col(A_prev, W, b, dtype, g):
    pt, _, pl, _ = g.pads
    C = g.n_C_prev
    if _pointwise(g):
        Xp = np.zeros((C + 1, g.H_p, g.W_p, g.m), dtype)
        Xp[C] = 1
    else:
        Xp = np.zeros((C, g.H_p, g.W_p, g.m), dtype)
    Xp[:C, pt:pt + g.n_H, pl:pl + g.n_W] = A_prev.transpose(2, 0, 1, 3)
    cols = _unfold(Xp, g)
    # private copy of the weights with the bias as an extra last row
    Wb = np.empty((cols.shape[0], g.n_C), dtype)
    Wb[:-1] = W.reshape(-1, g.n_C)
    Wb[-1] = b
    # eq. (26) + bias: one GEMM, rows (x, y, n), one column per filter
    Z = cols.T @ Wb
    Wc = Wb[:-1].reshape(W.shape)
    return Z.reshape(g.n_H_out, g.n_W_out, g.m, g.n_C), cols, Xp, Wc


def _backward_im2col(G, cache):
    g, dtype, Wc = cache.geom, cache.dtype, cache.Wc
    m, C, Co = g.m, g.n_C_prev, g.n_C
    f_H, f_W, s_H, s_W, d_H, d_W = g.f_H, g.f_W, g.s_H, g.s_W, g.d_H, g.d_W
    Ho, Wo = g.n_H_out, g.n_W_out
    T = f_H * f_W
    K = T * C
    if cache.x_spent:
        cache.X = _unfold(cache.Xp, g)
        cache.x_spent = False
    cols = cache.X
    # rows (x, y, n), channels last; a copy unless dZ is in HWNC memory order
    G2 = G.reshape(Ho * Wo * m, Co)
    # eq. (29), dW = A_prev ⋆ dZ, and eq. (31), db = sum of dZ over rows,
    # columns and examples: one GEMM on the unfolded input (ones row last)
    dWb = cols @ G2
    dW = dWb[:K].reshape(f_H, f_W, C, Co)
    db = dWb[K].copy()
    span_H = (Ho - 1) * s_H + 1  # extent of dZ dilated by s-1 zeros
    span_W = (Wo - 1) * s_W + 1
    if cache.path == "im2col_eq37":
        # eq. (37) literally: dA_pad = dilate_s(dZ) ⋆_full ROT180(W).  The
        # dilated dZ is zero-padded by e = d*(f-1) on each side (plus the
        # padded-input pixels that no window reaches: they get zero gradient)
        # and correlated with the rotated, channel-swapped, dilated kernel.
        e_H = d_H * (f_H - 1)
        e_W = d_W * (f_W - 1)
        Gd = np.zeros((Co, g.H_p + e_H, g.W_p + e_W, m), dtype)
        Gd[:, e_H:e_H + span_H:s_H, e_W:e_W + span_W:s_W] = G.transpose(3, 0, 1, 2)
        t0, t1, t2, t3 = Gd.strides
        gcols = _strided(
            Gd, (f_H, f_W, Co, g.H_p, g.W_p, m), (d_H * t1, d_W * t2, t0, t1, t2, t3)
        ).reshape(T * Co, g.H_p * g.W_p * m)
        Wrot = Wc[::-1, ::-1].transpose(0, 1, 3, 2).reshape(T * Co, C)
        # rows (x, y, n) of the padded input, channels last ("HWNC")
        dXp = (gcols.T @ Wrot).reshape(g.H_p, g.W_p, m, C)
        pt, _, pl, _ = g.pads
        return dXp[pt:pt + g.n_H, pl:pl + g.n_W].transpose(0, 1, 3, 2), dW, db
    elif _pointwise(g):
        # 1x1 kernel, stride 1: the unfolded gradient is the padded gradient
        dXp = (Wc.reshape(C, Co) @ G2.T).reshape(C, g.H_p, g.W_p, m)
    else:
        # The same sum as the adjoint of the forward ("col2im"): every tap
        # (a, c) sends W[a, c] dZ back to the pixels it read.  The unfolded
        # gradient overwrites the unfolded input, which is no longer needed
        # (one large allocation less); a second backward rebuilds it.
        dcols = np.matmul(Wc.reshape(K, Co), G2.T, out=cols[:K])
        cache.x_spent = True
        dcols = dcols.reshape(f_H, f_W, C, Ho, Wo, m)
        dXp = np.zeros((C, g.H_p, g.W_p, m), dtype)
        for a in range(f_H):
            r0 = a * d_H
            for c in range(f_W):
                c0 = c * d_W
                dXp[:, r0:r0 + span_H:s_H, c0:c0 + span_W:s_W] += dcols[a, c]
    pt, _, pl, _ = g.pads
    # gradient of the padded input, cropped back by the padding
    return dXp[:, pt:pt + g.n_H, pl:pl + g.n_W].transpose(1, 2, 0, 3), dW, db


# --------------------------------------------------------------------------
# "taps" path (huge problems): stride-phase ("space to depth") layout in
# "HWNC" order, one GEMM per kernel tap on a contiguous block of rows.
# --------------------------------------------------------------------------

def _taps(g, Wq, C):
    """Per kernel tap (a, c): row-block offset and column start (phase layout)."""
    s_H, s_W, d_H, d_W = g.s_H, g.s_W, g.d_H, g.d_W
    taps = []
    for a in range(g.f_H):
        oh, ph = divmod(a * d_H, s_H)
        for c in range(g.f_W):
            ow, pw = divmod(c * d_W, s_W)
            taps.append((a, c, (oh * Wq + ow) * g.m, (ph * s_W + pw) * C))
    return taps


def _forward_taps(A_prev, Wc, b, dtype, g):
    m, C, Co = g.m, g.n_C_prev, g.n_C
    s_H, s_W = g.s_H, g.s_W
    pt, _, pl, _ = g.pads
    # The padded input on a grid of (Hq, Wq) blocks of s_H x s_W pixels; row
    # (i*Wq + j)*m + n of X holds, for example n, the pixels
    # (i*s_H + ph, j*s_W + pw) of all phases (ph, pw), channels last.
    Hq = -(-g.H_p // s_H)
    Wq = -(-g.W_p // s_W)
    R = Hq * Wq * m
    P = s_H * s_W * C
    taps = _taps(g, Wq, C)
    tail = max(t[2] for t in taps)
    A_t = A_prev.transpose(0, 1, 3, 2)
    if s_H == 1 and s_W == 1:
        X = np.empty((R + tail, C), dtype)
        Xv = X[:R].reshape(Hq, Wq, m, C)
        Xv[:pt] = 0
        Xv[pt + g.n_H:] = 0
        Xv[pt:pt + g.n_H, :pl] = 0
        Xv[pt:pt + g.n_H, pl + g.n_W:] = 0
        Xv[pt:pt + g.n_H, pl:pl + g.n_W] = A_t
    else:
        Xp = np.zeros((Hq * s_H, Wq * s_W, m, C), dtype)
        Xp[pt:pt + g.n_H, pl:pl + g.n_W] = A_t
        X = np.empty((R + tail, P), dtype)
        X[:R].reshape(Hq, Wq, m, s_H, s_W, C)[...] = Xp.reshape(
            Hq, s_H, Wq, s_W, m, C
        ).transpose(0, 2, 4, 1, 3, 5)
        del Xp
    X[R:] = 0
    # eq. (26) as a sum over taps: row r of Zg is output (i, j, n) with
    # r = (i*Wq + j)*m + n (j >= W_out, i >= H_out are cropped "garbage");
    # tap (a, c) reads the contiguous block of rows starting at r + offset in
    # its stride phase, so each tap is one GEMM without any copy.
    Zg = np.empty((R, Co), dtype)
    tmp = np.empty((R, Co), dtype) if len(taps) > 1 else None
    for k, (a, c, off, c0) in enumerate(taps):
        if k == 0:
            np.matmul(X[off:off + R, c0:c0 + C], Wc[a, c], out=Zg)
        else:
            np.matmul(X[off:off + R, c0:c0 + C], Wc[a, c], out=tmp)
            Zg += tmp
    del tmp
    Z = Zg.reshape(Hq, Wq, m, Co)[:g.n_H_out, :g.n_W_out] + b
    return Z, X, (Hq, Wq, R, taps)


def _backward_taps(G, cache):
    g, dtype, X, Wc = cache.geom, cache.dtype, cache.X, cache.Wc
    Hq, Wq, R, taps = cache.extra
    m, C, Co = g.m, g.n_C_prev, g.n_C
    s_H, s_W = g.s_H, g.s_W
    Ho, Wo = g.n_H_out, g.n_W_out
    # dZ on the padded grid (zeros on the cropped "garbage" rows)
    Gg = np.empty((R, Co), dtype)
    Gv = Gg.reshape(Hq, Wq, m, Co)
    Gv[Ho:] = 0
    Gv[:Ho, Wo:] = 0
    Gv[:Ho, :Wo] = G
    # eq. (31)
    db = G.sum(axis=(0, 1, 2))
    # eq. (29), one GEMM per tap: dW[a, c] = X_tap^T dZ
    dW = np.empty((g.f_H, g.f_W, C, Co), dtype)
    for a, c, off, c0 in taps:
        np.matmul(X[off:off + R, c0:c0 + C].T, Gg, out=dW[a, c])
    # eq. (37) evaluated tap by tap (adjoint of the forward): tap (a, c) sends
    # dZ @ W[a, c]^T back to the input pixels it read.
    dX = np.zeros(X.shape, dtype)
    tmp = np.empty((R, C), dtype)
    for a, c, off, c0 in taps:
        np.matmul(Gg, Wc[a, c].T, out=tmp)
        dX[off:off + R, c0:c0 + C] += tmp
    del tmp, Gg
    pt, _, pl, _ = g.pads
    if s_H == 1 and s_W == 1:
        dXp = dX[:R].reshape(Hq, Wq, m, C)
    else:
        dXp = (
            dX[:R]
            .reshape(Hq, Wq, m, s_H, s_W, C)
            .transpose(0, 3, 1, 4, 2, 5)
            .reshape(Hq * s_H, Wq * s_W, m, C)
        )
    return dXp[pt:pt + g.n_H, pl:pl + g.n_W], dW, db


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def conv2d_forward(A_prev, W, b, *, stride=1, padding=0, dilation=1):
    """Forward pass of a 2-D convolution layer (cross-correlation, eq. (26)).

    Computes, for every example ``n``, filter ``k`` and output pixel
    ``(x, y)``::

        Z[x, y, k, n] = sum_{a, c, ch} A_pad[x*s_H + a*d_H, y*s_W + c*d_W, ch, n]
                                       * W[a, c, ch, k]  +  b[k]

    which is eq. (26), ``z[x,y] = Σ_a Σ_b a_prev[x+a, y+b] w[a,b] + b``, summed
    over the input channels and generalized as follows:

    * **stride** ``(s_H, s_W)``: the window of output ``(x, y)`` starts at
      ``(x*s_H, y*s_W)`` instead of ``(x, y)`` -- only every ``s``-th position
      of the stride-1 correlation is kept;
    * **dilation** ``(d_H, d_W)``: the kernel taps are spaced ``d`` apart, tap
      ``(a, c)`` reads the pixel at offset ``(a*d_H, c*d_W)``; the kernel then
      spans ``d*(f-1)+1`` pixels per axis;
    * **padding**: ``A_pad`` is ``A_prev`` with ``p`` zero rows added on top and
      bottom and ``p`` zero columns left and right.  ``"valid"`` means ``p=0``.
      ``"same"`` (only with stride 1, as in torch) pads ``d*(f-1)`` in total per
      axis, ``floor`` of half before and the rest after (bottom / right), so the
      output has the input's size.

    Output size per axis: ``n_out = floor((n + 2p - d*(f-1) - 1) / s) + 1``.

    Parameters
    ----------
    A_prev : ndarray, shape (n_H_prev, n_W_prev, n_C_prev, m)
        Input activations, examples last.  Not modified.
    W : ndarray, shape (f_H, f_W, n_C_prev, n_C)
        Filters.  Not modified; a private copy is kept in the cache.
    b : ndarray, shape (n_C,)
        One bias per filter.  Not modified.
    stride : int or (int, int), default 1
        ``(s_H, s_W)``, each ``>= 1``.
    padding : int or (int, int) or {"same", "valid"}, default 0
        Zero padding ``(p_H, p_W)`` (each ``>= 0``) on both sides of each axis.
    dilation : int or (int, int), default 1
        ``(d_H, d_W)``, each ``>= 1``.

    Returns
    -------
    Z : ndarray, shape (n_H, n_W, n_C, m)
        Pre-activations.  Fresh memory (a transposed view of an
        ``(n_H, n_W, m, n_C)`` buffer); dtype is the common dtype of the inputs
        (integers are promoted to float64).
    cache : object
        Opaque cache for :func:`conv2d_backward`.

    Raises
    ------
    ValueError
        Wrong ``ndim`` or shapes, ``b`` not of shape ``(n_C,)``, channel
        mismatch, ``stride``/``dilation`` < 1, negative padding, unknown padding
        string, ``"same"`` with a stride > 1, or a dilated kernel larger than
        the padded input.  The message names the argument and its value.
    TypeError
        Non-numeric arrays or non-integer hyper-parameters.
    """
    A_prev, W, b, dtype, g = _geometry(A_prev, W, b, stride, padding, dilation)
    path = _FORCE
    if path is None:
        taps = g.f_H * g.f_W
        n_cols = taps * g.n_C_prev * g.n_H_out * g.n_W_out * g.m
        n_gcols = taps * g.n_C * g.H_p * g.W_p * g.m  # unfolded padded dZ, eq. (37)
        if n_cols * dtype.itemsize > _IM2COL_MAX_BYTES:
            path = "taps"
        elif g.s_H == 1 and g.s_W == 1 and (
            n_gcols <= _EQ37_TINY_ELEMENTS or n_gcols <= _EQ37_RATIO * n_cols
        ):
            path = "im2col_eq37"
        else:
            path = "im2col"
    if path == "taps":
        Wc = W.astype(dtype, order="C", copy=True)  # private copy for backward
        Z, X, extra = _forward_taps(A_prev, Wc, b, dtype, g)
        cache = _ConvCache(path, g, dtype, X, None, Wc, extra)
    else:
        Z, cols, Xp, Wc = _forward_im2col(A_prev, W, b, dtype, g)
        cache = _ConvCache(path, g, dtype, cols, Xp, Wc, None)
    return Z.transpose(0, 1, 3, 2), cache


def conv2d_backward(dZ, cache):
    """Backward pass of :func:`conv2d_forward`: eqs. (29), (31) and (37).

    With ``dZ = dJ/dZ`` (upstream gradient):

    * eq. (29), ``dW = A_prev ⋆ dZ``: ``dW[a, c, ch, k] = sum_{x, y, n}
      A_pad[x*s_H + a*d_H, y*s_W + c*d_W, ch, n] * dZ[x, y, k, n]``.  With a
      **stride** the correlation of the padded input with ``dZ`` is taken with
      ``dZ``'s entries spaced ``s`` apart (``dZ`` dilated by ``s-1`` zeros); with
      a **dilation** only every ``d``-th lag is kept (the taps of the kernel);
      **padding** just means ``A_pad`` is correlated instead of ``A_prev``.
    * eq. (31), ``db[k] = sum_{x, y, n} dZ[x, y, k, n]`` -- unchanged by stride,
      padding and dilation.
    * eq. (37), ``dA_prev = dZ ⋆_full ROT180(W)``: ``dZ`` is zero-padded by
      ``f-1`` on every side and correlated with the kernel rotated by 180
      degrees, summed over the ``n_C`` filters (``W`` with its two channel axes
      swapped).  Generalized: **stride** -- ``dZ`` is first dilated by inserting
      ``s-1`` zeros between its entries (rows and columns separately), input
      pixels that no window reached get zero gradient; **dilation** -- the
      rotated kernel's taps are spaced ``d`` apart and the full padding becomes
      ``d*(f-1)``; **padding** -- the result is the gradient of the *padded*
      input, which is cropped back by ``p`` (``"same"``: by the asymmetric
      top/bottom, left/right amounts) to the shape of ``A_prev``.

    As in the layer abstraction of the project, the factor ``g'(Z^[l-1])`` that
    the derivation multiplies onto (37) belongs to the activation layer, so
    this returns ``dA_prev = dJ/dA_prev``.

    Parameters
    ----------
    dZ : ndarray, shape (n_H, n_W, n_C, m)
        Upstream gradient, same shape as the forward output ``Z``.  Not
        modified.
    cache : object
        The cache returned by :func:`conv2d_forward`.

    Returns
    -------
    dA_prev : ndarray, shape (n_H_prev, n_W_prev, n_C_prev, m)
        Gradient w.r.t. the input (a transposed, cropped view of a fresh
        buffer holding the gradient of the padded input).
    dW : ndarray, shape (f_H, f_W, n_C_prev, n_C)
        Gradient w.r.t. the filters, fresh array.
    db : ndarray, shape (n_C,)
        Gradient w.r.t. the bias, fresh array.

    Raises
    ------
    TypeError
        ``cache`` is not a cache from :func:`conv2d_forward`, or ``dZ`` is not
        numeric.
    ValueError
        ``dZ`` does not have the shape of the forward output.
    """
    if not isinstance(cache, _ConvCache):
        raise TypeError(
            "`cache` must be the cache returned by conv2d_forward, "
            f"got {type(cache).__name__}"
        )
    dZ = _as_numeric_array(dZ, "dZ")
    g = cache.geom
    expected = (g.n_H_out, g.n_W_out, g.n_C, g.m)
    if dZ.shape != expected:
        raise ValueError(
            f"`dZ.shape` {dZ.shape} must equal the forward output shape {expected} "
            "(n_H, n_W, n_C, m)"
        )
    if np.result_type(dZ.dtype, cache.dtype) != cache.dtype:
        # e.g. complex dZ on a real forward: recompute in the wider dtype
        cache = _promote_cache(cache, np.result_type(dZ.dtype, cache.dtype))
    G = dZ.transpose(0, 1, 3, 2)  # (n_H, n_W, m, n_C) view
    if cache.path == "taps":
        dXp, dW, db = _backward_taps(G, cache)
        return dXp.transpose(0, 1, 3, 2), dW, db
    return _backward_im2col(G, cache)


def _promote_cache(cache, dtype):
    """Copy of ``cache`` in a wider dtype (e.g. complex dZ on a real forward)."""
    if cache.path == "taps":
        X, Xp = cache.X.astype(dtype), None
    else:
        Xp = cache.Xp.astype(dtype)
        X = _unfold(Xp, cache.geom)
    return _ConvCache(
        cache.path, cache.geom, dtype, X, Xp, cache.Wc.astype(dtype), cache.extra
    )


class Conv2D:
    """2-D convolution layer (eqs. (26), (29), (31), (37)) -- thin wrapper.

    Implements the project's Layer protocol around :func:`conv2d_forward` and
    :func:`conv2d_backward`.

    Parameters
    ----------
    W : ndarray, shape (f_H, f_W, n_C_prev, n_C)
        Filters, a float array (float64, float32 or float16; anything else,
        a list or an integer array, is a TypeError naming it); stored as
        ``params["W"]`` *without copying*.
    b : ndarray, shape (n_C,)
        Biases; a float array stored as ``params["b"]`` likewise.
    stride, padding, dilation
        As in :func:`conv2d_forward`; validated here, at construction.

    Attributes
    ----------
    params : dict
        ``{"W": W, "b": b}``.  The gradient checker perturbs these arrays in
        place; :meth:`forward` reads them at call time.
    grads : dict
        Filled by :meth:`backward` with ``{"W": dW, "b": db}`` (same shapes as
        ``params``).
    input_name : str
        ``"A_prev"``, the label used in reports for the gradient w.r.t. ``x``.
    """

    input_name = "A_prev"
    complex_safe = True   # only +, * and BLAS products: holomorphic (complex-step ready)

    def __init__(self, W, b, *, stride=1, padding=0, dilation=1):
        self.stride, self.padding, self.dilation = _check_hyper(stride, padding, dilation)
        require_float_array("W", W)
        require_float_array("b", b)
        W, b = _check_weights(W, b)
        self.params = {"W": W, "b": b}
        self.grads = {}
        self._cache = None

    def __repr__(self):
        f_H, f_W, c_in, c_out = self.params["W"].shape
        return (
            f"Conv2D({c_in}->{c_out}, kernel=({f_H}, {f_W}), stride={self.stride}, "
            f"padding={self.padding!r}, dilation={self.dilation})"
        )

    def forward(self, x):
        """Return ``Z`` for input ``x`` of shape (n_H, n_W, n_C_prev, m); eq. (26).

        Reads ``params["W"]`` and ``params["b"]`` now and caches what
        :meth:`backward` needs.
        """
        require_ndarray(self.input_name, x)
        Z, self._cache = conv2d_forward(
            x, self.params["W"], self.params["b"],
            stride=self.stride, padding=self.padding, dilation=self.dilation,
        )
        return Z

    def jacobian_coloring(self, name, shape):
        """Return groups of entries of tensor ``name`` (of ``shape``) that move disjoint outputs.

        Input rows ``h1, h2`` feed a common output only when
        ``|h1 - h2| <= d_H (f_H - 1)`` (and likewise for columns), so entries
        ``d(f-1)+1`` apart along both axes, in any example, form one group per
        (row phase, column phase, channel). ``W[a, b, c, k]`` moves only filter
        ``k``'s outputs: one group per ``(a, b, c)``; all of ``b`` is one group.
        """
        if name == "b":
            return np.zeros(shape, dtype=np.int64)
        if name == "W":
            return np.broadcast_to(np.arange(np.prod(shape[:3])).reshape(*shape[:3], 1),
                                   shape).copy()
        if name != "x":
            return None
        f_H, f_W = self.params["W"].shape[:2]
        p_H = self.dilation[0] * (f_H - 1) + 1
        p_W = self.dilation[1] * (f_W - 1) + 1
        n_H, n_W, n_C, _ = shape
        phase = (np.arange(n_H)[:, None] % p_H) * p_W + np.arange(n_W)[None, :] % p_W
        colors = phase[:, :, None] * n_C + np.arange(n_C)[None, None, :]
        return np.broadcast_to(colors[..., None], shape).copy()

    def backward(self, dout):
        """Return ``dA_prev`` for upstream gradient ``dout``; fill ``grads``.

        Uses eqs. (29), (31), (37) via :func:`conv2d_backward` on the cache of
        the last :meth:`forward` call.
        """
        if self._cache is None:
            raise RuntimeError("Conv2D.backward called before forward")
        require_ndarray("dout", dout)
        dA_prev, dW, db = conv2d_backward(dout, self._cache)
        self.grads["W"] = dW
        self.grads["b"] = db
        return dA_prev
