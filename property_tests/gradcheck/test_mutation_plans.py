"""Plans, per-tensor verdicts and structural diagnoses at their edges (issue 13).

What a user reads of a check, held to its exact text or value on inputs where it can be
derived by hand: the plan sentence of each method; a gradient of the wrong shape (its
error, its count, its note); a relative error exactly at the tolerance (inclusive); the
absolute error; a wrong entry at a kink; the sizes and batch axes a diagnosis names; the
structural diagnoses (another tensor transposed or rotated, an output dropped, the
Jacobian's diagonal), which must be given where they hold, at any scale, and never to a
gradient they do not describe.
"""

import math
import time

import numpy as np
import pytest

import gradcheck

# The texts a user reads, as gradcheck.core writes them.
DIAGONAL = "analytic ≈ only the diagonal of the Jacobian"
SAME_WITH = "analytic ≈ the gradient of the same"
WITHOUT = "analytic ≈ the gradient without output"


def _rng(seed=0):
    return np.random.default_rng(seed)


def _notes(check):
    return " | ".join(check.diagnosis)


# ----------------------------------------------------------- a relative error at the tolerance
class Doubling:
    """y = 2 x, complex-safe: its complex step is exact (Im 2(x + ih) / h = 2 bit for bit)."""

    complex_safe = True
    params, grads = {}, {}

    def __init__(self, factor=1.0, flat=False):
        self.factor, self.flat = factor, flat

    def forward(self, x):
        self.shape = x.shape
        return 2 * x

    def backward(self, dout):
        dx = 2 * self.factor * dout
        return dx.reshape(-1) if self.flat else dx


def _doubling(factor, flat=False, tolerance=0.25):
    # dout = 1: the reference is 2 exactly and the analytic 2·factor; with factor 0.75 the
    # relative error is |1.5 - 2| / 2 = 0.25 exactly, every entry (the floor, RHO · 2 = 0.02
    # and the rounding noise over 0.25, ~1e-13, stays below max(|a|, |r|) = 2).
    x = np.array([[0.5, -1.25], [2.0, 0.75]])
    return gradcheck.check_layer(Doubling(factor, flat), x, dout=np.ones((2, 2)),
                                 fd_tolerance=tolerance, coloring=False).checks[0]


def test_an_error_exactly_at_the_tolerance_passes_and_counts_no_mismatch():
    check = _doubling(0.75)
    assert check.method == "complex_step"
    assert check.max_rel_error == 0.25 == check.tolerance
    assert check.passed and check.mismatched == 0
    assert check.max_abs_error == 0.5          # |1.5 - 2|, exact in binary
    assert check.analytic == 1.5 and check.reference == 2.0


def test_the_absolute_error_is_the_largest_difference_even_below_one():
    check = _doubling(0.9375, tolerance=None)   # 1.875 against 2: 1/8 apart, exact in binary
    assert not check.passed
    assert check.max_abs_error == 0.125
    assert check.max_rel_error == 0.0625       # 0.125 / 2
    assert check.mismatched == 4


# ------------------------------------------------------------------ a gradient of the wrong shape
def test_a_reshaped_gradient_at_the_tolerance_is_said_to_match_after_the_reshape():
    check = _doubling(0.75, flat=True)
    assert check.shape_error == ("the gradient has shape (4,), the tensor (2, 2): a gradient "
                                 "must have its tensor's shape; after a reshape the values match "
                                 "(relative error 0.25)")
    assert check.diagnosis[0] == check.shape_error
    assert not check.passed


def test_a_reshaped_wrong_gradient_is_said_to_differ_even_after_the_reshape():
    check = _doubling(0.5, flat=True)            # 1 against 2: relative error 0.5 > 0.25
    assert check.shape_error == ("the gradient has shape (4,), the tensor (2, 2): a gradient "
                                 "must have its tensor's shape; the values differ even after a "
                                 "reshape (relative error 0.5)")


def _sum_rows(x):
    return x[:, :2].sum(axis=1), None     # columns 2 and 3 unused: their gradient is 0


def test_a_gradient_no_reshape_can_match_is_wrong_in_every_entry():
    def keeps_a_column(dout, cache):
        return np.ones((3, 1)) * dout[:, None]      # (3, 1) for a (3, 4) tensor

    x = _rng().normal(size=(3, 4))
    check = gradcheck.check_function(_sum_rows, keeps_a_column, x).checks[0]
    note = ("the gradient has shape (3, 1) (3 entries), the tensor (3, 4) (12): no reshape can "
            "match them (a sum over the wrong axis, or keepdims?)")
    # Compared as zeros, the unused columns would match: every entry is counted wrong anyway.
    assert check.shape_error == note and check.diagnosis == (note,)
    assert check.max_rel_error == math.inf
    assert check.mismatched == 12 == check.size
    assert math.isnan(check.analytic)
    assert not check.passed


# ------------------------------------------------------------------------ a wrong entry at a kink
def test_a_wrong_entry_at_a_kink_is_named_as_outside_its_one_sided_derivatives():
    def relu(x):
        return np.maximum(x, 0.0), x

    def relu_backward(dout, x):
        dx = dout * (x > 0)
        dx[x == 0] = 2 * dout[x == 0]       # at 0 the slopes are 0 and 1: 2 is neither
        return dx

    x = np.array([0.0, 0.5, -0.7, 1.2, 0.3])
    check = gradcheck.check_function(relu, relu_backward, x, complex_step=False).checks[0]
    assert not check.passed and check.mismatched == 1 and check.worst_index == (0,)
    assert check.diagnosis[-1] == (
        "1 of the wrong entries sit at kinks (one-sided derivatives disagree) with the analytic "
        "value outside them and belong to no tie the checker could confirm (moved together, "
        "their set was not smooth, or there were more than 64): wrong there, or beyond central "
        "differences (leave them out with fd_exclude and compare with torch, or make the layer "
        "complex-safe)")


# ---------------------------------------------------------- the sizes a constant factor may be
def _repeat(x):
    return np.repeat(x[:, None], 5, axis=1), None       # (3,) -> (3, 5): 5 is no input's size


def _mean_for_sum(dout, cache):
    return dout.mean(axis=1)                 # the gradient of a repeat is a sum: 1/5 of it


def _repeat_twice(x):
    return np.repeat(x[:, None], 5, axis=1), np.repeat(x[:, None], 7, axis=1), None


def _means_for_sums(dout0, dout1, cache):
    return dout0.mean(axis=1) + dout1.sum(axis=1) / 5


def test_a_factor_of_one_over_an_output_size_names_that_output_axis():
    x = _rng().normal(size=3)
    check = gradcheck.check_function(_repeat, _mean_for_sum, x).checks[0]
    assert check.diagnosis[0] == ("a constant factor: analytic ≈ 0.2 × numeric = 1/5, one over "
                                  "output.shape[1] (a mean taken twice, or an extra 1/m?)")


def test_with_two_outputs_each_output_is_named_by_its_position():
    x = _rng().normal(size=3)
    # dx = mean(dout0) + sum(dout1)/5 = (sum(dout0) + sum(dout1)) / 5: the whole gradient / 5
    check = gradcheck.check_function(_repeat_twice, _means_for_sums, x).checks[0]
    assert check.diagnosis[0] == ("a constant factor: analytic ≈ 0.2 × numeric = 1/5, one over "
                                  "output0.shape[1] (a mean taken twice, or an extra 1/m?)")


# ------------------------------------------------------------ the axes that may hold a batch
def _tanh(x):
    y = np.tanh(x)
    return y, y


def _tanh_wrong_at(where):
    def backward(dout, y):
        dx = dout * (1 - y ** 2)
        dx[where] *= 3.0
        return dx
    return backward


def _sum_axis(axis):
    def forward(x):
        return x.sum(axis=axis), x.shape

    def backward(dout, shape):
        dx = np.broadcast_to(np.expand_dims(dout, axis), shape).copy()
        dx[:, 1] *= 3.0                      # one column wrong
        return dx
    return forward, backward


@pytest.mark.parametrize("shape, where, axis, n, batch", [
    ((2, 5), (1,), 0, 2, True),              # the first axis of an elementwise map, 2 long
    ((3, 5), (slice(None), 3), 1, 5, True),  # its last axis
    ((2, 3, 4), (slice(None), 1), 1, 3, False),   # a middle axis is no batch axis
])
def test_errors_in_one_slice_of_an_axis_every_output_shares_name_the_batch(shape, where, axis,
                                                                           n, batch):
    x = _rng().normal(size=shape)
    check = gradcheck.check_function(_tanh, _tanh_wrong_at(where), x).checks[0]
    index = where[axis]
    what = "examples of the batch?" if batch else "examples, channels or units?"
    assert f"errors only at index {index} of axis {axis} (1 of {n}: {what})" in check.diagnosis


@pytest.mark.parametrize("axis, batch", [(0, True), (1, False)])
def test_an_axis_is_a_batch_axis_only_where_every_output_has_its_length(axis, batch):
    # x (3, 5) summed over axis 0 gives (5,): its columns line up with the output's entries.
    # Summed over axis 1 it gives (3,): its 5 columns are no output's axis.
    forward, backward = _sum_axis(axis)
    check = gradcheck.check_function(forward, backward, _rng().normal(size=(3, 5))).checks[0]
    what = "examples of the batch?" if batch else "examples, channels or units?"
    assert f"errors only at index 1 of axis 1 (1 of 5: {what})" in check.diagnosis


# ------------------------------------------------------------------------- the plan sentence
def _sine(x):
    return np.sin(x), x


def _sine_backward(dout, x):
    return dout * np.cos(x)


def _plan(x, **options):
    return gradcheck.check_function(_sine, _sine_backward, x, **options).checks[0]


def _x(n):
    return np.linspace(-1.0, 1.2, n)


@pytest.mark.parametrize("n, coloring, complex_step, plan", [
    # Central differences: 3 calls a group, 2 an entry. 2 groups of 4 entries: 6 < 8.
    (4, [0, 1, 0, 1], False, "every entry by central differences, in 2 groups of entries that "
                             "move disjoint outputs (coloring['x']); 6 forward calls"),
    # 2 groups of 3 entries cost 6 calls, as the 3 entries do one by one: no grouping.
    (3, [0, 1, 0], False, "every entry by central differences, one entry at a time; "
                          "6 forward calls"),
    # The complex step: 2 calls a group, 1 an entry. 2 groups of 3 entries: 4 > 3.
    (3, [0, 1, 0], True, "every entry by complex step, one entry at a time; 3 forward calls"),
    (4, [0, 1, 0, 1], True, "every entry by complex step, one entry at a time; 4 forward calls"),
    (5, [0, 1, 0, 1, 0], True, "every entry by complex step, in 2 groups of entries that move "
                               "disjoint outputs (coloring['x']); 4 forward calls"),
])
def test_a_given_grouping_is_used_only_where_it_saves_calls(n, coloring, complex_step, plan):
    check = _plan(_x(n), coloring={"x": np.array(coloring)}, complex_step=complex_step)
    assert check.passed
    assert check.plan == plan


@pytest.mark.parametrize("n, groupable", [(2, False), (3, True)])
def test_groups_are_sought_for_a_tensor_of_more_than_two_entries(n, groupable):
    # One group of every entry (sin is elementwise) costs 3 calls, against 2 an entry.
    how = ("in 1 group of entries that move disjoint outputs (found by probing the function: "
           "entries 1 apart along its axes move disjoint outputs)" if groupable
           else "one entry at a time")
    check = _plan(_x(n), complex_step=False)
    assert check.plan.split(";")[0] == f"every entry by central differences, {how}"


def test_groups_are_sought_where_more_than_one_output_is_shared():
    def two_of_three(x):
        return x[:2] ** 2, x            # x[2] moves no output: 3 entries, 2 outputs

    def two_of_three_backward(dout, x):
        return np.array([2 * x[0] * dout[0], 2 * x[1] * dout[1], 0.0])

    check = gradcheck.check_function(two_of_three, two_of_three_backward, _x(3),
                                     complex_step=False).checks[0]
    assert check.passed
    assert check.plan.split(";")[0] == (
        "every entry by central differences, in 1 group of entries that move disjoint outputs "
        "(found by probing the function: entries 1 apart along its axes move disjoint outputs)")


def test_the_plan_says_why_the_complex_step_was_chosen_when_it_was_tested():
    check = _plan(_x(3), coloring=False)
    assert check.plan == ("every entry by complex step, one entry at a time; complex step: the "
                          "function's complex extension matched central differences along a "
                          "random direction, output by output; 3 forward calls")


def test_a_fast_check_with_nothing_left_out_says_only_its_reason_and_calls():
    check = _plan(_x(5), mode="fast")
    assert check.method == "fast"
    assert check.plan == "along one random direction (mode='fast'); 2 forward calls"


class Diffusion:
    """y = x + 0.1 · mean(x): every output moves with every entry. Declares each entry
    independent (wrongly), and counts its calls."""

    params, grads = {}, {}

    def forward(self, x):
        return x + 0.1 * x.mean()

    def backward(self, dout):
        return dout + 0.1 * dout.mean()

    def jacobian_coloring(self, name, shape):
        return np.zeros(shape, dtype=np.int64)


def test_a_wrong_grouping_over_the_budget_one_by_one_goes_along_one_direction():
    # 5,001 entries by central differences: 10,002 calls one by one, over the 10,000 of mode
    # 'auto'; the declared grouping (1 group, 3 calls) fits. It fails: one direction, not
    # 10,002 calls.
    x = _rng().normal(size=5_001)
    with pytest.warns(gradcheck.GroupingWarning, match=r"layer.jacobian_coloring\('x'\)"):
        result = gradcheck.check_layer(Diffusion(), x, complex_step=False)
    check = result.checks[0]
    assert result.passed and check.method == "fast"
    assert check.plan.startswith("along one random direction; ")
    calls = int(check.plan[len("along one random direction; "):-len(" forward calls")])
    assert calls < 20 and result.forward_calls < 40


def test_a_tensor_whose_every_entry_is_over_the_budget_says_so():
    # One output (no grouping): 2 calls an entry, 10,002 for 5,001 entries.
    x = _rng(1).normal(size=5_001)
    check = gradcheck.check_function(lambda v: (np.array([np.sum(np.sin(v))]), v),
                                     lambda d, v: d[0] * np.cos(v), x,
                                     complex_step=False).checks[0]
    assert check.method == "fast"
    assert check.plan.startswith("along one random direction: every entry would take ~10,002 "
                                 "forward calls (~")
    assert check.plan.endswith("s), over the budget of mode 'auto' (10,000 calls, 5 s a "
                               "tensor); mode='full' checks every entry; 2 forward calls")


class Sine:
    """y = sin(x), elementwise: one group holds every entry, as it declares."""

    params, grads = {}, {}

    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, dout):
        return dout * np.cos(self.x)

    def jacobian_coloring(self, name, shape):
        return np.zeros(shape, dtype=np.int64)


def test_a_given_grouping_that_saves_nothing_gives_way_to_the_declared_one():
    x = _x(4)
    check = gradcheck.check_layer(Sine(), x, coloring={"x": np.arange(4)},
                                  complex_step=False).checks[0]
    assert check.plan == ("every entry by central differences, in 1 group of entries that move "
                          "disjoint outputs (layer.jacobian_coloring('x')); 3 forward calls")


class SlowComplexDiffusion(Diffusion):
    """Diffusion whose complex calls take 10 ms (a complex path 1000x slower than the real)."""

    declare = False

    def forward(self, x):
        if np.iscomplexobj(x):
            time.sleep(0.01)
        return super().forward(x)

    def jacobian_coloring(self, name, shape):
        return super().jacobian_coloring(name, shape) if self.declare else None


def test_the_budget_of_a_complex_step_check_is_counted_in_complex_calls():
    # 600 entries, 1 complex call each: ~6 s at 10 ms a call, over the 5 s of mode 'auto'
    # (the real calls, ~1e-5 s, would take ~6 ms).
    x = _rng().normal(size=600)
    check = gradcheck.check_layer(SlowComplexDiffusion(), x, coloring=False).checks[0]
    assert check.method == "fast"
    assert check.plan.startswith("along one random direction: every entry would take ~600 "
                                 "forward calls (~")


def test_a_wrong_grouping_of_a_slow_complex_check_goes_along_one_direction():
    layer = SlowComplexDiffusion()
    layer.declare = True
    x = _rng().normal(size=600)
    with pytest.warns(gradcheck.GroupingWarning):
        check = gradcheck.check_layer(layer, x).checks[0]
    assert check.method == "fast"
    assert check.plan.startswith("along one random direction; complex step: ")


# -------------------------------------------------------- the Jacobian's diagonal, and only it
def _softmax(scale):
    def forward(x):
        e = np.exp(x - x.max())
        s = e / e.sum()
        return scale * s, s
    return forward


def _diagonal_only(scale, off=1.0):
    def backward(dout, s):
        return off * scale * dout * s * (1 - s)          # the elementwise shortcut
    return backward


@pytest.mark.parametrize("n", [2, 6, 2048])
def test_the_diagonal_is_named_for_two_entries_and_up_to_2048(n):
    x = _rng().normal(size=n)
    check = gradcheck.check_function(_softmax(1.0), _diagonal_only(1.0), x).checks[0]
    assert not check.passed
    assert check.diagnosis[0].startswith(DIAGONAL)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_the_diagonal_is_named_at_any_scale_and_a_gradient_off_it_by_a_tenth_percent_never(
        scale):
    x = _rng().normal(size=6)
    check = gradcheck.check_function(_softmax(scale), _diagonal_only(scale), x).checks[0]
    assert check.diagnosis[0].startswith(DIAGONAL)
    off = gradcheck.check_function(_softmax(scale), _diagonal_only(scale, 1.001), x).checks[0]
    assert not off.passed and DIAGONAL not in _notes(off)


def test_a_zero_gradient_of_a_one_output_function_is_no_dropped_output_and_no_diagonal():
    # roll(x): the Jacobian's diagonal is 0, as is this backward. One output: none dropped.
    check = gradcheck.check_function(lambda x: (np.roll(x, 1), None),
                                     lambda dout, cache: np.zeros(5), _x(5)).checks[0]
    assert not check.passed
    assert DIAGONAL not in _notes(check) and WITHOUT not in _notes(check)


def test_the_diagonal_of_the_first_of_two_outputs_is_no_diagnosis_of_the_function():
    def two(x):
        e = np.exp(x - x.max())
        s = e / e.sum()
        return s, np.sin(x), s

    def first_diagonal_only(dout0, dout1, s):
        return dout0 * s * (1 - s)

    check = gradcheck.check_function(two, first_diagonal_only, _rng().normal(size=4)).checks[0]
    assert not check.passed
    assert DIAGONAL not in _notes(check)


def test_a_gradient_within_a_millionth_of_the_diagonals_scale_is_the_diagonal_inclusive():
    # y = (x0 + x1, x0) at 0, dout = 1: the diagonal is (1, 0) exactly (x0 ± h gives ±h;
    # x1 moves only y0). The analytic (1, 1e-6) is 1e-6 · max|diagonal| from it, bit for bit.
    check = gradcheck.check_function(lambda x: (np.array([x[0] + x[1], x[0]]), None),
                                     lambda dout, cache: np.array([1.0, 1e-6]),
                                     np.zeros(2), dout=np.ones(2), complex_step=False).checks[0]
    assert not check.passed
    assert check.diagnosis[0].startswith(DIAGONAL)


class SoftmaxWithBias:
    """softmax(x + b) with a 1-d bias; the backward keeps the Jacobian's diagonal only."""

    def __init__(self, n):
        self.params = {"b": np.linspace(-0.3, 0.4, n)}
        self.grads = {}

    def forward(self, x):
        z = x + self.params["b"]
        e = np.exp(z - z.max())
        self.s = e / e.sum()
        return self.s

    def backward(self, dout):
        dz = dout * self.s * (1 - self.s)
        self.grads["b"] = dz.copy()
        return dz


def test_a_one_dimensional_parameter_does_not_keep_the_diagonal_from_being_named():
    result = gradcheck.check_layer(SoftmaxWithBias(5), _rng().normal(size=5))
    for check in result.checks:
        assert not check.passed
        assert check.diagnosis[0].startswith(DIAGONAL)


def test_a_gradient_failing_only_a_tight_tolerance_gets_no_structural_diagnosis():
    # sin(x · W) at x = 0 with every tensor 1 × 1: the backward is 1e-8 off (relative), over
    # fd_tolerance=1e-10. A 1 × 1 W has no transpose or rotation but itself, and a 1 × 1
    # Jacobian no cross terms: nothing but the size of the error may be said.
    def forward(x, W):
        return np.sin(x @ W), (x, W)

    def backward(dout, cache):
        x, W = cache
        dz = dout * np.cos(x @ W)
        return (1 + 1e-8) * dz @ W.T, x.T @ dz

    result = gradcheck.check_function(forward, backward, np.zeros((1, 1)), np.array([[0.7]]),
                                      fd_tolerance=1e-10, complex_step=False)
    check = result.checks[0]
    assert check.tensor == "x" and not check.passed
    assert SAME_WITH not in _notes(check) and DIAGONAL not in _notes(check)


# ------------------------------------------------------- another tensor transposed or rotated
def _matmul(scale=1.0):
    def forward(x, W):
        return scale * (x @ W), (x, W)
    return forward


def _missing_transpose(scale=1.0):
    def backward(dout, cache):
        x, W = cache
        return scale * (dout @ W), scale * (x.T @ dout)     # dx: W where W.T belongs
    return backward


@pytest.mark.parametrize("n, scale", [(2, 1.0), (3, 1e4)])
def test_a_missing_transpose_of_a_square_weight_is_named_at_any_scale(n, scale):
    rng = _rng()
    x, W = rng.normal(size=(2, n)), rng.normal(size=(n, n))
    check = gradcheck.check_function(_matmul(scale), _missing_transpose(scale), x, W).checks[0]
    assert check.tensor == "x" and not check.passed
    assert check.diagnosis[0] == ("analytic ≈ the gradient of the same function with 'W' with "
                                  "axes 0 and 1 swapped (a missing or extra transpose?)")


@pytest.mark.parametrize("shape", [(2, 1), (1, 2)])
def test_a_weight_with_one_axis_of_length_one_is_still_rotated(shape):
    # Rotating a (2, 1) or (1, 2) W by 180° reverses its two entries.
    def flipped_backward(dout, cache):
        x, W = cache
        return dout @ np.flip(W).T, x.T @ dout

    rng = _rng()
    x, W = rng.normal(size=(3, shape[0])), np.array([[0.8, -1.3]]).reshape(shape)
    check = gradcheck.check_function(_matmul(), flipped_backward, x, W).checks[0]
    assert check.diagnosis[0] == ("analytic ≈ the gradient of the same function with 'W' "
                                  "rotated by 180° over axes (0, 1) (a kernel not flipped by "
                                  "ROT180?)")


def test_a_kernel_rotated_over_its_first_two_axes_keeps_its_channels():
    # y[c] = Σ_ij x[i, j] W[i, j, c]; the backward reads W rotated over (0, 1) only.
    def forward(x, W):
        return np.einsum("ij,ijc->c", x, W), (x, W)

    def backward(dout, cache):
        x, W = cache
        return np.einsum("c,ijc->ij", dout, W[::-1, ::-1]), np.einsum("ij,c->ijc", x, dout)

    rng = _rng()
    check = gradcheck.check_function(forward, backward, rng.normal(size=(3, 3)),
                                     rng.normal(size=(3, 3, 2))).checks[0]
    assert check.diagnosis[0] == ("analytic ≈ the gradient of the same function with 'W' "
                                  "rotated by 180° over axes (0, 1) (a kernel not flipped by "
                                  "ROT180?)")


class CountsItsWeights:
    """y = x @ W, whose backward is 1.5 times too large; records each W it is called with."""

    def __init__(self, W):
        self.params, self.grads, self.seen = {"W": W}, {}, []

    def forward(self, x):
        self.x = x
        self.seen.append(self.params["W"].copy())
        return x @ self.params["W"]

    def backward(self, dout):
        self.grads["W"] = self.x.T @ dout
        return 1.5 * dout @ self.params["W"].T


def test_each_transform_of_another_tensor_is_tried_once_with_two_calls():
    rng = _rng()
    W = rng.normal(size=(3, 3))
    layer = CountsItsWeights(W.copy())
    check = gradcheck.check_layer(layer, rng.normal(size=(2, 3))).checks[0]
    assert not check.passed and SAME_WITH not in _notes(check)
    for transformed in (np.flip(W), W.T):
        assert sum(np.array_equal(seen, transformed) for seen in layer.seen) == 2


# --------------------------------------------------------------------------- a dropped output
def _two_outputs(scale):
    def forward(x):
        return scale * np.sin(x), scale * x ** 2, x
    return forward


def _ignores_second(scale, error=None):
    def backward(dout0, dout1, x):
        dx = scale * dout0 * np.cos(x)
        if error is not None:
            dx = dx + error
        return dx
    return backward


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_a_dropped_output_is_named_at_any_scale(scale):
    x = _rng().normal(size=(2, 3))
    check = gradcheck.check_function(_two_outputs(scale), _ignores_second(scale), x).checks[0]
    assert check.diagnosis[0] == ("analytic ≈ the gradient without output 1's term: the "
                                  "backward ignores its upstream gradient 'dout1' (or the path "
                                  "from this input to output 1)")


def test_a_gradient_with_the_sum_of_the_one_without_an_output_is_not_named_so():
    # The gradient without output 1, plus +1 and -1 in two entries: equal sums, not equal.
    error = np.zeros((2, 3))
    error[0, 0], error[1, 2] = 1.0, -1.0
    x = _rng().normal(size=(2, 3))
    check = gradcheck.check_function(_two_outputs(1.0), _ignores_second(1.0, error), x).checks[0]
    assert not check.passed and WITHOUT not in _notes(check)


# ------------------------------------------- float64 inputs through a float32 computation
# A function that rounds its outputs to float32 is probed with float32's step, cbrt(eps32) ≈
# 4.9e-3: its outputs' rounding (~4.7e-10 at 0.01) over that step is ~1e-7 of a derivative
# of 1, below the diagnoses' 1e-6; over float64's step, 6e-6, it would be ~4e-5.
def _f32(y):
    return y.astype(np.float32)


def test_a_float32_computation_gets_its_diagonal_named():
    A = np.eye(4) + 0.5

    def forward(x):
        return _f32(A @ x), None

    def diagonal_only(dout, cache):
        return dout * np.diag(A)

    x = 0.01 * _rng().normal(size=4)
    with pytest.warns(gradcheck.PrecisionWarning):
        check = gradcheck.check_function(forward, diagonal_only, x).checks[0]
    assert not check.passed
    assert check.diagnosis[0].startswith(DIAGONAL)


def test_a_float32_computation_gets_its_missing_transpose_named():
    def forward(x, W):
        return _f32(x @ W), (x, W)

    rng = _rng()
    x, W = 0.01 * rng.normal(size=(2, 3)), rng.normal(size=(3, 3))
    with pytest.warns(gradcheck.PrecisionWarning):
        check = gradcheck.check_function(forward, _missing_transpose(), x, W).checks[0]
    assert check.diagnosis[0] == ("analytic ≈ the gradient of the same function with 'W' with "
                                  "axes 0 and 1 swapped (a missing or extra transpose?)")


def test_a_float32_computation_gets_its_dropped_output_named():
    # Linear and quadratic: central differences are exact but for the rounding.
    def forward(x):
        return _f32(3 * x), _f32(x ** 2), x

    def ignores_second(dout0, dout1, x):
        return 3 * dout0

    x = 0.05 * _rng().normal(size=(2, 3))
    with pytest.warns(gradcheck.PrecisionWarning):
        check = gradcheck.check_function(forward, ignores_second, x).checks[0]
    assert check.diagnosis[0].startswith(WITHOUT + " 1's term")


def test_a_float32_computation_passes_mode_fast():
    # Along a direction, float32's step leaves a truncation error ~h² ≈ 2e-5 and a rounding
    # ~1e-4, below float32's tolerance 1e-3; float64's step would leave rounding ~1e-2.
    x = _rng().normal(size=(4, 5))
    with pytest.warns(gradcheck.PrecisionWarning):
        result = gradcheck.check_function(lambda v: (_f32(np.tanh(v)), v),
                                          lambda d, v: d * (1 - np.tanh(v) ** 2), x,
                                          mode="fast")
    assert result.checks[0].method == "fast"
    assert result.passed, result.message()


# ------------------------------------------------------------------------- grouped differences
def test_a_large_output_elsewhere_hides_no_error_in_a_grouped_entry():
    # y0 = 1e5 + x0 rounds at ~1e-11, ~2e-6 over the step; x1..x4 move only their own
    # squares (~1). Grouped, each entry is judged against the rounding of the outputs it
    # moves: a 2e-6 error in dx[2] is over the tolerance 1e-6 (it passes without the error).
    def forward(x):
        return np.concatenate([[1e5 + x[0]], x[1:] ** 2]), x

    def backward_with(error):
        def backward(dout, x):
            dx = np.concatenate([[dout[0]], 2 * x[1:] * dout[1:]])
            dx[2] *= 1 + error
            return dx
        return backward

    x = np.array([0.3, 0.9, -1.1, 0.7, 1.3])
    options = dict(coloring={"x": np.zeros(5, dtype=np.int64)}, dout=np.ones(5),
                   complex_step=False)
    right = gradcheck.check_function(forward, backward_with(0.0), x, **options).checks[0]
    assert right.passed and right.plan.startswith("every entry by central differences, in 1 "
                                                  "group")
    check = gradcheck.check_function(forward, backward_with(2e-6), x, **options).checks[0]
    assert not check.passed and check.worst_index == (2,)
    # The floor reported is the worst entry's, RHO · M = 0.01 · 2.6 (M = |2 · 1.3|, to the
    # ~1e-10 of the differences), not entry 0's (~7: 1e5's rounding over the step, / 1e-6).
    assert check.floor == pytest.approx(0.026, rel=1e-8)


def test_a_users_step_is_the_step_of_the_grouped_differences():
    # sqrt refuses x <= 0: with step=0.6 the probes of x = 0.5 go to -0.1, and the check says
    # which smaller steps it took: 0.6 · 3 · 1e-2 = 0.018 (3, the largest entry; at 0.6 · 3
    # every probe of 0.5 leaves the domain).
    def forward(x):
        if np.any(x <= 0):
            raise ValueError("sqrt of a non-positive number")
        return np.sqrt(x), x

    x = np.array([0.5, 1.0, 2.0, 3.0])
    result = gradcheck.check_function(forward, lambda d, v: d / (2 * np.sqrt(v)), x,
                                      coloring={"x": np.array([0, 1, 0, 1])}, step=0.6,
                                      complex_step=False)
    assert result.passed, result.message()
    assert result.notes == ("'x' checked with steps 0.018 (relative to its largest magnitude, "
                            "3): a probe left the function's domain",)


# --------------------------------------------------------------------------------------- torch
def test_the_torch_comparison_is_named_by_its_method():
    torch = pytest.importorskip("torch")
    x = _rng().normal(size=(2, 3))
    result = gradcheck.check_function(_sine, _sine_backward, x, torch_fn=torch.sin)
    (torch_check,) = [c for c in result.checks if c.oracle == "torch"]
    assert torch_check.method == "torch" and torch_check.passed


def test_a_torch_fn_with_another_number_of_outputs_is_refused_naming_the_forward():
    torch = pytest.importorskip("torch")

    def forward(x):
        return np.sin(x), np.cos(x), x

    def backward(d0, d1, x):
        return d0 * np.cos(x) - d1 * np.sin(x)

    with pytest.raises(ValueError, match=r"returned 1 output\(s\), but forward\(x\) returned 2"):
        gradcheck.check_function(forward, backward, _rng().normal(size=3), torch_fn=torch.sin)


# ------------------------------------------------------------------- along one random direction
@pytest.mark.parametrize("seed", range(6))
def test_a_random_direction_is_scaled_to_a_largest_entry_of_one(seed):
    # One entry: the direction is ±1, and the analytic side of y = 3 x with dout = 1 is ±3
    # exactly, whatever the draw (|draw| < 1 for about 2 seeds in 3).
    check = gradcheck.check_function(lambda v: (3 * v, None), lambda d, c: 3 * d,
                                     np.array([0.4]), dout=np.ones(1), mode="fast",
                                     seed=seed).checks[0]
    assert abs(check.analytic) == 3.0


def test_a_fast_check_the_oracle_cannot_resolve_says_which_oracle():
    # Outputs of 1e12 around a derivative of 1: central differences resolve ~1e-4·1e12·u/h.
    check = gradcheck.check_function(lambda v: (1e12 + v, None), lambda d, c: d,
                                     _rng().normal(size=4), mode="fast").checks[0]
    assert check.method == "fast" and not check.passed
    assert check.unjudged.startswith("numeric resolves this gradient only to ±")


def test_a_fast_check_rerun_with_its_own_error_as_tolerance_passes_unchanged():
    # 1.001 x the gradient: an error ~1e-3, far above the floor. With fd_tolerance=0.5 it
    # passes as measured; with the tolerance set to that very error, it passes again (the
    # tolerance is inclusive), with the same error and the same calls.
    x = _rng().normal(size=(3, 4))

    def run(tolerance):
        return gradcheck.check_function(_sine, lambda d, v: 1.001 * d * np.cos(v), x,
                                        mode="fast", fd_tolerance=tolerance)

    first = run(0.5)
    error = first.checks[0].max_rel_error
    assert 1e-4 < error < 0.5 and first.passed
    again = run(error)
    assert again.passed and again.checks[0].mismatched == 0
    assert again.checks[0].max_rel_error == error
    assert again.forward_calls == first.forward_calls


class TiedPairs:
    """y = (max(x[2k], x[2k+1]) for 50,000 pairs, all at 0: ties; then 3 x[100000:], straight
    at every step)."""

    params, grads = {}, {}
    pairs = 50_000

    def forward(self, x):
        self.x = x
        tied = np.maximum(x[0:2 * self.pairs:2], x[1:2 * self.pairs:2])
        return np.concatenate([tied, 3 * x[2 * self.pairs:]])

    def backward(self, dout):
        dx = np.zeros_like(self.x)
        dx[0:2 * self.pairs:2] = dout[:self.pairs]          # a tie sent to its first entry
        dx[2 * self.pairs:] = 3 * dout[self.pairs:]
        return dx


def test_every_tie_of_a_large_tensor_is_left_out_of_a_fast_check():
    # 150,000 entries, over the 100,000 checked entry by entry after a kink. Each tie bends
    # its output alike at every step, even a pair whose direction entries are within 1e-3
    # of each other (~30 of the 50,000 pairs): all 50,000 are left out.
    x = np.concatenate([np.zeros(100_000), _rng().normal(size=50_000)])
    check = gradcheck.check_layer(TiedPairs(), x, mode="fast").checks[0]
    assert check.passed, check.describe()
    assert check.plan.startswith("along one random direction (mode='fast') (50000 outputs that "
                                 "a kink bends within the step left out of G, and the backward "
                                 "called again without them)")


# ------------------------------------------------- found while killing mutants (regressions)
class OffsetElementwise:
    """Elementwise y = [1e3 + x0, x1², sin x2, 3 x3]; its backward is off by 1e-5 at x2."""

    params, grads = {}, {}

    def forward(self, x):
        self.x = x
        return np.stack([1e3 + x[0], x[1] ** 2, np.sin(x[2]), 3 * x[3]])

    def backward(self, dout):
        x = self.x
        return np.array([dout[0], 2 * x[1] * dout[1], np.cos(x[2]) * dout[2] * (1 + 1e-5),
                         3 * dout[3]])


def test_a_grouped_verdict_keeps_its_plan_and_an_elementwise_layer_misses_no_cross_terms():
    # A failed grouped check is retried one entry at a time with smaller steps; the retry
    # failing too, the grouped verdict stands, and its plan with it (the plan once said
    # "one entry at a time"). The Jacobian is diagonal: "only the diagonal, the cross
    # terms are missing" was once said of it, as its error (1.4e-6) was below 1e-6 of
    # the largest entry; only the entry is named.
    x = np.array([0.5, -0.25, 0.75, 0.125])
    check = gradcheck.check_layer(OffsetElementwise(), x, coloring={"x": np.zeros(4, int)},
                                  complex_step=False).checks[0]
    assert not check.passed and check.worst_index == (2,)
    assert check.plan.startswith("every entry by central differences, in 1 group of entries "
                                 "that move disjoint outputs (coloring['x']); ")
    assert check.diagnosis == ("only 1 entry wrong: (2,)",)
