"""Correct hand-written layers, written the way a deep-learning course assignment asks.

These are the functions a user of ``gradcheck`` brings: plain NumPy
``forward``/``backward`` pairs in the cs231n tradition, written afresh here.
Conventions:

- ``*_forward(*inputs) -> (*outputs, cache)`` and
  ``*_backward(*douts, cache) -> gradients`` of the floating-point inputs, in
  the order of the inputs (a single array when there is one);
- data is laid out rows-as-examples ``(N, D)``, images ``(N, C, H, W)``,
  sequences ``(N, T, D)``;
- losses are ``loss(x, y, ...) -> (loss, dx)``;
- hyperparameters come in dicts (``bn_param``, ``conv_param``, ...) that a
  forward pass may update in place (running means), labels and indices are
  integer arrays, masks boolean arrays.

Every function here is correct: its backward is the exact gradient of its
forward. ``property_tests/corpus/user_bugs.py`` holds wrong copies of them and
``property_tests/corpus/catalog.py`` pairs each with inputs.
"""

import numpy as np


# ------------------------------------------------------------------ affine layers
def affine_forward(x, w, b):
    """Fully connected layer on inputs of any shape ``(N, d_1, ..., d_k)``.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        Each example is flattened to a row of length ``D = d_1 * ... * d_k``.
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
    """
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Gradients ``(dx, dw, db)`` of :func:`affine_forward`; ``dx`` has ``x``'s shape."""
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def temporal_affine_forward(x, w, b):
    """The same affine map applied at every time step of ``x`` of shape ``(N, T, D)``.

    Returns ``out`` of shape ``(N, T, M)`` and a cache.
    """
    N, T, D = x.shape
    M = b.shape[0]
    out = x.reshape(N * T, D).dot(w).reshape(N, T, M) + b
    cache = (x, w, b, out)
    return out, cache


def temporal_affine_backward(dout, cache):
    """Gradients ``(dx, dw, db)`` of :func:`temporal_affine_forward`."""
    x, w, b, out = cache
    N, T, D = x.shape
    M = b.shape[0]
    dx = dout.reshape(N * T, M).dot(w.T).reshape(N, T, D)
    dw = x.reshape(N * T, D).T.dot(dout.reshape(N * T, M))
    db = dout.sum(axis=(0, 1))
    return dx, dw, db


# -------------------------------------------------------------------- activations
def relu_forward(x):
    """ReLU, ``max(0, x)`` elementwise; the cache is ``x``."""
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Gradient of :func:`relu_forward`: ``dout`` where ``x > 0``, 0 elsewhere."""
    x = cache
    dx = dout * (x > 0)
    return dx


def leaky_relu_forward(x, lrelu_param):
    """Leaky ReLU with slope ``lrelu_param['alpha']`` (default 0.01) for ``x < 0``."""
    alpha = lrelu_param.get("alpha", 0.01)
    out = np.where(x > 0, x, alpha * x)
    cache = (x, alpha)
    return out, cache


def leaky_relu_backward(dout, cache):
    """Gradient of :func:`leaky_relu_forward`."""
    x, alpha = cache
    dx = np.where(x > 0, dout, alpha * dout)
    return dx


def sigmoid_forward(x):
    """Logistic sigmoid; the cache is the output, which is all the backward needs."""
    out = 1.0 / (1.0 + np.exp(-x))
    cache = out
    return out, cache


def sigmoid_backward(dout, cache):
    """Gradient of :func:`sigmoid_forward`: ``dout * s * (1 - s)`` with ``s`` the output."""
    s = cache
    dx = dout * s * (1 - s)
    return dx


def tanh_forward(x):
    """Hyperbolic tangent; the cache is the output."""
    out = np.tanh(x)
    cache = out
    return out, cache


def tanh_backward(dout, cache):
    """Gradient of :func:`tanh_forward`: ``dout * (1 - out**2)``."""
    out = cache
    dx = dout * (1 - out ** 2)
    return dx


def affine_relu_forward(x, w, b):
    """Convenience "sandwich" layer: an affine transform followed by a ReLU."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    cache = (fc_cache, relu_cache)
    return out, cache


def affine_relu_backward(dout, cache):
    """Gradients ``(dx, dw, db)`` of :func:`affine_relu_forward`."""
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db


# ------------------------------------------------------------------ normalization
def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization of ``x`` of shape ``(N, D)`` over the batch axis.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
        Scale and shift.
    bn_param : dict
        ``mode`` ("train" or "test"), optional ``eps`` (1e-5), ``momentum``
        (0.9), ``running_mean`` and ``running_var``; the running averages are
        updated in place in train mode.

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : tuple or None
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        xhat = (x - mu) / np.sqrt(var + eps)
        out = gamma * xhat + beta
        cache = (x, xhat, mu, var, eps, gamma)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    elif mode == "test":
        xhat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * xhat + beta
        cache = None
    else:
        raise ValueError(f"Invalid forward batchnorm mode {mode!r}")

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`batchnorm_forward`, step by step.

    Walks the computational graph backwards: ``xhat``, then the variance, then
    the mean, then ``x`` through all three paths.
    """
    x, xhat, mu, var, eps, gamma = cache
    N = x.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)

    dxhat = dout * gamma
    xmu = x - mu
    inv_std = 1.0 / np.sqrt(var + eps)
    dvar = np.sum(dxhat * xmu, axis=0) * -0.5 * inv_std ** 3
    dmu = np.sum(-dxhat * inv_std, axis=0) + dvar * np.mean(-2.0 * xmu, axis=0)
    dx = dxhat * inv_std + dvar * 2.0 * xmu / N + dmu / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """The same gradients as :func:`batchnorm_backward`, from the simplified formula.

    ``dx = (1/N) / std * (N dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))``.
    """
    x, xhat, mu, var, eps, gamma = cache
    N = dout.shape[0]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    inv_std = 1.0 / np.sqrt(var + eps)
    dx = inv_std / N * (N * dxhat - dxhat.sum(axis=0) - xhat * np.sum(dxhat * xhat, axis=0))
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalization: each row of ``x`` (N, D) normalized over its D features."""
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv_std
    out = gamma * xhat + beta
    cache = (xhat, inv_std, gamma)
    return out, cache


def layernorm_backward(dout, cache):
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`layernorm_forward`.

    The batch-norm simplified formula with the roles of the axes swapped: the
    statistics are per row, so the sums inside ``dx`` run over axis 1.
    """
    xhat, inv_std, gamma = cache
    D = xhat.shape[1]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    dx = inv_std / D * (D * dxhat - dxhat.sum(axis=1, keepdims=True)
                        - xhat * np.sum(dxhat * xhat, axis=1, keepdims=True))
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch norm of images ``x`` (N, C, H, W) per channel, over N, H and W.

    Moves the channels last and reuses :func:`batchnorm_forward` on the
    ``(N*H*W, C)`` rows; ``gamma`` and ``beta`` have shape ``(C,)``.
    """
    N, C, H, W = x.shape
    x_rows = x.transpose(0, 2, 3, 1).reshape(-1, C)
    out_rows, cache = batchnorm_forward(x_rows, gamma, beta, bn_param)
    out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`spatial_batchnorm_forward`."""
    N, C, H, W = dout.shape
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    dx_rows, dgamma, dbeta = batchnorm_backward_alt(dout_rows, cache)
    dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return dx, dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group normalization of ``x`` (N, C, H, W): C channels split into ``G`` groups.

    Each example's group of ``C // G`` channels is normalized over its channels
    and pixels. ``gamma`` and ``beta`` have shape ``(1, C, 1, 1)``; ``G`` is an int.
    """
    eps = gn_param.get("eps", 1e-5)
    N, C, H, W = x.shape
    xg = x.reshape(N, G, C // G, H, W)
    mu = xg.mean(axis=(2, 3, 4), keepdims=True)
    var = xg.var(axis=(2, 3, 4), keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat_g = (xg - mu) * inv_std
    xhat = xhat_g.reshape(N, C, H, W)
    out = gamma * xhat + beta
    cache = (G, xhat_g, inv_std, gamma)
    return out, cache


def spatial_groupnorm_backward(dout, cache):
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`spatial_groupnorm_forward`.

    The layer-norm formula applied per group: ``M = (C // G) * H * W`` values
    share one mean and variance.
    """
    G, xhat_g, inv_std, gamma = cache
    N, C, H, W = dout.shape
    xhat = xhat_g.reshape(N, C, H, W)
    dgamma = np.sum(dout * xhat, axis=(0, 2, 3), keepdims=True)
    dbeta = np.sum(dout, axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(N, G, C // G, H, W)
    M = (C // G) * H * W
    dx_g = inv_std / M * (M * dxhat - dxhat.sum(axis=(2, 3, 4), keepdims=True)
                          - xhat_g * np.sum(dxhat * xhat_g, axis=(2, 3, 4), keepdims=True))
    dx = dx_g.reshape(N, C, H, W)
    return dx, dgamma, dbeta


# ------------------------------------------------------------------------ dropout
def dropout_forward(x, dropout_param):
    """Inverted dropout: keep each unit with probability ``p``, scale kept ones by 1/p.

    ``dropout_param`` holds ``p`` (the keep probability), ``mode`` ("train" or
    "test") and an optional ``seed``; a seed makes the mask the same on every
    call, which a gradient check needs.
    """
    p, mode = dropout_param["p"], dropout_param["mode"]
    rng = np.random.default_rng(dropout_param.get("seed"))
    mask = None
    if mode == "train":
        mask = (rng.random(x.shape) < p) / p
        out = x * mask
    elif mode == "test":
        out = x
    else:
        raise ValueError(f"Invalid dropout mode {mode!r}")
    cache = (dropout_param, mask)
    return out, cache


def dropout_backward(dout, cache):
    """Gradient of :func:`dropout_forward`: the same scaled mask."""
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        dx = dout * mask
    else:
        dx = dout
    return dx


# -------------------------------------------------------------------- convolution
def conv_forward_naive(x, w, b, conv_param):
    """Naive convolution (cross-correlation) with zero padding and a stride.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, HH, WW)
    b : ndarray, shape (F,)
    conv_param : dict
        ``stride`` and ``pad`` (zero padding on every side).

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
        ``H' = 1 + (H + 2 pad - HH) // stride``, likewise ``W'``.
    cache : tuple
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    out[n, f, i, j] = np.sum(x_pad[n, :, hs:hs + HH, ws:ws + WW] * w[f]) + b[f]
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """Gradients ``(dx, dw, db)`` of :func:`conv_forward_naive`.

    Every output position spreads its gradient over the window it read, so the
    contributions of overlapping windows add up (``+=``); the padding is cut
    off ``dx`` at the end.
    """
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.sum(dout, axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]
                    dw[f] += x_pad[n, :, hs:hs + HH, ws:ws + WW] * dout[n, f, i, j]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db


# ------------------------------------------------------------------------ pooling
def max_pool_forward_naive(x, pool_param):
    """Naive max pooling of ``x`` (N, C, H, W).

    ``pool_param`` holds ``pool_height``, ``pool_width`` and ``stride``; the
    windows may overlap (e.g. 3x3 with stride 2).
    """
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    H_out = 1 + (H - ph) // stride
    W_out = 1 + (W - pw) // stride
    out = np.zeros((N, C, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            hs, ws = i * stride, j * stride
            out[:, :, i, j] = np.max(x[:, :, hs:hs + ph, ws:ws + pw], axis=(2, 3))
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Gradient of :func:`max_pool_forward_naive`.

    Each window sends its gradient to its maximum; when windows overlap, one
    input can be the maximum of several windows, so the gradients accumulate.
    """
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    window = x[n, c, hs:hs + ph, ws:ws + pw]
                    mask = window == np.max(window)
                    dx[n, c, hs:hs + ph, ws:ws + pw] += mask * dout[n, c, i, j]
    return dx


# ---------------------------------------------------------------------- recurrent
def sigmoid(x):
    """Logistic sigmoid, computed without overflow for large negative inputs."""
    pos = x >= 0
    z = np.exp(-np.abs(x))
    return np.where(pos, 1.0 / (1.0 + z), z / (1.0 + z))


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One vanilla-RNN step: ``next_h = tanh(x Wx + prev_h Wh + b)``.

    Shapes: x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,).
    """
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Gradients ``(dx, dprev_h, dWx, dWh, db)`` of :func:`rnn_step_forward`."""
    x, prev_h, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - next_h ** 2)
    dx = dz.dot(Wx.T)
    dprev_h = dz.dot(Wh.T)
    dWx = x.T.dot(dz)
    dWh = prev_h.T.dot(dz)
    db = dz.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """A vanilla RNN over a whole sequence ``x`` (N, T, D) from the state ``h0`` (N, H).

    Returns the hidden states ``h`` (N, T, H) and a cache (one per step).
    """
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    caches = []
    prev_h = h0
    for t in range(T):
        prev_h, cache_t = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(cache_t)
    return h, caches


def rnn_backward(dh, cache):
    """Gradients ``(dx, dh0, dWx, dWh, db)`` of :func:`rnn_forward`.

    ``dh`` (N, T, H) is the upstream gradient of every hidden state; the state
    at step t also feeds step t+1, so its gradient is ``dh[:, t]`` plus what
    flows back from step t+1. Parameter gradients add up over the steps.
    """
    caches = cache
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx = np.zeros((D, H))
    dWh = np.zeros((H, H))
    db = np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev_h, caches[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step.

    Shapes: x (N, D), prev_h and prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,).
    The 4H activations are split into the input, forget and output gates and
    the candidate cell, in that order ``[i, f, o, g]``.

    Returns
    -------
    next_h, next_c : ndarray, shape (N, H)
    cache : tuple
    """
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c, tanh_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Gradients ``(dx, dprev_h, dprev_c, dWx, dWh, db)`` of :func:`lstm_step_forward`.

    The cell state gets gradient from both outputs: directly through
    ``dnext_c`` and through ``next_h = o * tanh(next_c)``.
    """
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c, tanh_c = cache
    do = dnext_h * tanh_c
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    df = dc * prev_c
    di = dc * g
    dg = dc * i
    dprev_c = dc * f
    da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)])
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """An LSTM over a sequence ``x`` (N, T, D) from ``h0`` (N, H); the first cell is 0.

    Returns the hidden states ``h`` (N, T, H) and a cache (one per step).
    """
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    prev_h, prev_c = h0, np.zeros((N, H))
    caches = []
    for t in range(T):
        prev_h, prev_c, cache_t = lstm_step_forward(x[:, t, :], prev_h, prev_c, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(cache_t)
    return h, caches


def lstm_backward(dh, cache):
    """Gradients ``(dx, dh0, dWx, dWh, db)`` of :func:`lstm_forward`.

    Both the hidden state and the cell state carry gradient back from step
    t+1 to step t.
    """
    caches = cache
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx = np.zeros((D, 4 * H))
    dWh = np.zeros((H, 4 * H))
    db = np.zeros(4 * H)
    dprev_h = np.zeros((N, H))
    dprev_c = np.zeros((N, H))
    for t in reversed(range(T)):
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t, :] + dprev_h, dprev_c, caches[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


# ---------------------------------------------------------------------- embedding
def word_embedding_forward(x, W):
    """Look up the rows of ``W`` (V, D) for the integer word indices ``x`` (N, T).

    Returns ``out`` (N, T, D) and a cache.
    """
    out = W[x]
    cache = (x, W)
    return out, cache


def word_embedding_backward(dout, cache):
    """Gradient ``dW`` of :func:`word_embedding_forward` (indices get no gradient).

    A word can occur several times in ``x``; ``np.add.at`` adds up all its
    occurrences, where ``dW[x] += dout`` would keep only one of them.
    """
    x, W = cache
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)
    return dW


# ---------------------------------------------------------------------- attention
def attention_forward(Q, K, V):
    """Scaled dot-product attention ``softmax(Q K^T / sqrt(d)) V``, batched.

    Shapes: Q (N, Tq, d), K (N, Tk, d), V (N, Tk, dv); returns out (N, Tq, dv).
    """
    d = Q.shape[-1]
    scores = Q @ K.swapaxes(-1, -2) / np.sqrt(d)
    scores = scores - scores.max(axis=-1, keepdims=True)   # softmax is shift invariant
    A = np.exp(scores)
    A /= A.sum(axis=-1, keepdims=True)
    out = A @ V
    cache = (Q, K, V, A)
    return out, cache


def attention_backward(dout, cache):
    """Gradients ``(dQ, dK, dV)`` of :func:`attention_forward`.

    Backpropagating through the row softmax needs its full Jacobian:
    ``dS = A * (dA - sum(dA * A, axis=-1))``.
    """
    Q, K, V, A = cache
    d = Q.shape[-1]
    dV = A.swapaxes(-1, -2) @ dout
    dA = dout @ V.swapaxes(-1, -2)
    dS = A * (dA - np.sum(dA * A, axis=-1, keepdims=True))
    dQ = dS @ K / np.sqrt(d)
    dK = dS.swapaxes(-1, -2) @ Q / np.sqrt(d)
    return dQ, dK, dV


# -------------------------------------------------------------------- elementwise
def mul_forward(x, y):
    """Elementwise product of two arrays of the same shape."""
    out = x * y
    cache = (x, y)
    return out, cache


def mul_backward(dout, cache):
    """Gradients ``(dx, dy)`` of :func:`mul_forward`."""
    x, y = cache
    dx = dout * y
    dy = dout * x
    return dx, dy


def temperature_forward(x, t):
    """Divide ``x`` by a learnable scalar temperature ``t`` (a 0-d array)."""
    out = x / t
    cache = (x, t)
    return out, cache


def temperature_backward(dout, cache):
    """Gradients ``(dx, dt)`` of :func:`temperature_forward`; ``dt`` is a scalar."""
    x, t = cache
    dx = dout / t
    dt = -np.sum(dout * x) / t ** 2
    return dx, dt


# ------------------------------------------------------------------------- losses
def svm_loss(x, y):
    """Multiclass SVM (hinge) loss, averaged over the N examples.

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Class scores.
    y : ndarray of int, shape (N,)
        Correct classes.

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, C)
    """
    N = x.shape[0]
    correct = x[np.arange(N), y][:, None]
    margins = np.maximum(0, x - correct + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(N), y] -= num_pos
    dx /= N
    return loss, dx


def softmax_loss(x, y):
    """Softmax cross-entropy loss, averaged over the N examples; returns ``(loss, dx)``."""
    N = x.shape[0]
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def temporal_softmax_loss(x, y, mask):
    """Softmax loss summed over the time steps where ``mask`` is True, averaged over N.

    Parameters
    ----------
    x : ndarray, shape (N, T, V)
        Scores over a vocabulary of V words at every step.
    y : ndarray of int, shape (N, T)
    mask : ndarray of bool, shape (N, T)
        Which steps count (padding steps do not).

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, T, V)
    """
    N, T, V = x.shape
    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)
    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat /= N
    dx_flat *= mask_flat[:, None]
    dx = dx_flat.reshape(N, T, V)
    return loss, dx


# -------------------------------------------------------------------------- model
class TwoLayerNet:
    """affine - relu - affine - softmax, with L2 regularization ``reg * sum(W**2)``.

    Parameters
    ----------
    input_dim, hidden_dim, num_classes : int
    weight_scale : float
        Standard deviation of the initial weights (biases start at 0).
    reg : float
        Strength of the L2 penalty on W1 and W2 (not on the biases).
    rng : numpy.random.Generator, optional
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, rng=None):
        rng = np.random.default_rng() if rng is None else rng
        self.reg = reg
        self.params = {
            "W1": weight_scale * rng.standard_normal((input_dim, hidden_dim)),
            "b1": np.zeros(hidden_dim),
            "W2": weight_scale * rng.standard_normal((hidden_dim, num_classes)),
            "b2": np.zeros(num_classes),
        }

    def loss(self, X, y=None):
        """Scores for ``X`` (N, D) when ``y`` is None, else ``(loss, grads)``.

        ``grads`` has the keys of ``self.params``.
        """
        W1, b1 = self.params["W1"], self.params["b1"]
        W2, b2 = self.params["W2"], self.params["b2"]
        hidden, fc1_cache = affine_relu_forward(X, W1, b1)
        scores, fc2_cache = affine_forward(hidden, W2, b2)
        if y is None:
            return scores

        data_loss, dscores = softmax_loss(scores, y)
        loss = data_loss + self.reg * (np.sum(W1 * W1) + np.sum(W2 * W2))

        grads = {}
        dhidden, grads["W2"], grads["b2"] = affine_backward(dscores, fc2_cache)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dhidden, fc1_cache)
        # d/dW of reg * sum(W**2) is 2 * reg * W
        grads["W2"] += 2 * self.reg * W2
        grads["W1"] += 2 * self.reg * W1
        return loss, grads
