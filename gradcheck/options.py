"""The options of a check, validated once, and the precision table keyed by dtype.

Every entry point (:func:`gradcheck.check_layer`, :func:`gradcheck.check_function`,
:func:`gradcheck.check_value_and_grad`) takes the same keyword options; they are
checked here, with the argument and its value named, and travel to the core as
one frozen :class:`Options`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["FD_TOLERANCE", "TORCH_TOLERANCE", "COMPLEX_STEP_TOLERANCE", "AUTO_MAX_CALLS",
           "AUTO_MAX_SECONDS", "FAST_FALLBACK_LIMIT", "MODES", "Precision", "PRECISIONS", "Options",
           "make_options", "require_finite", "validate_float"]

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


def validate_float(name, array):
    """Raise unless ``array`` is a finite ndarray of a dtype in :data:`PRECISIONS`."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.name not in PRECISIONS:
        raise TypeError(
            f"`{name}` has dtype {array.dtype}; gradients are checked in floating point "
            f"({', '.join(PRECISIONS)}): convert it with .astype(np.float64)"
        )
    require_finite(name, array)


def _positive(key, value):
    if value is None:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{key}` must be a positive finite number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{key}` must be a positive finite number, got {value!r}")


def _douts(dout):
    """``dout`` as a tuple of arrays (one per output), or None."""
    if dout is None:
        return None
    douts = tuple(dout) if isinstance(dout, (tuple, list)) else (dout,)
    for k, value in enumerate(douts):
        validate_float("dout" if len(douts) == 1 else f"dout[{k}]", np.asarray(value)
                       if np.isscalar(value) else value)
    return tuple(np.asarray(value, dtype=np.float64) for value in douts)


def make_options(*, mode="auto", seed=0, dout=None, torch_fn=None, step=None,
                 fd_tolerance=None, torch_tolerance=None, complex_step=None, name=None,
                 fd_exclude=None, coloring=None, strict=False, threads=1):
    """Return validated :class:`Options`; raise TypeError/ValueError naming a bad argument."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}")
    for key, value in (("step", step), ("fd_tolerance", fd_tolerance),
                       ("torch_tolerance", torch_tolerance)):
        _positive(key, value)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`seed` must be a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    if threads is not None and (isinstance(threads, (bool, np.bool_))
                                or not isinstance(threads, numbers.Integral) or threads < 1):
        raise ValueError(f"`threads` must be a positive integer or None, got {threads!r}")
    if not isinstance(strict, (bool, np.bool_)):
        raise TypeError(f"`strict` must be True or False, got {strict!r}")
    if complex_step is not None and not isinstance(complex_step, (bool, np.bool_)):
        raise TypeError(f"`complex_step` must be True, False or None, got {complex_step!r}")
    if torch_fn is not None and not callable(torch_fn):
        raise TypeError(f"`torch_fn` must be callable, got {torch_fn!r} "
                        f"({type(torch_fn).__name__})")
    if fd_exclude is not None and not isinstance(fd_exclude, dict):
        raise TypeError(f"`fd_exclude` must be a dict of tensor name to boolean mask, "
                        f"got {fd_exclude!r} ({type(fd_exclude).__name__})")
    if coloring is not None and coloring is not False and not isinstance(coloring, dict):
        raise TypeError(f"`coloring` must be a dict of tensor name to integer array, or False, "
                        f"got {coloring!r} ({type(coloring).__name__})")
    return Options(mode=mode, seed=int(seed), dout=_douts(dout), torch_fn=torch_fn, step=step,
                   fd_tolerance=fd_tolerance, torch_tolerance=torch_tolerance,
                   complex_step=None if complex_step is None else bool(complex_step),
                   name=None if name is None else str(name),
                   fd_exclude=fd_exclude, coloring=coloring, strict=bool(strict),
                   threads=None if threads is None else int(threads))
