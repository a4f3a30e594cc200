"""PyTorch autograd as an oracle, in float64. The only module that imports torch,
and only when an oracle is asked for."""

from __future__ import annotations

import numpy as np

__all__ = ["torch_gradients"]


def torch_gradients(torch_fn, x, params, dout):
    """Return the vector-Jacobian products of ``torch_fn`` by torch autograd.

    Parameters
    ----------
    torch_fn : callable
        ``torch_fn(x, params) -> Tensor``: the layer's forward written in torch,
        taking a float64 tensor ``x`` and a dict of float64 tensors ``params``
        (the same keys as the layer's), in the layer's own layout.
    x : ndarray
        The input, shape as the layer takes it. Not modified.
    params : dict of str to ndarray
        The layer's parameters. Not modified.
    dout : ndarray, the shape of ``torch_fn``'s output
        The upstream gradient ``G``.

    Returns
    -------
    dict of str to ndarray
        ``{"x": dJ/dx, name: dJ/dparam, ...}`` for ``J = <G, torch_fn(x, params)>``,
        float64, with the shapes of the inputs; zeros where ``J`` does not
        depend on a tensor.
    """
    import torch  # lazily: gradcheck works without torch unless this oracle is used

    leaves = {"x": torch.tensor(x, dtype=torch.float64, requires_grad=True)}
    params_t = {}
    for name, value in params.items():
        params_t[name] = leaves[name] = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    out = torch_fn(leaves["x"], params_t)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"`torch_fn` must return a torch.Tensor, got {type(out).__name__}")
    if out.dtype != torch.float64:
        raise TypeError(f"`torch_fn` must compute in float64, it returned {out.dtype}")
    if tuple(out.shape) != tuple(np.shape(dout)):
        raise ValueError(
            f"`torch_fn` returned shape {tuple(out.shape)}, but the layer's forward returned "
            f"{tuple(np.shape(dout))}"
        )
    grads = torch.autograd.grad(
        out, list(leaves.values()), grad_outputs=torch.tensor(dout, dtype=torch.float64),
        allow_unused=True,
    )
    return {
        name: (np.zeros(np.shape(leaf.detach().numpy())) if g is None else g.detach().numpy().copy())
        for (name, leaf), g in zip(leaves.items(), grads)
    }
