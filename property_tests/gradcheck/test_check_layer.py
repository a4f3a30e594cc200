"""check_layer: it catches broken layers, says where, rejects bad input, touches nothing."""

import re

import numpy as np
import pytest

import gradcheck
from property_tests.torch_twins import torch_twin
from reference_impls import Dense, ReLU
from reference_impls.dense import dense_backward


def square_dense(seed=0, n=4, m=4):
    """A dense layer with n inputs, n units and an input of m examples."""
    rng = np.random.default_rng(seed)
    return Dense(rng.normal(size=(n, n)), rng.normal(size=(n, 1))), rng.normal(size=(n, m))


class BiasSummedOverExamplesAxis(Dense):
    """db summed over axis 0 (the units) instead of axis 1 (the examples)."""

    def backward(self, dout):
        dA_prev = super().backward(dout)
        self.grads["b"] = np.sum(dout, axis=0).reshape(-1, 1)   # right shape only when n == m
        return dA_prev


class DoubledWeightGradient(Dense):
    """dW scaled by 2, as from a forgotten 1/2 in a squared loss."""

    def backward(self, dout):
        dA_prev = super().backward(dout)
        self.grads["W"] = 2.0 * self.grads["W"]
        return dA_prev


class MissingTranspose(Dense):
    """dA_prev = W dZ instead of Wᵀ dZ (eq. 8): shape-correct for a square W."""

    def backward(self, dout):
        super().backward(dout)
        return self.params["W"] @ dout


BROKEN = [
    (BiasSummedOverExamplesAxis, "b", "db"),
    (DoubledWeightGradient, "W", "dW"),
    (MissingTranspose, "x", "dA_prev"),
]


NUMERIC = [(False, "finite_differences"), (True, "complex_step")]


@pytest.mark.parametrize("complex_step, oracle", NUMERIC)
@pytest.mark.parametrize("broken, tensor, gradient", BROKEN)
def test_a_broken_layer_fails_and_the_message_names_the_tensor_and_worst_entry(
        broken, tensor, gradient, complex_step, oracle):
    good, x = square_dense()
    layer = broken(good.params["W"], good.params["b"])
    result = gradcheck.check_layer(layer, x, complex_step=complex_step)
    assert not result.passed
    assert result.max_rel_error[tensor] > 1e-2
    assert [c.tensor for c in result.failures()] == [tensor]   # the bug is localized
    worst = result.failures()[0]
    message = result.message()
    assert f"{gradient} (tensor {tensor!r}" in message
    assert f"worst at index {worst.worst_index}" in message
    assert f"analytic = {worst.analytic:.10g}" in message
    assert f"numeric = {worst.reference:.10g}" in message
    assert f"vs {oracle}" in message and f"tolerance {worst.tolerance:.0e}" in message
    assert worst.analytic != pytest.approx(worst.reference, rel=1e-3)


@pytest.mark.parametrize("broken, tensor, gradient", BROKEN)
def test_the_assert_form_raises_an_assertion_error_naming_the_tensor(broken, tensor, gradient):
    good, x = square_dense(seed=1)
    layer = broken(good.params["W"], good.params["b"])
    with pytest.raises(AssertionError, match=re.escape(f"{gradient} (tensor {tensor!r}")) as info:
        gradcheck.assert_layer_gradients(layer, x)
    assert isinstance(info.value, gradcheck.GradientCheckError)


@pytest.mark.parametrize("complex_step, oracle", NUMERIC)
@pytest.mark.parametrize("broken, tensor, gradient", BROKEN)
def test_the_torch_oracle_catches_the_same_bugs(broken, tensor, gradient, complex_step, oracle):
    good, x = square_dense(seed=2)
    layer = broken(good.params["W"], good.params["b"])
    result = gradcheck.check_layer(layer, x, torch_fn=torch_twin(good), complex_step=complex_step)
    failed = {(c.tensor, c.oracle) for c in result.failures()}
    assert failed == {(tensor, oracle), (tensor, "torch")}


@pytest.mark.parametrize("complex_step, oracle, per_entry, accuracy",
                         [(False, "finite_differences", 2, 1e-8), (True, "complex_step", 1, 1e-14)])
def test_a_correct_layer_passes_with_every_tensor_and_oracle_reported(
        complex_step, oracle, per_entry, accuracy):
    layer, x = square_dense(seed=3, n=3, m=5)
    result = gradcheck.assert_layer_gradients(layer, x, torch_fn=torch_twin(layer),
                                              complex_step=complex_step, coloring=False)
    assert result.passed and not result.problems
    assert set(result.max_rel_error) == {"x", "W", "b"}
    assert {(c.tensor, c.oracle) for c in result.checks} == {
        (t, o) for t in ("x", "W", "b") for o in (oracle, "torch")}
    assert max(result.max_rel_error.values()) < accuracy
    # Six forwards for the output and the self-checks (x and params untouched,
    # deterministic, one before each of three backward calls), then the
    # central difference's two, or the complex step's one, per entry.
    entries = x.size + layer.params["W"].size + layer.params["b"].size
    assert result.forward_calls == 6 + per_entry * entries
    assert "passed" in result.message()


def test_the_same_seed_reproduces_the_check_and_dout_overrides_it():
    layer, x = square_dense(seed=4)
    assert gradcheck.check_layer(layer, x, seed=7) == gradcheck.check_layer(layer, x, seed=7)
    dout = np.ones((4, 4))
    a = gradcheck.check_layer(layer, x, seed=1, dout=dout)
    b = gradcheck.check_layer(layer, x, seed=2, dout=dout)
    assert a.checks == b.checks


def test_a_random_upstream_gradient_sees_what_a_constant_one_would_miss():
    class MeanOverUnits(Dense):
        """dW from dZ averaged over the units: right only when all units get the same dZ."""

        def backward(self, dout):
            dA = super().backward(dout)
            flat = np.broadcast_to(dout.mean(axis=0, keepdims=True), dout.shape).copy()
            self.grads["W"] = dense_backward(flat, self._cache)[1]
            return dA

    good, x = square_dense(seed=5)
    layer = MeanOverUnits(good.params["W"], good.params["b"])
    assert gradcheck.check_layer(layer, x, dout=np.ones((4, 4))).passed
    assert not gradcheck.check_layer(layer, x).passed


# ------------------------------------------------------------------ bad input
class NoGradForB(Dense):
    def backward(self, dout):
        dA = super().backward(dout)
        del self.grads["b"]
        return dA


class TransposedGradW(Dense):
    def backward(self, dout):
        dA = super().backward(dout)
        self.grads["W"] = self.grads["W"].T
        return dA


class WrongShapeDx(Dense):
    def backward(self, dout):
        return super().backward(dout)[:, :1]


class NaNOutput(Dense):
    def forward(self, x):
        Z = super().forward(x)
        Z[0, 0] = np.nan
        return Z


class IntOutput(Dense):
    def forward(self, x):
        return super().forward(x).astype(np.int64)


def _dense(cls=Dense, n=3, n_prev=2, m=4, seed=0):
    rng = np.random.default_rng(seed)
    return cls(rng.normal(size=(n, n_prev)), rng.normal(size=(n, 1))), rng.normal(size=(n_prev, m))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: (_dense()[0], np.zeros((5, 4))), ValueError,
         r"`A_prev.shape\[0\]` \(5\) must match `W.shape\[1\]` \(2\)"),
        (lambda: _dense(NoGradForB), ValueError, r"`layer.grads` is missing 'b'"),
        (lambda: _dense(NaNOutput), ValueError,
         r"`layer.forward\(x\)` has 1 non-finite value\(s\).*index \(0, 0\): nan"),
        (lambda: (_dense()[0], np.full((2, 4), np.inf)), ValueError,
         r"`x` has 8 non-finite value\(s\)"),
        (lambda: (_dense()[0], np.zeros((2, 4), dtype=np.int64)), TypeError,
         r"`x` has dtype int64"),
        (lambda: (_dense()[0], [[0.0] * 4] * 2), TypeError,
         r"`x` must be a numpy.ndarray, got list"),
        (lambda: (object(), np.zeros((2, 4))), TypeError,
         r"`layer` must have a callable `forward`"),
        (lambda: _dense(IntOutput), TypeError, r"`layer.forward\(x\)` gave dtype int64"),
    ],
    ids=["x-does-not-fit", "grad-missing", "nan-output", "inf-input", "int-input", "list-input", "not-a-layer",
         "int-output"],
)
def test_bad_input_raises_a_clear_error_naming_the_argument(make, error, match):
    layer, x = make()
    with pytest.raises(error, match=match):
        gradcheck.check_layer(layer, x)


@pytest.mark.parametrize("cls, tensor, expected", [
    (TransposedGradW, "W", "the gradient has shape (2, 3), the tensor (3, 2)"),
    (WrongShapeDx, "x", "the gradient has shape (2, 1) (2 entries), the tensor (2, 4) (8)"),
])
def test_a_gradient_of_the_wrong_shape_is_a_failed_check_that_says_so(cls, tensor, expected):
    layer, x = _dense(cls)
    result = gradcheck.check_layer(layer, x)
    assert not result.passed
    (failure,) = result.failures()
    assert failure.tensor == tensor and failure.shape_error.startswith(expected)
    assert expected in result.message()


def test_a_gradient_with_the_right_values_in_the_wrong_shape_still_fails_and_says_so():
    class FlatBias(Dense):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["b"] = self.grads["b"].ravel()     # (3,) for a (3, 1) bias
            return dx

    result = gradcheck.check_layer(*_dense(FlatBias))
    (failure,) = result.failures()
    assert failure.tensor == "b" and failure.max_rel_error < 1e-10
    assert "after a reshape the values match" in failure.shape_error


def test_a_parameter_of_the_wrong_dtype_is_named():
    layer, x = _dense()
    layer.params["W"] = layer.params["W"].astype(np.int32)
    with pytest.raises(TypeError, match=r"`layer.params\['W'\]` has dtype int32"):
        gradcheck.check_layer(layer, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_a_low_precision_layer_is_checked_with_its_own_tolerances_and_a_warning(dtype):
    rng = np.random.default_rng(7)
    W, b, x = (rng.normal(size=s).astype(dtype) for s in ((3, 4), (3, 1), (4, 5)))
    with pytest.warns(gradcheck.PrecisionWarning, match=np.dtype(dtype).name):
        good = gradcheck.check_layer(Dense(W, b), x)
    assert good.passed, good.message()
    assert good.dtype == np.dtype(dtype).name
    assert {c.tolerance for c in good.checks} == {gradcheck.PRECISIONS[good.dtype].fd_tolerance}
    with pytest.warns(gradcheck.PrecisionWarning):
        bad = gradcheck.check_layer(DoubledWeightGradient(W, b), x)
    assert [c.tensor for c in bad.failures()] == ["W"]


@pytest.mark.parametrize("option, value", [("step", 0.0), ("step", -1e-6),
                                           ("fd_tolerance", float("nan")), ("torch_tolerance", 0)])
def test_bad_options_are_named_with_their_value(option, value):
    layer, x = _dense()
    with pytest.raises(ValueError, match=rf"`{option}` must be a positive finite number, got"):
        gradcheck.check_layer(layer, x, **{option: value})


def test_a_dout_of_the_wrong_shape_is_named():
    layer, x = _dense()
    with pytest.raises(ValueError, match=r"`dout.shape` \(4, 3\) must equal .* \(3, 4\)"):
        gradcheck.check_layer(layer, x, dout=np.ones((4, 3)))


def test_a_torch_twin_of_the_wrong_shape_is_named():
    layer, x = _dense()
    with pytest.raises(ValueError, match=r"`torch_fn` returned shape \(4, 3\)"):
        gradcheck.check_layer(layer, x, torch_fn=lambda x, p: (p["W"] @ x + p["b"]).T)


def test_an_error_inside_the_layer_says_where_it_was_raised():
    layer, _ = _dense()
    with pytest.raises(ValueError) as info:
        gradcheck.check_layer(layer, np.zeros((5, 4)))
    assert any("layer.forward(x)" in note for note in info.value.__notes__)


# ------------------------------------------------------------- no side effects
def _snapshot(layer, x):
    return [x.copy(), *(v.copy() for v in layer.params.values())]


def _unchanged(before, layer, x):
    return all(np.array_equal(a, b) and a.tobytes() == b.tobytes()
               for a, b in zip(before, [x, *layer.params.values()]))


@pytest.mark.parametrize("cls", [Dense, DoubledWeightGradient])
def test_the_callers_arrays_are_left_exactly_as_they_were(cls):
    # Values like 0.1 and 1/3 do not survive v + h - h in float64: restoring
    # means writing the original back, which the bytes comparison checks.
    layer, x = _dense(cls)
    layer.params["W"][0, 0], x[0, 0] = 0.1, 1.0 / 3.0
    before = _snapshot(layer, x)
    params = dict(layer.params)
    gradcheck.check_layer(layer, x, torch_fn=torch_twin(_dense()[0]))
    assert _unchanged(before, layer, x)
    assert all(layer.params[k] is params[k] for k in params)   # same array objects


def test_parameters_are_restored_when_the_layer_raises_midway():
    class FailsLater(Dense):
        calls = 0

        def forward(self, x):
            FailsLater.calls += 1
            if FailsLater.calls == 9:
                raise RuntimeError("boom")
            return super().forward(x)

    layer, x = _dense(FailsLater)
    before = _snapshot(layer, x)
    with pytest.raises(RuntimeError, match="boom"):
        gradcheck.check_layer(layer, x)
    assert _unchanged(before, layer, x)


def test_a_layer_that_writes_into_its_parameters_gets_them_back():
    class Drifts(Dense):
        def forward(self, x):
            self.params["b"] += 1.0
            return super().forward(x)

    layer, x = _dense(Drifts)
    before = _snapshot(layer, x)
    gradcheck.check_layer(layer, x)
    assert _unchanged(before, layer, x)


@pytest.mark.parametrize("complex_step", [False, True])
def test_relu_exactly_at_its_kink_passes_and_is_reported_non_differentiable(complex_step):
    x = np.array([[0.0, 1.0], [-1.0, 2.0], [0.0, 0.0]])
    result = gradcheck.check_layer(ReLU(), x, complex_step=complex_step)
    assert result.passed, result.message()
    if not complex_step:   # the complex step follows the branch the forward takes: no kink seen
        assert result.nondifferentiable == {"x": 3}


class ReLUWrongAtZero(ReLU):
    """Gradient 2·dout at exactly 0: outside [0, dout], no valid subgradient."""

    def backward(self, dout):
        return np.where(self._cache == 0, 2.0, 1.0 * (self._cache > 0)) * dout


def test_a_wrong_gradient_at_a_kink_still_fails():
    x = np.array([[0.0, 1.0], [-1.0, 2.0]])
    result = gradcheck.check_layer(ReLUWrongAtZero(), x, complex_step=False)
    (failure,) = result.failures()
    assert failure.worst_index == (0, 0) and failure.nondifferentiable == 0


def test_entries_excluded_from_finite_differences_are_counted_and_still_checked_by_torch():
    x = np.array([[0.0, 1.0], [-1.0, 2.0]])
    kink = x == 0
    result = gradcheck.check_layer(ReLU(), x, fd_exclude={"x": kink}, torch_fn=torch_twin(ReLU()),
                                   complex_step=False)
    assert result.passed, result.message()
    by_oracle = {c.oracle: c for c in result.checks}
    assert by_oracle["finite_differences"].excluded == 1
    assert by_oracle["torch"].excluded == 0 and by_oracle["torch"].max_rel_error == 0.0


def test_an_excluded_entry_hides_nothing_else():
    good, x = square_dense(seed=6)
    layer = DoubledWeightGradient(good.params["W"], good.params["b"])
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = True
    result = gradcheck.check_layer(layer, x, fd_exclude={"W": mask}, complex_step=False)
    (failure,) = result.failures()
    assert failure.tensor == "W" and failure.excluded == 1 and failure.mismatched == 15
    assert "(1 excluded left out)" in result.message()


@pytest.mark.parametrize("fd_exclude, error, match", [
    ({"y": np.zeros((2, 4), bool)}, ValueError,
     r"`fd_exclude` has key 'y', which names no tensor .* \['x', 'W', 'b'\]"),
    ({"x": np.zeros((4, 2), bool)}, ValueError,
     r"`fd_exclude\['x'\]` must be a boolean array of shape \(2, 4\) \(tensor 'x'\), got "
     r"shape \(4, 2\)"),
    ({"x": np.zeros((2, 4))}, TypeError,
     r"`fd_exclude\['x'\]` has dtype float64; it must be a bool array"),
])
def test_a_bad_exclusion_mask_is_named(fd_exclude, error, match):
    layer, x = _dense()
    with pytest.raises(error, match=match):
        gradcheck.check_layer(layer, x, fd_exclude=fd_exclude)


# ------------------------------------------------------------------ tied weights
class TiedLinear:
    """y = W_a x + W_b x with W_b the same memory as W_a (or its transpose, for square W)."""

    def __init__(self, W, tie):
        self.params = {"W_a": W, "W_b": tie(W)}
        self.grads = {}

    def forward(self, x):
        self.x = x
        return self.params["W_a"] @ x + self.params["W_b"] @ x

    def backward(self, dout):
        self.grads = {"W_a": dout @ self.x.T, "W_b": dout @ self.x.T}
        return (self.params["W_a"] + self.params["W_b"]).T @ dout


@pytest.mark.parametrize("tie", [lambda W: W, lambda W: W.T], ids=["same-array", "transpose"])
@pytest.mark.parametrize("complex_step", [False, True])
def test_tied_weights_are_checked_as_the_sum_of_their_gradients(tie, complex_step):
    rng = np.random.default_rng(30)
    W = rng.normal(size=(3, 3))
    before = W.copy()
    result = gradcheck.check_layer(TiedLinear(W, tie), rng.normal(size=(3, 4)),
                                   complex_step=complex_step)
    assert result.passed, result.message()
    assert [(c.tensor, c.gradient) for c in result.checks] == [("x", "dx"), ("W_a", "dW_a + dW_b")]
    assert "tied weights" in result.notes[0] and "note: " in result.message()
    assert np.array_equal(W, before)
    if complex_step:      # a complex copy would leave the tie real: said, and not done
        assert ("complex_step=True was not followed: tied tensors are differentiated by "
                "central differences, which move every tie") in result.notes


def test_a_wrong_share_of_tied_weights_fails_and_torch_sees_the_sum_too():
    torch = pytest.importorskip("torch")

    class DropsOneShare(TiedLinear):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["W_b"] = 0 * self.grads["W_b"]
            return dx

    rng = np.random.default_rng(31)
    W, x = rng.normal(size=(3, 3)), rng.normal(size=(3, 4))
    twin = lambda x, p: p["W_a"] @ x + p["W_b"] @ x                      # noqa: E731
    good = gradcheck.check_layer(TiedLinear(W, lambda W: W.T), x, torch_fn=twin)
    assert good.passed, good.message()
    bad = gradcheck.check_layer(DropsOneShare(W, lambda W: W.T), x, torch_fn=twin)
    assert {(c.tensor, c.oracle) for c in bad.failures()} == {("W_a", "finite_differences"),
                                                              ("W_a", "torch")}


def test_params_that_share_only_part_of_their_memory_are_refused_by_name():
    W = np.random.default_rng(32).normal(size=(3, 3))
    layer = TiedLinear(W, lambda W: W)
    layer.params["W_b"] = W[:, :2]
    with pytest.raises(ValueError, match=r"`layer.params\['W_b'\]` shares part of its memory "
                                         r"with `layer.params\['W_a'\]`"):
        gradcheck.check_layer(layer, np.ones((3, 2)))


@pytest.mark.filterwarnings("error::gradcheck.GroupingWarning")   # nor a false grouping alarm
@pytest.mark.parametrize("complex_step", [False, True])
def test_a_float16_input_to_a_float64_layer_is_moved_by_steps_it_can_hold(complex_step):
    # 6e-6 is below float16's spacing (~1e-3 at 1): such a step rounds to nothing,
    # and a central difference would divide 0 by 0. Steps are at least 8 spacings.
    rng = np.random.default_rng(33)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 1))
    x = rng.normal(size=(4, 5)).astype(np.float16)
    good = gradcheck.check_layer(Dense(W, b), x, complex_step=complex_step)
    assert good.passed, good.message()
    assert good.dtype == "float64" and max(good.max_rel_error.values()) < 1e-8
    bad = gradcheck.check_layer(DoubledWeightGradient(W, b), x, complex_step=complex_step)
    assert [c.tensor for c in bad.failures()] == ["W"]
