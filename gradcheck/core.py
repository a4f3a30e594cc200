"""The core of every check: a :class:`~gradcheck.case.Case` and options in, a CheckResult out.

The data flow is the project's::

    case → self-checks (outputs, G, the user's gradients)
         → plan (per tensor: every entry by groups or one by one, or one direction)
         → probes (central differences or complex step, kinks refined)
         → comparisons (per tensor and oracle: errors, kinks, shape, diagnosis)
         → verdict (CheckResult)

Nothing here knows whether a layer, a function pair or a value-and-gradient
function is behind the case: tensors are names, outputs one concatenated vector
``y`` with upstream gradient ``G``, and the checked scalar is ``J = <G, y>``.
"""

from __future__ import annotations

import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from gradcheck import numerical as num
from gradcheck.diagnosis import diagnose
from gradcheck.metrics import RHO, error_floor, gradient_scale, relative_errors
from gradcheck.options import (
    AUTO_MAX_CALLS, AUTO_MAX_SECONDS, COMPLEX_STEP_TOLERANCE, FAST_FALLBACK_LIMIT, PRECISIONS,
)
from gradcheck.result import ORACLE_LABELS, CheckResult, HazardWarning, TensorCheck
from gradcheck.selfcheck import changed, nondeterminism, nonlinearity

__all__ = ["check", "upstream_gradient", "G_STREAM", "PrecisionWarning", "GroupingWarning"]

#: Suspect entries refined before giving up on a tensor that shows no kink:
#: a real bug makes every entry a suspect, and refining all would triple the cost.
_REFINE_PROBE = 32
#: Tie sets judged per tensor (4 forward calls each, 8 when a set is widened to
#: every entry of its value); entries of further sets keep their own verdicts.
_MAX_TIE_SETS = 64


class PrecisionWarning(UserWarning):
    """The layer computes in less than float64: checked with looser tolerances."""


class GroupingWarning(UserWarning):
    """A declared grouping of entries was wrong: those entries were checked one by one."""


@dataclass(frozen=True)
class _Probing:
    """What every probe of one check shares: the case, ``G``, ``y``, precision, oracle."""

    case: object
    G: np.ndarray
    y0: np.ndarray
    precision: object
    use_complex: bool
    step: float
    tol: float
    noise: float          # absolute resolution of the numerical oracle's derivative
    noise_delta: float    # absolute rounding of a change of J
    rng: np.random.Generator
    #: None: steps ``step · max(1, |v|)``; a number m: steps ``step · m`` for every
    #: entry (a tensor of small values, or one whose probes crossed a domain edge).
    scale: float | None = None

    @cached_property
    def output_noise(self):
        """Per output, the absolute rounding of ``G ⊙ y`` (``noise_delta`` is their sum)."""
        precision = self.precision
        return precision.noise_factor * precision.unit_roundoff * (np.abs(self.G * self.y0)
                                                                   + np.abs(self.G))

    @property
    def oracle(self):
        return "complex_step" if self.use_complex else "finite_differences"


class _Tensor:
    """One tensor to differentiate: its name and the working array perturbed in place."""

    def __init__(self, case, name):
        self.case, self.name = case, name
        self.array = case.tensors[name]
        #: How its entries were probed, for the result (set by :func:`_full`).
        self.how = ""

    def evaluate(self):
        return self.case.evaluate()

    def complex_numeric(self, fn, *args):
        """Call ``fn(evaluate_complex, complex_array, *args)`` with this tensor made complex.

        A cast that drops an imaginary part (a complex value written into a
        real buffer) raises instead of silently reading a zero derivative.
        """
        carray = self.array.astype(np.complex128)
        with self.case.swapped(self.name, carray), _casts_raise():
            return fn(lambda: self.case.evaluate(complex_=True), carray, *args)


@contextmanager
def _casts_raise():
    """A cast that drops an imaginary part (``ComplexWarning``) raises while this is on."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        yield


# ------------------------------------------------------------------------ the check

def check(case, options):
    """Check ``case`` with ``options``; return a :class:`CheckResult`."""
    with _limited_threads(options.threads):
        return _check(case, options)


@contextmanager
def _limited_threads(threads):
    """BLAS (threadpoolctl) and torch on ``threads`` threads during a check; None: as they are.

    A check is a long run of small forward calls: on a busy machine each call
    of a multithreaded BLAS waits for its threads, many times slower.
    """
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    from gradcheck.torch_oracle import torch_threads

    with threadpool_limits(limits=threads), torch_threads(threads):
        yield


def _check(case, options):
    exclude = dict(options.fd_exclude or {})   # validated by make_options
    precision_name = np.result_type(*case.tensors.values()).name
    precision = PRECISIONS[precision_name]
    problems, hazards, checks = [], [], []
    try:
        y, G, problems, hazards, analytic = _self_checks(case, options.dout, options.seed)
        for hazard in hazards:
            warnings.warn(HazardWarning(f"{case.name}: {hazard}"), stacklevel=4)
        if np.finfo(case.out_dtype).eps > np.finfo(precision_name).eps:
            precision_name = case.out_dtype   # the user's code rounds its output to less
        precision = PRECISIONS[precision_name]
        if precision_name != "float64":
            warnings.warn(PrecisionWarning(
                f"{case.name} computes in {precision_name}: checked with step "
                f"{precision.step:.2g} and tolerance {precision.fd_tolerance:g}; errors smaller "
                "than that cannot be seen. Check a float64 copy of it for a tight verdict."),
                stacklevel=4)
        case.probing = True
        use_complex = _use_complex_step(case, options.complex_step, precision_name)
        analytic, shape_notes = _conform(analytic, case.tensors)
        probing = _probing(case, G, y, precision, bool(use_complex), options)
        checks = _numerical_checks(probing, analytic, exclude, options, problems,
                                   tested=use_complex is None)
        if options.torch_fn is not None:
            checks += _torch_checks(probing, analytic, options)
        checks = [_with_shape_note(c, shape_notes.get(c.tensor)) for c in checks]
    finally:
        case.restore()
    return CheckResult(layer=case.name, checks=tuple(checks), forward_calls=case.calls,
                       seed=options.seed, problems=tuple(problems), dtype=precision_name,
                       hazards=tuple(hazards), strict=options.strict, notes=tuple(case.notes))


#: The stream of the random upstream gradient: ``default_rng([seed, G_STREAM])``.
#: Not ``default_rng(seed)`` itself, which users draw their inputs from: an
#: input equal to ``G`` puts ``G`` where a normalization's backward is nearly
#: zero (a batch norm fed its own input as ``dout``) and hides bugs there.
G_STREAM = 0x4703


def upstream_gradient(seed, size):
    """The upstream gradient a check with ``seed`` draws: standard normal, ``size`` entries.

    Parameters
    ----------
    seed : int
    size : int or tuple of int

    Returns
    -------
    ndarray, float64, shape ``size``
    """
    return np.random.default_rng([seed, G_STREAM]).standard_normal(size)


def _upstream(case, y, dout, seed):
    """``G``, concatenated: ``dout`` (one array per output) or :func:`upstream_gradient`."""
    if dout is None:
        return upstream_gradient(seed, y.shape)
    if len(dout) != len(case.output_shapes):
        raise ValueError(f"`dout` has {len(dout)} array(s); {case.forward_what} has "
                         f"{len(case.output_shapes)} output(s)")
    for k, (d, shape) in enumerate(zip(dout, case.output_shapes)):
        if d.shape != shape:
            which = "dout" if len(dout) == 1 else f"dout[{k}]"
            output = case.forward_what if len(dout) == 1 else f"output {k} of {case.forward_what}"
            raise ValueError(f"`{which}.shape` {d.shape} must equal the shape of {output}, "
                             f"{shape}")
    return np.concatenate([d.reshape(-1) for d in dout]) if dout else np.zeros(0)


def _self_checks(case, dout, seed):
    """What every correct function does, checked first (6 forward calls, 3 backward).

    Returns (y, G, problems, hazards, the user's gradients for G). Problems
    keep the gradients from being judged or show them wrong; hazards are
    writes into the caller's data (input, ``dout``, params), which the check
    undoes or never lets through (it passes copies).
    """
    forward, backward = (what.split("(")[0] for what in (case.forward_what, case.backward_what))
    y = case.evaluate()
    G = _upstream(case, y, dout, seed)
    problems = []
    y, hazards = case.evaluate(watch=True)
    hazards += case.intact(forward)
    found = nondeterminism(y, case.evaluate(), forward, _out_eps(case))
    if found:
        problems.append(found)
    grads_zero, _ = case.vjp(np.zeros_like(G))
    grads_two, _ = case.vjp(2 * G)
    analytic, passed = case.vjp(G)
    for name, before, after in zip(case.dout_names, case.split(G), case.split(passed)):
        found = changed(f"{backward} modified its argument {name}", before, after)
        if found:
            hazards.append(found + " (an in-place update of an upstream gradient? a caller "
                                   "that reuses it, as a network passing it on to another "
                                   "branch does, gets it corrupted)")
    hazards += case.intact(backward)
    found = nonlinearity(grads_zero, analytic, grads_two, _out_eps(case))
    if found:
        problems.append(found)
    return y, G, problems, hazards, analytic


def _out_eps(case):
    """Machine epsilon of the precision the user's outputs come in (never below float64's)."""
    dtype = case.out_dtype if case.out_dtype in PRECISIONS else "float64"
    return float(np.finfo(dtype).eps)


def _use_complex_step(case, complex_step, precision_name):
    """True or False for every tensor, or None: tried per tensor (:func:`_oracle_for`)."""
    if case.aliases:
        # A complex copy of a tied tensor would leave its ties real: perturbing
        # the shared memory in place (central differences) moves them all.
        if complex_step:
            case.notes.append("complex_step=True was not followed: tied tensors are "
                              "differentiated by central differences, which move every tie")
        return False
    if complex_step is None:
        if precision_name != "float64":
            return False
        return True if case.complex_safe else None
    if complex_step and precision_name != "float64":
        raise ValueError(f"`complex_step`=True needs a float64 layer, this one computes in "
                         f"{precision_name}")
    return bool(complex_step)


def _conform(analytic, tensors):
    """Gradients of a tensor's shape, and a note for each that came in another shape.

    A gradient of the wrong shape fails its check. With the right number of
    entries it is still compared after a reshape, so the message can say
    whether the values would match; with another number it is compared as
    zeros (to keep the other tensors' comparisons whole) and reported as
    wrong in every entry.
    """
    conformed, notes = {}, {}
    for name, grad in analytic.items():
        shape = tensors[name].shape
        if grad.shape == shape:
            conformed[name] = grad
        elif grad.size == tensors[name].size:
            conformed[name] = grad.reshape(shape)
            notes[name] = (f"the gradient has shape {grad.shape}, the tensor {shape}: a "
                           "gradient must have its tensor's shape", True)
        else:
            conformed[name] = np.zeros(shape)
            notes[name] = (f"the gradient has shape {grad.shape} ({grad.size} entries), the "
                           f"tensor {shape} ({tensors[name].size}): no reshape can match them "
                           "(a sum over the wrong axis, or keepdims?)", False)
    return conformed, notes


def _with_shape_note(check, found):
    if found is None:
        return check
    note, comparable = found
    if not comparable:
        return replace(check, shape_error=note, diagnosis=(note,), max_rel_error=float("inf"),
                       mismatched=check.size, analytic=float("nan"))
    verdict = ("after a reshape the values match" if check.max_rel_error <= check.tolerance
               else "the values differ even after a reshape")
    note = f"{note}; {verdict} (relative error {check.max_rel_error:.2g})"
    return replace(check, shape_error=note, diagnosis=(note,) + check.diagnosis)


def _rounding_scale(G, y):
    """``Σ|G ⊙ y| + Σ|G|``: the size of what rounding acts on, in units of u.

    The first term is the projected output; the second stands for terms of
    unit size inside the function that cancel (``σ(Z) - Y`` of a saturated
    loss: its gradient is tiny, but computed from numbers near 1).
    """
    return float(np.sum(np.abs(G * y)) + np.sum(np.abs(G)))


def _probing(case, G, y, precision, use_complex, options):
    noise_delta = precision.noise_factor * precision.unit_roundoff * _rounding_scale(G, y)
    probing = _Probing(case=case, G=G, y0=y, precision=precision, use_complex=use_complex,
                       step=options.step or precision.step, tol=0.0, noise=0.0,
                       noise_delta=noise_delta, rng=np.random.default_rng([options.seed, 1]))
    return _with_oracle(probing, use_complex, options)


# -------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class _How:
    """The plan for one tensor.

    ``colorings``: the groupings to try, best first, as (source, colors);
    ``fast``: along one random direction; ``give_up``: when every grouping
    fails, along one direction rather than entry by entry (auto mode, when
    that is over budget); ``why``: the reason, for the result.
    """

    colorings: list
    fast: bool
    give_up: bool
    why: str = ""


def _colorings(case, name, shape, given):
    """The groupings known for one tensor, best first: given by the caller, declared by the code."""
    found = []
    if given is not None and name in given:
        found.append((f"coloring[{name!r}]", given[name]))   # validated by make_options
    declared = case.declared_coloring(name, shape)
    if declared is not None:
        found.append(declared)
    return found


def _batch_axes(shape, output_shapes):
    """Axes (last, first) of a tensor of 2+ dims whose length equals that axis of every output."""
    if len(shape) < 2 or not output_shapes or any(len(s) < 1 for s in output_shapes):
        return []
    return [axis % len(shape) for axis in (-1, 0)
            if shape[axis] > 1 and all(s[axis] == shape[axis] for s in output_shapes)]


def _grouping(probing, options, problems):
    """Whether entries may be probed by groups in this check.

    Grouping needs the probes' ratios to name an owner: float64 only, and a
    function that failed a self-check (nondeterministic) is not worth it.
    """
    return (options.coloring is not False and probing.precision.unit_roundoff < 1e-15
            and not problems)


def _calls(probing):
    """Forward calls per group and per entry of a full check with this probing's oracle."""
    return (2, 1) if probing.use_complex else (3, 2)


def _saves(probing, groups, entries):
    """Whether probing ``entries`` in ``groups`` takes fewer calls than one at a time."""
    per_group, per_entry = _calls(probing)
    return groups * per_group < entries * per_entry


def _over_budget(case, calls, complex_=False, least=False):
    """Why ``calls`` forward calls (complex ones with ``complex_``; ``least``: at the least)
    are over mode 'auto''s budget for one tensor, or ''."""
    seconds = calls * case.seconds_per_call(complex_)
    if calls <= AUTO_MAX_CALLS and seconds <= AUTO_MAX_SECONDS:
        return ""
    return (f"every entry would take {'at least ' if least else ''}~{calls:,} forward calls "
            f"(~{seconds:.2g} s), over the "
            f"budget of mode 'auto' ({AUTO_MAX_CALLS:,} calls, {AUTO_MAX_SECONDS:g} s a tensor); "
            "mode='full' checks every entry")


def _fast_reason(probing, tensor, options, grouping):
    """Why a tensor goes along one random direction before any probe, or ''.

    Mode 'fast'; or mode 'auto' when even its best conceivable full check,
    groups of :data:`~gradcheck.numerical.MAX_GROUP` entries at 2 calls each
    (one entry at a time at 1 call each, where it cannot be grouped), is over
    budget (:func:`_over_budget`): a 10^7-entry input goes along a direction
    at once.
    """
    if options.mode == "fast":
        return "along one random direction (mode='fast')"
    if options.mode != "auto":
        return ""
    size = tensor.array.size
    least = 2 * -(-size // num.MAX_GROUP) if _groupable(tensor, grouping) else size
    over = _over_budget(probing.case, least, least=True)
    return "along one random direction: " + over if over else ""


def _groupable(tensor, grouping):
    """Whether a grouping could hold: float64 entries, and more than one output to share."""
    return (grouping and tensor.array.dtype == np.float64 and tensor.array.size > 2
            and tensor.case.y_size > 1)


def _plan(probing, tensor, options, grouping):
    """How to check one tensor in full: by groups or one entry at a time; or, over mode
    'auto''s budget, along one direction.

    Groupings given or declared come first; else one is found by probing the
    function (:func:`gradcheck.numerical.discover_coloring`).
    """
    array, auto = tensor.array, options.mode == "auto"
    grouping = _groupable(tensor, grouping)
    per_group, per_entry = _calls(probing)
    colorings = _colorings(probing.case, tensor.name, array.shape,
                           options.coloring) if grouping else []
    if grouping and not colorings:
        colorings = _discover(probing, tensor)
    useful = [len(np.unique(c)) for _, c in colorings
              if _saves(probing, len(np.unique(c)), c.size)]
    planned = useful[0] * per_group if useful else array.size * per_entry
    over = _over_budget(probing.case, planned, probing.use_complex)
    if auto and over:
        return _How([], True, False, "along one random direction: " + over)
    return _How(colorings, False, auto and bool(
        _over_budget(probing.case, array.size * per_entry, probing.use_complex)))


def _discover(probing, tensor):
    """A grouping found by probing the function, as a list of one (source, colors), or none."""
    try:
        if probing.use_complex:
            colors, periods, _ = tensor.complex_numeric(
                lambda evaluate, array: num.discover_coloring(evaluate, array, probing.G,
                                                              complex_=True))
        else:
            colors, periods, _ = num.discover_coloring(tensor.evaluate, tensor.array,
                                                       probing.G, step=probing.step,
                                                       y0=probing.y0)
    except Exception:       # a probe past a domain edge: entry by entry, with its own steps
        return []
    return [(f"found by probing the {probing.case.noun}: entries "
             f"{'×'.join(map(str, periods))} apart along its axes move disjoint outputs", colors)]


#: A kink that still bends an output at a step this much smaller than the usual is
#: at the point itself (within ~1e-9 of it), not merely near.
_AT_POINT = 1e-4


def _kink_at_point(probe, h, y0):
    """Whether some output is still bent at a step ``_AT_POINT · h``: a tie or a kink at the
    point (2 calls), not one a random input happens to have within a step."""
    (y_plus, _), (y_minus, _) = probe(_AT_POINT * h), probe(-_AT_POINT * h)
    return not num.smooth_outputs(y_plus, y_minus, y0).all()


def _with_oracle(probing, use_complex, options):
    """``probing`` with the complex step (or central differences) as the numerical oracle."""
    precision = probing.precision
    tol = options.fd_tolerance or (COMPLEX_STEP_TOLERANCE if use_complex
                                   else precision.fd_tolerance)
    return replace(probing, use_complex=use_complex, tol=tol,
                   noise=probing.noise_delta if use_complex
                   else probing.noise_delta / probing.step)


def _oracles(probing, tensors, options, tested):
    """Per tensor name: the probing to check it with and why, the complex step where it holds.

    Many forwards compute their holomorphic extension on a complex input
    without anyone intending it (products, einsum, exp, tanh, comparisons,
    which NumPy orders by the real part); some do not (``abs``, casts to
    float, ``conj``, ``.real``). Tested (``tested``) for all tensors at once
    (3 calls), and one by one only when that fails: the tensors that pass
    are checked by complex step (exact derivatives, tolerance 1e-10), the
    others by central differences. See :func:`_complex_step_holds`.
    """
    if not tested or not tensors:
        return {t.name: (probing, "") for t in tensors}
    holds, why = _complex_step_holds(probing, tensors)
    found = {t.name: (holds, why) for t in tensors}
    if not holds and len(tensors) > 1:
        found = {t.name: _complex_step_holds(probing, [t]) for t in tensors}
    return {name: (_with_oracle(probing, holds, options), why)
            for name, (holds, why) in found.items()}


def _complex_step_holds(probing, tensors):
    """Whether the complex step gives the derivative along a random direction of ``tensors``
    (moved together), output by output, as central differences do; and why.

    1 complex call and 2 real ones (2 more when an output bends, to tell a
    kink at the point from one within a step; :func:`_kink_at_point`).
    """
    noun = probing.case.noun
    directions = [_random_direction(probing, t.array.shape)
                  * max(1.0, float(np.max(np.abs(t.array), initial=0.0))) for t in tensors]
    try:
        with _casts_raise():
            y_complex = _moved_together(probing.case, tensors, directions, num.COMPLEX_STEP * 1j)
        probe = lambda t: (_moved_together(probing.case, tensors, directions, t), t)  # noqa: E731
        h = probing.step
        (y_plus, _), (y_minus, _) = probe(h), probe(-h)
        at_kink = (not num.smooth_outputs(y_plus, y_minus, probing.y0).all()
                   and _kink_at_point(probe, h, probing.y0))
    except Exception as error:        # not defined on complex input, or a domain edge
        return False, (f"central differences: the {noun} refused a complex input "
                       f"({type(error).__name__})")
    if at_kink:
        return False, (f"central differences: the {noun} has a kink at the point itself (a "
                       "tie, or an input at a kink), where the complex step takes one side and "
                       "ties can only be judged by central differences")
    if num.extension_matches(y_complex, y_plus, y_minus, h, probing.y0):
        return True, (f"complex step: the {noun}'s complex extension matched central "
                      "differences along a random direction, output by output")
    return False, (f"central differences: the {noun}'s complex extension did not match them "
                   "(abs, a cast to float, conj, or a kink along the direction)")


def _moved_together(case, tensors, directions, t):
    """``evaluate()`` with every tensor moved by ``t`` times its direction (``t`` complex:
    complex copies, read through :meth:`Case.swapped`); the tensors are left as they were."""
    with ExitStack() as stack:
        for tensor, direction in zip(tensors, directions):
            moved = tensor.array + t * direction
            if np.iscomplexobj(moved):
                stack.enter_context(case.swapped(tensor.name, moved))
            else:
                original = tensor.array.copy()
                stack.callback(np.copyto, tensor.array, original)
                np.copyto(tensor.array, moved)
        return case.evaluate(complex_=np.iscomplexobj(t))


# ------------------------------------------------------------------------- the probes

def _grouped(probing, tensor, colors):
    """Grouped differences of one tensor, and (central differences) each entry's rounding."""
    if probing.use_complex:
        return tensor.complex_numeric(
            lambda evaluate, array: num.grouped_difference(evaluate, array, probing.G, colors,
                                                           complex_=True)), None
    rounding = np.zeros(tensor.array.shape)
    return num.grouped_difference(tensor.evaluate, tensor.array, probing.G, colors,
                                  step=probing.step, y0=probing.y0, rounding=rounding), rounding


def _full(probing, tensor, colorings, give_up=False):
    """Every entry of one tensor: by groups where a grouping holds, else entry by entry
    (or, with ``give_up``, None: the caller checks it along a direction instead).

    Returns (gradient, method, rounding): ``rounding``, for central differences
    entry by entry, each entry's rounding scale (see
    :func:`gradcheck.numerical.central_difference`), else None.
    """
    method = "complex_step" if probing.use_complex else "full"
    for source, colors in colorings:
        groups = len(np.unique(colors))
        if not _saves(probing, groups, colors.size):
            continue
        found, rounding = _grouped(probing, tensor, colors)
        if found.grad is not None:
            tensor.how = (f"in {groups} group{'s' if groups > 1 else ''} of entries that move "
                          f"disjoint outputs ({source})")
            return found.grad, method, rounding
        if not source.startswith("found") and not found.blameless:
            warnings.warn(GroupingWarning(
                f"{source} puts entries of {tensor.name!r} that move a common output in one "
                "group; checked entry by entry instead"), stacklevel=5)
    if give_up:
        return None
    tensor.how = "one entry at a time"
    if probing.use_complex:
        grad, _ = tensor.complex_numeric(num.complex_step, probing.G)
        return grad, method, None
    scale = None if probing.scale is None else np.full(tensor.array.shape, probing.scale)
    rounding = np.zeros(tensor.array.shape)
    grad, _ = num.central_difference(tensor.evaluate, tensor.array, probing.G, step=probing.step,
                                     scale=scale, rounding=rounding)
    return grad, method, rounding


def _refine_entries(probing, tensor, pair, err, exclude, floor):
    """Look again at the entries over tolerance: kinks are left out, smooth ones re-estimated
    (except after a complex step, whose value is already better than any difference), and
    tied entries judged together (:func:`_judge_ties`).

    Returns the refined reference and the :class:`_Marks` of the entries set apart.
    """
    analytic, numeric = pair
    nondiff = np.zeros(numeric.shape, dtype=bool)
    outside = np.zeros(numeric.shape, dtype=bool)
    tol = probing.tol
    flat = np.flatnonzero((err > tol) & ~exclude)
    flat = flat[np.argsort(-err.reshape(-1)[flat], kind="stable")]
    numeric = numeric.copy()
    informative = False
    kinks = {}
    for k, position in enumerate(flat):
        if k >= _REFINE_PROBE and not informative:
            break
        index = tuple(int(i) for i in np.unravel_index(position, err.shape))
        probe, h = num.entry_probe(tensor.evaluate, tensor.array, index, probing.step,
                                   probing.scale)
        found = num.refine(probe, h, probing.G, probing.y0, noise=probing.output_noise)
        a = analytic[index]
        slack = tol * max(abs(found.low), abs(found.high), abs(a))
        if found.kink:
            kinks[int(position)] = found.moved
        if found.kink and found.low - slack <= a <= found.high + slack:
            nondiff[index] = informative = True
        elif found.kink:
            numeric[index] = found.low if a < found.low else found.high
            outside[index] = True
        elif not probing.use_complex:
            informative |= abs(a - found.estimate) <= tol * max(abs(a), abs(found.estimate))
            numeric[index] = found.estimate
    ties = _judge_ties(probing, tensor, analytic, kinks, float(np.max(floor)))
    numeric.reshape(-1)[ties.wrong_at] = ties.wrong_reference
    first = np.zeros(numeric.size, dtype=bool)
    first[ties.wrong_at] = True
    tied, first = ties.tied.reshape(numeric.shape), first.reshape(numeric.shape)
    # An entry of a wrong tie is named by the tie's note, not as one that belongs to no tie.
    away = ~tied & ~ties.in_wrong.reshape(numeric.shape)
    return numeric, _Marks(exclude, nondiff & ~tied & ~first, outside & away, tied, ties.notes)


@dataclass(frozen=True)
class _Ties:
    """What the tie sets of one tensor showed (flat positions)."""

    tied: np.ndarray               # entries whose tie set's sum matched: judged right
    wrong_at: np.ndarray           # one entry per tie set whose sum did not match
    in_wrong: np.ndarray           # every entry of those tie sets
    wrong_reference: np.ndarray    # the value there that would make its sum match
    notes: tuple


def _tie_sets(array, kinks):
    """Candidate tie sets: entries at kinks with equal values whose footprints meet.

    ``kinks`` maps flat positions to the outputs each entry moved. Entries of
    equal value that move a common output are joined (union-find); sets of one
    are no ties.
    """
    values = array.reshape(-1)
    parent = {p: p for p in kinks}

    def root(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    by_value = {}
    for p in kinks:
        by_value.setdefault(values[p].item(), []).append(p)
    for members in by_value.values():
        for i, p in enumerate(members):
            for q in members[i + 1:]:
                if root(p) != root(q) and np.any(kinks[p] & kinks[q]):
                    parent[root(q)] = root(p)
    sets = {}
    for p in kinks:
        sets.setdefault(root(p), []).append(p)
    return [np.array(sorted(s)) for s in sets.values() if len(s) > 1]


def _judge_ties(probing, tensor, analytic, kinks, floor):
    """Judge entries at ties by what finite differences can decide: their sum.

    Moving every entry of a tie (tied maxima, equal values that the forward
    compares) together is smooth, and every valid subgradient gives the same
    derivative along that direction: the gradient's sum over the set. A tie
    set is tried first as found (:func:`_tie_sets`), then as every entry of
    its value; a set that is not smooth along its direction is no tie (a ReLU
    at 0) and its entries keep their one-sided verdicts.
    """
    values = tensor.array.reshape(-1)
    a = analytic.reshape(-1)
    tied = np.zeros(values.size, dtype=bool)
    in_wrong = np.zeros(values.size, dtype=bool)
    wrong_at, wrong_reference, notes = [], [], []
    for members in _tie_sets(tensor.array, kinks)[:_MAX_TIE_SETS]:
        for candidate in (members, np.flatnonzero(values == values[members[0]])):
            direction = np.zeros(values.size)
            direction[candidate] = 1.0
            probe, h = num.direction_probe(tensor.evaluate, tensor.array,
                                           direction.reshape(tensor.array.shape),
                                           probing.step)
            found = num.refine(probe, h, probing.G, probing.y0, noise=probing.output_noise)
            if not found.kink:
                break
        if found.kink:
            continue
        total = float(np.sum(a[candidate]))
        error = relative_errors(np.array([total]), np.array([found.estimate]), floor)[0]
        if error <= probing.tol:
            tied[members] = True
            continue
        first = int(members[0])
        in_wrong[candidate] = True
        wrong_at.append(first)
        wrong_reference.append(a[first] + found.estimate - total)
        notes.append(_tie_note(tensor.array.shape, candidate, total, found.estimate))
    if notes:
        notes = [f"{len(notes)} tie(s) whose gradients do not add up to the derivative of "
                 "moving the tie together (every valid tie-break gives that sum): the gradient of "
                 "a tie sent to every tied entry (mask = window == max?), or lost or doubled "
                 "where windows overlap?"] + notes[:3]
    return _Ties(tied=tied, wrong_at=np.array(wrong_at, dtype=np.int64), in_wrong=in_wrong,
                 wrong_reference=np.array(wrong_reference, dtype=np.float64), notes=tuple(notes))


def _tie_note(shape, members, total, estimate):
    first = tuple(int(i) for i in np.unravel_index(int(members[0]), shape))
    ratio = total / estimate if estimate else np.inf
    count = ""
    if np.isfinite(ratio) and abs(ratio - round(ratio)) < 1e-6 and round(ratio) > 1:
        count = (f" — {round(ratio)}× the derivative: the gradient of a tie sent to every "
                 "tied entry instead of one (mask = window == max?)")
    return (f"a tie of {len(members)} equal entries (the first at {first}) that move together: "
            f"their gradients sum to {total:.10g}, moving them together changes J at "
            f"{estimate:.10g}{count}")


@dataclass(frozen=True)
class _Fast:
    """The outcome of a check along one random direction."""

    projected: float
    numeric: float
    err: float
    floor: float
    kink: bool


def _random_direction(probing, shape):
    """A standard normal direction from the check's own stream, scaled to ``max|d| = 1``."""
    direction = probing.rng.standard_normal(shape)
    return direction / max(float(np.max(np.abs(direction), initial=0.0)), 1e-300)


def _projection(analytic, direction):
    """The analytic gradient's projection on ``direction``, and that sum's scale."""
    return float(np.sum(analytic * direction)), float(np.sum(np.abs(analytic * direction)))


def _along(probing, analytic):
    """A random direction, the analytic gradient's projection on it, and that sum's scale."""
    direction = _random_direction(probing, analytic.shape)
    return (direction, *_projection(analytic, direction))


def _fast(probing, tensor, analytic):
    """Check one tensor along a random direction."""
    G = probing.G
    direction = _random_direction(probing, tensor.array.shape)
    if probing.use_complex:
        numeric, _ = tensor.complex_numeric(
            lambda evaluate, array: num.directional_difference(evaluate, array, G, direction,
                                                               complex_=True))
        return _along_direction(probing, analytic, direction, numeric)
    probe, h = num.direction_probe(tensor.evaluate, tensor.array, direction, probing.step,
                                   scale=probing.scale)
    (y_plus, _), (y_minus, _) = probe(h), probe(-h)
    fast = _along_direction(probing, analytic, direction,
                            float(np.sum(G * (y_plus - y_minus))) / (2 * h))
    if fast.err <= probing.tol:
        return fast
    smooth = num.smooth_outputs(y_plus, y_minus, probing.y0)
    if tensor.array.size > FAST_FALLBACK_LIMIT:
        # Too large to check entry by entry: the outputs a kink bends, within the
        # step or at the point itself (a tie, bent alike at any step), are left out.
        (y_tiny, _), (y_tiny_minus, _) = probe(_AT_POINT * h), probe(-_AT_POINT * h)
        smooth &= num.smooth_outputs(y_tiny, y_tiny_minus, probing.y0, bend=1e-7)
        if not smooth.all():
            return _without_kinks(probing, tensor, direction, smooth,
                                  (y_plus - y_minus) / (2 * h)) or replace(fast, kink=True)
    elif not smooth.all():
        # An output bent within the step is a kink, sent entry by entry, however small
        # its share of the projection: refine's jump test below loses one ReLU input at
        # 0 whose upstream gradient is small in the rounding of the other outputs.
        return replace(fast, kink=True)
    # The Richardson estimate (error O(h⁴)) decides at a smooth point; a kink
    # sends a tensor small enough entry by entry, where kinks and ties are judged.
    found = num.refine(probe, h, G, probing.y0, noise=probing.output_noise)
    return _along_direction(probing, analytic, direction, found.estimate, found.kink)


def _along_direction(probing, analytic, direction, numeric, kink=False):
    """The verdict along ``direction``: ``<analytic, direction>`` against ``numeric``."""
    tol = probing.tol
    projected, scale = _projection(analytic, direction)
    floor = max(error_floor([(np.array([scale]), np.array([numeric]))], probing.noise, tol),
                np.finfo(np.float64).tiny)
    err = float(relative_errors(np.array([projected]), np.array([numeric]), floor)[0])
    return _Fast(projected=projected, numeric=numeric, err=err, floor=floor, kink=kink)


def _without_kinks(probing, tensor, direction, smooth, slope):
    """The check along ``direction`` with the outputs a kink bends left out of both sides.

    An output whose change bends within the step (a ReLU input within a step
    of 0; :func:`gradcheck.numerical.smooth_outputs`) makes the directional
    derivative one-sided. Its upstream gradient is set to 0: the numerical
    side sums the smooth outputs' slopes (``slope``, per output), the
    analytic side is the user's backward called again with that ``G``.
    Exact for the rest, whatever the size of the tensor; None when the outputs
    left out carry half of ``|G ⊙ slope|`` or more (an input all at kinks).
    """
    G = probing.G * smooth
    weight = np.abs(probing.G * slope)
    if np.sum(weight[smooth]) < 0.5 * np.sum(weight):
        return None          # most of the derivative sits at kinks: nothing left to judge
    grads, _ = probing.case.vjp(G)
    analytic = grads[tensor.name]
    if analytic.size != tensor.array.size:
        return _Fast(0.0, 0.0, float("inf"), 0.0, True)    # its shape error is reported
    left_out = int(smooth.size - np.count_nonzero(smooth))
    tensor.how = (f"{left_out} output{'s' if left_out > 1 else ''} that a kink bends within the "
                  "step left out of G, and the backward called again without them")
    return _along_direction(replace(probing, G=G), analytic.reshape(tensor.array.shape),
                            direction, float(np.sum(G * slope)))


# -------------------------------------------------------------------- the comparisons

def _numerical_checks(probing, analytic, exclude, options, problems, tested):
    """One TensorCheck per tensor against the numerical oracle (``tested``: try the complex
    step)."""
    grouping = _grouping(probing, options, problems)
    tensors = [_Tensor(probing.case, name) for name in analytic]
    fast = {t.name: _fast_reason(probing, t, options, grouping) for t in tensors}
    # No probe is spent on a test of the complex step for a tensor checked along
    # one direction (by central differences; kinks are left out there).
    oracles = _oracles(probing, [t for t in tensors if not fast[t.name]], options, tested)
    checks = []
    for tensor in tensors:
        calls = probing.case.calls
        given = (analytic[tensor.name],
                 exclude.get(tensor.name, np.zeros(analytic[tensor.name].shape, dtype=bool)))
        if fast[tensor.name]:
            how = _How([], True, False, fast[tensor.name])
            check, oracle_why = _check_tensor(probing, tensor, given, how), ""
        else:
            check, how, oracle_why = _judged(oracles[tensor.name], tensor, given,
                                             (probing, options, grouping))
        checks.append(replace(check, plan=_plan_sentence(check, tensor, (how, oracle_why),
                                                         probing.case.calls - calls)))
    return checks


def _judged(oracle, tensor, given, context):
    """Check one tensor in full with its oracle, ``(probing, why)``; return (check, how, why).

    A complex step that was tested with every tensor complex at once but
    raises with this one complex alone (a real buffer the others made
    complex: ``Z = zeros + b; Z += x @ W``), or whose failure central
    differences do not confirm (:func:`_confirmed`: an ``abs`` of a few
    entries), gives way to central differences.
    """
    (found, why), (probing, options, grouping) = oracle, context
    how = _plan(found, tensor, options, grouping)
    try:
        check = _check_tensor(found, tensor, given, how)
    except Exception as error:
        if not (why and found.use_complex):
            raise
        why = (f"central differences: the {probing.case.noun} refused a complex "
               f"{tensor.name!r} alone ({type(error).__name__})")
        return _central_check(probing, tensor, given, (options, grouping)) + (why,)
    if found.use_complex and not _confirmed(found, tensor, check):
        why = (f"central differences: the complex step's failure at {check.worst_index} was "
               f"not theirs (the {probing.case.noun} is not holomorphic there)")
        return _central_check(probing, tensor, given, (options, grouping)) + (why,)
    return check, how, why


def _central_check(probing, tensor, given, context):
    """(check, how) of one tensor by central differences, planned anew."""
    options, grouping = context
    central = _with_oracle(probing, False, options)
    how = _plan(central, tensor, options, grouping)
    return _check_tensor(central, tensor, given, how), how


def _confirmed(probing, tensor, check):
    """Whether a complex-step check's verdict stands: passed, or central differences do not
    overturn it at its worst entry.

    The worst entry is refined by central differences
    (:func:`gradcheck.numerical.refine`, 4 calls): at a smooth point its
    estimate, at a kink the range of its one-sided slopes. They overturn the
    failure only when they agree with the analytic value and clearly differ
    from the complex step's, each within their tolerance and their own
    resolution (the rounding of the outputs the entry moves, over the step):
    a function that is not holomorphic there (``abs``). Where they cannot
    resolve the difference (outputs of 3e7 around a derivative of 1), the
    complex step, which takes no difference, keeps its verdict.
    """
    if check.passed or check.method == "fast" or check.shape_error or check.size == 0:
        return True
    probe, h = num.entry_probe(tensor.evaluate, tensor.array, check.worst_index, probing.step)
    found = num.refine(probe, h, probing.G, probing.y0, noise=probing.output_noise)
    low, high = (found.low, found.high) if found.kink else (found.estimate, found.estimate)
    resolution = 2 * float(np.sum(probing.output_noise[found.moved])) / h
    tol = probing.precision.fd_tolerance

    def off(value):
        nearest = min(max(value, low), high)
        return abs(value - nearest) - tol * max(abs(value), abs(nearest)) - resolution

    return not (off(check.analytic) <= 0 < off(check.reference))


def _plan_sentence(check, tensor, whys, calls):
    """What the result says of a tensor's method: which, why, and its forward calls."""
    how, oracle_why = whys
    if check.method == "fast":
        said = (how.why or "along one random direction") + (f" ({tensor.how})" if tensor.how
                                                             else "")
    else:
        oracle = "complex step" if check.method == "complex_step" else "central differences"
        said = f"every entry by {oracle}, {tensor.how}"
    return f"{said}; {oracle_why + '; ' if oracle_why else ''}{calls} forward calls"


def _check_tensor(probing, tensor, given, how):
    """Check one tensor as planned; ``given`` is (its analytic gradient, its exclusion mask)."""
    analytic, mask = given
    if not how.fast:
        try:
            found = _full(probing, tensor, how.colorings, how.give_up)
            compared = None if found is None else _compare_with_floor(probing, tensor, given,
                                                                      found)
        except Exception:        # a probe outside the function's domain?
            # Smaller steps go one entry at a time: where mode 'auto''s budget forbids
            # it (``give_up``), along one direction instead.
            retried = (_along_with_smaller_steps(probing, tensor, given) if how.give_up
                       else _with_smaller_steps(probing, tensor, given, None))
            if retried is None:
                raise
            return retried
        if compared is not None:
            check, _, failed = compared
            if not check.passed and not how.give_up:
                check = _with_smaller_steps(probing, tensor, given, failed) or check
            return check
    try:
        return _along_one_direction(probing, tensor, given)
    except Exception:        # a probe outside the function's domain?
        retried = _along_with_smaller_steps(probing, tensor, given)
        if retried is None:
            raise
        return retried


def _along_one_direction(probing, tensor, given):
    """Check one tensor along a random direction; entry by entry after a kink, if small."""
    fast = _fast(probing, tensor, given[0])
    if fast.kink and tensor.array.size <= FAST_FALLBACK_LIMIT:
        # a kink along the direction: check every entry
        return _compare(probing, tensor, given, _full(probing, tensor, [], False))
    return _fast_check(probing, tensor.name, fast)


def _along_with_smaller_steps(probing, tensor, given):
    """After a probe left the function's domain, check along one direction with steps
    fitted to the tensor (as :func:`_with_smaller_steps` does entry by entry): the first
    steps that stay inside give the verdict, with a note; None when none do."""
    if probing.use_complex or tensor.array.dtype != np.float64:
        return None
    largest = float(np.max(np.abs(tensor.array), initial=0.0))
    for scale in (largest * factor for factor in _SHRINK if largest > 0):
        try:
            check = _along_one_direction(_shrunk(probing, scale), tensor, given)
        except Exception:  # still outside the domain: smaller still
            continue
        return _with_step_note(probing, tensor, check, (scale, largest),
                               "a probe left the function's domain")
    return None


def _compare(probing, tensor, given, found):
    """The TensorCheck of one tensor whose every entry was estimated (``found``: see :func:`_full`)."""
    return _compare_with_floor(probing, tensor, given, found)[0]


def _compare_with_floor(probing, tensor, given, found):
    """:func:`_compare`, the floor it used (an array where each entry has its own), and
    the mask of the entries over tolerance."""
    (a, mask), (n, method, rounding) = given, found
    # Each tensor's floor from its own gradients, and each entry's from the rounding of
    # the outputs it moved: another tensor's scale, or other outputs, hide nothing.
    floor = error_floor([(a, n)], probing.noise, probing.tol)
    if rounding is not None:
        precision = probing.precision
        noise = precision.noise_factor * precision.unit_roundoff * _resolved(probing, tensor,
                                                                             rounding)
        floor = np.maximum(error_floor([(a, n)], 0.0, probing.tol), noise / probing.tol)
    floor = _measured_floor(probing, tensor, (a, n), mask, floor)
    err = relative_errors(a, np.where(mask, a, n), floor)
    n, marks = _refine_entries(probing, tensor, (a, n), err, mask, floor)
    check, failed = _tensor_check(probing.case, tensor.name,
                                  _Scale(probing.oracle, method, floor, probing.tol), (a, n),
                                  marks)
    if not check.passed:
        try:       # best effort: these probes use the usual steps, which may leave the domain
            extra = (_structural_diagnosis(probing, tensor, a)
                     or _dropped_output_diagnosis(probing, tensor, a)
                     or _diagonal_diagnosis(probing, tensor, a, n))
        except Exception:
            extra = ()
        if extra:
            check = replace(check, diagnosis=extra + check.diagnosis)
    return check, floor, failed


def _resolved(probing, tensor, rounding):
    """Each entry's rounding scale, and for an entry that moved no output one output's.

    An entry whose probes left every output equal bit for bit (a saturated
    tanh, a ReLU input below 0) has a derivative that rounds away: it is
    resolved only to the rounding of the output it would move, taken as the
    largest ``|G ⊙ y| + |G|`` over the step.
    """
    if np.all(rounding > 0):
        return rounding
    one = float(np.max(np.abs(probing.G * probing.y0) + np.abs(probing.G), initial=0.0))
    magnitude = (probing.scale if probing.scale is not None
                 else np.maximum(1.0, np.abs(tensor.array)))
    return np.where(rounding > 0, rounding, one / (probing.step * magnitude))


#: Smaller steps tried, as multiples of the tensor's largest magnitude, when a
#: check with the usual steps fails or leaves the function's domain.
_SHRINK = (1.0, 1e-2, 1e-4)


def _with_smaller_steps(probing, tensor, given, failed):
    """Check ``tensor`` again with steps fitted to it, when the usual ones cannot judge it.

    The usual step ``step · max(1, |v|)`` is never below ``step``: for a
    tensor of values ~1e-8 (an L2 normalization of tiny inputs) it leaves the
    region where the function is smooth, and next to a domain edge (``log``,
    ``sqrt``, ``1/x`` near 0) a probe lands outside it. Steps ``step · m``,
    with ``m`` the tensor's largest magnitude and then 1e-2 and 1e-4 of it,
    are tried in turn, entry by entry with central differences. After a
    failure (``failed``: the mask of the entries the usual steps failed), the
    first that passes is the verdict; after a probe outside the domain
    (``failed`` None: nothing was judged), the first that stays inside, pass
    or fail. A note says which step was used. None when no step does (the
    caller keeps its failure, or raises its error).
    """
    if probing.use_complex or tensor.array.dtype != np.float64:
        return None
    largest = float(np.max(np.abs(tensor.array), initial=0.0))
    how = tensor.how          # the plan of the verdict kept if no retry is adopted
    for factor in _SHRINK:
        scale = largest * factor
        if scale == 0.0 or (failed is not None and scale >= 1.0):
            continue       # these steps are the usual ones (or no smaller)
        shrunk = _shrunk(probing, scale)
        try:
            check, floor, _ = _compare_with_floor(shrunk, tensor, given,
                                                  _full(shrunk, tensor, [], False))
        except Exception:  # still outside the domain: smaller still
            continue
        # Past a domain edge, the first steps that stay inside give the verdict. A
        # failure with the usual steps is overturned only by a pass that could have
        # seen it, where they failed: with a floor of its gradients' (RHO · M) there,
        # not the rounding noise that smaller steps bring (which would let a subtle
        # error through). Where the usual steps passed, an entry the smaller ones
        # cannot resolve (a weak input into an output of 1e9) takes nothing away.
        if failed is None:
            return _with_step_note(probing, tensor, check, (scale, largest),
                                   "a probe left the function's domain")
        if check.passed and _sharp_where(floor, failed, given[0]):
            return _with_step_note(probing, tensor, check, (scale, largest),
                                   "the usual steps, never below step · max(1, |v|), failed it")
    tensor.how = how
    return None


def _sharp_where(floor, failed, analytic):
    """Whether ``floor`` is at most ``10 · RHO · max|analytic|`` at the ``failed`` entries
    (at every entry when none failed: the usual steps could not judge the tensor at all)."""
    where = failed if np.any(failed) else np.ones(analytic.shape, dtype=bool)
    largest = float(np.max(np.broadcast_to(floor, analytic.shape)[where]))
    return largest <= 10 * RHO * float(np.max(np.abs(analytic), initial=0.0))


def _shrunk(probing, scale):
    """``probing`` with steps ``step · scale`` and the rounding noise they bring."""
    return replace(probing, scale=scale, noise=probing.noise_delta / (probing.step * scale))


def _with_step_note(probing, tensor, check, scales, why):
    """``check`` with the note that says which steps gave it, and ``why``."""
    scale, largest = scales
    note = (f"{tensor.name!r} checked with steps {probing.step * scale:.2g} (relative "
            f"to its largest magnitude, {largest:.2g}): {why}")
    probing.case.notes.append(note)
    return replace(check, diagnosis=(note,) + check.diagnosis)


#: Step of the noise measurement, relative to the tensor's largest entry: small
#: enough that a smooth function's differences of order 3 and more vanish.
_NOISE_STEP = 1e-7


def _measured_floor(probing, tensor, pair, exclude, floor):
    """Lower a floor set by the assumed rounding noise to the measured one, where it decides.

    The assumed noise (central differences: ``c u (Σ|G ⊙ y| + Σ|G|) / h``;
    the complex step: ``c u (Σ|G ⊙ y| + Σ|G|)``) stands for rounding inside
    the function that its outputs do not show; for a function of small
    outputs, or one that adds a large constant, it is far too large and would
    let any error through. Where an entry passes only because of it, the
    noise is measured along a random direction of the tensor and the floor
    is taken from it when that is smaller: for central differences from
    ``max(4 u Σ|G ⊙ y|, 8 σ) / h`` (:func:`gradcheck.numerical.measure_noise`,
    the larger at a step of 1e-7 and at the check's own: 16 forward calls), for
    the complex step from
    ``max(8 σ, c u Σ|G|)`` (4 calls,
    :func:`gradcheck.numerical.measure_complex_noise`; the second term is
    the analytic gradient's own rounding of unit-size terms).
    """
    a, n = pair
    tol, bare = probing.tol, error_floor([pair], 0.0, probing.tol)
    if np.all(bare >= floor) or tensor.array.dtype != np.float64:
        return floor
    saved = ((relative_errors(a, n, bare) > tol) & (relative_errors(a, n, floor) <= tol)
             & ~exclude)
    if not saved.any():
        return floor
    direction = _random_direction(probing, tensor.array.shape)
    if probing.use_complex:
        # The analytic side rounds too: unit-size terms that cancel in the backward
        # (a saturated sigmoid's A(1 - A)) leave ~u of them, Σ|G| (see _rounding_scale).
        sigma = tensor.complex_numeric(num.measure_complex_noise, probing.G, direction)
        unit = probing.precision.noise_factor * probing.precision.unit_roundoff * float(
            np.sum(np.abs(probing.G)))
        return np.minimum(floor, error_floor([pair], max(8 * sigma, unit), tol))
    size = (probing.scale if probing.scale is not None
            else max(1.0, float(np.max(np.abs(tensor.array), initial=0.0))))
    # Measured at a tiny step, and at the check's own: a term of unit size inside that
    # the tiny step leaves unmoved (a saturated sigmoid's p ≈ 1 rounded to 1 - k u)
    # shows no noise there, and moves by whole ulps at the check's step.
    sigma = max(num.measure_noise(tensor.evaluate, tensor.array, probing.G, direction,
                                  step * size, probing.y0) for step in (_NOISE_STEP,
                                                                        probing.step))
    rounding = 4 * probing.precision.unit_roundoff * float(np.sum(np.abs(probing.G * probing.y0)))
    # Over the smallest step the entries take: step · max(1, |v|) ≥ step, or the smaller
    # steps' step · scale after a retry (over ``step`` alone that noise would be divided
    # by a step up to 1e6 times too large, and a correct function fail).
    smallest = probing.step * (probing.scale if probing.scale is not None else 1.0)
    measured = max(rounding, 8 * sigma) / smallest
    return np.minimum(floor, error_floor([pair], measured, tol))


def _fast_check(probing, name, fast):
    tol = probing.tol
    note = ("the function has a kink along the random direction (ReLU at 0, ties?) and the "
            f"tensor is too large to check entry by entry (> {FAST_FALLBACK_LIMIT}); "
            "check a smaller input with mode='full', or make the function complex-safe",
            ) if fast.kink and fast.err > tol else ()
    return TensorCheck(
        tensor=name, gradient=probing.case.labels[name], oracle=probing.oracle,
        shape=tuple(probing.case.tensors[name].shape), max_rel_error=fast.err,
        max_abs_error=abs(fast.projected - fast.numeric), tolerance=float(tol), floor=fast.floor,
        mismatched=int(fast.err > tol), worst_index=(), analytic=fast.projected,
        reference=fast.numeric, method="fast", diagnosis=note,
        unjudged=_unjudged((np.array([fast.projected]), np.array([fast.numeric])),
                           np.zeros(1, dtype=bool), _Scale(probing.oracle, "fast", fast.floor,
                                                           tol)))


def _torch_checks(probing, analytic, options):
    from gradcheck.torch_oracle import torch_vjp

    case, precision = probing.case, probing.precision
    values = {k: case.tensors[k] for k in analytic}
    reference = torch_vjp(case.torch_call(options.torch_fn), values, case.split(probing.G),
                          case.forward_what)
    noise = probing.noise_delta      # torch takes no difference: the outputs' rounding alone
    tol = options.torch_tolerance or precision.torch_tolerance
    return [_tensor_check(case, k,
                          _Scale("torch", "torch",
                                 error_floor([(analytic[k], reference[k])], noise, tol), tol),
                          (analytic[k], reference[k]), _Marks.none(analytic[k].shape))[0]
            for k in analytic]


def _sizes(case):
    named = [(f"{name}.shape[{i}]", n) for name, t in case.tensors.items()
             for i, n in enumerate(t.shape)]
    outputs = case.output_shapes or ()
    for k, shape in enumerate(outputs):
        which = "output" if len(outputs) == 1 else f"output{k}"
        named += [(f"{which}.shape[{i}]", n) for i, n in enumerate(shape)]
    return named


@dataclass(frozen=True)
class _Scale:
    """How one comparison judges: its oracle and method, the error floor, the tolerance."""

    oracle: str
    method: str
    floor: float
    tol: float


@dataclass(frozen=True)
class _Marks:
    """Entries set apart: excluded by the user, found at kinks, at kinks but outside them."""

    excluded: np.ndarray
    nondiff: np.ndarray
    outside: np.ndarray | None = None
    tied: np.ndarray | None = None
    notes: tuple = ()

    @classmethod
    def none(cls, shape):
        nothing = np.broadcast_to(np.zeros((), dtype=bool), shape)
        return cls(nothing, nothing)


def _tensor_check(case, name, scale, pair, marks):
    """Compare one tensor's ``pair`` = (analytic, reference) gradients: a TensorCheck, and
    the mask of the entries over tolerance."""
    analytic, reference = pair
    tied = marks.tied if marks.tied is not None else np.zeros(analytic.shape, dtype=bool)
    skip = marks.excluded | marks.nondiff | tied
    reference = np.where(skip, analytic, reference)
    err = relative_errors(analytic, reference, scale.floor)
    mismatch = err > scale.tol
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape)) \
        if err.size else ()
    finite = bool(np.all(np.isfinite(analytic)))
    floor = np.broadcast_to(scale.floor, err.shape)
    check = TensorCheck(
        tensor=name, gradient=case.labels[name], oracle=scale.oracle, shape=tuple(analytic.shape),
        max_rel_error=float(err.max(initial=0.0)),
        max_abs_error=float(np.max(np.abs(analytic - reference), initial=0.0)),
        tolerance=float(scale.tol),
        floor=float(floor[worst] if err.size else np.max(floor, initial=0.0)),
        mismatched=int(np.count_nonzero(mismatch)), worst_index=worst,
        analytic=float(analytic[worst]) if err.size else 0.0,
        reference=float(reference[worst]) if err.size else 0.0,
        excluded=int(np.count_nonzero(marks.excluded)), method=scale.method,
        nondifferentiable=int(np.count_nonzero(marks.nondiff & ~marks.excluded)),
        tied=int(np.count_nonzero(tied & ~marks.excluded)),
        diagnosis=marks.notes + (tuple(diagnose(analytic, reference, mismatch, sizes=_sizes(case),
                                                batch_axes=_batch_axes(analytic.shape,
                                                                       case.output_shapes),
                                                label=ORACLE_LABELS.get(scale.oracle,
                                                                        scale.oracle),
                                                values=case.tensors[name]))
                                 if finite else _non_finite_note(analytic))
        + _kink_note(marks.outside, mismatch),
        unjudged=_unjudged((analytic, reference), skip, scale),
    )
    return check, mismatch


#: A gradient is judged only where its oracle resolves an error of this fraction
#: of its largest entry: a factor 1.1, a dropped or doubled term, a flipped sign.
_RESOLVED_FRACTION = 0.1


def _unjudged(pair, skip, scale):
    """Why ``scale``'s oracle cannot judge ``pair`` = (analytic, reference), or "".

    The floor of the relative error holds the oracle's resolution, the
    rounding of the outputs over the step (:mod:`gradcheck.metrics`). Where
    the gradient agrees with the reference only within that resolution, and
    the resolution would let an error of :data:`_RESOLVED_FRACTION` of the
    gradient's largest entry pass, the digits that would tell are lost
    (outputs of 1e12 around a derivative of 1): the check says so, and
    does not pass.
    """
    analytic, reference = pair
    keep = ~skip & np.isfinite(analytic) & np.isfinite(reference)
    a, r = analytic[keep], reference[keep]
    floor = np.broadcast_to(scale.floor, analytic.shape)[keep]
    largest = gradient_scale([(a, r)])
    bare = max(RHO * largest, np.finfo(np.float64).tiny)
    saved = ((relative_errors(a, r, bare) > scale.tol)
             & (relative_errors(a, r, floor) <= scale.tol))
    if not saved.any():
        return ""
    allowed = scale.tol * float(np.max(floor[saved]))
    if allowed < _RESOLVED_FRACTION * largest:
        return ""
    return (f"{ORACLE_LABELS.get(scale.oracle, scale.oracle)} resolves this gradient only to "
            f"±{allowed:.2g} (the rounding of the outputs over the step), not below "
            f"{_RESOLVED_FRACTION:g} of its largest entry ({largest:.2g}), and the two agree "
            f"only within it ({int(saved.sum())} entries): an error that large would pass "
            "unseen. Check it where the outputs are smaller (an offset or a scale that dwarfs "
            "the change takes its digits), or with a torch_fn")


def _non_finite_note(analytic):
    bad = ~np.isfinite(analytic)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"the gradient has {int(bad.sum())} non-finite entries (NaN or inf), the first at "
            f"{first}: a division by zero, or a log or sqrt of 0, in the backward?",)


def _kink_note(outside, mismatch):
    count = 0 if outside is None else int(np.count_nonzero(outside & mismatch))
    if not count:
        return ()
    return (f"{count} of the wrong entries sit at kinks (one-sided derivatives disagree) with "
            "the analytic value outside them and belong to no tie the checker could confirm "
            "(moved together, their set was not smooth, or there were more than "
            f"{_MAX_TIE_SETS}): wrong there, or beyond central differences (leave them out "
            "with fd_exclude and compare with torch, or make the layer complex-safe)",)


# ------------------------------------------------------------------------- diagnosis

def _transforms(array):
    """Yield (description, transformed copy) of a tensor: ROT180 and transposes of axis pairs."""
    pairs = [(0, 1)] + ([(array.ndim - 2, array.ndim - 1)] if array.ndim > 2 else [])
    for i, j in pairs:
        if array.shape[i] > 1 or array.shape[j] > 1:
            yield f"rotated by 180° over axes ({i}, {j}) (a kernel not flipped by ROT180?)", \
                np.flip(array, axis=(i, j)).copy()
        if array.shape[i] == array.shape[j] > 1:
            yield f"with axes {i} and {j} swapped (a missing or extra transpose?)", \
                np.swapaxes(array, i, j).copy()


def _dropped_output_diagnosis(probing, tensor, analytic):
    """Is the analytic gradient that of all outputs but one (its upstream gradient ignored)?

    For a function of several outputs (an LSTM step's ``next_h`` and
    ``next_c``): along one random direction, compares the analytic projection
    with the derivative of ``J`` without output ``k``'s term (2 calls per output).
    """
    case = probing.case
    shapes = case.output_shapes or ()
    if len(shapes) < 2 or not np.all(np.isfinite(analytic)):
        return ()
    direction, projected, scale = _along(probing, analytic)
    for k, name in enumerate(case.dout_names[:len(shapes)]):
        without = probing.G.copy()
        case.split(without)[k][...] = 0.0         # views into ``without``
        numeric, _ = num.directional_difference(tensor.evaluate, tensor.array, without,
                                                direction, step=probing.precision.step)
        if abs(numeric - projected) <= 1e-6 * max(scale, abs(numeric)):
            return (f"analytic ≈ the gradient without output {k}'s term: the backward ignores "
                    f"its upstream gradient {name!r} (or the path from this input to output "
                    f"{k})",)
    return ()


#: Tensors up to this size get the diagonal-Jacobian diagnosis (2 calls per entry).
_DIAGONAL_LIMIT = 2048


def _diagonal_diagnosis(probing, tensor, analytic, reference):
    """Is the analytic gradient the Jacobian's diagonal only (cross terms dropped)?

    For a tensor with as many entries as the one output (a softmax, a
    normalization): compares the analytic gradient with ``G_i · ∂y_i/∂x_i``,
    entry by entry (2 calls each, only for a failed tensor). Said only when the
    analytic gradient is far nearer the diagonal than the reference is: where the
    Jacobian is diagonal (an elementwise layer), there are no cross terms to miss.
    """
    case = probing.case
    shapes = case.output_shapes or ()
    if (len(shapes) != 1 or int(np.prod(shapes[0], dtype=np.int64)) != analytic.size
            or analytic.size > _DIAGONAL_LIMIT or not np.all(np.isfinite(analytic))
            or tensor.array.dtype != np.float64 or analytic.size < 2):
        return ()
    diagonal = num.diagonal_difference(tensor.evaluate, tensor.array, probing.G,
                                       step=probing.precision.step)
    scale = float(np.max(np.abs(diagonal), initial=0.0))
    off = float(np.max(np.abs(analytic - diagonal)))
    if (scale > 0 and off <= 1e-6 * scale
            and off < 1e-2 * float(np.max(np.abs(analytic - reference)))):
        return ("analytic ≈ only the diagonal of the Jacobian (each output's dependence on its "
                "own entry): the cross terms are missing — a softmax's Jacobian taken as "
                "diagonal, or the sums and means a normalization couples its entries through",)
    return ()


def _structural_diagnosis(probing, tensor, analytic):
    """Is the analytic gradient that of the same function with another tensor transformed?

    For each other tensor of 2+ dims, and each of its transforms, compares
    the derivative along one random direction (2 calls) with the analytic
    gradient's projection.
    """
    case = probing.case
    if not np.all(np.isfinite(analytic)):
        return ()
    direction, projected, scale = _along(probing, analytic)
    for key, value in list(case.tensors.items()):
        if key == tensor.name or value.ndim < 2:
            continue
        for description, transformed in _transforms(value):
            with case.swapped(key, transformed):
                numeric, _ = num.directional_difference(tensor.evaluate, tensor.array,
                                                        probing.G, direction,
                                                        step=probing.precision.step)
            if abs(numeric - projected) <= 1e-6 * max(scale, abs(numeric)):
                return (f"analytic ≈ the gradient of the same {case.noun} with {key!r} "
                        f"{description}",)
    return ()
