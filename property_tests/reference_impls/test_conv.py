"""Conv2D against finite differences and torch autograd, over randomized valid configurations."""

import numpy as np
import pytest
from hypothesis import given

from property_tests.strategies import conv_cases
from property_tests.oracles import check_every_oracle
from reference_impls.conv import Conv2D, conv2d_forward


@given(case=conv_cases())
def test_conv2d_gradients_match_finite_differences_and_torch(check_gradients, case):
    result = check_every_oracle(check_gradients, case.layer, case.x, config=case.config)
    assert set(result.max_rel_error) == {"x", "W", "b"}


@pytest.mark.parametrize(
    "x_shape, W_shape, options, match",
    [
        ((3, 3, 1, 1), (4, 4, 1, 1), {}, r"kernel.*larger than the padded input"),
        ((5, 5, 1, 1), (3, 3, 1, 1), {"stride": 0}, r"`stride` must be >= 1 per axis, got \(0, 0\)"),
        ((5, 5, 1, 1), (3, 3, 1, 1), {"padding": -1}, r"`padding` must be >= 0 per axis, got \(-1, -1\)"),
        ((5, 5, 2, 1), (3, 3, 3, 1), {}, r"`A_prev.shape\[2\]` \(2\) must match `W.shape\[2\]` \(3\)"),
        ((5, 5, 1, 1), (3, 3, 1, 1), {"dilation": (1, 0)}, r"`dilation` must be >= 1 per axis, got \(1, 0\)"),
        ((5, 5, 1, 1), (3, 3, 1, 1), {"stride": 2, "padding": "same"}, r"`padding`='same'.*`stride`"),
    ],
    ids=["kernel-too-large", "stride-0", "negative-padding", "channels", "dilation-0",
         "same-with-stride"],
)
def test_conv2d_rejects_invalid_configurations_naming_the_argument(x_shape, W_shape, options, match):
    with pytest.raises(ValueError, match=match):
        conv2d_forward(np.zeros(x_shape), np.zeros(W_shape), np.zeros(W_shape[3]), **options)


def test_a_conv_layer_with_a_mismatched_channel_count_fails_at_forward():
    layer = Conv2D(np.zeros((3, 3, 3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"`A_prev.shape\[2\]` \(1\) must match `W.shape\[2\]` \(3\)"):
        layer.forward(np.zeros((5, 5, 1, 1)))
