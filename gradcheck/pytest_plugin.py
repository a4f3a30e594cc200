"""pytest plugin: the ``check_gradients`` fixture and the ``--gradcheck-report`` option.

Registered through the ``pytest11`` entry point, so it is active wherever
gradcheck is installed::

    def test_my_layer(check_gradients):
        check_gradients(MyLayer(...), x, config={"width": 3})
        check_gradients.function(affine_forward, affine_backward, x, w, b)
        check_gradients.value_and_grad(softmax_loss, scores, labels)

``check_gradients`` runs :func:`gradcheck.check_layer` (or, through its
methods, :func:`gradcheck.check_function` and
:func:`gradcheck.check_value_and_grad`), records every
comparison of the session, and raises :class:`gradcheck.GradientCheckError`
when one fails. With ``pytest --gradcheck-report DIR`` the records are written
as CSV under DIR at the end of the session, the rows of the summary closest to
their tolerance are printed (the whole table is in the summary CSV), and
``summary.md`` and the plots are written from those CSVs
(:func:`gradcheck.report.write_readable_report`). The option needs pandas (the
``report`` extra): without it pytest refuses the option before running a test.

Under pytest-xdist (``pytest -n 2``) each worker records its own checks and
sends them to the controller when it finishes (``config.workeroutput``); the
controller merges them and writes the report. Rows are put in the order of the
collected tests (a test's own rows in the order it made them), so a parallel
run writes the same CSV files as a serial one.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from gradcheck.checker import check_function, check_layer, check_value_and_grad
from gradcheck.result import GradientCheckError

__all__ = ["Recorder", "reproduce_command"]

_KEY = pytest.StashKey()
#: Keys of ``config.workeroutput`` under which an xdist worker sends its records.
_ROWS_OUTPUT = "gradcheck_rows"
_DETECTIONS_OUTPUT = "gradcheck_detections"


#: The verdict each kind of catalog case should get (``expected_verdict`` of detection.csv).
EXPECTED_VERDICTS = {"bug": "fail", "correct": "pass", "hazard": "pass, hazard reported"}


def _plain(value):
    """``value`` as a plain Python object (numpy scalars and arrays converted), for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _plain_row(row):
    return {key: _plain(value) for key, value in row.items()}


def _json_value(value):
    """``default`` of ``json.dumps`` for a configuration: NumPy scalars as the Python numbers
    and bools they hold (``.item()``), arrays as lists, anything else as its ``str``."""
    if isinstance(value, (np.generic, np.ndarray)):
        return _plain(value)
    return str(value)


def _checked_config(config):
    """``config`` (None or a dict with str keys) as the JSON of the ``config`` column.

    Raises
    ------
    TypeError
        When ``config`` is not None or a dict, or has a key that is not a str.
    """
    if config is None:
        return "{}"
    if not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict of the case's settings with str keys "
                        f"(e.g. {{'m': 4}}) or None, got {type(config).__name__} {config!r}")
    bad = [key for key in config if not isinstance(key, str)]
    if bad:
        raise TypeError(f"`config` keys must be str (they name the config.<key> columns), got "
                        f"{type(bad[0]).__name__} {bad[0]!r}")
    try:
        return json.dumps(config, sort_keys=True, default=_json_value)
    except (TypeError, ValueError) as error:   # a key of a nested dict, a circular reference
        raise TypeError(f"`config` {config!r} cannot be written as JSON ({error})") from None


def _shell_quote(text):
    """``text`` in single quotes for a POSIX shell (a ``'`` inside becomes ``'"'"'``)."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _hypothesis_profile(config):
    """The hypothesis profile of the session: ``--hypothesis-profile``, else the loaded one."""
    try:
        chosen = config.getoption("--hypothesis-profile")
    except ValueError:   # hypothesis's pytest plugin not loaded
        chosen = None
    if chosen:
        return chosen
    hypothesis = sys.modules.get("hypothesis")
    return getattr(getattr(hypothesis, "settings", None), "_current_profile", None)


def reproduce_command(nodeid, profile=None):
    """The command that reruns exactly the test ``nodeid`` (from the pytest root directory)."""
    command = f"python -m pytest {_shell_quote(nodeid)}"
    if profile:
        command += f" --hypothesis-profile={profile}"
    return command + " -p no:cacheprovider"


class Recorder:
    """Run gradient checks and keep one row per case × tensor × oracle.

    Also keeps the verdicts of a detection suite (:meth:`record_detection`):
    layers with known bugs that must fail and correct ones that must pass.
    """

    def __init__(self):
        self.rows = []
        self.detections = []
        self.current_test = ""
        #: Whether the current test is a hypothesis test (``@given``).
        self.current_is_hypothesis = False
        #: The pytest config of the session, for the root directory and the hypothesis profile.
        self.config = None
        #: Node ids of the collected tests, in the order a serial run makes them.
        self.test_order = []
        #: xdist workers that went down without sending their records.
        self.lost_workers = []
        #: Whether checks made through the fixture fail on hazards (``--gradcheck-strict``),
        #: unless a call says ``strict=`` itself.
        self.strict = False

    def merge(self, rows, detections):
        """Add the records of another recorder (an xdist worker's)."""
        self.rows.extend(rows)
        self.detections.extend(detections)

    def in_test_order(self, records):
        """``records`` sorted by their test's place in :attr:`test_order`, stably.

        A test runs in a single process, so its own records keep the order it
        made them; records of tests not collected come last, as they came.
        """
        place = {nodeid: i for i, nodeid in enumerate(self.test_order)}
        return sorted(records, key=lambda record: place.get(record.get("test"), len(place)))

    def record_detection(self, *, case, family, kind, oracle, result):
        """Record the verdict of ``result`` on a catalog ``case`` of ``kind`` "bug", "correct"
        or "hazard" (right gradients, a write into the caller's data: passed with a hazard).

        Returns
        -------
        bool
            Whether the verdict is the expected one (a bug failed, a correct layer passed).
        """
        if kind not in ("bug", "correct", "hazard"):
            raise ValueError(f"`kind` must be 'bug', 'correct' or 'hazard', got {kind!r}")
        if kind == "hazard":     # right gradients, a write into the caller's data
            expected = result.passed and bool(result.hazards)
        else:
            expected = result.passed == (kind == "correct")
        first = next(iter(result.failures()), None)
        self.detections.append(_plain_row({
            "test": self.current_test,
            "case": case, "family": family, "kind": kind, "oracle": oracle,
            "expected_verdict": EXPECTED_VERDICTS[kind],
            "passed_check": result.passed, "as_expected": expected,
            "diagnosis": "; ".join(result.problems + result.hazards) or (
                "; ".join(first.diagnosis) if first is not None else ""),
        }))
        return expected

    def __call__(self, layer, x, *, config=None, **options):
        """Check ``layer`` at ``x`` like :func:`gradcheck.check_layer`, record, raise if wrong.

        Parameters
        ----------
        layer, x, **options
            As for :func:`gradcheck.check_layer`.
        config : dict, optional
            The case's configuration (sizes, settings, seed), with str keys,
            stored as JSON in the report's ``config`` column (NumPy scalars as
            the numbers and bools they hold) and spread out in its
            ``config.<key>`` columns.

        Returns
        -------
        CheckResult

        Raises
        ------
        TypeError
            When ``config`` is not a dict with str keys (before the check runs).
        """
        _checked_config(config)
        return self.record(check_layer(layer, x, **self._defaults(options)), config)

    def function(self, forward, backward, *args, config=None, **options):
        """Check a function pair like :func:`gradcheck.check_function`, record, raise if wrong.

        Returns
        -------
        CheckResult
        """
        _checked_config(config)
        return self.record(check_function(forward, backward, *args, **self._defaults(options)),
                           config)

    def value_and_grad(self, fn, *args, config=None, **options):
        """Check ``fn`` like :func:`gradcheck.check_value_and_grad`, record, raise if wrong.

        Returns
        -------
        CheckResult
        """
        _checked_config(config)
        return self.record(check_value_and_grad(fn, *args, **self._defaults(options)), config)

    def _defaults(self, options):
        return {"strict": self.strict, **options}

    def record(self, result, config=None):
        """Keep the rows of ``result`` (with ``config`` as JSON); raise if it failed.

        Returns
        -------
        CheckResult
            ``result``, when it passed.

        Raises
        ------
        GradientCheckError
            With the result's message and the command that reruns the test.
        TypeError
            When ``config`` is not None or a dict with str keys.
        """
        config_json = _checked_config(config)
        command = self.reproduce() if not result.passed else ""
        self.rows.extend(_plain_row({"test": self.current_test, "config": config_json, **row,
                                     "reproduce": "" if row["passed"] else command})
                         for row in result.to_rows())
        if not result.passed:
            raise GradientCheckError(result.message() + self._reproduce_note(command))
        return result

    def reproduce(self):
        """The command that reruns the current test, or "" outside a pytest test."""
        if not self.current_test:
            return ""
        profile = _hypothesis_profile(self.config) if self.config is not None else None
        return reproduce_command(self.current_test, profile)

    def _reproduce_note(self, command):
        if not command:
            return ""
        lines = [""]
        if self.current_is_hypothesis:
            lines.append("a hypothesis test: hypothesis reports the falsifying example and "
                         "@reproduce_failure(...) with this failure (print_blob is on in the "
                         "profiles); add the decorator to the test to replay that example exactly")
        where = f" (from {self.config.rootpath})" if self.config is not None else ""
        lines += [f"rerun this test{where}:", command]
        return "\n".join(lines)


def pytest_addoption(parser):
    group = parser.getgroup("gradcheck")
    group.addoption(
        "--gradcheck-report", metavar="DIR", default=None,
        help="write every gradient check of the session as CSV under DIR "
             "(gradcheck_detailed.csv, gradcheck_summary.csv), print the summary rows "
             "closest to their tolerance, and write summary.md and the plots errors.png "
             "(and bench.png) from the CSVs; needs pandas and matplotlib "
             "(pip install 'gradcheck[report]')",
    )
    group.addoption(
        "--gradcheck-strict", action="store_true", default=False,
        help="checks made through the check_gradients fixture fail on hazards too (a layer "
             "writing into its input, dout or params), as check_layer(..., strict=True)",
    )


def _is_xdist_worker(config):
    return hasattr(config, "workerinput")


class _XdistController:
    """The xdist hooks of the controller: keep the collection order, merge each worker's records."""

    def __init__(self, recorder):
        self.recorder = recorder

    def pytest_xdist_node_collection_finished(self, node, ids):
        # Every worker collects the same tests (xdist checks it); keep the first list.
        if not self.recorder.test_order:
            self.recorder.test_order = list(ids)

    def pytest_testnodedown(self, node, error):
        output = getattr(node, "workeroutput", None) or {}
        if _ROWS_OUTPUT not in output:   # the worker crashed before its sessionfinish
            self.recorder.lost_workers.append(getattr(node.gateway, "id", str(node)))
            return
        self.recorder.merge(output[_ROWS_OUTPUT], output.get(_DETECTIONS_OUTPUT, []))


def _require_report_extra(config):
    """Refuse ``--gradcheck-report`` at the start (not after the tests) when pandas is missing
    or its directory cannot be written (:func:`_prepare_report_dir`)."""
    out_dir = config.getoption("--gradcheck-report", None)
    if out_dir is None or _is_xdist_worker(config):
        return
    if not out_dir.strip():
        raise pytest.UsageError(f"--gradcheck-report {out_dir!r}: an empty path; give the "
                                "directory to write the reports to (e.g. reports)")
    from gradcheck.report import MissingExtraError, import_pandas

    try:
        import_pandas()
    except MissingExtraError as error:
        raise pytest.UsageError(f"--gradcheck-report {out_dir}: {error}") from None
    problem = _prepare_report_dir(out_dir)
    if problem:
        raise pytest.UsageError(f"--gradcheck-report {out_dir}: {problem}; give a directory "
                                "that exists or can be created, and can be written to")


def _prepare_report_dir(out_dir):
    """Create the directory ``out_dir`` if missing and try writing a file in it.

    Returns
    -------
    str or None
        Why the reports cannot be written there, or None when they can (the
        directory then exists; the trial file is removed).
    """
    import tempfile
    from pathlib import Path

    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        return "not a directory (a file is there)"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"the directory cannot be created ({error.strerror or error})"
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        return f"the directory cannot be written to ({error.strerror or error})"
    return None


def pytest_configure(config):
    _require_report_extra(config)
    recorder = config.stash[_KEY] = Recorder()
    recorder.config = config
    recorder.strict = bool(config.getoption("--gradcheck-strict", False))
    if config.pluginmanager.hasplugin("xdist") and not _is_xdist_worker(config):
        config.pluginmanager.register(_XdistController(recorder), "gradcheck-xdist-controller")


def pytest_collection_finish(session):
    recorder = session.config.stash[_KEY]
    if session.items:
        recorder.test_order = [item.nodeid for item in session.items]


def pytest_runtest_setup(item):
    recorder = item.config.stash[_KEY]
    recorder.current_test = item.nodeid
    recorder.current_is_hypothesis = bool(getattr(getattr(item, "obj", None),
                                                  "is_hypothesis_test", False))


def pytest_sessionfinish(session):
    config = session.config
    if _is_xdist_worker(config):
        recorder = config.stash[_KEY]
        config.workeroutput[_ROWS_OUTPUT] = recorder.rows
        config.workeroutput[_DETECTIONS_OUTPUT] = recorder.detections


@pytest.fixture(scope="session")
def check_gradients(pytestconfig):
    """A callable ``check_gradients(layer, x, *, config=None, **options)``: a :class:`Recorder`."""
    return pytestconfig.stash[_KEY]


@pytest.fixture(scope="session")
def gradcheck_recorder(pytestconfig):
    """The session's :class:`Recorder`, for :meth:`Recorder.record_detection`."""
    return pytestconfig.stash[_KEY]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    out_dir = config.getoption("--gradcheck-report")   # checked at configure: None or usable
    recorder = config.stash.get(_KEY, None)
    if recorder is None or _is_xdist_worker(config):
        return
    if recorder.lost_workers:
        terminalreporter.write_line(
            f"gradcheck: worker(s) {', '.join(recorder.lost_workers)} went down without sending "
            "their records; the report below lacks their checks", red=True)
    # Under xdist the workers' records arrive in the order the workers finish.
    rows = recorder.in_test_order(recorder.rows)
    detections = recorder.in_test_order(recorder.detections)
    if detections:
        from gradcheck.report import detection_rates, write_detection

        terminalreporter.section("gradcheck detection power")
        for line in detection_rates(detections):
            terminalreporter.write_line(line)
        if out_dir:
            terminalreporter.write_line(f"written: {write_detection(detections, out_dir)}")
    if not out_dir:
        return
    if not rows:
        terminalreporter.write_line(f"gradcheck: no gradient checks ran; no gradient CSV "
                                    f"written to {out_dir}")
    else:
        from gradcheck.report import (
            SUMMARY_ROWS, anonymous_merges, format_summary, write_reports,
        )

        summary, paths = write_reports(rows, out_dir)
        shown = (f"{SUMMARY_ROWS} of {len(summary)} rows" if len(summary) > SUMMARY_ROWS
                 else f"all {len(summary)} rows")
        terminalreporter.section(f"gradcheck summary: closest to the tolerance first ({shown})")
        terminalreporter.write_line(format_summary(summary, SUMMARY_ROWS, full_table=paths[1]))
        terminalreporter.write_line("")
        failed = int((~summary["passed"]).sum())
        terminalreporter.write_line(
            f"{len(rows)} comparisons in {len(summary)} rows (layer × gradient × oracle), "
            f"{failed} row(s) failed; written: {paths[0]}, {paths[1]}"
        )
        for line in anonymous_merges((row["layer"], row["test"]) for row in rows):
            terminalreporter.write_line(f"gradcheck: note: {line}", yellow=True)
    if rows or detections:
        # summary.md and the plots, from the CSVs just written (as `gradcheck report` does).
        from gradcheck.report import write_readable_report

        written = write_readable_report(out_dir)
        terminalreporter.write_line(f"written: {', '.join(map(str, written))}")
