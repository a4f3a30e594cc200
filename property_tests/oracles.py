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
        check_gradients(layer, x, config=config, complex_step=True, **options)
    return result
