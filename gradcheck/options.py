"""The options of a check, validated once, and the precision table keyed by dtype.

Every entry point (:func:`gradcheck.check_layer`, :func:`gradcheck.check_function`,
:func:`gradcheck.check_value_and_grad`) takes the same keyword options; they are
checked here, with the argument and its value named, and travel to the core as
one frozen :class:`Options`.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["FD_TOLERANCE", "TORCH_TOLERANCE", "COMPLEX_STEP_TOLERANCE", "AUTO_MAX_CALLS",
           "AUTO_MAX_SECONDS", "FAST_FALLBACK_LIMIT", "MODES", "Precision", "PRECISIONS", "Options",
           "OPTION_NAMES", "make_options", "require_finite", "require_plain_array",
           "validate_float"]

#: Default tolerance against central differences in float64. Their error at
#: the step is ~1e-10 of the gradient scale (truncation and rounding, see
#: gradcheck.numerical); 1e-6 leaves room for layers with large third
#: derivatives and still fails any error of 1e-6 or more, far below what a
#: backprop bug produces. Entries over it get a second, Richardson-refined
#: look (error O(h⁴)) before they count as wrong.
FD_TOLERANCE = 1e-6
#: Default tolerance against torch autograd: both are exact float64 arithmetic
#: up to rounding, so they agree to ~1e-14; 1e-10 leaves four orders of margin
#: for ill-conditioned sums and still catches any bug.
TORCH_TOLERANCE = 1e-10
#: Default tolerance against the complex step: it takes no difference, so only
#: the rounding of the forward remains (~1e-15); 1e-10 as for torch.
COMPLEX_STEP_TOLERANCE = 1e-10
#: In mode "auto", a tensor is checked in full (every entry) when the plan's
#: forward calls for it, by groups or one entry at a time, are at most
#: AUTO_MAX_CALLS and take at most AUTO_MAX_SECONDS at the measured cost of a
#: call; beyond either, along one random direction (2 calls). The call limit
#: keeps a check of cheap calls to seconds (10,000 calls of a small layer
#: take ~1 s), the time limit a check of costly calls (10^7 entries, ~0.1 s a
#: call) from taking minutes where one direction answers in a second.
AUTO_MAX_CALLS = 10_000
AUTO_MAX_SECONDS = 5.0
#: When the fast check meets a kink along its direction, tensors up to this
#: size are checked entry by entry instead, where kinks can be told apart.
FAST_FALLBACK_LIMIT = 100_000
MODES = ("auto", "full", "fast")


@dataclass(frozen=True)
class Precision:
    """Step and tolerances that fit a floating-point type (as jax keys its tolerances by dtype).

    ``noise_factor``: the absolute noise of an oracle is that many units of
    ``u · (Σ|G ⊙ y| + Σ|G|)`` (divided by the step for central differences):
    how far rounding of the forward's outputs can move the estimate.
    """

    step: float
    fd_tolerance: float
    torch_tolerance: float
    unit_roundoff: float
    noise_factor: float


def _precision(dtype, fd, torch_tol, noise_factor):
    eps = float(np.finfo(dtype).eps)
    return Precision(step=eps ** (1 / 3), fd_tolerance=fd, torch_tolerance=torch_tol,
                     unit_roundoff=eps / 2, noise_factor=noise_factor)


#: Precision settings by dtype name. float32/float16: the central difference
#: at step cbrt(eps) has a relative error ~eps^(2/3) (2.4e-5 and 1e-2), the
#: analytic gradient itself is rounded to ~eps·(condition). Measured on 160
#: correct dense, tanh, sigmoid and softmax checks of random sizes: at most
#: 7.2e-5 in float32 and 5.8e-3 in float16, so 1e-3 and 3e-2 leave 14x and 5x,
#: and a 10 % error (0.09 relative) still fails in both (README). The noise
#: factor is 64 units in float64 (measured noise is below 1 unit; 64 covers
#: cancellation inside the forward, a dense output sums n_prev terms larger
#: than itself) and smaller for float32/float16: the rounding measured on
#: dense layers is ~0.4 units, and a float64-sized margin would hide bugs.
PRECISIONS = {
    "float64": _precision(np.float64, FD_TOLERANCE, TORCH_TOLERANCE, 64.0),
    "float32": _precision(np.float32, 1e-3, 1e-4, 8.0),
    "float16": _precision(np.float16, 3e-2, 3e-2, 4.0),
}


@dataclass(frozen=True)
class Options:
    """The keyword options of a check, validated (see :func:`gradcheck.check_layer`)."""

    mode: str = "auto"
    seed: int = 0
    dout: tuple | None = None
    torch_fn: object = None
    step: float | None = None
    fd_tolerance: float | None = None
    torch_tolerance: float | None = None
    complex_step: bool | None = None
    name: str | None = None
    fd_exclude: dict | None = None
    coloring: object = None
    strict: bool = False
    threads: int | None = 1


def require_finite(name, array):
    """Raise a ValueError naming ``name`` if ``array`` holds NaN or inf."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`{name}` has {int(bad.sum())} non-finite value(s) (NaN or inf), "
            f"the first at index {first}: {array[first].item()!r}"
        )


def require_plain_array(name, array):
    """Raise a TypeError naming ``name`` unless ``array`` is an ndarray (not a matrix or masked).

    A ``numpy.matrix`` is refused, not converted: its ``*`` is a matrix product
    and its rows stay 2-D, so the code would compute something else on it than
    on the array the checker perturbs. A masked array is refused: the code may
    honour the mask while the checker judges the data beneath it.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(array).__name__}")
    if isinstance(array, np.matrix):
        raise TypeError(f"`{name}` is a numpy.matrix, whose `*` is a matrix product: pass "
                        f"np.asarray({name}) (a plain ndarray)")
    if isinstance(array, np.ma.MaskedArray):
        raise TypeError(f"`{name}` is a masked array (numpy.ma.MaskedArray): the code may honour "
                        f"its mask while gradcheck judges the data beneath it; pass "
                        f"{name}.filled(value), or np.asarray({name}) for the data as it is")


def validate_float(name, array, *, empty=False):
    """Raise unless ``array`` is a finite float ndarray (a dtype in :data:`PRECISIONS`).

    Also refused: a ``numpy.matrix`` or masked array (:func:`require_plain_array`)
    and, unless ``empty``, an array with no entries (nothing to differentiate).
    """
    require_plain_array(name, array)
    if array.dtype.name not in PRECISIONS:
        raise TypeError(
            f"`{name}` has dtype {array.dtype}; gradients are checked in floating point "
            f"({', '.join(PRECISIONS)}): convert it with .astype(np.float64)"
        )
    if array.size == 0 and not empty:
        raise ValueError(f"`{name}` has shape {array.shape}, with no entries: there is nothing "
                         "to differentiate")
    require_finite(name, array)


# ----------------------------------------------------------------- the options, validated

def _type_name(value):
    return type(value).__name__


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _is_int(value):
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (numbers.Integral, np.integer)) and not _is_bool(value)


def _mode(value):
    """One of :data:`MODES`; anything else (None, a number) is a ValueError, as a bad choice."""
    if not (isinstance(value, str) and value in MODES):
        raise ValueError(f"`mode` must be one of {MODES}, got {value!r} ({_type_name(value)})")
    return str(value)


def _seed(value):
    """A non-negative integer; None is refused (a check is reproducible from its seed)."""
    if not _is_int(value):
        raise TypeError(f"`seed` must be a non-negative integer (Python or NumPy), got {value!r}"
                        f" ({_type_name(value)})"
                        + ("; for a random seed pass one, e.g. secrets.randbelow(2**32)"
                           if value is None else ""))
    if value < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {value!r}")
    return int(value)


def _positive(key, value):
    """None, or a positive finite real number (Python or NumPy int or float, not bool)."""
    if value is None:
        return None
    if _is_bool(value) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"`{key}` must be a positive finite number, got {value!r} "
                        f"({_type_name(value)})")
    try:
        number = float(value)
    except OverflowError:
        number = np.inf
    if not (np.isfinite(number) and number > 0):
        raise ValueError(f"`{key}` must be a positive finite number, got {value!r}")
    return number


def _flag(key, value, none=False):
    """True or False (NumPy's too), or None when ``none``."""
    if value is None and none:
        return None
    if not _is_bool(value):
        allowed = "True, False or None" if none else "True or False"
        raise TypeError(f"`{key}` must be {allowed}, got {value!r} ({_type_name(value)})")
    return bool(value)


def _threads(value):
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(f"`threads` must be a positive integer or None, got {value!r} "
                        f"({_type_name(value)})")
    if value < 1:
        raise ValueError(f"`threads` must be a positive integer or None, got {value!r}")
    return int(value)


def _name(value):
    if value is not None and not isinstance(value, str):
        raise TypeError(f"`name` must be a str or None, got {value!r} ({_type_name(value)})")
    return None if value is None else str(value)


def _torch_fn(value, torch_args):
    """None, or a callable that takes ``torch_args``; torch must then be importable."""
    if value is None:
        return None
    if not callable(value):
        raise TypeError(f"`torch_fn` must be callable, got {value!r} ({_type_name(value)})")
    if torch_args is not None:
        try:
            signature = inspect.signature(value)
        except (TypeError, ValueError):
            signature = None          # a builtin without one: its call will say
        if signature is not None:
            try:
                signature.bind(*torch_args)
            except TypeError as error:
                raise TypeError(f"`torch_fn` ({value!r}) cannot be called as torch_fn("
                                f"{', '.join(torch_args)}), as gradcheck calls it: {error}"
                                ) from None
    from gradcheck.torch_oracle import require_torch

    require_torch()
    return value


def _douts(dout):
    """``dout`` as a tuple of float64 arrays (one per output), or None.

    A tuple (or a list of arrays) is one array per output; a list of numbers or
    lists, or a tuple holding a list, is refused as ambiguous, and so is a ``dout``
    zero everywhere (every gradient would be 0 and any backward would pass).
    """
    if dout is None:
        return None
    if (isinstance(dout, list) and not all(isinstance(v, np.ndarray) for v in dout)) or (
            isinstance(dout, tuple) and any(isinstance(v, (tuple, list)) for v in dout)):
        raise TypeError(f"`dout` must be a numpy.ndarray (or, for a function with several "
                        f"outputs, a tuple of them), got {_type_name(dout)}: pass "
                        "np.array(dout)")
    douts = tuple(dout) if isinstance(dout, (tuple, list)) else (dout,)
    for k, value in enumerate(douts):
        validate_float("dout" if len(douts) == 1 else f"dout[{k}]",
                       np.asarray(value) if np.isscalar(value) else value, empty=True)
    douts = tuple(np.asarray(value, dtype=np.float64) for value in douts)
    if any(d.size for d in douts) and not any(np.any(d) for d in douts):
        raise ValueError("`dout` is zero everywhere: every gradient would be 0 and any backward "
                         "would pass; leave it None (a random one) or give one with nonzero "
                         "entries (zero for some outputs is fine)")
    return douts


def _by_tensor(key, value, tensors, kind):
    """A dict of tensor name to an array of ``kind`` ("bool" or "integer") and its shape."""
    if not isinstance(value, dict):
        raise TypeError(f"`{key}` must be a dict of tensor name to {kind} array"
                        + (", or False" if key == "coloring" else "")
                        + f", got {value!r} ({_type_name(value)})")
    checked = {}
    for name, array in value.items():
        where = f"{key}[{name!r}]"
        if tensors is not None and name not in tensors:
            raise ValueError(f"`{key}` has key {name!r}, which names no tensor of this check; "
                             f"the tensors are {list(tensors)}")
        require_plain_array(where, array)
        dtype_ok = (array.dtype == bool if kind == "bool"
                    else np.issubdtype(array.dtype, np.integer))
        if not dtype_ok:
            raise TypeError(f"`{where}` has dtype {array.dtype}; it must be "
                            f"{'a bool' if kind == 'bool' else 'an integer'} array")
        shape = None if tensors is None else tuple(np.shape(tensors[name]))
        if shape is not None and array.shape != shape:
            raise ValueError(f"`{where}` must be {'a boolean' if kind == 'bool' else 'an integer'}"
                             f" array of shape {shape} (tensor {name!r}), got shape {array.shape}")
        checked[name] = array
    return checked


def _fd_exclude(value, tensors, torch_fn):
    """The ``fd_exclude`` masks; without ``torch_fn``, none may exclude a whole tensor."""
    if value is None:
        return None
    masks = _by_tensor("fd_exclude", value, tensors, "bool")
    if torch_fn is None:
        for name, mask in masks.items():
            if mask.size and mask.all():
                raise ValueError(
                    f"`fd_exclude[{name!r}]` excludes every entry of {name!r}: nothing of "
                    f"{name!r} would be compared and any gradient of it would pass; exclude "
                    "some entries only, or give `torch_fn` to compare them against torch")
    return masks


def _coloring(value, tensors):
    if value is None or (_is_bool(value) and not value):
        return None if value is None else False
    return _by_tensor("coloring", value, tensors, "integer")


#: The options every entry point takes, with their defaults.
OPTION_NAMES = tuple(f.name for f in fields(Options))


def make_options(given, *, tensors=None, torch_args=None):
    """Validate every option of a check, once; the one place options are checked.

    Parameters
    ----------
    given : dict
        The options the caller passed, by name (any of :data:`OPTION_NAMES`;
        the others take :class:`Options`' defaults).
    tensors : dict of str to ndarray, optional
        The differentiable tensors of the check, by name: the keys that
        ``coloring`` and ``fd_exclude`` may use, and the shapes of their masks.
    torch_args : sequence of str, optional
        The arguments ``torch_fn`` is called with, by name (its arity is checked).

    Returns
    -------
    Options

    Raises
    ------
    TypeError, ValueError
        Naming the option and its value. The rules: ``mode`` one of
        :data:`MODES`; ``seed`` a non-negative Python or NumPy integer (not a
        bool; None is refused, since a check is reproducible from its seed);
        ``step``, ``fd_tolerance``, ``torch_tolerance`` None or a positive
        finite Python or NumPy int or float (not a bool); ``complex_step``
        True, False or None and ``strict`` True or False (NumPy bools too);
        ``threads`` None or a positive integer; ``name`` None or a str;
        ``torch_fn`` None or a callable taking ``torch_args`` (torch then
        installed); ``dout`` None, a finite float array or a tuple of them
        (a nested list is refused as ambiguous), not zero everywhere
        (every gradient would be 0 and any backward would pass; zero for some
        outputs is fine); ``fd_exclude`` (bool) and ``coloring`` (integer, or
        False) dicts keyed by tensor names with arrays of the tensor's shape.
        Without ``torch_fn``, an ``fd_exclude`` mask may not exclude every
        entry of its tensor: nothing of that tensor would be compared (with
        ``torch_fn`` the excluded entries are still compared against torch,
        so any mask is taken).
    ModuleNotFoundError
        A ``torch_fn`` is given and torch is not installed.
    """
    unknown = [key for key in given if key not in OPTION_NAMES]
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; the options are {list(OPTION_NAMES)}")
    o = {**{f.name: f.default for f in fields(Options)}, **given}
    checked = dict(
        mode=_mode(o["mode"]), seed=_seed(o["seed"]), dout=_douts(o["dout"]),
        step=_positive("step", o["step"]),
        fd_tolerance=_positive("fd_tolerance", o["fd_tolerance"]),
        torch_tolerance=_positive("torch_tolerance", o["torch_tolerance"]),
        complex_step=_flag("complex_step", o["complex_step"], none=True), name=_name(o["name"]),
        fd_exclude=_fd_exclude(o["fd_exclude"], tensors, o["torch_fn"]),
        coloring=_coloring(o["coloring"], tensors), strict=_flag("strict", o["strict"]),
        threads=_threads(o["threads"]))
    # last: with every other option valid, torch is imported only for a check that will run
    return Options(torch_fn=_torch_fn(o["torch_fn"], torch_args), **checked)
