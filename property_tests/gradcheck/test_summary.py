"""summary.md and the plots, written from the CSVs of a reports folder."""

import pandas as pd
import pytest

from gradcheck.cli import EXIT_USAGE, main
from gradcheck.report import (
    BENCH_PNG, ERRORS_PNG, SUMMARY_MD, NoReportError, write_detection, write_readable_report,
    write_reports,
)
from property_tests.gradcheck.test_report import INNER_TEST

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(test, layer, oracle, error, tolerance, tensor="x", gradient="dZ", seed=0):
    return {"test": test, "layer": layer, "config": '{"n": 1}', "seed": seed, "tensor": tensor,
            "gradient": gradient, "oracle": oracle, "shape": "2x3", "size": 6,
            "max_rel_error": error, "max_abs_error": error, "tolerance": tolerance,
            "mismatched": int(error > tolerance), "excluded": 0, "nondifferentiable": 0, "tied": 0,
            "method": "full", "passed": error <= tolerance, "forward_calls": 10,
            "self_checks": ""}


def _rows():
    rows = []
    for seed in range(3):
        # Against finite differences, Near comes within 2x of its tolerance, Far and Zero don't.
        rows += [_row("t::near", "Near", "finite_differences", 5e-7 * (seed + 1) / 3, 1e-6,
                      seed=seed),
                 _row("t::far", "Far", "finite_differences", 1e-12, 1e-6, seed=seed),
                 _row("t::zero", "Zero", "finite_differences", 0.0, 1e-6, seed=seed),
                 # Against torch, Far is the closest, and fails once.
                 _row("t::near", "Near", "torch", 1e-15, 1e-10, seed=seed),
                 _row("t::far", "Far", "torch", 3e-10 if seed == 2 else 1e-12, 1e-10,
                      tensor="W", gradient="dW", seed=seed)]
    return rows


DETECTIONS = [
    {"case": "dense_db", "family": "dense", "kind": "bug", "oracle": "auto",
     "expected_verdict": "fail", "passed_check": False, "as_expected": True,
     "diagnosis": "a constant factor"},
    {"case": "relu", "family": "activation", "kind": "correct", "oracle": "auto",
     "expected_verdict": "pass", "passed_check": True, "as_expected": True, "diagnosis": ""},
]


def _folder(tmp_path, bench=False):
    write_reports(_rows(), tmp_path)
    write_detection(DETECTIONS, tmp_path)
    if bench:
        pd.DataFrame({"layer": ["conv2d", "conv2d", "max_pool2d"],
                      "shape": ["m=1 C=1->2 8x8", "m=4 C=3->8 16x16", "m=1 C=1 8x8"],
                      "ours_ms": [1.0, 3.0, 1.0], "torch_ms": [2.0, 1.0, 1.0],
                      "torch_threads": [1, 1, 1], "time_ratio": [0.5, 3.0, 1.0]}
                     ).to_csv(tmp_path / "bench_layers.csv", index=False)
    return tmp_path


def _table(markdown, oracle):
    """The data rows (lists of cells) of the table under ``### oracle``."""
    section = markdown.split(f"### {oracle}\n", 1)[1].strip().split("\n\n", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines()[2:]]


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 10_000, (path, len(data))


def test_summary_md_puts_the_layer_closest_to_its_tolerance_first(tmp_path):
    written = write_readable_report(_folder(tmp_path))
    assert [path.name for path in written] == [SUMMARY_MD, ERRORS_PNG]
    markdown = (tmp_path / SUMMARY_MD).read_text()
    assert "**Checks run: 15**" in markdown and "**Failed rows: 1** of 15" in markdown
    fd = _table(markdown, "finite_differences")
    assert [row[0] for row in fd] == ["Near", "Far", "Zero"]
    assert fd[0][2:5] == ["5.00e-07", "1e-06", "5.00e-01"]   # worst error, tolerance, ratio
    torch = _table(markdown, "torch")
    assert [row[0] for row in torch] == ["Far", "Near"]
    assert torch[0][1] == "dW" and torch[0][4] == "3.00e+00" and torch[0][6] == "1"
    assert "auto: bugs caught 1 / 1 (100.0%), false alarms 0 / 1 (0.0%)" in markdown
    assert "Benchmark goals" not in markdown and not (tmp_path / BENCH_PNG).exists()
    _assert_png(tmp_path / ERRORS_PNG)


def test_bench_csv_adds_the_goal_lines_and_bench_png(tmp_path):
    written = write_readable_report(_folder(tmp_path, bench=True))
    assert [path.name for path in written] == [SUMMARY_MD, ERRORS_PNG, BENCH_PNG]
    markdown = (tmp_path / SUMMARY_MD).read_text()
    assert ("conv2d: geometric-mean time ratio ours / torch 1.22 (goal ≤ 1), worst 3.00 "
            "(goal ≤ 2): **goal not met**") in markdown
    assert "max_pool2d: geometric-mean time ratio ours / torch 1.00" in markdown
    _assert_png(tmp_path / BENCH_PNG)


def test_an_empty_folder_is_refused(tmp_path, capsys):
    with pytest.raises(NoReportError):
        write_readable_report(tmp_path)
    assert main(["report", "--dir", str(tmp_path)]) == EXIT_USAGE
    assert "no gradcheck CSV" in capsys.readouterr().err
    assert not (tmp_path / SUMMARY_MD).exists()




def test_the_plugin_writes_summary_md_and_the_cli_rebuilds_it_the_same(pytester, capsys):
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_subprocess("--gradcheck-report", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["written: *summary.md, *errors.png"])
    out = pytester.path / "out"
    from_plugin = (out / SUMMARY_MD).read_text()
    assert "**Failed rows: 1** of 6" in from_plugin
    assert _table(from_plugin, "complex_step")[0][:2] == ["Doubled", "dW"]
    _assert_png(out / ERRORS_PNG)
    (out / SUMMARY_MD).unlink()
    (out / ERRORS_PNG).unlink()
    assert main(["report", "--dir", str(out)]) == 0
    assert "summary.md" in capsys.readouterr().out
    assert (out / SUMMARY_MD).read_text() == from_plugin
    _assert_png(out / ERRORS_PNG)


def test_summary_md_gives_the_right_verdicts_per_family(tmp_path):
    folder = _folder(tmp_path)
    pd.DataFrame(DETECTIONS + [
        {"case": "inplace", "family": "activation", "kind": "hazard", "oracle": "auto",
         "expected_verdict": "pass, hazard reported", "passed_check": True, "as_expected": True,
         "diagnosis": "hazard"},
        {"case": "missed", "family": "dense", "kind": "bug", "oracle": "auto",
         "expected_verdict": "fail", "passed_check": True, "as_expected": False,
         "diagnosis": ""},
    ]).to_csv(folder / "detection.csv", index=False)
    write_readable_report(folder)
    text = (folder / SUMMARY_MD).read_text(encoding="utf-8")
    assert "| family | oracle | bugs | correct | hazards |" in text
    assert "| activation | auto |  | 1 / 1 | 1 / 1 |" in text
    assert "| dense | auto | 1 / 2 |  |  |" in text


def test_each_panel_of_errors_png_has_its_own_order(tmp_path):
    from gradcheck.report import DETAILED_CSV, panel_orders, read_detailed

    detailed = read_detailed(_folder(tmp_path) / DETAILED_CSV)
    # Against finite differences Near is the closest; against torch Far (which fails) is: one
    # order shared by the panels would put the same layer on top of both.
    assert panel_orders(detailed) == {"finite_differences": ["Near", "Far", "Zero"],
                                      "torch": ["Far", "Near"]}


def _drawn_errors_png(tmp_path, monkeypatch):
    """The figure of errors.png for _folder's CSVs, kept open for inspection."""
    from gradcheck.report import DETAILED_CSV, import_pyplot, plot_errors, read_detailed

    plt = import_pyplot()
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plot_errors(read_detailed(_folder(tmp_path) / DETAILED_CSV), tmp_path / "e.png")
    (figure,) = figures
    figure.canvas.draw()
    return figure


def _top_to_bottom(ax):
    ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels()), key=lambda t: -t[0])
    return [label.get_text() for _, label in ticks]


def test_errors_png_puts_zeros_apart_and_the_tolerance_labels_beside_their_lines(
        tmp_path, monkeypatch):
    figure = _drawn_errors_png(tmp_path, monkeypatch)
    try:
        fd, torch = figure.axes[:2]
        assert [fd.get_title(), torch.get_title()] == ["finite_differences", "torch"]
        assert _top_to_bottom(fd) == ["Near", "Far", "Zero"]
        assert _top_to_bottom(torch) == ["Far", "Near"]
        # Zero's three exact zeros: at a tick "0" left of every other tick, with their count.
        fd_ticks = [(x, label.get_text()) for x, label in zip(fd.get_xticks(),
                                                               fd.get_xticklabels())]
        assert fd_ticks[0][1] == "0" and all(x > fd_ticks[0][0] for x, _ in fd_ticks[1:])
        assert "×3" in [text.get_text() for text in fd.texts]
        # No exact zero against torch: no "0" column there.
        assert "0" not in [label.get_text() for label in torch.get_xticklabels()]
        # Each tolerance label ends left of its line: no line strikes through it.
        renderer = figure.canvas.get_renderer()
        for ax, tolerance in ((fd, 1e-6), (torch, 1e-10)):
            (label,) = [t for t in ax.texts if t.get_text().startswith("tolerance")]
            assert label.get_text() == f"tolerance {tolerance:.0e}"
            line_x = ax.transData.transform((tolerance, 0))[0]
            box = label.get_window_extent(renderer)
            assert box.x1 < line_x and line_x - box.x1 < 10, (box, line_x)
        # The layout leaves room for the y-axis label: it is inside the picture.
        assert type(figure.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
        ylabel = fd.yaxis.label.get_window_extent(renderer)
        assert fd.yaxis.label.get_text().startswith("layer")
        assert ylabel.x0 >= 0 and ylabel.y0 >= 0 and ylabel.y1 <= figure.bbox.height
    finally:
        import matplotlib.pyplot as plt

        monkeypatch.undo()
        plt.close(figure)


def test_summary_md_leaves_the_seed_and_the_nondifferentiable_count_to_the_csv(tmp_path):
    write_readable_report(_folder(tmp_path))
    text = (tmp_path / SUMMARY_MD).read_text(encoding="utf-8")
    assert "seed" not in text and "nondifferentiable" not in text


LAMBDAS_TEST = """
import numpy as np


def test_double(check_gradients):
    check_gradients.function(lambda x: 2 * x, lambda dout, x: 2 * dout, np.linspace(0.1, 1, 3))


def test_square(check_gradients):
    check_gradients.function(lambda x: x * x, lambda dout, x: 2 * x * dout,
                             np.linspace(0.1, 1, 3))


def test_named(check_gradients):
    check_gradients.function(lambda x: 3 * x, lambda dout, x: 3 * dout, np.ones(2),
                             name="triple")
"""


def test_lambdas_of_different_tests_merged_in_one_row_are_pointed_out(pytester):
    pytester.makepyfile(test_inner=LAMBDAS_TEST)
    result = pytester.runpytest_subprocess("--gradcheck-report", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "gradcheck: note: <lambda> merges the checks of 2 tests (test_inner.py::test_double, "
        "test_inner.py::test_square): the summary groups by name; give each function a name*"])
    markdown = (pytester.path / "out" / SUMMARY_MD).read_text()
    assert ("> **Note:** `<lambda>` merges the checks of 2 tests (test_inner.py::test_double, "
            "test_inner.py::test_square)") in markdown
    assert "triple" in markdown and "`triple` merges" not in markdown


def test_anonymous_merges_names_only_lambdas_seen_in_several_tests():
    from gradcheck.report import anonymous_merges

    assert anonymous_merges([("<lambda>", "t::a"), ("<lambda>", "t::a"), ("f", "t::b"),
                             ("f", "t::c")]) == []
    [line] = anonymous_merges([("Net.<lambda>", f"t::{k}") for k in "edcba"], quote="`")
    assert line.startswith("`Net.<lambda>` merges the checks of 5 tests (t::a, t::b, t::c and "
                           "2 more)")
