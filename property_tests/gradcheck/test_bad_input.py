"""What a stranger passes: hypothesis draws wrong input, and the checker stays right (issue 12).

A correct user-style dense layer (``forward(x) -> out``, ``backward(dout) ->
dx``, ``params``/``grads`` dicts, as README's "Check your layer" writes one) is
given wrong types, shapes and dtypes (int, float32, float16, complex, object,
bool), NaN and inf, read-only and aliased arrays (a param that is a view of
``x``, a param that is part of another), ``numpy.matrix``, masked and
zero-size arrays, broken layers and a bad value for each option. For each
draw the checker either gives the right verdict (the layer is correct: it
passes) or raises a TypeError or ValueError whose message (or note) names
the argument; and the caller's arrays are exactly as they were, flags too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck


class UserDense:
    """``out = x @ W + b``, x of shape (m, n_in), written as a user writes a layer."""

    def __init__(self, W, b):
        self.params = {"W": W, "b": b}
        self.grads = {}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads = {"W": self.x.T @ dout, "b": dout.sum(axis=0)}
        return dout @ self.params["W"].T


@dataclass
class Draw:
    """A layer, its input and options; ``names`` must be named by a refusal, None: must pass."""

    layer: object
    x: object
    options: dict = field(default_factory=dict)
    names: str | None = None


def _arrays(rng, m, n_in, n_out):
    return rng.normal(size=(m, n_in)), rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)


# ------------------------------------------------------------------------ the faults
WRONG_DTYPES = [np.int64, np.complex128, object, bool]
LOW_PRECISION = [np.float32, np.float16]
WHERE = {"x": "`x`", "W": "`layer.params['W']`", "b": "`layer.params['b']`"}


def _with(x, W, b, target, value):
    arrays = {"x": x, "W": W, "b": b}
    arrays[target] = value
    return Draw(UserDense(arrays["W"], arrays["b"]), arrays["x"])


def fault_none(draw, x, W, b):
    return Draw(UserDense(W, b), x)


def fault_dtype(draw, x, W, b):
    target = draw(st.sampled_from(["x", "W", "b"]))
    dtype = draw(st.sampled_from(WRONG_DTYPES + LOW_PRECISION))
    value = {"x": x, "W": W, "b": b}[target].astype(dtype)
    found = _with(x, W, b, target, value)
    found.names = None if dtype in LOW_PRECISION else WHERE[target]
    return found


def fault_non_finite(draw, x, W, b):
    target = draw(st.sampled_from(["x", "W", "b"]))
    value = {"x": x, "W": W, "b": b}[target].copy()
    index = draw(st.integers(0, value.size - 1))
    value.reshape(-1)[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return Draw(**{**vars(_with(x, W, b, target, value)), "names": WHERE[target]})


def fault_read_only(draw, x, W, b):
    for array in draw(st.sets(st.sampled_from(["x", "W", "b"]), min_size=1)):
        {"x": x, "W": W, "b": b}[array].flags.writeable = False
    return Draw(UserDense(W, b), x)


def fault_read_only_memory(draw, x, W, b):
    locked = np.frombuffer(W.tobytes(), dtype=W.dtype).reshape(W.shape)
    return Draw(UserDense(locked, b), x, names=WHERE["W"])


def fault_param_views_x(draw, x, W, b):
    """W and x are views of one array: moving W moves the caller's x (put back after)."""
    (m, n_in), n_out = x.shape, W.shape[1]
    base = np.random.default_rng(draw(st.integers(0, 99))).normal(size=(m + n_in, n_in + n_out))
    return Draw(UserDense(base[m:, n_in:], b), base[:m, :n_in])


def fault_param_part_of_another(draw, x, W, b):
    """b is W's first row: refused, or when that is all of W, checked as tied weights."""
    return Draw(UserDense(W, W[0]), x, names=None if W.shape[0] == 1 else WHERE["b"])


def fault_matrix(draw, x, W, b):
    target = draw(st.sampled_from(["x", "W"]))
    value = np.asmatrix({"x": x, "W": W}[target])
    return Draw(**{**vars(_with(x, W, b, target, value)), "names": WHERE[target]})


def fault_masked(draw, x, W, b):
    target = draw(st.sampled_from(["x", "W"]))
    data = {"x": x, "W": W}[target].copy()
    if draw(st.booleans()):
        data.reshape(-1)[0] = np.nan                 # hidden under the mask
    value = np.ma.masked_array(data, mask=np.isnan(data))
    return Draw(**{**vars(_with(x, W, b, target, value)), "names": WHERE[target]})


def fault_zero_size(draw, x, W, b):
    if draw(st.booleans()):
        return Draw(UserDense(W, b), np.zeros((0, x.shape[1])), names="`x`")
    return Draw(UserDense(np.zeros((W.shape[0], 0)), np.zeros(0)), x, names=WHERE["W"])


def fault_x_type(draw, x, W, b):
    value = draw(st.sampled_from([x.tolist(), tuple(map(tuple, x)), 1.5, None, "x", 3]))
    return Draw(UserDense(W, b), value, names="`x`")


def fault_x_shape(draw, x, W, b):
    """An input the user's own code cannot take: its error gets a note naming the call."""
    m, n_in = x.shape
    return Draw(UserDense(W, b), np.ones((m, n_in + draw(st.integers(1, 2)))),
                names="layer.forward(x)")


def fault_layer(draw, x, W, b):
    kind = draw(st.sampled_from(["object", "no-backward", "params-list", "params-x", "param-list"]))
    layer = UserDense(W, b)
    if kind == "object":
        return Draw(object(), x, names="`layer`")
    if kind == "no-backward":
        layer.backward = None
    elif kind == "params-list":
        layer.params = [W, b]
    elif kind == "params-x":
        layer.params["x"] = W
    else:
        layer.params["W"] = W.tolist()
    return Draw(layer, x, names="`layer")


def _bad_options(x, W):
    """Bad values of each option, by option (sized for ``x`` and ``W`` where it matters)."""
    out_shape, wrong_shape = (x.shape[0], W.shape[1]), (W.shape[0] + 1, W.shape[1])
    return {
        "mode": ["slow", None, 3, np.array(["auto"])],
        "seed": [None, -3, 2.0, True, "abc", np.float64(1.0)],
        "step": [0.0, True, "1e-6", np.nan, -np.float32(1e-3), 10 ** 400],
        "fd_tolerance": [-1.0, np.False_, np.inf, [1e-6]],
        "torch_tolerance": ["tight", 0, np.int64(-2)],
        "complex_step": ["yes", 1, np.float64(1.0)],
        "strict": [None, "no", 0, np.int64(1)],
        "threads": [0, 1.5, True, -np.int32(2)],
        "name": [7, b"dense", ["dense"]],
        "torch_fn": ["torch", 3, np.zeros(2)],
        "dout": [np.zeros((out_shape[0] + 1, out_shape[1])), np.ones(out_shape, dtype=np.int64),
                 np.full(out_shape, np.nan), np.asmatrix(np.ones(out_shape)), "ones",
                 np.ones(out_shape, dtype=complex), np.ma.masked_array(np.ones(out_shape))],
        "coloring": [{"Q": np.zeros(W.shape, dtype=int)}, {"W": np.zeros(W.shape)},
                     {"W": np.zeros(wrong_shape, dtype=int)}, 1, True,
                     {"W": np.zeros(W.shape, dtype=int).tolist()}],
        "fd_exclude": [{"W": np.zeros(W.shape)}, {"y": np.zeros(W.shape, bool)},
                       {"W": np.zeros(wrong_shape, dtype=bool)}, True, [np.zeros(W.shape, bool)]],
    }


def _option_fault(option):
    def fault(draw, x, W, b):
        value = draw(st.sampled_from(_bad_options(x, W)[option]), label=option)
        return Draw(UserDense(W, b), x, {option: value}, names=f"`{option}")
    fault.__name__ = f"fault_option_{option}"
    return fault


FAULTS = [fault_none, fault_dtype, fault_non_finite, fault_read_only, fault_read_only_memory,
          fault_param_views_x, fault_param_part_of_another, fault_matrix, fault_masked,
          fault_zero_size, fault_x_type, fault_x_shape, fault_layer] + [
    _option_fault(option) for option in gradcheck.options.OPTION_NAMES]


def _good_options(draw, x, W, b):
    """Valid options, each left out or drawn: they must not change a correct verdict."""
    choices = {
        "mode": st.sampled_from(gradcheck.options.MODES),
        "seed": st.sampled_from([0, 7, np.int64(3), np.uint32(11)]),
        "step": st.sampled_from([None, 1e-6, np.float32(1e-5)]),
        "strict": st.sampled_from([False, True, np.bool_(True)]),
        "threads": st.sampled_from([1, None, np.int8(1)]),
        "name": st.just("user dense"),
        "complex_step": st.sampled_from([None, False, np.False_]),
        "coloring": st.sampled_from([False, {"W": np.indices(W.shape)[0]},
                                     {"b": np.arange(b.size)}]),
        "fd_exclude": st.just({"x": np.zeros(x.shape, dtype=bool)}),
    }
    keys = draw(st.sets(st.sampled_from(sorted(choices)), max_size=3))
    return {key: draw(choices[key]) for key in sorted(keys)}


def draw_case(draw, fault):
    """A correct layer and input of random sizes, valid options, then ``fault`` applied."""
    m, n_in, n_out = (draw(st.integers(1, 4), label=k) for k in ("m", "n_in", "n_out"))
    x, W, b = _arrays(np.random.default_rng(draw(st.integers(0, 2 ** 16))), m, n_in, n_out)
    options = _good_options(draw, x, W, b)
    found = fault(draw, x, W, b)
    if found.names is None or not found.names.startswith("`layer"):
        # options sized for x and W; a fault that resizes them keeps only the unsized ones
        keep = {k: v for k, v in options.items() if k not in ("coloring", "fd_exclude")}
        found.options = {**(options if _same_shapes(found, x, W) else keep), **found.options}
    return found


def _same_shapes(found, x, W):
    params = getattr(found.layer, "params", None)
    return (np.shape(found.x) == x.shape and isinstance(params, dict)
            and np.shape(params.get("W")) == W.shape)


# ---------------------------------------------------------------------- what is kept
def _callers_arrays(found):
    """Every array the caller handed over: (label, the object)."""
    arrays = [("x", found.x)]
    params = getattr(found.layer, "params", None)
    if isinstance(params, dict):
        arrays += [(f"params[{k!r}]", v) for k, v in params.items()]
    for key, value in found.options.items():
        values = value.items() if isinstance(value, dict) else [(None, value)]
        arrays += [(f"{key}[{k!r}]", v) for k, v in values]
    return [(label, a) for label, a in arrays if isinstance(a, np.ndarray)]


def _snapshot(found):
    params = getattr(found.layer, "params", None)
    return ([(label, a, np.array(np.ma.getdata(a), copy=True),
              np.ma.getmaskarray(a).copy() if np.ma.isMaskedArray(a) else None,
              a.flags.writeable) for label, a in _callers_arrays(found)],
            dict(params) if isinstance(params, dict) else None)


def _assert_unchanged(found, snapshot):
    arrays, params = snapshot
    for label, array, data, mask, writeable in arrays:
        assert array.flags.writeable == writeable, f"{label}: writeable flag changed"
        now = np.ma.getdata(array)
        assert np.array_equal(now, data, equal_nan=data.dtype.kind in "fc"), f"{label} changed"
        if mask is not None:
            assert np.array_equal(np.ma.getmaskarray(array), mask), f"{label}: mask changed"
    if params is not None:
        assert found.layer.params.keys() == params.keys()
        assert all(found.layer.params[k] is v for k, v in params.items())


def _text(error):
    return " ".join([str(error), *getattr(error, "__notes__", [])])


@pytest.mark.filterwarnings("ignore::gradcheck.PrecisionWarning")
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__[len("fault_"):])
@given(data=st.data())
def test_a_stranger_gets_the_right_verdict_or_an_error_naming_the_argument(fault, data):
    found = draw_case(data.draw, fault)
    snapshot = _snapshot(found)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", gradcheck.HazardWarning)   # the layer writes nothing
            result = gradcheck.check_layer(found.layer, found.x, **found.options)
    except (TypeError, ValueError) as error:
        assert found.names is not None, f"a correct draw was refused: {error!r}"
        assert found.names in _text(error), f"{found.names} not named in: {_text(error)}"
    else:
        assert found.names is None, f"{found.names} was not refused"
        assert result.passed, result.message()
    _assert_unchanged(found, snapshot)
