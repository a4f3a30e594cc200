"""PyTorch autograd as an oracle, in float64. The only module that imports torch,
and only when an oracle is asked for."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import numpy as np

__all__ = ["torch_vjp", "torch_gradients", "torch_threads", "require_torch"]


def require_torch():
    """Import and return torch; without it, raise a ModuleNotFoundError naming the extra.

    Raises
    ------
    gradcheck.extras.MissingExtraError
        A ModuleNotFoundError: "`torch_fn` needs torch, which is not installed:
        pip install 'gradcheck[torch]'".
    """
    from gradcheck.extras import require

    return require("torch", "`torch_fn`")


def torch_vjp(call, values, douts, what="the function"):
    """Return the vector-Jacobian products of a torch computation by autograd.

    Parameters
    ----------
    call : callable
        ``call(leaves) -> Tensor or tuple of Tensors``: the forward written in
        torch, given a dict of float64 leaf tensors by name.
    values : dict of str to ndarray
        The differentiable tensors by name. Not modified.
    douts : list of ndarray
        The upstream gradient of each output, in order.
    what : str
        The user's forward, named in messages about mismatched outputs.

    Returns
    -------
    dict of str to ndarray
        ``dJ/d value`` for ``J = Σ_k <douts[k], outputs[k]>``, float64, with
        the shapes of ``values``; zeros where ``J`` does not depend on a tensor.
    """
    torch = require_torch()  # lazily: gradcheck works without torch unless this oracle is used

    leaves = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True)
              for name, value in values.items()}
    out = call(leaves)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if len(outs) != len(douts):
        raise ValueError(f"`torch_fn` returned {len(outs)} output(s), but {what} returned "
                         f"{len(douts)}")
    for k, (o, d) in enumerate(zip(outs, douts)):
        if not isinstance(o, torch.Tensor):
            raise TypeError(f"`torch_fn` must return a torch.Tensor, got {type(o).__name__}")
        if o.dtype != torch.float64:
            raise TypeError(f"`torch_fn` must compute in float64, it returned {o.dtype}")
        if tuple(o.shape) != tuple(np.shape(d)):
            which = "" if len(outs) == 1 else f" (output {k})"
            raise ValueError(f"`torch_fn` returned shape {tuple(o.shape)}{which}, but {what} "
                             f"returned {tuple(np.shape(d))}")
    try:
        grads = torch.autograd.grad(
            outs, list(leaves.values()),
            grad_outputs=[torch.tensor(np.asarray(d), dtype=torch.float64) for d in douts],
            allow_unused=True)
    except RuntimeError as error:
        error.add_note("(raised by torch.autograd.grad on what `torch_fn` returned: does it "
                       "compute its output from the tensors it is given, with torch operations?)")
        raise
    return {
        name: (np.zeros(np.shape(values[name])) if g is None else g.detach().numpy().copy())
        for name, g in zip(leaves, grads)
    }


@contextmanager
def torch_threads(threads):
    """Hold torch's intra-op threads to ``threads`` for a while, if torch is already imported.

    A check never imports torch for this: without a ``torch_fn`` and with no
    torch layer, there is nothing to limit.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_gradients(torch_fn, x, params, dout):
    """Return ``{"x": dJ/dx, name: dJ/dparam}`` of a layer's torch twin.

    ``J = <dout, torch_fn(x, params)>``.

    Parameters
    ----------
    torch_fn : callable
        ``torch_fn(x, params) -> Tensor``, float64, in the layer's own layout.
    x : ndarray
    params : dict of str to ndarray
    dout : ndarray, the shape of ``torch_fn``'s output
    """
    names = list(params)
    return torch_vjp(lambda t: torch_fn(t["x"], {k: t[k] for k in names}),
                     {"x": x, **params}, [dout], "the layer's forward")
