"""Options, validated once (gradcheck.options.make_options) for every entry point.

Each test here failed before issue 12: numpy numbers refused or bools taken as
numbers somewhere, a coloring key that names no tensor silently ignored, a
float coloring a ValueError, a torch_fn of the wrong arity or one that raised
without a note, and a missing torch without the extra to install.
"""

import re
import sys

import numpy as np
import pytest

import gradcheck
from property_tests.gradcheck.test_validation_arrays import _affine_backward, _affine_forward
from reference_impls import Dense


def _dense(seed=0):
    rng = np.random.default_rng(seed)
    return Dense(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))), rng.normal(size=(2, 4))


def _squared_norm(v):
    return 0.5 * np.sum(v ** 2), v


def _entry_points():
    """``call(**options)`` for each entry point, on a correct case."""
    rng = np.random.default_rng(1)
    x, w, v = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(5,))
    return {
        "check_layer": lambda **o: gradcheck.check_layer(*_dense(), **o),
        "check_function": lambda **o: gradcheck.check_function(_affine_forward, _affine_backward,
                                                               x, w, **o),
        "check_value_and_grad": lambda **o: gradcheck.check_value_and_grad(_squared_norm, v, **o),
    }


ENTRY_POINTS = sorted(_entry_points())


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("options", [
    dict(step=np.float32(1e-5)), dict(fd_tolerance=np.int64(1)), dict(torch_tolerance=1),
    dict(seed=np.uint8(7)), dict(threads=np.int32(1)), dict(complex_step=np.bool_(False)),
    dict(strict=np.bool_(True)), dict(name="renamed"), dict(mode="full"),
], ids=lambda o: next(iter(o)) if isinstance(o, dict) else o)
def test_numpy_numbers_and_bools_are_taken_as_python_ones(entry, options):
    result = _entry_points()[entry](**options)
    assert result.passed, result.message()
    if "seed" in options:
        assert result.seed == 7 and type(result.seed) is int
    if "name" in options:
        assert result.layer == "renamed"


BAD = [
    ("step", True, TypeError), ("step", np.True_, TypeError), ("step", "1e-3", TypeError),
    ("step", 10 ** 400, ValueError), ("step", np.inf, ValueError),
    ("fd_tolerance", False, TypeError), ("torch_tolerance", -1, ValueError),
    ("complex_step", "yes", TypeError), ("complex_step", 1, TypeError),
    ("strict", None, TypeError), ("strict", 0, TypeError),
    ("seed", None, TypeError), ("seed", -1, ValueError), ("seed", 1.5, TypeError),
    ("seed", "abc", TypeError), ("seed", True, TypeError), ("seed", np.float64(2.0), TypeError),
    ("mode", "slow", ValueError), ("mode", 3, ValueError), ("mode", np.array(["auto"]), ValueError),
    ("threads", 0, ValueError), ("threads", 1.0, TypeError), ("threads", True, TypeError),
    ("name", 3, TypeError), ("torch_fn", 3, TypeError), ("coloring", 1.0, TypeError),
    ("coloring", True, TypeError), ("fd_exclude", [], TypeError),
]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("option, value, error", BAD,
                         ids=[f"{o}={v!r}"[:30] for o, v, _ in BAD])
def test_each_bad_option_is_refused_by_every_entry_point_naming_it_and_its_value(
        entry, option, value, error):
    with pytest.raises(error) as info:
        _entry_points()[entry](**{option: value})
    message = str(info.value)
    assert f"`{option}`" in message
    assert repr(value) in message or str(value) in message


def test_seed_none_is_refused_with_a_way_to_draw_a_random_one():
    with pytest.raises(TypeError, match=r"`seed` .* got None .* secrets.randbelow"):
        gradcheck.check_layer(*_dense(), seed=None)


def test_an_unknown_option_is_named_with_the_list_of_options():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['tol'\]; the options are "
                                        r"\['mode', 'seed'"):
        _entry_points()["check_function"](tol=1e-3)


def test_a_coloring_key_that_names_no_tensor_is_refused_with_the_valid_names():
    layer, x = _dense()
    with pytest.raises(ValueError, match=r"`coloring` has key 'Q', which names no tensor .* "
                                         r"\['x', 'W', 'b'\]"):
        gradcheck.check_layer(layer, x, coloring={"Q": np.zeros((3, 2), dtype=int)})
    with pytest.raises(ValueError, match=r"`coloring` has key 'W'.* \['x', 'w'\]"):
        _entry_points()["check_function"](coloring={"W": np.zeros((4, 2), dtype=int)})


def test_a_float_coloring_is_a_type_error_naming_the_tensor_and_dtype():
    layer, x = _dense()
    with pytest.raises(TypeError, match=r"`coloring\['W'\]` has dtype float64; it must be an "
                                        r"integer array"):
        gradcheck.check_layer(layer, x, coloring={"W": np.zeros((3, 2))})
    with pytest.raises(TypeError, match=r"`coloring\['W'\]` has dtype bool"):
        gradcheck.check_layer(layer, x, coloring={"W": np.zeros((3, 2), dtype=bool)})


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_a_coloring_of_the_wrong_shape_or_kind_is_refused_before_any_call():
    calls = []

    class Counting(Dense):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    rng = np.random.default_rng(0)
    layer, x = Counting(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))), rng.normal(size=(2, 4))
    with pytest.raises(ValueError, match=r"`coloring\['W'\]` must be an integer array of shape "
                                         r"\(3, 2\) \(tensor 'W'\), got shape \(2, 3\)"):
        gradcheck.check_layer(layer, x, coloring={"W": np.zeros((2, 3), dtype=int)})
    with pytest.raises(TypeError, match=r"`coloring\['W'\]` is a numpy.matrix"):
        gradcheck.check_layer(layer, x, coloring={"W": np.asmatrix(np.zeros((3, 2), dtype=int))})
    with pytest.raises(TypeError, match=r"`coloring\['W'\]` must be a numpy.ndarray, got list"):
        gradcheck.check_layer(layer, x, coloring={"W": [[0, 0]] * 3})
    assert calls == []


def test_a_numpy_false_coloring_turns_grouping_off_like_false():
    layer, x = _dense()
    off = gradcheck.check_layer(layer, x, coloring=np.False_, mode="full")
    plain = gradcheck.check_layer(layer, x, coloring=False, mode="full")
    assert off.passed and off.forward_calls == plain.forward_calls


def test_a_refused_option_leaves_a_read_only_param_read_only():
    layer, x = _dense()
    layer.params["W"].flags.writeable = False
    with pytest.raises(ValueError, match="`mode`"):
        gradcheck.check_layer(layer, x, mode="slow")
    assert not layer.params["W"].flags.writeable


# ---------------------------------------------------------------------- torch_fn
def test_a_torch_fn_that_is_not_callable_is_refused_before_any_call():
    calls = []

    def forward(x, w):
        calls.append(1)
        return x @ w, (x, w)

    rng = np.random.default_rng(2)
    with pytest.raises(TypeError, match=r"`torch_fn` must be callable, got 'relu' \(str\)"):
        gradcheck.check_function(forward, _affine_backward, rng.normal(size=(2, 3)),
                                 rng.normal(size=(3, 2)), torch_fn="relu")
    assert calls == []


@pytest.mark.parametrize("entry, torch_fn, expected", [
    ("check_layer", lambda x: x, "torch_fn(x, params)"),
    ("check_function", lambda x, w, extra: x, "torch_fn(x, w)"),
    ("check_value_and_grad", lambda: 0, "torch_fn(v)"),
])
def test_a_torch_fn_of_the_wrong_arity_is_refused_at_the_start_saying_how_it_is_called(
        entry, torch_fn, expected):
    pytest.importorskip("torch")
    with pytest.raises(TypeError, match=rf"`torch_fn` .* cannot be called as "
                                        rf"{re.escape(expected)}, as gradcheck calls it"):
        _entry_points()[entry](torch_fn=torch_fn)


def test_an_error_inside_torch_fn_gets_a_note_saying_it_came_from_torch_fn():
    pytest.importorskip("torch")

    def torch_fn(x, params):
        raise KeyError("W_missing")

    with pytest.raises(KeyError) as info:
        gradcheck.check_layer(*_dense(), torch_fn=torch_fn)
    assert any("raised inside torch_fn(x, params), called by gradcheck.check_layer" in note
               for note in getattr(info.value, "__notes__", []))


def test_a_torch_fn_detached_from_its_inputs_gets_a_note_from_autograd():
    torch = pytest.importorskip("torch")

    def torch_fn(x, params):
        return torch.as_tensor(params["W"].detach().numpy() @ x.detach().numpy()
                               + params["b"].detach().numpy())

    with pytest.raises(RuntimeError) as info:
        gradcheck.check_layer(*_dense(), torch_fn=torch_fn)
    assert any("torch_fn" in note and "torch operations" in note
               for note in getattr(info.value, "__notes__", []))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_without_torch_a_torch_fn_says_which_extra_to_install(entry, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)    # `import torch` now raises ImportError
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install 'gradcheck[torch]'")):
        _entry_points()[entry](torch_fn=lambda *args: None)


def test_without_torch_the_oracle_itself_says_which_extra_to_install(monkeypatch):
    from gradcheck.torch_oracle import torch_vjp

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"`torch_fn` needs torch.*gradcheck\[torch\]"):
        torch_vjp(lambda leaves: None, {"x": np.zeros(2)}, [np.zeros(2)])
