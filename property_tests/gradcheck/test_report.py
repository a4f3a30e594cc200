"""The report tables and the pytest plugin that writes them."""

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

import gradcheck
import gradcheck.report as report_module
from gradcheck.pytest_plugin import Recorder
from gradcheck.report import (
    DETAILED_COLUMNS, DETAILED_CSV, DETECTION_CSV, SUMMARY_COLUMNS, SUMMARY_CSV, format_summary,
    write_reports,
)
from reference_impls import Dense


def _rows():
    rng = np.random.default_rng(0)
    rows = []
    for seed, factor in [(0, 1.0), (1, 1.0), (2, 2.0)]:   # the last case has dW doubled
        layer = Dense(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
        result = gradcheck.check_layer(layer, rng.normal(size=(2, 4)), seed=seed)
        for row in result.to_rows():
            if row["gradient"] == "dW" and factor != 1.0:
                row.update(max_rel_error=0.5, passed=False, mismatched=6)
            config = {"case": seed, "sizes": [3, 2]}
            if factor != 1.0:
                config.update(note="doubled", scale=factor, extra=None)
            rows.append({"test": "t", "config": json.dumps(config, sort_keys=True), **row})
    return rows


def test_summary_has_the_worst_error_per_layer_gradient_and_oracle(tmp_path):
    rows = _rows()
    summary, paths = write_reports(rows, tmp_path / "out")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert sorted(summary["gradient"]) == ["dA_prev", "dW", "db"]
    by_gradient = summary.set_index("gradient")
    assert (by_gradient["cases"] == 3).all()
    assert by_gradient.loc["dW", "max_rel_error"] == 0.5
    assert by_gradient.loc["dW", "failed_cases"] == 1 and not by_gradient.loc["dW", "passed"]
    expected_db = max(r["max_rel_error"] for r in rows if r["gradient"] == "db")
    assert by_gradient.loc["db", "max_rel_error"] == expected_db
    assert by_gradient.loc["db", "passed"]
    assert "NO" in format_summary(summary)


def test_csvs_read_back_with_their_columns_and_dtypes(tmp_path):
    write_reports(_rows(), tmp_path)
    detailed = pd.read_csv(tmp_path / DETAILED_CSV)
    summary = pd.read_csv(tmp_path / SUMMARY_CSV)
    # The fixed columns, with one config.<key> column per key (the union, sorted) after config.
    spread = ["config.case", "config.extra", "config.note", "config.scale", "config.sizes"]
    at = DETAILED_COLUMNS.index("config") + 1
    assert list(detailed.columns) == DETAILED_COLUMNS[:at] + spread + DETAILED_COLUMNS[at:]
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(detailed) == 9 and len(summary) == 3
    assert detailed["max_rel_error"].dtype == np.float64
    assert detailed["passed"].dtype == bool and summary["passed"].dtype == bool
    assert detailed["size"].dtype == np.int64 and summary["cases"].dtype == np.int64
    for column in ("seed", "mismatched", "excluded", "nondifferentiable", "forward_calls"):
        assert detailed[column].dtype == np.int64, column
    for column in ("max_abs_error", "tolerance"):
        assert detailed[column].dtype == np.float64, column
    # Scalars as they are (an int stays an int), non-scalars and None as JSON, gaps empty.
    assert detailed["config.case"].dtype == np.int64
    assert list(detailed["config.case"]) == [0] * 3 + [1] * 3 + [2] * 3
    assert set(detailed["config.sizes"]) == {"[3, 2]"}
    last = detailed["config.case"] == 2
    assert set(detailed.loc[last, "config.note"]) == {"doubled"}
    assert set(detailed.loc[last, "config.scale"]) == {2.0}
    assert detailed.loc[~last, ["config.note", "config.scale", "config.extra"]].isna().all().all()
    # None is written as JSON null (which pandas reads as NaN unless told otherwise).
    raw = pd.read_csv(tmp_path / DETAILED_CSV, keep_default_na=False)
    assert list(raw.loc[raw["config.case"] == 2, "config.extra"]) == ["null"] * 3
    assert set(raw.loc[raw["config.case"] != 2, "config.extra"]) == {""}
    # The JSON column is still there, whole.
    assert json.loads(detailed.loc[0, "config"]) == {"case": 0, "sizes": [3, 2]}


DOUBLED_LAYER = """
import numpy as np
import pytest
from reference_impls import Dense


class Doubled(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = 2 * self.grads["W"]
        return dx
"""

INNER_TEST = DOUBLED_LAYER + """

@pytest.mark.parametrize("cls", [Dense, Doubled])
def test_layer(check_gradients, cls):
    rng = np.random.default_rng(0)
    layer = cls(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
    check_gradients(layer, rng.normal(size=(2, 4)), config={"cls": cls.__name__})
"""


def test_the_plugin_records_every_check_and_writes_the_report(pytester):
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_subprocess("--gradcheck-report", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*dW (tensor 'W', shape (3, 2)) vs complex_step: 6 / 6 entries (100.0%)*",
        "*worst at index*analytic = *numeric = *",
        "*gradcheck summary*",
        "*6 comparisons in 6 rows (layer × gradient × oracle), 1 row(s) failed*",
    ])
    detailed = pd.read_csv(pytester.path / "out" / DETAILED_CSV)
    assert len(detailed) == 6
    assert set(detailed["test"]) == {"test_inner.py::test_layer[Dense]",
                                     "test_inner.py::test_layer[Doubled]"}
    failed = detailed[~detailed["passed"]]
    assert list(failed["gradient"]) == ["dW"] and list(failed["config"]) == ['{"cls": "Doubled"}']


FUNCTION_TEST = """
import numpy as np


def scale_forward(x, w):
    return x * w, (x, w)


def scale_backward(dout, cache):
    x, w = cache
    return dout * w, np.sum(dout * x)


def scale_backward_no_sum(dout, cache):
    x, w = cache
    return dout * w, dout * x            # dw not summed over the entries w touched


def half_square(v):
    return 0.5 * np.sum(v ** 2), v


def test_pair(check_gradients):
    rng = np.random.default_rng(0)
    check_gradients.function(scale_forward, scale_backward, rng.normal(size=(2, 3)),
                             np.array(0.5), config={"style": "pair"})


def test_pair_broken(check_gradients):
    rng = np.random.default_rng(0)
    check_gradients.function(scale_forward, scale_backward_no_sum, rng.normal(size=(2, 3)),
                             np.array(0.5))


def test_loss(check_gradients):
    check_gradients.value_and_grad(half_square, np.arange(3.0))
"""


def test_the_plugin_records_function_pairs_and_value_and_grad_checks(pytester):
    pytester.makepyfile(test_inner=FUNCTION_TEST)
    result = pytester.runpytest_subprocess("--gradcheck-report", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*dw (tensor 'w', shape ()) vs complex_step: a gradient "
                                 "of the wrong shape*"])
    detailed = pd.read_csv(pytester.path / "out" / DETAILED_CSV)
    assert list(detailed["layer"]) == ["scale_forward"] * 4 + ["half_square"]
    assert list(detailed["gradient"]) == ["dx", "dw", "dx", "dw", "dv"]
    assert list(detailed["passed"]) == [True, True, True, False, True]
    assert detailed["config"].iloc[0] == '{"style": "pair"}'


HAZARD_TEST = """
import numpy as np
from reference_impls import ReLU


class InPlaceReLU(ReLU):
    def forward(self, x):
        np.maximum(x, 0.0, out=x)            # writes into the caller's array
        return super().forward(x)


def test_in_place(check_gradients):
    check_gradients(InPlaceReLU(), np.random.default_rng(0).normal(size=(3, 4)))


def test_in_place_not_strict_here(check_gradients):
    check_gradients(InPlaceReLU(), np.random.default_rng(0).normal(size=(3, 4)), strict=False)
"""


@pytest.mark.parametrize("strict, outcomes", [(False, dict(passed=2)),
                                              (True, dict(passed=1, failed=1))])
def test_gradcheck_strict_makes_the_fixtures_checks_fail_on_hazards(pytester, strict, outcomes):
    pytester.makepyfile(test_inner=HAZARD_TEST)
    args = ["-p", "no:cacheprovider", "-W", "ignore::gradcheck.HazardWarning"]
    result = pytester.runpytest_subprocess(*args, *(["--gradcheck-strict"] if strict else []))
    result.assert_outcomes(**outcomes)
    if strict:
        result.stdout.fnmatch_lines(["*1 hazard(s) (strict)*",
                                     "*hazard: layer.forward modified its input x*"])


def test_hazard_cases_are_expected_to_pass_with_a_hazard():
    recorder = Recorder()
    layer_passes = gradcheck.check_layer(Dense(np.ones((2, 2)), np.zeros((2, 1))), np.ones((2, 3)))
    assert not recorder.record_detection(case="c", family="f", kind="hazard", oracle="o",
                                         result=layer_passes)     # passed, but no hazard
    lines = report_module.detection_rates(recorder.detections)
    assert "hazards passed and reported 0 / 1" in lines[0]
    assert "unexpected verdicts: c" in lines[1]


def test_each_detection_row_says_the_verdict_its_kind_expects():
    recorder = Recorder()
    layer_passes = gradcheck.check_layer(Dense(np.ones((2, 2)), np.zeros((2, 1))), np.ones((2, 3)))
    verdicts = [recorder.record_detection(case=kind, family="f", kind=kind, oracle="o",
                                          result=layer_passes)
                for kind in ("bug", "correct", "hazard")]
    assert verdicts == [False, True, False]
    assert [(row["expected_verdict"], row["passed_check"], row["as_expected"])
            for row in recorder.detections] == [("fail", True, False), ("pass", True, True),
                                                ("pass, hazard reported", True, False)]


def test_the_plugin_writes_nothing_without_the_option(pytester):
    pytester.makepyfile(test_inner=INNER_TEST)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    assert not (pytester.path / "out").exists()


def test_recorded_rows_and_detections_are_plain_python_for_json():
    recorder = Recorder()
    rng = np.random.default_rng(0)
    layer = Dense(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
    result = recorder(layer, rng.normal(size=(2, 4)), config={"n": np.int64(3)})
    recorder.record_detection(case="dense", family="dense", kind="correct", oracle="auto",
                              result=result)
    assert json.loads(json.dumps(recorder.rows)) == recorder.rows
    assert json.loads(json.dumps(recorder.detections)) == recorder.detections
    assert recorder.detections[0]["passed_check"] is True


PARALLEL_INNER_TEST = """
from pathlib import Path

import numpy as np
import pytest

import gradcheck
import gradcheck.report as report_module
from reference_impls import Dense


class Doubled(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = 2 * self.grads["W"]
        return dx


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("cls", [Dense, Doubled])
def test_layer(check_gradients, gradcheck_recorder, request, cls, seed):
    # Which process ran the test, for the outer test to see that both workers did.
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    Path(f"ran_on_{worker}_{cls.__name__}{seed}").touch()
    rng = np.random.default_rng(seed)
    for m in (1, 3):
        layer = cls(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
        x = rng.normal(size=(2, m))
        if cls is Dense:
            check_gradients(layer, x, config={"m": m, "seed": seed})
        else:
            with pytest.raises(gradcheck.GradientCheckError):
                check_gradients(layer, x, config={"m": m, "seed": seed})
    gradcheck_recorder.record_detection(
        case=f"{cls.__name__}{seed}", family="dense", kind="correct" if cls is Dense else "bug",
        oracle="auto", result=gradcheck.check_layer(layer, x))
"""


def _run(pytester, out, *args):
    return pytester.runpytest_subprocess("--gradcheck-report", out, "-p", "no:cacheprovider", *args)


def test_a_parallel_run_writes_the_same_report_as_a_serial_one(pytester, monkeypatch):
    for name in [name for name in os.environ if name.startswith("PYTEST_XDIST_")]:
        monkeypatch.delenv(name)   # when this suite itself runs under xdist
    pytester.makepyfile(test_inner=PARALLEL_INNER_TEST)
    # Serial without xdist loaded at all: the plugin must not need it.
    serial = _run(pytester, "serial", "-p", "no:xdist")
    serial.assert_outcomes(passed=8)
    assert {path.name.split("_")[2] for path in pytester.path.glob("ran_on_*")} == {"main"}
    for path in pytester.path.glob("ran_on_*"):
        path.unlink()

    parallel = _run(pytester, "parallel", "-n", "2")
    parallel.assert_outcomes(passed=8)
    # Both workers ran tests, so the report merges two recorders.
    assert {path.name.split("_")[2] for path in pytester.path.glob("ran_on_*")} == {"gw0", "gw1"}
    for result in (serial, parallel):
        result.stdout.fnmatch_lines([
            "*gradcheck detection power*",
            "auto: bugs caught 4 / 4 (100.0%), false alarms 0 / 4 (0.0%)",
            "*gradcheck summary*",
            "48 comparisons in 6 rows (layer × gradient × oracle), 1 row(s) failed; written: *",
        ])
    for name in (DETAILED_CSV, SUMMARY_CSV, DETECTION_CSV):
        serial_csv = (pytester.path / "serial" / name).read_bytes()
        assert serial_csv == (pytester.path / "parallel" / name).read_bytes(), name
    detailed = pd.read_csv(pytester.path / "parallel" / DETAILED_CSV)
    assert len(detailed) == 48 and detailed["test"].nunique() == 8
    assert (~detailed["passed"]).sum() == 8   # dW of Doubled, by each of its 8 checks


def test_the_controller_merges_each_worker_in_test_order_and_names_lost_workers():
    from types import SimpleNamespace

    from gradcheck.pytest_plugin import _XdistController

    recorder = Recorder()
    controller = _XdistController(recorder)
    controller.pytest_xdist_node_collection_finished(node=None, ids=["t::a", "t::b", "t::c"])
    finished = SimpleNamespace(gateway=SimpleNamespace(id="gw1"), workeroutput={
        "gradcheck_rows": [{"test": "t::c", "n": 1}, {"test": "t::a", "n": 2},
                           {"test": "t::c", "n": 3}],
        "gradcheck_detections": [{"test": "t::b", "case": "x"}]})
    crashed = SimpleNamespace(gateway=SimpleNamespace(id="gw0"))   # no workeroutput
    controller.pytest_testnodedown(node=finished, error=None)
    controller.pytest_testnodedown(node=crashed, error="crashed")
    assert [row["n"] for row in recorder.in_test_order(recorder.rows)] == [2, 1, 3]
    assert recorder.detections == [{"test": "t::b", "case": "x"}]
    assert recorder.lost_workers == ["gw0"]


REPRODUCE_INNER_TEST = DOUBLED_LAYER + """
from hypothesis import given, strategies as st


@pytest.mark.parametrize("cls", [Dense, Doubled])
def test_plain(check_gradients, cls):
    rng = np.random.default_rng(0)
    layer = cls(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
    check_gradients(layer, rng.normal(size=(2, 4)))


@given(m=st.integers(1, 3))
def test_drawn(check_gradients, m):
    rng = np.random.default_rng(m)
    layer = Doubled(rng.normal(size=(3, 2)), rng.normal(size=(3, 1)))
    check_gradients(layer, rng.normal(size=(2, m)), config={"m": m})
"""


def test_a_failure_ends_with_the_command_that_reruns_the_test(pytester):
    pytester.makeconftest("""
from hypothesis import settings
settings.register_profile("mine", derandomize=True, max_examples=5, deadline=None,
                          print_blob=True)
""")
    pytester.makepyfile(test_inner=REPRODUCE_INNER_TEST)
    result = pytester.runpytest_subprocess("--gradcheck-report", "out", "-p", "no:cacheprovider",
                                           "--hypothesis-profile=mine")
    result.assert_outcomes(passed=1, failed=2)
    plain = "python -m pytest 'test_inner.py::test_plain[Doubled]' --hypothesis-profile=mine " \
            "-p no:cacheprovider"
    drawn = "python -m pytest 'test_inner.py::test_drawn' --hypothesis-profile=mine " \
            "-p no:cacheprovider"
    output = result.stdout.str()
    lines = output.splitlines()
    # Each failure message ends with the command, on the line after this one.
    commands = [lines[i + 1].removeprefix("E").strip() for i, line in enumerate(lines)
                if line.removeprefix("E").strip() == f"rerun this test (from {pytester.path}):"]
    # Under CI=true pytest repeats full messages in its short summary: count each once.
    assert list(dict.fromkeys(commands)) == [plain, drawn]
    assert output.count("a hypothesis test: hypothesis reports the falsifying example") >= 1
    assert "@reproduce_failure" in output
    detailed = pd.read_csv(pytester.path / "out" / DETAILED_CSV, keep_default_na=False)
    at = DETAILED_COLUMNS.index("config") + 1
    assert list(detailed.columns) == DETAILED_COLUMNS[:at] + ["config.m"] + DETAILED_COLUMNS[at:]
    failed, passed = detailed[~detailed["passed"]], detailed[detailed["passed"]]
    assert set(failed.loc[failed["test"].str.contains("plain"), "reproduce"]) == {plain}
    assert set(failed.loc[failed["test"].str.contains("drawn"), "reproduce"]) == {drawn}
    assert (passed["reproduce"] == "").all()
    # Rerunning the command reproduces the failure.
    rerun = pytester.run(sys.executable, *plain.split()[1:3], "test_inner.py::test_plain[Doubled]",
                         "--hypothesis-profile=mine", "-p", "no:cacheprovider")
    assert rerun.ret == 1 and "1 failed" in rerun.stdout.str()


def test_the_summary_names_the_speed_ups_on_user_style_layers():
    from gradcheck.report import bench_goal_lines

    rows = pd.DataFrame([
        {"case": "user_conv", "method": "ours_full", "seconds": 0.5},
        {"case": "user_conv", "method": "torch_slow", "seconds": 50.0},
        {"case": "user_lstm", "method": "ours_full", "seconds": 0.2},
        {"case": "user_lstm", "method": "torch_slow", "seconds": None},   # not measured
        {"case": "conv", "method": "ours_full", "seconds": 0.1},
    ])
    (line,) = [x for x in bench_goal_lines(None, rows) if "user-style" in x]
    assert line.endswith("times faster: conv 100.0× (goals in bench_users.md)")


RUN_MARK_TEST = """
from pathlib import Path


def test_runs():
    Path("ran").touch()
"""


def _a_file(root):
    (root / "afile").write_text("not a directory")
    return "afile", "not a directory (a file is there)"


def _under_a_file(root):
    (root / "afile").write_text("not a directory")
    return "afile/reports", "the directory cannot be created (Not a directory)"


def _empty_path(root):
    return "", "an empty path"


@pytest.mark.parametrize("bad", [_a_file, _under_a_file, _empty_path],
                         ids=lambda bad: bad.__name__.strip("_"))
def test_the_plugin_refuses_a_report_dir_it_cannot_write_before_any_test(pytester, bad):
    out, problem = bad(pytester.path)
    pytester.makepyfile(test_inner=RUN_MARK_TEST)
    result = pytester.runpytest_subprocess("--gradcheck-report", out, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"--gradcheck-report {out or repr(out)}: {problem}" in err, err
    assert "Traceback" not in err, err
    assert not (pytester.path / "ran").exists()


def test_the_plugin_creates_a_missing_report_dir_at_the_start_and_leaves_nothing_else(pytester):
    pytester.makepyfile(test_inner="""
from pathlib import Path


def test_sees_the_folder():
    assert Path("deep", "reports").is_dir()
    assert list(Path("deep", "reports").iterdir()) == []   # no trial file left behind
""")
    result = pytester.runpytest_subprocess("--gradcheck-report", "deep/reports",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert list((pytester.path / "deep" / "reports").iterdir()) == []


def test_a_report_dir_that_cannot_be_written_to_is_named_with_the_reason(tmp_path, monkeypatch):
    # In-process: a read-only directory does not stop root (CI runs as root), so the
    # trial write is made to fail as it does for another user.
    import tempfile

    from gradcheck import pytest_plugin

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert pytest_plugin._prepare_report_dir(tmp_path / "locked") == (
        "the directory cannot be written to (Permission denied)")
    monkeypatch.undo()
    assert pytest_plugin._prepare_report_dir(tmp_path / "other") is None
    assert (tmp_path / "other").is_dir() and not any((tmp_path / "other").iterdir())
