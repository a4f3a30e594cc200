"""Hypothesis strategies for checking layers: the configuration first, then the arrays.

Public, for property tests of your own layers::

    from hypothesis import given
    from gradcheck.strategies import conv_configs, arrays

    @given(config=conv_configs(), data=st.data())
    def test_my_conv(config, data):
        x = data.draw(arrays((config["n_H"], config["n_W"], config["n_C_prev"], config["m"])))
        ...

Configurations are plain dicts of sizes and settings; every one drawn has a
valid output size (at least one output position per axis), so a test never
needs to reject one. Sizes use the derivation's names (``n_H``, ``n_W``,
``n_C``, ``m``); the arrays are yours to lay out. Examples shrink towards the
smallest sizes, stride and dilation 1, no padding, and plain normal values.
Importing this module needs hypothesis; ``import gradcheck`` does not.
"""

from __future__ import annotations

import numbers

import numpy as np

from gradcheck.extras import require

require("hypothesis", "gradcheck.strategies")  # says which extra to install when missing
from hypothesis import assume  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

__all__ = ["output_size", "dense_configs", "conv_configs", "pool_configs", "arrays", "make_array",
           "VALUES"]

#: The kinds of values :func:`arrays` draws: plain normal values (ties have
#: probability 0), small integers (ties in most pooling windows), a constant.
VALUES = ("normal", "ties", "constant")


def output_size(n, f, s=1, p=0, d=1):
    """Return the output length of a window of ``f`` taps spaced ``d`` with stride ``s``
    over ``n`` entries padded by ``p`` on both sides: ``floor((n + 2p - d(f-1) - 1)/s) + 1``
    (0 when the window does not fit)."""
    return max((n + 2 * p - d * (f - 1) - 1) // s + 1, 0)


def _is_int(value):
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _validate_bounds(**bounds):
    """Check each bound is an int (Python or NumPy, not a bool) of at least its minimum.

    Returns the bounds as Python ints, in order. A bound of another type is a
    ValueError too, as it always was here (one kind of error for a bad bound).
    """
    checked = []
    for name, value in bounds.items():
        low = 0 if "padding" in name else 1
        if not _is_int(value):
            raise ValueError(f"`{name}` must be an int >= {low}, got {value!r} "
                            f"({type(value).__name__})"
                            + (f": pass {name}={int(value)}" if isinstance(value, float)
                               and value.is_integer() else ""))
        if value < low:
            raise ValueError(f"`{name}` must be an int >= {low}, got {value!r}")
        checked.append(int(value))
    return checked


def _validate_shape(shape):
    """``shape`` (an int or a tuple of them, each >= 0; NumPy ints too) as a tuple of ints."""
    items = (shape,) if _is_int(shape) else shape
    if not isinstance(items, (tuple, list)) or not all(_is_int(n) for n in items):
        raise TypeError(f"`shape` must be a tuple of ints (or one int), got {shape!r} "
                        f"({type(shape).__name__})")
    if any(n < 0 for n in items):
        raise ValueError(f"`shape` must have no negative length, got {shape!r}")
    return tuple(int(n) for n in items)


def _validate_scale(scale):
    """``scale`` as a float: a positive finite real number (Python or NumPy, not a bool)."""
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (numbers.Real, np.number)) \
            or isinstance(scale, np.complexfloating):
        raise TypeError(f"`scale` must be a positive finite number, got {scale!r} "
                        f"({type(scale).__name__})")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"`scale` must be a positive finite number, got {scale!r}: the values "
                         "are drawn as N(0, scale²) or multiples of it; e.g. scale=1.0")
    return float(scale)


def _pair(draw, high, label, low=1):
    return (draw(st.integers(low, high), label=f"{label}_H"),
            draw(st.integers(low, high), label=f"{label}_W"))


def dense_configs(*, max_units=6, max_examples=5):
    """Return a strategy for dense-layer sizes ``{"n_prev", "n", "m"}``.

    Parameters
    ----------
    max_units : int, default 6
        Largest ``n_prev`` and ``n``.
    max_examples : int, default 5
        Largest batch ``m``.

    Raises
    ------
    ValueError
        When the strategy is built, naming the bound: each is an int (Python or
        NumPy, not a bool) >= 1 (``max_padding`` >= 0).
    """
    return _dense_configs(*_validate_bounds(max_units=max_units, max_examples=max_examples))


@st.composite
def _dense_configs(draw, max_units, max_examples):
    return {"n_prev": draw(st.integers(1, max_units), label="n_prev"),
            "n": draw(st.integers(1, max_units), label="n"),
            "m": draw(st.integers(1, max_examples), label="m")}


def conv_configs(*, max_size=7, max_channels=3, max_examples=3, max_kernel=3,
                 max_stride=3, max_dilation=2, max_padding=2, allow_same=True):
    """Return a strategy for 2-D convolution configurations with a valid output size.

    The dict has ``n_H, n_W`` (input height and width), ``n_C_prev, n_C``
    (input and output channels), ``m`` (batch), and pairs ``kernel``,
    ``stride``, ``dilation``, and ``padding`` (a pair, or ``"same"``/``"valid"``;
    ``"same"`` only with stride 1, as torch allows).

    Parameters
    ----------
    max_size, max_channels, max_examples, max_kernel, max_stride, max_dilation : int
        Upper bounds (each >= 1).
    max_padding : int
        Upper bound of explicit padding (>= 0).
    allow_same : bool
        Whether ``"same"`` and ``"valid"`` may be drawn.

    Raises
    ------
    ValueError, TypeError
        When the strategy is built, naming the bound: each is an int (Python or
        NumPy, not a bool) >= 1 (``max_padding`` >= 0);
        ``allow_same`` True or False (TypeError).
    """
    bounds = _validate_bounds(max_size=max_size, max_channels=max_channels,
                              max_examples=max_examples, max_kernel=max_kernel,
                              max_stride=max_stride, max_dilation=max_dilation,
                              max_padding=max_padding)
    if not isinstance(allow_same, (bool, np.bool_)):
        raise TypeError(f"`allow_same` must be True or False, got {allow_same!r} "
                        f"({type(allow_same).__name__})")
    return _conv_configs(*bounds, bool(allow_same))


@st.composite
def _conv_configs(draw, max_size, max_channels, max_examples, max_kernel, max_stride,
                  max_dilation, max_padding, allow_same):
    config = {
        "n_H": draw(st.integers(1, max_size), label="n_H"),
        "n_W": draw(st.integers(1, max_size), label="n_W"),
        "n_C_prev": draw(st.integers(1, max_channels), label="n_C_prev"),
        "n_C": draw(st.integers(1, max_channels), label="n_C"),
        "m": draw(st.integers(1, max_examples), label="m"),
        "kernel": _pair(draw, max_kernel, "kernel"),
        "stride": _pair(draw, max_stride, "stride"),
        "dilation": _pair(draw, max_dilation, "dilation"),
    }
    named = (["valid"] + (["same"] if config["stride"] == (1, 1) else [])) if allow_same else []
    padding = draw(st.one_of(st.tuples(st.integers(0, max_padding), st.integers(0, max_padding)),
                             *([st.sampled_from(named)] if named else [])), label="padding")
    config["padding"] = padding
    if padding != "same":   # "same" keeps every size
        pads = (0, 0) if padding == "valid" else padding
        assume(all(output_size(n, f, s, p, d) >= 1 for n, f, s, p, d in zip(
            (config["n_H"], config["n_W"]), config["kernel"], config["stride"], pads,
            config["dilation"])))
    return config


def pool_configs(*, max_size=7, max_channels=2, max_examples=2, max_window=3,
                 max_stride=3):
    """Return a strategy for 2-D pooling configurations with a valid output size.

    The dict has ``n_H, n_W, n_C, m`` and pairs ``window``, ``stride`` (stride
    below the window gives overlapping windows, drawn on purpose as often as
    not) and ``padding`` (at most half the window per axis, as torch allows).

    Raises
    ------
    ValueError
        When the strategy is built, naming the bound: each is an int (Python or
        NumPy, not a bool) >= 1.
    """
    return _pool_configs(*_validate_bounds(max_size=max_size, max_channels=max_channels,
                                           max_examples=max_examples, max_window=max_window,
                                           max_stride=max_stride))


@st.composite
def _pool_configs(draw, max_size, max_channels, max_examples, max_window, max_stride):
    window = _pair(draw, max_window, "window")
    config = {
        "n_H": draw(st.integers(1, max_size), label="n_H"),
        "n_W": draw(st.integers(1, max_size), label="n_W"),
        "n_C": draw(st.integers(1, max_channels), label="n_C"),
        "m": draw(st.integers(1, max_examples), label="m"),
        "window": window,
        "stride": _pair(draw, max_stride, "stride"),
        "padding": (draw(st.integers(0, window[0] // 2), label="padding_H"),
                    draw(st.integers(0, window[1] // 2), label="padding_W")),
    }
    assume(all(output_size(n, f, s, p) >= 1 for n, f, s, p in zip(
        (config["n_H"], config["n_W"]), window, config["stride"], config["padding"])))
    return config


def arrays(shape, *, values=None, scale=1.0):
    """Return a strategy for float64 arrays of ``shape`` made from a drawn seed.

    Parameters
    ----------
    shape : tuple of int
        Each length >= 0 (Python or NumPy ints, not bools); one int for 1-D.
    values : {"normal", "ties", "constant"}, optional
        ``"normal"``: ``N(0, scale²)``; ``"ties"``: integers 0, 1, 2 times
        ``scale`` (exact ties in most windows); ``"constant"``: one drawn value
        everywhere. Default: drawn from :data:`VALUES`.
    scale : float, default 1.0
        A positive finite number.

    Raises
    ------
    TypeError, ValueError
        When the strategy is built, naming the argument: a ``shape`` that is
        not ints or has a negative length, a ``scale`` that is not a positive
        finite number, an unknown ``values``.

    Notes
    -----
    The values come from ``numpy.random.default_rng(seed)``, so an example is
    reproduced by its seed, and shrinking goes to seed 0 rather than towards
    arrays of zeros (which would sit on every ReLU kink).
    """
    shape, scale = _validate_shape(shape), _validate_scale(scale)
    if values is not None and values not in VALUES:
        raise ValueError(f"`values` must be one of {VALUES} or None, got {values!r}")
    kinds = st.just(values) if values else st.sampled_from(VALUES)
    return st.builds(lambda kind, seed: make_array(shape, kind, seed, scale=scale),
                     kinds, st.integers(0, 2**32 - 1))


def make_array(shape, values, seed, *, scale=1.0):
    """Return the float64 array :func:`arrays` draws for ``values`` and ``seed`` (reproduction).

    ``shape`` and ``scale`` are refused as :func:`arrays` refuses them.
    """
    shape, scale = _validate_shape(shape), _validate_scale(scale)
    rng = np.random.default_rng(seed)
    if values == "normal":
        return rng.normal(scale=scale, size=shape)
    if values == "ties":
        return scale * rng.integers(0, 3, size=shape).astype(np.float64)
    if values == "constant":
        return np.full(shape, scale * rng.normal())
    raise ValueError(f"`values` must be one of {VALUES}, got {values!r}")
