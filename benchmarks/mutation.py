"""The surviving mutants of `make mutate`, as a table: ``reports/mutation.csv``.

`make mutate` runs mutmut over the checker's core (``[tool.mutmut]`` in
pyproject.toml), which leaves each mutant's result under ``mutants/``. This
reads them, sets apart the mutants listed as equivalent in
``benchmarks/mutation_equivalent.txt`` (no observable change: they cannot be
killed), writes one row per other surviving mutant and prints::

    mutation: killed K, survived S, equivalent E, survival rate R% (unkilled, equivalents
    included: U%)

with ``R = S / (K + S)`` and ``U = (S + E) / (K + S + E)``. A mutant that no selected test runs ("no tests") or
that ended oddly ("suspicious") counts as surviving; a timeout or a crash as
killed (the tests did not pass).

mutmut names a mutant by its function and a number (``gradcheck.core.x__check__mutmut_12``),
which shift when the function changes. The equivalents file keys each mutant
by what it does instead: a hash of its module, function, and the line it
changes before and after (``key`` in the CSV, and ``--key NAME`` prints one).
An entry whose key matches no surviving mutant is stale (the code changed, or
a test now kills it): it is reported, and counts for nothing.

Run as ``python -m benchmarks.mutation`` from the repository's root, after
``mutmut run``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import difflib
import hashlib
import json
import re
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

#: The survival rate the core must stay under (issue 13).
GOAL = 10.0
EQUIVALENTS = Path(__file__).with_name("mutation_equivalent.txt")
COLUMNS = ["module", "function", "mutant", "key", "line", "diff", "status"]
#: mutmut's statuses, as this report counts them.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
SURVIVED = {"survived", "no tests", "suspicious"}
#: mutmut's exit code for "skipped": how :func:`set_apart` marks a listed equivalent
#: so that ``mutmut run`` does not spend its tests' time on it.
SKIPPED = 34


@dataclass(frozen=True)
class Mutant:
    module: str
    function: str
    name: str
    key: str
    line: int
    diff: str
    status: str


def _config(root):
    return tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]


def _function(name):
    """``x__check`` / ``xǁ_Tensorǁevaluate`` (mutmut's mangled names) as ``_check`` /
    ``_Tensor.evaluate``."""
    mangled = name.rpartition(".")[2].rpartition("__mutmut_")[0]
    if mangled.startswith("xǁ"):
        return ".".join(part for part in mangled[2:].split("ǁ") if part)
    return mangled[2:]


def _spans(source):
    """``{qualified function name: (first line, last line)}`` of a module's source."""
    spans = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                spans[prefix + child.name] = (child.lineno, child.end_lineno)
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(ast.parse(source), "")
    return spans


def _changed(diff):
    """The lines a unified diff removes and adds, each side stripped and joined; and the
    first line it removes."""
    lines = diff.splitlines()
    minus = [s[1:].strip() for s in lines if s.startswith("-") and not s.startswith("---")]
    plus = [s[1:].strip() for s in lines if s.startswith("+") and not s.startswith("+++")]
    return " ".join(minus), " ".join(plus), (minus or [""])[0]


def mutant_key(module, function, before, after, occurrence=0):
    """The stable key of a mutant: what it changes, not mutmut's number for it."""
    text = f"{module}:{function}:{occurrence}:{before}\n{after}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _line(source_lines, span, first):
    """The number of the source line ``first`` within a function's span, or the span's first."""
    start, end = span
    for number in range(start, end + 1):
        if first and source_lines[number - 1].strip() == first:
            return number
    return start


def _diffs(root, relative, names):
    """``{mutant: (removed, added, first removed line)}`` for ``names`` of one module.

    Read straight from mutmut's mutated copy through its index of function spans
    (``mutants/<path>.spans``), in one pass over the file: asking mutmut for one diff at
    a time reads the whole copy each time (seconds per mutant on the core).
    """
    from mutmut.mutation.data import MutantLineSpans

    spans = MutantLineSpans.load(relative)
    if spans is None or not names:
        return {}
    wanted = sorted({_generated(name) for name in names} | {_original(name) for name in names},
                    key=lambda n: spans.span_by_function_name[n].start)
    sources = dict(zip(wanted, spans.read_function_sources(wanted)))
    found = {}
    for name in names:
        original, mutant = _original(name), _generated(name)
        before = sources[original].replace(original, "NAME").splitlines()
        after = sources[mutant].replace(mutant, "NAME").splitlines()
        found[name] = _changed("\n".join(difflib.unified_diff(before, after, lineterm="")))
    return found


def _generated(name):
    """The name of a mutant's function in mutmut's copy (``x__check__mutmut_12``)."""
    return name.rpartition(".")[2]


def _original(name):
    """The name of the unmutated copy of a mutant's function (``x__check__mutmut_orig``)."""
    return _generated(name).rpartition("__mutmut_")[0] + "__mutmut_orig"


def read_mutants(root, wanted=None):
    """Every mutant of the core with its status (``wanted(module, function, status)``: only
    those get a key, a line and a diff).

    Returns a list of :class:`Mutant`.
    """
    from mutmut.stats import status_by_exit_code

    found = []
    for pattern in _config(root)["only_mutate"]:
        for path in sorted(root.glob(pattern)):
            relative = path.relative_to(root).as_posix()
            meta = root / "mutants" / (relative + ".meta")
            if not meta.exists():
                continue
            module = relative[:-3].replace("/", ".")
            source = path.read_text("utf-8")
            spans, source_lines = _spans(source), source.splitlines()
            codes = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
            names = sorted(codes, key=_mutant_number)
            statuses = {name: status_by_exit_code[codes[name]] for name in names}
            keep = [name for name in names if wanted is None
                    or wanted(module, _function(name), statuses[name])]
            diffs = _diffs(root, relative, keep)
            seen = Counter()
            for name in names:
                function, status = _function(name), statuses[name]
                if name not in diffs:
                    found.append(Mutant(module, function, name, "", 0, "", status))
                    continue
                before, after, first = diffs[name]
                occurrence = seen[(function, before, after)]
                seen[(function, before, after)] += 1
                line = _line(source_lines, spans.get(function, (1, 1)), first)
                found.append(Mutant(module, function, name,
                                    mutant_key(module, function, before, after, occurrence),
                                    line, f"{before}  →  {after}", status))
    return found


def _mutant_number(name):
    head, _, number = name.rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


_ENTRY = re.compile(r"^(?P<key>[0-9a-f]{12})\s+(?P<name>\S+)\s+(?P<reason>\S.*)$")


def read_equivalents(path):
    """``{key: (mutant name when listed, reason)}`` from the equivalents file.

    One entry a line: the key, the mutant's name when it was listed (for the
    reader: names shift), and the reason. ``#`` starts a comment.
    """
    entries = {}
    if not path.exists():
        return entries
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        text = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not text:
            continue
        match = _ENTRY.match(text)
        if not match:
            raise SystemExit(f"{path}:{number}: expected 'KEY MUTANT REASON', got {raw!r}")
        entries[match["key"]] = (match["name"], match["reason"])
    return entries


def summarize(mutants, equivalents):
    """Counts, the surviving mutants (equivalents set apart), and the stale entries."""
    survivors, equivalent, counts = [], [], Counter()
    for m in mutants:
        if m.status in KILLED:
            counts["killed"] += 1
        elif m.status == "skipped" and m.key in equivalents:
            equivalent.append(m)        # set apart before the run: listed, not run
        elif m.status in SURVIVED:
            if m.key in equivalents:
                equivalent.append(m)
            else:
                survivors.append(m)
        else:
            counts["unchecked"] += 1
    matched = {m.key for m in equivalent}
    unchecked = {m.key for m in mutants if m.status not in KILLED | SURVIVED and m.key}
    unchecked |= {m.name for m in mutants if m.status not in KILLED | SURVIVED}
    killed_keys = {m.key: m for m in mutants if m.status in KILLED and m.key}
    stale = []
    for key, (name, reason) in equivalents.items():
        if key in matched or key in unchecked or name in unchecked:
            continue        # equivalent, or not run this time (a subset: MUTANTS=...)
        why = ("now killed by a test" if key in killed_keys
               else "matches no mutant: its code changed")
        stale.append(f"{key} {name}: {why} (listed as: {reason})")
    counts["survived"], counts["equivalent"] = len(survivors), len(equivalent)
    return counts, survivors, stale


def set_apart(root, mutants, equivalents):
    """Mark the listed equivalents among ``mutants`` (:func:`read_mutants`, before any
    runs) as skipped in mutmut's results under ``root / "mutants"``.

    An equivalent survives by definition, after running every test that reaches it (the
    slowest kind of mutant); skipped, it costs nothing and is still counted as
    equivalent, or reported stale when its code changed (its key then matches no
    mutant). ``MUTANTS=...`` names mutants explicitly, and mutmut runs those anyway:
    the way to see whether a test now kills a listed one.

    Returns the number of mutants set apart.
    """
    by_module = {}
    for m in mutants:
        if m.key in equivalents and m.status == "not checked":
            by_module.setdefault(m.module, []).append(m.name)
    for module, names in by_module.items():
        meta = root / "mutants" / (module.replace(".", "/") + ".py.meta")
        data = json.loads(meta.read_text("utf-8"))
        data["exit_code_by_key"].update(dict.fromkeys(names, SKIPPED))
        meta.write_text(json.dumps(data, indent=4), "utf-8")
    return sum(map(len, by_module.values()))


def write_csv(survivors, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for m in sorted(survivors, key=lambda m: (m.module, m.line, _mutant_number(m.name))):
            writer.writerow([m.module, m.function, m.name, m.key, m.line, m.diff, m.status])


def summary_line(counts):
    """The summary line, and the survival rate ``S / (K + S)``; the line also gives the
    share of all mutants that no test kills, equivalents included, ``(S + E) / (K + S + E)``."""
    killed, survived, equivalent = counts["killed"], counts["survived"], counts["equivalent"]
    rate = 100.0 * survived / max(killed + survived, 1)
    unkilled = 100.0 * (survived + equivalent) / max(killed + survived + equivalent, 1)
    return (f"mutation: killed {killed}, survived {survived}, equivalent {equivalent}, "
            f"survival rate {rate:.1f}% (unkilled, equivalents included: {unkilled:.1f}%)"), rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/mutation.csv", type=Path)
    parser.add_argument("--equivalents", default=EQUIVALENTS, type=Path)
    parser.add_argument("--root", default=Path.cwd(), type=Path)
    parser.add_argument("--key", nargs="*", metavar="MUTANT",
                        help="print the key, line and diff of these mutants and stop")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    sys.path.insert(0, str(root))
    if args.key:
        names = set(args.key)
        for m in read_mutants(root, lambda module, function, status: True):
            if m.name in names:
                print(f"{m.key} {m.name}  line {m.line}: {m.diff}  [{m.status}]")
        return 0
    equivalents = read_equivalents(args.equivalents)
    functions = {_function(name) for name, _ in equivalents.values()}

    def wanted(module, function, status):
        """Keys for every survivor, and for killed mutants of functions with listed ones."""
        return status not in KILLED or function in functions

    mutants = read_mutants(root, wanted)
    if not mutants:
        print("mutation: no results under mutants/ (run `make mutate`)", file=sys.stderr)
        return 2
    counts, survivors, stale = summarize(mutants, equivalents)
    write_csv(survivors, args.out)
    by_status = Counter(m.status for m in survivors)
    line, rate = summary_line(counts)
    print(f"{args.out}: {len(survivors)} surviving mutants"
          + (f" ({', '.join(f'{n} {s}' for s, n in sorted(by_status.items()))})"
             if survivors else ""))
    for entry in stale:
        print(f"stale equivalent: {entry}")
    if counts["unchecked"]:
        print(f"{counts['unchecked']} mutants not checked (a subset, MUTANTS=..., or an "
              "interrupted run)")
    print(line + f" (goal ≤ {GOAL:g}%: {'met' if rate <= GOAL else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
