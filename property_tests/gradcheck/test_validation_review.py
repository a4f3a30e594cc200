"""Input a review found taken silently, or refused with a message that blamed the wrong thing.

Each refusal is a TypeError or ValueError naming the argument: a param whose
entries share memory (a broadcast), an upstream gradient zero everywhere, an
``fd_exclude`` that leaves a tensor with nothing compared, a forward, backward
or ``fn`` that is not callable, a model whose ``params`` is not a dict of
arrays or is empty, a nested-list ``dout``; the reference layers' constructors
and the hypothesis strategies refuse bad arguments when called, not later.
Correct uses next to each (a ``dout`` zero in places, a partial mask, a
read-only, Fortran-order or broadcast input) still pass.
"""

import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import gradcheck
from reference_impls import BatchNorm, Conv2D, Dense, LeakyReLU

RNG = np.random.default_rng(0)
W, X = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))


class Scale:
    """README's layer: ``y = w * x``, elementwise."""

    def __init__(self, w):
        self.params, self.grads = {"w": w}, {}

    def forward(self, x):
        self.x = x
        return self.params["w"] * x

    def backward(self, dout):
        self.grads = {"w": dout * self.x}
        return dout * self.params["w"]


class WrongScale(Scale):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["w"] = 2.0 * self.grads["w"]
        return 3.0 * dx


class Model:
    """A model whose ``loss`` reads ``self.params`` when called."""

    def __init__(self, params):
        self.params = params

    def loss(self, x):
        return np.sum(self.params["w"] * x), {"w": x.copy()}


def _scale_forward(x, w):
    return x * w, (x, w)


def _scale_backward(dout, cache):
    x, w = cache
    return dout * w, dout * x


# --------------------------------------------------------------- 1. entries sharing memory
@pytest.mark.parametrize("make", [
    lambda: np.broadcast_to(W[0].copy(), (3, 4)),
    lambda: as_strided(np.arange(6.0), shape=(3, 4), strides=(8, 8)),     # rows overlap
    lambda: as_strided(np.arange(8.0), shape=(3,), strides=(4,)),          # bytes overlap
], ids=["broadcast", "overlapping-rows", "overlapping-bytes"])
def test_a_param_whose_entries_share_memory_is_refused_by_name(make):
    w = make()
    x = X if w.shape == X.shape else RNG.normal(size=w.shape)
    with pytest.raises(ValueError, match=r"entries of `layer.params\['w'\]` share memory \(a "
                                         r"broadcast or overlapping strided view\).*np.array"):
        gradcheck.check_layer(Scale(w), x)


def test_a_models_param_whose_entries_share_memory_is_refused_by_name():
    model = Model({"w": np.broadcast_to(W[0].copy(), (3, 4))})
    with pytest.raises(ValueError, match=r"entries of `params\['w'\]` share memory"):
        gradcheck.check_value_and_grad(model.loss, X)


def test_params_of_any_layout_whose_entries_are_their_own_are_checked():
    base = RNG.normal(size=(6, 8))
    for w in (np.asfortranarray(W), base[::2, ::2], base.T[:4, :3].T, W[:, ::-1]):
        result = gradcheck.check_layer(Scale(w), RNG.normal(size=w.shape))
        assert result.passed, result.message()
    locked = W.copy()
    locked.flags.writeable = False
    assert gradcheck.check_layer(Scale(locked), X).passed
    assert not locked.flags.writeable and np.array_equal(locked, W)


def test_a_broadcast_input_or_argument_is_checked_as_the_copy_gradcheck_makes():
    x = np.broadcast_to(X[0].copy(), (3, 4))
    assert gradcheck.check_layer(Scale(W.copy()), x).passed
    assert gradcheck.check_function(_scale_forward, _scale_backward, x, W.copy()).passed


# ------------------------------------------------------------ 2. checks that compare nothing
@pytest.mark.parametrize("check", [
    lambda dout: gradcheck.check_layer(WrongScale(W.copy()), X, dout=dout),
    lambda dout: gradcheck.check_function(_scale_forward, _scale_backward, X, W.copy(),
                                          dout=dout),
], ids=["layer", "function"])
def test_a_dout_zero_everywhere_is_refused(check):
    with pytest.raises(ValueError, match=r"`dout` is zero everywhere: every gradient would be 0 "
                                         r"and any backward would pass"):
        check(np.zeros((3, 4)))


def _two_outputs(x):
    return x * 2.0, x ** 2, x


def _two_outputs_backward(da, db, x):
    return 2.0 * da + 2.0 * x * db


def test_a_dout_zero_in_places_or_for_one_output_is_taken():
    dout = RNG.normal(size=(3, 4))
    dout[0] = 0.0
    assert gradcheck.check_layer(Scale(W.copy()), X, dout=dout).passed
    assert not gradcheck.check_layer(WrongScale(W.copy()), X, dout=dout).passed
    one_zero = (np.zeros((3, 4)), RNG.normal(size=(3, 4)))
    assert gradcheck.check_function(_two_outputs, _two_outputs_backward, X,
                                    dout=one_zero).passed
    with pytest.raises(ValueError, match=r"`dout` is zero everywhere"):
        gradcheck.check_function(_two_outputs, _two_outputs_backward, X,
                                 dout=(np.zeros((3, 4)), np.zeros((3, 4))))


@pytest.mark.parametrize("masks", [
    {"x": np.ones((3, 4), bool), "w": np.ones((3, 4), bool)},
    {"w": np.ones((3, 4), bool)},
], ids=["every-tensor", "one-tensor"])
def test_an_exclusion_of_every_entry_of_a_tensor_is_refused_without_torch(masks):
    with pytest.raises(ValueError, match=r"`fd_exclude\['(x|w)'\]` excludes every entry of "
                                         r"'(x|w)': nothing of '(x|w)' would be compared"):
        gradcheck.check_layer(WrongScale(W.copy()), X, fd_exclude=masks)


def test_an_exclusion_of_part_of_a_tensor_still_fails_a_wrong_gradient():
    mask = np.zeros((3, 4), bool)
    mask[:2] = True
    result = gradcheck.check_layer(WrongScale(W.copy()), X, fd_exclude={"w": mask})
    assert not result.passed and set(result.max_rel_error) == {"x", "w"}
    assert gradcheck.check_layer(Scale(W.copy()), X, fd_exclude={"w": mask}).passed


def test_an_exclusion_of_a_whole_tensor_is_taken_with_torch():
    torch = pytest.importorskip("torch")
    del torch
    result = gradcheck.check_layer(Scale(W.copy()), X, fd_exclude={"w": np.ones((3, 4), bool)},
                                   torch_fn=lambda x, p: p["w"] * x)
    assert result.passed, result.message()


# ---------------------------------------------------------------- 3. callables that are not
@pytest.mark.parametrize("call, match", [
    (lambda: gradcheck.check_function(3, _scale_backward, X, W.copy()),
     r"`forward` must be callable, got 3 \(int\)"),
    (lambda: gradcheck.check_function(_scale_forward, "b", X, W.copy()),
     r"`backward` must be callable, got 'b' \(str\)"),
    (lambda: gradcheck.check_value_and_grad("loss", X),
     r"`fn` must be callable, got 'loss' \(str\)"),
], ids=["forward", "backward", "fn"])
def test_a_forward_backward_or_fn_that_is_not_callable_is_refused_by_name(call, match):
    with pytest.raises(TypeError, match=match) as info:
        call()
    assert not getattr(info.value, "__notes__", None)      # not blamed on the user's code


@pytest.mark.parametrize("drop", ["forward", "backward", "params"])
def test_a_layer_without_forward_backward_or_params_is_refused_by_name(drop):
    class Partial:
        grads = {}

    layer = Partial()
    for attr, value in {"forward": lambda x: x, "backward": lambda d: d,
                        "params": {}}.items():
        if attr != drop:
            setattr(layer, attr, value)
    with pytest.raises(TypeError, match=rf"`layer(.{drop})?` must"):
        gradcheck.check_layer(layer, X)


# ---------------------------------------------------------------------- 4. models' params
class RebindingModel(Model):
    def loss(self, x):
        self.params = {k: v.copy() for k, v in self.params.items()}
        return super().loss(x)


def test_a_model_that_rebinds_its_params_gets_the_hazard_a_layer_gets():
    model = RebindingModel({"w": W.copy()})
    original = model.params
    with pytest.warns(gradcheck.HazardWarning, match=r"replaced params by another object"):
        result = gradcheck.check_value_and_grad(model.loss, X)
    assert any("rebinds self.params" in h for h in result.hazards)
    assert result.passed, result.message()
    assert model.params is original


class RebindingScale(Scale):
    def forward(self, x):
        self.params = dict(self.params)
        return super().forward(x)


def test_a_layer_that_rebinds_its_params_dict_is_told_and_put_back():
    layer = RebindingScale(W.copy())
    original = layer.params
    with pytest.warns(gradcheck.HazardWarning, match=r"replaced layer.params by another"):
        gradcheck.check_layer(layer, X)
    assert layer.params is original


class KeptModel(Model):
    def __init__(self, params):
        super().__init__(params)
        self.w = W.copy()

    def loss(self, x):
        return np.sum(self.w * x), {"w": x.copy()}


def test_a_model_with_an_empty_params_dict_is_told_so():
    with pytest.raises(ValueError, match=r"`params` of the KeptModel object it is bound to is "
                                         r"an empty dict: nothing to differentiate"):
        gradcheck.check_value_and_grad(KeptModel({}).loss, X)
    with pytest.raises(ValueError, match=r"`params` of the KeptModel object .* empty dict"):
        gradcheck.check_value_and_grad(KeptModel({}).loss, np.arange(3))


class ListModel(Model):
    def loss(self, x):
        return np.sum(self.params[0] * x), [x.copy()]


def test_a_model_whose_params_is_a_list_is_told_params_must_be_a_dict():
    with pytest.raises(TypeError, match=r"`params` of the ListModel object .* must be a dict of "
                                        r"float arrays \(name -> array\), got list"):
        gradcheck.check_value_and_grad(ListModel([W.copy()]).loss, X)


class Polynomial:
    """An object with a ``params`` attribute that is no model's: its method differentiates x."""

    params = (1.0, 2.0)

    def value_and_grad(self, x):
        return np.sum(self.params[0] * x + self.params[1] * x ** 2), \
            self.params[0] + 2 * self.params[1] * x


def test_a_method_of_an_object_with_other_params_is_checked_over_its_arguments():
    assert gradcheck.check_value_and_grad(Polynomial().value_and_grad, X).passed


# ---------------------------------------------------------------------------- 5. dout as list
def test_a_dout_given_as_a_nested_list_is_refused_saying_what_dout_must_be():
    with pytest.raises(TypeError, match=r"`dout` must be a numpy.ndarray \(or, for a function "
                                        r"with several outputs, a tuple of them\), got list"):
        gradcheck.check_layer(Scale(W.copy()), X, dout=np.ones((3, 4)).tolist())


def test_a_dout_given_as_a_tuple_or_list_of_arrays_is_taken():
    dout = RNG.normal(size=(3, 4))
    assert gradcheck.check_layer(Scale(W.copy()), X, dout=[dout]).passed
    assert gradcheck.check_function(_two_outputs, _two_outputs_backward, X,
                                    dout=[dout, dout]).passed


# --------------------------------------------------------------- 6. reference constructors
@pytest.mark.parametrize("build, name, got", [
    (lambda: Dense(W.tolist(), np.zeros((3, 1))), "W", "got list"),
    (lambda: Dense(W, np.zeros((3, 1), dtype=np.int64)), "b", "got dtype int64"),
    (lambda: Conv2D(np.ones((2, 2, 1, 1)).tolist(), [0.0]), "W", "got list"),
    (lambda: Conv2D(np.ones((2, 2, 1, 1), dtype=int), np.zeros(1)), "W", "got dtype int"),
    (lambda: BatchNorm([[1.0]], np.zeros((1, 1))), "gamma", "got list"),
    (lambda: BatchNorm(np.ones((1, 1)), np.zeros((1, 1), dtype=np.int32)), "beta",
     "got dtype int32"),
], ids=["dense-list", "dense-int", "conv-list", "conv-int", "bn-list", "bn-int"])
def test_reference_constructors_refuse_params_that_are_not_float_arrays(build, name, got):
    with pytest.raises(TypeError, match=rf"`{name}` must be a (numpy.ndarray|float array).*{got}"):
        build()


@pytest.mark.parametrize("alpha, error", [
    ([0.1], TypeError), (True, TypeError), (np.bool_(False), TypeError), ("0.1", TypeError),
    (np.nan, ValueError), (np.inf, ValueError),
])
def test_leaky_relu_alpha_must_be_a_finite_real_number(alpha, error):
    with pytest.raises(error, match=r"`alpha` must be"):
        LeakyReLU(alpha)


def test_reference_constructors_take_float_arrays_and_numbers():
    assert LeakyReLU(np.float32(0.2)).alpha == pytest.approx(0.2)
    assert LeakyReLU(0).alpha == 0.0
    Dense(W.astype(np.float32), np.zeros((3, 1), np.float32))
    Conv2D(np.ones((2, 2, 1, 1)), np.zeros(1))
    BatchNorm(np.ones((2, 1)), np.zeros((2, 1)))


# ---------------------------------------------------------------------- 7. strategies
def test_strategy_bounds_take_numpy_ints_and_refuse_bools():
    strategies = pytest.importorskip("gradcheck.strategies")
    from hypothesis import find, settings

    config = find(strategies.dense_configs(max_units=np.int64(3), max_examples=np.int32(2)),
                  lambda c: True, settings=settings(database=None))
    assert all(type(v) is int for v in config.values())
    for bad in (True, np.bool_(True)):
        with pytest.raises(ValueError, match=r"`max_units` must be an int >= 1, got "):
            strategies.dense_configs(max_units=bad)
    with pytest.raises(ValueError, match=r"`max_padding` must be an int >= 0, got False"):
        strategies.conv_configs(max_padding=False)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"shape": (2,), "scale": np.nan}, ValueError, r"`scale` must be a positive finite number"),
    ({"shape": (2,), "scale": np.inf}, ValueError, r"`scale` must be a positive finite number"),
    ({"shape": (2,), "scale": -1.0}, ValueError, r"`scale` must be a positive finite number"),
    ({"shape": (2,), "scale": True}, TypeError, r"`scale` must be a positive finite number"),
    ({"shape": (2, -1)}, ValueError, r"`shape` must have no negative length"),
    ({"shape": (2.0, 3)}, TypeError, r"`shape` must be a tuple of ints"),
    ({"shape": (True, 3)}, TypeError, r"`shape` must be a tuple of ints"),
], ids=["nan", "inf", "negative", "bool", "negative-shape", "float-shape", "bool-shape"])
def test_arrays_refuses_a_bad_shape_or_scale_when_built(kwargs, error, match):
    strategies = pytest.importorskip("gradcheck.strategies")
    with pytest.raises(error, match=match):
        strategies.arrays(**kwargs)
    with pytest.raises(error, match=match):
        strategies.make_array(kwargs["shape"], "normal", 0, scale=kwargs.get("scale", 1.0))


def test_arrays_takes_numpy_ints_and_numbers():
    strategies = pytest.importorskip("gradcheck.strategies")
    x = strategies.make_array((np.int64(2), 3), "normal", 0, scale=np.float32(2.0))
    assert x.shape == (2, 3) and np.all(np.isfinite(x))
    assert strategies.make_array(4, "ties", 1).shape == (4,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strategies.arrays((np.int32(2),), scale=3)
