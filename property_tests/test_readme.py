"""The manual's examples run as written and say what they show.

The manual is README.md and the pages under docs/. A quoted example or output is
looked up in whichever page holds it, so text can move between pages without a
check being lost. ``property_tests/test_docs.py`` checks the pages themselves: links,
equation numbers, figures and which blocks are run.
"""

import ast
import csv
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _pages():
    """README.md, then every docs/*.md page."""
    return [README, *sorted(DOCS.glob("*.md"))]


def _text(path):
    return path.read_text(encoding="utf-8")


def _blocks(language="python", pages=None):
    """``(page, code)`` of every fenced block in ``language`` (exactly) on the pages."""
    pattern = rf"^```{re.escape(language)}\n(.*?)^```"
    return [(page, code) for page in (pages or _pages())
            for code in re.findall(pattern, _text(page), flags=re.S | re.M)]


def _python_blocks():
    return [code for _, code in _blocks("python")]


def _page_with(marker):
    """The one page that holds ``marker``, and its text."""
    found = [(page, _text(page)) for page in _pages() if marker in _text(page)]
    assert len(found) == 1, (marker, [page.name for page, _ in found])
    return found[0]


def test_readme_custom_layer_example_runs_and_passes():
    (block,) = [b for b in _python_blocks() if "gradcheck.check_layer(layer, x)" in b]
    assert block in [code for _, code in _blocks("python", [README])]
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    result = namespace["result"]
    assert result.passed
    assert set(result.max_rel_error) == {"x", "w"}
    # The figures the README quotes are what this example produces, to their
    # order of magnitude (the last digits move with any harmless change of
    # the probes' arithmetic; a factor of 10 does not).
    quoted = re.findall(r'"(\w+)": ([0-9.]+e-\d+)', block)
    assert quoted
    for key, figure in quoted:
        assert float(figure) / 10 <= result.max_rel_error[key] <= float(figure) * 10, key


def _examples():
    """The manual's tagged examples: {name: (page, code)}, from their first line."""
    found = {}
    for page, block in _blocks("python"):
        first = block.splitlines()[0]
        if first.startswith("# example: "):
            name = first[len("# example: "):].strip()
            assert name not in found, f"two examples named {name!r}"
            found[name] = (page, block)
    return found


#: Examples of hand-written functions: each defines ``result`` (must pass) and ``bad``
#: (a planted bug: must fail).
EXAMPLES = ["function pair", "lstm step", "embedding", "loss", "model", "0-d parameter",
            "second derivative"]
#: Examples checked by their own tests: the README's layer (above), a pytest test
#: using the fixture and a hypothesis test using the strategies (test_docs.py).
OTHER_EXAMPLES = ["custom layer", "pytest fixture", "hypothesis strategies"]
#: The README shows these; the others live in docs/.
README_EXAMPLES = ["custom layer", "function pair", "loss", "pytest fixture"]


def _matches(value, quoted):
    """``value`` equals the manual's literal, where a ``...`` inside a string ends the match."""
    if isinstance(quoted, str) and "..." in quoted:
        return isinstance(value, str) and value.startswith(quoted.split("...")[0])
    if isinstance(quoted, (tuple, list)) and isinstance(value, (tuple, list)):
        return len(value) == len(quoted) and all(map(_matches, value, quoted))
    return value == quoted


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_readme_example_of_a_function_passes_and_its_planted_bug_fails(name, capsys):
    page, code = _examples()[name]
    namespace = {}
    exec(compile(code, f"{page.name} example {name!r}", "exec"), namespace)
    assert namespace["result"].passed, namespace["result"].message()
    assert not namespace["bad"].passed, f"the planted bug of {name!r} was not caught"
    if "first" in namespace:
        assert namespace["first"].passed, namespace["first"].message()
    # Each `expression   # literal` line shows what the expression gives.
    for expression, literal in re.findall(r"^(\S[^#\n]*?)\s+# (\[.*\]|\(.*\))$", code, flags=re.M):
        value = eval(expression, namespace)
        assert _matches(value, ast.literal_eval(literal)), (expression, value)
    # The printed messages hold what the comments quote (between the "..."s).
    printed = capsys.readouterr().out
    for shown in re.findall(r"^print\(\w+\.message\(\)\)\s+# (.*)$", code, flags=re.M):
        for part in filter(None, (p.strip() for p in shown.split("..."))):
            assert part in printed, (part, printed)


def test_the_readme_covers_each_shape_of_hand_written_gradient():
    examples = _examples()
    assert sorted(examples) == sorted(EXAMPLES + OTHER_EXAMPLES)
    assert sorted(n for n, (page, _) in examples.items() if page == README) == sorted(
        README_EXAMPLES)


def test_the_lstm_failure_quoted_in_the_readme_is_what_the_example_prints():
    namespace = {}
    page, code = _examples()["lstm step"]
    exec(compile(code, page.name, "exec"), namespace)
    marker = "`bad.message()` names the user's gradients (first lines):"
    _, text = _page_with(marker)
    quoted = re.search(re.escape(marker) + r"\n\n```\n(.*?)```", text,
                       flags=re.S).group(1).strip().splitlines()
    assert namespace["bad"].message().splitlines()[:len(quoted)] == quoted


def _fenced(after):
    """The text of the first fenced block after ``after``, in the one page that holds it."""
    _, text = _page_with(after)
    start = text.index(after)
    return re.search(r"```\w*\n(.*?)```", text[start:], flags=re.S).group(1)


def test_the_command_line_outputs_quoted_in_the_readme_are_what_it_prints(tmp_path, monkeypatch,
                                                                         capsys):
    from gradcheck import cli

    module = _fenced("For example, with this `my_layers.py`")
    assert module.startswith("# my_layers.py\n")
    name = f"my_layers_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        quoted = _fenced("```\n$ gradcheck check my_layers:make_dense").splitlines()
        assert cli.main(["check", f"{name}:make_dense"]) == 0
        assert capsys.readouterr().out.splitlines() == quoted[1:]
        assert cli.main(["check", f"{name}:make_doubled"]) == 1
        printed = capsys.readouterr().out
        # README's "What a failure message says" quotes this failure.
        assert _page_with("## What a failure message says")[0] == README
        failure = _fenced("## What a failure message says").strip().splitlines()
        assert failure[0].startswith("gradient check of Doubled failed")
        assert printed.strip().splitlines()[-len(failure):] == failure
    finally:
        sys.modules.pop(name, None)


def test_the_detailed_csv_quoted_in_the_readme_is_what_the_plugin_writes(pytester):
    _, text = _page_with("test,layer,config,config.m,config.sizes,seed,tensor")
    start = text.index("test,layer,config,config.m,config.sizes,seed,tensor")
    quoted = text[start:text.index("```", start)].strip().splitlines()
    pytester.makepyfile(test_sample="""
        import numpy as np
        from reference_impls import Dense

        def test_dense(check_gradients):
            rng = np.random.default_rng(0)
            W, b, x = rng.normal(size=(3, 2)), rng.normal(size=(3, 1)), rng.normal(size=(2, 4))
            check_gradients(Dense(W, b), x, config={"m": 4, "sizes": [2, 3]})
    """)
    pytester.syspathinsert(str(ROOT))
    pytester.runpytest("-p", "no:cacheprovider", "--gradcheck-report", "out").assert_outcomes(
        passed=1)
    written = (pytester.path / "out" / "gradcheck_detailed.csv").read_text().splitlines()
    # The header and the tensor columns exactly; the errors to their order of magnitude.
    assert written[0] == quoted[0]
    for got, said in zip(written[1:3], quoted[1:]):
        got_cells, said_cells = next(csv.reader([got])), next(csv.reader([said]))
        errors = slice(11, 13)          # max_rel_error, max_abs_error
        assert got_cells[:11] == said_cells[:11] and got_cells[13:] == said_cells[13:]
        for g, s in zip(got_cells[errors], said_cells[errors]):
            assert float(s) / 10 <= float(g) <= float(s) * 10
