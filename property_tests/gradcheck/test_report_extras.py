"""Without pandas or matplotlib (simulated with ``sys.modules[name] = None``): the report
names the extra to install instead of a raw ModuleNotFoundError or a crash after the tests."""

import sys

import pytest

from gradcheck.cli import EXIT_USAGE, main
from gradcheck.report import (
    ERRORS_PNG, INSTALL_REPORT_EXTRA, SUMMARY_MD, MissingExtraError, import_pandas,
    import_pyplot, write_readable_report,
)
from property_tests.gradcheck.test_summary import _folder

INSTALL = "pip install 'gradcheck[report]'"


def _without(monkeypatch, *modules):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_the_extra_to_install_is_the_report_one():
    assert INSTALL_REPORT_EXTRA == INSTALL


@pytest.mark.parametrize("importer, modules, missing", [
    (import_pandas, ["pandas"], "pandas"),
    (import_pyplot, ["matplotlib", "matplotlib.pyplot"], "matplotlib"),
])
def test_the_import_helpers_say_which_extra_to_install(monkeypatch, importer, modules, missing):
    _without(monkeypatch, *modules)
    with pytest.raises(MissingExtraError) as raised:
        importer()
    assert isinstance(raised.value, ModuleNotFoundError)
    assert raised.value.name == missing
    message = str(raised.value)
    assert f"need {missing}" in message and message.endswith(INSTALL)


def test_gradcheck_report_without_pandas_exits_2_with_the_extra(tmp_path, monkeypatch, capsys):
    folder = _folder(tmp_path)          # written while pandas is there
    _without(monkeypatch, "pandas")
    assert main(["report", "--dir", str(folder)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "need pandas" in err and INSTALL in err and "Traceback" not in err, err
    assert not (folder / SUMMARY_MD).exists() and not (folder / ERRORS_PNG).exists()


def test_without_matplotlib_only_summary_md_is_written(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    _without(monkeypatch, "matplotlib", "matplotlib.pyplot")
    assert [path.name for path in write_readable_report(folder)] == [SUMMARY_MD]
    assert ERRORS_PNG not in (folder / SUMMARY_MD).read_text(encoding="utf-8")
    assert not (folder / ERRORS_PNG).exists()


NO_PANDAS_CONFTEST = """
import sys

sys.modules["pandas"] = None     # as if pandas were not installed
"""

TEST_THAT_LEAVES_A_MARK = """
from pathlib import Path


def test_runs():
    Path("ran").touch()
"""


def test_pytest_refuses_the_report_option_before_any_test_without_pandas(pytester):
    pytester.makeconftest(NO_PANDAS_CONFTEST)
    pytester.makepyfile(test_inner=TEST_THAT_LEAVES_A_MARK)
    result = pytester.runpytest_subprocess("--gradcheck-report", "out", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()     # not fnmatch: "[report]" would be a character class there
    assert "--gradcheck-report out: " in err and "need pandas" in err and INSTALL in err, err
    assert not (pytester.path / "ran").exists() and not (pytester.path / "out").exists()
    # Without the option, pandas is not needed.
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    plain.assert_outcomes(passed=1)
    assert (pytester.path / "ran").exists()
