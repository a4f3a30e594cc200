"""Dense layer, activations and losses against finite differences and torch autograd."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import gradcheck
from property_tests.strategies import activation_cases, dense_cases, loss_cases
from property_tests.oracles import assert_no_side_effects, check_every_oracle
from property_tests.torch_twins import torch_twin
from reference_impls import (
    ACTIVATIONS, LOSSES,
    BCEWithLogitsLoss, Dense, MSELoss, ReLU, Sequential, Softmax, SoftmaxCrossEntropyLoss,
)
from reference_impls.dense import dense_backward, dense_forward, softmax_forward


@given(case=dense_cases())
def test_dense_gradients_match_finite_differences_and_torch(check_gradients, case):
    check_every_oracle(check_gradients, case.layer, case.x, config=case.config)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(data=st.data())
def test_activation_gradients_match_finite_differences_and_torch(check_gradients, name, data):
    case = data.draw(activation_cases(names=(name,)), label="case")
    check_every_oracle(check_gradients, case.layer, case.x, config=case.config)


@pytest.mark.parametrize("name", sorted(LOSSES))
@given(data=st.data())
def test_loss_gradients_match_finite_differences_and_torch(check_gradients, name, data):
    case = data.draw(loss_cases(names=(name,)), label="case")
    check_every_oracle(check_gradients, case.layer, case.x, config=case.config)


def test_dense_forward_is_the_affine_map_of_the_derivation():
    rng = np.random.default_rng(1)
    A_prev, W, b = rng.normal(size=(3, 4)), rng.normal(size=(2, 3)), rng.normal(size=(2, 1))
    Z, _ = dense_forward(A_prev, W, b)
    # One matmul and one broadcast add: identical rounding, so exact equality.
    np.testing.assert_array_equal(Z, W @ A_prev + b @ np.ones((1, 4)))


def test_dense_backward_equations_8_20_24():
    rng = np.random.default_rng(2)
    A_prev, W, b = rng.normal(size=(3, 4)), rng.normal(size=(2, 3)), rng.normal(size=(2, 1))
    dZ = rng.normal(size=(2, 4))
    dA_prev, dW, db = dense_backward(dZ, dense_forward(A_prev, W, b)[1])
    np.testing.assert_array_equal(dA_prev, W.T @ dZ)
    np.testing.assert_array_equal(dW, dZ @ A_prev.T)
    # eq. (24): dZ 1 (a matmul) and the row sum agree to rounding (sum order differs).
    np.testing.assert_allclose(db, dZ @ np.ones((4, 1)), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize(
    "A_prev_shape, W_shape, b_shape, match",
    [
        ((4, 5), (3, 3), (3, 1), r"`A_prev.shape\[0\]` \(4\) must match `W.shape\[1\]` \(3\)"),
        ((3, 5), (3, 3), (3,), r"`b` must have shape \(3, 1\).*got \(3,\)"),
        ((3,), (3, 3), (3, 1), r"`A_prev` must be 2-D.*got shape \(3,\)"),
    ],
)
def test_dense_rejects_shapes_that_do_not_fit(A_prev_shape, W_shape, b_shape, match):
    with pytest.raises(ValueError, match=match):
        dense_forward(np.zeros(A_prev_shape), np.zeros(W_shape), np.zeros(b_shape))


def test_dead_relu_units_cause_no_spurious_error():
    # Half the units have pre-activations far below 0: their true gradient is 0,
    # finite differences return rounding noise there, and the check must pass.
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(6, 4))
    Z[::2] -= 50.0
    result = gradcheck.check_layer(ReLU(), Z, torch_fn=torch_twin(ReLU()))
    assert result.passed, result.message()
    assert result.max_rel_error["x"] < 1e-8


def test_a_network_with_every_unit_dead_passes():
    # All gradients are exactly 0 analytically; the noise floor keeps the check sane.
    rng = np.random.default_rng(4)
    layer = Dense(rng.normal(size=(3, 2)), np.full((3, 1), -100.0))
    net = Sequential([layer, ReLU(), MSELoss(np.zeros((3, 5)))])
    result = gradcheck.check_layer(net, rng.normal(size=(2, 5)), torch_fn=torch_twin(net))
    assert result.passed, result.message()
    assert all(e == 0.0 for e in result.max_rel_error.values())


class DiagonalSoftmax(Softmax):
    """The shortcut the derivation warns against for softmax: eq. (10)'s Hadamard product."""

    def backward(self, dout):
        A = self._cache
        return dout * A * (1 - A)


def test_softmax_with_the_diagonal_shortcut_fails_the_check():
    rng = np.random.default_rng(5)
    result = gradcheck.check_layer(DiagonalSoftmax(), rng.normal(size=(4, 3)))
    assert not result.passed
    assert result.max_rel_error["x"] > 1e-2


@pytest.mark.parametrize("loss", [BCEWithLogitsLoss, SoftmaxCrossEntropyLoss])
def test_losses_are_finite_and_exact_for_saturated_logits(loss):
    Z = np.array([[800.0, -800.0, 30.0], [-800.0, 800.0, -30.0]])
    Y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    layer = loss(Y)
    J = layer.forward(Z)
    dZ = layer.backward(1.0)
    assert np.isfinite(J) and np.all(np.isfinite(dZ))
    Z_t = torch.tensor(Z, requires_grad=True)
    J_t = torch_twin(layer)(Z_t, {})
    J_t.backward()
    # Same float64 formulas up to summation order: agreement to rounding.
    np.testing.assert_allclose(J, J_t.item(), rtol=1e-14)
    np.testing.assert_allclose(dZ, Z_t.grad.numpy(), rtol=1e-14, atol=1e-300)


def test_softmax_is_stable_for_large_logits():
    A, _ = softmax_forward(np.array([[1000.0, -1000.0], [0.0, 0.0]]))
    np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=1e-15)
    assert np.all(np.isfinite(A))


@given(case=dense_cases())
def test_dense_leaves_its_inputs_and_parameters_unchanged(case):
    assert_no_side_effects(case.layer, case.x)