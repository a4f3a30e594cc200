"""The house rules on imports: torch only in the torch oracle, pandas only in the
report, and reference_impls independent of gradcheck."""

import subprocess
import sys


def _modules_after(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_gradcheck_and_checking_a_layer_imports_neither_torch_nor_pandas():
    loaded = _modules_after(
        "import numpy as np, gradcheck; from reference_impls import Dense; "
        "r = np.random.default_rng(0); "
        "gradcheck.check_layer(Dense(r.normal(size=(2, 2)), r.normal(size=(2, 1))), "
        "r.normal(size=(2, 3)))"
    )
    assert "torch" not in loaded and "pandas" not in loaded and "matplotlib" not in loaded


def test_the_report_and_the_command_line_import_matplotlib_only_when_they_plot():
    loaded = _modules_after("import gradcheck.report, gradcheck.cli, gradcheck.pytest_plugin")
    assert "matplotlib" not in loaded and "pandas" not in loaded


def test_reference_impls_import_nothing_from_gradcheck():
    assert "gradcheck" not in _modules_after("import reference_impls")


def _fails_without(module, statement):
    """Run ``statement`` with ``module`` made unimportable; return its stderr (it must fail)."""
    code = f"import sys; sys.modules[{module!r}] = None; {statement}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    return out.stderr


def test_the_strategies_without_hypothesis_say_which_extra_to_install():
    err = _fails_without("hypothesis", "import gradcheck.strategies")
    assert "MissingExtraError: gradcheck.strategies needs hypothesis" in err
    assert "pip install 'gradcheck[strategies]'" in err


def test_a_check_with_numpy_alone_imports_no_extra():
    code = ("import sys; [sys.modules.__setitem__(m, None) for m in "
            "('torch', 'pandas', 'matplotlib', 'hypothesis')]; import numpy as np, gradcheck; "
            "from reference_impls import Dense; r = np.random.default_rng(0); "
            "res = gradcheck.check_layer(Dense(r.normal(size=(2, 2)), r.normal(size=(2, 1))), "
            "r.normal(size=(2, 3))); print(res.passed)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
