"""check_function and check_value_and_grad: hand-written gradients as people write them.

The functions here are written in the course style, with no hints for the
checker: ``(out, cache)`` pairs, several inputs and outputs, integer labels,
dicts of hyperparameters, a model whose ``loss(X, y)`` returns ``(loss, grads)``,
0-d tensors, second derivatives.
"""

import copy
import re

import numpy as np
import pytest

import gradcheck
from gradcheck import GradientCheckError


# ------------------------------------------------------------- user-style code
def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def affine_backward_no_transpose_sum(dout, cache):
    x, w, b = cache
    dx, dw, _ = affine_backward(dout, cache)
    return dx, dw, dout.sum(axis=1)[: b.shape[0]]          # summed over the wrong axis


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - next_h ** 2)
    return dz @ Wx.T, dz @ Wh.T, x.T @ dz, prev_h.T @ dz, dz.sum(axis=0)


def rnn_step_backward_wrong_tanh(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - np.tanh(next_h) ** 2)             # tanh' of the output, not of z
    return dz @ Wx.T, dz @ Wh.T, x.T @ dz, prev_h.T @ dz, dz.sum(axis=0)


def split_forward(x, w):
    """Two outputs from two inputs: a = tanh(x w), b = a * x[:, :1]."""
    a = np.tanh(x @ w)
    return a, a * x[:, :1], (x, w, a)


def split_backward(da, db, cache):
    x, w, a = cache
    dz = (da + db * x[:, :1]) * (1 - a ** 2)
    dx = dz @ w.T
    dx[:, :1] += np.sum(db * a, axis=1, keepdims=True)
    return dx, x.T @ dz


def split_backward_forgets_second_output(da, db, cache):
    x, w, a = cache
    dz = da * (1 - a ** 2)
    return dz @ w.T, x.T @ dz


def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = -np.log(probs[np.arange(n), y]).mean()
    dx = probs.copy()
    dx[np.arange(n), y] -= 1
    return loss, dx / n


def softmax_loss_missing_mean(x, y):
    loss, dx = softmax_loss(x, y)
    return loss, dx * x.shape[0]


def masked_square_loss(x, target, mask, params):
    """Integer targets, a boolean mask and a dict of hyperparameters reach the function as given."""
    assert target.dtype.kind == "i" and mask.dtype == bool and params == {"scale": 0.5}
    diff = (x - target) * mask
    return params["scale"] * np.sum(diff ** 2), 2 * params["scale"] * diff


class TwoLayerNet:
    """affine - relu - affine - softmax, with L2 regularization; ``loss`` returns (loss, grads)."""

    def __init__(self, rng, reg=0.1, double_reg=False):
        self.params = {"W1": rng.normal(size=(4, 5)), "b1": rng.normal(size=5),
                       "W2": rng.normal(size=(5, 3)), "b2": rng.normal(size=3)}
        self.reg, self.double_reg = reg, double_reg

    def loss(self, X, y):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        z = X @ W1 + b1
        h = np.maximum(z, 0)
        scores = h @ W2 + b2
        loss, dscores = softmax_loss(scores, y)
        loss += 0.5 * self.reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
        factor = 2 * self.reg if self.double_reg else self.reg
        dh = dscores @ W2.T
        dz = dh * (z > 0)
        grads = {"W2": h.T @ dscores + factor * W2, "b2": dscores.sum(axis=0),
                 "W1": X.T @ dz + factor * W1, "b1": dz.sum(axis=0)}
        return loss, grads


def _rng(seed=0):
    return np.random.default_rng(seed)


def _affine_args(seed=0):
    rng = _rng(seed)
    return rng.normal(size=(3, 2, 2)), rng.normal(size=(4, 5)), rng.normal(size=5)


def _rnn_args(seed=0):
    rng = _rng(seed)
    return (rng.normal(size=(3, 4)), rng.normal(size=(3, 5)), 0.5 * rng.normal(size=(4, 5)),
            0.5 * rng.normal(size=(5, 5)), rng.normal(size=5))


# ------------------------------------------------------------ function pairs
def test_a_correct_function_pair_passes_with_tensors_named_after_its_parameters():
    result = gradcheck.check_function(affine_forward, affine_backward, *_affine_args())
    assert result.passed, result.message()
    assert result.layer == "affine_forward"
    assert [(c.tensor, c.gradient) for c in result.checks] == [("x", "dx"), ("w", "dw"),
                                                               ("b", "db")]
    # Central differences with the error of their step (~1e-10 relative, 1e-6 allowed).
    assert max(result.max_rel_error.values()) < 1e-8


def test_a_wrong_gradient_fails_and_the_message_names_the_users_gradient():
    def doubled_dw(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, 2 * dw, db

    result = gradcheck.check_function(affine_forward, doubled_dw, *_affine_args())
    assert [c.gradient for c in result.failures()] == ["dw"]
    message = result.message()
    assert message.startswith("gradient check of affine_forward failed")
    assert "dw (tensor 'w', shape (4, 5))" in message
    assert "analytic ≈ 2 × numeric" in message


def test_several_inputs_named_like_the_step_and_a_bug_in_one_of_them():
    good = gradcheck.check_function(rnn_step_forward, rnn_step_backward, *_rnn_args())
    assert good.passed, good.message()
    assert [c.gradient for c in good.checks] == ["dx", "dprev_h", "dWx", "dWh", "db"]
    bad = gradcheck.check_function(rnn_step_forward, rnn_step_backward_wrong_tanh, *_rnn_args())
    assert not bad.passed
    assert {c.gradient for c in bad.failures()} == {"dx", "dprev_h", "dWx", "dWh", "db"}


def test_several_outputs_each_get_an_upstream_gradient():
    rng = _rng(1)
    args = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))
    good = gradcheck.check_function(split_forward, split_backward, *args)
    assert good.passed, good.message()
    # A backward that ignores its second upstream gradient is caught.
    bad = gradcheck.check_function(split_forward, split_backward_forgets_second_output, *args)
    assert {c.tensor for c in bad.failures()} == {"x", "w"}


def test_dout_takes_one_array_per_output():
    rng = _rng(2)
    args = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))
    ones = (np.ones((4, 5)), np.ones((4, 5)))
    a = gradcheck.check_function(split_forward, split_backward, *args, dout=ones, seed=1)
    b = gradcheck.check_function(split_forward, split_backward, *args, dout=ones, seed=2)
    assert a.passed and a.checks == b.checks
    with pytest.raises(ValueError, match=r"`dout` has 1 array\(s\); split_forward\(x, w\) has 2"):
        gradcheck.check_function(split_forward, split_backward, *args, dout=np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"`dout\[1\].shape` \(5, 4\) must equal the shape of "
                                         r"output 1"):
        gradcheck.check_function(split_forward, split_backward, *args,
                                 dout=(np.ones((4, 5)), np.ones((5, 4))))


def test_a_forward_without_a_cache_gets_its_arguments_back_in_backward():
    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    def sigmoid_backward(dout, z):
        s = sigmoid(z)
        return dout * s * (1 - s)

    z = _rng(3).normal(size=(3, 4))
    assert gradcheck.check_function(sigmoid, sigmoid_backward, z).passed
    wrong = gradcheck.check_function(sigmoid, lambda dout, z: dout * sigmoid(z), z)
    assert not wrong.passed


def test_wrt_picks_arguments_by_name_or_position():
    args = _affine_args()
    by_name = gradcheck.check_function(affine_forward, affine_backward, *args, wrt=("w", "b"))
    by_position = gradcheck.check_function(affine_forward, affine_backward, *args, wrt=[1, -1])
    for result in (by_name, by_position):
        assert result.passed, result.message()
        assert [c.tensor for c in result.checks] == ["w", "b"]
    # A backward returning only the chosen gradients is taken as well.
    only_w = gradcheck.check_function(affine_forward,
                                      lambda dout, cache: affine_backward(dout, cache)[1],
                                      *args, wrt="w")
    assert only_w.passed and [c.tensor for c in only_w.checks] == ["w"]
    all_three = gradcheck.check_function(affine_forward, affine_backward, *args, wrt="w")
    assert all_three.passed and [c.tensor for c in all_three.checks] == ["w"]


@pytest.mark.parametrize("wrt, match", [
    ("z", r"`wrt` has 'z'; it takes positions 0..2 or the parameter names of affine_forward: "
          r"\['x', 'w', 'b'\]"),
    (5, r"`wrt` has 5"),
    ((True,), r"`wrt` has True"),
])
def test_a_bad_wrt_is_named(wrt, match):
    with pytest.raises(ValueError, match=match):
        gradcheck.check_function(affine_forward, affine_backward, *_affine_args(), wrt=wrt)


def test_a_backward_with_the_wrong_number_of_gradients_is_a_usage_error_that_says_so():
    def two_of_three(dout, cache):
        return affine_backward(dout, cache)[:2]

    with pytest.raises(ValueError, match=r"returned 2 gradient\(s\), expected 3: one per "
                                         r"differentiable argument of affine_forward, in order "
                                         r"\(x, w, b\); pass `wrt`"):
        gradcheck.check_function(affine_forward, two_of_three, *_affine_args())


def test_a_gradient_of_the_wrong_shape_fails_and_says_whether_a_reshape_would_match():
    def keepdims_db(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw, db[None, :]                           # (1, 5) for a (5,) bias

    result = gradcheck.check_function(affine_forward, keepdims_db, *_affine_args())
    (failure,) = result.failures()
    assert failure.gradient == "db" and failure.max_rel_error < 1e-8
    assert failure.shape_error.startswith("the gradient has shape (1, 5), the tensor (5,)")
    assert "after a reshape the values match" in result.message()
    wrong_axis = gradcheck.check_function(affine_forward, affine_backward_no_transpose_sum,
                                          *_affine_args())
    (failure,) = wrong_axis.failures()
    assert failure.gradient == "db" and not failure.passed


@pytest.mark.filterwarnings("ignore::gradcheck.HazardWarning")   # asserted in result.hazards
def test_the_callers_arguments_are_never_changed_and_the_function_sees_copies():
    seen = []

    def forward_that_writes(x, w, b, conf):
        seen.append(x)
        conf["calls"] = conf.get("calls", 0) + 1         # bn_param-style bookkeeping
        out, cache = affine_forward(x.copy(), w, b)
        x += 1.0                                          # scribbles on its input
        return out, cache

    x, w, b = _affine_args()
    x[0, 0, 0], w[0, 0] = 0.1, 1.0 / 3.0                  # values v + h - h does not restore
    conf = {"mode": "train"}
    before = [copy.deepcopy(a) for a in (x, w, b, conf)]
    result = gradcheck.check_function(forward_that_writes, affine_backward, x, w, b, conf)
    for a, b_ in zip((x, w, b), before):
        assert a.tobytes() == b_.tobytes()
    assert conf == before[3]
    assert all(s is not x for s in seen)
    # The gradients are right; the write into x is a hazard, a failure only when strict.
    assert result.passed
    assert any("forward_that_writes modified its argument x" in h for h in result.hazards)
    strict = gradcheck.check_function(forward_that_writes, affine_backward, x, w, b, conf,
                                      strict=True)
    assert not strict.passed and "1 hazard(s) (strict)" in strict.message()


def test_a_fresh_forward_precedes_every_backward():
    def forward(x):
        return x ** 2, [x]

    def consuming_backward(dout, cache):
        x = cache.pop()                                   # a cache used up by backward
        return 2 * x * dout

    result = gradcheck.check_function(forward, consuming_backward, _rng(4).normal(size=5))
    assert result.passed, result.message()


def test_an_error_inside_the_users_code_says_where_it_was_raised():
    def broken_backward(dout, cache):
        raise KeyError("cache has no 'w'")

    with pytest.raises(KeyError) as info:
        gradcheck.check_function(affine_forward, broken_backward, *_affine_args())
    assert any("broken_backward(dout, cache)" in note and "check_function" in note
               for note in info.value.__notes__)


def test_arguments_with_nothing_to_differentiate_are_refused_by_name():
    with pytest.raises(ValueError, match=r"`args` of <lambda> hold no floating-point array"):
        gradcheck.check_function(lambda idx: (idx * 1.0, None), lambda d, c: d,
                                 np.arange(3))
    with pytest.raises(TypeError, match=r"`x` has dtype int64"):
        gradcheck.check_function(affine_forward, affine_backward, np.arange(6).reshape(3, 2),
                                 np.ones((2, 2)), np.ones(2), wrt="x")


def test_a_result_can_be_renamed_and_the_assert_form_raises():
    result = gradcheck.check_function(affine_forward, affine_backward, *_affine_args(),
                                      name="affine layer")
    assert result.layer == "affine layer"
    with pytest.raises(GradientCheckError, match=re.escape("dWx (tensor 'Wx'")):
        gradcheck.assert_function_gradients(rnn_step_forward, rnn_step_backward_wrong_tanh,
                                            *_rnn_args())


def test_every_option_works_with_a_function_pair(recwarn):
    torch = pytest.importorskip("torch")
    args = _rnn_args(5)

    def rnn_step_torch(x, prev_h, Wx, Wh, b):
        return torch.tanh(x @ Wx + prev_h @ Wh + b)

    with_torch = gradcheck.check_function(rnn_step_forward, rnn_step_backward, *args,
                                          torch_fn=rnn_step_torch)
    # np.tanh and matrix products are holomorphic: tested, the complex step applies.
    assert with_torch.passed and {c.oracle for c in with_torch.checks} == {
        "complex_step", "torch"}
    assert max(c.max_rel_error for c in with_torch.checks if c.oracle == "torch") < 1e-13
    exact = gradcheck.check_function(rnn_step_forward, rnn_step_backward, *args,
                                     complex_step=True)
    assert exact.passed and {c.method for c in exact.checks} == {"complex_step"}
    assert max(exact.max_rel_error.values()) < 1e-13
    central = gradcheck.check_function(rnn_step_forward, rnn_step_backward, *args,
                                       complex_step=False)
    assert central.passed and {c.oracle for c in central.checks} == {"finite_differences"}
    fast = gradcheck.check_function(rnn_step_forward, rnn_step_backward, *args, mode="fast")
    assert fast.passed and {c.method for c in fast.checks} == {"fast"}
    mask = np.zeros((3, 4), dtype=bool)
    mask[0, 0] = True
    excluded = gradcheck.check_function(rnn_step_forward, rnn_step_backward, *args,
                                        fd_exclude={"x": mask}, coloring=False)
    assert excluded.passed and excluded.checks[0].excluded == 1
    low = [a.astype(np.float32) for a in args]
    with pytest.warns(gradcheck.PrecisionWarning, match="rnn_step_forward computes in float32"):
        single = gradcheck.check_function(rnn_step_forward, rnn_step_backward, *low)
    assert single.passed and single.dtype == "float32"


def test_groups_found_by_probing_cut_the_calls_for_independent_rows_and_columns():
    args = _affine_args(6)
    grouped = gradcheck.check_function(affine_forward, affine_backward, *args,
                                       complex_step=False)
    one_by_one = gradcheck.check_function(affine_forward, affine_backward, *args,
                                          coloring=False, complex_step=False)
    assert grouped.passed and one_by_one.passed
    entries = sum(a.size for a in args)
    assert one_by_one.forward_calls == 6 + 2 * entries
    # Each trial of a period costs 3 calls, each group 3. x (3, 2, 2): its examples
    # are independent (period 1), its two inner axes are not (2 each): 3 trials, 4
    # groups. w (4, 5): its rows mix (periods 1 and 2 fail), its columns do not
    # (period 1): 3 trials, 4 groups. b: 1 trial, 1 group.
    assert grouped.forward_calls == 6 + 3 * (3 + 4) + 3 * (3 + 4) + 3 * (1 + 1)
    assert [c.plan.split(";")[0] for c in grouped.checks] == [
        "every entry by central differences, in 4 groups of entries that move disjoint "
        f"outputs (found by probing the function: entries {periods} apart along its axes "
        "move disjoint outputs)" for periods in ("1×2×2", "4×1")] + [
        "every entry by central differences, in 1 group of entries that move disjoint "
        "outputs (found by probing the function: entries 1 apart along its axes move "
        "disjoint outputs)"]


# --------------------------------------------------------------- 0-d tensors
def test_a_0d_parameter_and_a_0d_input_are_checked():
    def temperature_forward(x, t):
        return x / t, (x, t)

    def temperature_backward(dout, cache):
        x, t = cache
        return dout / t, -np.sum(dout * x) / t ** 2

    def temperature_backward_sign(dout, cache):
        x, t = cache
        return dout / t, np.sum(dout * x) / t ** 2

    x, t = _rng(7).normal(size=(3, 4)), np.array(1.7)
    good = gradcheck.check_function(temperature_forward, temperature_backward, x, t)
    assert good.passed, good.message()
    assert good.checks[1].shape == () and good.checks[1].gradient == "dt"
    bad = gradcheck.check_function(temperature_forward, temperature_backward_sign, x, t)
    (failure,) = bad.failures()
    assert failure.tensor == "t" and "a sign flip" in bad.message()
    scalar = gradcheck.check_function(temperature_forward, temperature_backward, np.array(0.3), t)
    assert scalar.passed and [c.shape for c in scalar.checks] == [(), ()]


def test_a_0d_layer_input_and_parameter_pass_check_layer():
    class Scale:
        def __init__(self):
            self.params, self.grads = {"s": np.array(2.5)}, {}

        def forward(self, x):
            self.x = x
            return self.params["s"] * x

        def backward(self, dout):
            self.grads = {"s": np.sum(dout * self.x)}
            return dout * self.params["s"]

    result = gradcheck.check_layer(Scale(), np.array(0.7))
    assert result.passed, result.message()


# ------------------------------------------------------------ value and grad
def test_a_loss_returning_its_gradient_with_integer_labels():
    rng = _rng(8)
    scores, labels = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)
    good = gradcheck.check_value_and_grad(softmax_loss, scores, labels)
    assert good.passed, good.message()
    assert [c.gradient for c in good.checks] == ["dx"] and good.layer == "softmax_loss"
    bad = gradcheck.check_value_and_grad(softmax_loss_missing_mean, scores, labels)
    assert not bad.passed and "analytic ≈ 5 × numeric = 5, x.shape[0]" in bad.message()


def test_masks_labels_and_hyperparameters_reach_the_function_as_given():
    rng = _rng(9)
    x = rng.normal(size=(3, 4))
    target, mask = rng.integers(-1, 2, size=(3, 4)), rng.random((3, 4)) > 0.3
    result = gradcheck.check_value_and_grad(masked_square_loss, x, target, mask, {"scale": 0.5})
    assert result.passed, result.message()
    assert [c.tensor for c in result.checks] == ["x"]


def test_a_dict_of_arrays_argument_gets_its_gradient_as_a_dict():
    def loss(params, X):
        z = X @ params["w"] + params["c"]
        return 0.5 * np.sum(z ** 2), {"w": X.T @ z, "c": np.sum(z)}

    rng = _rng(10)
    params, X = {"w": rng.normal(size=3), "c": np.array(0.2)}, rng.normal(size=(4, 3))
    result = gradcheck.check_value_and_grad(loss, params, X)
    assert result.passed, result.message()
    assert [c.gradient for c in result.checks] == ["dw", "dc"]


def test_a_models_loss_is_checked_over_its_params_and_they_come_back_unchanged():
    rng = _rng(11)
    X = rng.normal(size=(6, 4)) + 0.5
    y = rng.integers(0, 3, size=6)
    model = TwoLayerNet(rng)
    originals = {k: v for k, v in model.params.items()}
    before = {k: v.copy() for k, v in model.params.items()}
    good = gradcheck.check_value_and_grad(model.loss, X, y)
    assert good.passed, good.message()
    assert good.layer == "TwoLayerNet.loss"
    assert sorted(c.gradient for c in good.checks) == ["dW1", "dW2", "db1", "db2"]
    assert all(model.params[k] is originals[k] for k in originals)
    assert all(model.params[k].tobytes() == before[k].tobytes() for k in before)
    bad = gradcheck.check_value_and_grad(TwoLayerNet(_rng(11), double_reg=True).loss, X, y)
    assert {c.tensor for c in bad.failures()} == {"W1", "W2"}


def test_a_value_that_is_not_a_scalar_is_named():
    with pytest.raises(ValueError, match=r"returned a value of shape \(3,\); the value must be "
                                         r"a scalar"):
        gradcheck.check_value_and_grad(lambda v: (v ** 2, 2 * v), np.ones(3))
    with pytest.raises(TypeError, match=r"must return \(value, gradients\), got float64"):
        gradcheck.check_value_and_grad(lambda v: np.sum(v ** 2), np.ones(3))


def test_value_and_grad_with_the_torch_oracle_and_the_assert_form():
    torch = pytest.importorskip("torch")
    rng = _rng(12)
    scores, labels = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)

    def torch_softmax_loss(x, y):
        return torch.nn.functional.cross_entropy(x, torch.as_tensor(y))

    result = gradcheck.assert_value_and_grad(softmax_loss, scores, labels,
                                             torch_fn=torch_softmax_loss)
    assert {c.oracle for c in result.checks} == {"complex_step", "torch"}
    with pytest.raises(GradientCheckError, match="dx"):
        gradcheck.assert_value_and_grad(softmax_loss_missing_mean, scores, labels)


# ------------------------------------------------------- second derivatives
def _softplus(z):
    return np.logaddexp(0, z)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_a_first_and_a_second_derivative_are_checked_against_the_function_and_each_other():
    z = _rng(13).normal(size=(2, 3))
    # grad(z) against the function: the value and its gradient.
    first = gradcheck.check_value_and_grad(lambda z: (np.sum(_softplus(z)), _sigmoid(z)), z)
    assert first.passed, first.message()
    # grad2(z) against grad(z): grad is the forward, its Jacobian is diag(grad2).
    def grad2(z):
        s = _sigmoid(z)
        return s * (1 - s)

    second = gradcheck.check_function(_sigmoid, lambda dout, z: dout * grad2(z), z)
    assert second.passed, second.message()
    wrong = gradcheck.check_function(_sigmoid, lambda dout, z: dout * _sigmoid(z) * (1 + _sigmoid(z)), z)
    assert not wrong.passed


# -------------------------------------------- the upstream gradient's stream
def test_inputs_drawn_from_the_checks_seed_do_not_become_its_upstream_gradient():
    # A user who seeds with 0, as the check does, and draws x first would get
    # x == G if G came from default_rng(seed): a batch norm's backward maps its
    # own input to ~0, and a relative error of 1e-4 in dx would then pass.
    from property_tests.corpus.user_layers import batchnorm_backward, batchnorm_forward

    x = np.random.default_rng(0).standard_normal((4, 3))
    args = (x, np.ones(3) * 1.3, np.zeros(3) + 0.2, {"mode": "train"})

    def off_by_1e_4(dout, cache):
        dx, dgamma, dbeta = batchnorm_backward(dout, cache)
        return dx * (1 + 1e-4), dgamma, dbeta

    assert gradcheck.check_function(batchnorm_forward, batchnorm_backward, *args).passed
    bad = gradcheck.check_function(batchnorm_forward, off_by_1e_4, *args)
    assert [c.tensor for c in bad.failures()] == ["x"]


# ---------------------------------------- kinks, self-checks, low precision
def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def test_a_function_exactly_at_its_kinks_passes_and_a_wrong_subgradient_fails():
    x = np.array([[0.0, 1.0, -2.0], [0.0, -0.5, 3.0]])
    result = gradcheck.check_function(relu_forward, relu_backward, x)
    assert result.passed, result.message()
    assert result.nondifferentiable == {"x": 2}
    outside = gradcheck.check_function(relu_forward,
                                       lambda dout, x: dout * np.where(x == 0, 2.0, x > 0), x)
    assert not outside.passed


def test_a_function_that_draws_new_randomness_each_call_fails_its_self_check():
    def dropout_forward(x, p):
        mask = np.random.default_rng().random(x.shape) < p      # a new mask every call
        return x * mask / p, mask

    def dropout_backward(dout, mask):
        return dout * mask / 0.5

    result = gradcheck.check_function(dropout_forward, dropout_backward,
                                      _rng(14).normal(size=(4, 5)), 0.5)
    assert not result.passed
    assert any(p.startswith("dropout_forward is nondeterministic") for p in result.problems)


def test_a_half_precision_function_gets_its_own_tolerances():
    x = _rng(15).normal(size=(3, 4)).astype(np.float16)
    w = _rng(16).normal(size=(4, 2)).astype(np.float16)

    def matmul_forward(x, w):
        return x @ w, (x, w)

    def matmul_backward(dout, cache):
        x, w = cache
        return (dout @ w.T).astype(np.float16), (x.T @ dout).astype(np.float16)

    with pytest.warns(gradcheck.PrecisionWarning, match="float16"):
        result = gradcheck.check_function(matmul_forward, matmul_backward, x, w)
    assert result.passed, result.message()
    assert {c.tolerance for c in result.checks} == {gradcheck.PRECISIONS["float16"].fd_tolerance}


@pytest.mark.parametrize("option, value, error", [
    ("seed", None, TypeError), ("seed", -1, ValueError), ("seed", 1.5, TypeError),
    ("seed", "abc", TypeError), ("complex_step", "yes", TypeError), ("step", True, TypeError),
    ("torch_fn", 3, TypeError), ("mode", "slow", ValueError), ("coloring", 1.0, TypeError),
])
def test_every_entry_point_names_a_bad_option_and_its_value(option, value, error):
    calls = [
        lambda **o: gradcheck.check_function(affine_forward, affine_backward, *_affine_args(), **o),
        lambda **o: gradcheck.check_value_and_grad(softmax_loss, _rng().normal(size=(2, 3)),
                                                   np.array([0, 2]), **o),
    ]
    for call in calls:
        with pytest.raises(error, match=rf"`{option}`.*{re.escape(repr(value))}"):
            call(**{option: value})


def test_numpy_scalars_are_options_like_python_numbers():
    result = gradcheck.check_function(affine_forward, affine_backward, *_affine_args(),
                                      seed=np.int64(3), step=np.float32(1e-5),
                                      fd_tolerance=np.float64(1e-6), complex_step=np.bool_(False))
    assert result.passed and result.seed == 3


def test_a_models_loss_with_its_torch_twin_taking_the_params_last():
    torch = pytest.importorskip("torch")
    rng = _rng(17)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    model = TwoLayerNet(rng)

    def torch_loss(X, y, params):
        h = torch.relu(torch.as_tensor(X) @ params["W1"] + params["b1"])
        scores = h @ params["W2"] + params["b2"]
        data = torch.nn.functional.cross_entropy(scores, torch.as_tensor(y))
        return data + 0.5 * model.reg * ((params["W1"] ** 2).sum() + (params["W2"] ** 2).sum())

    result = gradcheck.check_value_and_grad(model.loss, X, y, torch_fn=torch_loss)
    assert result.passed, result.message()
    torch_checks = [c for c in result.checks if c.oracle == "torch"]
    assert sorted(c.tensor for c in torch_checks) == ["W1", "W2", "b1", "b2"]
    assert max(c.max_rel_error for c in torch_checks) < 1e-12


# ------------------------------------------- what users pass, as they pass it
class LinearModel:
    """A model whose params hold a float hyperparameter besides its arrays."""

    def __init__(self, rng, with_dX=False):
        self.params = {"W": rng.normal(size=(3, 2)), "reg": 0.1, "idx": np.arange(2)}
        self.with_dX = with_dX

    def loss(self, X, y):
        W = self.params["W"]
        r = X @ W - y
        loss = 0.5 * np.sum(r ** 2) + 0.5 * self.params["reg"] * np.sum(W ** 2)
        grads = {"W": X.T @ r + self.params["reg"] * W}
        return (loss, (r @ W.T, grads)) if self.with_dX else (loss, grads)


def _linear_data(seed=18):
    rng = _rng(seed)
    return rng.normal(size=(4, 3)), rng.normal(size=(4, 2))


def test_a_models_params_with_hyperparameters_and_a_partial_of_its_loss():
    import functools

    X, y = _linear_data()
    model = LinearModel(_rng(19))
    result = gradcheck.check_value_and_grad(model.loss, X, y)
    assert result.passed and [c.tensor for c in result.checks] == ["W"]
    partial = gradcheck.check_value_and_grad(functools.partial(model.loss, y=y), X)
    assert partial.passed and [c.tensor for c in partial.checks] == ["W"]
    with_x = gradcheck.check_value_and_grad(LinearModel(_rng(19), with_dX=True).loss, X, y,
                                            wrt="X")
    assert with_x.passed and [c.tensor for c in with_x.checks] == ["X", "W"]


def test_a_backward_with_more_gradients_than_differentiable_arguments_says_which_were_not():
    def scale_forward(x, a):
        return a * x, (x, a)

    def scale_backward(dout, cache):
        x, a = cache
        return a * dout, np.sum(dout * x)

    with pytest.raises(ValueError, match=r"returned 2 gradient\(s\), expected 1: .* not "
                                         r"differentiated: a \(a float\)"):
        gradcheck.check_function(scale_forward, scale_backward, _rng().normal(size=3), 0.5)


def test_wrt_out_of_order_takes_each_gradient_for_its_own_argument():
    result = gradcheck.check_function(affine_forward, affine_backward, *_affine_args(),
                                      wrt=("w", 0))
    assert result.passed, result.message()
    assert [c.tensor for c in result.checks] == ["w", "x"]


@pytest.mark.parametrize("wrt, error, match", [
    (1.0, TypeError, r"`wrt` must be a position, a parameter name"),
    (("x", "x"), ValueError, r"`wrt` names argument 'x' twice"),
    ((), ValueError, r"`wrt` is empty"),
])
def test_wrt_that_cannot_be_meant_is_refused(wrt, error, match):
    with pytest.raises(error, match=match):
        gradcheck.check_function(affine_forward, affine_backward, *_affine_args(), wrt=wrt)


def test_wrt_takes_numpy_integers():
    result = gradcheck.check_function(affine_forward, affine_backward, *_affine_args(),
                                      wrt=np.int64(1))
    assert [c.tensor for c in result.checks] == ["w"]


def test_a_function_pair_returning_only_a_dicts_gradient_must_say_wrt():
    def forward(x, p):
        return x @ p["W"], (x, p)

    def backward(dout, cache):
        x, p = cache
        return {"W": x.T @ dout}

    args = _rng().normal(size=(2, 3)), {"W": _rng(1).normal(size=(3, 2))}
    with pytest.raises(ValueError, match=r"returned 1 gradient\(s\), expected 2"):
        gradcheck.check_function(forward, backward, *args)
    assert gradcheck.check_function(forward, backward, *args, wrt="p").passed


def test_a_list_for_the_outputs_and_cache_is_taken_and_a_nested_tuple_refused():
    x = _rng().normal(size=(2, 3))
    listed = gradcheck.check_function(lambda x: [x ** 2, x], lambda dout, x: 2 * x * dout, x)
    assert listed.passed
    with pytest.raises(TypeError, match=r"returned a tuple as output 0.*not \(\(a, b\), cache\)"):
        gradcheck.check_function(lambda x: ((x, 2 * x), None), lambda da, db, c: da, x)


def test_the_complex_step_takes_an_output_that_does_not_depend_on_a_tensor():
    def two(x, w):
        return x @ w, np.sum(x ** 2), (x, w)

    def two_backward(d1, d2, cache):
        x, w = cache
        return d1 @ w.T + 2 * d2 * x, x.T @ d1

    rng = _rng(20)
    result = gradcheck.check_function(two, two_backward, rng.normal(size=(2, 3)),
                                      rng.normal(size=(3, 2)), complex_step=True)
    assert result.passed, result.message()


def test_a_domain_edge_within_a_step_gets_smaller_steps_and_a_nan_gradient_fails():
    def log_forward(x):
        return np.log(x), x

    x = np.full((2, 2), 1e-7)        # log's domain ends 1e-7 away: the usual 6e-6 steps cross it
    with np.errstate(invalid="ignore", divide="ignore"):
        good = gradcheck.check_function(log_forward, lambda dout, x: dout / x, x)
        bad = gradcheck.check_function(log_forward, lambda dout, x: dout / (2 * x), x)
    assert good.passed, good.message()
    assert "a probe left the function's domain" in good.message()
    assert [c.tensor for c in bad.failures()] == ["x"]

    def power_3_2(x):
        return x ** 1.5, x             # at 0 exactly: undefined at any step below

    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match="non-finite") as info:
        gradcheck.check_function(power_3_2, lambda d, x: 1.5 * d * np.sqrt(x), np.zeros(3))
    assert any("at a point gradcheck made" in note for note in info.value.__notes__)
    # A NaN the backward computes is a wrong gradient: a failed check, not an error.
    z = _rng().normal(size=(2, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        nan = gradcheck.check_function(np.sin, lambda dout, x: dout * np.cos(x) / (x - x), z)
    assert not nan.passed
    assert "non-finite entries" in nan.message()


@pytest.mark.filterwarnings("ignore::gradcheck.HazardWarning")   # asserted in result.hazards
def test_a_forward_that_removes_a_key_or_a_model_that_adds_one_is_handled():
    def pops(x, p):
        W = p.pop("W")
        return x @ W, (x, W)

    def pops_backward(dout, cache):
        x, W = cache
        return dout @ W.T, {"W": x.T @ dout}

    p = {"W": _rng(1).normal(size=(3, 2))}
    result = gradcheck.check_function(pops, pops_backward, _rng().normal(size=(2, 3)), p)
    assert result.passed and any("removed 'W' from its argument p" in h for h in result.hazards)
    assert list(p) == ["W"]

    class AddsKey(LinearModel):
        def loss(self, X, y):
            self.params["cache"] = X
            return super().loss(X, y)

    model = AddsKey(_rng(19))
    keys = set(model.params)
    assert gradcheck.check_value_and_grad(model.loss, *_linear_data()).passed
    assert set(model.params) == keys


@pytest.mark.filterwarnings("ignore::gradcheck.HazardWarning")   # asserted in result.hazards
def test_messages_name_a_missing_gradient_and_the_upstream_gradient_written_into():
    with pytest.raises(TypeError, match=r"for 'w'` is None"):
        gradcheck.check_function(affine_forward, lambda d, c: (affine_backward(d, c)[0], None,
                                                               d.sum(0)), *_affine_args())

    def lstm_like(x):
        return np.tanh(x), x * 2, x

    def backward_writes(dh, dc, x):
        dc += dh                       # the classic in-place accumulation
        return dh * (1 - np.tanh(x) ** 2) + (dc - dh) * 2

    result = gradcheck.check_function(lstm_like, backward_writes, _rng().normal(size=(2, 3)))
    assert result.passed, result.message()
    (hazard,) = result.hazards
    assert hazard.startswith("backward_writes modified its argument dc: 6 of 6 entries changed, "
                             "the first at (0, 0)")


def test_a_backward_that_ignores_one_upstream_gradient_is_told_which():
    rng = _rng(46)
    args = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))
    bad = gradcheck.check_function(split_forward, split_backward_forgets_second_output, *args)
    for failure in bad.failures():
        assert failure.diagnosis[0].startswith(
            "analytic ≈ the gradient without output 1's term: the backward ignores its upstream "
            "gradient 'db'")


# ---------------------------------------------------------------------- threads
def _blas_threads():
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_a_check_holds_blas_and_torch_to_one_thread_and_gives_them_back():
    from threadpoolctl import threadpool_limits

    torch = pytest.importorskip("torch")
    seen = []

    def forward(x, w):
        seen.append((_blas_threads(), torch.get_num_threads()))
        return x @ w, (x, w)

    def backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout

    args = _rng(47).normal(size=(3, 4)), _rng(48).normal(size=(4, 2))
    with threadpool_limits(limits=2), TorchThreads(torch, 2):
        before = (_blas_threads(), torch.get_num_threads())
        assert gradcheck.check_function(forward, backward, *args).passed
        assert (_blas_threads(), torch.get_num_threads()) == before    # given back
        assert all(blas == [1] * len(blas) and t == 1 for blas, t in seen)
        seen.clear()
        assert gradcheck.check_function(forward, backward, *args, threads=None).passed
        assert all(entry == before for entry in seen)                     # left alone
    with pytest.raises(ValueError, match=r"`threads` must be a positive integer or None, got 0"):
        gradcheck.check_function(forward, backward, *args, threads=0)


class TorchThreads:
    """torch on ``n`` threads inside the block, as a user's session might have it."""

    def __init__(self, torch, n):
        self.torch, self.n = torch, n

    def __enter__(self):
        self.before = self.torch.get_num_threads()
        self.torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.before)
