"""Whole networks chained from the reference layers: section 2.5 of the derivation.

:class:`Sequential` runs its layers' forwards in order and their backwards in
reverse, so a backward through ``Dense → activation → … → loss`` is exactly the
chain of section 2.5: the loss gives ``dZ^[L]``, each dense layer turns
``dZ^[l]`` into ``dA^[l-1] = W^[l]ᵀ dZ^[l]`` (eq. 8/9) and its ``dW``, ``db``
(eq. 20, 24), and each activation turns ``dA^[l]`` into ``dZ^[l]`` (eq. 10).
"""

from __future__ import annotations

import numpy as np

from reference_impls.conv import Conv2D
from reference_impls.dense import ACTIVATIONS, LOSSES, Dense, require_ndarray
from reference_impls.pooling import AvgPool2D, MaxPool2D

__all__ = ["Flatten", "Sequential", "mlp", "cnn", "ELEMENTWISE_ACTIVATIONS"]

#: Activations that act entry by entry, so they apply to a conv's 4-D output.
ELEMENTWISE_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "softmax")


class Flatten:
    """``(n_H, n_W, n_C, m) → (n_H · n_W · n_C, m)``: a conv stack's output as dense columns.

    Each example's volume becomes one column, flattened in C order over
    ``(n_H, n_W, n_C)``; backward reshapes the gradient back. No parameters.
    """

    input_name = "A_prev"
    complex_safe = True

    def __init__(self):
        self.params = {}
        self.grads = {}
        self._shape = None

    def forward(self, x):
        """x: ndarray, shape (n_H, n_W, n_C, m) → ndarray, shape (n_H·n_W·n_C, m)."""
        require_ndarray(self.input_name, x)
        if x.ndim < 2:
            raise ValueError(f"`{self.input_name}` must have the examples on its last axis "
                             f"(2-D or more), got shape {x.shape}")
        self._shape = x.shape
        return x.reshape(-1, x.shape[-1]).copy()

    def backward(self, dout):
        """dout: ndarray, shape (n_H·n_W·n_C, m) → ndarray, shape (n_H, n_W, n_C, m)."""
        require_ndarray("dout", dout)
        return dout.reshape(self._shape).copy()

    def jacobian_coloring(self, name, shape):
        """Each entry moves only its own output: all form one group."""
        return np.zeros(shape, dtype=np.int64) if name == "x" else None


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

    @property
    def complex_safe(self):
        """True when every layer is: the chain is then holomorphic too (complex-step ready)."""
        return all(getattr(layer, "complex_safe", False) for layer in self.layers)

    def forward(self, x):
        """Run every layer's forward in order; returns the last layer's output."""
        require_ndarray(self.input_name, x)
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


def _dense_stack(sizes, activations, loss, Y, rng, weight_scale):
    layers = []
    for n_prev, n, act in zip(sizes[:-1], sizes[1:], activations):
        scale = 1.0 / np.sqrt(n_prev) if weight_scale is None else weight_scale
        layers.append(Dense(rng.normal(0.0, scale, (n, n_prev)), rng.normal(0.0, 0.1, (n, 1))))
        layers.append(ACTIVATIONS[act]())
    layers.append(LOSSES[loss](Y))
    return layers


def _check_names(name, names, known):
    unknown = [a for a in names if a not in known]
    if unknown:
        raise ValueError(f"`{name}` has unknown names {unknown}; known: {sorted(known)}")


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
    _check_names("activations", activations, ACTIVATIONS)
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {sorted(LOSSES)}, got {loss!r}")
    return Sequential(_dense_stack(sizes, activations, loss, Y, rng, weight_scale), name="MLP")


_POOLS = {"max": MaxPool2D, "avg": AvgPool2D}


def cnn(input_shape, conv_stages, dense_sizes, dense_activations, loss, Y, *, rng):
    """Return a small CNN: ``[Conv2D → activation → pool?] × k → Flatten → Dense … → loss``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_H, n_W, n_C)`` of one example; the input has shape ``(n_H, n_W, n_C, m)``.
    conv_stages : sequence of dict
        One per convolution, with keys ``filters`` (int), ``kernel`` (int or
        pair), optional ``stride``, ``padding``, ``dilation`` (as for
        :class:`~reference_impls.conv.Conv2D`), ``activation`` (a name in
        :data:`ELEMENTWISE_ACTIVATIONS`) and ``pool`` (None, or a dict with
        ``kind`` ``"max"`` or ``"avg"`` and the pooling layer's keywords:
        ``window``, ``stride``, ``padding``, ``count_include_pad``).
    dense_sizes : sequence of int
        Widths of the dense layers after :class:`Flatten` (the last is the
        output width, ``Y.shape[0]``).
    dense_activations : sequence of str
        One activation name per dense layer.
    loss : str
        A key of :data:`reference_impls.dense.LOSSES`.
    Y : ndarray, shape (dense_sizes[-1], m)
    rng : numpy.random.Generator
        Draws the weights (``N(0, 1/fan_in)``) and biases (``N(0, 0.1²)``).

    Returns
    -------
    Sequential
        Named ``"CNN"``; ``forward(X)`` returns the loss (shape ``()``);
        parameters ``W1, b1, …`` numbered over conv and dense layers in order.
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"`input_shape` must be (n_H, n_W, n_C) of positive sizes, got {input_shape}")
    if len(dense_activations) != len(dense_sizes):
        raise ValueError(f"`dense_activations` needs one name per dense layer ({len(dense_sizes)}), "
                         f"got {list(dense_activations)}")
    _check_names("dense_activations", dense_activations, ACTIVATIONS)
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {sorted(LOSSES)}, got {loss!r}")
    layers, probe = [], np.zeros((*input_shape, 1))
    for i, stage in enumerate(conv_stages):
        _check_names(f"conv_stages[{i}]['activation']", [stage["activation"]],
                     ELEMENTWISE_ACTIVATIONS)
        f_H, f_W = (stage["kernel"],) * 2 if np.isscalar(stage["kernel"]) else stage["kernel"]
        c_prev = probe.shape[2]
        W = rng.normal(0.0, 1.0 / np.sqrt(f_H * f_W * c_prev), (f_H, f_W, c_prev, stage["filters"]))
        stage_layers = [Conv2D(W, rng.normal(0.0, 0.1, stage["filters"]),
                               **{k: stage[k] for k in ("stride", "padding", "dilation") if k in stage}),
                        ACTIVATIONS[stage["activation"]]()]
        if stage.get("pool"):
            pool = dict(stage["pool"])
            stage_layers.append(_POOLS[pool.pop("kind")](**pool))
        for layer in stage_layers:   # the shape each stage hands on
            probe = layer.forward(probe)
        layers += stage_layers
    layers.append(Flatten())
    sizes = [int(np.prod(probe.shape[:3]))] + [int(n) for n in dense_sizes]
    layers += _dense_stack(sizes, dense_activations, loss, Y, rng, None)
    return Sequential(layers, name="CNN")
