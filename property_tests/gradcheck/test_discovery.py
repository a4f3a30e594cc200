"""Users' layers at full speed with no hints: structure found by probing, the complex step
found by testing, three calls a group, and a default mode bounded by its cost."""

import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import gradcheck
from gradcheck import core
from gradcheck.numerical import grouped_difference
from reference_impls import ReLU


# ---------------------------------------------------------------- user-style layers
def nchw_conv(x, w, b):
    """A plain NCHW convolution, stride 1, padding 1, as a student writes it."""
    windows = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3),
                                  axis=(2, 3))
    return np.einsum("nchwij,fcij->nfhw", windows, w) + b[None, :, None, None], (x, w, b)


def nchw_conv_backward(dout, cache, flip=True):
    x, w, b = cache
    windows = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3),
                                  axis=(2, 3))
    dw = np.einsum("nchwij,nfhw->fcij", windows, dout)
    kernel = w[:, :, ::-1, ::-1] if flip else w
    padded = sliding_window_view(np.pad(dout, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3),
                                 axis=(2, 3))
    dx = np.einsum("nfhwij,fcij->nchw", padded, kernel)
    return dx, dw, dout.sum(axis=(0, 2, 3))


def _conv_args(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, 4, 8, 8)), rng.normal(size=(4, 4, 3, 3)), rng.normal(size=4)


def test_a_user_conv_gets_its_structure_found_and_every_entry_checked_cheaply():
    args = _conv_args()
    result = gradcheck.check_function(nchw_conv, nchw_conv_backward, *args, mode="full")
    assert result.passed, result.message()
    plans = {c.tensor: c.plan for c in result.checks}
    # Examples independent, channels mixed, a 3×3 footprint: 4·3·3 groups for x;
    # w's output channels independent: 4·3·3 groups; b: one group.
    assert "in 36 groups" in plans["x"] and "entries 1×4×3×3 apart" in plans["x"]
    assert "in 36 groups" in plans["w"] and "entries 1×4×3×3 apart" in plans["w"]
    assert "in 1 group " in plans["b"]
    # 6 self-check calls, 3 to test the complex step, 2 a group, 2 a trial of a
    # period (at most 13 for x, 5 for w, 1 for b); one at a time would take 660.
    assert 6 + 3 + 2 * 73 < result.forward_calls <= 6 + 3 + 2 * 73 + 2 * (13 + 5 + 1)
    # einsum is holomorphic: tested, and the complex step's exactness used.
    assert {c.oracle for c in result.checks} == {"complex_step"}
    assert max(result.max_rel_error.values()) < 1e-12


def test_a_user_conv_bug_is_still_found_and_localized_with_groups():
    unflipped = gradcheck.check_function(
        nchw_conv, lambda d, c: nchw_conv_backward(d, c, flip=False), *_conv_args(),
        mode="full")
    assert [c.tensor for c in unflipped.failures()] == ["x"]
    assert unflipped.checks[0].mismatched > 0.5 * unflipped.checks[0].size


def test_the_same_conv_by_central_differences_costs_three_calls_a_group():
    result = gradcheck.check_function(nchw_conv, nchw_conv_backward, *_conv_args(),
                                      mode="full", complex_step=False)
    assert result.passed
    # 6 self-check calls; groups 36 + 36 + 1 at 3 calls; the rest finds the periods
    # (3 calls a trial: at most 1 + 2 + 5 + 5 trials for x, 1 + 2 + 1 + 1 for w, 1 for b).
    assert 6 + 3 * 73 < result.forward_calls <= 6 + 3 * 73 + 3 * (13 + 5 + 1)


# ------------------------------------------------------------------- the complex step
def scale_by_abs(x, w):
    return w * np.abs(x), (x, w)


def scale_by_abs_backward(dout, cache, sign=True):
    x, w = cache
    return dout * w * (np.sign(x) if sign else 1.0), dout * np.abs(x)


def test_a_forward_using_abs_is_never_checked_by_complex_step():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    result = gradcheck.check_function(scale_by_abs, scale_by_abs_backward, x, w)
    assert result.passed, result.message()
    x_check, w_check = result.checks
    assert x_check.oracle == "finite_differences"
    assert "complex extension did not match" in x_check.plan
    assert w_check.oracle == "complex_step"          # abs does not touch w
    bad = gradcheck.check_function(scale_by_abs, lambda d, c: scale_by_abs_backward(
        d, c, sign=False), x, w)
    assert [c.tensor for c in bad.failures()] == ["x"]


class AbsOnOneColumn:
    """Declares itself complex-safe, but takes abs of its first column."""

    complex_safe = True

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        self.x = x
        y = np.tanh(x)
        y[:, 0] = np.abs(x[:, 0])
        return y

    def backward(self, dout):
        dx = dout * (1 - np.tanh(self.x) ** 2)
        dx[:, 0] = dout[:, 0] * np.sign(self.x[:, 0])
        return dx


def test_a_complex_step_failure_central_differences_do_not_see_is_not_a_verdict():
    x = np.random.default_rng(2).normal(size=(4, 6))
    result = gradcheck.check_layer(AbsOnOneColumn(), x)
    assert result.passed, result.message()
    assert result.checks[0].oracle == "finite_differences"
    assert "was not theirs" in result.checks[0].plan


def cast_forward(x):
    return np.tanh(x).astype(np.float64), x       # the cast drops an imaginary part


def test_a_forward_that_casts_to_float_is_checked_by_central_differences():
    x = np.random.default_rng(3).normal(size=(3, 3))
    result = gradcheck.check_function(cast_forward, lambda d, x: d * (1 - np.tanh(x) ** 2), x)
    assert result.passed and result.checks[0].oracle == "finite_differences"
    assert "refused a complex input (ComplexWarning)" in result.checks[0].plan


def affine_into_buffer(x, w, b):
    out = np.zeros((x.shape[0], w.shape[1])) + b    # real unless b is complex
    out += x @ w
    return out, (x, w)


def affine_into_buffer_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def test_a_tensor_the_forward_takes_complex_only_with_others_falls_back_alone():
    rng = np.random.default_rng(4)
    args = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=2)
    result = gradcheck.check_function(affine_into_buffer, affine_into_buffer_backward, *args)
    assert result.passed, result.message()
    oracles = {c.tensor: c.oracle for c in result.checks}
    assert oracles == {"x": "finite_differences", "w": "finite_differences",
                       "b": "complex_step"}
    assert "refused a complex 'x' alone" in result.checks[0].plan


def test_ties_are_left_to_central_differences():
    from property_tests.detection.mutants import UserMaxout

    x = np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [2.0, 2.0, 1.0], [2.0, 1.0, 1.0]])
    bad = gradcheck.check_layer(UserMaxout(every=True), x)
    assert not bad.passed
    assert "kink at the point itself" in bad.checks[0].plan


# --------------------------------------------------------------- grouping defects
@pytest.mark.parametrize("complex_", [False, True])
def test_an_odd_group_whose_one_output_moves_with_all_is_refused(complex_):
    x = np.array([0.1, 0.2, 0.3], dtype=np.complex128 if complex_ else np.float64)
    found = grouped_difference(lambda: np.array([x.sum()]), x, np.ones(1), np.zeros(3, int),
                               complex_=complex_)
    assert found.grad is None


def test_an_output_that_barely_moves_cannot_vouch_for_a_grouping():
    # One output, moved by all four entries by 1e-6 of its size: its ratio is too
    # noisy to name an owner, so it must not let the grouping through.
    x = np.array([0.3, -0.2, 0.5, 0.1])
    found = grouped_difference(lambda: np.array([1.0 + 1e-6 * np.sum(x ** 2)]), x,
                               np.ones(1), np.zeros(4, int))
    assert found.grad is None


def test_a_correct_relu_within_a_step_of_zero_blames_no_declared_grouping():
    x = np.random.default_rng(5).normal(size=(6, 40))
    x[:, ::7] = 3e-6 * np.sign(x[:, ::7])          # within one step (6e-6) of the kink
    with warnings.catch_warnings():
        warnings.simplefilter("error", gradcheck.GroupingWarning)
        result = gradcheck.check_layer(ReLU(), x, complex_step=False)
    assert result.passed, result.message()


def gates(x, w):
    """Four gates of H units each, multiplied in pairs: unit j reads columns j + kH."""
    z = x @ w
    H = w.shape[1] // 4
    return z[:, :H] * z[:, H:2 * H] + z[:, 2 * H:3 * H] * z[:, 3 * H:], (x, w)


def gates_backward(dout, cache):
    x, w = cache
    z = x @ w
    H = w.shape[1] // 4
    dz = np.concatenate([dout * z[:, H:2 * H], dout * z[:, :H], dout * z[:, 3 * H:],
                         dout * z[:, 2 * H:3 * H]], axis=1)
    return dz @ w.T, x.T @ dz


def test_gates_that_share_outputs_at_several_offsets_still_get_groups():
    rng = np.random.default_rng(6)
    x, w = rng.normal(size=(3, 5)), rng.normal(size=(5, 16))
    result = gradcheck.check_function(gates, gates_backward, x, w, mode="full")
    assert result.passed, result.message()
    # Columns j and j + 4, 8, 12 meet: periods 1-3 have such multiples, 5 has none.
    assert "entries 5×5 apart" in result.checks[1].plan


# ------------------------------------------------------------------ the budget
def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return dout * (x > 0)


def softmax_rows(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), x


def softmax_rows_backward(dout, x):
    s = softmax_rows(x)[0]
    return s * (dout - np.sum(dout * s, axis=1, keepdims=True))


def test_auto_mode_goes_along_a_direction_when_no_grouping_could_fit_its_budget(monkeypatch):
    monkeypatch.setattr(core, "AUTO_MAX_CALLS", 10)
    x = np.random.default_rng(7).normal(size=(300, 400))     # 120,000 entries
    result = gradcheck.check_function(relu_forward, relu_backward, x)
    (check,) = result.checks
    assert result.passed and check.method == "fast"
    # Groups hold at most 10,000 entries: 12 groups, 2 calls each at the least.
    assert "every entry would take at least ~24 forward calls" in check.plan
    assert result.forward_calls == 6 + 2             # no probe spent on the plan


def test_auto_mode_goes_along_a_direction_when_the_grouping_found_is_over_budget(monkeypatch):
    monkeypatch.setattr(core, "AUTO_MAX_CALLS", 100)
    x = np.random.default_rng(7).normal(size=(30, 400))
    result = gradcheck.check_function(softmax_rows, softmax_rows_backward, x)
    (check,) = result.checks
    assert result.passed and check.method == "fast"
    # Rows independent, a row's entries all mixed: 400 groups of 30, 2 calls each.
    assert "every entry would take ~800 forward calls" in check.plan


def test_auto_mode_bounds_the_time_too(monkeypatch):
    monkeypatch.setattr(core, "AUTO_MAX_SECONDS", 1e-9)
    x = np.random.default_rng(8).normal(size=(4, 5))
    result = gradcheck.check_function(relu_forward, relu_backward, x)
    assert result.checks[0].method == "fast"
    assert "over the budget of mode 'auto' (10,000 calls, 1e-09 s a tensor)" in \
        result.checks[0].plan


def test_kinks_are_left_out_of_both_sides_of_a_check_along_a_direction():
    # Over 100,000 entries (no full check to fall back to): the outputs a kink
    # bends leave G, and the backward is asked again. Smaller tensors with a kink
    # along the direction are checked entry by entry instead.
    x = np.random.default_rng(9).normal(size=(400, 300))
    x[::5, ::3] = 2e-6                                 # within a step of ReLU's kink
    result = gradcheck.check_function(relu_forward, relu_backward, x, mode="fast")
    assert result.passed, result.message()
    assert "that a kink bends within the step left out of G" in result.checks[0].plan
    small = gradcheck.check_function(relu_forward, relu_backward, x[:50, :40], mode="fast")
    assert small.passed and small.checks[0].method == "full"
    doubled = gradcheck.check_function(relu_forward, lambda d, x: 2 * relu_backward(d, x), x,
                                       mode="fast")
    assert not doubled.passed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_relu_input_at_0_with_a_small_upstream_gradient_is_no_false_alarm_in_fast_mode(
        seed):
    # Found by mutation testing (issue 13): one input of 1,000 exactly at the kink, its
    # upstream gradient 0.003 to 0.03. Its jump in slope along the direction is below
    # what refine's test tells from the rounding of 500 moving outputs, so the
    # midpoint of the two sides was taken for the derivative: 1e-6 off the correct
    # backward's 0, a false alarm. The output it bends is now seen as bent (a kink
    # within the step), and the tensor checked entry by entry.
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, 1000) * rng.choice([-1.0, 1.0], 1000)
    x[7] = 0.0
    for g in (0.003, 0.006, 0.01, 0.018, 0.03):
        dout = np.ones(1000)
        dout[7] = g
        result = gradcheck.check_function(relu_forward, relu_backward, x, mode="fast",
                                          dout=dout)
        assert result.passed, (g, result.message())


# ------------------------------------------------- found by review (each a regression)
def test_a_weak_term_sharing_an_output_with_a_strong_one_is_not_lost_in_a_group():
    x = np.random.default_rng(0).standard_normal(100)

    def forward(x):
        return 1e7 * x[:50] + x[50:], None

    def backward_drops_the_weak_term(dout, cache):
        return np.concatenate([1e7 * dout, 0 * dout])

    for options in ({}, {"mode": "full"}, {"complex_step": False}):
        assert not gradcheck.check_function(forward, backward_drops_the_weak_term, x,
                                            **options).passed, options


def _regularized_loss(W, X, y, with_sign=True, reg=1e-7):
    s = X @ W
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d = p.copy()
    d[np.arange(len(y)), y] -= 1
    grad = X.T @ d / len(y) + (reg * np.sign(W) if with_sign else 0.0)
    return -np.log(p[np.arange(len(y)), y]).mean() + reg * np.abs(W).sum(), grad


def test_a_small_abs_term_keeps_the_complex_step_away():
    rng = np.random.default_rng(9)
    X, y, W = rng.standard_normal((50, 20)), rng.integers(0, 10, 50), 0.3 * rng.standard_normal(
        (20, 10))
    assert gradcheck.check_value_and_grad(_regularized_loss, W, X, y, wrt="W").passed
    missing = gradcheck.check_value_and_grad(
        lambda W, X, y: _regularized_loss(W, X, y, with_sign=False), W, X, y, wrt="W")
    assert not missing.passed
    assert missing.checks[0].oracle == "finite_differences"


def test_a_complex_step_failure_on_a_0d_tensor_is_judged_again():
    rng = np.random.default_rng(16)
    X, W, y = rng.standard_normal((20, 8)), rng.standard_normal((8, 5)), rng.integers(0, 5, 20)

    def tempered(X, W, T, y, reg=1e-6):
        s = X @ W / T
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        ds = p.copy()
        ds[np.arange(20), y] -= 1
        ds /= 20
        return (-np.log(p[np.arange(20), y]).mean() + reg * np.abs(T),
                (ds @ W.T / T, X.T @ ds / T, np.array(-np.sum(ds * s) / T + reg * np.sign(T))))

    assert gradcheck.check_value_and_grad(tempered, X, W, np.array(1.7), y).passed


def test_an_input_all_at_kinks_is_never_passed_along_a_direction():
    def relu(x):
        return np.maximum(x, 0), x

    def five(dout, x):                 # valid values at 0 lie in [0, 1]
        return 5 * dout

    assert not gradcheck.check_function(relu, five, np.zeros((10, 10)), mode="fast").passed
    big = gradcheck.check_function(relu, five, np.zeros((400, 300)))
    assert not big.passed and big.checks[0].method == "fast"


def _max_pool_2x2(x):
    N, C, H, W = x.shape
    return x.reshape(N, C, H // 2, 2, W // 2, 2).max(axis=(3, 5)), x


def _max_pool_2x2_backward(dout, x):         # the first maximum of a window takes its gradient
    N, C, H, W = x.shape
    windows = x.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        N, C, H // 2, W // 2, 4)
    mask = np.zeros_like(windows)
    np.put_along_axis(mask, windows.argmax(-1)[..., None], 1.0, -1)
    return (mask * dout[..., None]).reshape(N, C, H // 2, W // 2, 2, 2).transpose(
        0, 1, 2, 4, 3, 5).reshape(N, C, H, W)


def test_ties_of_a_large_integer_image_are_no_false_alarm_along_a_direction():
    x = np.random.default_rng(14).integers(0, 8, size=(8, 4, 64, 64)).astype(float)
    result = gradcheck.check_function(_max_pool_2x2, _max_pool_2x2_backward, x)
    assert result.passed, result.message()
    assert result.checks[0].method == "fast"         # 131,072 entries of ties: over budget


def test_a_failure_over_budget_is_not_retried_one_entry_at_a_time(monkeypatch):
    monkeypatch.setattr(core, "AUTO_MAX_CALLS", 2000)
    x = 2 * np.random.default_rng(0).standard_normal(20_000)

    def backward(dout, x):
        g = dout * 1.5 * np.sign(x) * np.abs(x) ** 0.5
        g[7] *= 2
        return g

    result = gradcheck.check_function(lambda x: (np.abs(x) ** 1.5, x), backward, x)
    assert not result.passed and result.forward_calls < 2000
