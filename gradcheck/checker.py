"""The public entry points: a layer, a function pair, or a value-and-gradient function.

Each is a thin adapter: it validates its options once (:mod:`gradcheck.options`),
wraps the user's code in a :class:`~gradcheck.case.Case` (:mod:`gradcheck.case`)
and hands both to the one core (:func:`gradcheck.core.check`), which returns
the same :class:`~gradcheck.result.CheckResult` for all three.
"""

from __future__ import annotations

from gradcheck.case import FunctionCase, LayerCase, ValueAndGradCase
from gradcheck.core import GroupingWarning, PrecisionWarning, check
from gradcheck.result import HazardWarning
from gradcheck.options import (
    AUTO_MAX_CALLS, AUTO_MAX_SECONDS, COMPLEX_STEP_TOLERANCE, FD_TOLERANCE, PRECISIONS,
    TORCH_TOLERANCE, Precision, make_options,
)

__all__ = ["check_layer", "assert_layer_gradients", "check_function",
           "assert_function_gradients", "check_value_and_grad", "assert_value_and_grad",
           "FD_TOLERANCE", "TORCH_TOLERANCE", "COMPLEX_STEP_TOLERANCE", "AUTO_MAX_CALLS",
           "AUTO_MAX_SECONDS", "PRECISIONS", "Precision", "PrecisionWarning", "GroupingWarning",
           "HazardWarning"]


def check_layer(layer, x, *, mode="auto", seed=0, dout=None, torch_fn=None, step=None,
                fd_tolerance=None, torch_tolerance=None, complex_step=None, name=None,
                fd_exclude=None, coloring=None, strict=False, threads=1):
    """Check a layer's backward pass against numerical differences (and torch).

    First the self-checks every correct layer passes: forward gives the same
    output twice (up to rounding) and backward is linear in ``dout``; a
    forward that writes into ``x`` or the params, or a backward that writes
    into ``dout``, is a hazard (reported; a failure only with ``strict``).
    Then the layer's backward, given a fixed upstream gradient ``G``
    (random, from ``seed``, unless ``dout`` is given), is compared with
    numerical derivatives of
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
        check and restored bit for bit; a read-only one is made writable for
        the check and read-only again after, and refused by name when its
        memory cannot be written or when entries of it share memory, as in a
        broadcast or overlapping strided view: pass ``np.array(w)``; a layer
        that rebinds ``self.params`` gets a hazard and its dict back before
        each call), ``grads`` (filled by backward, same
        keys and shapes), ``forward(x) -> y`` and ``backward(dout) -> dx``. A
        layer with ``complex_safe = True`` is differentiated by complex step.
    x : ndarray, float64 (float32/float16 with a PrecisionWarning)
        Not modified. Refused by name: a ``numpy.matrix`` (its ``*`` is a
        matrix product: pass ``np.asarray(x)``), a masked array (the layer
        may honour its mask while the check judges the data beneath it:
        pass ``x.filled(value)``), an array with no entries, NaN or inf. The
        same holds for every param and every differentiable argument.
    mode : {"auto", "full", "fast"}, default "auto"
        ``"full"``: every entry (by groups of entries that move disjoint
        outputs, 3 forward calls a group with central differences and 2 with
        the complex step; else one entry at a time, 2 calls or 1).
        ``"fast"``: each tensor along one random direction (2 calls per
        tensor), which cannot localize an error. ``"auto"``: full where a
        tensor's plan takes at most :data:`AUTO_MAX_CALLS` forward calls and
        :data:`AUTO_MAX_SECONDS` at the measured cost of a call, fast beyond.
        ``TensorCheck.method`` says which was used, ``TensorCheck.plan`` why.
    seed : int, default 0
        Seeds ``G`` and the random directions: a non-negative Python or NumPy
        integer. None is refused, since a check is reproduced from its seed
        (``result.seed``); for a random one pass ``secrets.randbelow(2**32)``.
    dout : ndarray, shape of ``layer.forward(x)``, optional
        The upstream gradient ``G`` to use instead of a random one; refused
        when zero everywhere (every gradient would be 0 and any backward
        would pass), taken when zero in places.
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
        Force (True) or forbid (False) complex-step differentiation; default
        (float64 only): when the layer says ``complex_safe = True``; else
        tested, and used for each tensor where the forward's complex extension
        gives the derivatives central differences give (never for ``abs``, a
        cast to float, ``conj``; never at a tie).
    name : str, optional
        The layer's name in the result; default its ``name`` attribute or class.
    fd_exclude : dict of str to bool ndarray, optional
        Entries left out of the numerical comparison, by tensor (``"x"`` or a
        parameter name; mask of the tensor's shape), e.g. known kinks. They are
        still compared against torch; ``TensorCheck.excluded`` counts them.
        Without ``torch_fn``, a mask of every entry of a tensor is refused:
        nothing of it would be compared.
    coloring : dict of str to int ndarray, or False, optional
        Groups of entries, by tensor, that move disjoint sets of outputs: a full
        check then perturbs a whole group per forward call (Curtis–Powell–Reid).
        Also taken from ``layer.jacobian_coloring(name, shape)`` when the layer
        has it, else found by probing the forward (per axis, the smallest
        period of entries that move disjoint outputs; see
        :func:`gradcheck.numerical.discover_coloring`). Every grouping is
        verified as it is used: an output moved by two entries of a group
        sends that tensor back to one entry at a time (with a
        ``GroupingWarning`` when it was given or declared), so a layer that
        couples its examples (batch norm) is still checked exactly. ``False``
        turns grouping off.
    strict : bool, default False
        Fail the check on a hazard too (the code writes into its input,
        ``dout`` or params). By default a hazard is reported in
        ``result.hazards`` and as a :class:`HazardWarning`, and the verdict
        is about the gradients alone.
    threads : int or None, default 1
        BLAS (through threadpoolctl) and torch (when already imported) run on
        this many threads during the check, and get their own back after: a
        check is a long run of small calls, which extra threads only slow
        down on a busy machine. None leaves them as they are.

    Returns
    -------
    CheckResult
        ``passed``, ``max_rel_error`` (``{"x": e, <param>: e}``), ``problems``
        (failed self-checks), ``hazards`` (writes into the caller's data), one
        :class:`TensorCheck` per tensor and oracle in
        ``checks``, and ``message()`` saying what failed, where, and what it
        looks like.

    Raises
    ------
    TypeError, ValueError
        For a layer that breaks the protocol, input it cannot take or a bad
        option: the message names the argument and its value. Options are
        validated once, by :func:`gradcheck.options.make_options`, before the
        layer is called: numbers are Python or NumPy ints and floats (not
        bools), flags True/False (NumPy's too), ``coloring`` and
        ``fd_exclude`` keys name tensors of the check.
    ModuleNotFoundError
        A ``torch_fn`` is given and torch is not installed (the message says
        ``pip install 'gradcheck[torch]'``).

    Warns
    -----
    PrecisionWarning
        When the layer computes in float32 or float16.
    HazardWarning
        When the layer writes into its input, ``dout`` or its params.

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
    options = dict(mode=mode, seed=seed, dout=dout, torch_fn=torch_fn, step=step,
                   fd_tolerance=fd_tolerance, torch_tolerance=torch_tolerance,
                   complex_step=complex_step, name=name, fd_exclude=fd_exclude,
                   coloring=coloring, strict=strict, threads=threads)
    case = LayerCase(layer, x)
    return check(case, _validated(case, options))


def _validated(case, given):
    """The options ``given``, validated against ``case`` (its tensors, torch_fn's arguments).

    Every option of every entry point goes through :func:`make_options` here,
    once; a refused one leaves the caller's objects as they were.
    """
    try:
        options = make_options(given, tensors=case.tensors, torch_args=case.torch_args)
    except BaseException:
        case.restore()
        raise
    if options.name is not None:
        case.name = options.name
    return options


def _require_callable(name, value):
    """Raise a TypeError naming ``name`` and ``value`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"`{name}` must be callable, got {value!r} ({type(value).__name__})")


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


def check_function(forward, backward, *args, wrt=None, **options):
    """Check a hand-written backward function against its forward, as a course writes them.

    ``forward(*args)`` returns ``(*outputs, cache)`` and ``backward(*douts,
    cache)`` returns the gradients of the differentiable arguments, in order
    (one array when there is one): ``affine_forward(x, w, b) -> (out, cache)``
    with ``affine_backward(dout, cache) -> (dx, dw, db)``;
    ``lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c,
    cache)`` with ``lstm_step_backward(dnext_h, dnext_c, cache) -> (dx,
    dprev_h, dprev_c, dWx, dWh, db)``. A forward that returns one bare array
    (no tuple) keeps no cache: its backward is called as
    ``backward(dout, *args)``. The checked scalar is
    ``J = Σ_k <G_k, outputs[k]>`` with one random ``G_k`` per output; everything
    else is as :func:`check_layer` describes.

    Parameters
    ----------
    forward : callable
        ``forward(*args) -> (*outputs, cache)`` (anything not callable is a
        TypeError naming ``forward``, as for ``backward``); each output a float array of
        any shape (0-d included). It only ever sees copies of ``args``, and a
        fresh forward precedes every backward (a backward may consume its cache).
    backward : callable
        ``backward(*douts, cache) -> gradient(s)``: a gradient per
        differentiable argument (a dict for a dict-of-arrays argument), each of
        its argument's shape. Gradients of every floating argument are
        accepted too when ``wrt`` picks some of them.
    *args
        The forward's arguments. Differentiable by default: every floating
        ndarray (0-d included) and every dict whose values are all floating
        ndarrays (one tensor per key). Everything else (integer or boolean
        arrays: labels, indices, masks; dicts of hyperparameters; None; numbers)
        reaches the function unchanged and is never differentiated. Never
        modified.
    wrt : int, str or sequence of them, optional
        The differentiable arguments, by position or by the forward's
        parameter name, instead of the default.
    **options
        As for :func:`check_layer`: ``mode``, ``seed``, ``dout`` (one array per
        output: an array, or a tuple of them), ``torch_fn``
        (``torch_fn(*args)`` with torch tensors for the differentiable
        arguments, returning the output tensor or a tuple of them), ``step``,
        ``fd_tolerance``, ``torch_tolerance``, ``complex_step``, ``name``,
        ``fd_exclude`` and ``coloring`` (keyed by tensor names).

    Returns
    -------
    CheckResult
        Tensors are named after the forward's parameters (``x``, ``prev_h``;
        a dict argument's keys), gradients ``dx``, ``dprev_h``; the result is
        named after ``forward``. A gradient of the wrong shape fails its check
        with a message saying so (and whether a reshape would match).

    Raises
    ------
    TypeError, ValueError
        For arguments or options it cannot take, a forward that returns no
        float outputs, or a backward that returns the wrong number of
        gradients: the message names the argument and its value.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> def scale_forward(x, w):
    ...     return x * w, (x, w)
    >>> def scale_backward(dout, cache):
    ...     x, w = cache
    ...     return dout * w, np.sum(dout * x)
    >>> rng = np.random.default_rng(0)
    >>> result = gradcheck.check_function(scale_forward, scale_backward,
    ...                                   rng.normal(size=(3, 4)), np.array(0.5))
    >>> result.passed, sorted(result.max_rel_error)
    (True, ['w', 'x'])
    """
    _require_callable("forward", forward)
    _require_callable("backward", backward)
    case = FunctionCase(forward, backward, args, wrt=wrt)
    return check(case, _validated(case, options))


def assert_function_gradients(forward, backward, *args, wrt=None, **options):
    """:func:`check_function`, raising :class:`GradientCheckError` if any gradient is wrong.

    Returns
    -------
    CheckResult
        When every gradient passed.
    """
    return check_function(forward, backward, *args, wrt=wrt, **options).raise_if_failed()


def check_value_and_grad(fn, *args, wrt=None, **options):
    """Check a function that returns its value and its gradient together.

    ``fn(*args) -> (value, gradients)``, with ``value`` a scalar (a float or a
    0-d array) and ``gradients`` those of the differentiable arguments: one
    array, a tuple in argument order, or a dict for a dict-of-arrays
    argument. The losses of a course (``softmax_loss(scores, y) -> (loss,
    dscores)``) and a model's ``loss(X, y) -> (loss, grads)`` are written so.
    The value is differentiated numerically and compared with the returned
    gradient, scaled by a random upstream gradient ``G``.

    Parameters
    ----------
    fn : callable
        ``fn(*args) -> (value, gradients)``. A bound method (or a
        ``functools.partial`` of one) of an object with a ``params`` dict
        (``model.loss``) is checked with respect to the float arrays in those
        params (perturbed in place and restored bit for bit; ``fn`` must read
        them when called), and returns their gradients as a dict with the same
        keys; its data arguments are then not differentiated unless ``wrt``
        says so, and ``fn`` then returns ``(*their gradients, params_grads)``.
        Such ``params`` must be a dict (a list of arrays is a TypeError); an
        empty one, or one with no float array, is named when the check needs it.
        A function returning one dict for its one dict-of-arrays argument
        (``loss(params, X, y)``) is checked over that argument alone.
    *args
        As for :func:`check_function`: integer labels, masks, dicts of
        hyperparameters reach ``fn`` unchanged. Never modified.
    wrt : int, str or sequence of them, optional
        The differentiable arguments, by position or parameter name.
    **options
        As for :func:`check_function`. ``torch_fn(*args)`` returns the value as
        a 0-d tensor; for a bound method with params it takes the params (a
        dict of tensors) as one more, last argument.

    Returns
    -------
    CheckResult

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> def squared_norm(v):
    ...     return 0.5 * np.sum(v ** 2), v
    >>> gradcheck.check_value_and_grad(squared_norm, np.arange(4.0)).passed
    True
    """
    _require_callable("fn", fn)
    case = ValueAndGradCase(fn, args, wrt=wrt)
    return check(case, _validated(case, options))


def assert_value_and_grad(fn, *args, wrt=None, **options):
    """:func:`check_value_and_grad`, raising :class:`GradientCheckError` if any gradient is wrong.

    Returns
    -------
    CheckResult
        When every gradient passed.
    """
    return check_value_and_grad(fn, *args, wrt=wrt, **options).raise_if_failed()
