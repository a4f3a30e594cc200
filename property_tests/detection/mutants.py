"""A catalog of realistic backprop bugs, and of correct layers at hard points.

Each bug is ONE realistic mistake injected into a copy of a reference layer: a
subclass of the reference class that overrides ``forward`` or ``backward``
(or one step of it), or, for convolution and pooling, a small vectorized
copy of the correct computation (:class:`TapConv2D`, :class:`TapMaxPool2D`,
:class:`TapAvgPool2D`, whose unbugged versions are in the catalog as
correct layers) with one step replaced. The correct layers sit where a
checker is most easily fooled into a false alarm: exactly on kinks and ties,
in saturation, with dead units, with examples coupled by batch statistics.

``CASES`` holds one :class:`Case` per entry; ``case.build(rng)`` returns a
fresh ``(layer, x)``, float64 and small (at most ~500 entries in ``x`` and
the parameters together). ``gradcheck.check_layer(layer, x)`` must fail for
every ``kind == "bug"`` and pass for every ``kind == "correct"`` (and every
``kind == "hazard"``, with the hazard in ``result.hazards``);
``property_tests/detection/test_detection.py`` holds it to that, and
``python -m property_tests.detection.mutants`` prints the detection rate.

Layouts are the reference layers': ``(n, m)`` columns for dense layers,
``(n_H, n_W, n_C, m)`` volumes with ``W`` of shape ``(f_H, f_W, n_C_prev,
n_C)`` for convolution and pooling. Inputs of bug cases are drawn away from
kinks and ties (``_away_from_zero``, ``_distinct``), so that a failure is the
bug's and not the kink's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from reference_impls.conv import Conv2D
from reference_impls.dense import (
    BCEWithLogitsLoss, Dense, LeakyReLU, MSELoss, ReLU, Sigmoid, Softmax,
    SoftmaxCrossEntropyLoss, Tanh, dense_backward,
)
from reference_impls.networks import Flatten, Sequential, cnn, mlp
from reference_impls.pooling import MaxPool2D

__all__ = ["Case", "CASES", "FAMILIES", "KINDS", "FD_CANNOT_JUDGE",
           "TapConv2D", "TapMaxPool2D", "TapAvgPool2D"]

FAMILIES = ("dense", "activation", "loss", "conv", "pooling", "network", "normalization",
            "generic", "edge:scale", "edge:magnitude", "edge:domain", "edge:precision")
#: "bug": the check must fail; "correct": it must pass; "hazard": the gradients are
#: right but the layer writes into its caller's data: it must pass with a hazard.
KINDS = ("bug", "correct", "hazard")


@dataclass(frozen=True)
class Case:
    """One catalog entry: a layer with a known verdict, and how to build it.

    Attributes
    ----------
    name : str
        Short unique id, e.g. ``"dense_db_wrong_axis"``.
    family : str
        One of :data:`FAMILIES`.
    kind : str
        ``"bug"`` (check_layer must fail), ``"correct"`` (it must pass) or
        ``"hazard"`` (it must pass and report a hazard: the layer writes into
        its caller's data but its gradients are right).
    description : str
        One sentence a user would understand.
    build : callable
        ``build(rng) -> (layer, x)``: a fresh layer and its input, float64.
    """

    name: str
    family: str
    kind: str
    description: str
    build: Callable


_CASES: list[Case] = []


def _case(name, family, kind, description):
    """Register the decorated ``build(rng)`` as a catalog entry."""
    assert family in FAMILIES and kind in KINDS, (family, kind)

    def register(build):
        _CASES.append(Case(name, family, kind, description, build))
        return build
    return register


# ------------------------------------------------------------------------ inputs
def _normal(rng, *shape, scale=1.0):
    return rng.normal(0.0, scale, shape)


def _away_from_zero(rng, *shape, low=0.2, high=2.0):
    """Entries with ``low <= |v| <= high`` and random signs: no ReLU kink within reach."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, shape)


def _distinct(rng, *shape, gap=0.1):
    """Entries pairwise at least ``0.6 · gap`` apart, in random order: no max-pool near-ties."""
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size / 2) * gap + rng.uniform(-0.2 * gap, 0.2 * gap, size)
    return values.reshape(shape)


def _dense(rng, n, n_prev, m):
    """A reference Dense layer's arrays and an input: ``(W, b, A_prev)``."""
    return _normal(rng, n, n_prev), _normal(rng, n, 1), _normal(rng, n_prev, m)


def _one_hot(rng, n, m):
    Y = np.zeros((n, m))
    Y[rng.integers(0, n, m), np.arange(m)] = 1.0
    return Y


# ========================================================================= dense
class DbSummedOverUnits(Dense):
    """db summed over axis 0 (the units) instead of axis 1 (the examples)."""

    def backward(self, dout):
        dA_prev = super().backward(dout)
        self.grads["b"] = np.sum(dout, axis=0).reshape(-1, 1)   # fits only because n == m
        return dA_prev


@_case("dense_db_wrong_axis", "dense", "bug",
       "The bias gradient is summed over the units instead of the examples "
       "(the shapes still fit because the layer is square: n = m).")
def _(rng):
    W, b, x = _dense(rng, 4, 4, 4)
    return DbSummedOverUnits(W, b), x


class MissingTranspose(Dense):
    """dA_prev = W dZ instead of Wᵀ dZ (eq. 8): shape-correct for a square W."""

    def backward(self, dout):
        super().backward(dout)
        return self.params["W"] @ dout


@_case("dense_missing_transpose", "dense", "bug",
       "The input gradient is W·dZ instead of Wᵀ·dZ; W is square, so nothing crashes.")
def _(rng):
    W, b, x = _dense(rng, 4, 4, 3)
    return MissingTranspose(W, b), x


class DoubledWeightGradient(Dense):
    """dW scaled by 2, as from a forgotten 1/2 in a squared term."""

    def backward(self, dout):
        dA_prev = super().backward(dout)
        self.grads["W"] = 2.0 * self.grads["W"]
        return dA_prev


@_case("dense_dW_doubled", "dense", "bug",
       "The weight gradient is twice the true one (a factor 2 from a squared term not cancelled).")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    return DoubledWeightGradient(W, b), x


class SlightlyScaledWeightGradient(Dense):
    """dW · (1 + 1e-5): a relative error of 1e-5, e.g. a constant typed with too few digits."""

    def backward(self, dout):
        dA_prev = super().backward(dout)
        self.grads["W"] = self.grads["W"] * (1.0 + 1e-5)
        return dA_prev


@_case("dense_dW_relative_error_1e-5", "dense", "bug",
       "The weight gradient is off by a relative 1e-5 everywhere (dW · (1 + 1e-5)).")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    return SlightlyScaledWeightGradient(W, b), x


class LastWeightEntryNeverWritten(Dense):
    """dW filled entry by entry with ``range(W.size - 1)``: the last entry keeps its zero."""

    def backward(self, dout):
        A_prev, W = self._cache
        dA_prev, _, db = dense_backward(dout, self._cache)
        dW = np.zeros_like(W)
        for k in range(W.size - 1):                     # off by one: should be range(W.size)
            i, j = np.unravel_index(k, W.shape)
            dW[i, j] = dout[i] @ A_prev[j]
        self.grads = {"W": dW, "b": db}
        return dA_prev


@_case("dense_dW_one_entry_wrong", "dense", "bug",
       "A loop over the entries of dW stops one short, so only the last entry of dW is wrong (0).")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    return LastWeightEntryNeverWritten(W, b), x


class FirstExampleCountedTwice(Dense):
    """dW accumulated over examples, the accumulator initialized with example 0's term."""

    def backward(self, dout):
        A_prev, W = self._cache
        dA_prev, _, db = dense_backward(dout, self._cache)
        dW = np.outer(dout[:, 0], A_prev[:, 0])         # should start at zero
        for i in range(dout.shape[1]):
            dW += np.outer(dout[:, i], A_prev[:, i])
        self.grads = {"W": dW, "b": db}
        return dA_prev


@_case("dense_dW_first_example_twice", "dense", "bug",
       "The weight gradient counts the first example of the batch twice (the accumulator starts "
       "at its term instead of zero); the other examples are right.")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    return FirstExampleCountedTwice(W, b), x


class ReturnsInsideTheLoop(Dense):
    """A backward loop over examples whose ``return`` is indented into the loop."""

    def backward(self, dout):
        A_prev, W = self._cache
        dA_prev = np.zeros_like(A_prev)
        dW, db = np.zeros_like(W), np.zeros((W.shape[0], 1))
        for i in range(dout.shape[1]):
            dA_prev[:, i] = W.T @ dout[:, i]
            dW += np.outer(dout[:, i], A_prev[:, i])
            db[:, 0] += dout[:, i]
            self.grads = {"W": dW, "b": db}
            return dA_prev                               # returns after the first example


@_case("dense_backward_returns_after_first_example", "dense", "bug",
       "The backward loop over the examples returns after the first one (return indented "
       "into the loop): the other examples get no gradient.")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 4)
    return ReturnsInsideTheLoop(W, b), x


class TiedAutoencoder:
    """``y = Wᵀ tanh(W x + b)``: W used twice (encoder and decoder). Bug: dW of one use only."""

    input_name = "X"

    def __init__(self, W, b):
        self.params = {"W": W, "b": b}
        self.grads = {}

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        H = np.tanh(W @ x + b)
        self._cache = (x.copy(), W.copy(), H)
        return W.T @ H

    def backward(self, dout):
        x, W, H = self._cache
        dH = W @ dout
        dZ = dH * (1.0 - H * H)
        # The decoder's use of W contributes H doutᵀ too: dW = dZ xᵀ + H doutᵀ.
        self.grads = {"W": dZ @ x.T, "b": dZ.sum(axis=1, keepdims=True)}
        return W.T @ dZ


@_case("dense_tied_weights_one_use", "dense", "bug",
       "A tied-weights autoencoder y = Wᵀ tanh(W x + b) whose dW counts only the encoder's use "
       "of W, not the decoder's.")
def _(rng):
    return TiedAutoencoder(_normal(rng, 3, 4, scale=0.7), _normal(rng, 3, 1)), _normal(rng, 4, 5)


# ==================================================================== activations
class SigmoidDerivativeFromZ(Sigmoid):
    """dZ = dA ⊙ Z(1 - Z): the derivative formula applied to Z instead of A = σ(Z)."""

    def forward(self, x):
        self._Z = x.copy()
        return super().forward(x)

    def backward(self, dout):
        Z = self._Z
        return dout * Z * (1.0 - Z)


@_case("sigmoid_backward_uses_Z", "activation", "bug",
       "Sigmoid backward computes Z(1 - Z) instead of A(1 - A) with A = σ(Z).")
def _(rng):
    return SigmoidDerivativeFromZ(), _normal(rng, 4, 5)


class TanhDerivativeFromZ(Tanh):
    """dZ = dA ⊙ (1 - Z²) instead of (1 - A²)."""

    def forward(self, x):
        self._Z = x.copy()
        return super().forward(x)

    def backward(self, dout):
        return dout * (1.0 - self._Z * self._Z)


@_case("tanh_backward_uses_Z", "activation", "bug",
       "Tanh backward computes 1 - Z² instead of 1 - tanh(Z)².")
def _(rng):
    return TanhDerivativeFromZ(), _normal(rng, 4, 5)


class SoftmaxDiagonalShortcut(Softmax):
    """dZ = dA ⊙ A(1 - A): only the diagonal of softmax's Jacobian (eq. 10 misapplied)."""

    def backward(self, dout):
        A = self._cache
        return dout * A * (1.0 - A)


@_case("softmax_backward_diagonal_only", "activation", "bug",
       "Softmax backward uses only the diagonal of its Jacobian, dA ⊙ A(1 - A), as if softmax "
       "acted entry by entry.")
def _(rng):
    return SoftmaxDiagonalShortcut(), _normal(rng, 4, 5)


class LeakyReLUWithoutAlpha(LeakyReLU):
    """The derivative copied from ReLU: 0 for negative inputs instead of alpha."""

    def backward(self, dout):
        Z, _ = self._cache
        return dout * (Z > 0)


@_case("leaky_relu_backward_ignores_alpha", "activation", "bug",
       "Leaky ReLU backward passes no gradient for negative inputs, ignoring the slope alpha.")
def _(rng):
    return LeakyReLUWithoutAlpha(alpha=0.1), _away_from_zero(rng, 4, 5)


class ReLUMaskFromOutput(ReLU):
    """dZ = dA ⊙ [A >= 0], the mask taken from the output: always true, nothing is blocked."""

    def forward(self, x):
        A = super().forward(x)
        self._A = A.copy()
        return A

    def backward(self, dout):
        return dout * (self._A >= 0)


@_case("relu_backward_mask_from_output", "activation", "bug",
       "ReLU backward masks with A >= 0 (always true for A = max(Z, 0)) instead of Z > 0, so "
       "negative inputs get gradient.")
def _(rng):
    return ReLUMaskFromOutput(), _away_from_zero(rng, 4, 5)


class TanhOddBatchRemainder(Tanh):
    """Examples processed in pairs; the leftover example of an odd batch skips the derivative."""

    def backward(self, dout):
        A = self._cache
        m = dout.shape[1]
        dZ = np.empty_like(dout)
        for i in range(0, m - 1, 2):
            dZ[:, i:i + 2] = dout[:, i:i + 2] * (1.0 - A[:, i:i + 2] ** 2)
        if m % 2:
            dZ[:, -1] = dout[:, -1]                      # remainder path: forgot (1 - A²)
        return dZ


@_case("tanh_backward_odd_batch_remainder", "activation", "bug",
       "Tanh backward works on pairs of examples; the leftover example of an odd batch skips "
       "the derivative 1 - A², so only that example is wrong.")
def _(rng):
    return TanhOddBatchRemainder(), _normal(rng, 4, 5)


# ========================================================================= losses
class MSEWithoutOneOverM(MSELoss):
    """dA = A - Y: the 1/m of J = 1/(2m) Σ (A - Y)² forgotten."""

    def backward(self, dout=1.0):
        diff, m = self._cache
        return np.asarray(dout) * diff


@_case("mse_gradient_missing_1_over_m", "loss", "bug",
       "The MSE gradient is (A - Y) instead of (A - Y)/m: the loss averages over m = 4 examples, "
       "its gradient does not.")
def _(rng):
    return MSEWithoutOneOverM(_normal(rng, 3, 4)), _normal(rng, 3, 4)


class MSESignFlipped(MSELoss):
    """dA = (Y - A)/m: the difference taken the other way round."""

    def backward(self, dout=1.0):
        diff, m = self._cache
        return np.asarray(dout) * (-diff) / m


@_case("mse_gradient_sign_flipped", "loss", "bug",
       "The MSE gradient has the wrong sign, (Y - A)/m instead of (A - Y)/m.")
def _(rng):
    return MSESignFlipped(_normal(rng, 3, 4)), _normal(rng, 3, 4)


class BCESignFlipped(BCEWithLogitsLoss):
    """dZ = (Y - σ(Z))/m instead of (σ(Z) - Y)/m."""

    def backward(self, dout=1.0):
        S, Y, m = self._cache
        return np.asarray(dout) * (Y - S) / m


@_case("bce_gradient_sign_flipped", "loss", "bug",
       "The binary cross-entropy gradient is (Y - σ(Z))/m instead of (σ(Z) - Y)/m.")
def _(rng):
    Y = rng.integers(0, 2, (2, 5)).astype(np.float64)
    return BCESignFlipped(Y), _normal(rng, 2, 5)


class BCEWithoutSigmoid(BCEWithLogitsLoss):
    """dZ = (Z - Y)/m: the logits used where the probabilities σ(Z) belong."""

    def forward(self, x):
        self._Z = x.copy()
        return super().forward(x)

    def backward(self, dout=1.0):
        _, Y, m = self._cache
        return np.asarray(dout) * (self._Z - Y) / m


@_case("bce_gradient_without_sigmoid", "loss", "bug",
       "The binary cross-entropy gradient uses the logits Z instead of σ(Z): (Z - Y)/m.")
def _(rng):
    Y = rng.integers(0, 2, (2, 5)).astype(np.float64)
    return BCEWithoutSigmoid(Y), _normal(rng, 2, 5)


class SoftmaxCEExtraOneOverM(SoftmaxCrossEntropyLoss):
    """dZ = (softmax(Z) - Y)/m²: the 1/m applied twice (here and again by the caller)."""

    def backward(self, dout=1.0):
        S, Y, m = self._cache
        return np.asarray(dout) * (S * np.sum(Y, axis=0, keepdims=True) - Y) / m / m


@_case("softmax_ce_gradient_extra_1_over_m", "loss", "bug",
       "The softmax cross-entropy gradient is divided by m twice: (softmax(Z) - Y)/m².")
def _(rng):
    return SoftmaxCEExtraOneOverM(_one_hot(rng, 4, 3)), _normal(rng, 4, 3)


# ========================================================================== conv
def _tap_index(r0, c0, s, n_H_out, n_W_out):
    """Slices of the padded input that kernel tap (r0, c0) meets for every output position.

    Output ``(h, w)`` reads ``A_pad[r0 + s h, c0 + s w]``: with the tap's
    offset ``r0 = a · d`` (a dilated kernel), these are two basic slices.
    """
    return (slice(r0, r0 + s * (n_H_out - 1) + 1, s), slice(c0, c0 + s * (n_W_out - 1) + 1, s))


def _dilate(dZ, step):
    """``dZ`` spread out with ``step - 1`` zeros between its entries (rows and columns)."""
    n_H_out, n_W_out, K, m = dZ.shape
    D = np.zeros((step * (n_H_out - 1) + 1, step * (n_W_out - 1) + 1, K, m))
    D[::step, ::step] = dZ
    return D


class TapConv2D:
    """A small, correct, vectorized copy of :class:`~reference_impls.conv.Conv2D`.

    Square stride ``s``, padding ``p`` and dilation ``d`` (ints). Forward is
    eq. (26) summed tap by tap; backward is eq. (31) ``db = Σ dZ``, eq. (29)
    ``dW = A_pad ⋆ dZ`` tap by tap, and eq. (37) generalized to stride and
    dilation: ``dA_pad = dilate(dZ, s) ⋆_full ROT180(dilate(W, d))`` with the
    channel axes of ``W`` swapped, then the padding cropped off. Each step is
    a method so that a bug replaces exactly one of them.
    """

    input_name = "A_prev"

    def __init__(self, W, b, *, stride=1, padding=0, dilation=1):
        self.params = {"W": W, "b": b}
        self.grads = {}
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        s, p, d = self.stride, self.padding, self.dilation
        f_H, f_W, _, K = W.shape
        Ap = np.pad(x, ((p, p), (p, p), (0, 0), (0, 0)))
        n_H_out = (Ap.shape[0] - d * (f_H - 1) - 1) // s + 1
        n_W_out = (Ap.shape[1] - d * (f_W - 1) - 1) // s + 1
        Z = np.zeros((n_H_out, n_W_out, K, x.shape[3])) + b[:, None]
        for a in range(f_H):
            for c in range(f_W):
                tap = Ap[_tap_index(a * d, c * d, s, n_H_out, n_W_out)]
                Z += np.einsum("hwcm,ck->hwkm", tap, W[a, c])
        self._cache = (x.copy(), Ap, W.copy())
        return Z

    def backward(self, dout):
        self.grads = {"W": self._dW(dout), "b": self._db(dout)}
        return self._crop(self._dA_pad(dout))

    def _db(self, dZ):
        """Eq. (31): the sum of dZ over rows, columns and examples, per filter."""
        return dZ.sum(axis=(0, 1, 3))

    def _dW(self, dZ):
        """Eq. (29): ``dW[a, c] = Σ A_pad[s h + a d, s w + c d] dZ[h, w]``, tap by tap."""
        _, Ap, W = self._cache
        s, d = self.stride, self.dilation
        n_H_out, n_W_out = dZ.shape[:2]
        dW = np.empty_like(W)
        for a in range(W.shape[0]):
            for c in range(W.shape[1]):
                tap = Ap[_tap_index(a * d, c * d, s, n_H_out, n_W_out)]
                dW[a, c] = np.einsum("hwcm,hwkm->ck", tap, dZ)
        return dW

    def _dilated_dZ(self, dZ):
        """dZ with ``s - 1`` zeros between entries: the stride undone (eq. 37 for s > 1)."""
        return _dilate(dZ, self.stride)

    def _rot180(self, Wd):
        """ROT180 of eq. (37): the kernel flipped in both spatial axes."""
        return Wd[::-1, ::-1]

    def _dA_pad(self, dZ):
        """Eq. (37): ``dA_pad = dilated dZ ⋆_full ROT180(dilated W)``, channels swapped."""
        _, Ap, W = self._cache
        d = self.dilation
        f_H, f_W, C, K = W.shape
        e_H, e_W = d * (f_H - 1) + 1, d * (f_W - 1) + 1      # extent of the dilated kernel
        Wd = np.zeros((e_H, e_W, C, K))
        Wd[::d, ::d] = W
        R = self._rot180(Wd)
        Dz = self._dilated_dZ(dZ)
        D = np.pad(Dz, ((e_H - 1, e_H - 1), (e_W - 1, e_W - 1), (0, 0), (0, 0)))
        full = np.zeros((Dz.shape[0] + e_H - 1, Dz.shape[1] + e_W - 1, C, dZ.shape[3]))
        for a in range(e_H):
            for c in range(e_W):
                full += np.einsum("hwkm,ck->hwcm",
                                  D[a:a + full.shape[0], c:c + full.shape[1]], R[a, c])
        dAp = np.zeros(Ap.shape)
        dAp[:full.shape[0], :full.shape[1]] = full   # rows past the last window get nothing
        return dAp

    def _crop(self, dAp):
        """The gradient of the padded input with the padding cut off."""
        A_prev = self._cache[0]
        p = self.padding
        return dAp[p:p + A_prev.shape[0], p:p + A_prev.shape[1]].copy()


def _conv_case(rng, cls, *, n=5, C=1, K=2, f=3, m=2, **hyper):
    """A ``cls`` convolution with random filters and a ``(n, n, C, m)`` input."""
    layer = cls(_normal(rng, f, f, C, K, scale=1.0 / np.sqrt(f * f * C)), _normal(rng, K), **hyper)
    return layer, _normal(rng, n, n, C, m)


@_case("conv_tapwise_copy", "conv", "correct",
       "The catalog's own vectorized convolution (the copy the conv bugs are injected into), "
       "with stride 2, padding 1 and dilation 2.")
def _(rng):
    return _conv_case(rng, TapConv2D, n=7, C=2, K=2, stride=2, padding=1, dilation=2)


class ConvKernelNotFlipped(TapConv2D):
    """Eq. (37) without ROT180: the full correlation uses W as it is."""

    def _rot180(self, Wd):
        return Wd


@_case("conv_dx_kernel_not_flipped", "conv", "bug",
       "Convolution dA_prev correlates dZ with W instead of ROT180(W) (the kernel is not flipped).")
def _(rng):
    return _conv_case(rng, ConvKernelNotFlipped, n=5, C=2, K=2)


class ConvStrideOffByOne(TapConv2D):
    """dZ spread with step s - 1 instead of s ("s - 1 zeros" passed where a step is expected)."""

    def _dilated_dZ(self, dZ):
        return _dilate(dZ, self.stride - 1)


@_case("conv_dx_stride_off_by_one", "conv", "bug",
       "Convolution dA_prev spreads dZ with step s - 1 instead of s (stride 2 forward, the "
       "backward scatters as if the stride were 1).")
def _(rng):
    return _conv_case(rng, ConvStrideOffByOne, n=7, C=1, K=2, stride=2)


class ConvCropPaddingPlusOne(TapConv2D):
    """dA_prev cropped from the padded gradient at p + 1 instead of p."""

    def _crop(self, dAp):
        A_prev = self._cache[0]
        p = self.padding + 1
        return dAp[p:p + A_prev.shape[0], p:p + A_prev.shape[1]].copy()


@_case("conv_dx_crop_padding_plus_one", "conv", "bug",
       "Convolution dA_prev is cut out of the padded gradient one row and column too far "
       "(crop at p + 1 with p = 2).")
def _(rng):
    return _conv_case(rng, ConvCropPaddingPlusOne, n=5, C=1, K=2, padding=2)


class ConvCropPaddingMinusOne(TapConv2D):
    """dA_prev cropped from the padded gradient at p - 1 instead of p."""

    def _crop(self, dAp):
        A_prev = self._cache[0]
        p = self.padding - 1
        return dAp[p:p + A_prev.shape[0], p:p + A_prev.shape[1]].copy()


@_case("conv_dx_crop_padding_minus_one", "conv", "bug",
       "Convolution dA_prev is cut out of the padded gradient one row and column too early "
       "(crop at p - 1 with p = 2).")
def _(rng):
    return _conv_case(rng, ConvCropPaddingMinusOne, n=5, C=1, K=2, padding=2)


class ConvDwFromUnpaddedInput(TapConv2D):
    """Eq. (29) correlating dZ with A_prev instead of the padded A_pad (shifted by p)."""

    def _dW(self, dZ):
        A_prev, _, W = self._cache                       # should be the padded input
        s, d = self.stride, self.dilation
        n_H_out, n_W_out = dZ.shape[:2]
        dW = np.empty_like(W)
        for a in range(W.shape[0]):
            for c in range(W.shape[1]):
                tap = A_prev[_tap_index(a * d, c * d, s, n_H_out, n_W_out)]
                dW[a, c] = np.einsum("hwcm,hwkm->ck", tap, dZ)
        return dW


@_case("conv_dW_reads_unpadded_input", "conv", "bug",
       "Convolution dW correlates dZ with the unpadded input instead of the padded one, so every "
       "window is shifted by the padding (n = 6, kernel 3, stride 3, padding 1: shapes fit).")
def _(rng):
    return _conv_case(rng, ConvDwFromUnpaddedInput, n=6, C=2, K=2, stride=3, padding=1)


class ConvDwIgnoresDilation(TapConv2D):
    """Eq. (29) with tap (a, c) read at offset (a, c) instead of (a d, c d)."""

    def _dW(self, dZ):
        _, Ap, W = self._cache
        s = self.stride
        n_H_out, n_W_out = dZ.shape[:2]
        dW = np.empty_like(W)
        for a in range(W.shape[0]):
            for c in range(W.shape[1]):
                tap = Ap[_tap_index(a, c, s, n_H_out, n_W_out)]   # dilation forgotten
                dW[a, c] = np.einsum("hwcm,hwkm->ck", tap, dZ)
        return dW


@_case("conv_dW_ignores_dilation", "conv", "bug",
       "Convolution dW is computed as if the dilation were 1 (forward uses dilation 2).")
def _(rng):
    return _conv_case(rng, ConvDwIgnoresDilation, n=7, C=1, K=2, padding=1, dilation=2)


class ConvDbFirstExampleOnly(Conv2D):
    """db summed over rows and columns of the first example only (``dZ[..., 0]``)."""

    def backward(self, dout):
        dA_prev = super().backward(dout)
        self.grads["b"] = dout[..., 0].sum(axis=(0, 1))
        return dA_prev


@_case("conv_db_first_example_only", "conv", "bug",
       "Convolution db sums dZ over the rows and columns of the first example only, not over "
       "the batch.")
def _(rng):
    return _conv_case(rng, ConvDbFirstExampleOnly, n=5, C=1, K=2, m=3)


class ConvChannelsNotSwapped(TapConv2D):
    """Eq. (37) with W's channel axes not swapped: W[a, c] read as (n_C, n_C_prev)."""

    def _dA_pad(self, dZ):
        _, Ap, W = self._cache
        d = self.dilation
        f_H, f_W, C, K = W.shape
        e_H, e_W = d * (f_H - 1) + 1, d * (f_W - 1) + 1
        Wd = np.zeros((e_H, e_W, C, K))
        Wd[::d, ::d] = W
        R = self._rot180(Wd)
        Dz = self._dilated_dZ(dZ)
        D = np.pad(Dz, ((e_H - 1, e_H - 1), (e_W - 1, e_W - 1), (0, 0), (0, 0)))
        full = np.zeros((Dz.shape[0] + e_H - 1, Dz.shape[1] + e_W - 1, C, dZ.shape[3]))
        for a in range(e_H):
            for c in range(e_W):
                full += np.einsum("hwkm,kc->hwcm",          # should be "hwkm,ck->hwcm"
                                  D[a:a + full.shape[0], c:c + full.shape[1]], R[a, c])
        dAp = np.zeros(Ap.shape)
        dAp[:full.shape[0], :full.shape[1]] = full
        return dAp


@_case("conv_dx_channels_not_swapped", "conv", "bug",
       "Convolution dA_prev uses each kernel tap as (filters, channels) instead of (channels, "
       "filters); with as many filters as channels the shapes fit.")
def _(rng):
    return _conv_case(rng, ConvChannelsNotSwapped, n=5, C=2, K=2)


@_case("conv_reference_stride_padding_dilation", "conv", "correct",
       "The reference Conv2D with stride 2, padding 1 and dilation 2.")
def _(rng):
    return _conv_case(rng, Conv2D, n=7, C=2, K=2, stride=2, padding=1, dilation=2)


# ======================================================================= pooling
class TapMaxPool2D:
    """A small, correct, vectorized copy of :class:`~reference_impls.pooling.MaxPool2D`.

    Square window ``f``, stride ``s`` and padding ``p`` (``-inf``). Forward:
    the windows as a view, ``argmax`` over each (a tie goes to the first
    maximum in row-major order, torch's choice). Backward: every output's
    gradient added to its window's winner in the padded input, by flat index
    with ``np.add.at`` (an entry that wins several overlapping windows gets
    the sum), then the padding cropped off.
    """

    input_name = "A_prev"

    def __init__(self, window, *, stride=None, padding=0):
        self.window, self.stride, self.padding = window, stride or window, padding
        self.params, self.grads = {}, {}

    def forward(self, x):
        f, s, p = self.window, self.stride, self.padding
        Ap = np.pad(x, ((p, p), (p, p), (0, 0), (0, 0)), constant_values=-np.inf)
        windows = sliding_window_view(Ap, (f, f), axis=(0, 1))[::s, ::s]
        flat = windows.reshape(*windows.shape[:4], f * f)
        k = flat.argmax(axis=-1)
        h, w, c, n = np.indices(k.shape)
        winner = np.ravel_multi_index((h * s + k // f, w * s + k % f, c, n), Ap.shape)
        self._cache = (x.shape, Ap.shape, winner)
        return np.take_along_axis(flat, k[..., None], axis=-1)[..., 0]

    def backward(self, dout):
        shape, padded_shape, winner = self._cache
        dAp = np.zeros(int(np.prod(padded_shape)))
        self._scatter(dAp, winner.ravel(), dout.ravel())
        p = self.padding
        return dAp.reshape(padded_shape)[p:p + shape[0], p:p + shape[1]].copy()

    @staticmethod
    def _scatter(target, index, values):
        """``target[index] += values``, repeated indices adding up."""
        np.add.at(target, index, values)


@_case("maxpool_tapwise_copy", "pooling", "correct",
       "The catalog's own vectorized max pool (the copy the max-pool bugs are injected into), "
       "overlapping windows of 3 with stride 2 and padding 1.")
def _(rng):
    return TapMaxPool2D(3, stride=2, padding=1), _distinct(rng, 7, 7, 2, 2)


class MaxPoolOverlapAssigned(TapMaxPool2D):
    """``dA.flat[winner] += dA_out`` by fancy indexing: a repeated index is assigned, not added."""

    @staticmethod
    def _scatter(target, index, values):
        target[index] += values                          # should be np.add.at(target, index, values)


@_case("maxpool_overlap_gradients_assigned", "pooling", "bug",
       "Max pool with overlapping windows scatters the gradient with a fancy-indexed +=, so an "
       "entry that is the maximum of several windows gets one window's gradient instead of the "
       "sum (assigned, not added).")
def _(rng):
    x = _distinct(rng, 7, 7, 1, 2)
    x[2, 2, 0, :] = x.max() + 1.0          # in the overlap of four windows: wins all four
    return MaxPoolOverlapAssigned(3, stride=2), x


class MaxPoolGradientToWholeWindow(TapMaxPool2D):
    """Each output's gradient sent to every entry of its window, not only to the maximum."""

    def backward(self, dout):
        shape, padded_shape, _ = self._cache
        f, s, p = self.window, self.stride, self.padding
        dAp = np.zeros(padded_shape)
        for a in range(f):
            for c in range(f):
                dAp[_tap_index(a, c, s, *dout.shape[:2])] += dout
        return dAp[p:p + shape[0], p:p + shape[1]].copy()


@_case("maxpool_gradient_to_every_entry", "pooling", "bug",
       "Max pool backward sends each gradient to every entry of its window instead of only "
       "to the window's maximum.")
def _(rng):
    return MaxPoolGradientToWholeWindow(2), _distinct(rng, 4, 4, 2, 2)


class TapAvgPool2D:
    """A small, correct, vectorized copy of :class:`~reference_impls.pooling.AvgPool2D`.

    Square window ``f``, stride ``s``, zero padding ``p``; the divisor is
    ``f²`` (``count_include_pad=True``) or the number of real entries in the
    window. Forward and backward run over the window's taps; backward adds
    each tap's share of the gradient into the padded input (overlapping
    windows add), then crops the padding.
    """

    input_name = "A_prev"

    def __init__(self, window, *, stride=None, padding=0, count_include_pad=True):
        self.window, self.stride, self.padding = window, stride or window, padding
        self.count_include_pad = count_include_pad
        self.params, self.grads = {}, {}

    def forward(self, x):
        f, s, p = self.window, self.stride, self.padding
        pad = ((p, p), (p, p), (0, 0), (0, 0))
        Ap = np.pad(x, pad)
        real = np.pad(np.ones(x.shape[:2] + (1, 1)), pad)    # 1 on real entries, 0 on padding
        n_H_out, n_W_out = (Ap.shape[0] - f) // s + 1, (Ap.shape[1] - f) // s + 1
        total = np.zeros((n_H_out, n_W_out) + x.shape[2:])
        count = np.zeros((n_H_out, n_W_out, 1, 1))
        for a in range(f):
            for c in range(f):
                index = _tap_index(a, c, s, n_H_out, n_W_out)
                total += Ap[index]
                count += real[index]
        self._count = np.full(count.shape, float(f * f)) if self.count_include_pad else count
        self._shapes = (x.shape, Ap.shape)
        return total / self._count

    def _backward_divisor(self):
        return self._count

    def backward(self, dout):
        shape, padded_shape = self._shapes
        f, s, p = self.window, self.stride, self.padding
        share = dout / self._backward_divisor()
        dAp = np.zeros(padded_shape)
        for a in range(f):
            for c in range(f):
                self._accumulate(dAp, _tap_index(a, c, s, *dout.shape[:2]), share)
        return dAp[p:p + shape[0], p:p + shape[1]].copy()

    @staticmethod
    def _accumulate(dAp, index, share):
        dAp[index] += share


@_case("avgpool_tapwise_copy", "pooling", "correct",
       "The catalog's own vectorized average pool (the copy the avg-pool bugs are injected into), "
       "overlapping windows of 3 with stride 2, padding 1, padding not counted in the divisor.")
def _(rng):
    return TapAvgPool2D(3, stride=2, padding=1, count_include_pad=False), _normal(rng, 6, 6, 2, 2)


class AvgPoolOverlapAssigned(TapAvgPool2D):
    """Each tap's share assigned into the input gradient: overlapping windows overwrite."""

    @staticmethod
    def _accumulate(dAp, index, share):
        dAp[index] = share                               # should be +=


@_case("avgpool_overlap_gradients_assigned", "pooling", "bug",
       "Average pool with overlapping windows (3, stride 1) assigns each window's share of the "
       "gradient instead of adding it, so shared entries keep only the last window's share.")
def _(rng):
    return AvgPoolOverlapAssigned(3, stride=1), _normal(rng, 5, 5, 1, 2)


class AvgPoolDivisorMismatch(TapAvgPool2D):
    """Forward divides by the real entries (count_include_pad=False), backward always by f²."""

    def _backward_divisor(self):
        return float(self.window * self.window)


@_case("avgpool_wrong_divisor_at_borders", "pooling", "bug",
       "Average pool excludes the padding from the divisor in forward (count_include_pad=False) "
       "but divides by the full window size in backward, so border windows get too little.")
def _(rng):
    return AvgPoolDivisorMismatch(3, stride=2, padding=1, count_include_pad=False), \
        _normal(rng, 5, 5, 2, 2)


@_case("maxpool_ties_integer_overlap", "pooling", "correct",
       "The reference MaxPool2D with overlapping windows (3, stride 2) on integer-valued input, "
       "where many windows have exact ties.")
def _(rng):
    return MaxPool2D(3, stride=2), rng.integers(0, 3, (5, 5, 2, 2)).astype(np.float64)


@_case("maxpool_ties_constant_input", "pooling", "correct",
       "The reference MaxPool2D with overlapping windows (2, stride 1) on a constant input: every "
       "window is one big tie.")
def _(rng):
    return MaxPool2D(2, stride=1), np.full((4, 4, 1, 2), 0.5)


# ======================================================================= networks
class TanhBackwardIsIdentity(Tanh):
    """A hidden tanh whose backward passes dA on as dZ: the factor 1 - A² skipped."""

    def backward(self, dout):
        return dout.copy()


@_case("mlp_skips_one_activation_derivative", "network", "bug",
       "An MLP (4-5-5-2, tanh) whose backward skips the first hidden layer's activation "
       "derivative (dZ1 = dA1).")
def _(rng):
    Y = _normal(rng, 2, 3)
    net = mlp([4, 5, 5, 2], ["tanh", "tanh", "identity"], "mse", Y, rng=rng)
    net.layers[1] = TanhBackwardIsIdentity()
    return net, _normal(rng, 4, 3)


class FortranOrderFlatten(Flatten):
    """Flatten whose backward reshapes in Fortran order: not the inverse of the forward's C order."""

    def backward(self, dout):
        return dout.reshape(self._shape, order="F").copy()


@_case("cnn_flatten_backward_wrong_order", "network", "bug",
       "A CNN whose Flatten backward reshapes the gradient in a different order (Fortran) than "
       "its forward flattened the volume (C), scrambling which pixel gets which gradient.")
def _(rng):
    Y = _normal(rng, 3, 2)
    net = cnn((5, 5, 1), [{"filters": 2, "kernel": 2, "activation": "tanh"}], [3], ["identity"],
              "mse", Y, rng=rng)
    (i,) = [k for k, layer in enumerate(net.layers) if isinstance(layer, Flatten)]
    net.layers[i] = FortranOrderFlatten()
    return net, _normal(rng, 5, 5, 1, 2)


class ResidualForgetsSkip:
    """``y = x + f(x)`` with ``f`` a Sequential; backward returns ``f``'s dx only (no ``+ dout``)."""

    input_name = "X"

    def __init__(self, inner):
        self.inner = inner
        self.params = inner.params          # the same dict: perturbations reach the inner layers
        self.grads = {}

    def forward(self, x):
        return x + self.inner.forward(x)

    def backward(self, dout):
        dx = self.inner.backward(dout)      # the skip path's dout is not added
        self.grads = self.inner.grads
        return dx


@_case("residual_block_forgets_skip_path", "network", "bug",
       "A residual block y = x + W2 tanh(W1 x + b1) + b2 whose backward forgets the gradient of "
       "the identity (skip) path.")
def _(rng):
    inner = Sequential([Dense(_normal(rng, 3, 4, scale=0.5), _normal(rng, 3, 1)), Tanh(),
                        Dense(_normal(rng, 4, 3, scale=0.5), _normal(rng, 4, 1))])
    return ResidualForgetsSkip(inner), _normal(rng, 4, 3)


def _hidden_pre_activations(net, x):
    """The inputs of the ReLU layers of ``net`` at ``x``."""
    found, out = [], x
    for layer in net.layers:
        if isinstance(layer, ReLU):
            found.append(out.copy())
        out = layer.forward(out)
    return found


@_case("mlp_many_dead_relu_units", "network", "correct",
       "A correct MLP (5-8-8-3, ReLU, softmax cross-entropy) in which most hidden units are "
       "dead (negative pre-activation for every example), none exactly at 0.")
def _(rng):
    Y = _one_hot(rng, 3, 4)
    for _attempt in range(100):            # redraw until no unit is within 1e-2 of its kink
        net = mlp([5, 8, 8, 3], ["relu", "relu", "identity"], "softmax_cross_entropy", Y, rng=rng)
        net.params["b1"][2:] = -4.0        # 6 of 8 units of layer 1 dead
        net.params["b2"][3:] = -4.0        # 5 of 8 units of layer 2 dead
        x = _normal(rng, 5, 4, scale=0.5)
        Z1, Z2 = _hidden_pre_activations(net, x)
        if (min(np.abs(Z1).min(), np.abs(Z2).min()) > 1e-2
                and (Z1[2:] < 0).all() and (Z2[3:] < 0).all()):
            return net, x
    raise RuntimeError("no draw of the dead-unit MLP kept every unit away from its kink")


# ================================================================== normalization
def _batchnorm_arrays(rng, n=3, m=4):
    return _normal(rng, n, 1) + 1.0, _normal(rng, n, 1), _normal(rng, n, m, scale=2.0) + 0.5


def _batchnorm_subclass(name, backward):
    from reference_impls.normalization import BatchNorm   # lazily: written by another engineer

    def forward(self, x):
        self._Z = x.copy()
        return BatchNorm.forward(self, x)

    return type(name, (BatchNorm,), {"forward": forward, "backward": backward,
                                     "__doc__": backward.__doc__})


def _bn_backward_statistics_constant(self, dout):
    """BatchNorm backward with the batch mean and variance treated as constants:
    dZ = gamma · dout / sqrt(var + eps), the two terms through mu and var dropped."""
    from reference_impls.normalization import BatchNorm

    BatchNorm.backward(self, dout)                      # dgamma, dbeta are right
    var = np.mean((self._Z - self._Z.mean(axis=1, keepdims=True)) ** 2, axis=1, keepdims=True)
    return self.params["gamma"] * dout / np.sqrt(var + self.eps)


@_case("batchnorm_backward_statistics_constant", "normalization", "bug",
       "Batch-norm backward treats the batch mean and variance as constants "
       "(dZ = gamma·dout/sqrt(var + eps)), the classic per-example shortcut.")
def _(rng):
    gamma, beta, x = _batchnorm_arrays(rng)
    cls = _batchnorm_subclass("BatchNormStatisticsConstant", _bn_backward_statistics_constant)
    return cls(gamma, beta), x


def _bn_backward_unbiased_variance(self, dout):
    """BatchNorm backward written out with the unbiased variance (ddof=1) while the
    forward normalizes by the biased one (as torch does in training)."""
    from reference_impls.normalization import BatchNorm

    BatchNorm.backward(self, dout)                      # dgamma, dbeta are right
    Z, gamma = self._Z, self.params["gamma"]
    mu = Z.mean(axis=1, keepdims=True)
    var = np.var(Z, axis=1, keepdims=True, ddof=1)      # should be ddof=0, as in forward
    inv_std = 1.0 / np.sqrt(var + self.eps)
    Zhat = (Z - mu) * inv_std
    g = dout
    return gamma * inv_std * (g - g.mean(axis=1, keepdims=True)
                              - Zhat * (g * Zhat).mean(axis=1, keepdims=True))


@_case("batchnorm_backward_unbiased_variance", "normalization", "bug",
       "Batch-norm backward uses the unbiased variance (divided by m - 1) while the forward "
       "normalizes by the biased one (divided by m).")
def _(rng):
    gamma, beta, x = _batchnorm_arrays(rng)
    cls = _batchnorm_subclass("BatchNormUnbiasedVariance", _bn_backward_unbiased_variance)
    return cls(gamma, beta), x


@_case("batchnorm_correct", "normalization", "correct",
       "The reference BatchNorm, which couples the examples of the batch (m = 4).")
def _(rng):
    from reference_impls.normalization import BatchNorm

    gamma, beta, x = _batchnorm_arrays(rng)
    return BatchNorm(gamma, beta), x


# ======================================================================== generic
class InPlaceReLU(ReLU):
    """ReLU computed in place: ``np.maximum(x, 0, out=x)`` overwrites the caller's Z."""

    complex_safe = False

    def forward(self, x):
        np.maximum(x, 0.0, out=x)
        self._cache = x
        return x


@_case("relu_mutates_its_input", "generic", "hazard",
       "An in-place ReLU writes its output into the input array x (np.maximum(x, 0, out=x)), "
       "corrupting the caller's activations.")
def _(rng):
    return InPlaceReLU(), _away_from_zero(rng, 4, 5)


class FreshMaskDropout:
    """Dropout that draws a new mask on every forward call; backward uses the last mask."""

    input_name = "A"

    def __init__(self, keep=0.5, seed=0):
        self.keep = keep
        self._rng = np.random.default_rng(seed)
        self.params, self.grads = {}, {}

    def forward(self, x):
        self._mask = (self._rng.random(x.shape) < self.keep) / self.keep
        return x * self._mask

    def backward(self, dout):
        return dout * self._mask


@_case("dropout_new_mask_every_forward", "generic", "bug",
       "Dropout draws a new random mask on every forward call, so the function being "
       "differentiated changes between calls; backward uses the last forward's mask.")
def _(rng):
    return FreshMaskDropout(keep=0.5, seed=int(rng.integers(2**32))), _normal(rng, 4, 5)


class AugmentedWeightsAtConstruction(Dense):
    """The bias trick ``[W | b]`` built once in ``__init__``: forward never reads params again."""

    complex_safe = False

    def __init__(self, W, b):
        super().__init__(W, b)
        self._Wb = np.hstack([W, b])

    def forward(self, x):
        Z = self._Wb @ np.vstack([x, np.ones((1, x.shape[1]))])
        self._cache = (x.copy(), self._Wb[:, :-1].copy())
        return Z


@_case("dense_forward_reads_W_at_construction", "generic", "bug",
       "A dense layer builds [W | b] once in its constructor and its forward uses that copy, so "
       "changing params (as training or gradcheck does) has no effect on the output.")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    return AugmentedWeightsAtConstruction(W, b), x


class StaleGradients(Dense):
    """``grads.setdefault``: the gradients of the first backward call are kept forever."""

    def backward(self, dout):
        dA_prev, dW, db = dense_backward(dout, self._cache)
        self.grads.setdefault("W", dW)                  # should be self.grads = {...}
        self.grads.setdefault("b", db)
        return dA_prev


@_case("dense_stale_grads_from_previous_call", "generic", "bug",
       "A dense layer returns the right dA_prev but leaves grads from the previous backward "
       "call (a training step before the check) in place.")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    layer = StaleGradients(W, b)
    layer.forward(_normal(rng, 4, 5))                   # the previous call
    layer.backward(_normal(rng, 3, 5))
    return layer, x


# ============================================================ correct, hard points
@_case("relu_at_exact_zero", "activation", "correct",
       "The reference ReLU with several inputs exactly 0.0 (its kink).")
def _(rng):
    x = _away_from_zero(rng, 4, 5)
    x[rng.random(x.shape) < 0.3] = 0.0
    x[0, 0] = 0.0
    return ReLU(), x


@_case("leaky_relu_at_exact_zero", "activation", "correct",
       "The reference LeakyReLU (alpha 0.1) with several inputs exactly 0.0 (its kink).")
def _(rng):
    x = _away_from_zero(rng, 4, 5)
    x[rng.random(x.shape) < 0.3] = 0.0
    x[0, 0] = 0.0
    return LeakyReLU(alpha=0.1), x


class Abs:
    """``y = |x|``, derivative ``sign(x)`` (0 at 0, as torch)."""

    input_name = "Z"

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        self._x = x.copy()
        return np.abs(x)

    def backward(self, dout):
        return dout * np.sign(self._x)


@_case("abs_at_exact_zero", "activation", "correct",
       "A correct |x| layer (derivative sign(x), 0 at 0) with inputs exactly 0.0.")
def _(rng):
    x = _away_from_zero(rng, 3, 4)
    x[::2, 1::2] = 0.0
    return Abs(), x


class Clip:
    """``y = clip(x, -1, 1)``, derivative 1 strictly inside, 0 outside and on the bounds."""

    input_name = "Z"

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        self._x = x.copy()
        return np.clip(x, -1.0, 1.0)

    def backward(self, dout):
        return dout * ((self._x > -1.0) & (self._x < 1.0))


@_case("clip_at_exact_bounds", "activation", "correct",
       "A correct clip to [-1, 1] (derivative 1 inside, 0 outside) with inputs exactly at -1 "
       "and +1.")
def _(rng):
    x = rng.choice([-1.0, 1.0], (3, 4)) * rng.choice([0.3, 0.6, 1.5, 2.5], (3, 4))
    x[0, :2] = 1.0
    x[1, 2:] = -1.0
    return Clip(), x


@_case("softmax_ce_50_logits", "loss", "correct",
       "The reference softmax cross-entropy on 50 logits per example (3 examples, logits of "
       "scale 3).")
def _(rng):
    return SoftmaxCrossEntropyLoss(_one_hot(rng, 50, 3)), _normal(rng, 50, 3, scale=3.0)


@_case("sigmoid_saturated", "activation", "correct",
       "The reference sigmoid deep in saturation, |Z| between 14 and 16.")
def _(rng):
    return Sigmoid(), _away_from_zero(rng, 4, 5, low=14.0, high=16.0)


class ViewTiedAutoencoder:
    """``x -> tanh(W x) -> Wᵀ h``: an encoder and a decoder sharing one weight matrix.

    Written as people write it, with the decoder's weight a transpose view of
    the encoder's, each with its own gradient; no hints for the checker.
    """

    def __init__(self, W):
        self.params = {"W_enc": W, "W_dec": W.T}
        self.grads = {}

    def forward(self, x):
        self.x = x
        self.h = np.tanh(self.params["W_enc"] @ x)
        return self.params["W_dec"] @ self.h

    def backward(self, dout):
        dh = self.params["W_dec"].T @ dout
        dz = dh * (1 - self.h ** 2)
        self.grads = {"W_dec": dout @ self.h.T, "W_enc": dz @ self.x.T}
        return self.params["W_enc"].T @ dz


@_case("tied_autoencoder", "network", "correct",
       "An autoencoder whose decoder weight is the transpose of its encoder's (tied weights): "
       "the shared matrix's gradient is the sum of both.")
def _(rng):
    return ViewTiedAutoencoder(rng.normal(size=(3, 4))), rng.normal(size=(4, 5))


class TiedForgetsDecoder(ViewTiedAutoencoder):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W_dec"] = np.zeros_like(self.grads["W_dec"])   # only the encoder's share
        return dx


@_case("tied_autoencoder_forgets_decoder", "network", "bug",
       "Tied weights whose gradient keeps only the encoder's share and drops the decoder's.")
def _(rng):
    return TiedForgetsDecoder(rng.normal(size=(3, 4))), rng.normal(size=(4, 5))


# ============================================= ties, as users write max and maxout
class UserMaxPool:
    """NCHW max pooling written with a loop over window positions, as in a course.

    ``rule`` says where the gradient of a window goes: ``"first"`` to the first
    maximum (argmax), ``"split"`` evenly over the tied maxima (both valid),
    ``"all"`` to every tied maximum (the bug of ``mask = window == max``),
    ``"overwrite"`` to the first maximum but assigned (``=``) where windows
    overlap (the bug of a forgotten accumulation). Not complex-safe, no hints.
    """

    def __init__(self, k=3, s=2, rule="first"):
        self.k, self.s, self.rule = k, s, rule
        self.params, self.grads = {}, {}

    def forward(self, x):
        N, C, H, W = x.shape
        k, s = self.k, self.s
        out = np.empty((N, C, (H - k) // s + 1, (W - k) // s + 1))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
        self.x = x
        return out

    def backward(self, dout):
        x, k, s = self.x, self.k, self.s
        N, C = dout.shape[:2]
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = x[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, -1)
                top = window == window.max(axis=2, keepdims=True)
                if self.rule in ("first", "overwrite"):
                    mask = np.zeros_like(window)
                    np.put_along_axis(mask, window.argmax(axis=2)[..., None], 1.0, axis=2)
                elif self.rule == "split":
                    mask = top / top.sum(axis=2, keepdims=True)
                else:
                    mask = top.astype(float)
                share = (mask * dout[:, :, i, j][..., None]).reshape(N, C, k, k)
                if self.rule == "overwrite":
                    dx[:, :, i * s:i * s + k, j * s:j * s + k] = share
                else:
                    dx[:, :, i * s:i * s + k, j * s:j * s + k] += share
        return dx


def _integers(rng, *shape):
    """Values 0, 1, 2: exact ties in most windows."""
    return rng.integers(0, 3, size=shape).astype(np.float64)


@_case("user_maxpool_first_max_integer_overlap", "pooling", "correct",
       "A user's NCHW max pool (3×3, stride 2: overlapping windows) on integer-valued input, "
       "the gradient of a tie to the first maximum.")
def _(rng):
    return UserMaxPool(3, 2, "first"), _integers(rng, 2, 2, 7, 7)


@_case("user_maxpool_first_max_constant_stride1", "pooling", "correct",
       "A user's NCHW max pool (3×3, stride 1) on constant input: every entry ties in every "
       "window it is in.")
def _(rng):
    return UserMaxPool(3, 1, "first"), np.full((1, 2, 6, 6), 0.5)


@_case("user_maxpool_even_split_integer_overlap", "pooling", "correct",
       "A user's NCHW max pool that splits the gradient of a tie evenly among the tied maxima "
       "(a valid subgradient), overlapping windows, integer-valued input.")
def _(rng):
    return UserMaxPool(3, 2, "split"), _integers(rng, 2, 2, 7, 7)


@_case("user_maxpool_all_tied_get_gradient", "pooling", "bug",
       "mask = (window == window.max()): every tied maximum gets the window's whole gradient "
       "(integer-valued input, non-overlapping 2×2 windows).")
def _(rng):
    return UserMaxPool(2, 2, "all"), _integers(rng, 2, 2, 6, 6)


@_case("user_maxpool_all_tied_get_gradient_constant", "pooling", "bug",
       "mask = (window == window.max()) on constant input with overlapping windows: the gradient "
       "counted once per tied entry.")
def _(rng):
    return UserMaxPool(3, 2, "all"), np.full((1, 2, 7, 7), -0.25)


@_case("user_maxpool_overwrite_integer_overlap", "pooling", "bug",
       "The max-pool backward assigns (=) each window's share where windows overlap instead of "
       "adding, on integer-valued input.")
def _(rng):
    return UserMaxPool(3, 2, "overwrite"), _integers(rng, 2, 2, 7, 7)


class UserMaxout:
    """Maxout over pairs of rows: ``y[i] = max(x[2i], x[2i+1])``, first of a tie wins."""

    def __init__(self, every=False):
        self.every = every
        self.params, self.grads = {}, {}

    def forward(self, x):
        self.pairs = x.reshape(x.shape[0] // 2, 2, -1)
        return self.pairs.max(axis=1)

    def backward(self, dout):
        pairs = self.pairs
        if self.every:       # the bug: both halves of a tie get the gradient
            mask = pairs == pairs.max(axis=1, keepdims=True)
        else:
            mask = np.zeros(pairs.shape, dtype=bool)
            np.put_along_axis(mask, pairs.argmax(axis=1)[:, None, :], True, axis=1)
        return (mask * dout[:, None, :]).reshape(-1, pairs.shape[2])


@_case("user_maxout_ties", "activation", "correct",
       "A user's maxout over pairs of units at exact ties (integer-valued input), first of a "
       "tie wins.")
def _(rng):
    return UserMaxout(), _integers(rng, 6, 5)


@_case("user_maxout_ties_every_max", "activation", "bug",
       "A user's maxout sending the gradient to both units of a tie.")
def _(rng):
    x = _integers(rng, 6, 5)
    x[0, 0] = x[1, 0] = 2.0          # at least one tie for certain
    return UserMaxout(every=True), x


# ====================== edges: scales, small magnitudes, domain edges, precision
class UserLayer:
    """A user's layer from two functions: ``forward(x, params)`` and ``backward(dout, x, params)``."""

    def __init__(self, forward, backward, params=None):
        self._forward, self._backward = forward, backward
        self.params, self.grads = dict(params or {}), {}

    def forward(self, x):
        self.x = x
        return self._forward(x, self.params)

    def backward(self, dout):
        dx, self.grads = self._backward(dout, self.x, self.params)
        return dx


def _steep_forward(x, p):
    return 1e4 * x + p["b"]


def _steep_backward(off):
    return lambda dout, x, p: (1e4 * dout, {"b": dout.sum(axis=1, keepdims=True) * (1 + off)})


@_case("steep_shift", "edge:scale", "correct",
       "y = 1e4 x + b: dx is 1e4 times db.")
def _(rng):
    return UserLayer(_steep_forward, _steep_backward(0.0), {"b": _normal(rng, 3, 1)}), \
        _normal(rng, 3, 5, scale=1e-4)


@_case("steep_shift_db_off_1e-5", "edge:scale", "bug",
       "y = 1e4 x + b with db off by a relative 1e-5: hidden by dx's scale under a floor "
       "taken from the whole check.")
def _(rng):
    return UserLayer(_steep_forward, _steep_backward(1e-5), {"b": _normal(rng, 3, 1)}), \
        _normal(rng, 3, 5, scale=1e-4)


def _tiny_tanh_backward(factor):
    return lambda dout, x, p: (factor * dout * 1e-8 * (1 - np.tanh(x) ** 2), {})


@_case("tiny_outputs", "edge:scale", "correct",
       "y = 1e-8 tanh(x): a layer whose outputs are 1e-8.")
def _(rng):
    return UserLayer(lambda x, p: 1e-8 * np.tanh(x), _tiny_tanh_backward(1.0)), \
        _normal(rng, 3, 4)


@_case("tiny_outputs_dx_half_again", "edge:scale", "bug",
       "y = 1e-8 tanh(x) with dx 1.5 times too large: hidden by a noise floor assumed for "
       "unit-size terms.")
def _(rng):
    return UserLayer(lambda x, p: 1e-8 * np.tanh(x), _tiny_tanh_backward(1.5)), \
        _normal(rng, 3, 4)


def _l2_forward(x, p):
    return x / np.sqrt(np.sum(x * x, axis=0, keepdims=True))


def _l2_backward(project):
    def backward(dout, x, p):
        norm = np.sqrt(np.sum(x * x, axis=0, keepdims=True))
        y = x / norm
        along = y * np.sum(dout * y, axis=0, keepdims=True) if project else 0.0
        return (dout - along) / norm, {}
    return backward


@_case("l2_normalize_tiny", "edge:magnitude", "correct",
       "Columns scaled to unit length, inputs ~1e-8: the function varies on their scale.")
def _(rng):
    return UserLayer(_l2_forward, _l2_backward(True)), _normal(rng, 4, 3, scale=1e-8)


@_case("l2_normalize_tiny_no_projection", "edge:magnitude", "bug",
       "Unit-length columns at ~1e-8 whose backward forgets that the norm moves with x.")
def _(rng):
    return UserLayer(_l2_forward, _l2_backward(False)), _normal(rng, 4, 3, scale=1e-8)


def _log_backward(factor):
    return lambda dout, x, p: (dout / (factor * x), {})


@_case("log_near_zero", "edge:domain", "correct",
       "log(x) at x ~ 1e-7: a step of 6e-6 would leave the domain.")
def _(rng):
    return UserLayer(lambda x, p: np.log(x), _log_backward(1.0)), \
        rng.uniform(0.5e-7, 2e-7, (3, 4))


@_case("log_near_zero_half", "edge:domain", "bug",
       "log(x) at x ~ 1e-7 with the derivative of log(x)/2 (a 1/(2x) from sqrt's).")
def _(rng):
    return UserLayer(lambda x, p: np.log(x), _log_backward(2.0)), \
        rng.uniform(0.5e-7, 2e-7, (3, 4))


class Float16Dense(Dense):
    """The reference dense layer computing in float16 (params and input), dW scaled."""

    def __init__(self, W, b, factor=1.0):
        super().__init__(W.astype(np.float16), b.astype(np.float16))
        self.factor = factor
        self.complex_safe = False

    def backward(self, dout):
        dx = super().backward(dout.astype(np.float16))
        self.grads["W"] = (self.factor * self.grads["W"]).astype(np.float16)
        return dx


@_case("dense_float16", "edge:precision", "correct",
       "A dense layer computing in float16 (with a PrecisionWarning and float16's tolerances).")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    return Float16Dense(W, b), x.astype(np.float16)


@_case("dense_float16_dW_off_10_percent", "edge:precision", "bug",
       "A float16 dense layer whose dW is 10 % too large.")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    return Float16Dense(W, b, factor=1.1), x.astype(np.float16)


@_case("dense_float16_input_float64_params", "edge:precision", "correct",
       "A float64 dense layer given a float16 input: its steps must be ones float16 can hold.")
def _(rng):
    W, b, x = _dense(rng, 3, 4, 5)
    return Dense(W, b), x.astype(np.float16)


class ReLUZeroesDoutInPlace(ReLU):
    """ReLU whose backward zeroes the upstream gradient in place: right, but a hazard."""

    def backward(self, dout):
        dout[self._cache <= 0] = 0.0
        return dout

    def forward(self, x):
        self._cache = x.copy()
        return np.maximum(x, 0.0)


@_case("relu_writes_into_dout", "generic", "hazard",
       "A ReLU whose backward zeroes dout in place and returns it (dout[x <= 0] = 0): right "
       "gradients, a corrupted upstream gradient for its caller.")
def _(rng):
    return ReLUZeroesDoutInPlace(), _away_from_zero(rng, 4, 5)


CASES: tuple[Case, ...] = tuple(_CASES)
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"

#: Correct cases that central differences alone cannot judge: none. Entries
#: tied for the maximum of several overlapping windows were (an entry's
#: first-maximum share need not lie between its one-sided slopes); the
#: checker now judges a tie by its sum, which every valid tie-break shares.
FD_CANNOT_JUDGE = frozenset()


def _main():
    """Print each case's verdict and the detection rate (``python -m ...mutants``)."""
    import gradcheck

    right, caught, bugs = 0, 0, [c for c in CASES if c.kind == "bug"]
    for case in CASES:
        try:
            layer, x = case.build(np.random.default_rng(0))
            passed = gradcheck.check_layer(layer, x).passed
            verdict = "passed" if passed else "failed"
            ok = passed == (case.kind == "correct")
        except Exception as error:                       # report, do not stop
            verdict, ok = f"error: {type(error).__name__}: {error}", False
        right += ok
        caught += ok and case.kind == "bug"
        print(f"{'ok  ' if ok else 'MISS'} {case.kind:7} {case.family:13} {case.name:45} {verdict}")
    print(f"bugs detected: {caught} of {len(bugs)}; correct layers passed: {right - caught} of "
          f"{len(CASES) - len(bugs)}")


if __name__ == "__main__":
    _main()
