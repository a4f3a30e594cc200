"""check_layer: a layer's backward pass against finite differences and torch.

The flow is the project's: a layer and an input → arrays (copies; the
caller's are never touched) → self-checks → gradients (the layer's backward,
numerical differences, optionally torch autograd) → per-tensor errors, with
kinks recognized and failures diagnosed → a CheckResult.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from gradcheck import numerical as num
from gradcheck.diagnosis import diagnose
from gradcheck.metrics import error_floor, relative_errors
from gradcheck.result import CheckResult, TensorCheck
from gradcheck.selfcheck import changed, nondeterminism, nonlinearity

__all__ = ["check_layer", "assert_layer_gradients", "FD_TOLERANCE", "TORCH_TOLERANCE",
           "COMPLEX_STEP_TOLERANCE", "AUTO_FULL_LIMIT", "PRECISIONS", "Precision",
           "PrecisionWarning", "GroupingWarning"]

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
#: In mode "auto", a tensor is checked entry by entry when that takes at most
#: this many probes: its entries, or its groups when a grouping of entries that
#: move disjoint outputs is known (see check_layer's ``coloring``); larger ones
#: along one random direction.
AUTO_FULL_LIMIT = 4096
#: When the fast check meets a kink along its direction, tensors up to this
#: size are checked entry by entry instead, where kinks can be told apart.
FAST_FALLBACK_LIMIT = 100_000
#: Absolute noise of an oracle is Precision.noise_factor units of
#: u · (Σ|G ⊙ y| + Σ|G|) (divided by the step h for central differences): how
#: far rounding of the forward's outputs can move the estimate. Measured noise
#: is below 1 unit; 64 in float64 covers cancellation inside the forward (a
#: dense output sums n_prev terms larger than itself).
#: Suspect entries refined before giving up on a tensor that shows no kink:
#: a real bug makes every entry a suspect, and refining all would triple the cost.
_REFINE_PROBE = 32
MODES = ("auto", "full", "fast")


class PrecisionWarning(UserWarning):
    """The layer computes in less than float64: checked with looser tolerances."""


class GroupingWarning(UserWarning):
    """A declared grouping of entries was wrong: those entries were checked one by one."""


@dataclass(frozen=True)
class Precision:
    """Step and tolerances that fit a floating-point type (as jax keys its tolerances by dtype)."""

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
#: analytic gradient itself is rounded to ~eps·(condition), so the
#: tolerances sit ~30x above what correct layers measure (README). The noise
#: factor (see _rounding_scale) is smaller for them: the rounding measured on
#: dense layers is ~0.4 units, and a float64-sized margin would hide bugs.
PRECISIONS = {
    "float64": _precision(np.float64, FD_TOLERANCE, TORCH_TOLERANCE, 64.0),
    "float32": _precision(np.float32, 1e-3, 1e-4, 8.0),
    "float16": _precision(np.float16, 1e-1, 3e-2, 4.0),
}


def _layer_name(layer, name):
    if name is not None:
        return str(name)
    return str(getattr(layer, "name", None) or type(layer).__name__)


def _require_finite(name, array):
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`{name}` has {int(bad.sum())} non-finite value(s) (NaN or inf), "
            f"the first at index {first}: {array[first].item()!r}"
        )


def _validate_float(name, array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.name not in PRECISIONS:
        raise TypeError(
            f"`{name}` has dtype {array.dtype}; gradients are checked in floating point "
            f"({', '.join(PRECISIONS)}): convert it with .astype(np.float64)"
        )
    _require_finite(name, array)


def _validate_layer(layer):
    for attr in ("forward", "backward"):
        if not callable(getattr(layer, attr, None)):
            raise TypeError(
                f"`layer` must have a callable `{attr}` method (the Layer protocol), "
                f"got {type(layer).__name__} without one"
            )
    for attr in ("params", "grads"):
        if not isinstance(getattr(layer, attr, None), dict):
            raise TypeError(
                f"`layer.{attr}` must be a dict of str to numpy.ndarray, "
                f"got {type(getattr(layer, attr, None)).__name__}"
            )
    for key, value in layer.params.items():
        if key == "x":
            raise ValueError("`layer.params` may not have a key 'x': it names the input in results")
        _validate_float(f"layer.params[{key!r}]", value)


def _validate_options(mode, step, tolerances):
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}")
    for key, value in (("step", step), *tolerances.items()):
        if value is not None and not (isinstance(value, (int, float)) and np.isfinite(value)
                                      and value > 0):
            raise ValueError(f"`{key}` must be a positive finite number, got {value!r}")


def _validate_exclude(fd_exclude, shapes):
    if fd_exclude is None:
        return {}
    if not isinstance(fd_exclude, dict):
        raise TypeError(f"`fd_exclude` must be a dict of tensor name to boolean mask, "
                        f"got {type(fd_exclude).__name__}")
    for key, mask in fd_exclude.items():
        if key not in shapes:
            raise ValueError(f"`fd_exclude` has key {key!r}; the tensors are {sorted(shapes)}")
        if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.shape != shapes[key]:
            got = getattr(mask, "shape", type(mask).__name__), getattr(mask, "dtype", None)
            raise ValueError(f"`fd_exclude[{key!r}]` must be a boolean array of shape "
                             f"{shapes[key]}, got shape/dtype {got}")
    return dict(fd_exclude)


def _call_layer(what, method, array):
    try:
        return method(array)
    except Exception as error:
        error.add_note(f"(raised inside {what}, called by gradcheck.check_layer "
                       f"with an array of shape {array.shape})")
        raise


def _as_output(value, what, complex_=False):
    out = np.asarray(value)
    kinds = ("complex128",) if complex_ else tuple(PRECISIONS)
    if out.dtype.name not in kinds:
        raise TypeError(
            f"`{what}` gave dtype {out.dtype}; expected {' or '.join(kinds)}"
            + ("" if complex_ else ": gradients are checked in floating point")
        )
    _require_finite(what, out)
    return np.array(out, dtype=np.complex128 if complex_ else np.float64, copy=True)


class _Run:
    """The state of one check: the layer, working copies, the upstream gradient, counters."""

    def __init__(self, layer, x, precision):
        self.layer = layer
        self.x_work = x.copy()
        self.precision = precision
        self.calls = 0
        self.out_dtype = None

    def forward(self, x_in=None, complex_=False):
        self.calls += 1
        x_in = self.x_work.copy() if x_in is None else x_in
        raw = np.asarray(_call_layer("layer.forward(x)", self.layer.forward, x_in))
        self.out_dtype = self.out_dtype or raw.dtype.name
        return _as_output(raw, "layer.forward(x)", complex_)

    def backward(self, dout):
        """Run forward then backward(dout); return ({"x": dx, param: grad}, dout as passed)."""
        self.forward()
        passed = dout.copy()
        dx = _call_layer("layer.backward(dout)", self.layer.backward, passed)
        grads = {"x": _as_output(dx, "layer.backward(dout)")}
        if grads["x"].shape != self.x_work.shape:
            raise ValueError(f"`layer.backward(dout)` returned shape {grads['x'].shape}, "
                             f"expected x.shape {self.x_work.shape}")
        for key, value in self.layer.params.items():
            if key not in self.layer.grads:
                raise ValueError(
                    f"`layer.grads` is missing {key!r} after backward: it has "
                    f"{sorted(self.layer.grads)}, `layer.params` has {sorted(self.layer.params)}")
            g = _as_output(self.layer.grads[key], f"layer.grads[{key!r}]")
            if g.shape != value.shape:
                raise ValueError(f"`layer.grads[{key!r}]` has shape {g.shape}, expected "
                                 f"{value.shape} like `layer.params[{key!r}]`")
            grads[key] = g
        return grads, passed


def _self_checks(run, x, snapshot, G):
    """Run the self-checks; return (problems, analytic gradients, output y)."""
    layer, problems = run.layer, []

    def params_intact(when):
        for key, before in snapshot.items():
            found = changed(f"{when} modified layer.params[{key!r}]", before, layer.params[key])
            if found:
                problems.append(found + "; gradcheck restored it")
                np.copyto(layer.params[key], before)

    x_in = x.copy()
    y = run.forward(x_in)
    found = changed("layer.forward modified its input x", x, x_in)
    if found:
        problems.append(found + " (an in-place operation on x? the caller's array would be "
                                "corrupted; gradcheck passes copies)")
    params_intact("layer.forward")
    found = nondeterminism(y, run.forward())
    if found:
        problems.append(found)
    grads_zero, _ = run.backward(np.zeros_like(G))
    grads_two, _ = run.backward(2 * G)
    analytic, passed = run.backward(G)
    found = changed("layer.backward modified its argument dout", G, passed)
    if found:
        problems.append(found + " (an in-place update of dout?)")
    params_intact("layer.backward")
    found = nonlinearity(grads_zero, analytic, grads_two)
    if found:
        problems.append(found)
    return problems, analytic, y


def _use_complex_step(layer, complex_step, precision_name):
    if complex_step is None:
        return bool(getattr(layer, "complex_safe", False)) and precision_name == "float64"
    if complex_step and precision_name != "float64":
        raise ValueError(f"`complex_step`=True needs a float64 layer, this one computes in "
                         f"{precision_name}")
    return bool(complex_step)


class _Tensor:
    """One tensor to differentiate: its name, the real array perturbed in place, and how."""

    def __init__(self, run, name):
        self.run, self.name = run, name
        self.array = run.x_work if name == "x" else run.layer.params[name]

    def evaluate(self):
        return self.run.forward()

    def complex_numeric(self, fn, *args):
        """Call ``fn(evaluate_complex, complex_array, *args)`` with this tensor made complex."""
        run, layer = self.run, self.run.layer
        carray = self.array.astype(np.complex128)
        if self.name == "x":
            return fn(lambda: run.forward(carray.copy(), complex_=True), carray, *args)
        original = layer.params[self.name]
        layer.params[self.name] = carray
        try:
            return fn(lambda: run.forward(complex_=True), carray, *args)
        finally:
            layer.params[self.name] = original


def _grouped(tensor, G, use_complex, step, colors):
    if use_complex:
        return tensor.complex_numeric(
            lambda evaluate, array: num.grouped_difference(evaluate, array, G, colors,
                                                           complex_=True))
    return num.grouped_difference(tensor.evaluate, tensor.array, G, colors, step=step)


def _full(tensor, G, use_complex, step, colorings, give_up=False):
    """Every entry of one tensor: by groups where a grouping holds, else entry by entry
    (or, with ``give_up``, None: the caller checks it along a direction instead)."""
    method = "complex_step" if use_complex else "full"
    for source, colors in colorings:
        if 2 * len(np.unique(colors)) >= colors.size:
            continue        # two probes per group: no gain unless groups halve the entries
        found = _grouped(tensor, G, use_complex, step, colors)
        if found.grad is not None:
            return found.grad, method
        if source != "guessed":
            warnings.warn(GroupingWarning(
                f"{source} puts entries of {tensor.name!r} that move a common output in one "
                "group; checked entry by entry instead"), stacklevel=4)
    if give_up:
        return None
    if use_complex:
        grad, _ = tensor.complex_numeric(num.complex_step, G)
        return grad, method
    grad, _ = num.central_difference(tensor.evaluate, tensor.array, G, step=step)
    return grad, method


def _colorings(layer, name, shape, out_shape, given):
    """The groupings to try for one tensor, best first: given, declared by the layer, guessed."""
    found = []
    if given is not None and not isinstance(given, dict):
        raise TypeError(f"`coloring` must be a dict of tensor name to integer array, or False, "
                        f"got {type(given).__name__}")
    if given is not None and name in given:
        colors = given[name]
        if not (isinstance(colors, np.ndarray) and colors.shape == shape
                and np.issubdtype(colors.dtype, np.integer)):
            raise ValueError(f"`coloring[{name!r}]` must be an integer array of shape {shape}, "
                             f"got {getattr(colors, 'shape', type(colors).__name__)}")
        found.append((f"coloring[{name!r}]", colors))
    declared = getattr(layer, "jacobian_coloring", None)
    if callable(declared):
        colors = declared(name, shape)
        if colors is not None:
            found.append((f"layer.jacobian_coloring({name!r})", np.asarray(colors).reshape(shape)))
    if name == "x" and len(shape) >= 2 and len(out_shape) >= 1:
        # Guess that the examples of a batch are independent, along the last or the
        # first axis: verified by grouped_difference, so a wrong guess costs calls only.
        for x_axis, y_axis in ((-1, -1), (0, 0)):
            if shape[x_axis] == out_shape[y_axis] > 1:
                others = np.arange(int(np.prod(shape)) // shape[x_axis])
                colors = np.moveaxis(np.broadcast_to(
                    others.reshape(np.delete(shape, x_axis % len(shape)))[..., None],
                    (*np.delete(shape, x_axis % len(shape)), shape[x_axis])), -1, x_axis)
                found.append(("guessed", colors))
    return found


def _rounding_scale(G, y):
    """``Σ|G ⊙ y| + Σ|G|``: the size of what rounding acts on, in units of u.

    The first term is the projected output; the second stands for terms of
    unit size inside the layer that cancel (``σ(Z) - Y`` of a saturated loss:
    its gradient is tiny, but computed from numbers near 1).
    """
    return float(np.sum(np.abs(G * y)) + np.sum(np.abs(G)))


def _refine_entries(tensor, analytic, numeric, err, tol, G, y0, precision, noise, exclude,
                    keep_smooth=False):
    """Look again at the entries over tolerance: kinks are left out, smooth ones re-estimated
    (unless ``keep_smooth``: a complex-step value is already better than any difference)."""
    nondiff = np.zeros(numeric.shape, dtype=bool)
    outside = np.zeros(numeric.shape, dtype=bool)
    suspects = np.argwhere((err > tol) & ~exclude)
    suspects = suspects[np.argsort(-err[tuple(suspects.T)], kind="stable")]
    numeric = numeric.copy()
    informative = False
    for k, index in enumerate(map(tuple, suspects)):
        if k >= _REFINE_PROBE and not informative:
            break
        probe, h = num.entry_probe(tensor.evaluate, tensor.array, index, precision.step)
        found = num.refine(probe, h, G, y0, noise=noise)
        a = analytic[index]
        slack = tol * max(abs(found.low), abs(found.high), abs(a))
        if found.kink and found.low - slack <= a <= found.high + slack:
            nondiff[index] = informative = True
        elif found.kink:
            numeric[index] = found.low if a < found.low else found.high
            outside[index] = True
        elif not keep_smooth:
            informative |= abs(a - found.estimate) <= tol * max(abs(a), abs(found.estimate))
            numeric[index] = found.estimate
    return numeric, nondiff, outside


def _fast(tensor, analytic, G, y0, use_complex, precision, noise, noise_delta, tol, rng):
    """Check one tensor along a random direction; returns a TensorCheck's fields."""
    direction = rng.standard_normal(tensor.array.shape)
    direction /= max(float(np.max(np.abs(direction), initial=0.0)), 1e-300)
    if use_complex:
        numeric, _ = tensor.complex_numeric(
            lambda evaluate, array: num.directional_difference(evaluate, array, G, direction,
                                                               complex_=True))
    else:
        numeric, _ = num.directional_difference(tensor.evaluate, tensor.array, G, direction,
                                                step=precision.step)
    projected = float(np.sum(analytic * direction))
    scale = float(np.sum(np.abs(analytic * direction)))
    floor = max(error_floor([(np.array([scale]), np.array([numeric]))], noise, tol),
                np.finfo(np.float64).tiny)
    kink = False
    err = float(relative_errors(np.array([projected]), np.array([numeric]), floor)[0])
    if err > tol:
        # A kink along the direction (ReLU at 0, ties) makes the directional
        # derivative one-sided; it cannot be judged there, but a smooth point
        # can: the Richardson estimate decides.
        probe, h = num.direction_probe(tensor.evaluate, tensor.array, direction, precision.step)
        found = num.refine(probe, h, G, y0, noise=noise_delta)
        kink = found.kink
        numeric = found.estimate
        err = float(relative_errors(np.array([projected]), np.array([numeric]), floor)[0])
    return projected, numeric, err, floor, kink


def _sizes(x, y):
    named = [(f"x.shape[{i}]", n) for i, n in enumerate(x.shape)]
    named += [(f"output.shape[{i}]", n) for i, n in enumerate(y.shape)]
    return named


def _tensor_check(name, gradient, oracle, method, analytic, reference, floor, tol, exclude,
                  nondiff, sizes, outside=None):
    skip = exclude | nondiff
    reference = np.where(skip, analytic, reference)
    err = relative_errors(analytic, reference, floor)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape)) if err.size else ()
    mismatch = err > tol
    batch_axes = {0, analytic.ndim - 1} if name == "x" and analytic.ndim > 1 else set()
    return TensorCheck(
        tensor=name, gradient=gradient, oracle=oracle, shape=tuple(analytic.shape),
        max_rel_error=float(err.max(initial=0.0)),
        max_abs_error=float(np.max(np.abs(analytic - reference), initial=0.0)),
        tolerance=float(tol), floor=float(floor), mismatched=int(np.count_nonzero(mismatch)),
        worst_index=worst,
        analytic=float(analytic[worst]) if err.size else 0.0,
        reference=float(reference[worst]) if err.size else 0.0,
        excluded=int(np.count_nonzero(exclude)), method=method,
        nondifferentiable=int(np.count_nonzero(nondiff & ~exclude)),
        diagnosis=tuple(diagnose(analytic, reference, mismatch, sizes=sizes,
                                 batch_axes=batch_axes)) + _kink_note(outside, mismatch),
    )


def _kink_note(outside, mismatch):
    count = 0 if outside is None else int(np.count_nonzero(outside & mismatch))
    if not count:
        return ()
    return (f"{count} of the wrong entries sit at kinks (one-sided derivatives disagree) with "
            "the analytic value outside them: wrong there, or a tie shared by overlapping "
            "windows, which central differences cannot judge (leave such entries out with "
            "fd_exclude and compare with torch, or make the layer complex-safe)",)


def _transforms(array):
    """Yield (description, transformed copy) of a parameter: ROT180 and transposes of axis pairs."""
    pairs = [(0, 1)] + ([(array.ndim - 2, array.ndim - 1)] if array.ndim > 2 else [])
    for i, j in pairs:
        if array.shape[i] > 1 or array.shape[j] > 1:
            yield f"rotated by 180° over axes ({i}, {j}) (a kernel not flipped by ROT180?)", \
                np.flip(array, axis=(i, j)).copy()
        if array.shape[i] == array.shape[j] > 1:
            yield f"with axes {i} and {j} swapped (a missing or extra transpose?)", \
                np.swapaxes(array, i, j).copy()


def _structural_diagnosis(run, tensor, analytic, G, precision, rng):
    """Is the analytic gradient that of the same layer with a parameter transformed?

    For each parameter other than the tensor itself, and each of its
    transforms, compares the derivative along one random direction (2 calls)
    with the analytic gradient's projection.
    """
    layer = run.layer
    direction = rng.standard_normal(analytic.shape)
    direction /= max(float(np.max(np.abs(direction), initial=0.0)), 1e-300)
    projected = float(np.sum(analytic * direction))
    scale = float(np.sum(np.abs(analytic * direction)))
    for key, value in list(layer.params.items()):
        if key == tensor.name or value.ndim < 2:
            continue
        for description, transformed in _transforms(value):
            layer.params[key] = transformed
            try:
                numeric, _ = num.directional_difference(tensor.evaluate, tensor.array, G,
                                                        direction, step=precision.step)
            finally:
                layer.params[key] = value
            if abs(numeric - projected) <= 1e-6 * max(scale, abs(numeric)):
                return (f"analytic ≈ the gradient of the same layer with {key!r} {description}",)
    return ()


def _label(name, input_name):
    return "d" + (input_name if name == "x" else name)


def check_layer(layer, x, *, mode="auto", seed=0, dout=None, torch_fn=None, step=None,
                fd_tolerance=None, torch_tolerance=None, complex_step=None, name=None,
                fd_exclude=None, coloring=None):
    """Check a layer's backward pass against numerical differences (and torch).

    First the self-checks every correct layer passes: forward leaves ``x`` and
    the params alone and gives the same output twice; backward leaves
    ``dout`` alone and is linear in it. Then the layer's backward, given a
    fixed upstream gradient ``G`` (random, from ``seed``, unless ``dout`` is
    given), is compared with numerical derivatives of
    ``J = <G, layer.forward(x)>`` with respect to ``x`` and every parameter,
    and with torch autograd when ``torch_fn`` is given. The Jacobian is never
    formed. The relative error is ``|a - r| / max(|a|, |r|, s)`` (see
    :mod:`gradcheck.metrics`), robust where the true gradient is 0. An entry
    over the tolerance gets a second look: at a kink (one-sided derivatives
    disagree: ReLU at 0, a max-pool tie) it is left out if the analytic value
    lies between them, and counted as non-differentiable; elsewhere a
    Richardson-refined difference decides. A failing tensor is diagnosed
    (constant factor, sign, transpose, ROT180, borders, batch, few entries).

    Parameters
    ----------
    layer : Layer
        Has ``params`` (dict of float ndarrays, perturbed in place during the
        check and restored bit for bit), ``grads`` (filled by backward, same
        keys and shapes), ``forward(x) -> y`` and ``backward(dout) -> dx``. A
        layer with ``complex_safe = True`` is differentiated by complex step.
    x : ndarray, float64 (float32/float16 with a PrecisionWarning)
        Not modified.
    mode : {"auto", "full", "fast"}, default "auto"
        ``"full"``: every entry (central differences, 2 forward calls each; or
        complex step, 1 call). ``"fast"``: each tensor along one random
        direction (2 calls per tensor), which cannot localize an error.
        ``"auto"``: full for tensors of at most :data:`AUTO_FULL_LIMIT` entries,
        fast for larger ones. The result's checks say which was used.
    seed : int, default 0
        Seeds ``G`` and the random directions.
    dout : ndarray, shape of ``layer.forward(x)``, optional
        The upstream gradient ``G`` to use instead of a random one.
    torch_fn : callable, optional
        ``torch_fn(x, params) -> Tensor``, the same layer in torch (float64,
        same layout); adds the "torch" oracle. torch is imported only then.
    step : float, optional
        Relative step of the central differences; default ``cbrt(eps)`` of the
        layer's precision.
    fd_tolerance, torch_tolerance : float, optional
        Largest relative error accepted against each oracle; defaults from
        :data:`PRECISIONS` (the complex step uses :data:`COMPLEX_STEP_TOLERANCE`).
    complex_step : bool, optional
        Force (True) or forbid (False) complex-step differentiation; default:
        when the layer says ``complex_safe = True`` and computes in float64.
    name : str, optional
        The layer's name in the result; default its ``name`` attribute or class.
    fd_exclude : dict of str to bool ndarray, optional
        Entries left out of the numerical comparison, by tensor (``"x"`` or a
        parameter name; mask of the tensor's shape), e.g. known kinks. They are
        still compared against torch; ``TensorCheck.excluded`` counts them.
    coloring : dict of str to int ndarray, or False, optional
        Groups of entries, by tensor, that move disjoint sets of outputs: a full
        check then perturbs a whole group per forward call (Curtis–Powell–Reid).
        Also taken from ``layer.jacobian_coloring(name, shape)`` when the layer
        has it, and guessed for ``x`` (examples of a batch independent along its
        first or last axis). Every grouping is verified as it is used: an
        output moved by two entries of a group sends that tensor back to one
        entry at a time (with a ``GroupingWarning`` unless it was a guess), so a
        layer that couples its examples (batch norm) is still checked exactly.
        ``False`` turns grouping off.

    Returns
    -------
    CheckResult
        ``passed``, ``max_rel_error`` (``{"x": e, <param>: e}``), ``problems``
        (failed self-checks), one :class:`TensorCheck` per tensor and oracle in
        ``checks``, and ``message()`` saying what failed, where, and what it
        looks like.

    Raises
    ------
    TypeError, ValueError
        For a layer that breaks the protocol or input it cannot take: the
        message names the argument and its value.

    Warns
    -----
    PrecisionWarning
        When the layer computes in float32 or float16.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> from reference_impls import Dense
    >>> rng = np.random.default_rng(0)
    >>> layer = Dense(rng.normal(size=(3, 4)), rng.normal(size=(3, 1)))
    >>> result = gradcheck.check_layer(layer, rng.normal(size=(4, 5)))
    >>> result.passed
    True
    """
    _validate_layer(layer)
    _validate_float("x", x)
    _validate_options(mode, step, {"fd_tolerance": fd_tolerance, "torch_tolerance": torch_tolerance})
    shapes = {"x": x.shape, **{k: v.shape for k, v in layer.params.items()}}
    exclude = _validate_exclude(fd_exclude, shapes)
    label = _layer_name(layer, name)
    input_name = str(getattr(layer, "input_name", "x"))
    snapshot = {k: v.copy() for k, v in layer.params.items()}
    originals = dict(layer.params)
    precision_name = np.result_type(x, *snapshot.values()).name
    run = _Run(layer, x, PRECISIONS[precision_name])
    try:
        problems, analytic, y = _prepare(run, x, snapshot, dout, seed)
        if np.finfo(run.out_dtype).eps > np.finfo(precision_name).eps:
            precision_name = run.out_dtype   # the layer rounds its output to less
        precision = run.precision = PRECISIONS[precision_name]
        if precision_name != "float64":
            warnings.warn(PrecisionWarning(
                f"{label} computes in {precision_name}: checked with step {precision.step:.2g} "
                f"and tolerance {precision.fd_tolerance:g}; errors smaller than that cannot be "
                "seen. Check a float64 copy of the layer for a tight verdict."), stacklevel=2)
        use_complex = _use_complex_step(layer, complex_step, precision_name)
        fd_tol = fd_tolerance or (COMPLEX_STEP_TOLERANCE if use_complex else precision.fd_tolerance)
        G = y.G
        checks = _numerical_checks(run, analytic, G, y.value, mode, use_complex, precision,
                                   fd_tol, exclude, seed, input_name, step, x, coloring,
                                   problems)
        if torch_fn is not None:
            from gradcheck.torch_oracle import torch_gradients

            reference = torch_gradients(torch_fn, x, snapshot, G)
            noise = precision.noise_factor * precision.unit_roundoff * _rounding_scale(G, y.value)
            tol = torch_tolerance or precision.torch_tolerance
            floor = error_floor([(analytic[k], reference[k]) for k in analytic], noise, tol)
            none = np.zeros((), dtype=bool)
            checks += [
                _tensor_check(k, _label(k, input_name), "torch", "torch", analytic[k],
                              reference[k], floor, tol, np.broadcast_to(none, analytic[k].shape),
                              np.broadcast_to(none, analytic[k].shape), _sizes(x, y.value))
                for k in analytic
            ]
    finally:
        for key, value in originals.items():
            layer.params[key] = value
            np.copyto(value, snapshot[key])
    return CheckResult(layer=label, checks=tuple(checks), forward_calls=run.calls, seed=seed,
                       problems=tuple(problems), dtype=precision_name)


@dataclass(frozen=True)
class _Output:
    value: np.ndarray
    G: np.ndarray


def _prepare(run, x, snapshot, dout, seed):
    y = run.forward()
    if dout is None:
        G = np.random.default_rng(seed).standard_normal(y.shape)
    else:
        _validate_float("dout", dout)
        if dout.shape != y.shape:
            raise ValueError(
                f"`dout.shape` {dout.shape} must equal the shape of layer.forward(x), {y.shape}")
        G = dout.astype(np.float64)
    problems, analytic, y = _self_checks(run, x, snapshot, G)
    return problems, analytic, _Output(y, G)


def _numerical_checks(run, analytic, G, y0, mode, use_complex, precision, tol, exclude, seed,
                      input_name, step, x, coloring, problems):
    step = step or precision.step
    rng = np.random.default_rng([seed, 1])
    noise_delta = precision.noise_factor * precision.unit_roundoff * _rounding_scale(G, y0)
    noise = noise_delta if use_complex else noise_delta / step   # no division by a step
    sizes = _sizes(x, y0)
    tensors = [_Tensor(run, k) for k in analytic]
    # Grouping needs the probes' ratios to name an owner: float64 only, and a
    # layer that failed a self-check (nondeterministic) is not worth it.
    grouping = coloring is not False and precision.unit_roundoff < 1e-15 and not problems
    colorings = {t.name: _colorings(run.layer, t.name, t.array.shape, y0.shape,
                                    coloring if grouping else None) if grouping else []
                 for t in tensors}

    def cost(t):   # probes a full check of t needs at best: groups, else entries
        return min([t.array.size] + [len(np.unique(c)) for _, c in colorings[t.name]])

    fast = {t.name for t in tensors
            if mode == "fast" or (mode == "auto" and cost(t) > AUTO_FULL_LIMIT)}
    oracle = "complex_step" if use_complex else "finite_differences"
    numeric, methods, fast_results = {}, {}, {}
    for t in tensors:
        if t.name not in fast:
            # In auto mode a large tensor whose grouping fails goes to the fast check.
            give_up = mode == "auto" and t.array.size > AUTO_FULL_LIMIT
            found = _full(t, G, use_complex, step, colorings[t.name], give_up)
            if found is not None:
                numeric[t.name], methods[t.name] = found
                continue
        fast_results[t.name] = _fast(t, analytic[t.name], G, y0, use_complex, precision,
                                     noise, noise_delta, tol, rng)
        kink = fast_results[t.name][-1]
        if kink and t.array.size <= FAST_FALLBACK_LIMIT:
            del fast_results[t.name]     # a kink along the direction: check every entry
            numeric[t.name], methods[t.name] = _full(t, G, use_complex, step, [], False)
    floor = error_floor([(analytic[k], numeric[k]) for k in numeric], noise, tol)
    checks = []
    for t in tensors:
        mask = exclude.get(t.name, np.zeros(analytic[t.name].shape, dtype=bool))
        if t.name in fast_results:
            projected, value, err, f_floor, kink = fast_results[t.name]
            note = ("the layer has a kink along the random direction (ReLU at 0, ties?) and the "
                    f"tensor is too large to check entry by entry (> {FAST_FALLBACK_LIMIT}); "
                    "check a smaller input with mode='full', or make the layer complex-safe",
                    ) if kink and err > tol else ()
            checks.append(TensorCheck(
                tensor=t.name, gradient=_label(t.name, input_name), oracle=oracle,
                shape=tuple(analytic[t.name].shape), max_rel_error=err,
                max_abs_error=abs(projected - value), tolerance=float(tol), floor=f_floor,
                mismatched=int(err > tol), worst_index=(), analytic=projected, reference=value,
                method="fast", diagnosis=note))
            continue
        a, n = analytic[t.name], numeric[t.name]
        err = relative_errors(a, np.where(mask, a, n), floor)
        n, nondiff, outside = _refine_entries(t, a, n, err, tol, G, y0, precision, noise_delta,
                                              mask, keep_smooth=use_complex)
        check = _tensor_check(t.name, _label(t.name, input_name), oracle, methods[t.name],
                              a, n, floor, tol, mask, nondiff, sizes, outside)
        if not check.passed:
            extra = _structural_diagnosis(run, t, a, G, precision, rng)
            if extra:
                check = replace(check, diagnosis=extra + check.diagnosis)
        checks.append(check)
    return checks


def assert_layer_gradients(layer, x, **options):
    """Check a layer like :func:`check_layer` and raise if any gradient is wrong.

    Parameters
    ----------
    layer, x, **options
        As for :func:`check_layer`.

    Returns
    -------
    CheckResult
        When every gradient passed.

    Raises
    ------
    GradientCheckError
        An AssertionError whose message names each failing tensor and oracle,
        the number of mismatched entries, the worst entry's index with the
        analytic and reference values there, the tolerance and a diagnosis.
    """
    return check_layer(layer, x, **options).raise_if_failed()
