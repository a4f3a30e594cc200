"""Numerical gradients by central differences of a scalar projection.

For a function ``y = f(x)`` and a fixed upstream gradient ``G`` (same shape as
``y``), the scalar ``J(x) = <G, f(x)> = Σ G ⊙ f(x)`` has gradient
``dJ/dx = J_fᵀ G``: exactly what a backward pass returns when handed ``G``.
So one scalar's gradient checks the backward pass without ever forming the
Jacobian of ``f``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STEP", "central_difference"]

#: Relative step of the central difference, ``cbrt(eps) ≈ 6.06e-6`` for float64.
#: Its error is truncation ``h² |J'''| / 6`` plus rounding ``≈ u |J| / h``
#: (``u = eps/2``); the sum is smallest near ``h = (3u)^(1/3) ≈ 7e-6``, where
#: both are ``~1e-11`` for a function of unit scale. The step is scaled by
#: ``max(1, |x_i|)`` so that it stays above the spacing of large entries.
STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))


def central_difference(evaluate, array, dout, *, step=STEP):
    """Return ``d<dout, evaluate()>/d array`` by central differences, entry by entry.

    Each entry ``array[i]`` is moved to ``array[i] ± h_i`` in place, with
    ``h_i = step · max(1, |array[i]|)``, ``evaluate()`` is called at both points,
    and the entry is then written back to its original value (bit for bit).
    The estimate is ``<dout, y⁺ - y⁻> / (x⁺ - x⁻)``: the outputs are subtracted
    before they are projected, which avoids the cancellation of two large
    sums, and the divisor is the step actually representable in float64.

    Parameters
    ----------
    evaluate : callable
        ``evaluate() -> ndarray`` of ``dout``'s shape; it must read ``array``.
    array : ndarray, any shape, float64
        Perturbed in place and restored.
    dout : ndarray, the shape of ``evaluate()``'s output
    step : float
        Relative step; see :data:`STEP`.

    Returns
    -------
    grad : ndarray, shape ``array.shape``
    calls : int
        Number of calls to ``evaluate`` (``2 · array.size``).
    """
    grad = np.empty(array.shape, dtype=np.float64)
    for index in np.ndindex(array.shape):
        original = array[index]
        h = step * max(1.0, abs(float(original)))
        try:
            array[index] = original + h
            x_plus = array[index]
            y_plus = evaluate()
            array[index] = original - h
            x_minus = array[index]
            y_minus = evaluate()
        finally:
            array[index] = original
        grad[index] = np.sum(dout * (y_plus - y_minus)) / (x_plus - x_minus)
    return grad, 2 * array.size
