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


def _validate_bounds(**bounds):
    for name, value in bounds.items():
        if not isinstance(value, int) or value < (0 if "padding" in name else 1):
            raise ValueError(f"`{name}` must be an int >= {0 if 'padding' in name else 1}, "
                             f"got {value!r}")


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
    """
    _validate_bounds(max_units=max_units, max_examples=max_examples)
    return _dense_configs(max_units, max_examples)


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
    """
    _validate_bounds(max_size=max_size, max_channels=max_channels, max_examples=max_examples,
                     max_kernel=max_kernel, max_stride=max_stride, max_dilation=max_dilation,
                     max_padding=max_padding)
    return _conv_configs(max_size, max_channels, max_examples, max_kernel, max_stride,
                         max_dilation, max_padding, allow_same)


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
    """
    _validate_bounds(max_size=max_size, max_channels=max_channels, max_examples=max_examples,
                     max_window=max_window, max_stride=max_stride)
    return _pool_configs(max_size, max_channels, max_examples, max_window, max_stride)


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
    values : {"normal", "ties", "constant"}, optional
        ``"normal"``: ``N(0, scale²)``; ``"ties"``: integers 0, 1, 2 times
        ``scale`` (exact ties in most windows); ``"constant"``: one drawn value
        everywhere. Default: drawn from :data:`VALUES`.
    scale : float, default 1.0

    Notes
    -----
    The values come from ``numpy.random.default_rng(seed)``, so an example is
    reproduced by its seed, and shrinking goes to seed 0 rather than towards
    arrays of zeros (which would sit on every ReLU kink).
    """
    if values is not None and values not in VALUES:
        raise ValueError(f"`values` must be one of {VALUES} or None, got {values!r}")
    kinds = st.just(values) if values else st.sampled_from(VALUES)
    return st.builds(lambda kind, seed: make_array(shape, kind, seed, scale=scale),
                     kinds, st.integers(0, 2**32 - 1))


def make_array(shape, values, seed, *, scale=1.0):
    """Return the float64 array :func:`arrays` draws for ``values`` and ``seed`` (reproduction)."""
    rng = np.random.default_rng(seed)
    if values == "normal":
        return rng.normal(scale=scale, size=shape)
    if values == "ties":
        return scale * rng.integers(0, 3, size=shape).astype(np.float64)
    if values == "constant":
        return np.full(shape, scale * rng.normal())
    raise ValueError(f"`values` must be one of {VALUES}, got {values!r}")
