"""check_layer: a layer's backward pass against finite differences and torch.

The flow is the project's: a layer and an input → arrays (copies; the
caller's are never touched) → gradients (the layer's backward, central
differences, optionally torch autograd) → per-tensor errors → a CheckResult.
"""

from __future__ import annotations

import numpy as np

from gradcheck.metrics import error_floor, relative_errors
from gradcheck.numerical import STEP, central_difference
from gradcheck.result import CheckResult, TensorCheck

__all__ = ["check_layer", "assert_layer_gradients", "FD_TOLERANCE", "TORCH_TOLERANCE"]

#: Default tolerance against central differences. Their error at STEP is ~1e-10
#: of the gradient scale (truncation and rounding, see gradcheck.numerical);
#: 1e-6 leaves room for layers with large third derivatives (saturating
#: sigmoids, softmax with large logits) and still fails any error of 1e-6 or
#: more, far below what a backprop bug produces.
FD_TOLERANCE = 1e-6
#: Default tolerance against torch autograd: both are exact float64 arithmetic
#: up to rounding, so they agree to ~1e-14; 1e-10 leaves four orders of margin
#: for ill-conditioned sums and still catches any bug.
TORCH_TOLERANCE = 1e-10
#: Absolute noise of an oracle in units of u · Σ|G ⊙ y| (divided by the step h
#: for central differences): how far rounding of the forward's outputs can move
#: the estimate. Measured noise is ~1 unit; 64 covers cancellation inside the
#: forward (a dense output sums n_prev terms larger than itself).
_NOISE_FACTOR = 64.0
_U = np.finfo(np.float64).eps / 2


def _layer_name(layer, name):
    if name is not None:
        return str(name)
    return str(getattr(layer, "name", None) or type(layer).__name__)


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
        _validate_float64(f"layer.params[{key!r}]", value)


def _validate_float64(name, array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype != np.float64:
        raise TypeError(
            f"`{name}` has dtype {array.dtype}; gradients are checked in float64 "
            "(finite differences need its precision): convert it with .astype(np.float64)"
        )
    _require_finite(name, array)


def _require_finite(name, array):
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`{name}` has {int(bad.sum())} non-finite value(s) (NaN or inf), "
            f"the first at index {first}: {array[first].item()!r}"
        )


def _as_output(value, what):
    out = np.asarray(value)
    if out.dtype != np.float64:
        raise TypeError(
            f"`{what}` gave dtype {out.dtype}; gradients are checked in float64, where "
            "finite differences have the precision to judge them"
        )
    _require_finite(what, out)
    return np.array(out, dtype=np.float64, copy=True)


def _call_layer(what, method, array):
    try:
        return method(array)
    except Exception as error:
        error.add_note(f"(raised inside {what}, called by gradcheck.check_layer "
                       f"with an array of shape {array.shape})")
        raise


def _analytic_gradients(layer, x, dout):
    dx = _call_layer("layer.backward(dout)", layer.backward, dout.copy())
    grads = {"x": _as_output(dx, "layer.backward(dout)")}
    if grads["x"].shape != x.shape:
        raise ValueError(
            f"`layer.backward(dout)` returned shape {grads['x'].shape}, expected x.shape {x.shape}"
        )
    for key, value in layer.params.items():
        if key not in layer.grads:
            raise ValueError(
                f"`layer.grads` is missing {key!r} after backward: it has {sorted(layer.grads)}, "
                f"`layer.params` has {sorted(layer.params)}"
            )
        g = _as_output(layer.grads[key], f"layer.grads[{key!r}]")
        if g.shape != value.shape:
            raise ValueError(
                f"`layer.grads[{key!r}]` has shape {g.shape}, expected {value.shape} "
                f"like `layer.params[{key!r}]`"
            )
        grads[key] = g
    return grads


def _compare(name, gradient, oracle, analytic, reference, floor, tolerance, excluded):
    err = relative_errors(analytic, reference, floor)
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    worst = tuple(int(i) for i in worst)
    return TensorCheck(
        tensor=name,
        gradient=gradient,
        oracle=oracle,
        shape=tuple(analytic.shape),
        max_rel_error=float(err.max(initial=0.0)),
        max_abs_error=float(np.max(np.abs(analytic - reference), initial=0.0)),
        tolerance=float(tolerance),
        floor=float(floor),
        mismatched=int(np.count_nonzero(err > tolerance)),
        worst_index=worst,
        analytic=float(analytic[worst]) if err.size else 0.0,
        reference=float(reference[worst]) if err.size else 0.0,
        excluded=excluded,
    )


def _compare_all(oracle, analytic, reference, noise, tolerance, input_name, exclude=None):
    exclude = exclude or {}
    # An excluded entry is not compared: the reference takes the analytic value there.
    reference = {k: np.where(exclude[k], analytic[k], r) if k in exclude else r
                 for k, r in reference.items()}
    floor = error_floor([(analytic[k], reference[k]) for k in analytic], noise, tolerance)
    return [
        _compare(k, "d" + (input_name if k == "x" else k), oracle, analytic[k], reference[k],
                 floor, tolerance, int(np.count_nonzero(exclude[k])) if k in exclude else 0)
        for k in analytic
    ]


def _validate_exclude(fd_exclude, x, params):
    if fd_exclude is None:
        return {}
    if not isinstance(fd_exclude, dict):
        raise TypeError(f"`fd_exclude` must be a dict of tensor name to boolean mask, "
                        f"got {type(fd_exclude).__name__}")
    shapes = {"x": x.shape, **{k: v.shape for k, v in params.items()}}
    for key, mask in fd_exclude.items():
        if key not in shapes:
            raise ValueError(f"`fd_exclude` has key {key!r}; the tensors are {sorted(shapes)}")
        if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.shape != shapes[key]:
            got = getattr(mask, "shape", type(mask).__name__), getattr(mask, "dtype", None)
            raise ValueError(f"`fd_exclude[{key!r}]` must be a boolean array of shape "
                             f"{shapes[key]}, got shape/dtype {got}")
    return dict(fd_exclude)


def check_layer(layer, x, *, seed=0, dout=None, torch_fn=None, step=STEP,
                fd_tolerance=FD_TOLERANCE, torch_tolerance=TORCH_TOLERANCE, name=None,
                fd_exclude=None):
    """Check a layer's backward pass against central differences (and torch).

    The layer is run forward on a copy of ``x``; its backward gets a fixed
    upstream gradient ``G`` (random, from ``seed``, unless ``dout`` is given),
    and its ``dJ/dx`` and ``grads`` are compared, entry by entry, with the
    central differences of ``J = <G, layer.forward(x)>`` with respect to ``x``
    and every parameter, and with torch autograd when ``torch_fn`` is given.
    The Jacobian is never formed. The relative error is
    ``|a - r| / max(|a|, |r|, s)`` (see :mod:`gradcheck.metrics`), robust where
    the true gradient is 0.

    Parameters
    ----------
    layer : Layer
        Has ``params`` (dict of float64 ndarrays, perturbed in place during the
        check and restored bit for bit), ``grads`` (filled by backward, same
        keys and shapes), ``forward(x) -> y`` and ``backward(dout) -> dx``.
    x : ndarray, float64, any shape the layer accepts
        Not modified.
    seed : int, default 0
        Seeds ``G``.
    dout : ndarray, shape of ``layer.forward(x)``, optional
        The upstream gradient ``G`` to use instead of a random one.
    torch_fn : callable, optional
        ``torch_fn(x, params) -> Tensor``, the same layer in torch (float64,
        same layout); adds the "torch" oracle. torch is imported only then.
    step : float, default :data:`gradcheck.numerical.STEP`
        Relative step of the central differences.
    fd_tolerance, torch_tolerance : float
        Largest relative error accepted against each oracle.
    name : str, optional
        The layer's name in the result; default its ``name`` attribute or class.
    fd_exclude : dict of str to bool ndarray, optional
        Entries left out of the finite-difference comparison, by tensor
        (``"x"`` or a parameter name; mask of the tensor's shape): points where
        the layer is known not to be differentiable, such as max-pool ties,
        where central differences straddle a kink. They are still compared
        against torch; ``TensorCheck.excluded`` counts them.

    Returns
    -------
    CheckResult
        ``passed``, ``max_rel_error`` (``{"x": e, <param>: e}``), one
        :class:`TensorCheck` per tensor and oracle in ``checks``, and
        ``message()`` saying what failed and where.

    Raises
    ------
    TypeError, ValueError
        For a layer that breaks the protocol or input it cannot take: the
        message names the argument and its value.

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
    _validate_float64("x", x)
    for key, value in (("step", step), ("fd_tolerance", fd_tolerance),
                       ("torch_tolerance", torch_tolerance)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise ValueError(f"`{key}` must be a positive finite number, got {value!r}")
    exclude = _validate_exclude(fd_exclude, x, layer.params)
    label = _layer_name(layer, name)
    input_name = str(getattr(layer, "input_name", "x"))
    x_work = x.copy()
    snapshot = {k: v.copy() for k, v in layer.params.items()}
    calls = 0

    def evaluate():
        nonlocal calls
        calls += 1
        return _as_output(_call_layer("layer.forward(x)", layer.forward, x_work.copy()),
                          "layer.forward(x)")

    try:
        y = evaluate()
        if dout is None:
            G = np.random.default_rng(seed).standard_normal(y.shape)
        else:
            _validate_float64("dout", dout)
            if dout.shape != y.shape:
                raise ValueError(
                    f"`dout.shape` {dout.shape} must equal the shape of layer.forward(x), {y.shape}"
                )
            G = dout.copy()
        analytic = _analytic_gradients(layer, x, G)

        numeric = {"x": central_difference(evaluate, x_work, G, step=step)[0]}
        for key, value in layer.params.items():
            numeric[key] = central_difference(evaluate, value, G, step=step)[0]
        for key, value in numeric.items():
            _require_finite(f"finite-difference gradient of {key!r} (forward gave NaN/inf "
                            "at a perturbed point)", value)
        noise = _NOISE_FACTOR * _U * float(np.sum(np.abs(G * y))) / step
        checks = _compare_all("finite_differences", analytic, numeric, noise, fd_tolerance,
                              input_name, exclude)

        if torch_fn is not None:
            from gradcheck.torch_oracle import torch_gradients

            reference = torch_gradients(torch_fn, x, snapshot, G)
            noise = _NOISE_FACTOR * _U * float(np.sum(np.abs(G * y)))
            checks += _compare_all("torch", analytic, reference, noise, torch_tolerance,
                                   input_name)
    finally:
        for key, value in layer.params.items():
            np.copyto(value, snapshot[key])
    return CheckResult(layer=label, checks=tuple(checks), forward_calls=calls, seed=seed)


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
        analytic and reference values there, and the tolerance.
    """
    return check_layer(layer, x, **options).raise_if_failed()
