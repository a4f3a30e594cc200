"""Tables of check results, with pandas, written as CSV: the only module that imports pandas.

Two tables. The *detailed* one has a row per case × tensor × oracle (what one
call of check_layer compared); the *summary* has a row per layer × gradient ×
oracle with the worst relative error over the cases the run actually made.
README lists every column.

:func:`write_readable_report` reads the CSVs back from a reports folder, checks
each one against its columns and their types first (:class:`DamagedReportError`
names the file and the line of the first problem), and writes what a person
reads: ``summary.md`` and the plots ``errors.png`` and ``bench.png``.
:func:`read_detailed` reads the detailed CSV back with its documented dtypes.

pandas and matplotlib are imported only inside the functions that use them,
through :func:`import_pandas` and :func:`import_pyplot` (the Agg backend), which
raise :class:`MissingExtraError` saying which extra to install.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
import re
from pathlib import Path

__all__ = ["DETAILED_CSV", "SUMMARY_CSV", "DETECTION_CSV", "SUMMARY_MD", "ERRORS_PNG",
           "BENCH_PNG", "detailed_table", "summary_table", "write_reports", "format_summary",
           "detection_rates", "detection_by_family", "write_detection", "config_columns",
           "CONFIG_PREFIX", "SUMMARY_ROWS", "INSTALL_REPORT_EXTRA", "CSV_SCHEMAS",
           "write_readable_report", "read_detailed", "read_report_csv", "panel_orders",
           "import_pandas", "import_pyplot", "anonymous_merges",
           "NoReportError", "DamagedReportError", "MissingExtraError"]

DETAILED_CSV = "gradcheck_detailed.csv"
SUMMARY_CSV = "gradcheck_summary.csv"
DETECTION_CSV = "detection.csv"
BENCH_LAYERS_CSV = "bench_layers.csv"
BENCH_CHECKER_CSV = "bench_checker.csv"
SUMMARY_MD = "summary.md"
ERRORS_PNG = "errors.png"
BENCH_PNG = "bench.png"
#: Nonzero relative errors below this are drawn at it on the log axis of errors.png.
ERROR_FLOOR = 1e-18
#: The goals of the benchmarks (benchmarks/bench_layers.py, benchmarks/bench_checker.py).
GOAL_GEOMEAN, GOAL_WORST = 1.0, 2.0
GOAL_SPEEDUP, GOAL_FAST_SECONDS = 100.0, 1.0
#: Rows of the summary printed in the terminal: those closest to their tolerance.
SUMMARY_ROWS = 20
#: The command that installs what the reports need (pandas and matplotlib).
INSTALL_REPORT_EXTRA = "pip install 'gradcheck[report]'"
#: Columns of the detection table, in order.
DETECTION_COLUMNS = ["case", "family", "kind", "oracle", "expected_verdict", "passed_check",
                     "as_expected", "diagnosis"]

#: The fixed columns of the detailed table, in order; the ``config.<key>`` columns of the
#: cases' configuration keys come right after ``config`` (see :func:`detailed_table`).
DETAILED_COLUMNS = [
    "test", "layer", "config", "seed", "tensor", "gradient", "oracle", "shape", "size",
    "max_rel_error", "max_abs_error", "tolerance", "mismatched", "excluded", "nondifferentiable",
    "tied", "method", "plan", "unjudged", "passed", "forward_calls", "self_checks", "reproduce",
]
#: Columns of the summary table, in order.
SUMMARY_COLUMNS = [
    "layer", "gradient", "oracle", "cases", "max_rel_error", "median_rel_error",
    "max_abs_error", "tolerance", "excluded", "nondifferentiable", "tied", "methods",
    "failed_cases",
    "passed",
]

# What a cell of a column may hold (see CSV_SCHEMAS): "text" anything ("" too), "name"
# nonempty text, "int" an integer, "count" an integer ≥ 0, "float?" a number or empty (NaN;
# nan and inf are numbers), "error" a number ≥ 0, nan and inf included, never empty (the
# writer writes a NaN error as nan), "tolerance" a positive number, "bool" True or False,
# "config" a JSON object or empty, a tuple: one of its texts.
_DETAILED_KINDS = {
    "test": "text", "layer": "name", "config": "config", "seed": "int", "tensor": "name",
    "gradient": "name", "oracle": "name", "shape": "name", "size": "count",
    "max_rel_error": "error", "max_abs_error": "error", "tolerance": "tolerance",
    "mismatched": "count", "excluded": "count", "nondifferentiable": "count", "tied": "count",
    "method": "name", "plan": "text", "unjudged": "text", "passed": "bool",
    "forward_calls": "count", "self_checks": "text", "reproduce": "text",
}
_SUMMARY_KINDS = {
    "layer": "name", "gradient": "name", "oracle": "name", "cases": "count",
    "max_rel_error": "error", "median_rel_error": "error", "max_abs_error": "error",
    "tolerance": "tolerance", "excluded": "count", "nondifferentiable": "count", "tied": "count",
    "methods": "text", "failed_cases": "count", "passed": "bool",
}
#: The columns of errors: written with NaN as ``nan`` (not an empty cell), see write_reports.
_ERROR_COLUMNS = ("max_rel_error", "median_rel_error", "max_abs_error")
_DETECTION_KINDS = {
    "case": "name", "family": "text", "kind": ("bug", "correct", "hazard"), "oracle": "name",
    "expected_verdict": ("fail", "pass", "pass, hazard reported"), "passed_check": "bool",
    "as_expected": "bool", "diagnosis": "text",
}
#: Per CSV the report reads, its required columns and what their cells may hold; other
#: columns may be there too (their types are inferred, see :func:`read_report_csv`). Of
#: the benchmarks' CSVs only the columns the report uses are required.
CSV_SCHEMAS = {
    DETAILED_CSV: _DETAILED_KINDS,
    SUMMARY_CSV: _SUMMARY_KINDS,
    DETECTION_CSV: _DETECTION_KINDS,
    BENCH_LAYERS_CSV: {"layer": "name", "shape": "text", "time_ratio": "float?"},
    BENCH_CHECKER_CSV: {"case": "name", "method": "name", "seconds": "float?"},
}


# ------------------------------------------------------------------------ optional imports

class MissingExtraError(ModuleNotFoundError):
    """pandas or matplotlib, which the reports need, cannot be imported.

    The message says what to install: ``pip install 'gradcheck[report]'``.
    """


def _import_extra(module, needed_by):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        raise MissingExtraError(
            f"{needed_by} need {top}, which cannot be imported ({error}); install the "
            f"report extra: {INSTALL_REPORT_EXTRA}", name=top) from error


def import_pandas():
    """Import and return pandas, which the CSV reports and summary.md need.

    Returns
    -------
    module
        ``pandas``.

    Raises
    ------
    MissingExtraError
        When pandas cannot be imported; the message says ``pip install 'gradcheck[report]'``.
    """
    return _import_extra("pandas", "the gradcheck reports (the CSVs and summary.md)")


def import_pyplot():
    """Import matplotlib with the Agg backend and return ``matplotlib.pyplot``.

    Returns
    -------
    module
        ``matplotlib.pyplot``.

    Raises
    ------
    MissingExtraError
        When matplotlib cannot be imported; the message says
        ``pip install 'gradcheck[report]'``.
    """
    needed_by = "the plots of the report (errors.png, bench.png)"
    _import_extra("matplotlib", needed_by).use("Agg")
    return _import_extra("matplotlib.pyplot", needed_by)


#: Prefix of the columns that spread the ``config`` JSON out, one per configuration key.
CONFIG_PREFIX = "config."


def _config_dict(text):
    """The ``config`` JSON of a row as a dict; {} when empty, not JSON or not an object."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _config_cell(value):
    """A configuration value as a cell: int/float/bool/str as they are, anything else as JSON."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def config_columns(configs):
    """The ``config.<key>`` columns of the ``config`` JSON texts ``configs``, as a dict.

    One column per key of the union over the rows, in sorted key order; a cell
    is None where its row lacks the key (an empty cell in the CSV).
    """
    dicts = [_config_dict(text) for text in configs]
    keys = sorted({key for d in dicts for key in d})
    return {CONFIG_PREFIX + key: [_config_cell(d[key]) if key in d else None for d in dicts]
            for key in keys}


def detailed_table(rows):
    """Return the detailed table of ``rows`` (dicts from ``CheckResult.to_rows()`` plus
    ``test`` and ``config``) as a DataFrame.

    Its columns are :data:`DETAILED_COLUMNS` with, right after ``config``, one
    ``config.<key>`` column per key of the rows' configurations (see
    :func:`config_columns`): these vary with the cases.
    """
    pd = import_pandas()
    frame = pd.DataFrame(list(rows), columns=DETAILED_COLUMNS)
    frame["reproduce"] = frame["reproduce"].astype(object).fillna("")
    frame = frame.astype({"size": "int64", "mismatched": "int64", "excluded": "int64",
                          "nondifferentiable": "int64", "tied": "int64",
                          "forward_calls": "int64",
                          "seed": "int64", "passed": "bool", "max_rel_error": "float64",
                          "max_abs_error": "float64", "tolerance": "float64"})
    spread = config_columns(frame["config"])
    if not spread:
        return frame
    # object dtype: each cell is written as it is (no float format, no 1 -> 1.0 on a gap).
    extra = pd.DataFrame({name: pd.Series(cells, index=frame.index, dtype=object)
                          for name, cells in spread.items()})
    at = DETAILED_COLUMNS.index("config") + 1
    return pd.concat([frame.iloc[:, :at], extra, frame.iloc[:, at:]], axis=1)


def summary_table(detailed):
    """Return the worst error per layer × gradient × oracle over the detailed table's cases.

    Parameters
    ----------
    detailed : DataFrame
        As returned by :func:`detailed_table`.

    Returns
    -------
    DataFrame
        Columns :data:`SUMMARY_COLUMNS`; ``passed`` is true when every case passed.
    """
    grouped = detailed.groupby(["layer", "gradient", "oracle"], sort=False)
    summary = grouped.agg(
        cases=("max_rel_error", "size"),
        max_rel_error=("max_rel_error", "max"),
        median_rel_error=("max_rel_error", "median"),
        max_abs_error=("max_abs_error", "max"),
        tolerance=("tolerance", "max"),
        excluded=("excluded", "sum"),
        nondifferentiable=("nondifferentiable", "sum"),
        tied=("tied", "sum"),
        methods=("method", lambda m: "+".join(sorted(set(m)))),
        failed_cases=("passed", lambda passed: int((~passed).sum())),
    ).reset_index()
    summary["passed"] = summary["failed_cases"] == 0
    return summary[SUMMARY_COLUMNS].sort_values(["layer", "oracle", "gradient"], ignore_index=True)


def detection_rates(detections):
    """Return lines with the detection rate and the false-alarm rate, per oracle.

    Parameters
    ----------
    detections : list of dict
        Rows with ``kind``, ``oracle``, ``passed_check`` (see
        :meth:`gradcheck.pytest_plugin.Recorder.record_detection`).
    """
    pd = import_pandas()
    table = pd.DataFrame(detections, columns=DETECTION_COLUMNS)
    lines = []
    for oracle, rows in table.groupby("oracle", sort=False):
        bugs, correct = rows[rows["kind"] == "bug"], rows[rows["kind"] == "correct"]
        hazards = rows[rows["kind"] == "hazard"]
        caught, alarms = int((~bugs["passed_check"]).sum()), int((~correct["passed_check"]).sum())
        reported = int(hazards["as_expected"].astype(bool).sum())
        lines.append(
            f"{oracle}: bugs caught {caught} / {len(bugs)} "
            f"({100.0 * caught / max(len(bugs), 1):.1f}%), false alarms {alarms} / {len(correct)} "
            f"({100.0 * alarms / max(len(correct), 1):.1f}%)"
            + (f", hazards passed and reported {reported} / {len(hazards)}" if len(hazards)
               else ""))
        missed = list(bugs.loc[bugs["passed_check"], "case"]) + \
            list(correct.loc[~correct["passed_check"], "case"]) + \
            list(hazards.loc[~hazards["as_expected"].astype(bool), "case"])
        if missed:
            lines.append(f"  unexpected verdicts: {', '.join(missed)}")
    return lines


def detection_by_family(detections):
    """Rows ``(family, oracle, bugs, correct, hazards)``: right verdicts as ``"k / n"`` per kind.

    Parameters
    ----------
    detections : DataFrame
        The detection table (:data:`DETECTION_COLUMNS`).
    """
    rows = []
    for (family, oracle), group in detections.groupby(["family", "oracle"], sort=True):
        cells = []
        for kind in ("bug", "correct", "hazard"):
            of_kind = group[group["kind"] == kind]
            cells.append(f"{int(of_kind['as_expected'].astype(bool).sum())} / {len(of_kind)}"
                         if len(of_kind) else "")
        rows.append((family, oracle, *cells))
    return rows


def write_detection(detections, out_dir):
    """Write the detection table as ``DETECTION_CSV`` under ``out_dir``; return its path."""
    pd = import_pandas()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / DETECTION_CSV
    pd.DataFrame(detections, columns=DETECTION_COLUMNS).to_csv(path, index=False)
    return path


def write_reports(rows, out_dir):
    """Write the detailed and summary CSVs of ``rows`` under ``out_dir``.

    Parameters
    ----------
    rows : iterable of dict
    out_dir : str or Path
        Created if missing.

    Returns
    -------
    summary : DataFrame
    paths : tuple of Path
        ``(detailed_csv, summary_csv)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    detailed = detailed_table(rows)
    summary = summary_table(detailed)
    paths = (out / DETAILED_CSV, out / SUMMARY_CSV)
    _errors_as_text(detailed).to_csv(paths[0], index=False, float_format="%.6e")
    _errors_as_text(summary).to_csv(paths[1], index=False, float_format="%.6e")
    return summary, paths


def _errors_as_text(frame):
    """``frame`` with its error columns as ``%.6e`` texts: a NaN error (a NaN gradient) is
    written ``nan``, not as the empty cell pandas writes for NaN, which the reader refuses."""
    return frame.assign(**{name: [f"{value:.6e}" for value in frame[name]]
                           for name in _ERROR_COLUMNS if name in frame.columns})


def anonymous_merges(pairs, quote=""):
    """Lines warning of ``<lambda>`` names checked in more than one test.

    The summary groups by name: the checks of different anonymous functions
    (each named ``<lambda>``) fall in one row. Only merges across tests can be
    seen in a report; two lambdas of one test are merged unseen.

    Parameters
    ----------
    pairs : iterable of (str, str)
        ``(layer, test)`` of each row of the detailed table.
    quote : str, default ""
        Put on both sides of the name (a backquote for Markdown).

    Returns
    -------
    list of str
        One line per such name, naming the tests (at most 3, then how many more).
    """
    tests = {}
    for layer, test in pairs:
        if "<lambda>" in str(layer):
            tests.setdefault(str(layer), set()).add(str(test))
    lines = []
    for layer, seen in sorted(tests.items()):
        if len(seen) > 1:
            ordered = sorted(seen)
            shown = ", ".join(ordered[:3]) + (f" and {len(ordered) - 3} more"
                                              if len(ordered) > 3 else "")
            lines.append(f"{quote}{layer}{quote} merges the checks of {len(ordered)} tests ({shown}): the "
                         "summary groups by name; give each function a name (the name= "
                         "option, or a def)")
    return lines


def _ratio(errors, tolerances):
    """error / tolerance per row; a NaN error (or tolerance) counts as infinitely far over."""
    ratio = errors / tolerances
    return ratio.where(ratio.notna(), math.inf)


def _tolerance_text(tolerance):
    """A tolerance as ``1e-06``, or with three digits when one would round it."""
    short = f"{tolerance:.0e}"
    return short if float(short) == tolerance else f"{tolerance:.2e}"


def _closest_first(summary):
    """The summary with a ``ratio`` column, failed rows first, then largest ratio first."""
    shown = summary.assign(ratio=_ratio(summary["max_rel_error"], summary["tolerance"]))
    return shown.sort_values(["passed", "ratio", "layer", "oracle", "gradient"],
                             ascending=[True, False, True, True, True], ignore_index=True)


#: The columns of the terminal summary: (header, the longest cell shown, right-aligned).
_TERMINAL_COLUMNS = [("layer", 23, False), ("gradient", 9, False), ("oracle", 18, False),
                     ("max rel error", 13, True), ("tolerance", 9, True),
                     ("error/tol", 9, True), ("passed", 9, False)]


def _cut(text, width):
    return text if len(text) <= width else text[:width - 1] + "…"


def format_summary(summary, limit=SUMMARY_ROWS, full_table=None):
    """Return the rows of the summary closest to their tolerance as a table for a terminal.

    Parameters
    ----------
    summary : DataFrame
        The summary table (:func:`summary_table`, columns :data:`SUMMARY_COLUMNS`).
    limit : int or None, default SUMMARY_ROWS
        How many rows to show at most; None shows every row.
    full_table : str or Path, optional
        Where the full table is (the summary CSV), named in the last line when
        rows are left out.

    Returns
    -------
    str
        At most 100 characters wide (longer names are cut with "…"): layer,
        gradient, oracle, worst relative error, tolerance, their ratio (over 1
        fails) and ``yes`` or ``NO k/n`` (k of the n cases failed). Failed rows
        come first, then the largest ratio; when rows are left out, a last line
        says how many and where they are. The seed and the counts of excluded,
        nondifferentiable and tied entries are in the CSVs only.

    Raises
    ------
    ValueError
        When ``limit`` is not a positive integer or None.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"`limit` must be a positive integer or None, got {limit!r}")
    ordered = _closest_first(summary)
    shown = ordered if limit is None else ordered.head(limit)
    cells = [[str(r.layer), str(r.gradient), str(r.oracle), f"{r.max_rel_error:.2e}",
              _tolerance_text(r.tolerance), f"{r.ratio:.2e}",
              "yes" if r.passed else f"NO {r.failed_cases}/{r.cases}"]
             for r in shown.itertuples()]
    widths = [min(cap, max([len(header)] + [len(row[i]) for row in cells]))
              for i, (header, cap, _) in enumerate(_TERMINAL_COLUMNS)]
    lines = []
    for row in [[header for header, _, _ in _TERMINAL_COLUMNS]] + cells:
        parts = [_cut(cell, width).rjust(width) if right else _cut(cell, width).ljust(width)
                 for cell, width, (_, _, right) in zip(row, widths, _TERMINAL_COLUMNS)]
        lines.append("  ".join(parts).rstrip())
    left_out = len(ordered) - len(shown)
    if left_out:
        lines.append(f"... {left_out} more row(s), further from their tolerance"
                     + (f"; all {len(ordered)} rows in {full_table}" if full_table else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------- reading the CSVs

class NoReportError(FileNotFoundError):
    """The folder holds none of the gradcheck CSVs (detailed, summary, detection)."""


class DamagedReportError(ValueError):
    """A CSV of a reports folder that cannot be read as its table.

    Attributes
    ----------
    path : Path
        The file.
    line : int or None
        The line of the first problem, 1-based as an editor shows it (for a row
        spread over several lines by a quoted field, the line it starts on);
        None when the problem is the file as a whole (a directory, unreadable).
    problem : str
        What is wrong there.
    """

    def __init__(self, path, line, problem):
        self.path, self.line, self.problem = Path(path), line, problem
        super().__init__(f"{path}:{line}: {problem}" if line is not None
                         else f"{path}: {problem}")


_INT_TEXT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT_TEXT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|nan)\Z",
                         re.IGNORECASE)
_TRUE_TEXTS, _FALSE_TEXTS = ("True", "true", "TRUE"), ("False", "false", "FALSE")
_INT64_MAX = 2 ** 63 - 1


def _is_int(text):
    return bool(_INT_TEXT.match(text)) and abs(int(text)) <= _INT64_MAX


def _is_bool(text):
    return text in _TRUE_TEXTS or text in _FALSE_TEXTS


def _cell_problem(kind, text):
    """Why ``text`` cannot be a cell of ``kind`` (see :data:`CSV_SCHEMAS`), or None."""
    if kind == "text":
        return None
    if kind == "name":
        return None if text else "is empty"
    if kind == "int":
        return None if _is_int(text) else "is not an integer"
    if kind == "count":
        if not _is_int(text):
            return "is not an integer"
        return None if int(text) >= 0 else "is negative (a count or size is ≥ 0)"
    if kind == "float?":
        return None if text == "" or _FLOAT_TEXT.match(text) else "is not a number"
    if kind == "error":
        if text == "":
            return "is empty: an error is a number (nan when there is none)"
        if not _FLOAT_TEXT.match(text):
            return "is not a number"
        return None if not float(text) < 0 else "is negative (an error is ≥ 0)"
    if kind == "config":
        return _config_problem(text)
    if kind == "tolerance":
        ok = bool(_FLOAT_TEXT.match(text)) and 0 < float(text) < math.inf
        return None if ok else "is not a positive number"
    if kind == "bool":
        return None if _is_bool(text) else "is not True or False"
    return None if text in kind else f"is not one of {', '.join(kind)}"


def _config_problem(text):
    """Why ``text`` cannot be a ``config`` cell (a JSON object, or empty), or None."""
    if text == "":
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"is not JSON ({getattr(error, 'msg', error)}); a configuration is a JSON object"
    if not isinstance(value, dict):
        return (f"is JSON but a {type(value).__name__}, not an object; a configuration is a "
                "JSON object")
    return None


def _column(pd, kind, texts):
    """The cells ``texts`` of a column of ``kind`` (already checked) as a pandas array."""
    import numpy as np

    if kind in ("int", "count"):
        return np.array([int(t) for t in texts], dtype=np.int64)
    if kind in ("float?", "error", "tolerance"):
        return np.array([float(t) if t else math.nan for t in texts], dtype=np.float64)
    if kind == "bool":
        return np.array([t in _TRUE_TEXTS for t in texts], dtype=bool)
    if kind is None:
        return _inferred_column(pd, texts)
    return pd.array(texts, dtype="str")


def _inferred_column(pd, texts):
    """A column not in the schema (``config.<key>``, a benchmark's): int64 (Int64 when some
    cells are empty), float64, bool (boolean with gaps) or, else, strings with "" for empty.
    Integers beyond int64 stay exact: an object column of Python ints (None for empty)."""
    import numpy as np

    filled = [t for t in texts if t != ""]
    gaps = len(filled) < len(texts)
    if filled and all(_is_int(t) for t in filled):
        if not gaps:
            return np.array([int(t) for t in texts], dtype=np.int64)
        return pd.array([int(t) if t else None for t in texts], dtype="Int64")
    if filled and all(_INT_TEXT.match(t) for t in filled):   # some beyond int64: exact
        return pd.Series([int(t) if t else None for t in texts], dtype=object).array
    if filled and all(_FLOAT_TEXT.match(t) for t in filled):
        return np.array([float(t) if t else math.nan for t in texts], dtype=np.float64)
    if filled and all(_is_bool(t) for t in filled):
        if not gaps:
            return np.array([t in _TRUE_TEXTS for t in texts], dtype=bool)
        return pd.array([(t in _TRUE_TEXTS) if t else None for t in texts], dtype="boolean")
    return pd.array(texts, dtype="str")


def _shown(text, width=40):
    return repr(_cut(text, width))


def _records(path):
    """``(line, fields)`` of each nonblank row of the CSV at ``path``: the line it starts on."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DamagedReportError(path, None, f"cannot be read ({error.strerror or error})"
                                 ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DamagedReportError(path, line, f"not UTF-8 text (byte {data[error.start]:#04x}); "
                                             "is this a CSV written by gradcheck?") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return records
        except csv.Error as error:
            if "unexpected end of data" in str(error):
                problem = ("a quoted field opened in the row starting on this line is never "
                           "closed: the file ends inside the quotes (truncated, or a quote "
                           "left open)")
            else:
                problem = (f"the row starting on this line is not valid CSV ({error}, "
                           f"line {reader.line_num}; a quote left open?)")
            raise DamagedReportError(path, start, problem) from None
        if fields:   # a blank line, as pandas, is no row
            records.append((start, reader.line_num, fields))


def read_report_csv(path, schema=None):
    """Read a CSV of a reports folder, checked against its columns and their types.

    Every line is checked before anything is returned: the header must have
    the required columns of ``schema``, each row as many fields as the
    header, and each required cell the type of its column; the file must
    have at least one row.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    schema : dict, optional
        Required columns and what their cells may hold, as the values of
        :data:`CSV_SCHEMAS`; default: the schema of the file's name there.

    Returns
    -------
    DataFrame
        The columns in the file's order: the required ones as their kind says
        (int64, float64 with NaN for an empty number, bool, strings with ""
        for empty), the others inferred: int64 (Int64 when some cells are
        empty), float64, bool (boolean when some are empty), else strings.

    Raises
    ------
    DamagedReportError
        Naming the file, the line (1-based) and what is wrong there.
    ValueError
        When ``schema`` is not given and the file's name is not one of
        :data:`CSV_SCHEMAS`.
    """
    path = Path(path)
    if schema is None:
        if path.name not in CSV_SCHEMAS:
            raise ValueError(f"`path` {str(path)!r}: no schema for a file named {path.name!r} "
                             f"(known: {', '.join(CSV_SCHEMAS)}); pass `schema`")
        schema = CSV_SCHEMAS[path.name]
    pd = import_pandas()
    records = _records(path)
    if not records:
        raise DamagedReportError(path, 1, "the file is empty: no header line, no rows")
    header_line, _, header = records[0]
    seen = set()
    for name in header:
        if name in seen:
            raise DamagedReportError(path, header_line, f"the column {name!r} is there twice")
        seen.add(name)
    missing = [name for name in schema if name not in seen]
    if missing:
        names = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6
                                          else "")
        raise DamagedReportError(
            path, header_line, f"the header lacks the column(s) {names} that {path.name} has "
                               f"(the header reads {_shown(','.join(header), 60)})")
    if len(records) == 1:
        raise DamagedReportError(path, header_line,
                                 "no rows: the file has its header line and nothing after it")
    kinds = [schema.get(name) for name in header]
    for number, (start, end, fields) in enumerate(records[1:], 1):
        if len(fields) != len(header):
            cut = len(fields) < len(header) and number == len(records) - 1
            problem = (f"{len(fields)} field(s), the header (line {header_line}) has "
                       f"{len(header)}" + (": the file ends inside this row (truncated?)"
                                           if cut else ""))
            if end > start:
                problem += f"; the row runs on to line {end} (a quote left open?)"
            raise DamagedReportError(path, start, problem)
        for name, kind, text in zip(header, kinds, fields):
            problem = None if kind is None else _cell_problem(kind, text)
            if problem:
                raise DamagedReportError(path, start, f"column {name!r}: " + (
                    problem if text == "" else f"{_shown(text)} {problem}"))
    columns = {name: _column(pd, kind, [fields[i] for _, _, fields in records[1:]])
               for i, (name, kind) in enumerate(zip(header, kinds))}
    return pd.DataFrame(columns)


def read_detailed(path):
    """Read ``gradcheck_detailed.csv`` back with the dtypes of its columns.

    Parameters
    ----------
    path : str or Path
        The detailed CSV (:data:`DETAILED_CSV`).

    Returns
    -------
    DataFrame
        The text columns (``test``, ``config``, ``plan``, ``self_checks``,
        ``reproduce``, …) as strings with "" for an empty cell; ``seed``,
        ``size`` and the counts as int64; the errors and ``tolerance`` as
        float64; ``passed`` as bool. Each ``config.<key>`` column as its
        cells are: int64 (Int64 when some rows lack the key; Python ints, object
        dtype, when one is beyond int64), float64, bool (boolean when some lack
        it), else strings ("" where a row lacks the key, ``null`` for a None
        value). A key whose values differ in type across rows (``True``, ``1``,
        ``"True"``) gives strings ("True", "1", "True"); an empty string reads as
        a missing key: the ``config`` JSON tells them apart.

    Raises
    ------
    DamagedReportError
        When the file is not a detailed table: names the file, the line and
        what is wrong there.
    """
    return read_report_csv(path, CSV_SCHEMAS[DETAILED_CSV])


# ---------------------------------------------------------------------- for people

def _closeness(detailed):
    """Per oracle × layer: the worst case (largest error / tolerance), sorted closest first.

    Columns ``oracle``, ``layer``, ``gradient`` (of the worst row), ``cases``,
    ``failed_cases``, ``max_rel_error``, ``tolerance``, ``ratio``.
    """
    rows = detailed.assign(ratio=_ratio(detailed["max_rel_error"], detailed["tolerance"]))
    keys = ["oracle", "layer"]
    worst = rows.loc[rows.groupby(keys, sort=False)["ratio"].idxmax()]
    cases = _cases(detailed).groupby(keys, sort=False).agg(
        cases=("max_rel_error", "size"), failed_cases=("passed", lambda p: int((~p).sum())))
    worst = worst.merge(cases.reset_index(), on=keys)
    return worst[["oracle", "layer", "gradient", "cases", "failed_cases", "max_rel_error",
                  "tolerance", "ratio"]].sort_values(
        ["oracle", "ratio", "layer"], ascending=[True, False, True], ignore_index=True)


def _cases(detailed):
    """One row per case (one check_layer call) and oracle: its worst error over the tensors.

    A case is identified by ``test``, ``layer``, ``config``, ``seed`` and
    ``forward_calls``; ``passed`` is false when any tensor failed.
    """
    keys = ["test", "layer", "config", "seed", "forward_calls", "oracle"]
    frame = detailed.copy()
    frame[["test", "config"]] = frame[["test", "config"]].fillna("")
    return frame.groupby(keys, sort=False).agg(
        max_rel_error=("max_rel_error", "max"), tolerance=("tolerance", "max"),
        passed=("passed", "all")).reset_index()


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def bench_goal_lines(bench_layers=None, bench_checker=None):
    """Return the goal lines of the benchmarks' CSVs (DataFrames; either may be None)."""
    lines = []
    if bench_layers is not None and len(bench_layers):
        for layer, rows in bench_layers.groupby("layer", sort=False):
            ratios = [r for r in rows["time_ratio"] if r > 0 and math.isfinite(r)]
            if not ratios:
                continue
            geo, worst = _geomean(ratios), max(ratios)
            met = geo <= GOAL_GEOMEAN and worst <= GOAL_WORST
            lines.append(f"{layer}: geometric-mean time ratio ours / torch {geo:.2f} "
                         f"(goal ≤ {GOAL_GEOMEAN:g}), worst {worst:.2f} (goal ≤ {GOAL_WORST:g}): "
                         + ("goal met" if met else "**goal not met**"))
    if bench_checker is not None and len(bench_checker):
        def find(case, method):
            hit = bench_checker[(bench_checker["case"] == case)
                                & (bench_checker["method"] == method)
                                & bench_checker["seconds"].notna()]
            return hit.iloc[0] if len(hit) else None

        ours, slow = find("conv", "ours_full"), find("conv", "torch_slow")
        if ours is not None and slow is not None:
            speedup = slow["seconds"] / ours["seconds"]
            lines.append(f"checker, ours full vs torch.autograd.gradcheck slow on the conv: "
                         f"{speedup:.1f}× faster (goal ≥ {GOAL_SPEEDUP:g}×): "
                         + ("goal met" if speedup >= GOAL_SPEEDUP else "**goal not met**")
                         + f" ({ours['seconds']:.3g} s vs {slow['seconds']:.3g} s)")
        speedups = [f"{case[len('user_'):]} {slow['seconds'] / ours['seconds']:.1f}×"
                    for case in dict.fromkeys(bench_checker["case"].astype(str))
                    if case.startswith("user_")
                    for ours, slow in [(find(case, "ours_full"), find(case, "torch_slow"))]
                    if ours is not None and slow is not None]
        if speedups:
            lines.append("checker on user-style layers (benchmarks/bench_users.py), ours full "
                         "vs torch.autograd.gradcheck slow, times faster: "
                         + ", ".join(speedups) + " (goals in bench_users.md)")
        big = bench_checker[(bench_checker["method"] == "ours_fast")
                            & bench_checker["case"].astype(str).str.endswith("_1e6")
                            & bench_checker["seconds"].notna()]
        if len(big):
            worst = big.loc[big["seconds"].idxmax()]
            lines.append(f"checker, fast mode on a 10^6-entry input: {worst['seconds']:.3f} s, "
                         f"{worst['case']} (goal < {GOAL_FAST_SECONDS:g} s): "
                         + ("goal met" if worst["seconds"] < GOAL_FAST_SECONDS
                            else "**goal not met**"))
    return lines


def _summary_markdown(out, detailed, detections, bench_layers, bench_checker, pictures):
    lines = ["# gradcheck report", ""]
    if detailed is not None and len(detailed):
        cases = _cases(detailed)
        failed = detailed[~detailed["passed"]]
        lines += [
            f"**Checks run: {len(cases)}** (cases × oracle, from {detailed['test'].nunique()} "
            f"tests; {len(detailed)} comparisons of one tensor each). "
            f"**Failed rows: {len(failed)}** of {len(detailed)} in `{DETAILED_CSV}`"
            + (f", in {failed['test'].nunique()} test(s)." if len(failed) else "."),
            *[f"\n> **Note:** {line}." for line in
              anonymous_merges(zip(detailed["layer"], detailed["test"]), quote="`")],
            "",
            "## How close each layer comes to its tolerance",
            "",
            "Per oracle, each layer's worst relative error over its cases and tensors, its "
            "tolerance, and their ratio (a ratio over 1 fails); the layer closest to its "
            "tolerance comes first.",
        ]
        if ERRORS_PNG in pictures:
            lines += ["", f"![per-case errors]({ERRORS_PNG})"]
        for oracle, rows in _closeness(detailed).groupby("oracle", sort=True):
            lines += ["", f"### {oracle}", ""]
            lines += _md_table(
                ["layer", "worst gradient", "max relative error", "tolerance",
                 "error / tolerance", "cases", "failed cases"],
                [(r.layer, r.gradient, f"{r.max_rel_error:.2e}", _tolerance_text(r.tolerance),
                  f"{r.ratio:.2e}", r.cases, r.failed_cases) for r in rows.itertuples()])
        if len(failed):
            lines += ["", "### Failed rows", ""]
            lines += _md_table(
                ["test", "layer", "gradient", "oracle", "max relative error", "tolerance"],
                [(f"`{r.test}`", r.layer, r.gradient, r.oracle, f"{r.max_rel_error:.2e}",
                  _tolerance_text(r.tolerance)) for r in failed.itertuples()])
    else:
        lines += [f"No gradient checks in this folder (no `{DETAILED_CSV}`)."]
    if detections is not None and len(detections):
        lines += ["", "## Detection power", ""]
        lines += [f"- {line.strip()}" for line in detection_rates(detections.to_dict("records"))]
        lines += ["", "Right verdicts per family and oracle (bugs failed, correct layers passed, "
                  "hazards passed and reported):", ""]
        lines += _md_table(["family", "oracle", "bugs", "correct", "hazards"],
                           detection_by_family(detections))
    goals = bench_goal_lines(bench_layers, bench_checker)
    if goals:
        lines += ["", "## Benchmark goals", ""]
        lines += [f"- {line}" for line in goals]
        if BENCH_PNG in pictures:
            lines += ["", f"![time ratios ours / torch]({BENCH_PNG})"]
    return "\n".join(lines) + "\n"


def panel_orders(detailed):
    """The rows of each panel of ``errors.png``, from the top: per oracle, its layers with the
    closest to its tolerance (largest worst error / tolerance) first.

    Parameters
    ----------
    detailed : DataFrame
        The detailed table (:func:`read_detailed`).

    Returns
    -------
    dict
        ``{oracle: [layer, ...]}``, the oracles sorted by name; each panel has
        only the layers checked against its oracle, in its own order.
    """
    return {oracle: list(rows["layer"])
            for oracle, rows in _closeness(detailed).groupby("oracle", sort=True)}


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _drawn(text):
    """``text`` as a label of a plot: control characters (no glyph in any font: matplotlib
    would warn) shown as escapes, ``\\x00``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def _log_ticks(low, high, zero_at=None):
    """Decade ticks from ``low`` to ``high`` (at most ~5, every k-th decade), after ``zero_at``
    when given."""
    first, last = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
    step = max(1, math.ceil((last - first + 1) / 5))
    decades = [10.0 ** k for k in range(last, first - 1, -step)][::-1]
    return decades if zero_at is None else [zero_at, *decades]


def plot_errors(detailed, path):
    """Draw ``errors.png``: per-case max relative errors per layer, one panel per oracle.

    Each panel has its own row order, closest to its tolerance on top
    (:func:`panel_orders`). Errors of exactly 0 are drawn apart, in a column
    at the left edge marked ``0``, with their count; the boxes (quartiles)
    are of the nonzero errors.
    """
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    plt = import_pyplot()
    cases = _cases(detailed)
    orders = panel_orders(detailed)
    rows_max = max(len(order) for order in orders.values())
    label_inches = 0.075 * max(len(layer) for order in orders.values() for layer in order)
    fig, axes = plt.subplots(
        1, len(orders), squeeze=False, layout="constrained",
        figsize=(max(7.5, len(orders) * (4.2 + label_inches) + 0.5),   # 7.5: the suptitle
                 max(3.2, 0.42 * rows_max + 2.0)))
    rng = np.random.default_rng(0)
    for ax, (oracle, order) in zip(axes[0], orders.items()):
        rows = cases[cases["oracle"] == oracle]
        # A relative error is at most 2; inf marks a gradient of the wrong shape, NaN no number.
        errors = np.nan_to_num(rows["max_rel_error"].to_numpy(float), nan=2.0, posinf=2.0)
        errors = np.where(errors == 0, 0.0, np.clip(errors, ERROR_FLOOR, 2.0))
        nonzero = errors[errors > 0]
        tolerances = sorted(rows["tolerance"].unique())
        # The axis takes in the lowest tolerance too, with room for its label on its left,
        # when every error is above it: else the line and the label fall off the panel (and
        # constrained layout collapses the axes to make room for them).
        lowest = nonzero.min() if len(nonzero) else tolerances[0]
        low = 10.0 ** math.floor(math.log10(min(lowest, tolerances[0] / 100 if
                                                tolerances[0] < lowest else lowest)))
        # Exact zeros, if any: a column of their own at the left edge, on a grey band.
        zero_at = low / 10 ** 2.5 if (errors == 0).any() else None
        high = 30 * max(tolerances[-1], errors.max())
        data, positions = [], []
        for i, layer in enumerate(order):
            y = rows_max - 1 - i
            mine = (rows["layer"] == layer).to_numpy()
            err, ok = errors[mine], rows["passed"].to_numpy(bool)[mine]
            zeros = err == 0
            if zeros.any():
                ax.scatter([zero_at], [y], s=22, marker="D", color="tab:blue", zorder=3)
                ax.annotate(f"×{int(zeros.sum())}", (zero_at, y), xytext=(5, 0),
                            textcoords="offset points", va="center", fontsize=7, color="0.25")
            err, ok = err[~zeros], ok[~zeros]
            if not len(err):
                continue
            data.append(err)
            positions.append(y)
            jitter = rng.uniform(-0.18, 0.18, size=len(err))
            ax.scatter(err[ok], y + jitter[ok], s=9, alpha=0.45, color="tab:blue",
                       linewidths=0, zorder=3)
            if (~ok).any():
                ax.scatter(err[~ok], y + jitter[~ok], s=22, color="tab:red", marker="x",
                           zorder=4)
        if data:
            style = dict(positions=positions, widths=0.6, showfliers=False,
                         medianprops={"color": "black"}, boxprops={"color": "0.4"},
                         whiskerprops={"color": "0.4"}, capprops={"color": "0.4"})
            try:   # matplotlib >= 3.10; `vert` is deprecated there
                ax.boxplot(data, orientation="horizontal", **style)
            except TypeError:
                ax.boxplot(data, vert=False, **style)
        # The labels in a band above the top row, each beside its line (on the left), one
        # under the other, on white: no line strikes through them.
        for k, tolerance in enumerate(reversed(tolerances)):
            ax.axvline(tolerance, color="tab:red", linestyle="--", linewidth=1.2, zorder=2)
            ax.annotate(f"tolerance {_tolerance_text(tolerance)}", (tolerance, 1),
                        xycoords=("data", "axes fraction"), xytext=(-3, -3 - 11 * k),
                        textcoords="offset points", ha="right", va="top", zorder=5,
                        color="tab:red", fontsize=8,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
        ax.set_xscale("log")
        if zero_at is None:
            ax.set_xlim(low / 3, high)
        else:
            ax.set_xlim(zero_at / 10 ** 0.7, high)
            ax.axvspan(zero_at / 10 ** 0.7, zero_at * 10 ** 1.2, color="0.93", zorder=0)
        ax.xaxis.set_major_locator(FixedLocator(_log_ticks(low, high, zero_at)))
        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda x, _, zero=zero_at: "0" if x == zero else f"$10^{{{round(math.log10(x))}}}$"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_yticks([rows_max - 1 - i for i in range(len(order))],
                      [_drawn(layer) for layer in order])
        ax.set_ylim(-0.7, rows_max - 0.1 + 0.35 * len(tolerances))
        ax.set_title(_drawn(oracle))
        ax.grid(axis="x", which="major", alpha=0.3)
        ax.set_xlabel("max relative error per case (log scale)")
    axes[0][0].set_ylabel("layer\n(closest to its tolerance on top)")
    fig.suptitle("gradcheck: each case's worst relative error (dots; red × failed), box = "
                 "quartiles of the nonzero errors,\ndashed = tolerance, column 0 = errors of "
                 "exactly 0 (×count); each panel in its own order", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bench(bench_layers, path):
    """Draw ``bench.png``: time ratio ours / torch per shape, with the 1.0 and 2.0 goal lines."""
    plt = import_pyplot()
    rows = bench_layers.reset_index(drop=True)
    labels = [_drawn(f"{r.layer}  {r.shape}") for r in rows.itertuples()]
    colors = {layer: f"C{i}" for i, layer in enumerate(dict.fromkeys(rows["layer"]))}
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.6))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, rows["time_ratio"], color=[colors[layer] for layer in rows["layer"]])
    ax.axvline(GOAL_GEOMEAN, color="black", linestyle="--", linewidth=1,
               label=f"{GOAL_GEOMEAN:g}: goal for the geometric mean")
    ax.axvline(GOAL_WORST, color="tab:red", linestyle="--", linewidth=1,
               label=f"{GOAL_WORST:g}: goal for every shape")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("time ratio ours / torch, forward + backward (< 1: ours faster)")
    ax.set_title("Reference layers against torch (bench_layers.csv)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_readable_report(out_dir):
    """From the CSVs under ``out_dir``, write ``summary.md``, ``errors.png`` and ``bench.png``.

    Reads ``gradcheck_detailed.csv``, ``detection.csv`` and, when present,
    ``bench_layers.csv`` and ``bench_checker.csv``. Every CSV there, the
    summary one too, is checked against its columns and their types
    (:data:`CSV_SCHEMAS`) before anything is written. ``errors.png`` needs the
    detailed CSV, ``bench.png`` the bench_layers one. Without matplotlib only
    ``summary.md`` is written.

    Parameters
    ----------
    out_dir : str or Path
        The reports folder.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    NoReportError
        When ``out_dir`` holds none of the gradcheck CSVs.
    DamagedReportError
        When one of the CSVs is damaged (empty, no rows, cut short, a quote
        left open, a column missing, a cell of the wrong type) or is a
        directory: names the file and the line; nothing is written.
    MissingExtraError
        When pandas is not installed.
    """
    out = Path(out_dir)
    for name in CSV_SCHEMAS:
        path = out / name
        if path.exists() and not path.is_file():
            what = "a directory" if path.is_dir() else "not a regular file"
            raise DamagedReportError(path, None, f"is {what}, not a CSV file")
    if not any((out / name).is_file() for name in (DETAILED_CSV, SUMMARY_CSV, DETECTION_CSV)):
        raise NoReportError(f"no gradcheck CSV ({DETAILED_CSV}, {SUMMARY_CSV} or "
                            f"{DETECTION_CSV}) in {out}")
    import_pandas()
    tables = {name: read_report_csv(out / name, schema)
              for name, schema in CSV_SCHEMAS.items() if (out / name).is_file()}
    detailed, detections = tables.get(DETAILED_CSV), tables.get(DETECTION_CSV)
    bench_layers, bench_checker = tables.get(BENCH_LAYERS_CSV), tables.get(BENCH_CHECKER_CSV)
    written, pictures = [], []
    try:
        import_pyplot()
    except MissingExtraError:
        plotting = False
    else:
        plotting = True
    if plotting and detailed is not None:
        written.append(plot_errors(detailed, out / ERRORS_PNG))
        pictures.append(ERRORS_PNG)
    if plotting and bench_layers is not None:
        written.append(plot_bench(bench_layers, out / BENCH_PNG))
        pictures.append(BENCH_PNG)
    path = out / SUMMARY_MD
    path.write_text(_summary_markdown(out, detailed, detections, bench_layers, bench_checker,
                                      pictures), encoding="utf-8")
    return [path, *written]
