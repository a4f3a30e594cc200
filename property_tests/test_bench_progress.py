"""The benchmarks' progress bar: only on a terminal, never on CI (no timing here)."""

import io

import pytest

from benchmarks.progress import echo, progress, show_progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _drain(items):
    return list(items)


def test_no_bar_when_stderr_is_not_a_terminal(capsys):
    cases = [1, 2, 3]
    assert progress(cases, desc="bench", environ={}) is cases   # pytest captures: no tty
    assert progress(cases, desc="bench", stream=io.StringIO(), environ={}) is cases
    echo("a row")
    out, err = capsys.readouterr()
    assert out == "a row\n" and err == ""


@pytest.mark.parametrize("ci", ["true", "1"])
def test_no_bar_on_ci_even_on_a_terminal(ci, monkeypatch):
    terminal = _Terminal()
    cases = [1, 2, 3]
    assert progress(cases, desc="bench", stream=terminal, environ={"CI": ci}) is cases
    monkeypatch.setenv("CI", ci)
    assert not show_progress(terminal)
    assert _drain(progress(cases, desc="bench", stream=terminal)) == cases
    assert terminal.getvalue() == ""


def test_a_bar_on_a_terminal_without_ci():
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    assert _drain(progress([1, 2, 3], desc="bench", stream=terminal, environ={})) == [1, 2, 3]
    assert "bench" in terminal.getvalue()


def test_the_benchmark_prints_no_progress_under_ci(monkeypatch, capsys, tmp_path):
    """bench_layers' run over a case, stderr a terminal but CI set: rows only, no bar."""
    import sys

    from benchmarks import bench_layers

    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setattr(bench_layers, "ROUNDS", 1)
    rows = bench_layers.run(bench_layers.QUICK_GRID[:1], tmp_path / "b.csv", memory=False)
    assert len(rows) == 1 and sys.stderr.getvalue() == ""
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("conv2d")
