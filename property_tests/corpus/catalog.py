"""A catalog of user-style backprop code with known verdicts, and its inputs.

Each :class:`UserCase` is one correct function pair (or loss, or model) from
:mod:`property_tests.corpus.user_layers`, or one realistic wrong copy of it
from :mod:`property_tests.corpus.user_bugs`, together with a ``build(rng)``
that draws fresh, small float64 inputs. A case is checked exactly the way a
user would call the checker, with no options and no adapter::

    callables, args = case.build(np.random.default_rng(0))
    if case.entry == "function":
        result = gradcheck.check_function(*callables, *args)
    else:
        result = gradcheck.check_value_and_grad(*callables, *args)

and ``result.passed`` must be False for ``kind == "bug"``, True for
``kind == "correct"``.

A bug case is named after its correct counterpart plus a suffix
(``"affine"`` -> ``"affine_db_wrong_axis"``); :func:`counterpart` finds it.
Inputs stay away from kinks and ties (ReLU inputs and pre-activations at
least 0.1 from 0, max-pool inputs pairwise at least 0.015 apart, SVM margins
at least 0.05 from 0), so that a verdict is about the gradient and never
about a kink; where a bug only shows under some condition (a repeated word
for the embedding, square weights for a missing transpose, small feature
variances for ``eps`` outside the square root), the inputs meet it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from property_tests.corpus import user_bugs as bugs
from property_tests.corpus import user_layers as L

__all__ = ["UserCase", "CASES", "FAMILIES", "ENTRIES", "counterpart"]

FAMILIES = ("affine", "activation", "normalization", "conv", "pooling", "recurrent",
            "embedding", "attention", "loss", "dropout", "elementwise", "model")
ENTRIES = ("function", "value_and_grad")


@dataclass(frozen=True)
class UserCase:
    """One piece of user code with a known verdict, and how to build its inputs.

    Attributes
    ----------
    name : str
        Unique, e.g. ``"affine"`` or ``"affine_db_wrong_axis"``.
    family : str
        One of :data:`FAMILIES`.
    kind : str
        ``"bug"`` (the check must fail) or ``"correct"`` (it must pass).
    entry : str
        ``"function"`` for ``gradcheck.check_function`` or ``"value_and_grad"``
        for ``gradcheck.check_value_and_grad``.
    description : str
        One sentence a user would understand.
    build : callable
        ``build(rng) -> (callables, args)``: ``(forward, backward)`` or
        ``(fn,)``, and the tuple of positional arguments, all fresh.
    """

    name: str
    family: str
    kind: str
    entry: str
    description: str
    build: Callable


CASES: list[UserCase] = []


def _case(name, family, kind, entry, description):
    """Register the decorated ``build(rng)`` as a catalog entry."""
    assert family in FAMILIES and kind in ("bug", "correct") and entry in ENTRIES, name

    def register(build):
        CASES.append(UserCase(name, family, kind, entry, description, build))
        return build
    return register


def counterpart(name):
    """The correct case a case belongs to: the longest correct name that prefixes ``name``.

    ``"rnn_step_dWh_missing_transpose"`` -> ``"rnn_step"`` (not ``"rnn"``);
    a correct case is its own counterpart. None if there is none.
    """
    correct = [c.name for c in CASES if c.kind == "correct"]
    matches = [c for c in correct if name == c or name.startswith(c + "_")]
    return max(matches, key=len) if matches else None


# ------------------------------------------------------------------------ inputs
def _normal(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


def _away_from_zero(rng, *shape, low=0.15, high=1.5):
    """Entries with ``low <= |v| <= high`` and random signs: no ReLU kink within reach."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, shape)


def _distinct(rng, *shape, gap=0.02):
    """Entries pairwise at least ``0.75 * gap`` apart, in random order: no max-pool ties."""
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size / 2) * gap + rng.uniform(0, 0.25 * gap, size)
    return values.reshape(shape)


def _affine_away_from_kink(rng, x_rows, M, margin=0.1, scale=0.6):
    """``w`` (D, M) and ``b`` (M,) with every ``x_rows @ w + b`` at least ``margin`` from 0.

    Drawn column by column, redrawing a column until all its pre-activations
    clear the margin, so a ReLU after the affine map has no kink within reach.
    """
    D = x_rows.shape[1]
    w, b = np.empty((D, M)), np.empty(M)
    for j in range(M):
        while True:
            col, bj = scale * rng.standard_normal(D), scale * rng.standard_normal()
            if np.min(np.abs(x_rows @ col + bj)) > margin:
                break
        w[:, j], b[j] = col, bj
    return w, b


def _svm_scores(rng, N, C, margin=0.05):
    """Scores ``x`` (N, C) and labels ``y`` with every hinge margin at least ``margin`` from 0."""
    y = rng.integers(0, C, N)
    x = np.empty((N, C))
    for n in range(N):
        while True:
            row = rng.standard_normal(C)
            margins = np.delete(row - row[y[n]] + 1.0, y[n])
            if np.min(np.abs(margins)) > margin:
                break
        x[n] = row
    return x, y


def _lstm_params(rng, D, H):
    return _normal(rng, D, 4 * H, scale=0.5), _normal(rng, H, 4 * H, scale=0.5), _normal(rng, 4 * H, scale=0.5)


# =================================================================== affine family
def _affine_inputs(rng, N=3, d=(2, 3), M=4):
    return _normal(rng, N, *d), _normal(rng, int(np.prod(d)), M), _normal(rng, M)


@_case("affine", "affine", "correct", "function",
       "A fully connected layer on (N, 2, 3) inputs flattened to rows.")
def _(rng):
    return (L.affine_forward, L.affine_backward), _affine_inputs(rng)


@_case("affine_db_wrong_axis", "affine", "bug", "function",
       "The bias gradient is summed over the outputs instead of the examples "
       "(it runs because N = M).")
def _(rng):
    return (L.affine_forward, bugs.affine_backward_db_wrong_axis), _affine_inputs(rng, N=4, M=4)


@_case("affine_dx_missing_transpose", "affine", "bug", "function",
       "The input gradient is dout·w instead of dout·wᵀ (it runs because w is square).")
def _(rng):
    return (L.affine_forward, bugs.affine_backward_dx_missing_transpose), _affine_inputs(rng, M=6)


def _temporal_affine_inputs(rng):
    return _normal(rng, 2, 3, 4), _normal(rng, 4, 5), _normal(rng, 5)


@_case("temporal_affine", "affine", "correct", "function",
       "The same affine map applied at every time step of an (N, T, D) sequence.")
def _(rng):
    return (L.temporal_affine_forward, L.temporal_affine_backward), _temporal_affine_inputs(rng)


@_case("temporal_affine_dw_mismatched_flatten", "affine", "bug", "function",
       "The weight gradient pairs x flattened time-major with dout flattened batch-major.")
def _(rng):
    return ((L.temporal_affine_forward, bugs.temporal_affine_backward_mismatched_flatten),
            _temporal_affine_inputs(rng))


def _affine_relu_inputs(rng):
    x = _normal(rng, 4, 2, 2)
    w, b = _affine_away_from_kink(rng, x.reshape(4, -1), 5)
    return x, w, b


@_case("affine_relu", "affine", "correct", "function",
       "An affine layer followed by a ReLU (pre-activations away from 0).")
def _(rng):
    return (L.affine_relu_forward, L.affine_relu_backward), _affine_relu_inputs(rng)


@_case("affine_relu_forgets_relu", "affine", "bug", "function",
       "The sandwich layer's backward skips the ReLU and goes straight into the affine backward.")
def _(rng):
    return (L.affine_relu_forward, bugs.affine_relu_backward_forgets_relu), _affine_relu_inputs(rng)


# =============================================================== activation family
@_case("relu", "activation", "correct", "function",
       "ReLU on inputs at least 0.15 away from the kink at 0.")
def _(rng):
    return (L.relu_forward, L.relu_backward), (_away_from_zero(rng, 4, 5),)


@_case("relu_clamps_dout", "activation", "bug", "function",
       "The ReLU backward returns max(0, dout) instead of masking dout where x > 0.")
def _(rng):
    return (L.relu_forward, bugs.relu_backward_clamps_dout), (_away_from_zero(rng, 4, 5),)


def _leaky_inputs(rng):
    return _away_from_zero(rng, 4, 5), {"alpha": 0.1}


@_case("leaky_relu", "activation", "correct", "function",
       "Leaky ReLU with slope 0.1 for negative inputs, inputs away from 0.")
def _(rng):
    return (L.leaky_relu_forward, L.leaky_relu_backward), _leaky_inputs(rng)


@_case("leaky_relu_drops_dout_on_negative_side", "activation", "bug", "function",
       "The leaky ReLU backward returns alpha instead of alpha·dout for negative inputs.")
def _(rng):
    return ((L.leaky_relu_forward, bugs.leaky_relu_backward_drops_dout_on_negative_side),
            _leaky_inputs(rng))


@_case("sigmoid", "activation", "correct", "function",
       "The logistic sigmoid, caching its output for the backward.")
def _(rng):
    return (L.sigmoid_forward, L.sigmoid_backward), (_normal(rng, 4, 5, scale=2.0),)


@_case("sigmoid_caches_input", "activation", "bug", "function",
       "The sigmoid forward caches its input x, but the backward computes s·(1 - s) as if it "
       "were the output s.")
def _(rng):
    return (bugs.sigmoid_forward_caches_input, L.sigmoid_backward), (_normal(rng, 4, 5, scale=2.0),)


@_case("tanh", "activation", "correct", "function",
       "The hyperbolic tangent, caching its output for the backward.")
def _(rng):
    return (L.tanh_forward, L.tanh_backward), (_normal(rng, 4, 5, scale=1.5),)


@_case("tanh_applies_tanh_twice", "activation", "bug", "function",
       "The tanh backward computes 1 - tanh(out)² from the cached output, applying tanh twice.")
def _(rng):
    return (L.tanh_forward, bugs.tanh_backward_applies_tanh_twice), (_normal(rng, 4, 5, scale=1.5),)


# ============================================================ normalization family
def _batchnorm_inputs(rng, scale=1.0):
    x = _normal(rng, 4, 5, scale=scale) + _normal(rng, 5)
    gamma, beta = rng.uniform(0.5, 2.0, 5), _normal(rng, 5)
    return x, gamma, beta, {"mode": "train"}


@_case("batchnorm", "normalization", "correct", "function",
       "Batch normalization in train mode, backward derived step by step through the graph.")
def _(rng):
    return (L.batchnorm_forward, L.batchnorm_backward), _batchnorm_inputs(rng)


@_case("batchnorm_eps_outside_sqrt", "normalization", "bug", "function",
       "The batch-norm forward divides by sqrt(var) + eps instead of sqrt(var + eps) "
       "(features with small variance, where eps matters).")
def _(rng):
    # std ~ 0.01 per feature, var ~ 1e-4: eps = 1e-5 then moves sqrt(var + eps) by ~5 %.
    return ((bugs.batchnorm_forward_eps_outside_sqrt, L.batchnorm_backward),
            _batchnorm_inputs(rng, scale=0.01))


@_case("batchnorm_forgets_dvar_term", "normalization", "bug", "function",
       "The batch-norm backward forgets the path from x through the variance (dvar·2(x-μ)/N).")
def _(rng):
    return (L.batchnorm_forward, bugs.batchnorm_backward_forgets_dvar_term), _batchnorm_inputs(rng)


@_case("batchnorm_alt", "normalization", "correct", "function",
       "Batch normalization with the simplified one-line backward formula.")
def _(rng):
    return (L.batchnorm_forward, L.batchnorm_backward_alt), _batchnorm_inputs(rng)


@_case("batchnorm_alt_forgets_gamma", "normalization", "bug", "function",
       "The simplified batch-norm backward uses dout where it needs dout·gamma.")
def _(rng):
    return (L.batchnorm_forward, bugs.batchnorm_backward_alt_forgets_gamma), _batchnorm_inputs(rng)


@_case("batchnorm_alt_missing_1_over_N", "normalization", "bug", "function",
       "The simplified batch-norm backward drops the leading 1/N.")
def _(rng):
    return ((L.batchnorm_forward, bugs.batchnorm_backward_alt_missing_1_over_N),
            _batchnorm_inputs(rng))


def _layernorm_inputs(rng):
    x = _normal(rng, 4, 5) + _normal(rng, 4, 1)
    return x, rng.uniform(0.5, 2.0, 5), _normal(rng, 5), {}


@_case("layernorm", "normalization", "correct", "function",
       "Layer normalization: every row normalized over its features.")
def _(rng):
    return (L.layernorm_forward, L.layernorm_backward), _layernorm_inputs(rng)


@_case("layernorm_sums_over_batch_axis", "normalization", "bug", "function",
       "The layer-norm backward, copied from batch norm, sums over the examples instead of "
       "the features.")
def _(rng):
    return (L.layernorm_forward, bugs.layernorm_backward_sums_over_batch_axis), _layernorm_inputs(rng)


def _spatial_bn_inputs(rng):
    x = _normal(rng, 2, 3, 3, 3) + _normal(rng, 1, 3, 1, 1)
    return x, rng.uniform(0.5, 2.0, 3), _normal(rng, 3), {"mode": "train", "momentum": 0.9}


@_case("spatial_batchnorm", "normalization", "correct", "function",
       "Spatial batch norm of (N, C, H, W) images per channel, through the (N·H·W, C) rows.")
def _(rng):
    return (L.spatial_batchnorm_forward, L.spatial_batchnorm_backward), _spatial_bn_inputs(rng)


@_case("spatial_batchnorm_missing_transpose", "normalization", "bug", "function",
       "The spatial batch-norm backward reshapes dout to (-1, C) without moving the channels "
       "last, as the forward did.")
def _(rng):
    return ((L.spatial_batchnorm_forward, bugs.spatial_batchnorm_backward_missing_transpose),
            _spatial_bn_inputs(rng))


def _groupnorm_inputs(rng):
    x = _normal(rng, 2, 4, 3, 3)
    gamma = rng.uniform(0.5, 2.0, (1, 4, 1, 1))
    return x, gamma, _normal(rng, 1, 4, 1, 1), 2, {"eps": 1e-5}


@_case("spatial_groupnorm", "normalization", "correct", "function",
       "Group normalization with G = 2 groups of channels and gamma of shape (1, C, 1, 1).")
def _(rng):
    return (L.spatial_groupnorm_forward, L.spatial_groupnorm_backward), _groupnorm_inputs(rng)


@_case("spatial_groupnorm_wrong_group_size", "normalization", "bug", "function",
       "The group-norm backward counts C·H·W values per group instead of (C/G)·H·W.")
def _(rng):
    return ((L.spatial_groupnorm_forward, bugs.spatial_groupnorm_backward_wrong_group_size),
            _groupnorm_inputs(rng))


@_case("spatial_groupnorm_dgamma_is_dbeta", "normalization", "bug", "function",
       "The group-norm dgamma is a copy-paste of dbeta (sum of dout, without x̂).")
def _(rng):
    return ((L.spatial_groupnorm_forward, bugs.spatial_groupnorm_backward_dgamma_is_dbeta),
            _groupnorm_inputs(rng))


# ================================================================== dropout family
def _dropout_inputs(rng):
    return _normal(rng, 4, 5), {"p": 0.5, "mode": "train", "seed": int(rng.integers(2**31))}


@_case("dropout", "dropout", "correct", "function",
       "Inverted dropout in train mode with a seeded mask (keep probability 0.5, scale 1/p).")
def _(rng):
    return (L.dropout_forward, L.dropout_backward), _dropout_inputs(rng)


@_case("dropout_caches_unscaled_mask", "dropout", "bug", "function",
       "Dropout caches the boolean mask, so the backward misses the 1/p scale the forward applied.")
def _(rng):
    return (bugs.dropout_forward_caches_unscaled_mask, L.dropout_backward), _dropout_inputs(rng)


@_case("dropout_missing_scale", "dropout", "bug", "function",
       "The dropout forward forgets the 1/p scale while the backward applies it.")
def _(rng):
    return (bugs.dropout_forward_missing_scale, L.dropout_backward), _dropout_inputs(rng)


# ===================================================================== conv family
def _conv_inputs(rng):
    x, w, b = _normal(rng, 2, 3, 5, 5), _normal(rng, 2, 3, 3, 3, scale=0.5), _normal(rng, 2)
    return x, w, b, {"stride": 2, "pad": 1}


@_case("conv", "conv", "correct", "function",
       "A naive loop convolution with stride 2 and zero padding 1.")
def _(rng):
    return (L.conv_forward_naive, L.conv_backward_naive), _conv_inputs(rng)


@_case("conv_ignores_stride", "conv", "bug", "function",
       "The convolution backward places every window at (i, j) instead of (i·stride, j·stride).")
def _(rng):
    return (L.conv_forward_naive, bugs.conv_backward_naive_ignores_stride), _conv_inputs(rng)


@_case("conv_dw_overwrites", "conv", "bug", "function",
       "The convolution backward assigns (=) to dw[f] at each position instead of adding (+=).")
def _(rng):
    return (L.conv_forward_naive, bugs.conv_backward_naive_dw_overwrites), _conv_inputs(rng)


# ================================================================== pooling family
def _pool_inputs(rng):
    return _distinct(rng, 2, 2, 7, 7), {"pool_height": 3, "pool_width": 3, "stride": 2}


@_case("max_pool", "pooling", "correct", "function",
       "Naive max pooling with overlapping 3x3 windows and stride 2, inputs all distinct.")
def _(rng):
    return (L.max_pool_forward_naive, L.max_pool_backward_naive), _pool_inputs(rng)


@_case("max_pool_overwrites", "pooling", "bug", "function",
       "The max-pool backward assigns (=) each window's gradient, wiping what an overlapping "
       "window wrote, instead of adding (+=).")
def _(rng):
    return (L.max_pool_forward_naive, bugs.max_pool_backward_naive_overwrites), _pool_inputs(rng)


# ================================================================ recurrent family
def _rnn_step_inputs(rng, N=3, D=4, H=3):
    return (_normal(rng, N, D), _normal(rng, N, H), _normal(rng, D, H, scale=0.5),
            _normal(rng, H, H, scale=0.5), _normal(rng, H, scale=0.5))


@_case("rnn_step", "recurrent", "correct", "function",
       "One vanilla RNN step, next_h = tanh(x·Wx + prev_h·Wh + b).")
def _(rng):
    return (L.rnn_step_forward, L.rnn_step_backward), _rnn_step_inputs(rng)


@_case("rnn_step_tanh_derivative_missing_square", "recurrent", "bug", "function",
       "The RNN step backward uses 1 - next_h instead of 1 - next_h² as tanh's derivative.")
def _(rng):
    return ((L.rnn_step_forward, bugs.rnn_step_backward_tanh_derivative_missing_square),
            _rnn_step_inputs(rng))


@_case("rnn_step_dWh_missing_transpose", "recurrent", "bug", "function",
       "The RNN step computes dWh as dzᵀ·prev_h instead of prev_hᵀ·dz (Wh is square, so it runs).")
def _(rng):
    return ((L.rnn_step_forward, bugs.rnn_step_backward_dWh_missing_transpose),
            _rnn_step_inputs(rng))


def _rnn_inputs(rng, N=2, T=3, D=3, H=4):
    return (_normal(rng, N, T, D), _normal(rng, N, H), _normal(rng, D, H, scale=0.5),
            _normal(rng, H, H, scale=0.5), _normal(rng, H, scale=0.5))


@_case("rnn", "recurrent", "correct", "function",
       "A vanilla RNN over a sequence of 3 steps, from an initial state h0.")
def _(rng):
    return (L.rnn_forward, L.rnn_backward), _rnn_inputs(rng)


@_case("rnn_drops_carried_dh", "recurrent", "bug", "function",
       "The RNN backward feeds each step only its own dh, dropping the gradient carried back "
       "from the next step.")
def _(rng):
    return (L.rnn_forward, bugs.rnn_backward_drops_carried_dh), _rnn_inputs(rng)


@_case("rnn_overwrites_dWx", "recurrent", "bug", "function",
       "The RNN backward assigns dWx at each step instead of accumulating it over time.")
def _(rng):
    return (L.rnn_forward, bugs.rnn_backward_overwrites_dWx), _rnn_inputs(rng)


def _lstm_step_inputs(rng, N=2, D=3, H=3):
    # A previous cell state of scale 1.5 keeps next_c away from 0, where 1 - c² and
    # 1 - tanh(c)² nearly agree (a bug confusing them would hardly show there).
    return (_normal(rng, N, D), _normal(rng, N, H), _normal(rng, N, H, scale=1.5),
            *_lstm_params(rng, D, H))


@_case("lstm_step", "recurrent", "correct", "function",
       "One LSTM step returning (next_h, next_c), gates in the order [i, f, o, g].")
def _(rng):
    return (L.lstm_step_forward, L.lstm_step_backward), _lstm_step_inputs(rng)


@_case("lstm_step_tanh_derivative_of_wrong_quantity", "recurrent", "bug", "function",
       "The LSTM step backward uses 1 - next_c² instead of 1 - tanh(next_c)².")
def _(rng):
    return ((L.lstm_step_forward, bugs.lstm_step_backward_tanh_derivative_of_wrong_quantity),
            _lstm_step_inputs(rng))


@_case("lstm_step_gate_order_mismatch", "recurrent", "bug", "function",
       "The LSTM step backward stacks the gate gradients as [i, f, g, o] while the forward "
       "split [i, f, o, g].")
def _(rng):
    return ((L.lstm_step_forward, bugs.lstm_step_backward_gate_order_mismatch),
            _lstm_step_inputs(rng))


@_case("lstm_step_ignores_dnext_c", "recurrent", "bug", "function",
       "The LSTM step backward forgets to add the upstream cell gradient dnext_c.")
def _(rng):
    return ((L.lstm_step_forward, bugs.lstm_step_backward_ignores_dnext_c),
            _lstm_step_inputs(rng))


def _lstm_inputs(rng, N=2, T=3, D=3, H=3):
    return (_normal(rng, N, T, D), _normal(rng, N, H), *_lstm_params(rng, D, H))


@_case("lstm", "recurrent", "correct", "function",
       "An LSTM over a sequence of 3 steps from h0 (initial cell state 0).")
def _(rng):
    return (L.lstm_forward, L.lstm_backward), _lstm_inputs(rng)


@_case("lstm_drops_dprev_c", "recurrent", "bug", "function",
       "The LSTM backward passes zeros as each step's cell gradient instead of the dprev_c "
       "carried back from the next step.")
def _(rng):
    return (L.lstm_forward, bugs.lstm_backward_drops_dprev_c), _lstm_inputs(rng)


# ================================================================ embedding family
def _embedding_inputs(rng, N=2, T=4, V=5, D=3):
    x = rng.integers(0, V, (N, T))
    x[1, 2] = x[0, 0]          # a repeated word, whatever the draw (8 draws of 5 repeat anyway)
    return x, _normal(rng, V, D)


@_case("word_embedding", "embedding", "correct", "function",
       "A word-embedding lookup W[x] for integer (N, T) indices with repeated words; "
       "the backward adds them up with np.add.at.")
def _(rng):
    return (L.word_embedding_forward, L.word_embedding_backward), _embedding_inputs(rng)


@_case("word_embedding_assigns", "embedding", "bug", "function",
       "The embedding backward assigns dW[x] = dout, so a repeated word keeps only one of its "
       "gradients.")
def _(rng):
    return (L.word_embedding_forward, bugs.word_embedding_backward_assigns), _embedding_inputs(rng)


@_case("word_embedding_fancy_plus_equals", "embedding", "bug", "function",
       "The embedding backward uses dW[x] += dout, which does not add up repeated words "
       "(np.add.at does).")
def _(rng):
    return ((L.word_embedding_forward, bugs.word_embedding_backward_fancy_plus_equals),
            _embedding_inputs(rng))


# ================================================================ attention family
def _attention_inputs(rng):
    return _normal(rng, 2, 3, 4), _normal(rng, 2, 3, 4), _normal(rng, 2, 3, 4)


@_case("attention", "attention", "correct", "function",
       "Scaled dot-product attention softmax(Q·Kᵀ/√d)·V over three inputs Q, K, V.")
def _(rng):
    return (L.attention_forward, L.attention_backward), _attention_inputs(rng)


@_case("attention_softmax_diagonal_shortcut", "attention", "bug", "function",
       "The attention backward uses only the diagonal of the softmax Jacobian, dA·A·(1 - A).")
def _(rng):
    return ((L.attention_forward, bugs.attention_backward_softmax_diagonal_shortcut),
            _attention_inputs(rng))


@_case("attention_missing_scale", "attention", "bug", "function",
       "The attention backward forgets the 1/√d scale in dQ and dK.")
def _(rng):
    return (L.attention_forward, bugs.attention_backward_missing_scale), _attention_inputs(rng)


@_case("attention_dK_missing_transpose", "attention", "bug", "function",
       "The attention backward computes dK from dS instead of dSᵀ (it runs because Tq = Tk).")
def _(rng):
    return ((L.attention_forward, bugs.attention_backward_dK_missing_transpose),
            _attention_inputs(rng))


# ============================================================== elementwise family
@_case("mul", "elementwise", "correct", "function",
       "The elementwise product x·y of two inputs.")
def _(rng):
    return (L.mul_forward, L.mul_backward), (_normal(rng, 3, 4), _normal(rng, 3, 4))


@_case("mul_cache_wrong_order", "elementwise", "bug", "function",
       "The product's backward unpacks the cache as (y, x) though the forward stored (x, y).")
def _(rng):
    return (L.mul_forward, bugs.mul_backward_cache_wrong_order), (_normal(rng, 3, 4), _normal(rng, 3, 4))


def _temperature_inputs(rng):
    # A temperature below 1 (as in contrastive losses), away from t = 1 where
    # dividing by t or by t² is the same thing.
    return _normal(rng, 3, 4), np.array(rng.uniform(0.2, 0.5))


@_case("temperature", "elementwise", "correct", "function",
       "Division by a learnable scalar temperature t given as a 0-d array.")
def _(rng):
    return (L.temperature_forward, L.temperature_backward), _temperature_inputs(rng)


@_case("temperature_dt_wrong_sign", "elementwise", "bug", "function",
       "The temperature gradient dt has the wrong sign (+x/t² instead of -x/t²).")
def _(rng):
    return (L.temperature_forward, bugs.temperature_backward_dt_wrong_sign), _temperature_inputs(rng)


@_case("temperature_dt_missing_square", "elementwise", "bug", "function",
       "The temperature gradient dt divides by t instead of t².")
def _(rng):
    return ((L.temperature_forward, bugs.temperature_backward_dt_missing_square),
            _temperature_inputs(rng))


# ===================================================================== loss family
@_case("svm_loss", "loss", "correct", "value_and_grad",
       "The multiclass SVM loss with integer labels, no margin within 0.05 of 0.")
def _(rng):
    return (L.svm_loss,), _svm_scores(rng, 5, 4)


@_case("svm_loss_counts_correct_class", "loss", "bug", "value_and_grad",
       "The SVM gradient counts the correct class among the positive margins.")
def _(rng):
    return (bugs.svm_loss_counts_correct_class,), _svm_scores(rng, 5, 4)


@_case("svm_loss_dx_missing_1_over_N", "loss", "bug", "value_and_grad",
       "The SVM loss is averaged over the examples but its gradient is not divided by N.")
def _(rng):
    return (bugs.svm_loss_dx_missing_1_over_N,), _svm_scores(rng, 5, 4)


def _softmax_inputs(rng, N=5, C=4):
    return _normal(rng, N, C, scale=1.5), rng.integers(0, C, N)


@_case("softmax_loss", "loss", "correct", "value_and_grad",
       "The softmax cross-entropy loss with integer labels.")
def _(rng):
    return (L.softmax_loss,), _softmax_inputs(rng)


@_case("softmax_loss_dx_missing_1_over_N", "loss", "bug", "value_and_grad",
       "The softmax loss is averaged over the examples but its gradient is not divided by N.")
def _(rng):
    return (bugs.softmax_loss_dx_missing_1_over_N,), _softmax_inputs(rng)


@_case("softmax_loss_forgets_minus_one", "loss", "bug", "value_and_grad",
       "The softmax gradient is the probabilities, without subtracting 1 at the correct class.")
def _(rng):
    return (bugs.softmax_loss_forgets_minus_one,), _softmax_inputs(rng)


def _temporal_softmax_inputs(rng, N=2, T=3, V=5):
    x, y = _normal(rng, N, T, V), rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) < 0.6
    mask[0, 0], mask[1, -1] = True, False     # both kinds of steps, whatever the draw
    return x, y, mask


@_case("temporal_softmax_loss", "loss", "correct", "value_and_grad",
       "The softmax loss over a sequence, counting only the steps where a boolean mask is True.")
def _(rng):
    return (L.temporal_softmax_loss,), _temporal_softmax_inputs(rng)


@_case("temporal_softmax_loss_ignores_mask_in_dx", "loss", "bug", "value_and_grad",
       "The temporal softmax loss masks the loss but not the gradient, so padding steps get one.")
def _(rng):
    return (bugs.temporal_softmax_loss_ignores_mask_in_dx,), _temporal_softmax_inputs(rng)


@_case("temporal_softmax_loss_dx_missing_1_over_N", "loss", "bug", "value_and_grad",
       "The temporal softmax loss divides the loss by N but not the gradient.")
def _(rng):
    return (bugs.temporal_softmax_loss_dx_missing_1_over_N,), _temporal_softmax_inputs(rng)


# ==================================================================== model family
def _two_layer_net(rng, cls):
    """A model of class ``cls`` on 5 examples; hidden pre-activations at least 0.1 from 0."""
    X = _normal(rng, 5, 4)
    y = rng.integers(0, 3, 5)
    model = cls(input_dim=4, hidden_dim=6, num_classes=3, weight_scale=0.5, reg=0.1, rng=rng)
    model.params["W1"], model.params["b1"] = _affine_away_from_kink(rng, X, 6)
    model.params["b2"] = _normal(rng, 3, scale=0.1)
    return (model.loss,), (X, y)


@_case("two_layer_net", "model", "correct", "value_and_grad",
       "A TwoLayerNet (affine-relu-affine-softmax, L2 penalty reg·ΣW²) whose loss(X, y) returns "
       "(loss, grads) keyed like model.params.")
def _(rng):
    return _two_layer_net(rng, L.TwoLayerNet)


@_case("two_layer_net_reg_grad_missing_factor_2", "model", "bug", "value_and_grad",
       "The model's penalty is reg·ΣW² but its gradient adds reg·W instead of 2·reg·W.")
def _(rng):
    return _two_layer_net(rng, bugs.TwoLayerNetRegGradMissingFactor2)


@_case("two_layer_net_no_reg_grad", "model", "bug", "value_and_grad",
       "The model adds the L2 penalty to the loss but never to the gradients.")
def _(rng):
    return _two_layer_net(rng, bugs.TwoLayerNetNoRegGrad)
