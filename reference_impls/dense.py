"""Dense layers, their activations and losses: section 2 of the derivation.

Layout is the derivation's: activations are columns, ``A`` has shape ``(n, m)``
for ``n`` units and ``m`` examples; ``W^[l]`` has shape ``(n_l, n_{l-1})`` and
``b^[l]`` shape ``(n_l, 1)``.

Every op is a pair of pure functions, ``*_forward(...) -> (out, cache)`` and
``*_backward(dout, cache) -> gradients``, written next to each other; the
classes at the end are thin wrappers that implement the project's Layer
protocol (``params``, ``grads``, ``forward``, ``backward``), so that the
checker checks them exactly as it checks a user's layer.

Equation numbers refer to ``docs/derivation.md``.

Complex input (complex-step differentiation).  Every forward here computes the
holomorphic extension of its real function, so that for ``x`` real and ``h``
tiny, ``Im f(x + i h v) / h`` is the directional derivative of ``f`` without
any subtractive cancellation.  No forward uses ``abs``, ``conj``, a comparison
of complex numbers or a cast to float: a branch (ReLU's kink, the stable
sigmoid's two forms, the max shift of a log-sum-exp) is chosen on the REAL
PART, and the analytic formula of the chosen branch is then applied to the
complex value.  For real input ``Z.real`` is ``Z`` itself, so the float64
results are bit for bit those of the plain real formulas.  The backward
functions accept complex arrays too (their masks come from the real part).
The layer classes say so with the class attribute ``complex_safe = True``.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "dense_forward", "dense_backward",
    "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "identity_forward", "identity_backward",
    "softmax_forward", "softmax_backward",
    "mse_forward", "mse_backward",
    "bce_with_logits_forward", "bce_with_logits_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Softmax",
    "MSELoss", "BCEWithLogitsLoss", "SoftmaxCrossEntropyLoss",
    "ACTIVATIONS", "LOSSES",
]


def require_ndarray(name, array):
    """Raise a TypeError naming ``name`` unless ``array`` is a numpy.ndarray.

    Every layer class refuses other input (a list, a scalar) this way, in its
    forward and backward, rather than computing something from it.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(array).__name__}")


def require_float_array(name, array):
    """Raise a TypeError naming ``name`` unless ``array`` is a real floating numpy.ndarray.

    The layer classes' constructors take their params so: the arrays are
    stored as they are (not copied, not converted), so an integer array would
    be computed with in integers and a list could not be perturbed in place.
    """
    require_ndarray(name, array)
    if array.dtype.kind != "f":
        raise TypeError(f"`{name}` must be a float array (float64, float32 or float16), got "
                        f"dtype {array.dtype}: pass {name}.astype(np.float64)")


def _require_matrix(name, array):
    require_ndarray(name, array)
    if array.ndim != 2:
        raise ValueError(
            f"`{name}` must be 2-D (units, examples) in the derivation's layout, "
            f"got shape {array.shape}"
        )


def _require_same_shape(name, array, ref_name, ref):
    _require_matrix(name, array)
    if array.shape != ref.shape:
        raise ValueError(f"`{name}.shape` {array.shape} must equal `{ref_name}.shape` {ref.shape}")


# --------------------------------------------------------------------------- dense
def dense_forward(A_prev, W, b):
    """Affine map of a dense layer, ``Z = W A_prev + b 1ᵀ``.

    Parameters
    ----------
    A_prev : ndarray, shape (n_prev, m)
        Activations of the previous layer, one column per example.
    W : ndarray, shape (n, n_prev)
    b : ndarray, shape (n, 1)

    Returns
    -------
    Z : ndarray, shape (n, m)
    cache : tuple
        ``(A_prev, W)`` for :func:`dense_backward`.
    """
    _require_matrix("A_prev", A_prev)
    _require_matrix("W", W)
    if A_prev.shape[0] != W.shape[1]:
        raise ValueError(
            f"`A_prev.shape[0]` ({A_prev.shape[0]}) must match `W.shape[1]` ({W.shape[1]}), "
            "the number of input units"
        )
    if not isinstance(b, np.ndarray) or b.shape != (W.shape[0], 1):
        shape = getattr(b, "shape", type(b).__name__)
        raise ValueError(f"`b` must have shape ({W.shape[0]}, 1), a column per unit, got {shape}")
    Z = W @ A_prev + b
    return Z, (A_prev.copy(), W.copy())


def dense_backward(dZ, cache):
    """Gradients of a dense layer from ``dZ = dJ/dZ``.

    ``dA_prev = Wᵀ dZ`` (eq. 8), ``dW = dZ A_prevᵀ`` (eq. 18 by vec-Kronecker,
    eq. 20 by the trace trick), ``db = dZ 1`` (eq. 24), the row sums of dZ.

    Parameters
    ----------
    dZ : ndarray, shape (n, m)
    cache : tuple from :func:`dense_forward`

    Returns
    -------
    dA_prev : ndarray, shape (n_prev, m)
    dW : ndarray, shape (n, n_prev)
    db : ndarray, shape (n, 1)
    """
    A_prev, W = cache
    _require_matrix("dZ", dZ)
    if dZ.shape != (W.shape[0], A_prev.shape[1]):
        raise ValueError(f"`dZ.shape` {dZ.shape} must equal Z's shape {(W.shape[0], A_prev.shape[1])}")
    dA_prev = W.T @ dZ                        # eq. (8)
    dW = dZ @ A_prev.T                        # eq. (18)/(20)
    db = np.sum(dZ, axis=1, keepdims=True)    # eq. (24)
    return dA_prev, dW, db


# ---------------------------------------------------------------------- activations
# Elementwise activations have a diagonal Jacobian, so dZ = dA ⊙ g'(Z) (eq. 10).
def relu_forward(Z):
    """``A = max(Z, 0)``; shape preserved. Returns ``(A, cache)``.

    Complex ``Z``: ``A = Z`` where ``Re Z > 0``, else 0 (the branch is chosen on
    the real part; ``np.maximum`` would order complex numbers lexicographically).
    """
    if np.iscomplexobj(Z):
        return np.where(Z.real > 0, Z, 0.0), Z.copy()
    return np.maximum(Z, 0.0), Z.copy()


def relu_backward(dA, Z):
    """``dZ = dA ⊙ [Re Z > 0]`` (eq. 10); the derivative at 0 is taken as 0, as torch does."""
    return dA * (Z.real > 0)


def leaky_relu_forward(Z, alpha=0.01):
    """``A = Z`` where ``Re Z > 0`` else ``alpha Z``. Returns ``(A, cache)``."""
    return np.where(Z.real > 0, Z, alpha * Z), (Z.copy(), alpha)


def leaky_relu_backward(dA, cache):
    """``dZ = dA ⊙ g'(Z)`` with ``g' = 1`` for ``Re Z > 0`` else ``alpha`` (eq. 10)."""
    Z, alpha = cache
    return dA * np.where(Z.real > 0, 1.0, alpha)


def sigmoid_forward(Z):
    """``A = 1 / (1 + exp(-Z))``, evaluated without overflow. Returns ``(A, cache)``.

    ``e = exp(-|Z|)``, written as ``exp(-Z)`` where ``Re Z >= 0`` and ``exp(Z)``
    elsewhere (the holomorphic form of ``-|Z|``, equal to it for real ``Z``),
    then ``1 / (1 + e)`` or ``e / (1 + e)`` on the same branch.
    """
    pos = Z.real >= 0
    e = np.exp(np.where(pos, -Z, Z))          # |e| in (0, 1]: never overflows
    A = np.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))
    return A, A.copy()


def sigmoid_backward(dA, A):
    """``dZ = dA ⊙ A (1 - A)`` (eq. 10)."""
    return dA * A * (1.0 - A)


def tanh_forward(Z):
    """``A = tanh(Z)``. Returns ``(A, cache)``."""
    A = np.tanh(Z)
    return A, A.copy()


def tanh_backward(dA, A):
    """``dZ = dA ⊙ (1 - A²)`` (eq. 10)."""
    return dA * (1.0 - A * A)


def identity_forward(Z):
    """``A = Z`` (a copy). Returns ``(A, None)``."""
    return Z.copy(), None


def identity_backward(dA, cache):
    """``dZ = dA`` (a copy)."""
    return dA.copy()


def softmax_forward(Z):
    """Softmax over the feature axis (axis 0), one distribution per column.

    Parameters
    ----------
    Z : ndarray, shape (n, m)

    Returns
    -------
    A : ndarray, shape (n, m)
        Columns sum to 1. Computed as ``exp(Z - max Re Z)`` normalized, which
        cannot overflow (the shift is any constant per column; taking it from
        the real part keeps complex input holomorphic).
    cache : ndarray
        ``A``.
    """
    if np.ndim(Z) == 0:
        raise ValueError("`Z` must have at least one axis (softmax is taken over axis 0), "
                         "got shape ()")
    E = np.exp(Z - Z.real.max(axis=0, keepdims=True))   # shift by the real max
    A = E / E.sum(axis=0, keepdims=True)
    return A, A.copy()


def softmax_backward(dA, A):
    """Vector-Jacobian product of softmax, column by column.

    The Jacobian of one column is ``diag(a) - a aᵀ``, not diagonal, so eq. (10)
    does not apply as a Hadamard product; its transpose applied to ``dA`` gives
    ``dZ = A ⊙ (dA - 1 (1ᵀ (dA ⊙ A)))``.
    """
    return A * (dA - np.sum(dA * A, axis=0, keepdims=True))


# --------------------------------------------------------------------------- losses
# Each loss is averaged over the m examples (columns) and returns a 0-d array.
def mse_forward(A, Y):
    """Mean squared error ``J = 1/(2m) Σ (A - Y)²``.

    Parameters
    ----------
    A : ndarray, shape (n, m)
        Predictions.
    Y : ndarray, shape (n, m)
        Targets.

    Returns
    -------
    J : ndarray, shape ()
    cache : tuple
    """
    _require_matrix("A", A)
    _require_same_shape("Y", Y, "A", A)
    diff = A - Y
    m = A.shape[1]
    return np.asarray(np.sum(diff * diff) / (2 * m)), (diff, m)


def mse_backward(dJ, cache):
    """``dA = dJ (A - Y) / m``; ``dJ`` is the upstream scalar (shape ``()``)."""
    diff, m = cache
    return np.asarray(dJ) * diff / m


def bce_with_logits_forward(Z, Y):
    """Binary cross-entropy of ``sigmoid(Z)`` against ``Y``, from the logits.

    ``J = 1/m Σ [softplus(Z) - Z Y]``, which equals
    ``-1/m Σ [Y log σ(Z) + (1 - Y) log(1 - σ(Z))]`` but never takes ``log(0)``
    when the sigmoid saturates (it is torch's ``binary_cross_entropy_with_logits``
    summed over units and averaged over examples).  The softplus
    ``log(1 + e^z) = max(z, 0) + log1p(e^{-|z|})`` is evaluated on the branch
    chosen by ``Re z``: ``z + log1p(e^{-z})`` for ``Re z >= 0``, else
    ``log1p(e^{z})`` -- no overflow, and holomorphic for complex ``Z``.  For
    real ``Z`` the terms are summed in the order ``max(Z, 0) - Z Y + log1p(...)``.

    Parameters
    ----------
    Z : ndarray, shape (n, m)
        Logits: the output layer's sigmoid is part of the loss.
    Y : ndarray, shape (n, m)
        Targets in [0, 1].

    Returns
    -------
    J : ndarray, shape ()
    cache : tuple
    """
    _require_matrix("Z", Z)
    _require_same_shape("Y", Y, "Z", Z)
    m = Z.shape[1]
    pos = Z.real >= 0
    linear = np.where(pos, Z, 0.0)                     # max(Z, 0), on the real part
    log_term = np.log1p(np.exp(np.where(pos, -Z, Z)))  # log1p(exp(-|Z|))
    J = np.sum(linear - Z * Y + log_term) / m
    return np.asarray(J), (sigmoid_forward(Z)[0], Y.copy(), m)


def bce_with_logits_backward(dJ, cache):
    """``dZ = dJ (σ(Z) - Y) / m``."""
    S, Y, m = cache
    return np.asarray(dJ) * (S - Y) / m


def softmax_cross_entropy_forward(Z, Y):
    """Cross-entropy of ``softmax(Z)`` (over axis 0) against the columns of ``Y``.

    ``J = -1/m Σ Y ⊙ log softmax(Z)``, with ``log softmax(Z) = Z - logsumexp(Z)``
    computed by the max-shifted log-sum-exp, so large logits neither overflow
    nor take ``log(0)``.  The shift is the column maximum of ``Re Z``
    (holomorphic for complex ``Z``; the same as ``max Z`` for real ``Z``).

    Parameters
    ----------
    Z : ndarray, shape (n, m)
        Logits: the output layer's softmax is part of the loss.
    Y : ndarray, shape (n, m)
        Target distributions, one per column (one-hot or soft labels).

    Returns
    -------
    J : ndarray, shape ()
    cache : tuple
    """
    _require_matrix("Z", Z)
    _require_same_shape("Y", Y, "Z", Z)
    m = Z.shape[1]
    shifted = Z - Z.real.max(axis=0, keepdims=True)
    log_sum = np.log(np.sum(np.exp(shifted), axis=0, keepdims=True))
    log_probs = shifted - log_sum
    J = -np.sum(Y * log_probs) / m
    return np.asarray(J), (np.exp(log_probs), Y.copy(), m)


def softmax_cross_entropy_backward(dJ, cache):
    """``dZ = dJ (softmax(Z) 1ᵀY - Y) / m``: ``(S - Y)/m`` for columns of ``Y`` summing to 1."""
    S, Y, m = cache
    return np.asarray(dJ) * (S * np.sum(Y, axis=0, keepdims=True) - Y) / m


# --------------------------------------------------------------- protocol classes
class Dense:
    """Dense layer ``Z = W A_prev + b 1ᵀ`` implementing the Layer protocol.

    Parameters
    ----------
    W : ndarray, shape (n, n_prev)
        A float array (float64, float32 or float16); anything else is a
        TypeError naming it.
    b : ndarray, shape (n, 1)
        Likewise.

    Attributes
    ----------
    params : dict
        ``{"W": W, "b": b}``, the arrays passed in (not copies): forward reads
        them at call time, so in-place changes take effect.
    grads : dict
        ``{"W": dW, "b": db}`` after :meth:`backward`.
    """

    input_name = "A_prev"
    complex_safe = True

    def __init__(self, W, b):
        require_float_array("W", W)
        require_float_array("b", b)
        self.params = {"W": W, "b": b}
        self.grads = {}
        self._cache = None

    def forward(self, x):
        """x: ndarray, shape (n_prev, m) → Z: ndarray, shape (n, m)."""
        Z, self._cache = dense_forward(x, self.params["W"], self.params["b"])
        return Z

    def backward(self, dout):
        """dout = dJ/dZ, shape (n, m) → dJ/dA_prev, shape (n_prev, m); fills grads."""
        dA_prev, dW, db = dense_backward(dout, self._cache)
        self.grads = {"W": dW, "b": db}
        return dA_prev

    def jacobian_coloring(self, name, shape):
        """Return groups of entries of tensor ``name`` (of ``shape``) that move disjoint outputs.

        A checker may perturb a whole group at once (gradcheck does, and verifies
        it). ``A_prev[v, j]`` moves column ``j`` of ``Z``, ``W[u, v]`` row ``u``,
        ``b[u]`` row ``u``: one group per input unit ``v``, one for all of ``b``.
        """
        if name == "b":
            return np.zeros(shape, dtype=np.int64)
        if name in ("x", "W"):   # x: (n_prev, m), grouped by row; W: (n, n_prev), by column
            axis = 0 if name == "x" else 1
            return np.broadcast_to(np.expand_dims(np.arange(shape[axis]), 1 - axis), shape).copy()
        return None


class _Activation:
    """An elementwise (or softmax) activation ``A = g(Z)`` with no parameters.

    ``complex_safe``: the forward is the holomorphic extension of ``g`` (every
    subclass inherits it).
    """

    input_name = "Z"
    complex_safe = True
    _forward = _backward = None

    def __init__(self):
        self.params = {}
        self.grads = {}
        self._cache = None

    def forward(self, x):
        """x = Z, shape (n, m) → A = g(Z), shape (n, m)."""
        require_ndarray(self.input_name, x)
        A, self._cache = type(self)._forward(x)
        return A

    def backward(self, dout):
        """dout = dJ/dA, shape (n, m) → dJ/dZ, shape (n, m)."""
        require_ndarray("dout", dout)
        return type(self)._backward(dout, self._cache)

    def jacobian_coloring(self, name, shape):
        """Elementwise: each entry moves only its own output, so all form one group."""
        return np.zeros(shape, dtype=np.int64) if name == "x" else None


class ReLU(_Activation):
    """``A = max(Z, 0)``; ``dZ = dA ⊙ [Z > 0]`` (eq. 10)."""
    _forward, _backward = relu_forward, relu_backward


class Sigmoid(_Activation):
    """``A = σ(Z)``; ``dZ = dA ⊙ A(1 - A)`` (eq. 10)."""
    _forward, _backward = sigmoid_forward, sigmoid_backward


class Tanh(_Activation):
    """``A = tanh(Z)``; ``dZ = dA ⊙ (1 - A²)`` (eq. 10)."""
    _forward, _backward = tanh_forward, tanh_backward


class Identity(_Activation):
    """``A = Z``; ``dZ = dA``."""
    _forward, _backward = identity_forward, identity_backward


class Softmax(_Activation):
    """Softmax over axis 0; its Jacobian is full (see :func:`softmax_backward`)."""
    _forward, _backward = softmax_forward, softmax_backward

    def jacobian_coloring(self, name, shape):
        """A column's outputs all move with each of its entries: one group per row.

        Any input of one axis or more: a 1-D input is one distribution, each
        entry its own group.
        """
        if name != "x":
            return None
        if len(shape) == 0:
            raise ValueError("`shape` must have at least one axis (softmax is taken over "
                             "axis 0), got ()")
        rows = np.arange(shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
        return np.broadcast_to(rows, shape).copy()


class LeakyReLU(_Activation):
    """``A = Z`` for ``Z > 0`` else ``alpha Z``; ``dZ = dA ⊙ g'(Z)`` (eq. 10).

    Parameters
    ----------
    alpha : float, default 0.01
        Slope for negative inputs: a real number (Python or NumPy int or float,
        not a bool; TypeError otherwise), finite (ValueError otherwise).
    """

    def __init__(self, alpha=0.01):
        super().__init__()
        if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"`alpha` must be a real number (the slope for negative inputs), "
                            f"got {alpha!r} ({type(alpha).__name__})")
        if not np.isfinite(alpha):
            raise ValueError(f"`alpha` must be finite, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x):
        require_ndarray(self.input_name, x)
        A, self._cache = leaky_relu_forward(x, self.alpha)
        return A

    def backward(self, dout):
        require_ndarray("dout", dout)
        return leaky_relu_backward(dout, self._cache)


class _Loss:
    """A loss ``J(x; Y)`` with fixed targets ``Y``; forward returns a 0-d array.

    ``complex_safe``: the forward is the holomorphic extension of ``J`` in ``x``
    (every subclass inherits it).
    """

    input_name = "Z"
    complex_safe = True
    _forward = _backward = None

    def __init__(self, Y):
        _require_matrix("Y", Y)
        self.Y = Y
        self.params = {}
        self.grads = {}
        self._cache = None

    def forward(self, x):
        """x, shape (n, m) → J, shape ()."""
        J, self._cache = type(self)._forward(x, self.Y)
        return J

    def backward(self, dout=1.0):
        """dout = upstream scalar (1 for the loss itself) → dJ/dx, shape (n, m)."""
        return type(self)._backward(dout, self._cache)


class MSELoss(_Loss):
    """``J = 1/(2m) Σ (A - Y)²`` on predictions ``A``; see :func:`mse_forward`."""
    input_name = "A"
    _forward, _backward = mse_forward, mse_backward


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits; see :func:`bce_with_logits_forward`."""
    _forward, _backward = bce_with_logits_forward, bce_with_logits_backward


class SoftmaxCrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits; see :func:`softmax_cross_entropy_forward`."""
    _forward, _backward = softmax_cross_entropy_forward, softmax_cross_entropy_backward


#: Activation classes by the name used in configurations and reports.
ACTIVATIONS = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid,
    "tanh": Tanh, "identity": Identity, "softmax": Softmax,
}
#: Loss classes by the name used in configurations and reports.
LOSSES = {
    "mse": MSELoss, "bce": BCEWithLogitsLoss, "softmax_cross_entropy": SoftmaxCrossEntropyLoss,
}
