"""Hand-written NumPy forward and backward passes, following the derivation in
``docs/derivation.md``, whose equation numbers the docstrings cite.

One module per layer family; each layer is a pair of pure functions
(``*_forward`` returning ``(out, cache)``, ``*_backward``) and a thin class that
implements the Layer protocol the checker expects. Nothing here imports gradcheck.
"""

from reference_impls.dense import (
    ACTIVATIONS,
    LOSSES,
    BCEWithLogitsLoss,
    Dense,
    Identity,
    LeakyReLU,
    MSELoss,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropyLoss,
    Tanh,
)
from reference_impls.conv import Conv2D
from reference_impls.networks import Flatten, Sequential, cnn, mlp
from reference_impls.normalization import BatchNorm
from reference_impls.pooling import AvgPool2D, MaxPool2D

__all__ = [
    "ACTIVATIONS", "LOSSES",
    "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Softmax",
    "MSELoss", "BCEWithLogitsLoss", "SoftmaxCrossEntropyLoss",
    "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "BatchNorm",
    "Sequential", "mlp", "cnn",
]
