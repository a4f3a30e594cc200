"""Every reference layer is complex-safe: its forward is the holomorphic extension
of its real function, so the complex step reproduces its float64 backward.

For ``J(x) = Σ G ⊙ f(x)`` with a fixed real ``G``, the complex step gives
``dJ/dx_k = Im J(x + i h e_k) / h`` with ``h = 1e-30``. It takes no difference, so
there is no subtractive cancellation: the only error left is the rounding of the
forward, ~1e-16 relative (the O(h²) truncation is ~1e-60). The layer's analytic
backward is rounded the same way, so the two must agree to ~1e-15; we require
``max|a - b| / max|b| <= 1e-13`` per tensor. Any non-holomorphic operation
(``abs``, ``conj``, a comparison of complex numbers, a cast to float) would
drop or corrupt the imaginary part and give an O(1) error; a branch chosen on
the complex value instead of its real part would too.

The complex-step gradient is computed here, in the test, with a plain loop over
the entries (test code; the checker's own complex-step oracle is tested elsewhere).
Parameters are differentiated by swapping ``layer.params[key]`` for a complex
copy, restored afterwards.

The second half checks that the change kept the float64 path as it was: the
outputs equal the torch twins' to ~1e-15 relative, and bit for bit the float64
expressions the dense functions used before they were made complex-safe.
"""

import numpy as np
import pytest
import torch

from property_tests.torch_twins import torch_twin
from reference_impls import (
    ACTIVATIONS, AvgPool2D, BatchNorm, BCEWithLogitsLoss, Conv2D, Dense, LeakyReLU, MaxPool2D,
    MSELoss, SoftmaxCrossEntropyLoss, cnn, mlp,
)
from reference_impls import dense as D

H = 1e-30
#: Complex step vs analytic backward, max|a - b| / max|b| per tensor (see the docstring).
RTOL = 1e-13
#: Denominator floor: a tensor whose true gradient is all zero (a dead ReLU, BatchNorm
#: with one example) must come out zero from both sides, up to underflow.
ABS_FLOOR = np.finfo(np.float64).tiny


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), ABS_FLOOR))


def complex_step(fn, x, G):
    """dJ/dx of J = Σ G ⊙ fn(x) by the complex step, entry by entry (a plain loop)."""
    xc = x.astype(np.complex128)
    grad = np.empty(x.shape)
    for k in range(x.size):
        xc.flat[k] = complex(x.flat[k], H)
        out = fn(xc)
        assert np.iscomplexobj(out), "the forward dropped the imaginary part"
        grad.flat[k] = np.sum(G * out).imag / H
        xc.flat[k] = x.flat[k]
    return grad


def complex_step_gradients(layer, x, G):
    """{"x": dJ/dx, key: dJ/dparam} by the complex step; the layer's params are restored."""
    grads = {"x": complex_step(layer.forward, x, G)}
    for key in list(layer.params):
        original = layer.params[key]

        def with_param(p, key=key):
            layer.params[key] = p
            return layer.forward(x)

        try:
            grads[key] = complex_step(with_param, original, G)
        finally:
            layer.params[key] = original
    return grads


def analytic_gradients(layer, x, G):
    layer.forward(x)
    dx = layer.backward(G)
    return {"x": np.array(dx), **{k: np.array(v) for k, v in layer.grads.items()}}


def assert_complex_step_matches_backward(layer, x, seed=0):
    assert layer.complex_safe
    out = layer.forward(x)
    assert out.dtype == np.float64
    G = np.random.default_rng(seed).normal(size=np.shape(out))
    params_before = {k: v.copy() for k, v in layer.params.items()}
    numeric = complex_step_gradients(layer, x, G)
    for k, v in layer.params.items():   # restored: the same arrays, unchanged, real
        assert v.dtype == np.float64 and np.array_equal(v, params_before[k]), k
    analytic = analytic_gradients(layer, x, G)
    assert analytic.keys() == numeric.keys()
    for key in numeric:
        assert np.all(np.isfinite(analytic[key])), key
        err = rel_err(numeric[key], analytic[key])
        assert err <= RTOL, f"{type(layer).__name__} d{key}: complex step vs backward {err:.3g}"


# ------------------------------------------------------------------------- cases
def _logits(n, m, rng):
    """Normal logits with saturated entries: ±800 (overflows a naive exp) and ±30."""
    Z = 2.0 * rng.normal(size=(n, m))
    Z.flat[:4] = [800.0, -800.0, 30.0, -30.0]
    return Z


def _cases():
    rng = np.random.default_rng(0)
    yield "dense", Dense(rng.normal(size=(4, 3)), rng.normal(size=(4, 1))), rng.normal(size=(3, 5))
    for name in sorted(ACTIVATIONS):
        layer = LeakyReLU(0.1) if name == "leaky_relu" else ACTIVATIONS[name]()
        yield name, layer, _logits(4, 5, rng)
    shape = (3, 4)
    yield "mse", MSELoss(rng.normal(size=shape)), rng.normal(size=shape)
    yield "bce", BCEWithLogitsLoss(rng.uniform(size=shape)), _logits(*shape, rng)
    yield "bce_binary", BCEWithLogitsLoss(rng.integers(0, 2, size=shape) * 1.0), _logits(*shape, rng)
    Y = rng.dirichlet(np.ones(3), size=4).T
    yield "softmax_ce", SoftmaxCrossEntropyLoss(Y), _logits(*shape, rng)
    for i, (kernel, c_in, c_out, opts) in enumerate([
        ((3, 3), 2, 3, {}),
        ((2, 3), 1, 2, {"stride": 2, "padding": 1}),
        ((3, 2), 2, 2, {"stride": (1, 2), "padding": (2, 1), "dilation": 2}),
        ((3, 3), 2, 1, {"padding": "same", "dilation": (2, 1)}),
    ]):
        layer = Conv2D(rng.normal(size=(*kernel, c_in, c_out)), rng.normal(size=c_out), **opts)
        yield f"conv{i}", layer, rng.normal(size=(6, 5, c_in, 2))
    x = rng.normal(size=(6, 5, 2, 2))
    yield "maxpool", MaxPool2D(2), x
    yield "maxpool_overlap", MaxPool2D(3, stride=1, padding=1), x
    yield "maxpool_overlap_rect", MaxPool2D((3, 2), stride=(2, 1), padding=(1, 1)), x
    # exact ties: the winners are chosen on the real part, which the complex step
    # leaves tied, so it agrees with the backward's tie rule (first maximum) exactly
    yield "maxpool_ties", MaxPool2D(2, stride=1), rng.integers(0, 3, size=(5, 5, 2, 2)) * 1.0
    yield "avgpool_overlap", AvgPool2D(3, stride=2, padding=1), x
    yield "avgpool_no_pad_count", AvgPool2D(3, stride=1, padding=1, count_include_pad=False), x
    yield "batchnorm", BatchNorm(rng.normal(size=(3, 1)), rng.normal(size=(3, 1))), \
        1.0 + 2.0 * rng.normal(size=(3, 5))
    yield "batchnorm_one_example", BatchNorm(rng.normal(size=(3, 1)), rng.normal(size=(3, 1)),
                                             eps=1e-3), rng.normal(size=(3, 1))
    Y = np.eye(3)[:, [0, 2, 1, 1]]
    yield "mlp", mlp([4, 5, 3, 3], ["tanh", "leaky_relu", "identity"], "softmax_cross_entropy",
                     Y, rng=rng), rng.normal(size=(4, 4))
    yield "mlp_sigmoid_bce", mlp([3, 4, 2], ["relu", "identity"], "bce",
                                 rng.integers(0, 2, size=(2, 3)) * 1.0, rng=rng), \
        rng.normal(size=(3, 3))
    yield "mlp_softmax_mse", mlp([3, 4, 3], ["sigmoid", "softmax"], "mse",
                                 rng.normal(size=(3, 2)), rng=rng), rng.normal(size=(3, 2))
    stages = [
        {"filters": 2, "kernel": 3, "padding": 1, "activation": "relu",
         "pool": {"kind": "max", "window": 2, "stride": 1}},
        {"filters": 2, "kernel": (2, 3), "stride": 1, "dilation": 1, "activation": "tanh",
         "pool": {"kind": "avg", "window": 2, "count_include_pad": False, "padding": 1}},
    ]
    yield "cnn", cnn((6, 6, 2), stages, [3, 2], ["sigmoid", "identity"], "softmax_cross_entropy",
                     np.eye(2)[:, [0, 1]], rng=rng), rng.normal(size=(6, 6, 2, 2))


CASES = {name: (layer, x) for name, layer, x in _cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_complex_step_matches_the_float64_backward(name):
    layer, x = CASES[name]
    assert_complex_step_matches_backward(layer, x)


@pytest.mark.parametrize("cls", [Dense, *ACTIVATIONS.values(), MSELoss, BCEWithLogitsLoss,
                                 SoftmaxCrossEntropyLoss, MaxPool2D, AvgPool2D, BatchNorm, Conv2D])
def test_every_reference_layer_class_says_it_is_complex_safe(cls):
    assert cls.complex_safe is True


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax"])
def test_complex_forward_is_stable_for_large_logits(name):
    Z = np.array([[800.0, -800.0, 1.0], [-800.0, 800.0, -1.0]]) + 1j * H
    with np.errstate(over="raise", invalid="raise"):   # exp(-800) may underflow to 0
        A = ACTIVATIONS[name]().forward(Z)
    assert np.all(np.isfinite(A))


@pytest.mark.parametrize("loss", [BCEWithLogitsLoss, SoftmaxCrossEntropyLoss])
def test_complex_loss_is_stable_for_large_logits(loss):
    Z = np.array([[800.0, -800.0, 30.0], [-800.0, 800.0, -30.0]])
    Y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    with np.errstate(over="raise", invalid="raise"):
        J = loss(Y).forward(Z + 1j * H)
    assert np.isfinite(J)
    # complex log and exp round their real parts slightly differently from the real ones
    np.testing.assert_allclose(J.real, loss(Y).forward(Z), rtol=1e-15)


def test_relu_branches_on_the_real_part():
    # numpy orders complex numbers lexicographically: max(-1 + 1j, 0) would be -1 + 1j.
    Z = np.array([[-1.0 + 1.0j, 2.0 - 3.0j, 0.0 + 1.0j]])
    np.testing.assert_array_equal(D.relu_forward(Z)[0], [[0.0, 2.0 - 3.0j, 0.0]])
    np.testing.assert_array_equal(D.leaky_relu_forward(Z, 0.5)[0], [[-0.5 + 0.5j, 2.0 - 3.0j, 0.5j]])


# --------------------------------------------------------------- the float64 path
def _forward_vs_torch(layer, x):
    params = {k: torch.tensor(v) for k, v in layer.params.items()}
    expected = torch_twin(layer)(torch.tensor(x), params).detach().numpy()
    out = layer.forward(x)
    assert out.dtype == np.float64 and out.shape == expected.shape
    return rel_err(out, expected)


#: Forward of a float64 input against the torch twin, max|a - b| / max|b|: selecting
#: layers are exact, elementwise ones within an ulp, sums taken in another order
#: (softmax, log-sum-exp, losses, conv and pool sums, batch statistics) within a few
#: ulps of the largest term (measured <= 2.6e-16 on these cases).
FLOAT64_RTOL = 1e-15


@pytest.mark.parametrize("name", list(CASES))
def test_float64_forward_equals_the_torch_twin(name):
    layer, x = CASES[name]
    assert _forward_vs_torch(layer, x) <= FLOAT64_RTOL


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "maxpool", "maxpool_ties", "identity"])
def test_selecting_layers_equal_the_torch_twin_exactly(name):
    layer, x = CASES[name]
    assert _forward_vs_torch(layer, x) == 0.0


def _legacy(name, Z, Y=None):
    """The float64 expressions of reference_impls.dense before the complex-step change."""
    with np.errstate(over="ignore"):
        if name == "relu":
            return np.maximum(Z, 0.0)
        if name == "leaky_relu":
            return np.where(Z > 0, Z, 0.1 * Z)
        if name == "sigmoid":
            e = np.exp(-np.abs(Z))
            return np.where(Z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        if name == "softmax":
            E = np.exp(Z - Z.max(axis=0, keepdims=True))
            return E / E.sum(axis=0, keepdims=True)
        m = Z.shape[1]
        if name == "bce":
            return np.sum(np.maximum(Z, 0.0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))) / m
        shifted = Z - Z.max(axis=0, keepdims=True)
        return -np.sum(Y * (shifted - np.log(np.sum(np.exp(shifted), axis=0, keepdims=True)))) / m


@pytest.mark.parametrize("scale", [0.1, 1.0, 30.0, 800.0])
def test_float64_dense_functions_are_bit_identical_to_their_former_expressions(scale):
    rng = np.random.default_rng(int(scale))
    Z = scale * rng.normal(size=(5, 7))
    Z[0, :2] = [0.0, -0.0]
    for name in ["relu", "leaky_relu", "sigmoid", "softmax"]:
        layer = LeakyReLU(0.1) if name == "leaky_relu" else ACTIVATIONS[name]()
        np.testing.assert_array_equal(layer.forward(Z), _legacy(name, Z), err_msg=name)
    Y = rng.uniform(size=Z.shape)
    assert BCEWithLogitsLoss(Y).forward(Z) == _legacy("bce", Z, Y)
    Y = rng.dirichlet(np.ones(5), size=7).T
    assert SoftmaxCrossEntropyLoss(Y).forward(Z) == _legacy("ce", Z, Y)
