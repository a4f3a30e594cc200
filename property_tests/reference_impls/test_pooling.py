"""Max and average pooling against finite differences and torch autograd, including
overlapping windows, padding and exact ties (compared with torch's choice only)."""

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import gradcheck
from property_tests.strategies import max_pool_ties, pool_cases
from property_tests.oracles import check_every_oracle
from property_tests.torch_twins import torch_twin
from reference_impls.pooling import MaxPool2D, avg_pool2d_forward, max_pool2d_forward


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(data=st.data())
def test_pooling_gradients_match_finite_differences_and_torch(check_gradients, kind, data):
    case = data.draw(pool_cases(kinds=(kind,)), label="case")
    exclude = None
    if kind == "max":
        layer = case.layer
        exclude = {"x": max_pool_ties(case.x, layer.window, layer.stride, layer.padding)}
    result = check_every_oracle(check_gradients, case.layer, case.x, config=case.config, fd_exclude=exclude)
    torch_check = next(c for c in result.checks if c.oracle == "torch")
    if kind == "max":
        # The tie rule is a choice, not a rounding: ours and torch's must agree exactly.
        assert torch_check.max_abs_error == 0.0


def test_the_strategy_draws_exact_ties_in_overlapping_windows():
    def tied_and_overlapping(case):
        layer = case.layer
        overlapping = any(s < f for s, f in zip(layer.stride, layer.window))
        return overlapping and max_pool_ties(case.x, layer.window, layer.stride,
                                             layer.padding).any()

    case = find(pool_cases(kinds=("max",)), tied_and_overlapping,
                settings=settings(database=None, derandomize=True))
    assert tied_and_overlapping(case)


def test_tied_windows_are_left_out_of_finite_differences_and_agree_with_torch():
    x = np.zeros((4, 4, 1, 1))            # every window of a constant input is one tie
    layer = MaxPool2D(2, stride=1)
    result = gradcheck.check_layer(layer, x, torch_fn=torch_twin(layer),
                                   fd_exclude={"x": max_pool_ties(x, (2, 2), (1, 1), (0, 0))})
    assert result.passed, result.message()
    fd = next(c for c in result.checks if c.oracle != "torch")
    assert fd.excluded == 16
    # Without the exclusion: the complex step follows the layer's own tie rule
    # (ties stay ties when only imaginary parts move), so the check passes.
    assert gradcheck.check_layer(layer, x).passed


def test_central_differences_judge_ties_by_their_sums():
    x = np.zeros((4, 4, 1, 1))
    separate = gradcheck.check_layer(MaxPool2D(2), x, complex_step=False)
    assert separate.passed, separate.message()
    assert separate.checks[0].tied == 16 and separate.nondifferentiable == {"x": 0}
    # Overlapping windows that tie give an entry the partial sum of the upstream
    # gradients of the windows it wins: outside the one-sided derivatives along
    # its axis, but the sum over the tie is what moving it together changes.
    overlapping = gradcheck.check_layer(MaxPool2D(2, stride=1), x, complex_step=False)
    assert overlapping.passed, overlapping.message()
    assert overlapping.checks[0].tied > 0


@pytest.mark.parametrize(
    "forward, options, match",
    [
        (max_pool2d_forward, {"window": 2, "stride": 0}, r"`stride`.*\(0, 0\)"),
        (max_pool2d_forward, {"window": 2, "padding": -1}, r"`padding`"),
        (avg_pool2d_forward, {"window": 2, "padding": 2}, r"`padding` \(2, 2\)"),
        (avg_pool2d_forward, {"window": 5}, r"`window` \(5, 5\) is larger than the padded input \(3, 3\)"),
        (max_pool2d_forward, {"window": 0}, r"`window`"),
    ],
    ids=["stride-0", "negative-padding", "padding-over-half", "window-too-large", "window-0"],
)
def test_pooling_rejects_invalid_configurations_naming_the_argument(forward, options, match):
    with pytest.raises(ValueError, match=match):
        forward(np.zeros((3, 3, 1, 1)), **options)
