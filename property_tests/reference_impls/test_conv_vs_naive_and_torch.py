"""reference_impls/conv.py against torch autograd and against naive loops.

Hypothesis draws a whole configuration first (sizes, kernel, stride, padding,
dilation), rejects it only if the output would be empty, then draws the arrays
from a seeded generator.  Every check runs once per implementation strategy
of conv.py (``_FORCE``: automatic choice, im2col + col2im, im2col + literal
eq. (37), per-tap GEMMs), so that each strategy is verified whatever the
automatic choice picks for these small sizes.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import reference_impls.conv as conv
from property_tests.reference_impls.naive_conv import (
    naive_conv2d_backward,
    naive_conv2d_forward,
)
from reference_impls.conv import Conv2D, conv2d_backward, conv2d_forward

torch = pytest.importorskip("torch")

# Both sides compute the same sums exactly in float64 (torch: autograd of
# F.conv2d; naive: explicit loops), only in a different order: they differ by
# rounding alone, a few ulps of the largest entry.  Measured as
# max|a - b| / max|b| over the whole tensor.
RTOL = 1e-12

PATHS = [None, "im2col", "im2col_eq37", "taps"]

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)


@contextlib.contextmanager
def forced(path):
    """Force conv.py's implementation strategy inside the block."""
    old = conv._FORCE
    conv._FORCE = path
    try:
        yield
    finally:
        conv._FORCE = old


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@st.composite
def configs(draw):
    """A valid configuration (sizes + hyper-parameters) and an array seed."""
    cfg = {
        "n_H": draw(st.integers(1, 9)),
        "n_W": draw(st.integers(1, 9)),
        "n_C_prev": draw(st.integers(1, 4)),
        "n_C": draw(st.integers(1, 4)),
        "m": draw(st.integers(1, 4)),
        "f_H": draw(st.integers(1, 4)),
        "f_W": draw(st.integers(1, 4)),
    }
    pair_or_int = lambda lo, hi: st.one_of(  # noqa: E731
        st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi))
    )
    cfg["dilation"] = draw(pair_or_int(1, 3))
    cfg["padding"] = draw(st.one_of(pair_or_int(0, 2), st.sampled_from(["same", "valid"])))
    # torch allows "same" only with stride 1; so do we
    cfg["stride"] = 1 if cfg["padding"] == "same" else draw(pair_or_int(1, 3))
    d_H, d_W = _pair(cfg["dilation"])
    if isinstance(cfg["padding"], str):
        p_H = p_W = 0  # "same" always fits: it pads d*(f-1)
        fits = cfg["padding"] == "same"
    else:
        p_H, p_W = _pair(cfg["padding"])
        fits = False
    fits = fits or (
        cfg["n_H"] + 2 * p_H >= d_H * (cfg["f_H"] - 1) + 1
        and cfg["n_W"] + 2 * p_W >= d_W * (cfg["f_W"] - 1) + 1
    )
    assume(fits)  # the only rejection: a non-empty output
    cfg["seed"] = draw(st.integers(0, 2**32 - 1))
    return cfg


def make_arrays(cfg, dtype=np.float64):
    rng = np.random.default_rng(cfg["seed"])
    A = rng.standard_normal((cfg["n_H"], cfg["n_W"], cfg["n_C_prev"], cfg["m"]))
    W = rng.standard_normal((cfg["f_H"], cfg["f_W"], cfg["n_C_prev"], cfg["n_C"]))
    b = rng.standard_normal(cfg["n_C"])
    return A.astype(dtype), W.astype(dtype), b.astype(dtype), rng


def hyper(cfg):
    return {"stride": cfg["stride"], "padding": cfg["padding"], "dilation": cfg["dilation"]}


def rel_err(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.max(np.abs(b))
    return np.max(np.abs(a - b)) / (scale if scale > 0 else 1.0)


def torch_reference(A, W, b, dZ, cfg):
    """Forward and autograd gradients of F.conv2d, in our layout, float64."""
    x = torch.tensor(A.transpose(3, 2, 0, 1).copy(), requires_grad=True)  # (m, C, H, W)
    w = torch.tensor(W.transpose(3, 2, 0, 1).copy(), requires_grad=True)  # (Co, Ci, fH, fW)
    bt = torch.tensor(b.copy(), requires_grad=True)
    padding = cfg["padding"] if isinstance(cfg["padding"], str) else _pair(cfg["padding"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "same" with even kernels
        z = torch.nn.functional.conv2d(
            x, w, bt, stride=_pair(cfg["stride"]), padding=padding,
            dilation=_pair(cfg["dilation"]),
        )
    z.backward(torch.tensor(dZ.transpose(3, 2, 0, 1).copy()))
    back = lambda t: t.detach().numpy().transpose(2, 3, 1, 0)  # noqa: E731
    return back(z), back(x.grad), back(w.grad), bt.grad.numpy()


def normalized(cfg):
    padding = cfg["padding"] if isinstance(cfg["padding"], str) else _pair(cfg["padding"])
    return _pair(cfg["stride"]), padding, _pair(cfg["dilation"])


# ---------------------------------------------------------------------------
# agreement with torch and with the naive loops
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(cfg=configs())
def test_forward_and_gradients_match_torch(path, cfg):
    A, W, b, rng = make_arrays(cfg)
    with forced(path):
        Z, cache = conv2d_forward(A, W, b, **hyper(cfg))
        dZ = rng.standard_normal(Z.shape)
        dA, dW, db = conv2d_backward(dZ, cache)
    Z_t, dA_t, dW_t, db_t = torch_reference(A, W, b, dZ, cfg)
    for name, ours, ref in [("Z", Z, Z_t), ("dA_prev", dA, dA_t), ("dW", dW, dW_t),
                            ("db", db, db_t)]:
        assert ours.dtype == np.float64, name
        assert rel_err(ours, ref) <= RTOL, (name, rel_err(ours, ref), cfg)


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(cfg=configs())
def test_forward_and_gradients_match_naive_loops(path, cfg):
    A, W, b, rng = make_arrays(cfg)
    with forced(path):
        Z, cache = conv2d_forward(A, W, b, **hyper(cfg))
        dZ = rng.standard_normal(Z.shape)
        dA, dW, db = conv2d_backward(dZ, cache)
    stride, padding, dilation = normalized(cfg)
    Z_n = naive_conv2d_forward(A, W, b, stride, padding, dilation)
    dA_n, dW_n, db_n = naive_conv2d_backward(dZ, A, W, stride, padding, dilation)
    for name, ours, ref in [("Z", Z, Z_n), ("dA_prev", dA, dA_n), ("dW", dW, dW_n),
                            ("db", db, db_n)]:
        assert rel_err(ours, ref) <= RTOL, (name, rel_err(ours, ref), cfg)


def test_naive_loops_match_torch_on_fixed_cases():
    """The oracle itself, on a few hand-picked configurations."""
    cases = [
        dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        dict(stride=(1, 1), padding="same", dilation=(2, 1)),
        dict(stride=(3, 2), padding="valid", dilation=(1, 1)),
    ]
    for k, h in enumerate(cases):
        cfg = dict(n_H=7, n_W=6, n_C_prev=2, n_C=3, m=2, f_H=2, f_W=3, seed=k, **h)
        A, W, b, rng = make_arrays(cfg)
        Z_n = naive_conv2d_forward(A, W, b, h["stride"], h["padding"], h["dilation"])
        dZ = rng.standard_normal(Z_n.shape)
        grads = naive_conv2d_backward(dZ, A, W, h["stride"], h["padding"], h["dilation"])
        for ours, ref in zip((Z_n,) + grads, torch_reference(A, W, b, dZ, cfg)):
            assert rel_err(ours, ref) <= RTOL


@pytest.mark.parametrize("path", ["im2col", "im2col_eq37", "taps"])
def test_larger_case_matches_torch(path):
    """A size where the strategies' blocking and garbage rows all matter."""
    cfg = dict(n_H=13, n_W=10, n_C_prev=5, n_C=6, m=4, f_H=3, f_W=4, seed=7,
               stride=(2, 1), padding=(2, 1), dilation=(1, 2))
    A, W, b, rng = make_arrays(cfg)
    with forced(path):
        Z, cache = conv2d_forward(A, W, b, **hyper(cfg))
        dZ = rng.standard_normal(Z.shape)
        got = (Z,) + conv2d_backward(dZ, cache)
    for ours, ref in zip(got, torch_reference(A, W, b, dZ, cfg)):
        assert rel_err(ours, ref) <= RTOL


# ---------------------------------------------------------------------------
# inputs are not modified, outputs are fresh memory
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(cfg=configs())
def test_inputs_not_mutated_and_outputs_do_not_share_memory(path, cfg):
    A, W, b, rng = make_arrays(cfg)
    with forced(path):
        Z, cache = conv2d_forward(A, W, b, **hyper(cfg))
        dZ = rng.standard_normal(Z.shape)
        # dZ in the memory order of Z: the case where backward can use it as is
        dZ_view = np.empty_like(Z)
        dZ_view[...] = dZ
        saved = [x.copy() for x in (A, W, b, dZ, dZ_view)]
        dA, dW, db = conv2d_backward(dZ, cache)
        dA1, dW1, db1 = conv2d_backward(dZ, cache)  # second use of the cache
        dA2, dW2, db2 = conv2d_backward(dZ_view, cache)  # and a third
    for before, after in zip(saved, (A, W, b, dZ, dZ_view)):
        assert np.array_equal(before, after)
    for x, y, z in zip((dA, dW, db), (dA1, dW1, db1), (dA2, dW2, db2)):
        assert np.array_equal(x, y)  # backward twice on one cache: same result
        assert rel_err(z, x) <= RTOL  # other memory order: same up to rounding
    inputs = [A, W, b, dZ, dZ_view]
    outputs = [Z, dA, dW, db, dA1, dW1, db1, dA2, dW2, db2]
    for i, out in enumerate(outputs):
        for inp in inputs:
            assert not np.shares_memory(out, inp)
        for other in outputs[i + 1:]:
            assert not np.shares_memory(out, other)
    assert Z.shape == dZ.shape and dA.shape == A.shape
    assert dW.shape == W.shape and db.shape == b.shape


@pytest.mark.parametrize("path", PATHS)
def test_later_inplace_changes_do_not_leak(path):
    cfg = dict(n_H=6, n_W=5, n_C_prev=2, n_C=3, m=2, f_H=3, f_W=2, seed=3,
               stride=(1, 2), padding=1, dilation=1)
    A, W, b, rng = make_arrays(cfg)
    dZ_shape = conv2d_forward(A, W, b, **hyper(cfg))[0].shape
    dZ = rng.standard_normal(dZ_shape)
    with forced(path):
        Z0, cache0 = conv2d_forward(A, W, b, **hyper(cfg))
        expected = conv2d_backward(dZ, cache0)
        Z, cache = conv2d_forward(A, W, b, **hyper(cfg))
        Z_copy = Z.copy()
        A += 1.0  # the caller changes its arrays after forward ...
        W *= -2.0
        b -= 5.0
        Z[...] = 0.0  # ... and the output
        got = conv2d_backward(dZ, cache)
        got[0][...] = 7.0  # changing one gradient changes nothing else
        assert np.array_equal(Z_copy, Z0)
    for x, y in zip(expected[1:], got[1:]):
        assert np.array_equal(x, y)


# ---------------------------------------------------------------------------
# complex inputs (complex-step differentiation)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
def test_complex_step_directional_derivatives(path):
    """Im J(v + i h e) / h is <dJ/dv, e> up to rounding (no conjugation anywhere)."""
    cfg = dict(n_H=6, n_W=7, n_C_prev=2, n_C=3, m=2, f_H=2, f_W=3, seed=5,
               stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    A, W, b, rng = make_arrays(cfg)
    with forced(path):
        Z, cache = conv2d_forward(A, W, b, **hyper(cfg))
        G = rng.standard_normal(Z.shape)
        dA, dW, db = conv2d_backward(G, cache)
        h = 1e-30
        for k, (grad, v) in enumerate(((dA, A), (dW, W), (db, b))):
            e = rng.standard_normal(v.shape)
            args = [A, W, b]
            args[k] = v + 1j * h * e
            Zc, cache_c = conv2d_forward(*args, **hyper(cfg))
            assert Zc.dtype == np.complex128
            directional = np.sum(G * Zc).imag / h
            assert abs(directional - np.sum(grad * e)) <= RTOL * np.sum(np.abs(grad * e))
            # and backward itself runs in complex arithmetic
            dA_c, dW_c, db_c = conv2d_backward(G + 0j, cache_c)
            assert dA_c.dtype == dW_c.dtype == db_c.dtype == np.complex128
            for real, cplx in zip((dA, dW, db), (dA_c, dW_c, db_c)):
                assert rel_err(cplx.real, real) <= RTOL


# ---------------------------------------------------------------------------
# invalid input: named errors, raised up front
# ---------------------------------------------------------------------------

def _arrays(H=5, W_=5, C=3, m=2, f=(3, 3), Co=4):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((H, W_, C, m)), rng.standard_normal(f + (C, Co)),
            rng.standard_normal(Co))


A0, W0, b0 = _arrays()

INVALID = [
    # (A_prev, W, b, kwargs, exception, message regex)
    (A0, W0, b0, dict(stride=0), ValueError, r"`stride` must be >= 1 per axis, got \(0, 0\)"),
    (A0, W0, b0, dict(stride=(0, 1)), ValueError, r"`stride` must be >= 1 per axis, got \(0, 1\)"),
    (A0, W0, b0, dict(stride=(1, 2, 3)), ValueError, r"`stride`.*pair.*\(1, 2, 3\)"),
    (A0, W0, b0, dict(dilation=(1, 0)), ValueError, r"`dilation` must be >= 1 per axis, got \(1, 0\)"),
    (A0, W0, b0, dict(dilation=-1), ValueError, r"`dilation` must be >= 1 per axis, got \(-1, -1\)"),
    (A0, W0, b0, dict(padding=-1), ValueError, r"`padding` must be >= 0 per axis, got \(-1, -1\)"),
    (A0, W0, b0, dict(padding=(0, -2)), ValueError, r"`padding` must be >= 0 per axis, got \(0, -2\)"),
    (A0, W0, b0, dict(padding="full"), ValueError, r"`padding` must be .*'same' or 'valid', got 'full'"),
    (A0, W0, b0, dict(padding="same", stride=2), ValueError, r"`padding`='same'.*`stride`=\(2, 2\)"),
    (A0, W0, b0, dict(padding="same", stride=(1, 3)), ValueError, r"`padding`='same'.*`stride`=\(1, 3\)"),
    (A0, _arrays(C=4)[1], b0, {}, ValueError,
     r"`A_prev.shape\[2\]` \(3\) must match `W.shape\[2\]` \(4\), the number of input channels"),
    (A0[..., 0], W0, b0, {}, ValueError, r"`A_prev` must be a 4-D array.*ndim=3"),
    (A0, W0[0], b0, {}, ValueError, r"`W` must be a 4-D array.*ndim=3"),
    (A0, W0, b0.reshape(1, 1, 1, 4), {}, ValueError, r"`b` must have shape \(n_C,\) = \(4,\).*\(1, 1, 1, 4\)"),
    (A0, W0, b0[:3], {}, ValueError, r"`b` must have shape \(n_C,\) = \(4,\).*\(3,\)"),
    (A0[:0], W0, b0, {}, ValueError, r"`A_prev` must have all dimensions >= 1"),
    (_arrays(H=2)[0], W0, b0, dict(padding=1, dilation=(2, 1)), ValueError,
     r"kernel with dilation spans 5 rows.*larger than the padded input's 4 rows "
     r"\(`A_prev.shape\[0\]`=2, `padding`=\(1,1\)"),
    (A0, W0, b0, dict(dilation=(1, 3)), ValueError,
     r"kernel with dilation spans 7 columns.*padded input's 5 columns \(`A_prev.shape\[1\]`=5"),
    (A0, W0, b0, dict(stride=1.5), TypeError, r"`stride` must be an int or a pair"),
    (A0, W0, b0, dict(stride=True), TypeError, r"`stride` must be an int or a pair"),
    (A0, W0, b0, dict(padding=(1, 0.5)), TypeError, r"`padding` must be an int or a pair"),
    (A0.astype(str), W0, b0, {}, TypeError, r"`A_prev` must have a real or complex numeric dtype"),
]


@pytest.mark.parametrize("A, W, b, kwargs, exc, match", INVALID)
def test_invalid_configuration_raises_named_error(A, W, b, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        conv2d_forward(A, W, b, **kwargs)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(stride=0), ValueError, r"`stride` must be >= 1"),
    (dict(padding="same", stride=2), ValueError, r"`padding`='same'"),
    (dict(dilation=0), ValueError, r"`dilation` must be >= 1"),
])
def test_layer_validates_at_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Conv2D(W0, b0, **kwargs)


def test_layer_rejects_bad_weights_at_construction():
    with pytest.raises(ValueError, match=r"`b` must have shape \(n_C,\) = \(4,\)"):
        Conv2D(W0, b0[:, None])
    with pytest.raises(ValueError, match=r"`W` must be a 4-D array"):
        Conv2D(W0[0], b0)


def test_backward_validates_dZ_and_cache():
    Z, cache = conv2d_forward(A0, W0, b0)
    with pytest.raises(ValueError, match=r"`dZ.shape` \(3, 3, 4\) must equal the forward output shape \(3, 3, 4, 2\)"):
        conv2d_backward(Z[..., 0], cache)
    with pytest.raises(TypeError, match=r"`cache` must be the cache returned by conv2d_forward"):
        conv2d_backward(Z, (A0, W0))
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        Conv2D(W0, b0).backward(Z)


# ---------------------------------------------------------------------------
# the Layer wrapper
# ---------------------------------------------------------------------------

def test_layer_protocol_reads_params_at_call_time():
    cfg = dict(n_H=6, n_W=5, n_C_prev=3, n_C=2, m=3, f_H=2, f_W=2, seed=11,
               stride=(1, 2), padding="valid", dilation=(2, 1))
    A, W, b, rng = make_arrays(cfg)
    layer = Conv2D(W, b, **hyper(cfg))
    assert layer.input_name == "A_prev"
    assert layer.params["W"] is W and layer.params["b"] is b
    assert layer.grads == {}
    Z = layer.forward(A)
    assert np.array_equal(Z, conv2d_forward(A, W, b, **hyper(cfg))[0])
    # the checker perturbs params in place: forward must see it
    layer.params["W"][0, 1, 2, 1] += 1e-3
    layer.params["b"][1] -= 0.5
    Z2 = layer.forward(A)
    assert np.array_equal(Z2, conv2d_forward(A, W, b, **hyper(cfg))[0])
    assert not np.array_equal(Z, Z2)
    G = rng.standard_normal(Z2.shape)
    grads_dict = layer.grads
    dA = layer.backward(G)
    dA_f, dW_f, db_f = conv2d_backward(G, conv2d_forward(A, W, b, **hyper(cfg))[1])
    assert layer.grads is grads_dict and set(layer.grads) == {"W", "b"}
    assert np.array_equal(dA, dA_f)
    assert np.array_equal(layer.grads["W"], dW_f) and layer.grads["W"].shape == W.shape
    assert np.array_equal(layer.grads["b"], db_f) and layer.grads["b"].shape == b.shape
