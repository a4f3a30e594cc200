"""Whole networks chained from the reference layers: section 2.5 of the derivation.

:class:`Sequential` runs its layers' forwards in order and their backwards in
reverse, so a backward through ``Dense → activation → … → loss`` is exactly the
chain of section 2.5: the loss gives ``dZ^[L]``, each dense layer turns
``dZ^[l]`` into ``dA^[l-1] = W^[l]ᵀ dZ^[l]`` (eq. 8/9) and its ``dW``, ``db``
(eq. 20, 24), and each activation turns ``dA^[l]`` into ``dZ^[l]`` (eq. 10).
"""

from __future__ import annotations

import numpy as np

from reference_impls.dense import ACTIVATIONS, LOSSES, Dense

__all__ = ["Sequential", "mlp"]


class Sequential:
    """Layers applied in order; a Layer itself.

    Parameters
    ----------
    layers : sequence of Layer
        Each with ``params``, ``grads``, ``forward`` and ``backward``.
    name : str, default "Sequential"
        Used in reports.

    Attributes
    ----------
    params : dict
        Every layer's parameters under ``f"{key}{l}"`` with ``l`` counted from 1
        over the layers that have parameters (``W1``, ``b1``, ``W2``, ...), as
        in the derivation's ``W^[l]``. The arrays are the layers' own; forward
        rebinds each layer's entry to the array held here, so both in-place
        changes and replaced entries take effect.
    grads : dict
        Same keys, filled by :meth:`backward`.
    param_index : list of tuple
        ``(network key, layer index, layer key)`` for every parameter.
    """

    input_name = "X"

    def __init__(self, layers, name="Sequential"):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("`layers` must contain at least one layer, got []")
        self.name = name
        self.param_index = []
        self.params = {}
        l = 0
        for i, layer in enumerate(self.layers):
            if layer.params:
                l += 1
                for key, value in layer.params.items():
                    self.param_index.append((f"{key}{l}", i, key))
                    self.params[f"{key}{l}"] = value
        self.grads = {}

    def forward(self, x):
        """Run every layer's forward in order; returns the last layer's output."""
        for net_key, i, key in self.param_index:
            self.layers[i].params[key] = self.params[net_key]
        out = x
        for layer in self.layers:
            out = layer.forward(out)
        return out

    def backward(self, dout):
        """Run every layer's backward in reverse; returns dJ/dx and fills grads."""
        grad = dout
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        self.grads = {net_key: self.layers[i].grads[key] for net_key, i, key in self.param_index}
        return grad


def mlp(layer_sizes, activations, loss, Y, *, rng, weight_scale=None):
    """Return a multi-layer perceptron ``Dense → activation → … → loss``.

    Parameters
    ----------
    layer_sizes : sequence of int, length L + 1
        ``[n_0, n_1, ..., n_L]``: input width then each layer's width.
    activations : sequence of str, length L
        Name of each layer's activation, a key of
        :data:`reference_impls.dense.ACTIVATIONS` (use ``"identity"`` before a
        loss that takes logits).
    loss : str
        A key of :data:`reference_impls.dense.LOSSES`.
    Y : ndarray, shape (n_L, m)
        Targets of the loss.
    rng : numpy.random.Generator
        Draws ``W^[l] ~ N(0, weight_scale²)`` and ``b^[l] ~ N(0, 0.1²)``.
    weight_scale : float, optional
        Default ``1/sqrt(n_{l-1})``.

    Returns
    -------
    Sequential
        Named ``"MLP"``; ``forward(X)`` with ``X`` of shape ``(n_0, m)`` returns
        the loss (shape ``()``); parameters are ``W1, b1, ..., WL, bL``.
    """
    sizes = [int(n) for n in layer_sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"`layer_sizes` needs at least two positive widths, got {list(layer_sizes)}")
    if len(activations) != len(sizes) - 1:
        raise ValueError(
            f"`activations` needs one name per layer ({len(sizes) - 1}), got {list(activations)}"
        )
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if unknown:
        raise ValueError(f"`activations` has unknown names {unknown}; known: {sorted(ACTIVATIONS)}")
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {sorted(LOSSES)}, got {loss!r}")
    layers = []
    for n_prev, n, act in zip(sizes[:-1], sizes[1:], activations):
        scale = 1.0 / np.sqrt(n_prev) if weight_scale is None else weight_scale
        layers.append(Dense(rng.normal(0.0, scale, (n, n_prev)), rng.normal(0.0, 0.1, (n, 1))))
        layers.append(ACTIVATIONS[act]())
    layers.append(LOSSES[loss](Y))
    return Sequential(layers, name="MLP")
