"""The command line: ``gradcheck verify``, ``check``, ``bench`` and ``report``.

Run as ``python -m gradcheck`` or through the ``gradcheck`` console script.
Every subcommand's ``--help`` lists its options with their defaults.

Exit codes: 0 everything passed, 1 a gradient check failed, 2 a usage error
(a bad argument, a repository without ``property_tests/`` or ``benchmarks/``, a
missing extra) or anything else that kept the command from judging the
gradients: an exception, ``sys.exit`` or Ctrl-C inside the user's module,
factory or layer. A check that did not run never exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import traceback
from pathlib import Path

from gradcheck.extras import MissingExtraError, install_hint

__all__ = ["main", "build_parser", "repository_root", "verify_command", "verify_env",
           "bench_commands",
           "load_factory", "format_table", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: What ``make verify`` runs: the reference layers and the detection suite.
VERIFY_PATHS = ("property_tests/reference_impls", "property_tests/detection")
#: Columns of the table ``gradcheck check`` prints, one row per tensor and oracle.
TABLE_COLUMNS = ("tensor", "gradient", "oracle", "method", "max_rel_error", "tolerance",
                 "mismatched", "passed")


class UsageError(Exception):
    """A bad argument or a missing part of the repository: exit code 2."""


def repository_root():
    """Return the repository that holds this package: the parent of the ``gradcheck`` directory."""
    return Path(__file__).resolve().parent.parent


def _require_dir(root, name, command):
    if not (root / name).is_dir():
        raise UsageError(
            f"gradcheck {command}: no {name}/ directory in {root} (the parent of the gradcheck "
            f"package); `gradcheck {command}` runs from a source checkout of the repository, "
            "not from an installed package")


# ---------------------------------------------------------------------------- verify

def verify_command(*, profile="ci", seed=None, out="reports", jobs=None, python=None):
    """Return the pytest command line ``gradcheck verify`` runs (what ``make verify`` runs).

    Parameters
    ----------
    profile : {"ci", "thorough"}
        The hypothesis profile (``--hypothesis-profile``).
    seed : int, optional
        ``--hypothesis-seed``, when given.
    out : str or Path
        Directory of the CSV reports (``--gradcheck-report``).
    jobs : int, optional
        pytest-xdist workers (``-n``), when given.
    python : str, optional
        The interpreter; default ``sys.executable``.

    Returns
    -------
    list of str
        To be run with the repository root as working directory.
    """
    command = [python or sys.executable, "-m", "pytest", *VERIFY_PATHS, "-q",
               f"--hypothesis-profile={profile}", f"--gradcheck-report={os.fspath(out)}",
               "--gradcheck-strict"]
    if jobs is not None:
        command += ["-n", str(jobs)]
    if seed is not None:
        command.append(f"--hypothesis-seed={seed}")
    return command


#: The environment variable property_tests/conftest.py reads for the profiles' max_examples.
MAX_EXAMPLES_ENV = "GRADCHECK_MAX_EXAMPLES"


def verify_env(environ=None, *, jobs=None, examples=None):
    """Return the environment ``gradcheck verify`` runs pytest in: ``environ`` (default
    ``os.environ``) with ``OMP_NUM_THREADS=1`` unless set when ``jobs`` is given, and
    ``GRADCHECK_MAX_EXAMPLES=examples`` when ``examples`` is given."""
    env = dict(os.environ if environ is None else environ)
    if jobs is not None:
        # As `make verify JOBS=N`: one torch thread per worker unless set.
        env.setdefault("OMP_NUM_THREADS", "1")
    if examples is not None:
        env[MAX_EXAMPLES_ENV] = str(examples)
    return env


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _verify(args):
    root = repository_root()
    _require_dir(root, "property_tests", "verify")
    env = verify_env(jobs=args.jobs, examples=args.examples)
    # --out is relative to where the user is, not to the repository root pytest runs in.
    out = Path(args.out).resolve()
    command = verify_command(profile=args.profile, seed=args.seed, out=out, jobs=args.jobs)
    code = subprocess.run(command, cwd=root, env=env).returncode
    return code if code in (EXIT_OK, EXIT_FAILED) else EXIT_USAGE


# ---------------------------------------------------------------------------- check

def load_factory(spec, argument="MODULE:FACTORY"):
    """Import ``MODULE`` and return its attribute ``FACTORY`` from ``spec`` = "MODULE:FACTORY".

    The current directory is put first on ``sys.path``, so a module next to
    the user is found. Raises :class:`UsageError` naming ``argument`` and
    ``spec`` when the colon, the module or the attribute is missing.
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise UsageError(f"{argument} must be MODULE:NAME (e.g. my_layers:make_layer), got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or whatever the module raised on import
        hint = install_hint(error.name) if isinstance(error, ImportError) else None
        raise UsageError(f"{argument} {spec!r}: cannot import module {module_name!r}: "
                         f"{type(error).__name__}: {error}"
                         + (f"; to install it: {hint}" if hint else "")) from error
    target = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"{argument} {spec!r}: module {module_name!r} has no attribute "
                             f"{attribute!r}") from None
    if not callable(target):
        raise UsageError(f"{argument} {spec!r}: {attribute!r} is not callable")
    return target


def _verdict(check):
    return "yes" if check.passed else "unjudged" if check.unjudged else "NO"


def format_table(result):
    """Return the per-tensor table of a :class:`gradcheck.CheckResult` as fixed-width text."""
    rows = [TABLE_COLUMNS]
    for c in result.checks:
        rows.append((c.tensor, c.gradient, c.oracle, c.method, f"{c.max_rel_error:.2e}",
                     f"{c.tolerance:.0e}", str(c.mismatched), _verdict(c)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def _entry_point(made, factory):
    """Which entry point a factory's result is for, and a call of it taking the options.

    ``(layer, x)``: check_layer; ``(forward, backward, args)``: check_function;
    ``(fn, args)``: check_value_and_grad (``args`` a tuple or list).
    """
    import gradcheck

    if isinstance(made, (tuple, list)) and len(made) == 3 and callable(made[0]) \
            and callable(made[1]) and isinstance(made[2], (tuple, list)):
        forward, backward, fn_args = made
        return "check_function", lambda **o: gradcheck.check_function(forward, backward,
                                                                      *fn_args, **o)
    if isinstance(made, (tuple, list)) and len(made) == 2 and callable(made[0]) \
            and isinstance(made[1], (tuple, list)):
        fn, fn_args = made
        return "check_value_and_grad", lambda **o: gradcheck.check_value_and_grad(fn, *fn_args,
                                                                                 **o)
    if isinstance(made, (tuple, list)) and len(made) == 2:
        layer, x = made
        return "check_layer", lambda **o: gradcheck.check_layer(layer, x, **o)
    got = f"a {type(made).__name__}" + (f" of length {len(made)}"
                                       if isinstance(made, (tuple, list)) else "")
    raise UsageError(f"MODULE:FACTORY {factory!r}: the factory must return a pair "
                     f"(layer, x), a triple (forward, backward, args) or a pair (fn, args) "
                     f"with args a tuple, got {got}")


def _raised_by_user_code(error):
    """Whether ``error`` came out of the user's forward, backward or torch_fn (the checker
    notes where), rather than from the checker refusing its input."""
    return any(note.startswith(("(raised inside ", "(raised by torch.autograd.grad"))
               for note in getattr(error, "__notes__", ()))


def _check(args):
    factory = load_factory(args.factory, "MODULE:FACTORY")
    torch_fn = load_factory(args.torch, "--torch") if args.torch else None
    try:
        made = factory()
    except Exception as error:
        raise UsageError(f"MODULE:FACTORY {args.factory!r}: calling the factory raised "
                         f"{type(error).__name__}: {error}") from error
    entry, call = _entry_point(made, args.factory)
    try:
        result = call(mode=args.mode, seed=args.seed, complex_step=args.complex_step,
                      torch_fn=torch_fn)
    except (TypeError, ValueError) as error:
        if _raised_by_user_code(error):
            raise     # a bug in the user's code: its traceback, exit 2 (see main)
        raise UsageError(f"MODULE:FACTORY {args.factory!r}: {entry} refused it: "
                         f"{error}") from error
    print(format_table(result))
    print()
    print(result.message())
    return EXIT_OK if result.passed else EXIT_FAILED


# ---------------------------------------------------------------------------- bench

def bench_commands(root, *, quick=False, python=None):
    """Return the benchmark command lines ``gradcheck bench`` runs from ``root``, in order.

    ``benchmarks.bench_layers`` always; then ``benchmarks.bench_checker`` and
    ``benchmarks.bench_users`` (in that order: the second adds its rows to
    the first's CSV), each when its file exists under ``root/benchmarks``.
    """
    python = python or sys.executable
    extra = ["--quick"] if quick else []
    commands = [[python, "-m", "benchmarks.bench_layers", *extra]]
    for module in ("bench_checker", "bench_users"):
        if (Path(root) / "benchmarks" / f"{module}.py").is_file():
            commands.append([python, "-m", f"benchmarks.{module}", *extra])
    return commands


def _bench(args):
    root = repository_root()
    _require_dir(root, "benchmarks", "bench")
    for command in bench_commands(root, quick=args.quick):
        code = subprocess.run(command, cwd=root).returncode
        if code != 0:
            return code
    return EXIT_OK


# ---------------------------------------------------------------------------- report

def _report(args):
    from gradcheck.report import (
        DamagedReportError, MissingExtraError, NoReportError, write_readable_report,
    )

    try:
        written = write_readable_report(args.dir)
    except NoReportError as error:
        raise UsageError(f"gradcheck report: {error}; run `gradcheck verify --out {args.dir}` "
                         "(or pytest --gradcheck-report DIR) first") from None
    except DamagedReportError as error:
        raise UsageError(f"gradcheck report: a damaged CSV, nothing written: {error}; "
                         f"write the reports again (`gradcheck verify --out {args.dir}`)"
                         ) from None
    except MissingExtraError as error:
        raise UsageError(f"gradcheck report: {error}") from None
    except OSError as error:   # e.g. summary.md a directory, the folder read-only
        raise UsageError(f"gradcheck report: cannot write the report in {args.dir}: {error}"
                         ) from None
    for path in written:
        print(f"written: {path}")
    return EXIT_OK


# ---------------------------------------------------------------------------- parser

class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors exit with :data:`EXIT_USAGE` (argparse's own 2, kept explicit)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


_EPILOG = ("exit codes: 0 all passed, 1 a gradient check failed, 2 a usage error or a check "
           "that did not run (an exception, sys.exit or Ctrl-C in your code)")


def build_parser():
    """Return the argument parser of ``gradcheck`` and its subcommands."""
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(prog="gradcheck", formatter_class=formatter, epilog=_EPILOG,
                     description="Verify hand-written backward passes against numerical "
                                 "differences and PyTorch autograd.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)

    verify = commands.add_parser(
        "verify", formatter_class=formatter, epilog=_EPILOG,
        help="verify every reference layer and run the detection suite (make verify)",
        description="Run what `make verify` runs: pytest on property_tests/reference_impls and "
                    "property_tests/detection, from the repository root, writing the CSV "
                    "reports and printing the summary and the detection rate. Needs a source "
                    "checkout (property_tests/ next to the gradcheck package).")
    verify.add_argument("--profile", choices=("ci", "thorough"), default="ci",
                        help="hypothesis profile: ci (derandomized, 60 examples per test) or "
                             "thorough (randomized, 600)")
    verify.add_argument("--seed", type=int, default=None,
                        help="hypothesis seed (--hypothesis-seed); it changes the examples of the "
                             "randomized profile (thorough) only, ci is derandomized")
    verify.add_argument("--examples", type=_positive_int, default=None, metavar="N",
                        help="hypothesis examples per test (max_examples of the profile, "
                             "through GRADCHECK_MAX_EXAMPLES); tests with their own "
                             "@settings(max_examples=...) keep theirs; none: the profile's")
    verify.add_argument("--out", default="reports", metavar="DIR",
                        help="directory of the CSV reports (relative to the current directory)")
    verify.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="run in N processes with pytest-xdist, one torch thread each; "
                             "none: one process")
    verify.set_defaults(run=_verify)

    check = commands.add_parser(
        "check", formatter_class=formatter, epilog=_EPILOG,
        help="check one layer or function: MODULE:FACTORY returns what to check",
        description="Import MODULE (the current directory is on the path) and call FACTORY(). "
                    "It returns (layer, x) for gradcheck.check_layer, (forward, backward, "
                    "args) for gradcheck.check_function, or (fn, args) for "
                    "gradcheck.check_value_and_grad, args being a tuple. Print one row per "
                    "tensor and oracle, then the diagnosis.")
    check.add_argument("factory", metavar="MODULE:FACTORY",
                       help="a function of no arguments returning (layer, x), (forward, "
                            "backward, args) or (fn, args), e.g. my_layers:make_dense")
    check.add_argument("--mode", choices=("auto", "full", "fast"), default="auto",
                       help="full: every entry; fast: one random direction per tensor; auto: "
                            "full where a tensor takes at most 10,000 forward calls and 5 s, "
                            "fast above")
    check.add_argument("--seed", type=int, default=0,
                       help="seed of the random upstream gradient and directions")
    check.add_argument("--complex-step", action=argparse.BooleanOptionalAction, default=None,
                       help="force or forbid complex-step differentiation; none: used when the "
                            "layer says complex_safe = True, else tested per tensor (float64)")
    check.add_argument("--torch", default=None, metavar="MODULE:FN",
                       help="the same forward in torch, float64: torch_fn(x, params) for a "
                            "layer, torch_fn(*args) for a function; adds torch autograd as an "
                            "oracle; none: numerical differences only")
    check.set_defaults(run=_check)

    bench = commands.add_parser(
        "bench", formatter_class=formatter, epilog="exit codes: 0 done, 2 no benchmarks/ "
                                                   "directory; otherwise the benchmark's own",
        help="speed and memory of conv and pooling against torch (make bench)",
        description="Run python -m benchmarks.bench_layers, then benchmarks.bench_checker and "
                    "benchmarks.bench_users (each when present) from the repository root; they "
                    "write reports/bench_*.csv and reports/bench_users.md.")
    bench.add_argument("--quick", action="store_true", default=False,
                       help="a few small shapes only (passed on to each benchmark)")
    bench.set_defaults(run=_bench)

    report = commands.add_parser(
        "report", formatter_class=formatter,
        epilog="exit codes: 0 written, 2 no gradcheck CSV in DIR, a damaged CSV (the message "
               "names the file and the line; nothing is written) or pandas not installed",
        help="rebuild summary.md and the plots from the CSVs of a reports folder",
        description="Read gradcheck_detailed.csv, detection.csv and, when present, "
                    "bench_layers.csv and bench_checker.csv from DIR, check each against its "
                    "columns and their types, and write summary.md, errors.png and (with "
                    "bench_layers.csv) bench.png there; needs pandas, and matplotlib for the "
                    "plots (pip install 'gradcheck[report]').")
    report.add_argument("--dir", default="reports", metavar="DIR",
                        help="the reports folder (relative to the current directory)")
    report.set_defaults(run=_report)
    return parser


def _stopped(stop):
    """Say what stopped the command: ``sys.exit`` in the user's code, or an interrupt."""
    if isinstance(stop, KeyboardInterrupt):
        return "interrupted (KeyboardInterrupt)"
    return (f"SystemExit({stop.code!r}) was raised (sys.exit or exit() called in the module, "
            "the factory or the layer?)")


def main(argv=None):
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except (UsageError, MissingExtraError) as error:
        print(f"gradcheck: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (SystemExit, KeyboardInterrupt) as stop:  # never a 0 for a check that did not run
        print(f"gradcheck {args.command}: error: {_stopped(stop)}; no gradient was judged",
              file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # e.g. raised inside the layer: no verdict on its gradients
        traceback.print_exc()
        print(f"gradcheck {args.command}: error: the command stopped on the exception above",
              file=sys.stderr)
        return EXIT_USAGE
