"""Reference pooling (reference_impls/pooling.py) vs torch autograd and vs the
naive loops (property_tests/reference_impls/naive_pooling.py).

Layout: ours (n_H, n_W, n_C, m) <-> torch (m, C, H, W) via
``transpose(3, 2, 0, 1)`` (and back with ``transpose(2, 3, 1, 0)``), float64.

Tolerances:
* max pool forward: EXACT (it selects an input value, no arithmetic).
* max pool backward: 1e-12 relative (max|a-b| / max|b|).  Each input entry
  gets the sum of the upstream gradients of the windows it wins -- the same
  additions as torch, only possibly in another order when windows overlap,
  so differences are a few ulps.  A gradient sent to the wrong entry of a
  window (e.g. the wrong tie winner) gives an O(1) error, far above 1e-12.
  With integer-valued upstream gradients (the tie examples) every sum is
  exact in any order, so there we require EXACT equality.
* avg pool forward/backward: 1e-12 relative (same additions and divisions,
  in another order or grouping).

Every property is checked under each implementation strategy of the module
(``pooling._FORCE``: auto, "small", "stacked", "direct", "separable").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from property_tests.reference_impls.naive_pooling import (
    naive_avg_pool2d_backward,
    naive_avg_pool2d_forward,
    naive_max_pool2d_backward,
    naive_max_pool2d_forward,
)
from reference_impls import pooling
from reference_impls.pooling import (
    AvgPool2D,
    MaxPool2D,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

MODES = (None, "small", "stacked", "direct", "separable")
REL_TOL = 1e-12

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def to_torch(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(3, 2, 0, 1)))


def from_torch(t):
    return t.detach().numpy().transpose(2, 3, 1, 0)


def torch_pool(kind, A_prev, dA, f, s, p, count_include_pad=True):
    """torch forward output and input gradient (autograd), in our layout."""
    x = to_torch(A_prev).clone().requires_grad_(True)
    if kind == "max":
        y = F.max_pool2d(x, f, s, p)
    else:
        y = F.avg_pool2d(x, f, s, p, count_include_pad=count_include_pad)
    y.backward(to_torch(dA))
    return from_torch(y), from_torch(x.grad)


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.max(np.abs(b)) if b.size else 0.0
    diff = np.max(np.abs(a - b)) if b.size else 0.0
    if scale == 0.0:
        return float(diff)
    return float(diff / scale)


class force_mode:
    """Context manager selecting pooling's implementation strategy."""

    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self.saved = pooling._FORCE
        pooling._FORCE = self.mode

    def __exit__(self, *exc):
        pooling._FORCE = self.saved


def run_ours(kind, A_prev, dA, f, s, p, count_include_pad=True):
    """Forward + backward, checking along the way that inputs are untouched
    and outputs own their memory."""
    A_copy, dA_copy = A_prev.copy(), dA.copy()
    if kind == "max":
        A, cache = max_pool2d_forward(A_prev, window=f, stride=s, padding=p)
        dA_prev = max_pool2d_backward(dA, cache)
    else:
        A, cache = avg_pool2d_forward(A_prev, window=f, stride=s, padding=p,
                                      count_include_pad=count_include_pad)
        dA_prev = avg_pool2d_backward(dA, cache)
    assert np.array_equal(A_prev, A_copy, equal_nan=True)
    assert np.array_equal(dA, dA_copy, equal_nan=True)
    for out in (A, dA_prev):
        assert not np.may_share_memory(out, A_prev)
        assert not np.may_share_memory(out, dA)
    assert A.dtype == A_prev.dtype and dA_prev.dtype == A_prev.dtype
    assert dA_prev.shape == A_prev.shape
    return A, dA_prev


# ---------------------------------------------------------------------------
# hypothesis strategies: configuration first, then the arrays
# ---------------------------------------------------------------------------

@st.composite
def configs(draw):
    f = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))  # s < f: overlapping
    p = (draw(st.integers(0, f[0] // 2)), draw(st.integers(0, f[1] // 2)))
    shape = (draw(st.integers(1, 7)), draw(st.integers(1, 7)),
             draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return shape, f, s, p


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_shape(shape, f, s, p):
    f, s, p = pair(f), pair(s), pair(p)
    return ((shape[0] + 2 * p[0] - f[0]) // s[0] + 1,
            (shape[1] + 2 * p[1] - f[1]) // s[1] + 1) + shape[2:]


def make_arrays(kind, seed, shape, oshape):
    """``normal``: random normal input and upstream gradient.  ``ties``: input
    with values in {0, 1, 2} (exact ties in most windows) and integer
    upstream gradients.  ``constant``: all-equal input (every window is one
    big tie), integer upstream gradients."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(shape), rng.standard_normal(oshape)
    if kind == "ties":
        A = rng.integers(0, 3, size=shape).astype(np.float64)
    else:
        A = np.full(shape, float(rng.integers(-2, 3)))
    return A, rng.integers(-5, 6, size=oshape).astype(np.float64)


data_kinds = st.sampled_from(["ties", "normal", "constant"])
seeds = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------

@SETTINGS
@given(cfg=configs(), data_kind=data_kinds, seed=seeds)
def test_max_pool_matches_torch_and_naive(cfg, data_kind, seed):
    shape, f, s, p = cfg
    assume(shape[0] + 2 * p[0] >= f[0] and shape[1] + 2 * p[1] >= f[1])
    A_prev, dA = make_arrays(data_kind, seed, shape, out_shape(shape, f, s, p))
    A_t, g_t = torch_pool("max", A_prev, dA, f, s, p)
    A_n = naive_max_pool2d_forward(A_prev, f, s, p)
    g_n = naive_max_pool2d_backward(A_prev, dA, f, s, p)
    # the naive loops are a third opinion: they must agree with torch too
    assert np.array_equal(A_n, A_t)
    assert rel_err(g_n, g_t) <= REL_TOL
    for mode in MODES:
        with force_mode(mode):
            A, g = run_ours("max", A_prev, dA, f, s, p)
        assert np.array_equal(A, A_t), mode          # selection: exact
        assert np.array_equal(A, A_n), mode
        assert rel_err(g, g_t) <= REL_TOL, mode
        assert rel_err(g, g_n) <= REL_TOL, mode
        if data_kind != "normal":                     # integer sums: exact
            assert np.array_equal(g, g_t), mode
            assert np.array_equal(g, g_n), mode


@SETTINGS
@given(cfg=configs(), data_kind=data_kinds, seed=seeds, count_include_pad=st.booleans())
def test_avg_pool_matches_torch_and_naive(cfg, data_kind, seed, count_include_pad):
    shape, f, s, p = cfg
    assume(shape[0] + 2 * p[0] >= f[0] and shape[1] + 2 * p[1] >= f[1])
    A_prev, dA = make_arrays(data_kind, seed, shape, out_shape(shape, f, s, p))
    A_t, g_t = torch_pool("avg", A_prev, dA, f, s, p, count_include_pad)
    A_n = naive_avg_pool2d_forward(A_prev, f, s, p, count_include_pad)
    g_n = naive_avg_pool2d_backward(A_prev.shape, dA, f, s, p, count_include_pad)
    assert rel_err(A_n, A_t) <= REL_TOL
    assert rel_err(g_n, g_t) <= REL_TOL
    for mode in MODES:
        with force_mode(mode):
            A, g = run_ours("avg", A_prev, dA, f, s, p, count_include_pad)
        assert rel_err(A, A_t) <= REL_TOL, mode
        assert rel_err(g, g_t) <= REL_TOL, mode
        assert rel_err(A, A_n) <= REL_TOL, mode
        assert rel_err(g, g_n) <= REL_TOL, mode


# ---------------------------------------------------------------------------
# named tests
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_overlapping_windows_add_up_max(mode):
    # 3x3 input, single maximum at the centre; window 2, stride 1: the centre
    # wins all four windows, so it receives the sum of all four gradients.
    A_prev = np.zeros((3, 3, 1, 1))
    A_prev[1, 1] = 5.0
    dA = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    with force_mode(mode):
        A, cache = max_pool2d_forward(A_prev, window=2, stride=1)
        g = max_pool2d_backward(dA, cache)
    assert np.array_equal(A, np.full((2, 2, 1, 1), 5.0))
    expected = np.zeros((3, 3, 1, 1))
    expected[1, 1] = 1.0 + 2.0 + 3.0 + 4.0
    assert np.array_equal(g, expected)
    assert np.array_equal(g, torch_pool("max", A_prev, dA, 2, 1, 0)[1])


@pytest.mark.parametrize("mode", MODES)
def test_overlapping_windows_add_up_avg(mode):
    # avg, window 2, stride 1 on 3x3: the centre lies in all four windows and
    # gets a quarter of each gradient; corners only one quarter.
    A_prev = np.arange(9.0).reshape(3, 3, 1, 1)
    dA = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    with force_mode(mode):
        _, cache = avg_pool2d_forward(A_prev, window=2, stride=1)
        g = avg_pool2d_backward(dA, cache)
    assert g[1, 1, 0, 0] == pytest.approx((1 + 2 + 3 + 4) / 4, rel=1e-15)
    assert g[0, 0, 0, 0] == pytest.approx(1 / 4, rel=1e-15)
    assert g[0, 1, 0, 0] == pytest.approx((1 + 2) / 4, rel=1e-15)
    assert rel_err(g, torch_pool("avg", A_prev, dA, 2, 1, 0)[1]) <= REL_TOL


@pytest.mark.parametrize("mode", MODES)
def test_tie_goes_to_first_maximum_in_row_major_order(mode):
    # constant window: the gradient goes to the window's top-left entry
    A_prev = np.full((2, 2, 1, 1), 7.0)
    dA = np.full((1, 1, 1, 1), 3.0)
    with force_mode(mode):
        _, cache = max_pool2d_forward(A_prev, window=2)
        g = max_pool2d_backward(dA, cache)
    assert g[:, :, 0, 0].tolist() == [[3.0, 0.0], [0.0, 0.0]]
    # [[0, 1], [1, 0]]: row-major picks (0, 1), column-major would pick (1, 0)
    A_prev = np.array([[0.0, 1.0], [1.0, 0.0]]).reshape(2, 2, 1, 1)
    with force_mode(mode):
        _, cache = max_pool2d_forward(A_prev, window=2)
        g = max_pool2d_backward(dA, cache)
    assert g[:, :, 0, 0].tolist() == [[0.0, 3.0], [0.0, 0.0]]
    assert np.array_equal(g, torch_pool("max", A_prev, dA, 2, 2, 0)[1])
    # constant 3x3, overlapping 2x2 windows (stride 1): each window's own
    # top-left entry wins
    A_prev = np.zeros((3, 3, 1, 1))
    dA = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    with force_mode(mode):
        _, cache = max_pool2d_forward(A_prev, window=2, stride=1)
        g = max_pool2d_backward(dA, cache)
    assert g[:, :, 0, 0].tolist() == [[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]
    assert np.array_equal(g, torch_pool("max", A_prev, dA, 2, 1, 0)[1])


@pytest.mark.parametrize("mode", MODES)
def test_max_pool_nan_and_inf_follow_torch(mode):
    rng = np.random.default_rng(7)
    A_prev = rng.integers(0, 3, size=(6, 7, 2, 3)).astype(np.float64)
    A_prev[rng.random(A_prev.shape) < 0.15] = np.nan
    A_prev[rng.random(A_prev.shape) < 0.15] = -np.inf
    A_prev[0:3, 0:3, 0, 0] = -np.inf          # an all -inf corner window (padded)
    for f, s, p in [(2, 2, 0), (3, 1, 1), (3, 2, 1), ((2, 3), (1, 2), (1, 1))]:
        oshape = out_shape(A_prev.shape, f, s, p)
        dA = rng.integers(-5, 6, size=oshape).astype(np.float64)
        A_t, g_t = torch_pool("max", A_prev, dA, f, s, p)
        assert np.array_equal(naive_max_pool2d_backward(A_prev, dA, f, s, p), g_t)
        with force_mode(mode):
            A, g = run_ours("max", A_prev, dA, f, s, p)
        assert np.array_equal(A, A_t, equal_nan=True), (f, s, p)
        assert np.array_equal(g, g_t), (f, s, p)


@pytest.mark.parametrize("mode", MODES)
def test_upstream_inf_does_not_leak(mode):
    # an infinite upstream gradient must reach its winner only (no inf * 0)
    A_prev = np.arange(16.0).reshape(4, 4, 1, 1)
    dA = np.array([[np.inf, 1.0], [2.0, -np.inf]]).reshape(2, 2, 1, 1)
    for s in (2, 1):
        d = dA if s == 2 else np.full((3, 3, 1, 1), 1.0)
        if s == 1:
            d[0, 0] = np.inf
        with force_mode(mode):
            _, g = run_ours("max", A_prev, d, 2, s, 0)
        assert np.array_equal(g, torch_pool("max", A_prev, d, 2, s, 0)[1])


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("cfg", [
    ((20, 20, 16, 8), 3, 1, 1),      # auto: mid-size strategies
    ((24, 24, 32, 16), 3, 1, 1),     # auto: large strategies (direct / separable)
    ((24, 24, 32, 16), 2, 2, 0),
    ((24, 25, 32, 16), (3, 2), (2, 1), (1, 0)),
])
def test_larger_inputs_auto_strategy(kind, cfg):
    shape, f, s, p = cfg
    rng = np.random.default_rng(3)
    A_prev = rng.integers(0, 4, size=shape).astype(np.float64)   # many ties
    dA = rng.standard_normal(out_shape(shape, f, s, p))
    A_t, g_t = torch_pool(kind, A_prev, dA, f, s, p)
    A, g = run_ours(kind, A_prev, dA, f, s, p)
    if kind == "max":
        assert np.array_equal(A, A_t)
    else:
        assert rel_err(A, A_t) <= REL_TOL
    assert rel_err(g, g_t) <= REL_TOL


@pytest.mark.parametrize("mode", MODES)
def test_avg_complex_step(mode):
    # complex-step: avg pooling is linear, so the imaginary part of
    # f(x + i h v) / h equals f(v) -- and the real part equals f(x).
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 6, 2, 3))
    v = rng.standard_normal(x.shape)
    h = 1e-20
    for cip in (True, False):
        with force_mode(mode):
            A_c, cache = avg_pool2d_forward(x + 1j * h * v, window=3, stride=2, padding=1,
                                            count_include_pad=cip)
            A_x, _ = avg_pool2d_forward(x, window=3, stride=2, padding=1, count_include_pad=cip)
            A_v, _ = avg_pool2d_forward(v, window=3, stride=2, padding=1, count_include_pad=cip)
            g_c = avg_pool2d_backward(A_c, cache)
        assert A_c.dtype == np.complex128 and g_c.dtype == np.complex128
        assert rel_err(A_c.real, A_x) <= REL_TOL
        assert rel_err(A_c.imag / h, A_v) <= 1e-10
        assert g_c.shape == x.shape


@pytest.mark.parametrize("mode", MODES)
def test_max_backward_is_linear_in_complex_upstream(mode):
    rng = np.random.default_rng(12)
    x = rng.integers(0, 3, size=(6, 5, 2, 2)).astype(np.float64)
    for f, s, p in [(2, 2, 0), (3, 1, 1)]:
        with force_mode(mode):
            A, cache = max_pool2d_forward(x, window=f, stride=s, padding=p)
            u, v = rng.standard_normal(A.shape), rng.standard_normal(A.shape)
            g = max_pool2d_backward(u + 1j * v, cache)
            g_u, g_v = max_pool2d_backward(u, cache), max_pool2d_backward(v, cache)
        assert g.dtype == np.complex128
        assert rel_err(g.real, g_u) <= REL_TOL and rel_err(g.imag, g_v) <= REL_TOL


@pytest.mark.parametrize("mode", MODES)
def test_max_pool_complex_picks_winners_by_real_part(mode):
    # Complex input (complex-step differentiation): each window's winner is
    # chosen on the REAL part by the real rules (first maximum in row-major
    # order, padding never wins) and the output is the winner's complex value.
    # Real parts in {-5, -4, -3}: ties in most windows, and all negative, so a
    # padding read as 0 would win; the random imaginary parts would break the
    # ties differently under numpy's lexicographic ordering of complex numbers.
    rng = np.random.default_rng(13)
    x = rng.integers(-5, -2, size=(7, 6, 2, 3)).astype(np.float64)
    v = rng.standard_normal(x.shape)
    for f, s, p in [(2, 2, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 1)), (3, 2, 0)]:
        with force_mode(mode):
            A, cache = max_pool2d_forward(x + 1j * v, window=f, stride=s, padding=p)
            A_r, cache_r = max_pool2d_forward(x, window=f, stride=s, padding=p)
            G = rng.standard_normal(A.shape)
            g, g_r = max_pool2d_backward(G, cache), max_pool2d_backward(G, cache_r)
        # torch's winners on the real part, as flat H*W indices per (example, channel)
        y, ind = F.max_pool2d(to_torch(x), f, s, p, return_indices=True)
        v_win = to_torch(v).flatten(2).gather(2, ind.flatten(2)).reshape(ind.shape)
        assert A.dtype == np.complex128 and g.dtype == np.complex128
        assert np.array_equal(A.real, from_torch(y)) and np.array_equal(A.real, A_r)
        assert np.array_equal(A.imag, from_torch(v_win))
        assert np.array_equal(cache["argmax"], cache_r["argmax"])
        assert np.array_equal(g, g_r)


def test_dtype_follows_input_and_noncontiguous_input():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 8, 9, 4)).astype(np.float32)
    A_prev = base.transpose(1, 2, 0, 3)[:, ::2]   # non-contiguous (8, 5, 3, 4) view
    for kind in ("max", "avg"):
        A, g = run_ours(kind, A_prev, np.ones(out_shape(A_prev.shape, (2, 2), (1, 1), (1, 1)),
                                              dtype=np.float32), 2, 1, 1)
        assert A.dtype == np.float32 and g.dtype == np.float32


def test_layers_match_functions():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((7, 6, 3, 2))
    layer = MaxPool2D((3, 2), stride=(2, 1), padding=(1, 1))
    assert layer.params == {} and layer.grads == {} and layer.input_name == "A_prev"
    A = layer.forward(x)
    dout = rng.standard_normal(A.shape)
    A_f, cache = max_pool2d_forward(x, window=(3, 2), stride=(2, 1), padding=(1, 1))
    assert np.array_equal(A, A_f)
    assert np.array_equal(layer.backward(dout), max_pool2d_backward(dout, cache))

    layer = AvgPool2D(3, stride=1, padding=1, count_include_pad=False)
    assert layer.params == {} and layer.grads == {} and layer.input_name == "A_prev"
    A = layer.forward(x)
    dout = rng.standard_normal(A.shape)
    A_t, g_t = torch_pool("avg", x, dout, 3, 1, 1, count_include_pad=False)
    assert rel_err(A, A_t) <= REL_TOL
    assert rel_err(layer.backward(dout), g_t) <= REL_TOL
    with pytest.raises(RuntimeError, match="before forward"):
        AvgPool2D(2).backward(dout)


# ---------------------------------------------------------------------------
# invalid configurations
# ---------------------------------------------------------------------------

X4 = np.zeros((4, 4, 2, 3))


@pytest.mark.parametrize("forward", [max_pool2d_forward, avg_pool2d_forward])
@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(window=0), ValueError, r"`window` must be >= 1 per axis, got \(0, 0\)"),
    (dict(window=(2, -1)), ValueError, r"`window`.*\(2, -1\)"),
    (dict(window=2, stride=(0, 2)), ValueError, r"`stride` must be >= 1 per axis, got \(0, 2\)"),
    (dict(window=2, stride=-1), ValueError, r"`stride`"),
    (dict(window=3, padding=(2, 0)), ValueError,
     r"`padding` \(2, 0\) must be >= 0 and at most half the window \(3, 3\)"),
    (dict(window=2, padding=-1), ValueError, r"`padding` \(-1, -1\)"),
    (dict(window=1, padding=1), ValueError, r"`padding`"),
    (dict(window=5, padding=0), ValueError,
     r"`window` \(5, 5\) is larger than the padded input \(4, 4\)"),
    (dict(window=2.0), TypeError, r"`window`"),
    (dict(window=True), TypeError, r"`window`"),
    (dict(window=(2, 2, 2)), TypeError, r"`window`"),
    (dict(window=2, stride="1"), TypeError, r"`stride`"),
    (dict(window=2, padding=(0.5, 0)), TypeError, r"`padding`"),
])
def test_invalid_configuration_raises(forward, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        forward(X4, **kwargs)


@pytest.mark.parametrize("forward", [max_pool2d_forward, avg_pool2d_forward])
def test_invalid_inputs_raise(forward):
    # padding 1 is valid for window 5, but 5 > 2 + 2 * 1
    with pytest.raises(ValueError, match=r"`window` \(5, 5\) is larger than the padded input "
                                         r"\(4, 4\) \(`A_prev.shape\[:2\]`=\(2, 2\), "
                                         r"`padding`=\(1, 1\)\)"):
        forward(np.zeros((2, 2, 1, 1)), window=5, padding=1)
    with pytest.raises(ValueError, match=r"`A_prev` must have n_H >= 1 and n_W >= 1"):
        forward(np.zeros((0, 4, 1, 1)), window=2, padding=1)
    with pytest.raises(ValueError, match=r"`A_prev` must be 4-D.*ndim=3"):
        forward(np.zeros((4, 4, 2)), window=2)
    with pytest.raises(TypeError, match=r"`A_prev`.*dtype"):
        forward(np.zeros((4, 4, 2, 1), dtype=int), window=2)
    A, cache = forward(X4, window=2)
    backward = max_pool2d_backward if forward is max_pool2d_forward else avg_pool2d_backward
    with pytest.raises(ValueError, match=r"`dA` has shape \(1, 2, 2, 3\), expected \(2, 2, 2, 3\)"):
        backward(np.zeros((1, 2, 2, 3)), cache)
    with pytest.raises(TypeError, match=r"`cache`"):
        backward(A, {"kind": "other"})


def test_invalid_count_include_pad():
    with pytest.raises(TypeError, match=r"`count_include_pad`"):
        avg_pool2d_forward(X4, window=2, count_include_pad="yes")
    with pytest.raises(TypeError, match=r"`count_include_pad`"):
        AvgPool2D(2, count_include_pad=None)


def test_layer_constructors_validate():
    with pytest.raises(ValueError, match=r"`stride` must be >= 1 per axis, got \(0, 2\)"):
        MaxPool2D(2, stride=(0, 2))
    with pytest.raises(ValueError, match=r"`padding`"):
        AvgPool2D(2, padding=2)


@pytest.mark.parametrize("mode", MODES)
def test_empty_batch_or_channels(mode):
    # torch accepts an empty batch; zero channels / examples give empty outputs
    for shape in [(5, 5, 2, 0), (5, 5, 0, 3)]:
        A_prev = np.zeros(shape)
        for kind in ("max", "avg"):
            with force_mode(mode):
                A, g = run_ours(kind, A_prev, np.zeros(out_shape(shape, 3, 2, 1)), 3, 2, 1)
            assert A.shape == out_shape(shape, 3, 2, 1) and g.shape == shape


def test_inputs_not_mutated_and_fresh_outputs():
    # (also checked inside every property example via run_ours)
    rng = np.random.default_rng(13)
    A_prev = rng.standard_normal((6, 6, 2, 2))
    A_prev.setflags(write=False)          # any write attempt would raise
    for mode in MODES:
        with force_mode(mode):
            for kind in ("max", "avg"):
                dA = np.ones(out_shape(A_prev.shape, (3, 3), (1, 1), (1, 1)))
                dA.setflags(write=False)
                run_ours(kind, A_prev, dA, 3, 1, 1)
