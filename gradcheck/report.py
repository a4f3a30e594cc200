"""Tables of check results, with pandas, written as CSV: the only module that imports pandas.

Two tables. The *detailed* one has a row per case × tensor × oracle (what one
call of check_layer compared); the *summary* has a row per layer × gradient ×
oracle with the worst relative error over the cases the run actually made.
README lists every column.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DETAILED_CSV", "SUMMARY_CSV", "DETECTION_CSV", "detailed_table", "summary_table",
           "write_reports", "format_summary", "detection_rates", "write_detection"]

DETAILED_CSV = "gradcheck_detailed.csv"
SUMMARY_CSV = "gradcheck_summary.csv"
DETECTION_CSV = "detection.csv"
#: Columns of the detection table, in order.
DETECTION_COLUMNS = ["case", "family", "kind", "oracle", "passed_check", "expected", "diagnosis"]

#: Columns of the detailed table, in order.
DETAILED_COLUMNS = [
    "test", "layer", "config", "seed", "tensor", "gradient", "oracle", "shape", "size",
    "max_rel_error", "max_abs_error", "tolerance", "mismatched", "excluded", "nondifferentiable",
    "method", "passed", "forward_calls", "self_checks",
]
#: Columns of the summary table, in order.
SUMMARY_COLUMNS = [
    "layer", "gradient", "oracle", "cases", "max_rel_error", "median_rel_error",
    "max_abs_error", "tolerance", "excluded", "nondifferentiable", "methods", "failed_cases",
    "passed",
]


def detailed_table(rows):
    """Return the detailed table of ``rows`` (dicts from ``CheckResult.to_rows()`` plus
    ``test`` and ``config``) as a DataFrame with :data:`DETAILED_COLUMNS`."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=DETAILED_COLUMNS)
    return frame.astype({"size": "int64", "mismatched": "int64", "excluded": "int64",
                         "nondifferentiable": "int64", "forward_calls": "int64",
                         "seed": "int64", "passed": "bool", "max_rel_error": "float64",
                         "max_abs_error": "float64", "tolerance": "float64"})


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
    import pandas as pd

    table = pd.DataFrame(detections, columns=DETECTION_COLUMNS)
    lines = []
    for oracle, rows in table.groupby("oracle", sort=False):
        bugs, correct = rows[rows["kind"] == "bug"], rows[rows["kind"] == "correct"]
        caught, alarms = int((~bugs["passed_check"]).sum()), int((~correct["passed_check"]).sum())
        lines.append(
            f"{oracle}: bugs caught {caught} / {len(bugs)} "
            f"({100.0 * caught / max(len(bugs), 1):.1f}%), false alarms {alarms} / {len(correct)} "
            f"({100.0 * alarms / max(len(correct), 1):.1f}%)")
        missed = list(bugs.loc[bugs["passed_check"], "case"]) + \
            list(correct.loc[~correct["passed_check"], "case"])
        if missed:
            lines.append(f"  unexpected verdicts: {', '.join(missed)}")
    return lines


def write_detection(detections, out_dir):
    """Write the detection table as ``DETECTION_CSV`` under ``out_dir``; return its path."""
    import pandas as pd

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
    detailed.to_csv(paths[0], index=False, float_format="%.6e")
    summary.to_csv(paths[1], index=False, float_format="%.6e")
    return summary, paths


def format_summary(summary):
    """Return the summary table as fixed-width text for a terminal."""
    shown = summary.copy()
    for column in ("max_rel_error", "median_rel_error", "max_abs_error"):
        shown[column] = shown[column].map("{:.2e}".format)
    shown["tolerance"] = shown["tolerance"].map("{:.0e}".format)
    shown["passed"] = shown["passed"].map({True: "yes", False: "NO"})
    return shown.to_string(index=False)
