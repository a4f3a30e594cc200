"""The public strategies draw only valid configurations, and validate their bounds."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.strategies import (
    VALUES, arrays, conv_configs, dense_configs, make_array, output_size, pool_configs,
)
from reference_impls.conv import conv2d_forward
from reference_impls.pooling import max_pool2d_forward


@given(config=conv_configs())
def test_every_conv_configuration_has_an_output_and_the_layer_accepts_it(config):
    x = np.zeros((config["n_H"], config["n_W"], config["n_C_prev"], config["m"]))
    W = np.zeros((*config["kernel"], config["n_C_prev"], config["n_C"]))
    Z, _ = conv2d_forward(x, W, np.zeros(config["n_C"]), stride=config["stride"],
                          padding=config["padding"], dilation=config["dilation"])
    assert Z.shape[2:] == (config["n_C"], config["m"]) and min(Z.shape[:2]) >= 1


@given(config=pool_configs())
def test_every_pool_configuration_has_an_output_and_the_layer_accepts_it(config):
    x = np.zeros((config["n_H"], config["n_W"], config["n_C"], config["m"]))
    A, _ = max_pool2d_forward(x, window=config["window"], stride=config["stride"],
                              padding=config["padding"])
    assert A.shape[:2] == tuple(output_size(n, f, s, p) for n, f, s, p in zip(
        x.shape[:2], config["window"], config["stride"], config["padding"]))


@settings(max_examples=20)
@given(config=dense_configs(max_units=2, max_examples=3))
def test_dense_configurations_respect_their_bounds(config):
    assert 1 <= config["n_prev"] <= 2 and 1 <= config["n"] <= 2 and 1 <= config["m"] <= 3


@given(data=st.data(), values=st.sampled_from(VALUES))
def test_arrays_are_float64_of_the_shape_and_reproducible_from_their_seed(data, values):
    x = data.draw(arrays((3, 4), values=values))
    assert x.shape == (3, 4) and x.dtype == np.float64
    if values == "constant":
        assert np.all(x == x.flat[0])
    if values == "ties":
        assert set(np.unique(x)) <= {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(make_array((2,), values, 7), make_array((2,), values, 7))


@pytest.mark.parametrize("strategy, kwargs, match", [
    (conv_configs, {"max_size": 0}, r"`max_size` must be an int >= 1, got 0"),
    (pool_configs, {"max_window": 1.5}, r"`max_window` must be an int >= 1, got 1.5"),
    (conv_configs, {"max_padding": -1}, r"`max_padding` must be an int >= 0, got -1"),
    (arrays, {"shape": (2,), "values": "uniform"}, r"`values` must be one of"),
])
def test_bad_bounds_are_named(strategy, kwargs, match):
    with pytest.raises(ValueError, match=match):
        strategy(**kwargs)
