"""Cases: the one thing the core checks, and the adapters that build one.

A :class:`Case` is a function of named float tensors with one or more
outputs and a hand-written vector-Jacobian product. The core perturbs the
working arrays in ``case.tensors`` in place (and restores them), calls
:meth:`Case.evaluate` for the outputs and :meth:`Case.vjp` for the user's
gradients; it never knows whether a layer, a function pair or a
value-and-gradient function is behind them. Only an adapter knows what is
copied and what is perturbed in place:

- :class:`LayerCase`: ``layer.forward(x)``, ``layer.backward(dout)`` and
  ``layer.grads``; ``x`` is copied, ``layer.params`` perturbed in place.
- :class:`FunctionCase`: ``forward(*args) -> (*outputs, cache)`` and
  ``backward(*douts, cache)``; every argument is copied for every call.
- :class:`ValueAndGradCase`: ``fn(*args) -> (value, gradients)``; the
  params of a bound method's object (``model.loss``) are perturbed in place.
"""

from __future__ import annotations

import copy
import functools
import inspect
import numbers
import time
from contextlib import contextmanager

import numpy as np

from gradcheck.options import PRECISIONS, require_finite, validate_float
from gradcheck.selfcheck import changed

__all__ = ["Case", "LayerCase", "FunctionCase", "ValueAndGradCase"]


def _call(what, caller, fn, *args):
    """Call the user's ``fn``; an exception gets a note saying where it was raised."""
    try:
        return fn(*args)
    except Exception as error:
        shapes = ", ".join(str(np.shape(a)) for a in args if isinstance(a, np.ndarray))
        error.add_note(f"(raised inside {what}, called by gradcheck.{caller}"
                       + (f" with arrays of shapes {shapes})" if shapes else ")"))
        raise


def as_float(value, what, complex_=False, finite=True):
    """``value`` as a float64 (or complex128) array; other dtypes (NaN/inf if ``finite``) refused.

    With ``complex_`` a real result is taken as complex with no imaginary
    part: an output that does not depend on the perturbed tensor stays real.
    """
    if value is None:
        raise TypeError(f"`{what}` is None; expected a float array")
    try:
        out = np.asarray(value)
    except (TypeError, ValueError):          # a ragged tuple or list: no one array
        raise TypeError(f"`{what}` gave {_describe(value)}; expected one float array") from None
    if out.dtype == object:
        raise TypeError(f"`{what}` gave {_describe(value)}; expected one float array")
    kinds = ("complex128",) if complex_ else tuple(PRECISIONS)
    if out.dtype.name not in kinds and not (complex_ and out.dtype.name in PRECISIONS):
        raise TypeError(
            f"`{what}` gave dtype {out.dtype}; expected {' or '.join(kinds)}"
            + ("" if complex_ else ": gradients are checked in floating point"))
    if finite:
        require_finite(what, out)
    return out.astype(np.complex128 if complex_ else np.float64)     # a copy of our own


def _describe(value):
    """What the user's code returned, for a message: its type, and its items' shapes."""
    if isinstance(value, (tuple, list)):
        shapes = ", ".join(str(np.shape(v)) if isinstance(v, np.ndarray) else type(v).__name__
                           for v in value[:5])
        return (f"a {type(value).__name__} of {len(value)} ({shapes}"
                + (", ..." if len(value) > 5 else "") + ")")
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype}"
    return f"a {type(value).__name__}"


_PROBE_NOTE = (
    "(at a point gradcheck made by moving a tensor by its step, not at the given input: "
    "does the function's domain end within a step of the input (log, sqrt, 1/x near 0)? "
    "a smaller `step=` keeps the probes inside it)")


class _InPlace:
    """A dict of arrays the user's code reads at call time (``layer.params``), perturbed in place.

    ``intact`` finds and undoes writes by the user's code; ``restore`` puts
    back the original objects and values (and drops keys the code added).
    ``holder``: the object whose ``params`` attribute the dict is (a layer, a
    model); code that rebinds it to another dict is found and undone too.
    """

    def __init__(self, owner, where, keys=None, holder=None):
        self.owner, self.where, self.holder = owner, where, holder
        keys = list(owner) if keys is None else list(keys)
        self.snapshot = {k: owner[k].copy() for k in keys}
        self.originals = {k: owner[k] for k in keys}
        self.all_keys = set(owner)
        self.read_only = _writable({f"{where}[{k!r}]": owner[k] for k in keys})

    def intact(self, when):
        problems = []
        if self.holder is not None and getattr(self.holder, "params", None) is not self.owner:
            problems.append(f"{when} replaced {self.where} by another object (it rebinds "
                            "self.params, and a caller's optimizer would update a dict the code "
                            "no longer reads); gradcheck put the original back, and puts it "
                            "back before each call")
            self._rebind()
        for key, before in self.snapshot.items():
            if self.owner.get(key) is not self.originals[key]:
                problems.append(f"{when} replaced {self.where}[{key!r}] by another object; "
                                "gradcheck put the original back")
                self.owner[key] = self.originals[key]
            found = changed(f"{when} modified {self.where}[{key!r}]", before, self.owner[key])
            if found:
                problems.append(found + "; gradcheck restored it")
                np.copyto(self.owner[key], before)
        return problems

    def reattach(self):
        """Point ``holder.params`` at the dict again if the code rebound it (before a call).

        The entries gradcheck moves are the original dict's: a call that
        reads a dict the code made in a previous call would see none of them.
        ``intact`` reports the rebinding; this keeps the verdict about the
        gradients.
        """
        if self.holder is not None and getattr(self.holder, "params", None) is not self.owner:
            self._rebind()

    def _rebind(self):
        try:
            self.holder.params = self.owner
        except (AttributeError, TypeError):       # a read-only property: nothing to undo
            pass

    def restore(self):
        self.reattach()
        for key in set(self.owner) - self.all_keys:
            del self.owner[key]           # keys the user's code added
        for key, value in self.originals.items():
            self.owner[key] = value
            np.copyto(value, self.snapshot[key])
        for array in self.read_only:
            array.flags.writeable = False
        self.read_only = []


def _writable(arrays):
    """Make the read-only arrays among ``arrays`` (name -> ndarray) writable; return them.

    The check perturbs params in place, so a read-only one (``W.flags.writeable
    = False``) is made writable for the check and read-only again after. One
    whose memory is read-only (a view of a read-only array, a read-only
    memmap, bytes) cannot be: it is refused by name, the others put back.
    """
    made, pending = [], [(n, a) for n, a in arrays.items() if not a.flags.writeable]
    while pending:                 # a view can be made writable once its base is
        failed = [(n, a) for n, a in pending if not _make_writable(a, made)]
        if len(failed) == len(pending):
            for array in made:
                array.flags.writeable = False
            name = failed[0][0]
            raise ValueError(
                f"`{name}` is read-only and its memory cannot be made writable (a view of a "
                "read-only array, a read-only memmap or bytes): gradcheck moves params in place "
                f"(and restores them); give the layer a writable copy, {name} = "
                f"{name}.copy()")
        pending = failed
    return made


def _make_writable(array, made):
    """Set ``array`` writable (noting it in ``made``); False when its memory does not allow it."""
    if array.flags.writeable:
        return True
    try:
        array.flags.writeable = True
    except ValueError:
        return False
    made.append(array)
    return True


def _addresses(array):
    """The memory address of every entry of ``array``, in C order of its indices."""
    base = array.__array_interface__["data"][0]
    index = np.indices(array.shape).reshape(array.ndim, -1)
    return base + (np.asarray(array.strides, dtype=np.int64)[:, None] * index).sum(axis=0)


def _self_overlapping(array):
    """Whether two entries of ``array`` share memory (a broadcast or overlapping strided view)."""
    if array.size <= 1:
        return False
    if array.flags.c_contiguous or array.flags.f_contiguous:
        return False
    if any(s == 0 and n > 1 for s, n in zip(array.strides, array.shape)):
        return True                       # a broadcast axis
    axes = sorted((abs(s), n) for s, n in zip(array.strides, array.shape) if n > 1)
    span = array.itemsize                 # bytes covered by the axes of smaller strides
    for stride, n in axes:
        if stride < span:
            break
        span = stride * (n - 1) + span
    else:
        return False                      # nested strides: every entry has its own bytes
    addresses = np.sort(_addresses(array))
    return bool(np.any(np.diff(addresses) < array.itemsize))


def require_own_entries(name, array):
    """Raise a ValueError naming ``name`` if entries of ``array`` share memory.

    Params are perturbed in place, one entry (or group) at a time: in a
    broadcast (``np.broadcast_to``) or an overlapping ``as_strided`` view,
    moving one entry moves others, and every derivative would be wrong.
    """
    if _self_overlapping(array):
        raise ValueError(
            f"entries of `{name}` share memory (a broadcast or overlapping strided view): "
            "gradcheck moves params in place, and moving one entry would move several; pass "
            f"a copy ({name} = np.array({name}))")


def find_aliases(arrays, where):
    """Arrays among ``arrays`` (name -> ndarray) that are the same memory: tied weights.

    Returns ``{member: (head, positions)}``: entry ``i`` (C order) of
    ``member`` is entry ``positions[i]`` of ``head``, the first array of its
    group. The same array twice, or a transpose or reshape of another, is a
    tie; arrays that share only part of their memory are refused.
    """
    found, heads = {}, []
    for name, array in arrays.items():
        head = next((h for h in heads if np.shares_memory(arrays[h], array)), None)
        if head is None:
            heads.append(name)
            continue
        first, this = _addresses(arrays[head]), _addresses(array)
        order = np.argsort(first, kind="stable")
        positions = order[np.clip(np.searchsorted(first[order], this), 0, len(first) - 1)]
        if (array.size != first.size or array.dtype != arrays[head].dtype
                or len(np.unique(this)) != this.size or np.any(first[positions] != this)):
            raise ValueError(
                f"`{where}[{name!r}]` shares part of its memory with `{where}[{head!r}]`: tie "
                "them as the same array (or a transpose or reshape of it), or give each its own "
                "copy (np.copy)")
        found[name] = (head, positions)
    return found


class Case:
    """A function of named float tensors: outputs, a hand-written VJP, and what to call them.

    Attributes
    ----------
    name : str
        The user's function or layer, as results name it.
    tensors : dict of str to ndarray
        The working arrays of the differentiable tensors, in order; the core
        perturbs them in place and :meth:`evaluate` reads them.
    labels : dict of str to str
        Each tensor's gradient label (``dx``, ``dprev_h``, ``dW``).
    forward_what, backward_what : str
        How the user's two calls are named in messages.
    complex_safe : bool
        The user declared that the forward computes the holomorphic extension.
    calls : int
        Forward calls made so far.
    out_dtype : str or None
        The dtype of the first output the forward returned.
    """

    caller = "check"
    complex_safe = False
    #: What the user's code is called in messages ("layer", "function").
    noun = "function"

    def __init__(self, name, tensors, labels, forward_what, backward_what):
        self.name, self.tensors, self.labels = name, tensors, labels
        self.forward_what, self.backward_what = forward_what, backward_what
        self.calls = 0
        #: Wall time of the fastest forward call so far, real (False) and complex
        #: (True), with the checker's copies: the plan's estimate of a call's
        #: cost (the first calls pay for warm-up, a busy machine for others).
        self.fastest = {}
        self.out_dtype = None
        self.output_shapes = None
        #: Set by the core once the self-checks are done: the forward is then
        #: called at points the checker made, which a message must say.
        self.probing = False
        #: How the upstream gradients are named in messages, one per output.
        self.dout_names = ["dout"]
        #: Tied tensors left out of ``tensors``: member -> (head, positions), see
        #: :func:`find_aliases`. Their gradients are added into the head's.
        self.aliases = {}
        #: Sentences for the result: what was checked in another way than asked.
        self.notes = []

    # -- what adapters provide
    def _outputs(self, watch):
        """Call the forward at ``self.tensors``; return (list of raw outputs, problems found)."""
        raise NotImplementedError

    def _gradients(self, douts):
        """Fresh forward, then the user's backward given ``douts``: (raw grads, douts as passed)."""
        raise NotImplementedError

    def _bind(self, name, array):
        """Make the forward read ``array`` for tensor ``name`` (an adapter writing into a dict)."""

    def torch_call(self, torch_fn):
        """Return ``call(leaves) -> output(s)``: ``torch_fn`` applied to torch leaves by name."""
        raise NotImplementedError

    def declared_coloring(self, name, shape):
        """A grouping of the entries of ``name`` declared by the user's code, or None."""
        return None

    def intact(self, when):
        """Problems from writes into data the user's code must only read (restored)."""
        return []

    def restore(self):
        """Put back everything the check moved in the caller's objects."""

    # -- used by the core
    def evaluate(self, complex_=False, watch=False):
        """Return the outputs, raveled and concatenated (float64, or complex128 with ``complex_``).

        With ``watch``, return ``(outputs, problems)``: the problems say which
        argument the forward wrote into.
        """
        self.calls += 1
        what = self.forward_what
        start = time.perf_counter()
        try:
            raw, problems = self._outputs(watch)
            outs = [as_float(r, what if len(raw) == 1 else f"{what}[{k}]", complex_)
                    for k, r in enumerate(raw)]
        except Exception as error:
            if self.probing:
                error.add_note(_PROBE_NOTE)
            raise
        if self.out_dtype is None and raw:
            self.out_dtype = np.asarray(raw[0]).dtype.name
        if self.output_shapes is None:
            self.output_shapes = tuple(o.shape for o in outs)
        flat = (outs[0].reshape(-1) if len(outs) == 1     # already a copy of our own
                else np.concatenate([o.reshape(-1) for o in outs]) if outs else np.zeros(0))
        self.fastest[complex_] = min(self.fastest.get(complex_, np.inf),
                                     time.perf_counter() - start)
        return (flat, problems) if watch else flat

    def seconds_per_call(self, complex_):
        """The fastest forward call so far, complex or real (real when no complex one ran)."""
        return self.fastest.get(complex_, self.fastest.get(False, 0.0))

    @property
    def output_sizes(self):
        """Entries of each output (after the first call)."""
        return [int(np.prod(s, dtype=np.int64)) for s in self.output_shapes or ()]

    @property
    def y_size(self):
        """Entries of the outputs, concatenated (after the first call)."""
        return sum(self.output_sizes)

    def split(self, flat):
        """Cut a concatenated vector back into one array per output."""
        sizes = self.output_sizes
        parts = np.split(flat, np.cumsum(sizes)[:-1]) if sizes else []
        return [p.reshape(s) for p, s in zip(parts, self.output_shapes)]

    def vjp(self, G):
        """Return the user's gradients for the concatenated upstream gradient ``G``.

        Returns
        -------
        grads : dict of str to ndarray
            float64, as the user's code shaped them (the core compares shapes).
        passed : ndarray
            ``G`` as the user's backward left it (concatenated).
        """
        douts = [d.copy() for d in self.split(G)]
        raw, passed = self._gradients(douts)
        # A NaN or inf in a gradient is a wrong gradient, judged as one (not refused).
        grads = {name: as_float(raw[name], self._grad_what(name), finite=False)
                 for name in self.tensors}
        for member, (head, positions) in self.aliases.items():
            grads[head] = self._tied_sum(grads[head], head, member, positions, raw[member])
        return grads, np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1)
                                      for p in passed]) if passed else np.zeros(0)

    def _grad_what(self, name):
        return f"{self.backward_what} for {name!r}"

    def _tie(self, arrays, where):
        """Leave tied arrays out of ``tensors``: each group is checked once, by its head."""
        self.aliases = find_aliases(arrays, where)
        for member, (head, _) in self.aliases.items():
            del self.tensors[member]
            self.labels[head] += " + " + self.labels.pop(member)
            self.notes.append(
                f"{where}[{member!r}] is the same memory as {where}[{head!r}] (tied weights): "
                f"checked is the sum of their gradients, {self.labels[head]}, the derivative of "
                "moving the shared entries (the only one defined)")

    def _tied_sum(self, head_grad, head, member, positions, raw):
        grad = as_float(raw, self._grad_what(member), finite=False)
        if grad.size != positions.size or head_grad.shape != self.tensors[head].shape:
            raise ValueError(f"`{self._grad_what(member)}` has shape {grad.shape}; tied to "
                             f"{head!r}, its gradient must have the shape of {member!r}")
        total = head_grad.reshape(-1).copy()
        np.add.at(total, positions, grad.reshape(-1))
        return total.reshape(head_grad.shape)

    @contextmanager
    def swapped(self, name, array):
        """Let the forward read ``array`` for tensor ``name`` for a while (complex step, etc.)."""
        original = self.tensors[name]
        self.tensors[name] = array
        self._bind(name, array)
        try:
            yield array
        finally:
            self.tensors[name] = original
            self._bind(name, original)


# ----------------------------------------------------------------------------- layers

class LayerCase(Case):
    """A layer (``forward(x)``, ``backward(dout)``, ``params``, ``grads``) at input ``x``."""

    caller = "check_layer"
    noun = "layer"

    def __init__(self, layer, x, name=None):
        _validate_layer(layer)
        validate_float("x", x)
        self.layer = layer
        self.complex_safe = bool(getattr(layer, "complex_safe", False))
        input_name = str(getattr(layer, "input_name", "x"))
        tensors = {"x": np.array(x, dtype=x.dtype), **layer.params}
        labels = {k: "d" + (input_name if k == "x" else k) for k in tensors}
        label = str(name) if name is not None else str(getattr(layer, "name", None)
                                                       or type(layer).__name__)
        super().__init__(label, tensors, labels, "layer.forward(x)", "layer.backward(dout)")
        self.torch_args = ("x", "params")
        self._tie(dict(layer.params), "layer.params")
        self.params = _InPlace(layer.params, "layer.params",   # last: it may unlock params
                               holder=layer)

    def _bind(self, name, array):
        if name != "x":
            self.params.owner[name] = array       # the caller's dict, which forward reads

    def _outputs(self, watch):
        x_in = self.tensors["x"].copy()
        self.params.reattach()
        out = _call(self.forward_what, self.caller, self.layer.forward, x_in)
        if isinstance(out, (tuple, list, dict)):
            raise TypeError(f"`{self.forward_what}` returned {_describe(out)}; a layer's forward "
                            "returns one array (check a function of several outputs with "
                            "gradcheck.check_function)")
        problems = []
        if watch:
            found = changed("layer.forward modified its input x", self.tensors["x"], x_in)
            if found:
                problems.append(found + " (an in-place operation on x? the caller's array would "
                                        "be corrupted; gradcheck passes copies)")
        return [out], problems

    def _gradients(self, douts):
        self.evaluate()
        (passed,) = douts
        dx = _call(self.backward_what, self.caller, self.layer.backward, passed)
        grads = {"x": dx}
        for key in self.layer.params:
            if key not in self.layer.grads:
                raise ValueError(
                    f"`layer.grads` is missing {key!r} after backward: it has "
                    f"{sorted(self.layer.grads)}, `layer.params` has {sorted(self.layer.params)}")
            grads[key] = self.layer.grads[key]
        return grads, [passed]

    def _grad_what(self, name):
        return self.backward_what if name == "x" else f"layer.grads[{name!r}]"

    def declared_coloring(self, name, shape):
        declared = getattr(self.layer, "jacobian_coloring", None)
        if callable(declared):
            colors = declared(name, shape)
            if colors is not None:
                return f"layer.jacobian_coloring({name!r})", np.asarray(colors).reshape(shape)
        return None

    def intact(self, when):
        return self.params.intact(when)

    def restore(self):
        self.params.restore()

    def torch_call(self, torch_fn):
        params = {k: v.shape for k, v in self.layer.params.items()}
        return lambda leaves: _call("torch_fn(x, params)", self.caller, torch_fn, leaves["x"],
                                    {k: _tied_leaf(leaves, self.aliases, k, shape)
                                     for k, shape in params.items()})


def _validate_layer(layer):
    for attr in ("forward", "backward"):
        if not callable(getattr(layer, attr, None)):
            raise TypeError(
                f"`layer` must have a callable `{attr}` method (the Layer protocol), "
                f"got {type(layer).__name__} without one")
    for attr in ("params", "grads"):
        if not isinstance(getattr(layer, attr, None), dict):
            raise TypeError(
                f"`layer.{attr}` must be a dict of str to numpy.ndarray, "
                f"got {type(getattr(layer, attr, None)).__name__}")
    for key, value in layer.params.items():
        if key == "x":
            raise ValueError("`layer.params` may not have a key 'x': it names the input in results")
        validate_float(f"layer.params[{key!r}]", value)
        require_own_entries(f"layer.params[{key!r}]", value)


# -------------------------------------------------------------------------- functions

def _is_float_array(value):
    return isinstance(value, np.ndarray) and value.dtype.name in PRECISIONS


def _is_float_dict(value):
    return isinstance(value, dict) and bool(value) and all(_is_float_array(v)
                                                           for v in value.values())


def _parameter_names(fn, count):
    """The names of ``fn``'s first ``count`` positional parameters (``arg3`` where unknown)."""
    names = []
    try:
        for p in inspect.signature(fn).parameters.values():
            if p.kind == p.VAR_POSITIONAL:
                break
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                names.append(p.name)
    except (TypeError, ValueError):
        pass
    return [names[k] if k < len(names) else f"arg{k}" for k in range(count)]


def _function_name(fn):
    """``TwoLayerNet.loss``, ``affine_forward``: the qualified name, less any enclosing function."""
    name = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
               or type(fn).__name__)
    return name.rpartition("<locals>.")[2]


class _Slot:
    """One differentiable argument: an array, or a dict of arrays (one tensor per key)."""

    def __init__(self, position, name, value):
        self.position, self.name = position, name
        self.keys = list(value) if isinstance(value, dict) else None

    def tensor_names(self, taken):
        if self.keys is None:
            return {None: self.name}
        return {k: (str(k) if str(k) not in taken else f"{self.name}[{k!r}]") for k in self.keys}


class FunctionCase(Case):
    """``forward(*args) -> (*outputs, cache)`` with ``backward(*douts, cache)``.

    A forward that returns a bare array (no tuple) has one output and no
    cache; its backward is then called as ``backward(dout, *args)``.
    ``owner``: a dict of float arrays the function reads at call time (a
    model's ``params``), perturbed in place; its tensors come after the
    arguments', and ``wrt=None`` then differentiates no argument.
    """

    caller = "check_function"

    #: Why the params of the object a method is bound to cannot be checked (set by
    #: :class:`ValueAndGradCase`), said where the check cannot go on without them.
    owner_problem = None

    def __init__(self, forward, backward, args, *, wrt=None, name=None, owner=None,
                 holder=None):
        self.forward, self.backward = forward, backward
        self.args = list(args)
        self.arg_names = _parameter_names(forward, len(self.args))
        self.fn_name = _function_name(forward)
        self.candidates = [k for k, a in enumerate(self.args)
                           if _is_float_array(a) or _is_float_dict(a)]
        self.wrt_given = wrt is not None
        if wrt is not None:
            positions = self._positions(wrt)
        else:
            positions = [] if owner is not None else list(self.candidates)
        for k in positions:
            self._validate_arg(k)
        self.slots = [_Slot(k, self.arg_names[k], self.args[k]) for k in positions]
        self.owner = None
        tensors, self.tensor_of = {}, {}
        for slot in self.slots:
            for key, tname in slot.tensor_names(set(tensors) | set(self.arg_names)).items():
                value = self.args[slot.position] if key is None else self.args[slot.position][key]
                tensors[tname] = np.array(value, dtype=value.dtype)
                self.tensor_of[(slot.position, key)] = tname
        keys = []
        if owner is not None:
            keys = [k for k, v in owner.items() if _is_float_array(v)]
            for key in keys:
                validate_float(f"params[{key!r}]", owner[key])
                require_own_entries(f"params[{key!r}]", owner[key])
            for key in keys:
                tname = str(key) if str(key) not in tensors else f"params[{key!r}]"
                tensors[tname] = owner[key]
                self.tensor_of[("params", key)] = tname
        if not tensors:
            raise ValueError(
                f"`args` of {self.fn_name} hold no floating-point array to differentiate "
                f"(got {', '.join(type(a).__name__ for a in self.args) or 'none'}): pass the "
                "float64 inputs as numpy arrays, or name them with `wrt`"
                + (f"; and the {self.owner_problem}" if self.owner_problem else ""))
        labels = {t: "d" + t for t in tensors}
        signature = ", ".join(self.arg_names)
        super().__init__(str(name) if name is not None else self.fn_name, tensors, labels,
                         f"{self.fn_name}({signature})", self._backward_what())
        self.has_cache = None
        self.torch_args = tuple(self.arg_names) + (("params",) if owner is not None else ())
        if owner is not None:
            self._tie({tname: tensors[tname] for (where, _), tname in self.tensor_of.items()
                       if where == "params"}, "params")
            self.owner = _InPlace(owner, "params", keys,   # last: it may unlock params
                                  holder=holder)

    def _backward_what(self):
        return f"{_function_name(self.backward)}(dout, cache)"

    def _positions(self, wrt):
        if isinstance(wrt, str) or (isinstance(wrt, numbers.Integral)
                                    and not isinstance(wrt, (bool, np.bool_))):
            items = [wrt]
        elif isinstance(wrt, (tuple, list)):
            items = list(wrt)
        else:
            raise TypeError(f"`wrt` must be a position, a parameter name of {self.fn_name}, or a "
                            f"tuple of them, got {wrt!r}")
        if not items:
            raise ValueError(f"`wrt` is empty ({wrt!r}): name at least one argument of "
                             f"{self.fn_name} to differentiate, or leave it None")
        positions = []
        for item in items:
            if isinstance(item, numbers.Integral) and not isinstance(item, (bool, np.bool_)) \
                    and -len(self.args) <= item < len(self.args):
                position = int(item) % len(self.args)
            elif isinstance(item, str) and item in self.arg_names:
                position = self.arg_names.index(item)
            else:
                raise ValueError(
                    f"`wrt` has {item!r}; it takes positions 0..{len(self.args) - 1} or the "
                    f"parameter names of {self.fn_name}: {self.arg_names}")
            if position in positions:
                raise ValueError(f"`wrt` names argument {self.arg_names[position]!r} twice: "
                                 f"{wrt!r}")
            positions.append(position)
        return positions

    def _validate_arg(self, k):
        value, name = self.args[k], self.arg_names[k]
        if isinstance(value, dict):
            if not value:
                raise ValueError(f"`{name}` (argument {k}) is an empty dict: nothing to "
                                 "differentiate")
            for key, v in value.items():
                validate_float(f"{name}[{key!r}]", v)
        else:
            validate_float(name, value)

    def _arguments(self, tensor):
        """The forward's arguments: ``tensor(name)`` for each differentiable one (also inside a
        dict argument), fresh deep copies of the others."""
        call = []
        for k, value in enumerate(self.args):
            if (k, None) in self.tensor_of:
                call.append(tensor(self.tensor_of[(k, None)]))
            elif isinstance(value, dict) and any((k, key) in self.tensor_of for key in value):
                call.append({key: tensor(self.tensor_of[(k, key)])
                             if (k, key) in self.tensor_of else copy.deepcopy(v)
                             for key, v in value.items()})
            else:
                call.append(copy.deepcopy(value))
        return call

    def _call_args(self):
        """Fresh copies of every argument, the differentiable ones from the working arrays."""
        return self._arguments(lambda name: self.tensors[name].copy())

    def _bind(self, name, array):
        if self.owner is not None:
            for (where, key), tname in self.tensor_of.items():
                if where == "params" and tname == name:
                    self.owner.owner[key] = array

    def _watch(self, call):
        problems = []
        for (k, key), tname in self.tensor_of.items():
            if k == "params":
                continue
            if key is not None and key not in call[k]:
                problems.append(f"{self.fn_name} removed {key!r} from its argument "
                                f"{self.arg_names[k]} (a dict the caller passed; gradcheck "
                                "passes copies)")
                continue
            passed = call[k] if key is None else call[k][key]
            found = changed(f"{self.fn_name} modified its argument {tname}", self.tensors[tname],
                            np.asarray(passed))
            if found:
                problems.append(found + " (an in-place operation? the caller's array would be "
                                        "corrupted; gradcheck passes copies)")
        return problems

    def _run_forward(self):
        call = self._call_args()
        if self.owner is not None:
            self.owner.reattach()
        result = _call(self.forward_what, self.caller, self.forward, *call)
        return call, result

    def _outputs(self, watch):
        call, result = self._run_forward()
        if isinstance(result, (tuple, list)):
            if len(result) < 2:
                raise TypeError(
                    f"`{self.forward_what}` returned a {type(result).__name__} of {len(result)}; "
                    "a forward returns (*outputs, cache), or one array when it keeps no cache")
            outputs, self._cache = list(result[:-1]), result[-1]
            self.has_cache = True
        else:
            outputs, self._cache = [result], call
            self.has_cache = False
        for k, out in enumerate(outputs):
            if isinstance(out, (tuple, list, dict)):
                raise TypeError(
                    f"`{self.forward_what}` returned a {type(out).__name__} as output {k}; a "
                    "forward returns (*outputs, cache) with each output an array: return "
                    "(a, b, cache), not ((a, b), cache)")
        if self.output_shapes is None:          # the first call: name the upstream gradients
            self.dout_names = (_parameter_names(self.backward, len(outputs)) if self.has_cache
                               else ["dout"])
        return outputs, (self._watch(call) if watch else [])

    def _gradients(self, douts):
        self.evaluate()
        cache = self._cache
        passed = [d for d in douts]
        if self.has_cache:
            returned = _call(self.backward_what, self.caller, self.backward, *passed, cache)
        else:
            returned = _call(self.backward_what, self.caller, self.backward, *passed, *cache)
        return self._match(returned), passed

    def _match(self, returned):
        """Name the gradients the backward returned: one per differentiable argument, in order."""
        slots = self.slots
        many = isinstance(returned, (tuple, list))
        items = list(returned) if many else [returned]
        if len(slots) == 1 and many and len(items) != 1 \
                and _one_gradient(returned, self.tensors[self.tensor_of[_first_key(slots[0])]]):
            items = [returned]                     # one gradient, given as a nested list
        if len(items) != len(slots) and self.wrt_given and len(items) == len(self.candidates):
            # every floating argument's gradient returned; `wrt` picks some of them
            by_position = dict(zip(self.candidates, items))
            items = [by_position.get(s.position) for s in slots]
        if len(items) != len(slots):
            raise ValueError(self._count_message(len(items), len(slots)))
        grads = {}
        for slot, item in zip(slots, items):
            if slot.keys is None:
                grads[self.tensor_of[(slot.position, None)]] = item
                continue
            if not isinstance(item, dict) or set(item) != set(slot.keys):
                got = sorted(item) if isinstance(item, dict) else type(item).__name__
                raise ValueError(f"`{self.backward_what}` must give a dict with the keys of "
                                 f"`{slot.name}` {sorted(slot.keys)} as its gradient, got {got}")
            for key in slot.keys:
                grads[self.tensor_of[(slot.position, key)]] = item[key]
        return grads

    def _count_message(self, got, expected):
        names = ", ".join(s.name for s in self.slots)
        passed_through = [f"{self.arg_names[k]} ({_kind(a)})" for k, a in enumerate(self.args)
                          if k not in {s.position for s in self.slots}
                          and isinstance(a, (float, np.floating, dict, np.ndarray))]
        return (f"`{self.backward_what}` returned {got} gradient(s), expected {expected}: one "
                f"per differentiable argument of {self.fn_name}, in order ({names})"
                + (f"; not differentiated: {', '.join(passed_through)} (only numpy float "
                   "arrays and dicts of them are)" if passed_through else "")
                + "; pass `wrt` (positions or names) to say which arguments are differentiated"
                + (f"; the {self.owner_problem}" if self.owner_problem else ""))

    def intact(self, when):
        return self.owner.intact(when) if self.owner is not None else []

    def restore(self):
        if self.owner is not None:
            self.owner.restore()

    def torch_call(self, torch_fn):
        def call(leaves):
            args = self._arguments(leaves.__getitem__)
            if self.owner is not None:
                args.append({key: _tied_leaf(leaves, self.aliases, self.tensor_of[("params", key)],
                                             self.owner.originals[key].shape)
                             for key in self.owner.originals})
            return _call(f"torch_fn({', '.join(self.torch_args)})", self.caller, torch_fn, *args)
        return call


def _tied_leaf(leaves, aliases, name, shape):
    """The torch leaf of tensor ``name``, or for a tied one, its head's entries in its shape."""
    if name not in aliases:
        return leaves[name]
    head, positions = aliases[name]
    return leaves[head].reshape(-1)[positions.tolist()].reshape(shape)


def _first_key(slot):
    return slot.position, (None if slot.keys is None else slot.keys[0])


def _one_gradient(value, tensor):
    """Whether a list or tuple is one gradient of ``tensor`` written as nested lists."""
    try:
        return np.asarray(value, dtype=np.float64).shape == tensor.shape
    except (TypeError, ValueError):
        return False


def _kind(value):
    if isinstance(value, dict):
        return "a dict with values that are not all float arrays"
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype}"
    return f"a {type(value).__name__}"


def _owner_params(fn):
    """The object a bound method (or a partial of one) belongs to, its ``params`` dict, and why
    that dict cannot be checked (None when it can, or when the object has no ``params``).

    Returns ``(holder, params, problem)``: ``params`` is None unless it is a
    dict holding float arrays. A ``params`` that is a list or tuple of float
    arrays (a model's parameters not keyed by name) is refused here; other
    problems (an empty dict, one with no float array) are said only when the
    check cannot go on without the params (a method may differentiate its
    arguments alone).
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    holder = getattr(fn, "__self__", None)
    if holder is None or not hasattr(holder, "params"):
        return None, None, None
    params, where = holder.params, f"`params` of the {type(holder).__name__} object"
    if isinstance(params, dict) and any(_is_float_array(v) for v in params.values()):
        return holder, params, None
    if isinstance(params, (tuple, list)) and any(_is_float_array(v) for v in params):
        raise TypeError(
            f"{where} that {_function_name(fn)} is bound to must be a dict of float arrays "
            f"(name -> array), got {type(params).__name__}: gradcheck moves each array by "
            f"its name, and {_function_name(fn)} returns their gradients as a dict keyed alike")
    if not isinstance(params, dict):
        problem = (f"{where} it is bound to is a {type(params).__name__}, not a dict of float "
                   "arrays (name -> array)")
    elif not params:
        problem = f"{where} it is bound to is an empty dict: nothing to differentiate"
    else:
        kinds = ", ".join(f"{k!r}: {_kind(v)}" for k, v in list(params.items())[:3])
        problem = (f"{where} it is bound to holds no float array to differentiate ({kinds}"
                   f"{', ...' if len(params) > 3 else ''}): convert them with "
                   ".astype(np.float64)")
    return holder, None, problem


class ValueAndGradCase(FunctionCase):
    """``fn(*args) -> (value, gradients)``: a scalar and the gradient(s) of the differentiable args.

    When ``fn`` is a bound method (or a ``functools.partial`` of one) of an
    object with a ``params`` dict (``model.loss``), its float arrays are the
    differentiable tensors (perturbed in place, restored bit for bit) and
    ``fn`` returns their gradients as a dict keyed like them. With ``wrt``
    naming arguments too, ``fn`` returns ``(*their gradients, params_grads)``.
    A function that returns one dict for its one dict-of-arrays argument is
    checked over that argument alone (its other arguments are data).
    """

    caller = "check_value_and_grad"

    def __init__(self, fn, args, *, wrt=None, name=None):
        holder, owner, self.owner_problem = _owner_params(fn)
        super().__init__(fn, None, args, wrt=wrt, name=name, owner=owner, holder=holder)
        self.forward_what = f"{self.fn_name}({', '.join(self.arg_names)})"

    def _backward_what(self):
        return f"the gradient returned by {self.fn_name}"

    def _outputs(self, watch):
        call, result = self._run_forward()
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"`{self.forward_what}` must return (value, gradients), got "
                            f"{type(result).__name__}"
                            + (f" of length {len(result)}" if isinstance(result, (tuple, list))
                               else ""))
        value, self._returned = result
        if np.ndim(value) != 0:
            raise ValueError(f"`{self.forward_what}` returned a value of shape {np.shape(value)}; "
                             "the value must be a scalar (a float or a 0-d array)")
        return [value], (self._watch(call) if watch else [])

    def _gradients(self, douts):
        self.evaluate()
        (dout,) = douts
        grads = self._match_value_and_grad(self._returned)
        return {k: as_float(g, self._grad_what(k), finite=False) * dout
                for k, g in grads.items()}, [dout]

    def _match_value_and_grad(self, returned):
        if self.owner is None:
            dicts = [s for s in self.slots if s.keys is not None]
            if isinstance(returned, dict) and not self.wrt_given and len(self.slots) > 1 \
                    and len(dicts) == 1:
                self._keep_only(dicts)               # a loss of (params, X, y): X is data
            if isinstance(returned, dict) and not any(s.keys is not None for s in self.slots):
                if self.owner_problem:
                    raise ValueError(
                        f"`{self.fn_name}` returned its gradients as a dict (keys "
                        f"{sorted(returned)}), but the {self.owner_problem}")
                raise ValueError(
                    f"`{self.fn_name}` returned its gradients as a dict (keys "
                    f"{sorted(returned)}), but no argument is a dict of float arrays and it is "
                    "not a bound method of an object with a `params` dict: pass the model's "
                    "method itself (model.loss), or the params dict as an argument")
            return self._match(returned)
        params = returned
        grads = {}
        if self.slots:
            if not (isinstance(returned, (tuple, list)) and len(returned) == len(self.slots) + 1):
                raise ValueError(
                    f"`{self.backward_what}` must be ({', '.join('d' + s.name for s in self.slots)}"
                    f", params_grads) when `wrt` names arguments of a model's method, got "
                    f"{type(returned).__name__}")
            *rest, params = returned
            grads = self._match(tuple(rest) if len(rest) > 1 else rest[0])
        keys = list(self.owner.originals)
        if not isinstance(params, dict):
            raise TypeError(f"`{self.forward_what}` returned grads of type "
                            f"{type(params).__name__}; expected a dict keyed like the model's "
                            f"float params {sorted(keys)}")
        if not set(keys) <= set(params):
            raise ValueError(f"`{self.forward_what}` returned grads for {sorted(params)}, "
                             f"missing {sorted(set(keys) - set(params))}; expected a dict keyed "
                             f"like the model's float params {sorted(keys)}")
        grads.update({self.tensor_of[("params", k)]: params[k] for k in keys})
        return grads

    def _keep_only(self, keep):
        kept = {s.position for s in keep}
        for (k, key), tname in list(self.tensor_of.items()):
            if k != "params" and k not in kept:
                del self.tensor_of[(k, key)]
                del self.tensors[tname]
                del self.labels[tname]
        self.slots = list(keep)
