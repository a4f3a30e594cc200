"""torch autograd twins of the reference layers: the torch oracle for reference_impls.

``torch_twin(layer)`` returns ``fn(x, params) -> Tensor`` computing the same
forward in torch (float64, the derivation's layout), for
``gradcheck.check_layer(layer, x, torch_fn=torch_twin(layer))``. Written from
torch's own ops (``torch.nn.functional``), never from the reference code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference_impls import dense as D
from reference_impls.networks import Sequential


def _loss_twin(kind, Y):
    Y_t = torch.tensor(Y, dtype=torch.float64)
    m = Y.shape[1]
    if kind == "mse":
        return lambda x, p: 0.5 * ((x - Y_t) ** 2).sum() / m
    if kind == "bce":
        return lambda x, p: F.binary_cross_entropy_with_logits(x, Y_t, reduction="sum") / m
    return lambda x, p: -(Y_t * F.log_softmax(x, dim=0)).sum() / m


_ELEMENTWISE = {
    D.ReLU: torch.relu,
    D.Sigmoid: torch.sigmoid,
    D.Tanh: torch.tanh,
    D.Identity: lambda z: z * 1.0,
    D.Softmax: lambda z: torch.softmax(z, dim=0),
}
_LOSS_KINDS = {D.MSELoss: "mse", D.BCEWithLogitsLoss: "bce", D.SoftmaxCrossEntropyLoss: "ce"}


def torch_twin(layer):
    """Return ``fn(x, params) -> Tensor``, the torch forward of a reference ``layer``."""
    kind = type(layer)
    if kind is D.Dense:
        return lambda x, p: p["W"] @ x + p["b"]
    if kind is D.LeakyReLU:
        alpha = layer.alpha
        return lambda x, p: F.leaky_relu(x, alpha)
    if kind in _ELEMENTWISE:
        op = _ELEMENTWISE[kind]
        return lambda x, p: op(x)
    if kind in _LOSS_KINDS:
        return _loss_twin(_LOSS_KINDS[kind], layer.Y)
    if kind is Sequential:
        stages = [(torch_twin(sub), sub) for sub in layer.layers]
        names = layer.param_index

        def forward(x, p):
            out = x
            for i, (fn, sub) in enumerate(stages):
                sub_params = {key: p[net_key] for net_key, j, key in names if j == i}
                out = fn(out, sub_params)
            return out

        return forward
    raise TypeError(f"no torch twin for {kind.__name__}")
