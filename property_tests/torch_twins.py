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
from reference_impls.conv import Conv2D
from reference_impls.networks import Flatten, Sequential
from reference_impls.normalization import BatchNorm
from reference_impls.pooling import AvgPool2D, MaxPool2D

# The derivation's layout (n_H, n_W, n_C, m) and torch's (N, C, H, W) are the
# same axes permuted: (3, 2, 0, 1) takes ours to torch's, (2, 3, 1, 0) back.
TO_TORCH, FROM_TORCH = (3, 2, 0, 1), (2, 3, 1, 0)


def _conv_twin(layer):
    def forward(x, p):
        z = F.conv2d(x.permute(TO_TORCH), p["W"].permute(3, 2, 0, 1), p["b"],
                     stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
        return z.permute(FROM_TORCH)
    return forward


def _pool_twin(layer):
    if isinstance(layer, MaxPool2D):
        def pool(x):
            return F.max_pool2d(x, layer.window, layer.stride, layer.padding)
    else:
        def pool(x):
            return F.avg_pool2d(x, layer.window, layer.stride, layer.padding,
                                count_include_pad=layer.count_include_pad)
    return lambda x, p: pool(x.permute(TO_TORCH)).permute(FROM_TORCH)


def _loss_twin(kind, Y):
    Y_t = torch.tensor(Y, dtype=torch.float64)
    m = Y.shape[1]
    if kind == "mse":
        return lambda x, p: 0.5 * ((x - Y_t) ** 2).sum() / m
    if kind == "bce":
        return lambda x, p: F.binary_cross_entropy_with_logits(x, Y_t, reduction="sum") / m
    return lambda x, p: -(Y_t * F.log_softmax(x, dim=0)).sum() / m


def _batchnorm_twin(layer):
    """Training-mode ``F.batch_norm`` on our (n, m) layout, i.e. torch's (N, C) = (m, n)
    transposed. torch refuses one example per channel in training mode, so for
    m == 1 the same formulas are written out with torch ops (biased variance)."""
    eps = layer.eps

    def forward(x, p):
        gamma, beta = p["gamma"], p["beta"]
        if x.shape[1] > 1:
            out = F.batch_norm(x.T, None, None, weight=gamma.reshape(-1), bias=beta.reshape(-1),
                               training=True, eps=eps)
            return out.T
        mu = x.mean(dim=1, keepdim=True)
        var = ((x - mu) ** 2).mean(dim=1, keepdim=True)
        return gamma * (x - mu) / torch.sqrt(var + eps) + beta
    return forward


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
    if kind is Conv2D:
        return _conv_twin(layer)
    if kind in (MaxPool2D, AvgPool2D):
        return _pool_twin(layer)
    if kind is BatchNorm:
        return _batchnorm_twin(layer)
    if kind is Flatten:
        return lambda x, p: x.reshape(-1, x.shape[-1])
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
