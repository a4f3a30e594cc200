"""The failure message, line by line, as a user reads it (issue 13): its head, where the
worst entry is, what was left out, the ties, a check along a direction, a gradient of the
wrong shape or one that could not be judged, and a pass with its closest comparison.
"""

import re
import warnings

import numpy as np
import pytest

import gradcheck
from gradcheck.result import CheckResult, TensorCheck
from gradcheck.selfcheck import _distinct


class Tanh:
    """A user's tanh, its backward scaled by ``factor`` (1.1: a 10 % error)."""

    params, grads = {}, {}

    def __init__(self, factor=1.0):
        self.factor = factor

    def forward(self, x):
        self.x = x
        return np.tanh(x)

    def backward(self, dout):
        return self.factor * dout * (1 - np.tanh(self.x) ** 2)


X = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


def test_a_failure_along_a_direction_says_so_and_gives_both_projections():
    result = gradcheck.check_layer(Tanh(1.1), X, mode="fast")
    check = result.checks[0]
    assert (check.method, check.worst_index, check.mismatched) == ("fast", (), 1)
    assert (check.gradient, check.oracle, check.shape) == ("dx", "finite_differences", (3, 4))
    assert check.analytic == pytest.approx(1.1 * check.reference, rel=1e-6)
    assert check.max_abs_error == pytest.approx(abs(check.analytic - check.reference), rel=1e-12)
    assert check.max_rel_error == pytest.approx(0.1 / 1.1, rel=1e-6)
    lines = result.message().splitlines()
    assert lines[0] == "gradient check of Tanh failed: 1 of 1 comparisons over tolerance (seed=0)"
    assert lines[1] == ("dx (tensor 'x', shape (3, 4)) vs finite_differences along a random "
                        "direction (mode 'fast')")
    assert lines[2].startswith(f"  along the direction: analytic = {check.analytic:.10g}, "
                               f"numeric = {check.reference:.10g}, relative error 0.0909 ")
    assert len(lines) == 3
    assert check.to_row()["method"] == "fast" and not check.to_row()["passed"]


def test_a_pass_along_a_direction_has_no_mismatch():
    check = gradcheck.check_layer(Tanh(), X, mode="fast").checks[0]
    assert check.passed and check.mismatched == 0 and check.diagnosis == ()


def test_a_full_failure_names_the_worst_entry_and_what_was_left_out():
    mask = np.zeros(X.shape, dtype=bool)
    mask[0, :2] = True
    result = gradcheck.check_layer(Tanh(1.1), X, fd_exclude={"x": mask}, complex_step=False)
    check = result.checks[0]
    lines = result.message().splitlines()
    assert lines[1] == ("dx (tensor 'x', shape (3, 4)) vs finite_differences: 10 / 12 entries "
                        "(83.3%) over tolerance 1e-06 (2 excluded left out)")
    assert lines[2].startswith(f"  worst at index {check.worst_index}: analytic = "
                               f"{check.analytic:.10g}, numeric = {check.reference:.10g}, "
                               "relative error 0.0909 (absolute ")
    assert lines[3].startswith("  diagnosis: ")
    assert "\n" not in check.describe().split("\n")[0]


class ReLU:
    params, grads = {}, {}

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout):
        return 1.5 * dout * (self.x > 0)


def test_entries_at_kinks_are_counted_among_those_left_out():
    x = np.array([[0.0, 1.0, -1.0, 2.0], [0.0, 0.5, 0.0, -0.5]])
    mask = np.zeros(x.shape, dtype=bool)
    mask[1, 3] = True
    result = gradcheck.check_layer(ReLU(), x, fd_exclude={"x": mask}, complex_step=False)
    head = result.message().splitlines()[1]
    assert head.endswith("(1 excluded, 3 non-differentiable left out)"), head


class MaxOfPairs:
    """The larger of each pair of entries; a tie sends the gradient to both (the bug)."""

    params, grads = {}, {}

    def forward(self, x):
        self.x = x
        return x.reshape(-1, 2).max(axis=1)

    def backward(self, dout):
        pairs = self.x.reshape(-1, 2)
        return ((pairs == pairs.max(axis=1, keepdims=True)) * dout[:, None]).reshape(-1)


def test_a_tie_given_the_gradient_twice_is_named_with_its_first_entry_and_the_factor():
    x = np.array([0.5, 2.0, 1.0, 1.0, 3.0, -1.0])
    result = gradcheck.check_layer(MaxOfPairs(), x)
    check = result.checks[0]
    assert not check.passed and check.worst_index == (2,)
    notes = [d for d in check.diagnosis if d.startswith("a tie of")]
    assert len(notes) == 1
    found = re.fullmatch(
        r"a tie of 2 equal entries \(the first at \(2,\)\) that move together: their "
        r"gradients sum to (\S+), moving them together changes J at (\S+) — 2× the "
        r"derivative: the gradient of a tie sent to every tied entry instead of one "
        r"\(mask = window == max\?\)", notes[0])
    assert found, notes[0]
    total, along = float(found[1]), float(found[2])
    assert total == pytest.approx(2 * along, rel=1e-6) and abs(along) > 0.1
    assert check.diagnosis[0].startswith("1 tie(s) whose gradients do not add up")


def test_a_tie_whose_sum_is_off_by_a_non_integer_factor_gets_no_count():
    class HalfAndMore(MaxOfPairs):
        def backward(self, dout):
            return 0.75 * super().backward(dout)

    x = np.array([0.5, 2.0, 1.0, 1.0])
    check = gradcheck.check_layer(HalfAndMore(), x).checks[0]
    notes = [d for d in check.diagnosis if d.startswith("a tie of")]
    found = re.fullmatch(r"a tie of 2 equal entries \(the first at \(2,\)\) that move "
                         r"together: their gradients sum to (\S+), moving them together "
                         r"changes J at (\S+)", notes[0])
    assert found, notes[0]
    assert float(found[1]) == pytest.approx(1.5 * float(found[2]), rel=1e-6)


def _check(**changes):
    fields = dict(tensor="W", gradient="dW", oracle="torch", shape=(2, 3), max_rel_error=0.5,
                  max_abs_error=0.25, tolerance=1e-10, floor=1e-3, mismatched=6,
                  worst_index=(1, 2), analytic=0.75, reference=0.5)
    fields.update(changes)
    return TensorCheck(**fields)


def test_describe_for_a_gradient_of_the_wrong_shape_and_one_not_judged():
    unmatched = _check(shape_error="the gradient has shape (3,)", max_rel_error=float("inf"),
                       diagnosis=("no reshape can match them",))
    assert unmatched.describe() == ("dW (tensor 'W', shape (2, 3)) vs torch: a gradient of the "
                                    "wrong shape\n  diagnosis: no reshape can match them")
    reshaped = _check(shape_error="the gradient has shape (3, 2)", diagnosis=("after a reshape",))
    assert reshaped.describe().splitlines() == [
        "dW (tensor 'W', shape (2, 3)) vs torch: a gradient of the wrong shape",
        "  worst at index (1, 2): analytic = 0.75, torch = 0.5, relative error 0.5 (absolute "
        "0.25; relative-error floor 0.001)",
        "  diagnosis: after a reshape"]
    unjudged = _check(unjudged="outputs of 1e12", oracle="finite_differences", mismatched=0)
    assert unjudged.describe().splitlines() == [
        "dW (tensor 'W', shape (2, 3)) vs finite_differences: could not be judged",
        "  worst at index (1, 2): analytic = 0.75, numeric = 0.5, relative error 0.5 (absolute "
        "0.25; relative-error floor 0.001)",
        "  not judged: outputs of 1e12"]
    assert not unjudged.passed and not reshaped.passed


def test_describe_of_an_empty_tensor_and_an_unknown_oracle():
    empty = _check(shape=(0,), mismatched=0, oracle="jax")
    head, where = empty.describe().splitlines()
    assert head.startswith("dW (tensor 'W', shape (0,)) vs jax: 0 / ")
    assert head.endswith(" entries (0.0%) over tolerance 1e-10")
    assert ", jax = 0.5," in where
    one = _check(shape=(1,), mismatched=1).describe().splitlines()[0]
    assert one == ("dW (tensor 'W', shape (1,)) vs torch: 1 / 1 entries (100.0%) over "
                   "tolerance 1e-10")


def test_a_pass_names_the_comparison_closest_to_its_tolerance():
    checks = (_check(max_rel_error=1e-11, mismatched=0, gradient="dx"),
              _check(max_rel_error=5e-7, tolerance=1e-6, mismatched=0,
                     oracle="finite_differences"),
              _check(max_rel_error=9e-11, tolerance=1e-10, mismatched=0, gradient="db"))
    result = CheckResult(layer="Dense", checks=checks, seed=3)
    # Closest relative to its own tolerance (0.9 of it), not the largest error.
    assert result.message() == (
        "gradient check of Dense passed (3 comparisons; closest to its tolerance: db vs "
        "torch, relative error 9.00e-11 <= 1e-10)")
    hazardous = CheckResult(layer="Dense", checks=checks, hazards=("wrote x", "wrote dout"),
                            notes=("tied",))
    assert hazardous.message().splitlines() == [
        "gradient check of Dense passed (3 comparisons; closest to its tolerance: db vs "
        "torch, relative error 9.00e-11 <= 1e-10); the gradients are right, but "
        "2 hazard(s) to the caller's data (strict=True fails them):",
        "hazard: wrote x", "hazard: wrote dout", "note: tied"]
    assert CheckResult(layer="Empty").message() == "gradient check of Empty passed (0 comparisons)"


def test_a_failure_lists_self_checks_hazards_notes_then_each_failed_comparison():
    failed = _check()
    result = CheckResult(layer="Dense", checks=(_check(max_rel_error=0.0, mismatched=0), failed),
                         problems=("backward is not linear",), hazards=("wrote x",),
                         strict=True, notes=("tied",), seed=7)
    lines = result.message().splitlines()
    assert lines[:4] == [
        "gradient check of Dense failed: 1 of 2 comparisons over tolerance, 1 self-check(s) "
        "failed, 1 hazard(s) (strict) (seed=7)",
        "self-check: backward is not linear", "hazard: wrote x", "note: tied"]
    assert lines[4:] == failed.describe().splitlines()
    with pytest.raises(gradcheck.GradientCheckError, match="self-check: backward is not linear"):
        result.raise_if_failed()
    assert result.failures() == (failed,)


def test_rows_carry_the_layer_the_calls_and_the_self_checks():
    result = CheckResult(layer="Dense", checks=(_check(),), forward_calls=12, seed=2,
                         problems=("nondeterministic",), hazards=("wrote x",))
    (row,) = result.to_rows()
    assert (row["layer"], row["forward_calls"], row["seed"]) == ("Dense", 12, 2)
    assert row["self_checks"] == "nondeterministic; hazard: wrote x"
    assert (row["shape"], row["size"], row["passed"]) == ("2x3", 6, False)
    assert _check(shape=()).to_row()["shape"] == "scalar"


class BigReLU:
    """A ReLU of 100,001 entries (too many to check one at a time after a kink)."""

    params, grads = {}, {}

    def __init__(self, factor=1.0):
        self.factor = factor

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout):
        return self.factor * dout * (self.x > 0)


def _big(every):
    x = np.random.default_rng(0).normal(size=100_001)
    x[::every] = 0.0
    return x


def test_outputs_bent_by_kinks_are_left_out_of_a_large_check_along_a_direction():
    x = _big(10)
    right = gradcheck.check_layer(BigReLU(), x, mode="fast")
    check = right.checks[0]
    assert right.passed, right.message()
    left_out = int(check.plan.split(" output")[0].split("(")[-1])
    assert 10_001 <= left_out <= 10_010, check.plan
    assert check.plan.startswith(
        f"along one random direction (mode='fast') ({left_out} outputs that a kink bends "
        "within the step left out of G, and the backward called again without them)")
    wrong = gradcheck.check_layer(BigReLU(3.0), x, mode="fast")
    assert not wrong.passed
    assert wrong.checks[0].max_rel_error > 0.1


def test_a_large_input_mostly_at_kinks_is_not_judged_along_a_direction_and_says_why():
    result = gradcheck.check_layer(BigReLU(), _big(2), mode="fast")
    check = result.checks[0]
    assert not check.passed and check.method == "fast"
    assert check.diagnosis == (
        "the function has a kink along the random direction (ReLU at 0, ties?) and the tensor "
        "is too large to check entry by entry (> 100000); check a smaller input with "
        "mode='full', or make the function complex-safe",)
    assert "(1 / 1 entries" not in result.message()


def test_describe_names_every_kind_of_entry_left_out_of_the_error():
    left_out = _check(excluded=1, nondifferentiable=2, tied=3).describe().splitlines()[0]
    assert left_out == (
        "dW (tensor 'W', shape (2, 3)) vs torch: 6 / 6 entries (100.0%) over tolerance 1e-10 "
        "(1 excluded, 2 non-differentiable, 3 tied (judged by their tie's sum) left out)")


@pytest.mark.parametrize("a, b, shown", [
    (1.2345678, 2.0, "1.23457 vs 2"),                        # 6 digits tell them apart
    (3.0, 3.0000000031, "3 vs 3.000000003"),                 # 10 digits do
    (1.0, 1.0 + 2 ** -52, "1 vs 1.0000000000000002"),        # only 17 do
])
def test_a_nondeterministic_forward_is_shown_with_the_fewest_digits_that_differ(a, b, shown):
    assert _distinct(a, b).startswith(shown + " (a difference of ")


class _Double:
    """y = 2x, written the plain way."""

    params, grads = {}, {}

    def forward(self, x):
        return 2.0 * x

    def backward(self, dout):
        return 2.0 * dout


def test_a_dout_of_the_wrong_shape_names_the_one_output_it_should_match():
    with pytest.raises(ValueError) as info:
        gradcheck.check_layer(_Double(), np.ones((4, 2)), dout=np.ones(3))
    assert str(info.value) == ("`dout.shape` (3,) must equal the shape of layer.forward(x), "
                               "(4, 2)")
