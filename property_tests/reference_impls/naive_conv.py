"""Naive, obviously-correct loop implementation of the conv layer (test oracle).

A third opinion for ``reference_impls/conv.py``, written for readability, not
speed: explicit Python loops over output pixels and kernel taps, and the
derivation's formulas taken literally, one after the other.  Layout is the
derivation's: activations ``(n_H, n_W, n_C, m)``, weights
``(f_H, f_W, n_C_prev, n_C)``, bias ``(n_C,)``.

* forward, eq. (26): ``Z[x, y] = sum_{a, c} A_pad[x*s_H + a*d_H, y*s_W + c*d_W] W[a, c] + b``;
* ``dW``, eq. (29): ``dW[a, c] = sum_{x, y} A_pad[x*s_H + a*d_H, y*s_W + c*d_W] dZ[x, y]``;
* ``db``, eq. (31): ``db = sum_{x, y, n} dZ[x, y, :, n]``;
* ``dA_prev``, eq. (37): ``dZ`` dilated by ``s-1`` zeros, zero-padded by
  ``d*(f-1)`` on every side ("full"), correlated with ``ROT180(W)`` (taps
  ``d`` apart, input/output channels swapped); the result is the gradient of
  the padded input, cropped back by the padding.

Only hyper-parameters in normalized form are accepted: ``stride`` and
``dilation`` as ``(H, W)`` pairs, ``padding`` as a pair or ``"same"`` /
``"valid"`` (no validation: this is test code).
"""

from __future__ import annotations

import numpy as np

__all__ = ["resolve_padding", "naive_conv2d_forward", "naive_conv2d_backward"]


def resolve_padding(padding, kernel, dilation):
    """Return ``(top, bottom, left, right)`` zero padding.

    ``"same"`` follows torch: ``d*(f-1)`` in total per axis, half (rounded
    down) before, the rest after.
    """
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        out = []
        for f, d in zip(kernel, dilation):
            total = d * (f - 1)
            out += [total // 2, total - total // 2]
        return tuple(out)
    p_h, p_w = padding
    return (p_h, p_h, p_w, p_w)


def _pad(A, pads):
    top, bottom, left, right = pads
    n_H, n_W, n_C, m = A.shape
    out = np.zeros((n_H + top + bottom, n_W + left + right, n_C, m), dtype=A.dtype)
    out[top:top + n_H, left:left + n_W] = A
    return out


def _out_size(n_padded, f, s, d):
    return (n_padded - d * (f - 1) - 1) // s + 1


def naive_conv2d_forward(A_prev, W, b, stride, padding, dilation):
    """Eq. (26) with explicit loops; returns ``Z`` of shape (n_H, n_W, n_C, m)."""
    f_H, f_W, _, n_C = W.shape
    s_H, s_W = stride
    d_H, d_W = dilation
    A_pad = _pad(A_prev, resolve_padding(padding, (f_H, f_W), dilation))
    m = A_prev.shape[3]
    n_H = _out_size(A_pad.shape[0], f_H, s_H, d_H)
    n_W = _out_size(A_pad.shape[1], f_W, s_W, d_W)
    dtype = np.result_type(A_prev, W, b)
    Z = np.zeros((n_H, n_W, n_C, m), dtype=dtype)
    for x in range(n_H):
        for y in range(n_W):
            acc = np.zeros((n_C, m), dtype=dtype)
            for a in range(f_H):
                for c in range(f_W):
                    pixel = A_pad[x * s_H + a * d_H, y * s_W + c * d_W]  # (n_C_prev, m)
                    acc = acc + W[a, c].T @ pixel
            Z[x, y] = acc + b[:, None]
    return Z


def naive_conv2d_backward(dZ, A_prev, W, stride, padding, dilation):
    """Eqs. (29), (31), (37) with explicit loops; returns ``(dA_prev, dW, db)``."""
    f_H, f_W, n_C_prev, n_C = W.shape
    s_H, s_W = stride
    d_H, d_W = dilation
    pads = resolve_padding(padding, (f_H, f_W), dilation)
    A_pad = _pad(A_prev, pads)
    n_H, n_W, _, m = dZ.shape
    dtype = np.result_type(dZ, A_prev, W)

    # eq. (29): dW = A_prev ⋆ dZ
    dW = np.zeros(W.shape, dtype=dtype)
    for a in range(f_H):
        for c in range(f_W):
            for x in range(n_H):
                for y in range(n_W):
                    pixel = A_pad[x * s_H + a * d_H, y * s_W + c * d_W]  # (n_C_prev, m)
                    dW[a, c] += pixel @ dZ[x, y].T

    # eq. (31): db = sum of dZ over rows, columns and examples
    db = np.zeros(n_C, dtype=dtype)
    for x in range(n_H):
        for y in range(n_W):
            db += dZ[x, y].sum(axis=1)

    # eq. (37): dA_pad = dilate_s(dZ) ⋆_full ROT180(W)
    dil = np.zeros(((n_H - 1) * s_H + 1, (n_W - 1) * s_W + 1, n_C, m), dtype=dtype)
    dil[::s_H, ::s_W] = dZ  # s-1 zeros between entries
    e_H, e_W = d_H * (f_H - 1), d_W * (f_W - 1)
    full = _pad(dil, (e_H, e_H, e_W, e_W))
    W_rot = W[::-1, ::-1]  # ROT180: flipped up-down and left-right
    rows = dil.shape[0] + e_H  # padded-input rows that some window reaches
    cols = dil.shape[1] + e_W
    dA_pad = np.zeros(A_pad.shape, dtype=dtype)
    for u in range(rows):
        for v in range(cols):
            acc = np.zeros((n_C_prev, m), dtype=dtype)
            for a in range(f_H):
                for c in range(f_W):
                    acc = acc + W_rot[a, c] @ full[u + a * d_H, v + c * d_W]
            dA_pad[u, v] = acc
    top, _, left, _ = pads
    dA_prev = dA_pad[top:top + A_prev.shape[0], left:left + A_prev.shape[1]].copy()
    return dA_prev, dW, db
