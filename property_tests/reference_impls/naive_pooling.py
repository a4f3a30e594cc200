"""Naive, loop-by-loop max and average pooling (a third opinion for tests).

Layout as in the derivation (section 4): ``(n_H, n_W, n_C, m)``, examples
last.  Every output entry is computed by visiting its window explicitly, one
input position at a time, so the rules are easy to read off:

* window ``(f_H, f_W)``, stride ``(s_H, s_W)`` (default: the window), padding
  ``(p_H, p_W)``; output size ``(n + 2 p - f) // s + 1`` per axis.
* max: the window is scanned in row-major order (rows top to bottom, within a
  row left to right) over its REAL (non-padded) positions only, starting
  from ``maxval = -inf`` and the first real position, and a position takes
  over when ``value > maxval or isnan(value)`` -- the update rule of
  PyTorch's CPU kernel.  Hence: a tie goes to the FIRST maximum, padding
  never wins, an all ``-inf`` window goes to its first real entry, and a NaN
  window to its LAST NaN.  The backward pass adds each upstream gradient to
  its window's winner, so overlapping windows add up.
* avg: sum of the real positions divided by ``f_H * f_W``
  (``count_include_pad=True``) or by the number of real positions
  (``False``); the backward pass adds ``dA / divisor`` to every real
  position of the window.

Slow on purpose (pure Python loops); only for small test arrays.  Does no
input validation beyond what the loops need.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "naive_max_pool2d_forward",
    "naive_max_pool2d_backward",
    "naive_avg_pool2d_forward",
    "naive_avg_pool2d_backward",
]


def _pair(v):
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _config(A_shape, window, stride, padding):
    f = _pair(window)
    s = f if stride is None else _pair(stride)
    p = _pair(padding)
    n_H, n_W = A_shape[:2]
    oH = (n_H + 2 * p[0] - f[0]) // s[0] + 1
    oW = (n_W + 2 * p[1] - f[1]) // s[1] + 1
    return f, s, p, oH, oW


def _real_positions(i, j, A_shape, f, s, p):
    """Input positions (row, col) of window (i, j), row-major, padding left out."""
    n_H, n_W = A_shape[:2]
    out = []
    for a in range(f[0]):
        r = i * s[0] + a - p[0]
        for b in range(f[1]):
            c = j * s[1] + b - p[1]
            if 0 <= r < n_H and 0 <= c < n_W:
                out.append((r, c))
    return out


def _max_winner(A_prev, positions, c, e):
    """torch's CPU rule: start at -inf / first real position; take over when
    ``value > maxval or isnan(value)``."""
    best = positions[0]
    maxval = -math.inf
    for (r, q) in positions:
        v = A_prev[r, q, c, e]
        if v > maxval or math.isnan(v):
            maxval = v
            best = (r, q)
    return best, maxval


def naive_max_pool2d_forward(A_prev, window, stride=None, padding=0):
    """Max pooling by explicit loops.  Returns ``A`` of shape (oH, oW, C, m)."""
    f, s, p, oH, oW = _config(A_prev.shape, window, stride, padding)
    n_C, m = A_prev.shape[2:]
    A = np.empty((oH, oW, n_C, m), dtype=A_prev.dtype)
    for i in range(oH):
        for j in range(oW):
            positions = _real_positions(i, j, A_prev.shape, f, s, p)
            for c in range(n_C):
                for e in range(m):
                    A[i, j, c, e] = _max_winner(A_prev, positions, c, e)[1]
    return A


def naive_max_pool2d_backward(A_prev, dA, window, stride=None, padding=0):
    """Gradient of max pooling: each ``dA`` entry is ADDED to its window's
    winner (first maximum in row-major order; see the module docstring)."""
    f, s, p, oH, oW = _config(A_prev.shape, window, stride, padding)
    n_C, m = A_prev.shape[2:]
    dA_prev = np.zeros(A_prev.shape, dtype=np.result_type(A_prev.dtype, dA.dtype))
    for i in range(oH):
        for j in range(oW):
            positions = _real_positions(i, j, A_prev.shape, f, s, p)
            for c in range(n_C):
                for e in range(m):
                    (r, q), _ = _max_winner(A_prev, positions, c, e)
                    dA_prev[r, q, c, e] += dA[i, j, c, e]
    return dA_prev


def _divisor(positions, f, count_include_pad):
    return f[0] * f[1] if count_include_pad else len(positions)


def naive_avg_pool2d_forward(A_prev, window, stride=None, padding=0, count_include_pad=True):
    """Average pooling by explicit loops (padded zeros add nothing; the
    divisor is ``f_H * f_W`` or the number of real positions)."""
    f, s, p, oH, oW = _config(A_prev.shape, window, stride, padding)
    n_C, m = A_prev.shape[2:]
    A = np.zeros((oH, oW, n_C, m), dtype=A_prev.dtype)
    for i in range(oH):
        for j in range(oW):
            positions = _real_positions(i, j, A_prev.shape, f, s, p)
            div = _divisor(positions, f, count_include_pad)
            for c in range(n_C):
                for e in range(m):
                    total = 0.0
                    for (r, q) in positions:
                        total = total + A_prev[r, q, c, e]
                    A[i, j, c, e] = total / div
    return A


def naive_avg_pool2d_backward(A_shape, dA, window, stride=None, padding=0,
                              count_include_pad=True):
    """Gradient of average pooling: ``dA / divisor`` is ADDED to every real
    position of the window (overlapping windows add up)."""
    f, s, p, oH, oW = _config(A_shape, window, stride, padding)
    n_C, m = A_shape[2:]
    dA_prev = np.zeros(A_shape, dtype=dA.dtype)
    for i in range(oH):
        for j in range(oW):
            positions = _real_positions(i, j, A_shape, f, s, p)
            div = _divisor(positions, f, count_include_pad)
            for c in range(n_C):
                for e in range(m):
                    share = dA[i, j, c, e] / div
                    for (r, q) in positions:
                        dA_prev[r, q, c, e] += share
    return dA_prev
