"""pytest plugin: the ``check_gradients`` fixture and the ``--gradcheck-report`` option.

Registered through the ``pytest11`` entry point, so it is active wherever
gradcheck is installed::

    def test_my_layer(check_gradients):
        check_gradients(MyLayer(...), x, config={"width": 3})

``check_gradients`` runs :func:`gradcheck.check_layer`, records every
comparison of the session, and raises :class:`gradcheck.GradientCheckError`
when one fails. With ``pytest --gradcheck-report DIR`` the records are written
as CSV under DIR at the end of the session and the summary table is printed.
"""

from __future__ import annotations

import json

import pytest

from gradcheck.checker import check_layer

__all__ = ["Recorder"]

_KEY = pytest.StashKey()


class Recorder:
    """Run gradient checks and keep one row per case × tensor × oracle.

    Also keeps the verdicts of a detection suite (:meth:`record_detection`):
    layers with known bugs that must fail and correct ones that must pass.
    """

    def __init__(self):
        self.rows = []
        self.detections = []
        self.current_test = ""

    def record_detection(self, *, case, family, kind, oracle, result):
        """Record the verdict of ``result`` on a catalog ``case`` of ``kind`` "bug" or "correct".

        Returns
        -------
        bool
            Whether the verdict is the expected one (a bug failed, a correct layer passed).
        """
        if kind not in ("bug", "correct"):
            raise ValueError(f"`kind` must be 'bug' or 'correct', got {kind!r}")
        expected = result.passed == (kind == "correct")
        first = next(iter(result.failures()), None)
        self.detections.append({
            "case": case, "family": family, "kind": kind, "oracle": oracle,
            "passed_check": result.passed, "expected": expected,
            "diagnosis": "; ".join(result.problems) or (
                "; ".join(first.diagnosis) if first is not None else ""),
        })
        return expected

    def __call__(self, layer, x, *, config=None, **options):
        """Check ``layer`` at ``x`` like :func:`gradcheck.check_layer`, record, raise if wrong.

        Parameters
        ----------
        layer, x, **options
            As for :func:`gradcheck.check_layer`.
        config : dict, optional
            The case's configuration (sizes, settings, seed), stored as JSON in
            the report's ``config`` column.

        Returns
        -------
        CheckResult
        """
        result = check_layer(layer, x, **options)
        config_json = json.dumps(config or {}, sort_keys=True, default=str)
        self.rows.extend({"test": self.current_test, "config": config_json, **row}
                         for row in result.to_rows())
        return result.raise_if_failed()


def pytest_addoption(parser):
    group = parser.getgroup("gradcheck")
    group.addoption(
        "--gradcheck-report", metavar="DIR", default=None,
        help="write every gradient check of the session as CSV under DIR "
             "(gradcheck_detailed.csv, gradcheck_summary.csv) and print the summary",
    )


def pytest_configure(config):
    config.stash[_KEY] = Recorder()


def pytest_runtest_setup(item):
    item.config.stash[_KEY].current_test = item.nodeid


@pytest.fixture(scope="session")
def check_gradients(pytestconfig):
    """A callable ``check_gradients(layer, x, *, config=None, **options)``: see :class:`Recorder`."""
    return pytestconfig.stash[_KEY]


@pytest.fixture(scope="session")
def gradcheck_recorder(pytestconfig):
    """The session's :class:`Recorder`, for :meth:`Recorder.record_detection`."""
    return pytestconfig.stash[_KEY]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    out_dir = config.getoption("--gradcheck-report")
    recorder = config.stash.get(_KEY, None)
    if recorder is None:
        return
    if recorder.detections:
        from gradcheck.report import detection_rates, write_detection

        terminalreporter.section("gradcheck detection power")
        for line in detection_rates(recorder.detections):
            terminalreporter.write_line(line)
        if out_dir:
            terminalreporter.write_line(f"written: {write_detection(recorder.detections, out_dir)}")
    if not out_dir:
        return
    if not recorder.rows:
        terminalreporter.write_line(f"gradcheck: no gradient checks ran; nothing written to {out_dir}")
        return
    from gradcheck.report import format_summary, write_reports

    summary, paths = write_reports(recorder.rows, out_dir)
    terminalreporter.section("gradcheck summary: worst relative error per layer, gradient, oracle")
    terminalreporter.write_line(format_summary(summary))
    terminalreporter.write_line("")
    failed = int((~summary["passed"]).sum())
    terminalreporter.write_line(
        f"{len(recorder.rows)} comparisons in {len(summary)} rows, {failed} row(s) failed; "
        f"written: {paths[0]}, {paths[1]}"
    )
