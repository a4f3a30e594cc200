"""Arrays the checker is given, and what the user's code gives back (issue 12).

Each refusal names the argument: a ``numpy.matrix`` (its ``*`` is a matrix
product: pass ``np.asarray(x)``), a masked array (the code may honour the mask
while the checker judges the data beneath it), an array with no entries. A
read-only param is checked (made writable for the check, read-only again
after), or refused by name when its memory cannot be written. Before, each of
these crashed inside the checker with NumPy's message, or passed.
"""

import numpy as np
import pytest

import gradcheck
from reference_impls import Dense

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


def _dense(seed=0, n=3, n_prev=2, m=4):
    rng = np.random.default_rng(seed)
    return (Dense(rng.normal(size=(n, n_prev)), rng.normal(size=(n, 1))),
            rng.normal(size=(n_prev, m)))


def _affine_forward(x, w):
    return x @ w, (x, w)


def _affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout


class DoubledWeightGradient(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = 2.0 * self.grads["W"]
        return dx


# ------------------------------------------------------------------ matrix, masked, empty
def _masked_with_nan(x):
    data = x.copy()
    data[0, 0] = np.nan
    return np.ma.masked_array(data, mask=np.isnan(data))


@pytest.mark.parametrize("make, match", [
    (lambda x: np.asmatrix(x), r"`x` is a numpy.matrix, whose `\*` is a matrix product: pass "
                               r"np.asarray\(x\)"),
    (_masked_with_nan, r"`x` is a masked array \(numpy.ma.MaskedArray\).*x.filled\(value\)"),
    (lambda x: np.ma.masked_array(x), r"`x` is a masked array"),
], ids=["matrix", "masked-nan", "masked-no-mask"])
def test_a_matrix_or_masked_input_is_refused_by_name(make, match):
    layer, x = _dense()
    with pytest.raises(TypeError, match=match):
        gradcheck.check_layer(layer, make(x))


def test_a_matrix_or_masked_param_or_argument_is_refused_by_name():
    layer, x = _dense()
    layer.params["W"] = np.asmatrix(layer.params["W"])
    with pytest.raises(TypeError, match=r"`layer.params\['W'\]` is a numpy.matrix"):
        gradcheck.check_layer(layer, x)
    rng = np.random.default_rng(1)
    w = np.ma.masked_array(rng.normal(size=(3, 2)))
    with pytest.raises(TypeError, match=r"`w` is a masked array"):
        gradcheck.check_function(_affine_forward, _affine_backward, rng.normal(size=(4, 3)), w)
    layer, x = _dense()
    with pytest.raises(TypeError, match=r"`dout` is a numpy.matrix"):
        gradcheck.check_layer(layer, x, dout=np.asmatrix(np.ones((3, 4))))


@pytest.mark.parametrize("make, match", [
    (lambda: (_dense()[0], np.zeros((2, 0))), r"`x` has shape \(2, 0\), with no entries"),
    (lambda: (Dense(np.zeros((0, 2)), np.zeros((0, 1))), np.ones((2, 3))),
     r"`layer.params\['W'\]` has shape \(0, 2\), with no entries"),
], ids=["x", "param"])
def test_an_array_with_no_entries_is_refused_naming_it_and_its_shape(make, match):
    layer, x = make()
    with pytest.raises(ValueError, match=match):
        gradcheck.check_layer(layer, x)


def test_a_function_argument_with_no_entries_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"`x` has shape \(0, 3\), with no entries"):
        gradcheck.check_function(_affine_forward, _affine_backward, np.zeros((0, 3)),
                                 np.ones((3, 2)))


# ------------------------------------------------------------------------- read-only
def test_a_read_only_param_is_checked_and_left_read_only_and_unchanged():
    layer, x = _dense()
    W = layer.params["W"]
    W.flags.writeable = False
    before = W.copy()
    assert gradcheck.check_layer(layer, x).passed
    assert layer.params["W"] is W and not W.flags.writeable
    np.testing.assert_array_equal(W, before)


def test_a_read_only_param_still_shows_a_wrong_gradient():
    rng = np.random.default_rng(3)
    layer = DoubledWeightGradient(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
    layer.params["W"].flags.writeable = False
    layer.params["b"].flags.writeable = False
    result = gradcheck.check_layer(layer, rng.normal(size=(2, 4)))
    assert [c.tensor for c in result.failures()] == ["W"]
    assert not layer.params["W"].flags.writeable and not layer.params["b"].flags.writeable


@pytest.mark.parametrize("view_first", [False, True])
def test_a_read_only_view_of_a_read_only_param_is_checked_as_a_tie(view_first):
    rng = np.random.default_rng(4)
    W = rng.normal(size=(3, 3))

    class Tied:
        def __init__(self):
            self.params = {"W_a": W, "W_b": W.T}
            if view_first:                  # the view is unlocked after its base
                self.params = {"W_b": W.T, "W_a": W}
            self.grads = {}

        def forward(self, x):
            self.x = x
            return (self.params["W_a"] + self.params["W_b"]) @ x

        def backward(self, dout):
            self.grads = {"W_a": dout @ self.x.T, "W_b": dout @ self.x.T}
            return (self.params["W_a"] + self.params["W_b"]).T @ dout

    W.flags.writeable = False
    layer = Tied()                          # W.T, a view of read-only memory, is read-only
    assert not layer.params["W_b"].flags.writeable
    assert gradcheck.check_layer(layer, rng.normal(size=(3, 2))).passed
    assert not W.flags.writeable and not layer.params["W_b"].flags.writeable


def test_a_param_whose_memory_is_read_only_is_refused_by_name_and_the_others_put_back():
    layer, x = _dense()
    layer.params["b"].flags.writeable = False
    layer.params["W"] = np.frombuffer(layer.params["W"].tobytes(), dtype=np.float64).reshape(3, 2)
    with pytest.raises(ValueError, match=r"`layer.params\['W'\]` is read-only and its memory "
                                         r"cannot be made writable.*\.copy\(\)"):
        gradcheck.check_layer(layer, x)
    assert not layer.params["b"].flags.writeable


def test_a_models_read_only_params_are_checked_and_left_read_only():
    rng = np.random.default_rng(5)

    class Model:
        def __init__(self):
            self.params = {"W": rng.normal(size=(3, 2))}

        def loss(self, X):
            W = self.params["W"]
            return 0.5 * np.sum((X @ W) ** 2), {"W": X.T @ (X @ W)}

    model = Model()
    model.params["W"].flags.writeable = False
    assert gradcheck.check_value_and_grad(model.loss, rng.normal(size=(4, 3))).passed
    assert not model.params["W"].flags.writeable


def test_a_read_only_input_is_checked_and_left_as_it_was():
    layer, x = _dense()
    x.flags.writeable = False
    before = x.copy()
    assert gradcheck.check_layer(layer, x).passed
    assert not x.flags.writeable
    np.testing.assert_array_equal(x, before)


# ---------------------------------------------------- what the user's code returns
def test_a_models_loss_returning_grads_that_are_not_a_dict_is_named():
    rng = np.random.default_rng(6)

    class Model:
        def __init__(self, wrap):
            self.params, self.wrap = {"W": rng.normal(size=(3, 2))}, wrap

        def loss(self, X, y):
            W = self.params["W"]
            return 0.5 * np.sum((X @ W - y) ** 2), self.wrap(X.T @ (X @ W - y))

    X, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    with pytest.raises(TypeError, match=r"`Model.loss\(X, y\)` returned grads of type list; "
                                        r"expected a dict keyed like the model's float params "
                                        r"\['W'\]"):
        gradcheck.check_value_and_grad(Model(lambda g: [g]).loss, X, y)
    with pytest.raises(ValueError, match=r"returned grads for \['w'\], missing \['W'\]"):
        gradcheck.check_value_and_grad(Model(lambda g: {"w": g}).loss, X, y)


@pytest.mark.parametrize("second", [lambda z: z[:1], lambda z: z], ids=["unequal", "equal"])
def test_a_layer_forward_returning_a_tuple_is_named(second):
    class TwoOutputs(Dense):
        def forward(self, x):
            z = super().forward(x)
            return z, second(z)

    rng = np.random.default_rng(7)
    layer = TwoOutputs(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
    with pytest.raises(TypeError, match=r"`layer.forward\(x\)` returned a tuple of 2 \(\(3, 4\), "
                                        r".*a layer's forward returns one array"):
        gradcheck.check_layer(layer, rng.normal(size=(2, 4)))


def test_a_ragged_gradient_is_named_with_what_came_back():
    class RaggedBackward(Dense):
        def backward(self, dout):
            dx = super().backward(dout)
            return [dx, dx[:1]]

    rng = np.random.default_rng(8)
    layer = RaggedBackward(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
    with pytest.raises(TypeError, match=r"`layer.backward\(dout\)` gave a list of 2 \(\(2, 4\), "
                                        r"\(1, 4\)\); expected one float array"):
        gradcheck.check_layer(layer, rng.normal(size=(2, 4)))


def test_a_ragged_gradient_of_a_dict_argument_is_named():
    def loss(params, X):
        W = params["W"]
        g = X.T @ (X @ W)
        return 0.5 * np.sum((X @ W) ** 2), {"W": [g, g[:1]]}

    rng = np.random.default_rng(9)
    with pytest.raises(TypeError, match=r"for 'W'` gave a list of 2 .*expected one float array"):
        gradcheck.check_value_and_grad(loss, {"W": rng.normal(size=(3, 2))},
                                       rng.normal(size=(4, 3)))
