"""What a check returns: one frozen record per tensor and oracle, and their sum."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["GradientCheckError", "HazardWarning", "TensorCheck", "CheckResult", "ORACLE_LABELS"]

#: How each oracle is named in messages.
ORACLE_LABELS = {"finite_differences": "numeric", "complex_step": "numeric", "torch": "torch"}


class GradientCheckError(AssertionError):
    """A gradient check failed; the message says which tensor and where."""


class HazardWarning(UserWarning):
    """The checked code writes into its caller's data (its input, ``dout``, its params)."""


@dataclass(frozen=True)
class TensorCheck:
    """The comparison of one tensor's analytic gradient with one oracle.

    Attributes
    ----------
    tensor : str
        The tensor's name: ``"x"`` or a parameter's name for a layer; for a
        function, the forward's own parameter name (``prev_h``), or the key of
        a dict of arrays (``W1``).
    gradient : str
        Its label in reports: ``"d" + name``, with the layer's ``input_name``
        for a layer's ``x`` (``dA_prev``, ``dW``, ``dprev_h``).
    oracle : str
        ``"finite_differences"`` or ``"torch"``.
    shape : tuple of int
    max_rel_error, max_abs_error : float
        Over the tensor's entries; relative error as in :mod:`gradcheck.metrics`.
    tolerance : float
        The check passes when ``max_rel_error <= tolerance``.
    floor : float
        The floor ``s`` of the relative error.
    mismatched : int
        Entries whose relative error exceeds the tolerance.
    worst_index : tuple of int
        Index of the entry with the largest relative error.
    analytic, reference : float
        The two values at ``worst_index``.
    excluded : int
        Entries left out of the comparison (``fd_exclude``).
    method : str
        How the reference was computed: ``"full"`` (every entry, central
        differences), ``"complex_step"`` (every entry, complex step), ``"fast"``
        (one random direction), or ``"torch"``.
    nondifferentiable : int
        Entries found at a kink (one-sided derivatives disagree) whose analytic
        value lies between the one-sided derivatives: left out of the error.
    tied : int
        Entries at a tie (equal entries the forward compares, such as tied
        maxima) judged together: their gradients' sum matched the derivative
        of moving the whole tie, so they are left out of the error one by one.
    diagnosis : tuple of str
        For a failure, what the error looks like (see :mod:`gradcheck.diagnosis`).
    shape_error : str
        Empty, or why the user's gradient does not have its tensor's shape: a
        gradient of the wrong shape fails whatever its values (compared after a
        reshape when the number of entries agrees).
    unjudged : str
        Empty, or why the oracle could not judge this gradient: its resolution
        (the rounding of the outputs over the step) lets an error of a tenth of
        the gradient's largest entry pass unseen, and the gradient agrees with
        it only within that resolution (outputs of 1e12 around a derivative of
        1). Such a tensor does not pass.
    plan : str
        How the reference was computed and why (numerical oracle only): every
        entry by complex step or central differences, in groups (and how
        they were found) or one at a time, or along one random direction
        (mode 'fast', or over mode 'auto''s budget); and the forward calls.
    """

    tensor: str
    gradient: str
    oracle: str
    shape: tuple
    max_rel_error: float
    max_abs_error: float
    tolerance: float
    floor: float
    mismatched: int
    worst_index: tuple
    analytic: float
    reference: float
    excluded: int = 0
    method: str = "full"
    nondifferentiable: int = 0
    diagnosis: tuple = ()
    tied: int = 0
    shape_error: str = ""
    plan: str = ""
    unjudged: str = ""

    @property
    def size(self):
        """Number of entries."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def passed(self):
        """Whether the gradient has the tensor's shape, the oracle could judge it, and every
        entry is within the tolerance."""
        return (not self.shape_error and not self.unjudged
                and bool(self.max_rel_error <= self.tolerance))

    def describe(self):
        """Return a few lines on this comparison, in the manner of assert_close."""
        label = ORACLE_LABELS.get(self.oracle, self.oracle)
        if self.method == "fast":
            head = (f"{self.gradient} (tensor {self.tensor!r}, shape {self.shape}) vs "
                    f"{self.oracle} along a random direction (mode 'fast')")
            where = "  along the direction"
        elif self.unjudged:
            head = (f"{self.gradient} (tensor {self.tensor!r}, shape {self.shape}) vs "
                    f"{self.oracle}: could not be judged")
            where = f"  worst at index {self.worst_index}"
        elif self.shape_error:
            head = (f"{self.gradient} (tensor {self.tensor!r}, shape {self.shape}) vs "
                    f"{self.oracle}: a gradient of the wrong shape")
            where = f"  worst at index {self.worst_index}"
        else:
            size = max(self.size, 1)
            left_out = [f"{n} {what}" for n, what in ((self.excluded, "excluded"),
                        (self.nondifferentiable, "non-differentiable"),
                        (self.tied, "tied (judged by their tie's sum)")) if n]
            head = (f"{self.gradient} (tensor {self.tensor!r}, shape {self.shape}) vs "
                    f"{self.oracle}: {self.mismatched} / {size} entries "
                    f"({100.0 * self.mismatched / size:.1f}%) over tolerance {self.tolerance:.0e}"
                    + (f" ({', '.join(left_out)} left out)" if left_out else ""))
            where = f"  worst at index {self.worst_index}"
        if self.shape_error and not np.isfinite(self.max_rel_error):
            return "\n".join([head] + [f"  diagnosis: {d}" for d in self.diagnosis])
        lines = [
            head,
            f"{where}: analytic = {self.analytic:.10g}, {label} = {self.reference:.10g}, "
            f"relative error {self.max_rel_error:.3g} (absolute "
            f"{abs(self.analytic - self.reference):.3g}; relative-error floor {self.floor:.3g})",
        ]
        lines += [f"  not judged: {self.unjudged}"] if self.unjudged else []
        lines += [f"  diagnosis: {d}" for d in self.diagnosis]
        return "\n".join(lines)

    def to_row(self):
        """Return this comparison as a flat dict (one row of a report)."""
        return {
            "tensor": self.tensor,
            "gradient": self.gradient,
            "oracle": self.oracle,
            "shape": "x".join(str(n) for n in self.shape) or "scalar",
            "size": self.size,
            "max_rel_error": self.max_rel_error,
            "max_abs_error": self.max_abs_error,
            "tolerance": self.tolerance,
            "mismatched": self.mismatched,
            "excluded": self.excluded,
            "nondifferentiable": self.nondifferentiable,
            "tied": self.tied,
            "method": self.method,
            "plan": self.plan,
            "unjudged": self.unjudged,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class CheckResult:
    """Everything a check found (:func:`gradcheck.check_layer`, :func:`gradcheck.check_function`,
    :func:`gradcheck.check_value_and_grad`).

    Attributes
    ----------
    layer : str
        The name of what was checked: a layer's ``name`` attribute or class
        name, a function's qualified name (``affine_forward``,
        ``TwoLayerNet.loss``), or the ``name`` option.
    checks : tuple of TensorCheck
        One per tensor (a layer's ``x`` and each parameter; each
        differentiable argument of a function) and oracle.
    forward_calls : int
        Calls to the forward (``layer.forward``, ``forward`` or ``fn``) the check made.
    seed : int
        Seed of the upstream gradient; the same seed reproduces the check.
    problems : tuple of str
        Self-checks that keep the gradients from being judged or show them
        wrong (a nondeterministic forward, a backward not linear in dout,
        gradients accumulated across calls): each fails the check.
    dtype : str
        The precision the layer computes in; tolerances fit it.
    hazards : tuple of str
        What the code does to its caller's data (writes into its input,
        ``dout`` or params). The gradients may still be right: a hazard fails
        the check only when ``strict``.
    strict : bool
        Whether hazards fail the check (the ``strict=`` option).
    notes : tuple of str
        What was checked otherwise than asked, and why (tied weights checked
        as the sum of their gradients).
    """

    layer: str
    checks: tuple = field(default_factory=tuple)
    forward_calls: int = 0
    seed: int = 0
    problems: tuple = ()
    dtype: str = "float64"
    hazards: tuple = ()
    strict: bool = False
    notes: tuple = ()

    @property
    def passed(self):
        """True when no self-check failed, every tensor passed against every oracle, and,
        with ``strict``, no hazard was found."""
        return (not self.problems and not (self.strict and self.hazards)
                and all(c.passed for c in self.checks))

    @property
    def nondifferentiable(self):
        """``{tensor: count}`` of entries found at kinks and left out (worst over oracles)."""
        found = {}
        for c in self.checks:
            found[c.tensor] = max(found.get(c.tensor, 0), c.nondifferentiable)
        return found

    @property
    def max_rel_error(self):
        """``{"x": e, <param>: e, ...}``: each tensor's worst relative error over the oracles."""
        worst = {}
        for c in self.checks:
            worst[c.tensor] = max(worst.get(c.tensor, 0.0), c.max_rel_error)
        return worst

    def failures(self):
        """Return the checks that failed."""
        return tuple(c for c in self.checks if not c.passed)

    def message(self):
        """Return the report of a failed check (or a one-line summary of a pass)."""
        failed = self.failures()
        unjudged = sum(1 for c in failed if c.unjudged)
        hazards = [f"hazard: {h}" for h in self.hazards]
        notes = [f"note: {n}" for n in self.notes]
        if self.passed:
            worst = max(self.checks, key=lambda c: c.max_rel_error / c.tolerance, default=None)
            detail = "" if worst is None else (
                f"; closest to its tolerance: {worst.gradient} vs {worst.oracle}, "
                f"relative error {worst.max_rel_error:.2e} <= {worst.tolerance:.0e}"
            )
            head = f"gradient check of {self.layer} passed ({len(self.checks)} comparisons{detail})"
            if hazards:
                head += (f"; the gradients are right, but {len(hazards)} hazard(s) to the "
                         "caller's data (strict=True fails them):")
            return "\n".join([head] + hazards + notes)
        head = (
            f"gradient check of {self.layer} failed: {len(failed)} of {len(self.checks)} "
            f"comparisons over tolerance"
            + (f" or not judged ({unjudged} could not be judged)" if unjudged else "")
            + (f", {len(self.problems)} self-check(s) failed" if self.problems else "")
            + (f", {len(self.hazards)} hazard(s) (strict)" if self.strict and self.hazards
               else "")
            + f" (seed={self.seed})"
        )
        return "\n".join([head] + [f"self-check: {p}" for p in self.problems] + hazards + notes
                         + [c.describe() for c in failed])

    def raise_if_failed(self):
        """Raise :class:`GradientCheckError` with :meth:`message` if any check failed."""
        if not self.passed:
            raise GradientCheckError(self.message())
        return self

    def to_rows(self):
        """Return one flat dict per comparison, with the layer and call count."""
        return [
            {"layer": self.layer, **c.to_row(), "forward_calls": self.forward_calls,
             "seed": self.seed, "self_checks": "; ".join(self.problems + tuple(
                 f"hazard: {h}" for h in self.hazards))}
            for c in self.checks
        ]
