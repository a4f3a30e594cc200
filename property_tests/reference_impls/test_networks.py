"""Whole networks: the chain of section 2.5 against finite differences and torch."""

import numpy as np
import pytest
from hypothesis import given

from property_tests.strategies import cnn_cases, mlp_cases
from property_tests.oracles import check_every_oracle
from reference_impls import Dense, ReLU, Sequential, mlp
from reference_impls.networks import Flatten, cnn


@given(case=mlp_cases())
def test_mlp_gradients_match_finite_differences_and_torch(check_gradients, case):
    result = check_every_oracle(check_gradients, case.layer, case.x, config=case.config)
    depth = len(case.config["activations"])
    assert set(result.max_rel_error) == {"x"} | {f"{k}{l}" for l in range(1, depth + 1)
                                                 for k in "Wb"}


def test_mlp_names_parameters_by_layer_as_the_derivation():
    rng = np.random.default_rng(0)
    net = mlp([4, 3, 2], ["relu", "identity"], "mse", np.zeros((2, 5)), rng=rng)
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    assert net.params["W1"].shape == (3, 4) and net.params["b2"].shape == (2, 1)


def test_sequential_sees_parameters_replaced_in_its_dict():
    rng = np.random.default_rng(1)
    net = Sequential([Dense(rng.normal(size=(2, 2)), np.zeros((2, 1))), ReLU()])
    x = rng.normal(size=(2, 3))
    net.params["W1"] = np.zeros((2, 2))
    np.testing.assert_array_equal(net.forward(x), 0.0)


@pytest.mark.parametrize(
    "sizes, activations, loss, match",
    [
        ([4], [], "mse", r"`layer_sizes` needs at least two positive widths, got \[4\]"),
        ([4, 0], ["relu"], "mse", r"`layer_sizes`.*got \[4, 0\]"),
        ([4, 2], ["relu", "tanh"], "mse", r"`activations` needs one name per layer \(1\)"),
        ([4, 2], ["swish"], "mse", r"`activations` has unknown names \['swish'\]"),
        ([4, 2], ["relu"], "hinge", r"`loss` must be one of .*got 'hinge'"),
    ],
)
def test_mlp_rejects_bad_configurations(sizes, activations, loss, match):
    with pytest.raises(ValueError, match=match):
        mlp(sizes, activations, loss, np.zeros((2, 3)), rng=np.random.default_rng(0))


@given(case=cnn_cases())
def test_cnn_gradients_match_finite_differences_and_torch(check_gradients, case):
    result = check_every_oracle(check_gradients, case.layer, case.x, config=case.config)
    n_params = len(case.config["conv_stages"]) + len(case.config["dense_sizes"])
    assert len(result.max_rel_error) == 1 + 2 * n_params


def test_flatten_turns_each_example_into_a_column_and_back(check_gradients):
    x = np.arange(2 * 3 * 2 * 4, dtype=np.float64).reshape(2, 3, 2, 4)
    layer = Flatten()
    out = layer.forward(x)
    assert out.shape == (12, 4)
    np.testing.assert_array_equal(out[:, 1], x[..., 1].ravel())
    check_every_oracle(check_gradients, layer, x, config={"shape": x.shape})


def test_cnn_chains_conv_activation_pool_flatten_dense_and_loss():
    rng = np.random.default_rng(0)
    net = cnn((8, 8, 2), [{"filters": 3, "kernel": 3, "padding": 1, "activation": "relu",
                           "pool": {"kind": "max", "window": 2}}],
              [4, 3], ["tanh", "identity"], "softmax_cross_entropy", np.eye(3)[:, [0, 2]], rng=rng)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "Tanh", "Dense",
                     "Identity", "SoftmaxCrossEntropyLoss"]
    assert net.params["W2"].shape == (4, 4 * 4 * 3)   # 8x8 → pool → 4x4, 3 filters
    assert net.forward(rng.normal(size=(8, 8, 2, 2))).shape == ()


def test_cnn_rejects_a_stage_that_no_longer_fits():
    with pytest.raises(ValueError, match=r"larger than the padded input"):
        cnn((4, 4, 1), [{"filters": 1, "kernel": 3, "activation": "relu",
                         "pool": {"kind": "max", "window": 3}}],
            [2], ["identity"], "mse", np.zeros((2, 1)), rng=np.random.default_rng(0))
