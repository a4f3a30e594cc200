"""The command line (gradcheck.cli): check, verify, bench, help and exit codes.

Run in-process through ``main([...])`` (which returns the exit code), and once
as ``python -m gradcheck`` in a subprocess. ``verify`` and ``bench`` are too
slow to run here: their command lines are tested, and their refusal to run
without a source checkout.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gradcheck
from gradcheck import cli

LAYERS = '''
import numpy as np
from reference_impls import Dense


class Doubled(Dense):
    """dW doubled."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads = {**self.grads, "W": 2 * self.grads["W"]}
        return dx


def _arrays():
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 2)), rng.normal(size=(3, 1)), rng.normal(size=(2, 4))


def good():
    W, b, x = _arrays()
    return Dense(W, b), x


def broken():
    W, b, x = _arrays()
    return Doubled(W, b), x


def single():
    return good()[0]


def torch_dense(x, p):
    return p["W"] @ x + p["b"]


def scale_forward(x, w):
    return x * w, (x, w)


def scale_backward(dout, cache):
    x, w = cache
    return dout * w, dout * x


def scale_backward_swapped(dout, cache):
    w, x = cache                     # unpacked in the wrong order
    return dout * w, dout * x


def scale_pair():
    W, b, x = _arrays()
    return scale_forward, scale_backward, (W, W[::-1].copy())


def scale_pair_broken():
    W, b, x = _arrays()
    return scale_forward, scale_backward_swapped, (W, W[::-1].copy())


def torch_scale(x, w):
    return x * w


def half_square(v, labels):
    return 0.5 * float(np.sum(v ** 2)), v


def half_square_loss():
    return half_square, (_arrays()[2], np.array([0, 1]))


NOT_CALLABLE = 3
'''


@pytest.fixture
def layers(tmp_path, monkeypatch):
    """A module of factories in a fresh directory, the current one; its name is returned."""
    name = f"cli_layers_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(LAYERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))   # main puts the cwd on it
    yield name
    sys.modules.pop(name, None)


def test_check_correct_layer_prints_the_table_and_exits_0(layers, capsys):
    assert cli.main(["check", f"{layers}:good"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == list(cli.TABLE_COLUMNS)
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["x", "dA_prev", "complex_step"], ["W", "dW", "complex_step"], ["b", "db", "complex_step"]]
    assert all(line.split()[-1] == "yes" for line in lines[1:4])
    assert "gradient check of Dense passed" in out


def test_check_with_torch_and_options(layers, capsys):
    code = cli.main(["check", f"{layers}:good", "--torch", f"{layers}:torch_dense",
                     "--no-complex-step", "--mode", "full", "--seed", "3"])
    assert code == 0
    out = capsys.readouterr().out
    oracles = {line.split()[2] for line in out.splitlines()[1:7]}
    assert oracles == {"finite_differences", "torch"}
    assert "(6 comparisons" in out


def test_check_broken_layer_exits_1_with_the_diagnosis(layers, capsys):
    assert cli.main(["check", f"{layers}:broken"]) == 1
    out = capsys.readouterr().out
    w_row = next(line for line in out.splitlines() if line.startswith("W "))
    assert w_row.split()[-1] == "NO"
    assert "gradient check of Doubled failed" in out
    assert "a constant factor" in out


@pytest.mark.parametrize("spec, expected", [
    ("{m}", "must be MODULE:NAME"),
    ("{m}:", "must be MODULE:NAME"),
    ("no_such_module_xyz:good", "cannot import module 'no_such_module_xyz'"),
    ("{m}:missing", "has no attribute 'missing'"),
    ("{m}:NOT_CALLABLE", "is not callable"),
    ("{m}:single", "must return a pair (layer, x), a triple (forward, backward, args) or a "
                   "pair (fn, args) with args a tuple, got a Dense"),
])
def test_check_bad_factory_exits_2_naming_the_argument(layers, capsys, spec, expected):
    spec = spec.format(m=layers)
    assert cli.main(["check", spec]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "MODULE:FACTORY" in captured.err and repr(spec) in captured.err
    assert expected in captured.err


@pytest.mark.parametrize("factory, code, first_rows", [
    ("scale_pair", 0, [["x", "dx"], ["w", "dw"]]),
    ("scale_pair_broken", 1, [["x", "dx"], ["w", "dw"]]),
    ("half_square_loss", 0, [["v", "dv"]]),
])
def test_check_takes_function_pairs_and_value_and_grad_functions(layers, capsys, factory, code,
                                                                 first_rows):
    assert cli.main(["check", f"{layers}:{factory}"]) == code
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[1:1 + len(first_rows)]] == first_rows
    name = "half_square" if factory == "half_square_loss" else "scale_forward"
    assert f"gradient check of {name} {'passed' if code == 0 else 'failed'}" in "\n".join(lines)


def test_check_a_function_pair_with_its_torch_twin(layers, capsys):
    assert cli.main(["check", f"{layers}:scale_pair", "--torch", f"{layers}:torch_scale"]) == 0
    assert "(4 comparisons" in capsys.readouterr().out


def test_check_bad_torch_fn_exits_2_naming_the_option(layers, capsys):
    assert cli.main(["check", f"{layers}:good", "--torch", f"{layers}:nope"]) == 2
    assert "--torch" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)     # `report` reads ./reports: make sure it has no CSV
    assert cli.main([]) == 2
    assert cli.main(["check"]) == 2
    assert cli.main(["check", "m:f", "--mode", "slow"]) == 2
    assert cli.main(["verify", "--profile", "nightly"]) == 2
    assert cli.main(["report"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'slow'" in err and "invalid choice: 'nightly'" in err


@pytest.mark.parametrize("command, options", [
    ([], ["verify", "check", "bench", "exit codes"]),
    (["verify"], ["--profile", "--seed", "--examples", "--out", "--jobs", "(default: ci)",
                  "(default: reports)", "exit codes"]),
    (["check"], ["MODULE:FACTORY", "--mode", "--seed", "--complex-step", "--no-complex-step",
                 "--torch", "(default: auto)", "(default: 0)", "exit codes"]),
    (["bench"], ["--quick", "(default: False)"]),
])
def test_help_lists_every_option_with_its_default(capsys, command, options):
    assert cli.main([*command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())   # undo the wrapping
    for option in options:
        assert option in out


def test_python_m_gradcheck_help():
    done = subprocess.run([sys.executable, "-m", "gradcheck", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: gradcheck" in done.stdout
    for command in ("verify", "check", "bench"):
        assert command in done.stdout


def test_verify_command_is_what_make_verify_runs():
    assert cli.verify_command(python="py") == [
        "py", "-m", "pytest", "property_tests/reference_impls", "property_tests/detection", "-q",
        "--hypothesis-profile=ci", "--gradcheck-report=reports", "--gradcheck-strict"]
    command = cli.verify_command(profile="thorough", seed=7, out=Path("/tmp/r"), jobs=2)
    assert command[0] == sys.executable
    assert command[3:] == [
        "property_tests/reference_impls", "property_tests/detection", "-q",
        "--hypothesis-profile=thorough", "--gradcheck-report=/tmp/r", "--gradcheck-strict", "-n", "2",
        "--hypothesis-seed=7"]


@pytest.mark.parametrize("pytest_code, expected", [(0, 0), (1, 1), (2, 2), (4, 2), (5, 2)])
def test_verify_runs_pytest_from_the_root_and_maps_its_exit_code(
        monkeypatch, tmp_path, pytest_code, expected):
    calls = []

    def fake_run(command, cwd, env):
        calls.append((command, cwd, env))
        return subprocess.CompletedProcess(command, pytest_code)

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cli.main(["verify", "--jobs", "2", "--out", "out"]) == expected
    (command, cwd, env), = calls
    assert cwd == Path(gradcheck.__file__).resolve().parent.parent
    assert command == cli.verify_command(out=tmp_path.resolve() / "out", jobs=2)
    assert env["OMP_NUM_THREADS"] == "1"


def test_verify_examples_sets_the_environment_of_the_pytest_run(monkeypatch, tmp_path):
    calls = []

    def fake_run(command, cwd, env):
        calls.append((command, env))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRADCHECK_MAX_EXAMPLES", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cli.main(["verify", "--examples", "7", "--profile", "thorough"]) == 0
    assert cli.main(["verify"]) == 0
    (command, env), (plain_command, plain_env) = calls
    # The command line is unchanged: hypothesis has no option for max_examples.
    assert command == cli.verify_command(profile="thorough", out=tmp_path.resolve() / "reports")
    assert env["GRADCHECK_MAX_EXAMPLES"] == "7" and "OMP_NUM_THREADS" not in env
    assert "GRADCHECK_MAX_EXAMPLES" not in plain_env
    assert plain_command == cli.verify_command(out=tmp_path.resolve() / "reports")


def test_verify_env():
    assert cli.verify_env({"A": "1"}) == {"A": "1"}
    assert cli.verify_env({"A": "1"}, jobs=2, examples=5) == {
        "A": "1", "OMP_NUM_THREADS": "1", "GRADCHECK_MAX_EXAMPLES": "5"}
    assert cli.verify_env({"OMP_NUM_THREADS": "3"}, jobs=2) == {"OMP_NUM_THREADS": "3"}


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_verify_examples_must_be_a_positive_integer(capsys, value):
    assert cli.main(["verify", "--examples", value]) == 2
    assert "--examples: must be a positive integer" in capsys.readouterr().err


COUNTING_TEST = """
import os
from hypothesis import given, settings, strategies as st


def _count(name):
    with open(os.path.join(os.environ["COUNT_DIR"], name), "a") as f:
        f.write("x")


@given(st.integers())
def test_profile(n):
    _count("profile")


@settings(max_examples=3)
@given(st.integers())
def test_own(n):
    _count("own")
"""


@pytest.mark.parametrize("profile", ["ci", "thorough"])
def test_the_suites_conftest_takes_max_examples_from_the_environment(
        pytester, monkeypatch, profile):
    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    pytester.makeconftest(conftest.read_text())
    pytester.makepyfile(test_counting=COUNTING_TEST)
    monkeypatch.setenv("COUNT_DIR", str(pytester.path))
    monkeypatch.setenv("GRADCHECK_MAX_EXAMPLES", "7")
    result = pytester.runpytest_subprocess(f"--hypothesis-profile={profile}",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert len((pytester.path / "profile").read_text()) == 7
    assert len((pytester.path / "own").read_text()) == 3   # its own @settings is kept


def test_bench_commands(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    assert cli.bench_commands(tmp_path, python="py") == [["py", "-m", "benchmarks.bench_layers"]]
    (tmp_path / "benchmarks" / "bench_checker.py").write_text("")
    assert cli.bench_commands(tmp_path, quick=True, python="py") == [
        ["py", "-m", "benchmarks.bench_layers", "--quick"],
        ["py", "-m", "benchmarks.bench_checker", "--quick"]]
    (tmp_path / "benchmarks" / "bench_users.py").write_text("")
    assert cli.bench_commands(tmp_path, python="py")[1:] == [
        ["py", "-m", "benchmarks.bench_checker"], ["py", "-m", "benchmarks.bench_users"]]


def test_verify_and_bench_exit_2_outside_a_source_checkout(tmp_path):
    """A copy of the package alone (as pip installs it): no property_tests/, no benchmarks/."""
    shutil.copytree(Path(cli.__file__).parent, tmp_path / "gradcheck",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for command, missing in (("verify", "property_tests/"), ("bench", "benchmarks/")):
        done = subprocess.run([sys.executable, "-m", "gradcheck", command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert f"no {missing} directory in {tmp_path.resolve()}" in done.stderr
        assert "source checkout" in done.stderr
