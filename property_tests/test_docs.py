"""The manual's pages: every example run, every link alive, the figures and numbers true.

test_readme.py runs the examples of functions and checks the quoted outputs; this
file checks that no Python block goes unrun, the examples that are pytest tests, the
links and anchors of README.md and docs/*.md, the derivation's equation numbers
against the docstrings that cite them, and the figures README quotes against the
pages they come from and the code.
"""

import ast
import os
import re
import tomllib
import unicodedata

import pytest

from property_tests.test_readme import (
    DOCS, EXAMPLES, OTHER_EXAMPLES, README, ROOT, _blocks, _examples, _pages, _text,
)

DERIVATION = DOCS / "derivation.md"
PERFORMANCE = DOCS / "performance.md"
METHOD = DOCS / "method.md"
#: The equations the reference layers' docstrings cite (issue 12).
CITED = {"8", "9", "10", "18", "20", "24", "26", "29", "31", "37"}


# ----------------------------------------------------------------------------- blocks
def test_every_python_block_of_the_manual_is_run_by_a_test():
    """A ```python block is a tagged example or the command line's module; a sketch
    that cannot run (a protocol, a signature) is fenced as ```py, and must parse."""
    known = set(EXAMPLES) | set(OTHER_EXAMPLES)
    for page, code in _blocks("python"):
        first = code.splitlines()[0]
        tag = first[len("# example: "):].strip() if first.startswith("# example: ") else None
        assert tag in known or first == "# my_layers.py", (page.name, first)
    for page, code in _blocks("py"):
        ast.parse(code, filename=page.name)


@pytest.mark.parametrize("name", ["pytest fixture", "hypothesis strategies"])
def test_the_manual_examples_of_pytest_tests_pass(name, pytester, monkeypatch):
    page, code = _examples()[name]
    filename = re.search(r"^# (test_\w+\.py)", code, flags=re.M).group(1)
    pytester.path.joinpath(filename).write_text(code)
    # In a subprocess: an in-process run drops from sys.modules what it imported first
    # (torch), and torch imported again in the same interpreter crashes it (a segfault
    # when test_readme ran next).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")])))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", filename)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1 and set(outcomes) <= {"passed", "warnings"}, (
        page.name, outcomes)


# ------------------------------------------------------------------------------ links
def _slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_~]|\[|\]\([^)]*\)", lambda m: "_" if m.group() == "_" else "",
                  heading.strip()).lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def _anchors(path):
    """Every anchor GitHub makes for the headings of a Markdown page."""
    text = re.sub(r"^```.*?^```", "", _text(path), flags=re.S | re.M)
    seen, anchors = {}, set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
        slug = _slug(heading)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links(path):
    """The link targets of a page, outside code blocks and code spans."""
    text = re.sub(r"^\s*```.*?^\s*```", "", _text(path), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_the_slug_is_githubs():
    assert _slug("`verify --examples N`") == "verify---examples-n"
    assert _slug("2.5 The chain through a network") == "25-the-chain-through-a-network"
    assert _slug("`gradcheck_detailed.csv`") == "gradcheck_detailedcsv"
    assert _slug("Kinks: entries that disagree get a second look") == (
        "kinks-entries-that-disagree-get-a-second-look")


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_every_relative_link_points_at_an_existing_file_and_anchor(page):
    links = _links(page)
    for link in links:
        if re.match(r"[a-z]+:", link):          # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), (page.name, link)
        assert ROOT in path.parents or path == ROOT, (page.name, link)
        if anchor:
            assert path.suffix == ".md", (page.name, link)
            assert anchor in _anchors(path), (page.name, link, sorted(_anchors(path)))


def test_the_readme_links_every_docs_page_and_no_file_outside_the_repository():
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in _links(README)}
    assert set(DOCS.glob("*.md")) <= linked
    for page in _pages():
        assert "shared/" not in _text(page), f"{page.name} points outside the repository"


def test_the_readme_is_a_manual_not_a_book():
    lines = _text(README).count("\n")
    assert lines <= 320, f"README.md has {lines} lines; move detail to docs/"
    headings = re.findall(r"^## (.+)$", _text(README), flags=re.M)
    order = ["The two commands", "Check your layer", "Check your functions",
             "What a failure message says", "Options and the result", "The command line",
             "pytest and hypothesis", "How it compares", "Documentation", "Layout"]
    assert [h for h in headings if h in order] == order


def test_the_readme_layout_names_what_is_there():
    layout = _text(README).split("## Layout", 1)[1]
    tree = re.search(r"```\n(.*?)```", layout, flags=re.S).group(1)
    for folder in re.findall(r"^(\S+)/ ", tree, flags=re.M):
        assert (ROOT / folder).is_dir(), folder
    for name in re.findall(r"\b(\w+\.py)\b", tree):
        assert list(ROOT.glob(f"*/{name}")), name


# ------------------------------------------------------------------------- derivation
def _tags():
    """The equation tags of derivation.md: ``(8)`` or ``(10a)`` ending a line of a block."""
    blocks = re.findall(r"^\s*```\w*\n(.*?)^\s*```", _text(DERIVATION), flags=re.S | re.M)
    return [tag for block in blocks
            for tag in re.findall(r"\((\d+[a-z]?)\)\s*$", block, flags=re.M)]


def _citations(text):
    """Equation numbers cited as ``eq. 8``, ``eq. (18)/(20)``, ``eqs. (29), (31) and (37)``."""
    found = set()
    for span in re.findall(r"\beqs?\.\s*((?:\(?\d+\)?(?:\s*(?:/|,|and)\s*)?)+)", text):
        found.update(re.findall(r"\d+", span))
    return found


def test_the_derivation_numbers_each_equation_once_in_order():
    tags = _tags()
    assert len(tags) == len(set(tags)), sorted(t for t in tags if tags.count(t) > 1)
    numbers = [int(re.match(r"\d+", t).group()) for t in tags]
    assert numbers == sorted(numbers)
    assert CITED <= set(tags)


def test_every_equation_the_code_and_the_manual_cite_is_in_the_derivation():
    sources = sorted((ROOT / "reference_impls").glob("*.py"))
    cited_by_code = set().union(*(_citations(_text(p)) for p in sources))
    assert CITED <= cited_by_code           # what the docstrings cite, as issue 12 lists it
    for page in [*sources, *_pages()]:
        missing = _citations(_text(page)) - set(_tags())
        assert not missing, (page.name, missing)


def test_every_section_the_code_cites_is_in_the_derivation():
    headings = re.findall(r"^#{2,3} (\d+(?:\.\d+)?) ", _text(DERIVATION), flags=re.M)
    for path in sorted((ROOT / "reference_impls").glob("*.py")):
        for section in re.findall(r"\bsection (\d+(?:\.\d+)?)", _text(path)):
            assert section in headings, (path.name, section)


def test_the_derivation_covers_what_the_reference_layers_compute():
    text = _text(DERIVATION)
    for formula in ["W[l]ᵀ δZ[l]", "δA[l] ⊙ g'(Z[l])", "δZ[l] A[l-1]ᵀ", "δZ[l] 1",
                    "A_prev ⋆ δZ", "δZ ⋆_full ROT180(W)", "vec(P Q R) = (Rᵀ ⊗ P) vec(Q)",
                    "softmax", "argmax", "spread equally"]:
        assert formula in text, formula


# ---------------------------------------------------------------------------- figures
def _section(path, heading):
    text = _text(path)
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _figure(pattern, text):
    return float(re.search(pattern, text).group(1).replace(",", ""))


def test_the_figures_readme_quotes_are_those_of_the_performance_page():
    compares = _section(README, "How it compares")
    performance = _text(PERFORMANCE)
    # Every speed-up (184.8×, 505×), time (0.091 s) and count (49 / 49) README quotes is
    # on the page that says how and when it was measured.
    figures = re.findall(r"(\d[\d,.]*)(?:×(?!\d)| s\b)", compares) + re.findall(
        r"\d+ / \d+", compares)
    assert len(figures) >= 12
    for figure in figures:
        assert figure in performance, figure
    assert re.findall(r"20\d\d-\d\d-\d\d", compares), "figures without their dates"
    # ... and they meet the goals the benchmarks hold them to.
    assert _figure(r"\*\*([\d.]+)× faster\*\*", compares) >= 100
    assert _figure(r"checked a 10\^6-entry input in ([\d.]+) s", compares) < 1


def test_the_detection_counts_are_those_of_the_catalogs():
    from property_tests.corpus.catalog import CASES as CORPUS
    from property_tests.detection.mutants import CASES as MUTANTS

    def count(cases, kind):
        return sum(1 for case in cases if case.kind == kind)

    compares = _section(README, "How it compares")
    said = [tuple(map(int, pair)) for pair in re.findall(r"(\d+) / (\d+)", compares)]
    assert said == [(count(MUTANTS, "bug"),) * 2, (0, count(MUTANTS, "correct")),
                    (count(CORPUS, "bug"),) * 2, (0, count(CORPUS, "correct"))]
    table = _section(PERFORMANCE, "Detection power")
    for bugs, correct in [(count(MUTANTS, "bug"), count(MUTANTS, "correct"))] * 2 + [
            (count(CORPUS, "bug"), count(CORPUS, "correct"))]:
        assert f"| {bugs} / {bugs} (100 %) | 0 / {correct} (0 %) |" in table
    hazards = count(MUTANTS, "hazard")
    assert f"| {hazards} / {hazards} |" in table


def test_the_constants_the_manual_quotes_are_the_codes():
    import gradcheck

    for path in (README, METHOD):
        text = _text(path)
        assert _figure(r"`AUTO_MAX_CALLS` = ([\d,]+)", text) == gradcheck.AUTO_MAX_CALLS
        assert _figure(r"`AUTO_MAX_SECONDS` = ([\d.]+) s", text) == gradcheck.AUTO_MAX_SECONDS
    rows = re.findall(r"^\| (float\d\d) \| ([\d.e-]+) \| ([\d.e-]+)[^|]*\| ([\d.e-]+) \|$",
                      _text(METHOD), flags=re.M)
    assert [name for name, *_ in rows] == ["float64", "float32", "float16"]
    for name, step, fd, torch in rows:
        precision = gradcheck.PRECISIONS[name]
        assert abs(float(step) / precision.step - 1) < 0.02, name      # to 2 digits
        assert (float(fd), float(torch)) == (precision.fd_tolerance,
                                             precision.torch_tolerance), name


def test_the_extras_and_exit_codes_the_readme_names_exist():
    from gradcheck import cli

    project = tomllib.loads(_text(ROOT / "pyproject.toml"))["project"]
    extras = set(project["optional-dependencies"])
    named = set(re.findall(r"gradcheck\[(\w+)\]", _text(README)))
    assert {"torch", "report", "strategies"} <= named <= extras
    # "pip install . ... with numpy alone (and threadpoolctl)"
    assert sorted(re.match(r"[\w-]+", d).group() for d in project["dependencies"]) == [
        "numpy", "threadpoolctl"]
    assert (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE) == (0, 1, 2)
    assert "**0** all passed, **1** a gradient check failed, **2** a usage error" in _text(
        README)
    commands = re.findall(r"^gradcheck (\w+) ", _section(README, "The command line"),
                          flags=re.M)
    subparsers = next(a for a in cli.build_parser()._actions if a.choices)
    assert sorted(commands) == sorted(subparsers.choices)
