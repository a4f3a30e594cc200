"""The command line in a stranger's hands: whatever the module, the factory or the layer
does, ``gradcheck check`` exits 0 only for a check that ran and passed, 1 for one that
ran and failed, and 2 (with a message on stderr naming what stopped it) otherwise.

Hypothesis draws the module's behaviour from a space of faults people meet: a
factory that raises, calls ``sys.exit`` with any code or is interrupted, a module
that exits while it is imported, a layer that exits or is interrupted in its
forward or its backward, an optional package missing, and malformed
``MODULE:FACTORY`` strings; and ``gradcheck report`` on folders whose CSVs were cut,
edited byte by byte or emptied: exit 0 having written the report, or 2 having
written nothing, never a traceback.
"""

import itertools
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcheck import cli

# A module the test writes, with a hole for the fault: {top} runs on import, {make} in
# the factory, {fwd} and {bwd} in the layer's forward and backward.
MODULE = '''
import sys
import numpy as np
{top}

class Scale:
    """y = w * x, with dw doubled when BROKEN."""

    def __init__(self, w):
        self.params = {{"w": w}}
        self.grads = {{}}

    def forward(self, x):
        {fwd}
        self.x = x
        return self.params["w"] * x

    def backward(self, dout):
        {bwd}
        self.grads = {{"w": (2.0 if BROKEN else 1.0) * np.sum(dout * self.x, axis=0)}}
        return dout * self.params["w"]


BROKEN = {broken}


def factory():
    {make}
    rng = np.random.default_rng(0)
    return Scale(rng.normal(size=3)), rng.normal(size=(2, 3))
'''

# How a piece of the user's code stops: the statement, and whether the check can still run.
STOPS = {
    "exit 0": "sys.exit(0)",
    "exit None": "sys.exit()",
    "exit 1": "sys.exit(1)",
    "exit text": "sys.exit('bye')",
    "exit()": "raise SystemExit",
    "interrupt": "raise KeyboardInterrupt",
    "error": "raise RuntimeError('boom')",
    "missing torch": "import no_such_torch_xyz as torch",
}

_names = itertools.count()


def _write(tmp_path, **holes):
    """Write the module with its holes filled (``pass`` where none is given); its name."""
    name = f"strangers_{tmp_path.name.replace('-', '_')}_{next(_names)}"
    filled = {"top": "", "make": "pass", "fwd": "pass", "bwd": "pass", "broken": "False"}
    filled.update(holes)
    (tmp_path / f"{name}.py").write_text(MODULE.format(**filled))
    return name


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A fresh current directory (main puts it on sys.path) whose modules are forgotten after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("strangers_"):
            del sys.modules[name]


def _run(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


_SETTINGS = settings(max_examples=40, derandomize=True, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(where=st.sampled_from(["top", "make", "fwd", "bwd"]), stop=st.sampled_from(sorted(STOPS)),
       broken=st.booleans())
def test_a_check_that_did_not_run_exits_2_and_says_why(folder, capsys, where, stop, broken):
    name = _write(folder, **{where: STOPS[stop], "broken": str(broken)})
    code, out, err = _run(capsys, "check", f"{name}:factory")
    assert code == 2, (where, stop, out, err)
    assert "passed" not in out and "failed" not in out   # no verdict printed
    assert "error" in err
    if stop.startswith("exit"):
        assert "SystemExit" in err
    if stop == "interrupt":
        assert "interrupted" in err


@_SETTINGS
@given(broken=st.booleans(), torch=st.booleans())
def test_a_check_that_ran_exits_0_or_1_by_its_verdict(folder, capsys, broken, torch):
    name = _write(folder, broken=str(broken))
    argv = ["check", f"{name}:factory"]
    if torch:
        (folder / f"{name}_twin.py").write_text("def twin(x, p):\n    return p['w'] * x\n")
        argv += ["--torch", f"{name}_twin:twin"]
    code, out, _ = _run(capsys, *argv)
    assert code == (1 if broken else 0)
    assert ("gradient check of Scale failed" if broken else "gradient check of Scale passed") in out


def test_a_module_needing_a_missing_extra_says_which_to_install(folder, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # import torch raises ImportError
    name = _write(folder)
    (folder / f"{name}_twin.py").write_text("import torch\n\ndef twin(x, p):\n    return x\n")
    code, out, err = _run(capsys, "check", f"{name}:factory", "--torch", f"{name}_twin:twin")
    assert code == 2 and out == ""
    assert "--torch" in err and "pip install 'gradcheck[torch]'" in err


_SPEC_CHARS = st.sampled_from(list("ab_:.-/ 1") + ["", "::", "os:path", "..", "sys:exit"])


@_SETTINGS
@given(spec=st.lists(_SPEC_CHARS, max_size=6).map("".join))
def test_a_malformed_module_factory_exits_2_naming_the_argument(folder, capsys, spec):
    code, out, err = _run(capsys, "check", spec)
    assert code == 2 and "passed" not in out
    assert "MODULE:FACTORY" in err or "error:" in err


def test_a_gradient_the_differences_cannot_resolve_is_unjudged_and_exits_1(folder, capsys):
    (folder / "strangers_offset.py").write_text(
        "import numpy as np\n\n"
        "def forward(x):\n    return x + 1e12, None\n\n"
        "def backward(dout, cache):\n    return dout\n\n"
        "def make():\n    return forward, backward, (np.linspace(-1.0, 1.0, 6),)\n")
    code, out, _ = _run(capsys, "check", "strangers_offset:make", "--no-complex-step")
    assert code == 1
    assert out.splitlines()[1].split()[-1] == "unjudged"
    assert "could not be judged" in out


# -------------------------------------------------------------- damaged report folders

_DAMAGES = st.sampled_from(["cut", "byte", "drop line", "duplicate line", "empty"])
_BYTES = st.sampled_from(list(b'",\n\r;x0 \x00\xff'))


@settings(max_examples=30, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), damage=_DAMAGES)
def test_a_damaged_report_folder_exits_0_or_2_and_never_half_writes(tmp_path_factory, capsys,
                                                                     data, damage):
    from property_tests.gradcheck.test_summary import _folder

    folder = _folder(tmp_path_factory.mktemp("report"))
    name = data.draw(st.sampled_from(sorted(p.name for p in folder.glob("*.csv"))), label="csv")
    path = folder / name
    raw = bytearray(path.read_bytes())
    lines = raw.splitlines(keepends=True)
    if damage == "cut":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1), label="at")]
    elif damage == "byte":
        raw[data.draw(st.integers(0, len(raw) - 1), label="at")] = data.draw(_BYTES, label="b")
    elif damage in ("drop line", "duplicate line"):
        at = data.draw(st.integers(0, len(lines) - 1), label="line")
        lines[at:at + 1] = [] if damage == "drop line" else [lines[at], lines[at]]
        raw = b"".join(lines)
    else:
        raw = b""
    path.write_bytes(bytes(raw))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, out, err = _run(capsys, "report", "--dir", str(folder))
    assert "Traceback" not in err
    if code == 2:
        assert "damaged CSV" in err or "no gradcheck CSV" in err or "error" in err
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written
    else:
        assert code == 0 and "written:" in out


@pytest.mark.parametrize("where", ["fwd", "bwd"])
def test_a_value_error_inside_the_layer_is_shown_as_its_own_not_as_a_refusal(folder, capsys,
                                                                              where):
    # A shape bug in a backward raises ValueError: the user needs its traceback and the
    # note saying where it was raised, not "check_layer refused it".
    name = _write(folder, **{where: "raise ValueError('operands could not be broadcast')"})
    code, out, err = _run(capsys, "check", f"{name}:factory")
    assert code == 2 and "passed" not in out
    assert "refused it" not in err
    assert "Traceback" in err and "ValueError: operands could not be broadcast" in err
    assert "raised inside layer." + ("forward" if where == "fwd" else "backward") in err


def test_a_bad_option_is_still_a_refusal_naming_it(folder, capsys, monkeypatch):
    name = _write(folder)
    monkeypatch.setattr(cli, "_entry_point", lambda made, factory: (
        "check_layer", lambda **o: __import__("gradcheck").check_layer(*made, seed=-1)))
    code, _, err = _run(capsys, "check", f"{name}:factory")
    assert code == 2 and "check_layer refused it" in err and "`seed`" in err
