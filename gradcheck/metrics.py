"""The error metric: a relative error that is robust at zero.

For an analytic gradient ``a`` and a reference ``r`` (finite differences or
torch), entry by entry::

    e_i = |a_i - r_i| / max(|a_i|, |r_i|, s)        s = max(RHO · M, noise / tol)

and a tensor passes when ``max_i e_i <= tol``. Equivalently, an entry passes
when ``|a_i - r_i| <= tol · max(|a_i|, |r_i|)`` (relative), or
``|a_i - r_i| <= noise`` (below what the oracle can resolve), or
``|a_i - r_i| <= tol · RHO · M``.

- ``M`` is the largest magnitude of any entry of the tensor's gradient
  (both ``a`` and ``r``; each tensor its own, so that a large gradient
  elsewhere hides no error in a small one). An entry far smaller than its
  tensor's largest (a dead ReLU unit, whose true gradient is 0) is measured against
  ``RHO · M`` rather than against its own tiny size, so the oracle's
  truncation error there (~1e-10 · M for central differences) does not read
  as a large relative error.
- ``noise`` is the oracle's absolute resolution: for central differences
  the rounding of the forward's outputs divided by the step,
  ``64 · u · Σ|G ⊙ y| / h`` (``u`` the unit round-off, ``G`` the upstream
  gradient, ``y`` the output), plus ``Σ|G|`` for unit-size terms that cancel
  inside a layer; where an entry passes only because of it, the core measures
  the noise instead (see ``gradcheck.numerical.measure_noise``). It matters
  where every gradient is small next to the outputs (saturated units,
  all-dead networks).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RHO", "error_floor", "gradient_scale", "relative_errors"]

#: Floor of the relative error as a fraction of the check's largest gradient.
#: Central differences carry an absolute error of ~1e-10 of the gradient
#: scale (see gradcheck.numerical.STEP); 1e-2 puts that noise at ~1e-8 on the
#: relative scale, 100x below the finite-difference tolerance of 1e-6, while
#: an error of 1e-8·M or more in any entry still fails.
RHO = 1e-2


def error_floor(pairs, noise, tolerance):
    """Return ``s = max(RHO · M, noise / tolerance)`` for the arrays in ``pairs``."""
    return max(RHO * gradient_scale(pairs), noise / tolerance, np.finfo(np.float64).tiny)


def gradient_scale(pairs):
    """Return ``M``: the largest finite ``|a_i|`` or ``|r_i|`` over ``pairs`` of arrays.

    NaN and inf (a broken gradient) are left out: they fail their own entries
    and must not make the floor of the others NaN.
    """
    return max((float(np.max(np.abs(arr[np.isfinite(arr)]), initial=0.0))
                for pair in pairs for arr in map(np.asarray, pair)), default=0.0)


def relative_errors(analytic, reference, floor):
    """Return the elementwise relative error ``|a - r| / max(|a|, |r|, floor)``.

    Parameters
    ----------
    analytic, reference : ndarray, same shape
    floor : float
        ``s`` above; must be > 0.

    Returns
    -------
    ndarray, the common shape
        Each entry in ``[0, 2]``; ``inf`` where either input is not finite.
    """
    a = np.asarray(analytic, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(a - r) / np.maximum(np.maximum(np.abs(a), np.abs(r)), floor)
    return np.where(np.isfinite(a) & np.isfinite(r), err, np.inf)
