"""The reference layers refuse what is not an array, all in the same way (issue 12).

Before, ``ReLU().forward([1.0, -2.0])`` returned a result, the pooling and
convolution layers converted a list, ``Flatten`` raised a ValueError, and
``Softmax`` crashed in its own ``jacobian_coloring`` on a 1-D input.
"""

import numpy as np
import pytest

import gradcheck
from reference_impls import (
    ACTIVATIONS, AvgPool2D, BatchNorm, BCEWithLogitsLoss, Conv2D, Dense, Flatten, MaxPool2D,
    MSELoss, Sequential, Softmax, SoftmaxCrossEntropyLoss,
)

RNG = np.random.default_rng(0)


def _layers():
    """(layer, a valid input) for every reference layer class."""
    image = RNG.normal(size=(4, 4, 2, 3))
    Y = np.eye(3)[:, [0, 1, 2, 0]]
    return {
        **{name: (cls(), RNG.normal(size=(3, 4))) for name, cls in ACTIVATIONS.items()},
        "dense": (Dense(RNG.normal(size=(2, 3)), RNG.normal(size=(2, 1))), RNG.normal(size=(3, 4))),
        "batchnorm": (BatchNorm(np.ones((3, 1)), np.zeros((3, 1))), RNG.normal(size=(3, 4))),
        "conv": (Conv2D(RNG.normal(size=(2, 2, 2, 1)), np.zeros(1)), image),
        "maxpool": (MaxPool2D(2), image),
        "avgpool": (AvgPool2D(2), image),
        "flatten": (Flatten(), image),
        "sequential": (Sequential([Dense(RNG.normal(size=(2, 3)), np.zeros((2, 1))),
                                   ACTIVATIONS["relu"]()]), RNG.normal(size=(3, 4))),
        "mse": (MSELoss(RNG.normal(size=(3, 4))), RNG.normal(size=(3, 4))),
        "bce": (BCEWithLogitsLoss(np.ones((3, 4))), RNG.normal(size=(3, 4))),
        "softmax_ce": (SoftmaxCrossEntropyLoss(Y), RNG.normal(size=(3, 4))),
    }


NAMES = sorted(_layers())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("wrap", [lambda x: x.tolist(), lambda x: float(x.flat[0])],
                         ids=["list", "float"])
def test_every_reference_layer_refuses_input_that_is_not_an_array(name, wrap):
    layer, x = _layers()[name]
    expected = getattr(layer, "input_name", "x")
    with pytest.raises(TypeError, match=rf"`{expected}` must be a numpy.ndarray, got "
                                        rf"{type(wrap(x)).__name__}"):
        layer.forward(wrap(x))


@pytest.mark.parametrize("name", [n for n in NAMES
                                  if n not in ("mse", "bce", "softmax_ce")])
def test_every_reference_layer_refuses_an_upstream_gradient_that_is_not_an_array(name):
    layer, x = _layers()[name]
    out = layer.forward(x)
    with pytest.raises(TypeError, match=r"`(dout|dZ)` must be a numpy.ndarray, got list"):
        layer.backward(np.ones_like(out).tolist())


def test_relu_on_a_list_is_refused_not_computed():
    with pytest.raises(TypeError, match=r"`Z` must be a numpy.ndarray, got list"):
        ACTIVATIONS["relu"]().forward([1.0, -2.0])


@pytest.mark.parametrize("shape", [(5,), (4, 3), (3, 2, 2)])
def test_softmax_takes_any_input_of_one_axis_or_more_and_is_checked_exactly(shape):
    x = RNG.normal(size=shape)
    colors = Softmax().jacobian_coloring("x", shape)
    assert colors.shape == shape and np.issubdtype(colors.dtype, np.integer)
    np.testing.assert_array_equal(colors, np.indices(shape)[0])
    result = gradcheck.check_layer(Softmax(), x, mode="full")
    assert result.passed, result.message()


def test_softmax_of_a_0d_input_is_refused_with_the_shape_it_needs():
    with pytest.raises(ValueError, match=r"`Z` must have at least one axis .* got shape \(\)"):
        Softmax().forward(np.array(1.0))
    with pytest.raises(ValueError, match=r"`shape` must have at least one axis"):
        Softmax().jacobian_coloring("x", ())
