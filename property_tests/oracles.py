"""Check a reference layer against every oracle, so the report has a row for each."""

from property_tests.torch_twins import torch_twin


def check_every_oracle(check_gradients, layer, x, *, config, **options):
    """Check ``layer`` at ``x`` against central differences and torch autograd, then,
    for a complex-safe layer, by complex step; each call is recorded in the report.

    Returns the first result (central differences and torch).
    """
    result = check_gradients(layer, x, config=config, torch_fn=torch_twin(layer),
                             complex_step=False, **options)
    if getattr(layer, "complex_safe", False):
        # Without the fd_exclude mask: it marks kinks and ties for central differences,
        # while the complex step (Im only: a comparison by the real part keeps its tie
        # rule) is exact there; a mask over every entry would leave nothing to compare.
        check_gradients(layer, x, config=config, complex_step=True,
                        **{k: v for k, v in options.items() if k != "fd_exclude"})
    return result


def assert_no_side_effects(layer, x):
    """Run forward and backward once; assert that ``x``, the params and ``dout`` are left
    alone and that no returned array shares memory with them or with another."""
    import numpy as np

    before = [x.copy(), *(p.copy() for p in layer.params.values())]
    out = layer.forward(x)
    dout = np.ones_like(out)
    dx = layer.backward(dout)
    after = [x, *layer.params.values()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    np.testing.assert_array_equal(dout, 1.0)
    grads = [dx, *layer.grads.values()]
    assert not any(np.shares_memory(g, a) for g in grads for a in [*after, dout, out])
    assert not any(np.shares_memory(out, a) for a in after)
