"""Hypothesis strategies for cases of the reference layers.

Each strategy draws the configuration first (sizes, settings, a seed, each
with a label), then makes the arrays from a NumPy generator seeded by the
drawn seed, and returns ``Case(config, layer, x)``. Examples shrink towards the
smallest sizes and seed 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from gradcheck.strategies import VALUES, conv_configs, make_array, pool_configs
from reference_impls import ACTIVATIONS, LOSSES, Dense, LeakyReLU, ReLU, mlp
from reference_impls.conv import Conv2D
from reference_impls.networks import ELEMENTWISE_ACTIVATIONS, cnn
from reference_impls.pooling import AvgPool2D, MaxPool2D

#: Distance from a ReLU kink below which finite differences may straddle it.
#: A perturbation moves a pre-activation by at most step · max(1, |v|) · |coefficient|
#: ~ 6e-6 · 3 · 3 here (entries of a few units): 1e-3 leaves a margin of ~20x.
KINK_MARGIN = 1e-3

sizes = st.integers(min_value=1, max_value=6)
examples = st.integers(min_value=1, max_value=5)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


class Case(NamedTuple):
    """A configuration, the layer built from it, and the input to check it at."""

    config: dict
    layer: object
    x: np.ndarray


def _targets(loss, shape, rng, binary):
    if loss == "mse":
        return rng.normal(size=shape)
    if loss == "bce":
        return rng.integers(0, 2, size=shape).astype(np.float64) if binary else rng.uniform(size=shape)
    if binary:  # one-hot columns
        return np.eye(shape[0])[:, rng.integers(0, shape[0], size=shape[1])]
    return rng.dirichlet(np.ones(shape[0]), size=shape[1]).T  # soft labels


def _max_pool_gaps(x, layer):
    """Gap between the largest and second largest entry of each max-pool window (> 0 only)."""
    (f_H, f_W), (s_H, s_W), (p_H, p_W) = layer.window, layer.stride, layer.padding
    if f_H * f_W == 1:
        return np.inf
    padded = np.pad(x, ((p_H, p_H), (p_W, p_W), (0, 0), (0, 0)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (f_H, f_W), axis=(0, 1))
    windows = windows[::s_H, ::s_W]          # (out_H, out_W, n_C, m, f_H, f_W)
    top2 = np.sort(windows.reshape(*windows.shape[:4], -1), axis=-1)[..., -2:]
    gaps = top2[..., 1] - top2[..., 0]
    gaps = gaps[np.isfinite(gaps) & (gaps > 0)]   # exact ties of dead units are harmless
    return float(gaps.min(initial=np.inf))


def kink_distance(layers, x):
    """Return how close ``x`` run through ``layers`` comes to a kink: the smallest
    |input| of any ReLU or LeakyReLU, and the smallest gap between the two largest
    entries of a max-pool window."""
    distance, out = np.inf, x
    for layer in layers:
        if isinstance(layer, (ReLU, LeakyReLU)):
            distance = min(distance, float(np.min(np.abs(out))))
        elif isinstance(layer, MaxPool2D):
            distance = min(distance, _max_pool_gaps(out, layer))
        out = layer.forward(out)
    return distance


@st.composite
def dense_cases(draw):
    """Return a strategy for a :class:`Dense` layer and its input ``A_prev``."""
    config = {
        "n_prev": draw(sizes, label="n_prev"),
        "n": draw(sizes, label="n"),
        "m": draw(examples, label="m"),
        "seed": draw(seeds, label="seed"),
    }
    rng = np.random.default_rng(config["seed"])
    layer = Dense(rng.normal(size=(config["n"], config["n_prev"])),
                  rng.normal(size=(config["n"], 1)))
    return Case(config, layer, rng.normal(size=(config["n_prev"], config["m"])))


@st.composite
def activation_cases(draw, names=tuple(sorted(ACTIVATIONS))):
    """Return a strategy for an activation layer (one of ``names``) and its input ``Z``.

    ``Z`` has a drawn scale (0.1 to 10, into sigmoid/tanh saturation); for
    ReLU-like activations, examples with an entry within :data:`KINK_MARGIN`
    of 0 are rejected (the kink is a separate, named test).
    """
    name = draw(st.sampled_from(names), label="activation")
    config = {
        "activation": name,
        "n": draw(sizes, label="n"),
        "m": draw(examples, label="m"),
        "scale": draw(st.sampled_from([0.1, 1.0, 10.0]), label="scale"),
        "seed": draw(seeds, label="seed"),
    }
    if name == "leaky_relu":
        config["alpha"] = draw(st.floats(0.0, 0.5), label="alpha")
        layer = LeakyReLU(config["alpha"])
    else:
        layer = ACTIVATIONS[name]()
    Z = np.random.default_rng(config["seed"]).normal(scale=config["scale"],
                                                      size=(config["n"], config["m"]))
    assume(kink_distance([layer], Z) > KINK_MARGIN)
    return Case(config, layer, Z)


@st.composite
def loss_cases(draw, names=tuple(sorted(LOSSES))):
    """Return a strategy for a loss (one of ``names``) with its targets and its input."""
    config = {
        "loss": draw(st.sampled_from(names), label="loss"),
        "n": draw(sizes, label="n"),
        "m": draw(examples, label="m"),
        "scale": draw(st.sampled_from([0.1, 1.0, 10.0]), label="scale"),
        "binary_targets": draw(st.booleans(), label="binary_targets"),
        "seed": draw(seeds, label="seed"),
    }
    rng = np.random.default_rng(config["seed"])
    shape = (config["n"], config["m"])
    Y = _targets(config["loss"], shape, rng, config["binary_targets"])
    return Case(config, LOSSES[config["loss"]](Y), rng.normal(scale=config["scale"], size=shape))


@st.composite
def mlp_cases(draw):
    """Return a strategy for an MLP (depth 1-3, any activations and loss) and its input ``X``."""
    depth = draw(st.integers(1, 3), label="depth")
    config = {
        "layer_sizes": draw(st.lists(sizes, min_size=depth + 1, max_size=depth + 1),
                            label="layer_sizes"),
        "activations": draw(st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=depth,
                                     max_size=depth), label="activations"),
        "loss": draw(st.sampled_from(sorted(LOSSES)), label="loss"),
        "m": draw(examples, label="m"),
        "binary_targets": draw(st.booleans(), label="binary_targets"),
        "seed": draw(seeds, label="seed"),
    }
    rng = np.random.default_rng(config["seed"])
    Y = _targets(config["loss"], (config["layer_sizes"][-1], config["m"]), rng,
                 config["binary_targets"])
    net = mlp(config["layer_sizes"], config["activations"], config["loss"], Y, rng=rng)
    X = rng.normal(size=(config["layer_sizes"][0], config["m"]))
    assume(kink_distance(net.layers, X) > KINK_MARGIN)
    return Case(config, net, X)


# ------------------------------------------------------------ conv and pooling
@st.composite
def conv_cases(draw):
    """Return a strategy for a :class:`Conv2D` (stride, padding incl. "same", dilation,
    channels, batch, non-square kernels) and its input ``A_prev`` (n_H, n_W, n_C_prev, m);
    the configuration comes from :func:`gradcheck.strategies.conv_configs`."""
    config = draw(conv_configs(), label="config")
    config["seed"] = draw(seeds, label="seed")
    rng = np.random.default_rng(config["seed"])
    W = rng.normal(size=(*config["kernel"], config["n_C_prev"], config["n_C"]))
    layer = Conv2D(W, rng.normal(size=config["n_C"]), stride=config["stride"],
                   padding=config["padding"], dilation=config["dilation"])
    x = rng.normal(size=(config["n_H"], config["n_W"], config["n_C_prev"], config["m"]))
    return Case(config, layer, x)


@st.composite
def pool_cases(draw, kinds=("max", "avg")):
    """Return a strategy for a pooling layer and its input, with overlapping windows
    (stride < window), padding, and inputs that tie on purpose: ``values`` is
    ``"normal"`` (ties have probability 0), ``"ties"`` (integers 0, 1, 2: most
    windows tie) or ``"constant"`` (every window is one tie)."""
    config = {"kind": draw(st.sampled_from(kinds), label="kind"),
              **draw(pool_configs(), label="config"),
              "values": draw(st.sampled_from(VALUES), label="values"),
              "seed": draw(seeds, label="seed")}
    if config["kind"] == "avg":
        config["count_include_pad"] = draw(st.booleans(), label="count_include_pad")
    shape = (config["n_H"], config["n_W"], config["n_C"], config["m"])
    x = make_array(shape, config["values"], config["seed"])
    options = {k: config[k] for k in ("stride", "padding", "count_include_pad") if k in config}
    layer = (MaxPool2D if config["kind"] == "max" else AvgPool2D)(config["window"], **options)
    return Case(config, layer, x)


def max_pool_ties(x, window, stride, padding):
    """Return the mask of entries of ``x`` that tie for the maximum of some window.

    There central differences straddle a kink (``+h`` makes the entry the
    window's maximum, ``-h`` hands it to another), so they are compared
    against torch's choice only. A plain loop over windows: test code.
    """
    (f_H, f_W), (s_H, s_W), (p_H, p_W) = window, stride, padding
    n_H, n_W = x.shape[:2]
    padded = np.full((n_H + 2 * p_H, n_W + 2 * p_W, *x.shape[2:]), -np.inf)
    padded[p_H:p_H + n_H, p_W:p_W + n_W] = x
    tied = np.zeros(padded.shape, dtype=bool)
    for i in range(0, padded.shape[0] - f_H + 1, s_H):
        for j in range(0, padded.shape[1] - f_W + 1, s_W):
            win = padded[i:i + f_H, j:j + f_W]
            at_max = win == win.max(axis=(0, 1))
            tied[i:i + f_H, j:j + f_W] |= at_max & (at_max.sum(axis=(0, 1)) > 1)
    return tied[p_H:p_H + n_H, p_W:p_W + n_W]


@st.composite
def cnn_cases(draw):
    """Return a strategy for a small CNN (1-2 conv stages with optional pooling, then
    dense layers and a loss) and its input ``X`` of shape (n_H, n_W, n_C, m)."""
    n_stages = draw(st.integers(1, 2), label="n_stages")
    stages = []
    for i in range(n_stages):
        stage = {
            "filters": draw(st.integers(1, 3), label=f"filters{i}"),
            "kernel": draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label=f"kernel{i}"),
            "stride": draw(st.integers(1, 2), label=f"stride{i}"),
            "padding": draw(st.integers(0, 1), label=f"padding{i}"),
            "dilation": draw(st.integers(1, 2), label=f"dilation{i}"),
            "activation": draw(st.sampled_from(ELEMENTWISE_ACTIVATIONS), label=f"activation{i}"),
            "pool": draw(st.one_of(st.none(), st.fixed_dictionaries({
                "kind": st.sampled_from(["max", "avg"]),
                "window": st.integers(1, 2),
                "stride": st.integers(1, 2)})), label=f"pool{i}"),
        }
        stages.append(stage)
    config = {
        "input_shape": (draw(st.integers(3, 8), label="n_H"), draw(st.integers(3, 8), label="n_W"),
                        draw(st.integers(1, 2), label="n_C")),
        "conv_stages": stages,
        "dense_sizes": [draw(st.integers(1, 4), label="hidden"), draw(st.integers(1, 3), label="out")],
        "dense_activations": [draw(st.sampled_from(sorted(ACTIVATIONS)), label="dense_act"),
                              "identity"],
        "loss": draw(st.sampled_from(sorted(LOSSES)), label="loss"),
        "m": draw(st.integers(1, 2), label="m"),
        "seed": draw(seeds, label="seed"),
    }
    rng = np.random.default_rng(config["seed"])
    Y = _targets(config["loss"], (config["dense_sizes"][-1], config["m"]), rng, True)
    try:
        net = cnn(config["input_shape"], stages, config["dense_sizes"],
                  config["dense_activations"], config["loss"], Y, rng=rng)
    except ValueError:   # a stage whose window no longer fits: no valid output size
        assume(False)
    X = rng.normal(size=(*config["input_shape"], config["m"]))
    assume(kink_distance(net.layers, X) > KINK_MARGIN)
    return Case(config, net, X)
