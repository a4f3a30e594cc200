"""Batch normalization in the derivation's ``(n, m)`` layout (training mode).

This layer is NOT part of the derivation (``docs/derivation.md``).
It is here to test a gradient checker on a layer that mixes the examples of a
batch: the mean and variance of each unit are taken over the ``m`` examples,
so every output depends on every example of its row, and the backward pass
must carry the gradient through those batch statistics (a per-example
shortcut that treats them as constants is wrong, and a checker must say so).

Layout: ``Z`` of shape ``(n, m)``, ``n`` units as rows, ``m`` examples as
columns; ``gamma`` and ``beta`` of shape ``(n, 1)``.  As elsewhere, an op is a
pair of pure functions (:func:`batchnorm_forward`, :func:`batchnorm_backward`)
and :class:`BatchNorm` is a thin wrapper implementing the Layer protocol.

Complex input (complex-step differentiation) works: the forward uses only
``+``, ``*``, ``/``, means and ``sqrt`` -- the variance is ``mean(D * D)``, not
``np.var`` (which takes ``abs`` of complex input) -- so it is the holomorphic
extension of the real function.
"""

from __future__ import annotations

import numbers

import numpy as np

from reference_impls.dense import require_float_array

__all__ = ["batchnorm_forward", "batchnorm_backward", "BatchNorm"]


def _check_eps(eps):
    """Return ``eps`` as a float after checking that it is a finite number > 0."""
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, numbers.Real):
        raise TypeError(f"`eps` must be a real number, got {eps!r}")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"`eps` must be finite and > 0, got {eps!r}")
    return float(eps)


def _check_column(name, array, n):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(array).__name__}")
    if array.shape != (n, 1):
        raise ValueError(f"`{name}` must have shape ({n}, 1), one entry per unit, "
                         f"got {array.shape}")


def batchnorm_forward(Z, gamma, beta, *, eps=1e-5):
    """Batch normalization forward pass, statistics over the examples (axis 1).

    Per unit (row) ``i``, over its ``m`` examples::

        mu_i   = 1/m Σ_j Z_ij
        var_i  = 1/m Σ_j (Z_ij - mu_i)²            (biased, as torch in training)
        Zhat_ij = (Z_ij - mu_i) / sqrt(var_i + eps)
        out_ij = gamma_i Zhat_ij + beta_i

    Parameters
    ----------
    Z : ndarray, shape (n, m)
        Pre-activations, one column per example; real or complex.  Not modified.
        ``m = 1`` is allowed: the variance is 0, ``Zhat = 0`` and ``out = beta``.
    gamma : ndarray, shape (n, 1)
        Scale per unit.
    beta : ndarray, shape (n, 1)
        Shift per unit.
    eps : float, default 1e-5
        Added to the variance (> 0, so nothing divides by 0); torch's default.

    Returns
    -------
    out : ndarray, shape (n, m)
    cache : tuple
        ``(Zhat, inv_std, gamma)`` for :func:`batchnorm_backward`, with
        ``inv_std = 1 / sqrt(var + eps)`` of shape (n, 1); copies, never the
        caller's arrays.

    Raises
    ------
    TypeError
        ``Z``, ``gamma`` or ``beta`` not an ndarray; ``eps`` not a real number.
    ValueError
        ``Z`` not 2-D or with no example; ``gamma`` or ``beta`` not of shape
        ``(n, 1)``; ``eps`` not finite and > 0.

    Notes
    -----
    Not in the derivation: the layer is here because it couples the examples
    of a batch (see the module docstring).
    """
    if not isinstance(Z, np.ndarray):
        raise TypeError(f"`Z` must be a numpy.ndarray, got {type(Z).__name__}")
    if Z.ndim != 2:
        raise ValueError(f"`Z` must be 2-D (units, examples) in the derivation's layout, "
                         f"got shape {Z.shape}")
    n, m = Z.shape
    if m < 1:
        raise ValueError(f"`Z` must hold at least one example (column), got shape {Z.shape}")
    _check_column("gamma", gamma, n)
    _check_column("beta", beta, n)
    eps = _check_eps(eps)
    mu = np.mean(Z, axis=1, keepdims=True)
    D = Z - mu
    var = np.mean(D * D, axis=1, keepdims=True)   # not np.var: holomorphic for complex Z
    inv_std = 1.0 / np.sqrt(var + eps)
    Zhat = D * inv_std
    out = gamma * Zhat + beta
    return out, (Zhat, inv_std, gamma.copy())


def batchnorm_backward(dout, cache):
    """Batch normalization backward pass, through the batch statistics.

    With ``g = dout``, per row (means over the ``m`` examples)::

        dbeta  = Σ_j g_j
        dgamma = Σ_j g_j Zhat_j
        dZ_j   = gamma / sqrt(var + eps) · (g_j - mean(g) - Zhat_j · mean(g ⊙ Zhat))

    The two subtracted means are the gradient flowing through ``mu`` and
    ``var``, which depend on every example: ``dZ`` of one example depends on
    the upstream gradients of all of them.  For ``m = 1`` (``Zhat = 0``) ``dZ``
    is exactly 0.

    Parameters
    ----------
    dout : ndarray, shape (n, m)
        Upstream gradient ``dJ/dout``; real or complex.  Not modified.
    cache : tuple
        From :func:`batchnorm_forward`.

    Returns
    -------
    dZ : ndarray, shape (n, m)
    dgamma : ndarray, shape (n, 1)
    dbeta : ndarray, shape (n, 1)
    """
    Zhat, inv_std, gamma = cache
    if not isinstance(dout, np.ndarray):
        raise TypeError(f"`dout` must be a numpy.ndarray, got {type(dout).__name__}")
    if dout.shape != Zhat.shape:
        raise ValueError(f"`dout.shape` {dout.shape} must equal the output's shape {Zhat.shape}")
    dbeta = np.sum(dout, axis=1, keepdims=True)
    dgamma = np.sum(dout * Zhat, axis=1, keepdims=True)
    mean_g = np.mean(dout, axis=1, keepdims=True)
    mean_gz = np.mean(dout * Zhat, axis=1, keepdims=True)
    dZ = (gamma * inv_std) * (dout - mean_g - Zhat * mean_gz)
    return dZ, dgamma, dbeta


class BatchNorm:
    """Batch normalization over the examples (training mode), layout ``(n, m)``.

    ``out = gamma ⊙ (Z - mu) / sqrt(var + eps) + beta`` with the mean and the
    biased variance of each row over its ``m`` examples; see
    :func:`batchnorm_forward` and :func:`batchnorm_backward`.  Not in the
    derivation: it couples the examples of a batch, to test a checker on such
    a layer.  Complex-safe (for complex-step differentiation).

    Parameters
    ----------
    gamma : ndarray, shape (n, 1)
        A float array (float64, float32 or float16); anything else is a
        TypeError naming it.
    beta : ndarray, shape (n, 1)
        Likewise.
    eps : float, default 1e-5
        Must be finite and > 0.

    Attributes
    ----------
    params : dict
        ``{"gamma": gamma, "beta": beta}``, the arrays passed in (not copies):
        forward reads them at call time, so in-place changes take effect.
    grads : dict
        ``{"gamma": dgamma, "beta": dbeta}`` after :meth:`backward`.
    """

    input_name = "Z"
    complex_safe = True

    def __init__(self, gamma, beta, *, eps=1e-5):
        require_float_array("gamma", gamma)
        require_float_array("beta", beta)
        self.eps = _check_eps(eps)
        self.params = {"gamma": gamma, "beta": beta}
        self.grads = {}
        self._cache = None

    def forward(self, x):
        """x = Z, shape (n, m) → out, shape (n, m)."""
        out, self._cache = batchnorm_forward(x, self.params["gamma"], self.params["beta"],
                                             eps=self.eps)
        return out

    def backward(self, dout):
        """dout = dJ/dout, shape (n, m) → dJ/dZ, shape (n, m); fills grads."""
        if self._cache is None:
            raise RuntimeError("BatchNorm.backward called before forward")
        dZ, dgamma, dbeta = batchnorm_backward(dout, self._cache)
        self.grads = {"gamma": dgamma, "beta": dbeta}
        return dZ

    def jacobian_coloring(self, name, shape):
        """Return groups of entries of tensor ``name`` (of ``shape``) that move disjoint outputs.

        ``Z[u, j]`` moves all of row ``u`` (the batch statistics couple the
        examples), so the groups are the columns: one entry per unit each.
        ``gamma[u]`` and ``beta[u]`` move row ``u`` only: one group each.
        """
        if name == "x":
            return np.broadcast_to(np.arange(shape[1]), shape).copy()
        return np.zeros(shape, dtype=np.int64) if name in ("gamma", "beta") else None

    def __repr__(self):
        return f"BatchNorm(n={np.shape(self.params['gamma'])[0]}, eps={self.eps})"
