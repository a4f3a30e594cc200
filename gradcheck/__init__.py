"""gradcheck: verify hand-written backward passes.

>>> result = gradcheck.check_layer(layer, x)      # a CheckResult
>>> gradcheck.assert_layer_gradients(layer, x)     # raises GradientCheckError if wrong
"""

from gradcheck.checker import (
    AUTO_FULL_LIMIT, FD_TOLERANCE, PRECISIONS, TORCH_TOLERANCE, GroupingWarning, PrecisionWarning,
    assert_layer_gradients, check_layer,
)
from gradcheck.metrics import relative_errors
from gradcheck.numerical import central_difference
from gradcheck.result import CheckResult, GradientCheckError, TensorCheck

__all__ = [
    "check_layer", "assert_layer_gradients", "CheckResult", "TensorCheck",
    "GradientCheckError", "relative_errors", "central_difference",
    "FD_TOLERANCE", "TORCH_TOLERANCE", "PRECISIONS", "AUTO_FULL_LIMIT", "PrecisionWarning", "GroupingWarning",
]
