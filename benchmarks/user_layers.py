"""Plain NumPy layers, written the way a student or a researcher writes them.

Nothing here knows about gradcheck: no ``jacobian_coloring``, no
``complex_safe``, no import of the checker. Each layer is a pair of functions in
the convention of a course assignment (and of ``gradcheck.check_function``):

- ``*_forward(*args) -> (*outputs, cache)``: the outputs, then whatever the
  backward needs;
- ``*_backward(*douts, cache) -> gradients``: one gradient per differentiable
  argument (every float array), in argument order; one bare array when there
  is one. Integer labels and hyperparameter dicts (``conv_param``,
  ``pool_param``, ``ln_param``) are passed through and get no gradient.

``softmax_loss(scores, y) -> (loss, dscores)`` returns its value and gradient
together instead (``gradcheck.check_value_and_grad``). Everything is float64;
layouts are NCHW for images and ``(N, D)`` rows for vectors.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "affine_forward", "affine_backward",
    "relu_forward", "relu_backward",
    "conv_forward", "conv_backward",
    "max_pool_forward", "max_pool_backward",
    "avg_pool_forward", "avg_pool_backward",
    "layernorm_forward", "layernorm_backward",
    "softmax_loss",
    "lstm_step_forward", "lstm_step_backward",
    "attention_forward", "attention_backward",
]


# ------------------------------------------------------------------------ dense
def affine_forward(x, w, b):
    """Affine map of rows: ``out = x @ w + b``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
        One example per row.
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(x, w)``.
    """
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    """Gradients of :func:`affine_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
    cache : tuple
        From :func:`affine_forward`.

    Returns
    -------
    dx, dw, db : ndarray
        Shapes of ``x``, ``w`` and ``b``.
    """
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def relu_forward(x):
    """Rectifier, elementwise: ``max(x, 0)``; the cache is ``x``."""
    return np.maximum(x, 0.0), x


def relu_backward(dout, cache):
    """Gradient of :func:`relu_forward`: ``dout`` where ``x > 0``, else 0."""
    return dout * (cache > 0)


# ------------------------------------------------------------------ convolution
def _windows(a, height, width, stride=1):
    """Every ``height × width`` window of the last two axes of ``a``, at ``stride``.

    Returns a read-only view of shape ``a.shape[:2] + (out_h, out_w, height, width)``.
    """
    view = sliding_window_view(a, (height, width), axis=(2, 3))
    return view[:, :, ::stride, ::stride]


def conv_forward(x, w, b, conv_param):
    """2-D convolution (cross-correlation), NCHW.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, HH, WW)
        One filter per output channel.
    b : ndarray, shape (F,)
    conv_param : dict
        ``{"stride": s, "pad": p}``: zero padding ``p`` on each side of H and W.

    Returns
    -------
    out : ndarray, shape (N, F, 1 + (H + 2p - HH) // s, 1 + (W + 2p - WW) // s)
    cache : tuple
        ``(x, w, conv_param)``.
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, HH, WW = w.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = _windows(padded, HH, WW, stride)                    # (N, C, Ho, Wo, HH, WW)
    out = np.einsum("nchwij,fcij->nfhw", cols, w, optimize=True)
    return out + b[None, :, None, None], (x, w, conv_param)


def conv_backward(dout, cache):
    """Gradients of :func:`conv_forward`.

    ``dx`` is the full correlation of ``dout`` (spread onto the stride's grid)
    with the filters turned by 180 degrees, cropped to the unpadded input.

    Parameters
    ----------
    dout : ndarray, shape (N, F, Ho, Wo)
    cache : tuple
        From :func:`conv_forward`.

    Returns
    -------
    dx, dw, db : ndarray
        Shapes of ``x``, ``w`` and ``b``.
    """
    x, w, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = _windows(padded, HH, WW, stride)
    dw = np.einsum("nchwij,nfhw->fcij", cols, dout, optimize=True)
    db = dout.sum(axis=(0, 2, 3))

    spread = np.zeros((N, F, (Ho - 1) * stride + 1, (Wo - 1) * stride + 1))
    spread[:, :, ::stride, ::stride] = dout
    # rows and columns of the padded input that no window reached get zeros
    rest_h = H + 2 * pad - HH - (Ho - 1) * stride
    rest_w = W + 2 * pad - WW - (Wo - 1) * stride
    spread = np.pad(spread, ((0, 0), (0, 0), (HH - 1, HH - 1 + rest_h), (WW - 1, WW - 1 + rest_w)))
    flipped = w[:, :, ::-1, ::-1]
    dpadded = np.einsum("nfhwij,fcij->nchw", _windows(spread, HH, WW), flipped, optimize=True)
    dx = dpadded[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db


# ---------------------------------------------------------------------- pooling
def _pool_windows(x, pool_param):
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    return _windows(x, ph, pw, stride)


def max_pool_forward(x, pool_param):
    """Max pooling, NCHW; windows may overlap (``stride < pool size``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    pool_param : dict
        ``{"pool_height": ph, "pool_width": pw, "stride": s}``; no padding.

    Returns
    -------
    out : ndarray, shape (N, C, 1 + (H - ph) // s, 1 + (W - pw) // s)
    cache : tuple
        ``(x, pool_param)``.
    """
    return _pool_windows(x, pool_param).max(axis=(4, 5)), (x, pool_param)


def max_pool_backward(dout, cache):
    """Gradient of :func:`max_pool_forward`.

    Each window's gradient goes to its (first) maximum; an entry that is the
    maximum of several overlapping windows gets the sum of their gradients.

    Parameters
    ----------
    dout : ndarray, shape (N, C, Ho, Wo)
    cache : tuple
        From :func:`max_pool_forward`.

    Returns
    -------
    dx : ndarray, shape of ``x``
    """
    x, pool_param = cache
    pw, stride = pool_param["pool_width"], pool_param["stride"]
    windows = _pool_windows(x, pool_param)
    N, C, Ho, Wo = windows.shape[:4]
    winner = windows.reshape(N, C, Ho, Wo, -1).argmax(axis=-1)
    di, dj = np.divmod(winner, pw)
    rows = stride * np.arange(Ho)[:, None] + di                # (N, C, Ho, Wo)
    cols = stride * np.arange(Wo)[None, :] + dj
    n = np.arange(N)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    dx = np.zeros_like(x)
    np.add.at(dx, (n, c, rows, cols), dout)
    return dx


def avg_pool_forward(x, pool_param):
    """Average pooling, NCHW; windows may overlap. Same arguments as :func:`max_pool_forward`."""
    return _pool_windows(x, pool_param).mean(axis=(4, 5)), (x.shape, pool_param)


def avg_pool_backward(dout, cache):
    """Gradient of :func:`avg_pool_forward`: each window's gradient spread evenly over it.

    Loops over the ``ph × pw`` taps of the window only; overlapping windows add.
    """
    shape, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    Ho, Wo = dout.shape[2:]
    share = dout / (ph * pw)
    dx = np.zeros(shape)
    for i in range(ph):
        for j in range(pw):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += share
    return dx


# ---------------------------------------------------------------- normalization
def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalization over the last axis, then a scale and a shift.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
    ln_param : dict
        ``{"eps": eps}``, added to the variance.

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : tuple
        ``(xhat, inv_std, gamma)``.
    """
    mean = x.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + ln_param["eps"])
    xhat = (x - mean) * inv_std
    return gamma * xhat + beta, (xhat, inv_std, gamma)


def layernorm_backward(dout, cache):
    """Gradients of :func:`layernorm_forward`, through the row's mean and variance.

    Returns
    -------
    dx, dgamma, dbeta : ndarray
        Shapes of ``x``, ``gamma`` and ``beta``.
    """
    xhat, inv_std, gamma = cache
    dxhat = dout * gamma
    dx = inv_std * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                    - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


# ------------------------------------------------------------------------- loss
def softmax_loss(scores, y):
    """Mean cross-entropy of the softmax of each row, and its gradient.

    Parameters
    ----------
    scores : ndarray, shape (N, K)
    y : ndarray of int, shape (N,)
        The class of each row, in ``[0, K)``.

    Returns
    -------
    loss : float
    dscores : ndarray, shape (N, K)
    """
    N = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    dscores = np.exp(log_probs)
    dscores[np.arange(N), y] -= 1.0
    return loss, dscores / N


# ------------------------------------------------------------------------- lstm
def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step; the gates are stacked input, forget, output, candidate.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    prev_h, prev_c : ndarray, shape (N, H)
    Wx : ndarray, shape (D, 4H)
    Wh : ndarray, shape (H, 4H)
    b : ndarray, shape (4H,)

    Returns
    -------
    next_h, next_c : ndarray, shape (N, H)
    cache : tuple
    """
    pre = x @ Wx + prev_h @ Wh + b
    i, f, o, g = np.split(pre, 4, axis=1)
    i, f, o, g = _sigmoid(i), _sigmoid(f), _sigmoid(o), np.tanh(g)
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Gradients of :func:`lstm_step_forward`, given both outputs' upstream gradients.

    Returns
    -------
    dx, dprev_h, dprev_c, dWx, dWh, db : ndarray
        Shapes of the forward's arguments, in their order.
    """
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1.0 - tanh_c ** 2)
    dpre = np.concatenate([dc * g * i * (1.0 - i),
                           dc * prev_c * f * (1.0 - f),
                           dnext_h * tanh_c * o * (1.0 - o),
                           dc * i * (1.0 - g ** 2)], axis=1)
    return dpre @ Wx.T, dpre @ Wh.T, dc * f, x.T @ dpre, prev_h.T @ dpre, dpre.sum(axis=0)


# -------------------------------------------------------------------- attention
def attention_forward(Q, K, V):
    """Scaled dot-product attention: ``softmax(Q Kᵀ / sqrt(d)) V``, batched.

    Parameters
    ----------
    Q, K, V : ndarray, shape (B, T, d)

    Returns
    -------
    out : ndarray, shape (B, T, d)
    cache : tuple
        ``(Q, K, V, P)`` with ``P`` the attention weights, shape (B, T, T).
    """
    scores = Q @ K.transpose(0, 2, 1) / np.sqrt(Q.shape[-1])
    scores -= scores.max(axis=-1, keepdims=True)
    P = np.exp(scores)
    P /= P.sum(axis=-1, keepdims=True)
    return P @ V, (Q, K, V, P)


def attention_backward(dout, cache):
    """Gradients of :func:`attention_forward`.

    Returns
    -------
    dQ, dK, dV : ndarray, shape (B, T, d)
    """
    Q, K, V, P = cache
    scale = 1.0 / np.sqrt(Q.shape[-1])
    dV = P.transpose(0, 2, 1) @ dout
    dP = dout @ V.transpose(0, 2, 1)
    dscores = P * (dP - (dP * P).sum(axis=-1, keepdims=True)) * scale
    return dscores @ K, dscores.transpose(0, 2, 1) @ Q, dV
