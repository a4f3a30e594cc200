"""BatchNorm (reference_impls/normalization.py) against finite differences and torch autograd.

The layer couples the examples of a batch through the mean and variance of each
row, so its gradient w.r.t. one example depends on every other example: the
randomized check below covers that, and a per-example shortcut is shown to fail.
"""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import gradcheck
from property_tests.strategies import Case, seeds
from property_tests.oracles import assert_no_side_effects, check_every_oracle
from property_tests.torch_twins import torch_twin
from reference_impls import BatchNorm
from reference_impls.normalization import batchnorm_backward, batchnorm_forward

#: Smallest sqrt(var + eps) of a row, relative to the row's largest |Z| (and 1), that
#: the randomized cases accept when m >= 2. Zhat varies on the scale sqrt(var + eps);
#: a central difference with step h ~ 6e-6 · max(1, |z|) has a truncation error of
#: about (h / sqrt(var + eps))², ~1.4e-8 relative at this margin, well under the 1e-6
#: tolerance. (Two close examples and a tiny eps would otherwise put the check on a
#: curve sharper than its step, a limit of finite differences, not a bug.)
STD_MARGIN = 0.05


@st.composite
def batchnorm_cases(draw):
    """Return a strategy for a :class:`BatchNorm` and its input ``Z`` of shape (n, m)."""
    config = {
        "n": draw(st.integers(1, 5), label="n"),
        "m": draw(st.integers(1, 6), label="m"),
        "eps": draw(st.sampled_from([1e-5, 1e-3, 0.1, 1.0]), label="eps"),
        "scale": draw(st.sampled_from([0.1, 1.0, 10.0]), label="scale"),
        "shift": draw(st.sampled_from([0.0, -3.0, 3.0]), label="shift"),
        "seed": draw(seeds, label="seed"),
    }
    rng = np.random.default_rng(config["seed"])
    n, m = config["n"], config["m"]
    layer = BatchNorm(rng.normal(size=(n, 1)), rng.normal(size=(n, 1)), eps=config["eps"])
    Z = config["shift"] + config["scale"] * rng.normal(size=(n, m))
    if m >= 2:
        std = np.sqrt(Z.var(axis=1) + config["eps"])
        assume(np.all(std >= STD_MARGIN * np.maximum(1.0, np.abs(Z).max(axis=1))))
    return Case(config, layer, Z)


@given(case=batchnorm_cases())
def test_batchnorm_gradients_match_finite_differences_and_torch(check_gradients, case):
    # m == 1 is included: the output is beta whatever Z is, so dZ and dgamma are exactly
    # 0 and central differences give exactly 0 too (z - mean(z) is exactly 0 for one
    # example); the relative error's floor (set by dbeta = dout, not 0) keeps 0 vs 0 at 0.
    check_every_oracle(check_gradients, case.layer, case.x, config=case.config)


def test_forward_rows_have_mean_beta_and_variance_gamma_squared_shrunk_by_eps():
    rng = np.random.default_rng(0)
    n, m, eps = 4, 7, 0.1
    Z = 3.0 + 2.0 * rng.normal(size=(n, m))
    gamma, beta = rng.normal(size=(n, 1)), rng.normal(size=(n, 1))
    out, _ = batchnorm_forward(Z, gamma, beta, eps=eps)
    var = Z.var(axis=1, keepdims=True)               # biased, as in the layer
    np.testing.assert_allclose(out.mean(axis=1, keepdims=True), beta, rtol=0, atol=1e-14)
    # var(gamma Zhat) = gamma² var / (var + eps): eps shrinks it below gamma².
    np.testing.assert_allclose(out.var(axis=1, keepdims=True), gamma**2 * var / (var + eps),
                               rtol=1e-13)
    # and equals torch's training-mode batch_norm
    t = torch_twin(BatchNorm(gamma, beta, eps=eps))(torch.tensor(Z), {
        "gamma": torch.tensor(gamma), "beta": torch.tensor(beta)})
    np.testing.assert_allclose(out, t.numpy(), rtol=1e-14, atol=1e-14)


def test_a_single_example_gives_beta_and_zero_gradients_without_nan():
    rng = np.random.default_rng(1)
    Z, gamma, beta = rng.normal(size=(3, 1)), rng.normal(size=(3, 1)), rng.normal(size=(3, 1))
    out, cache = batchnorm_forward(Z, gamma, beta)
    np.testing.assert_array_equal(out, beta)
    dout = rng.normal(size=(3, 1))
    dZ, dgamma, dbeta = batchnorm_backward(dout, cache)
    np.testing.assert_array_equal(dZ, 0.0)
    np.testing.assert_array_equal(dgamma, 0.0)
    np.testing.assert_array_equal(dbeta, dout)
    assert not any(np.isnan(a).any() for a in (out, dZ, dgamma, dbeta))


def test_a_constant_row_gives_beta_and_no_nan():
    Z = np.array([[2.0, 2.0, 2.0], [1.0, -1.0, 0.5]])
    out, cache = batchnorm_forward(Z, np.ones((2, 1)), np.array([[0.5], [0.0]]))
    np.testing.assert_array_equal(out[0], 0.5)
    dZ, dgamma, dbeta = batchnorm_backward(np.ones((2, 3)), cache)
    assert np.all(np.isfinite(dZ)) and np.all(np.isfinite(dgamma))


class PerExampleBatchNorm(BatchNorm):
    """The shortcut that treats the batch mean and variance as constants."""

    def backward(self, dout):
        Zhat, inv_std, gamma = self._cache
        self.grads = {"gamma": np.sum(dout * Zhat, axis=1, keepdims=True),
                      "beta": np.sum(dout, axis=1, keepdims=True)}
        return gamma * inv_std * dout


def test_a_backward_that_ignores_the_batch_statistics_fails_the_check():
    rng = np.random.default_rng(2)
    layer = PerExampleBatchNorm(rng.normal(size=(3, 1)), rng.normal(size=(3, 1)))
    result = gradcheck.check_layer(layer, rng.normal(size=(3, 5)))
    assert not result.passed
    assert result.max_rel_error["x"] > 1e-2
    assert result.max_rel_error["gamma"] < 1e-6 and result.max_rel_error["beta"] < 1e-6


G2, B2 = np.ones((2, 1)), np.zeros((2, 1))


@pytest.mark.parametrize(
    "Z, gamma, beta, eps, exc, match",
    [
        ([[1.0, 2.0]], np.ones((1, 1)), np.zeros((1, 1)), 1e-5, TypeError, r"`Z`.*list"),
        (np.zeros(3), G2, B2, 1e-5, ValueError, r"`Z` must be 2-D.*\(3,\)"),
        (np.zeros((2, 0)), G2, B2, 1e-5, ValueError, r"`Z` must hold at least one example"),
        (np.zeros((2, 3)), np.ones(2), B2, 1e-5, ValueError, r"`gamma` must have shape \(2, 1\).*\(2,\)"),
        (np.zeros((2, 3)), G2, np.zeros((1, 2)), 1e-5, ValueError, r"`beta` must have shape \(2, 1\).*\(1, 2\)"),
        (np.zeros((2, 3)), [[1.0], [1.0]], B2, 1e-5, TypeError, r"`gamma`.*list"),
        (np.zeros((2, 3)), G2, B2, 0.0, ValueError, r"`eps` must be finite and > 0, got 0.0"),
        (np.zeros((2, 3)), G2, B2, -1e-5, ValueError, r"`eps`.*-1e-05"),
        (np.zeros((2, 3)), G2, B2, float("nan"), ValueError, r"`eps`.*nan"),
        (np.zeros((2, 3)), G2, B2, float("inf"), ValueError, r"`eps`.*inf"),
        (np.zeros((2, 3)), G2, B2, "1e-5", TypeError, r"`eps` must be a real number"),
        (np.zeros((2, 3)), G2, B2, True, TypeError, r"`eps` must be a real number, got True"),
    ],
)
def test_batchnorm_rejects_bad_input_with_named_errors(Z, gamma, beta, eps, exc, match):
    with pytest.raises(exc, match=match):
        batchnorm_forward(Z, gamma, beta, eps=eps)


def test_batchnorm_layer_rejects_bad_eps_and_misuse():
    with pytest.raises(ValueError, match=r"`eps`.*got 0"):
        BatchNorm(G2, B2, eps=0)
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm(G2, B2).backward(np.ones((2, 3)))
    layer = BatchNorm(G2, B2)
    layer.forward(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"`dout.shape` \(3, 2\) must equal .*\(2, 3\)"):
        layer.backward(np.ones((3, 2)))


def test_forward_reads_the_parameters_at_call_time():
    layer = BatchNorm(np.ones((2, 1)), np.zeros((2, 1)))
    Z = np.array([[1.0, 3.0], [0.0, 4.0]])
    layer.params["beta"][...] = 5.0
    np.testing.assert_allclose(layer.forward(Z).mean(axis=1), 5.0, rtol=1e-15)


@given(case=batchnorm_cases())
def test_batchnorm_leaves_its_inputs_and_parameters_unchanged(case):
    assert_no_side_effects(case.layer, case.x)