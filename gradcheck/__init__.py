"""gradcheck: verify hand-written backward passes.

>>> result = gradcheck.check_layer(layer, x)                          # a layer object
>>> result = gradcheck.check_function(forward, backward, x, w, b)    # a (out, cache) pair
>>> result = gradcheck.check_value_and_grad(softmax_loss, scores, y)  # (loss, dscores)
>>> gradcheck.assert_layer_gradients(layer, x)    # raises GradientCheckError if wrong
"""

from gradcheck.checker import (
    AUTO_MAX_CALLS, AUTO_MAX_SECONDS, FD_TOLERANCE, PRECISIONS, TORCH_TOLERANCE, GroupingWarning,
    HazardWarning, PrecisionWarning,
    assert_function_gradients, assert_layer_gradients, assert_value_and_grad, check_function,
    check_layer, check_value_and_grad,
)
from gradcheck.metrics import relative_errors
from gradcheck.numerical import central_difference
from gradcheck.result import CheckResult, GradientCheckError, TensorCheck

__all__ = [
    "check_layer", "check_function", "check_value_and_grad",
    "assert_layer_gradients", "assert_function_gradients", "assert_value_and_grad",
    "CheckResult", "TensorCheck", "GradientCheckError", "relative_errors", "central_difference",
    "FD_TOLERANCE", "TORCH_TOLERANCE", "PRECISIONS", "AUTO_MAX_CALLS", "AUTO_MAX_SECONDS",
    "PrecisionWarning", "HazardWarning", "GroupingWarning",
]
