"""Wrong copies of the layers in ``user_layers``: the mistakes people really make.

Each function here is a copy of one function of
:mod:`property_tests.corpus.user_layers` with ONE realistic mistake, the way
a student's wrong version looks: a cache unpacked in the wrong order, a sum
over the wrong axis, ``eps`` outside the square root, ``=`` where overlapping
windows need ``+=``, a missing ``1/N``, a missing transpose, a forgotten term,
a gate derivative taken of the wrong quantity, and so on. The line with the
mistake carries a ``# BUG:`` comment saying what the correct line does.

A bug in a backward pass is paired (in ``catalog.py``) with the correct
forward; a bug in a forward pass with the correct backward, so that the pair
disagrees and a gradient check can tell. Every bug runs without error on the
catalog's inputs (the shapes there are chosen so that it does), and every
bug changes a gradient: ``property_tests/detection/test_corpus.py`` measures it.
"""

import numpy as np

from property_tests.corpus.user_layers import (
    TwoLayerNet, affine_backward, affine_forward, affine_relu_backward, affine_relu_forward,
    batchnorm_backward_alt, lstm_step_backward, rnn_step_backward, softmax_loss,
)


# ------------------------------------------------------------------ affine layers
def affine_backward_db_wrong_axis(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=1)          # BUG: sums over the outputs; should be axis=0 (examples)
    return dx, dw, db


def affine_backward_dx_missing_transpose(dout, cache):
    x, w, b = cache
    dx = dout.dot(w).reshape(x.shape)  # BUG: should be dout.dot(w.T); runs since w is square
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def temporal_affine_backward_mismatched_flatten(dout, cache):
    x, w, b, out = cache
    N, T, D = x.shape
    M = b.shape[0]
    dx = dout.reshape(N * T, M).dot(w.T).reshape(N, T, D)
    # BUG: x flattened time-major but dout batch-major, so rows are paired wrongly
    dw = x.transpose(1, 0, 2).reshape(T * N, D).T.dot(dout.reshape(N * T, M))
    db = dout.sum(axis=(0, 1))
    return dx, dw, db


def affine_relu_backward_forgets_relu(dout, cache):
    fc_cache, relu_cache = cache
    dx, dw, db = affine_backward(dout, fc_cache)   # BUG: relu_backward(dout, relu_cache) skipped
    return dx, dw, db


# -------------------------------------------------------------------- activations
def relu_backward_clamps_dout(dout, cache):
    x = cache
    dx = np.maximum(0, dout)           # BUG: applies the ReLU to the gradient, not x's mask
    return dx


def leaky_relu_backward_drops_dout_on_negative_side(dout, cache):
    x, alpha = cache
    dx = np.where(x > 0, dout, alpha)  # BUG: should be alpha * dout on the negative side
    return dx


def sigmoid_forward_caches_input(x):
    out = 1.0 / (1.0 + np.exp(-x))
    cache = x                          # BUG: the backward expects the output s, gets x
    return out, cache


def tanh_backward_applies_tanh_twice(dout, cache):
    out = cache
    dx = dout * (1 - np.tanh(out) ** 2)   # BUG: cache is already tanh(x); should be 1 - out**2
    return dx


# ------------------------------------------------------------------ normalization
def batchnorm_forward_eps_outside_sqrt(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        xhat = (x - mu) / (np.sqrt(var) + eps)   # BUG: should be np.sqrt(var + eps)
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


def batchnorm_backward_forgets_dvar_term(dout, cache):
    x, xhat, mu, var, eps, gamma = cache
    N = x.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)

    dxhat = dout * gamma
    xmu = x - mu
    inv_std = 1.0 / np.sqrt(var + eps)
    dvar = np.sum(dxhat * xmu, axis=0) * -0.5 * inv_std ** 3
    dmu = np.sum(-dxhat * inv_std, axis=0) + dvar * np.mean(-2.0 * xmu, axis=0)
    dx = dxhat * inv_std + dmu / N     # BUG: the path through the variance, dvar * 2 * xmu / N, is missing
    return dx, dgamma, dbeta


def batchnorm_backward_alt_forgets_gamma(dout, cache):
    x, xhat, mu, var, eps, gamma = cache
    N = dout.shape[0]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout                       # BUG: should be dout * gamma
    inv_std = 1.0 / np.sqrt(var + eps)
    dx = inv_std / N * (N * dxhat - dxhat.sum(axis=0) - xhat * np.sum(dxhat * xhat, axis=0))
    return dx, dgamma, dbeta


def batchnorm_backward_alt_missing_1_over_N(dout, cache):
    x, xhat, mu, var, eps, gamma = cache
    N = dout.shape[0]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    inv_std = 1.0 / np.sqrt(var + eps)
    # BUG: the leading 1/N of the simplified formula is missing
    dx = inv_std * (N * dxhat - dxhat.sum(axis=0) - xhat * np.sum(dxhat * xhat, axis=0))
    return dx, dgamma, dbeta


def layernorm_backward_sums_over_batch_axis(dout, cache):
    xhat, inv_std, gamma = cache
    D = xhat.shape[1]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    # BUG: copied from batch norm: the sums run over axis 0, should be axis 1 (per row)
    dx = inv_std / D * (D * dxhat - dxhat.sum(axis=0, keepdims=True)
                        - xhat * np.sum(dxhat * xhat, axis=0, keepdims=True))
    return dx, dgamma, dbeta


def spatial_batchnorm_backward_missing_transpose(dout, cache):
    N, C, H, W = dout.shape
    dout_rows = dout.reshape(-1, C)    # BUG: forward moved channels last; this skips the transpose
    dx_rows, dgamma, dbeta = batchnorm_backward_alt(dout_rows, cache)
    dx = dx_rows.reshape(N, C, H, W)   # BUG (same mistake undone the same wrong way)
    return dx, dgamma, dbeta


def spatial_groupnorm_backward_wrong_group_size(dout, cache):
    G, xhat_g, inv_std, gamma = cache
    N, C, H, W = dout.shape
    xhat = xhat_g.reshape(N, C, H, W)
    dgamma = np.sum(dout * xhat, axis=(0, 2, 3), keepdims=True)
    dbeta = np.sum(dout, axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(N, G, C // G, H, W)
    M = C * H * W                      # BUG: the group has (C // G) * H * W values, not C * H * W
    dx_g = inv_std / M * (M * dxhat - dxhat.sum(axis=(2, 3, 4), keepdims=True)
                          - xhat_g * np.sum(dxhat * xhat_g, axis=(2, 3, 4), keepdims=True))
    dx = dx_g.reshape(N, C, H, W)
    return dx, dgamma, dbeta


def spatial_groupnorm_backward_dgamma_is_dbeta(dout, cache):
    G, xhat_g, inv_std, gamma = cache
    N, C, H, W = dout.shape
    dgamma = np.sum(dout, axis=(0, 2, 3), keepdims=True)   # BUG: copy-pasted dbeta, no xhat
    dbeta = np.sum(dout, axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(N, G, C // G, H, W)
    M = (C // G) * H * W
    dx_g = inv_std / M * (M * dxhat - dxhat.sum(axis=(2, 3, 4), keepdims=True)
                          - xhat_g * np.sum(dxhat * xhat_g, axis=(2, 3, 4), keepdims=True))
    dx = dx_g.reshape(N, C, H, W)
    return dx, dgamma, dbeta


# ------------------------------------------------------------------------ dropout
def dropout_forward_caches_unscaled_mask(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    rng = np.random.default_rng(dropout_param.get("seed"))
    mask = None
    if mode == "train":
        mask = rng.random(x.shape) < p
        out = x * mask / p
    elif mode == "test":
        out = x
    else:
        raise ValueError(f"Invalid dropout mode {mode!r}")
    cache = (dropout_param, mask)      # BUG: the boolean mask, so the backward misses the 1/p
    return out, cache


def dropout_forward_missing_scale(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    rng = np.random.default_rng(dropout_param.get("seed"))
    mask = None
    if mode == "train":
        mask = (rng.random(x.shape) < p) / p
        out = x * (mask > 0)           # BUG: plain dropout in the forward; should be x * mask
    elif mode == "test":
        out = x
    else:
        raise ValueError(f"Invalid dropout mode {mode!r}")
    cache = (dropout_param, mask)
    return out, cache


# -------------------------------------------------------------------- convolution
def conv_backward_naive_ignores_stride(dout, cache):
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
                    hs, ws = i, j              # BUG: should be i * stride, j * stride
                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]
                    dw[f] += x_pad[n, :, hs:hs + HH, ws:ws + WW] * dout[n, f, i, j]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db


def conv_backward_naive_dw_overwrites(dout, cache):
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
                    dw[f] = x_pad[n, :, hs:hs + HH, ws:ws + WW] * dout[n, f, i, j]  # BUG: = not +=
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db


# ------------------------------------------------------------------------ pooling
def max_pool_backward_naive_overwrites(dout, cache):
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
                    # BUG: = instead of +=: a later window wipes what an overlapping one wrote
                    dx[n, c, hs:hs + ph, ws:ws + pw] = mask * dout[n, c, i, j]
    return dx


# ---------------------------------------------------------------------- recurrent
def rnn_step_backward_tanh_derivative_missing_square(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - next_h)        # BUG: tanh' is 1 - next_h**2
    dx = dz.dot(Wx.T)
    dprev_h = dz.dot(Wh.T)
    dWx = x.T.dot(dz)
    dWh = prev_h.T.dot(dz)
    db = dz.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_step_backward_dWh_missing_transpose(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - next_h ** 2)
    dx = dz.dot(Wx.T)
    dprev_h = dz.dot(Wh.T)
    dWx = x.T.dot(dz)
    dWh = dz.T.dot(prev_h)             # BUG: should be prev_h.T.dot(dz); Wh is square, so it runs
    db = dz.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_backward_drops_carried_dh(dh, cache):
    caches = cache
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx = np.zeros((D, H))
    dWh = np.zeros((H, H))
    db = np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        # BUG: should be dh[:, t, :] + dprev_h; the gradient from step t+1 is lost
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :], caches[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def rnn_backward_overwrites_dWx(dh, cache):
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
        dWx = dWx_t                    # BUG: = instead of +=, only step 0 survives
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def lstm_step_backward_tanh_derivative_of_wrong_quantity(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c, tanh_c = cache
    do = dnext_h * tanh_c
    dc = dnext_c + dnext_h * o * (1 - next_c ** 2)   # BUG: should be 1 - tanh(next_c)**2
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


def lstm_step_backward_gate_order_mismatch(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c, tanh_c = cache
    do = dnext_h * tanh_c
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    df = dc * prev_c
    di = dc * g
    dg = dc * i
    dprev_c = dc * f
    # BUG: the forward splits [i, f, o, g]; the gradients are stacked as [i, f, g, o]
    da = np.hstack([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)])
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_step_backward_ignores_dnext_c(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c, tanh_c = cache
    do = dnext_h * tanh_c
    dc = dnext_h * o * (1 - tanh_c ** 2)   # BUG: the upstream dnext_c is not added
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


def lstm_backward_drops_dprev_c(dh, cache):
    caches = cache
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx = np.zeros((D, 4 * H))
    dWh = np.zeros((H, 4 * H))
    db = np.zeros(4 * H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        # BUG: the cell gradient from step t+1 (dprev_c) is not passed on; zeros instead
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t, :] + dprev_h, np.zeros((N, H)), caches[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


# ---------------------------------------------------------------------- embedding
def word_embedding_backward_assigns(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    dW[x] = dout                       # BUG: a repeated word keeps only its last occurrence
    return dW


def word_embedding_backward_fancy_plus_equals(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    dW[x] += dout                      # BUG: buffered fancy indexing, duplicates are not summed
    return dW


# ---------------------------------------------------------------------- attention
def attention_backward_softmax_diagonal_shortcut(dout, cache):
    Q, K, V, A = cache
    d = Q.shape[-1]
    dV = A.swapaxes(-1, -2) @ dout
    dA = dout @ V.swapaxes(-1, -2)
    dS = dA * A * (1 - A)              # BUG: only the diagonal of the softmax Jacobian
    dQ = dS @ K / np.sqrt(d)
    dK = dS.swapaxes(-1, -2) @ Q / np.sqrt(d)
    return dQ, dK, dV


def attention_backward_missing_scale(dout, cache):
    Q, K, V, A = cache
    d = Q.shape[-1]
    dV = A.swapaxes(-1, -2) @ dout
    dA = dout @ V.swapaxes(-1, -2)
    dS = A * (dA - np.sum(dA * A, axis=-1, keepdims=True))
    dQ = dS @ K                        # BUG: the 1/sqrt(d) of the forward is forgotten
    dK = dS.swapaxes(-1, -2) @ Q       # BUG: likewise
    return dQ, dK, dV


def attention_backward_dK_missing_transpose(dout, cache):
    Q, K, V, A = cache
    d = Q.shape[-1]
    dV = A.swapaxes(-1, -2) @ dout
    dA = dout @ V.swapaxes(-1, -2)
    dS = A * (dA - np.sum(dA * A, axis=-1, keepdims=True))
    dQ = dS @ K / np.sqrt(d)
    dK = dS @ Q / np.sqrt(d)           # BUG: should be dS^T @ Q; runs since Tq == Tk
    return dQ, dK, dV


# -------------------------------------------------------------------- elementwise
def mul_backward_cache_wrong_order(dout, cache):
    y, x = cache                       # BUG: the forward cached (x, y)
    dx = dout * y
    dy = dout * x
    return dx, dy


def temperature_backward_dt_wrong_sign(dout, cache):
    x, t = cache
    dx = dout / t
    dt = np.sum(dout * x) / t ** 2     # BUG: d(x/t)/dt = -x/t**2, the minus is lost
    return dx, dt


def temperature_backward_dt_missing_square(dout, cache):
    x, t = cache
    dx = dout / t
    dt = -np.sum(dout * x) / t         # BUG: should divide by t**2
    return dx, dt


# ------------------------------------------------------------------------- losses
def svm_loss_counts_correct_class(x, y):
    N = x.shape[0]
    correct = x[np.arange(N), y][:, None]
    margins = np.maximum(0, x - correct + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    # BUG: counted before zeroing, so the correct class (margin 1) counts itself
    num_pos = np.sum(x - correct + 1.0 > 0, axis=1)
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(N), y] -= num_pos
    dx /= N
    return loss, dx


def svm_loss_dx_missing_1_over_N(x, y):
    N = x.shape[0]
    correct = x[np.arange(N), y][:, None]
    margins = np.maximum(0, x - correct + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(N), y] -= num_pos
    return loss, dx                    # BUG: the loss is averaged, dx is not divided by N


def softmax_loss_dx_missing_1_over_N(x, y):
    N = x.shape[0]
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    return loss, dx                    # BUG: dx /= N is missing


def softmax_loss_forgets_minus_one(x, y):
    N = x.shape[0]
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()                  # BUG: dx[np.arange(N), y] -= 1 is missing
    dx /= N
    return loss, dx


def temporal_softmax_loss_ignores_mask_in_dx(x, y, mask):
    N, T, V = x.shape
    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)
    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat /= N                       # BUG: dx_flat *= mask_flat[:, None] is missing
    dx = dx_flat.reshape(N, T, V)
    return loss, dx


def temporal_softmax_loss_dx_missing_1_over_N(x, y, mask):
    N, T, V = x.shape
    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)
    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat *= mask_flat[:, None]      # BUG: dx_flat /= N is missing
    dx = dx_flat.reshape(N, T, V)
    return loss, dx


# -------------------------------------------------------------------------- model
class TwoLayerNetRegGradMissingFactor2(TwoLayerNet):
    """:class:`TwoLayerNet` whose regularization gradient lacks the factor 2."""

    def loss(self, X, y=None):
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
        grads["W2"] += self.reg * W2   # BUG: should be 2 * self.reg * W2 (the loss has no 0.5)
        grads["W1"] += self.reg * W1   # BUG: likewise
        return loss, grads


class TwoLayerNetNoRegGrad(TwoLayerNet):
    """:class:`TwoLayerNet` that adds the penalty to the loss but not to the gradients."""

    def loss(self, X, y=None):
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
        # BUG: the regularization gradients 2 * reg * W are never added
        return loss, grads
