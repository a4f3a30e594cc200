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

from reference_impls import ACTIVATIONS, LOSSES, Dense, LeakyReLU, ReLU, mlp

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


def kink_distance(layers, x):
    """Return the smallest |input| of any ReLU or LeakyReLU in ``layers`` run on ``x``."""
    distance, out = np.inf, x
    for layer in layers:
        if isinstance(layer, (ReLU, LeakyReLU)):
            distance = min(distance, float(np.min(np.abs(out))))
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
