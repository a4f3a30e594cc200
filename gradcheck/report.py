"""Tables of check results, with pandas, written as CSV: the only module that imports pandas.

Two tables. The *detailed* one has a row per case × tensor × oracle (what one
call of check_layer compared); the *summary* has a row per layer × gradient ×
oracle with the worst relative error over the cases the run actually made.
README lists every column.

:func:`write_readable_report` reads the CSVs back from a reports folder and
writes what a person reads: ``summary.md`` and the plots ``errors.png`` and
``bench.png`` (matplotlib, imported only there, with the Agg backend).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DETAILED_CSV", "SUMMARY_CSV", "DETECTION_CSV", "SUMMARY_MD", "ERRORS_PNG",
           "BENCH_PNG", "detailed_table", "summary_table", "write_reports", "format_summary",
           "detection_rates", "detection_by_family", "write_detection", "config_columns",
           "CONFIG_PREFIX",
           "write_readable_report", "NoReportError"]

DETAILED_CSV = "gradcheck_detailed.csv"
SUMMARY_CSV = "gradcheck_summary.csv"
DETECTION_CSV = "detection.csv"
BENCH_LAYERS_CSV = "bench_layers.csv"
BENCH_CHECKER_CSV = "bench_checker.csv"
SUMMARY_MD = "summary.md"
ERRORS_PNG = "errors.png"
BENCH_PNG = "bench.png"
#: Where a relative error of exactly 0 is drawn on the log axis of errors.png.
ERROR_FLOOR = 1e-18
#: The goals of the benchmarks (benchmarks/bench_layers.py, benchmarks/bench_checker.py).
GOAL_GEOMEAN, GOAL_WORST = 1.0, 2.0
GOAL_SPEEDUP, GOAL_FAST_SECONDS = 100.0, 1.0
#: Columns of the detection table, in order.
DETECTION_COLUMNS = ["case", "family", "kind", "oracle", "passed_check", "expected", "diagnosis"]

#: The fixed columns of the detailed table, in order; the ``config.<key>`` columns of the
#: cases' configuration keys come right after ``config`` (see :func:`detailed_table`).
DETAILED_COLUMNS = [
    "test", "layer", "config", "seed", "tensor", "gradient", "oracle", "shape", "size",
    "max_rel_error", "max_abs_error", "tolerance", "mismatched", "excluded", "nondifferentiable",
    "tied", "method", "plan", "passed", "forward_calls", "self_checks", "reproduce",
]
#: Columns of the summary table, in order.
SUMMARY_COLUMNS = [
    "layer", "gradient", "oracle", "cases", "max_rel_error", "median_rel_error",
    "max_abs_error", "tolerance", "excluded", "nondifferentiable", "tied", "methods",
    "failed_cases",
    "passed",
]


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
    import pandas as pd

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
    import pandas as pd

    table = pd.DataFrame(detections, columns=DETECTION_COLUMNS)
    lines = []
    for oracle, rows in table.groupby("oracle", sort=False):
        bugs, correct = rows[rows["kind"] == "bug"], rows[rows["kind"] == "correct"]
        hazards = rows[rows["kind"] == "hazard"]
        caught, alarms = int((~bugs["passed_check"]).sum()), int((~correct["passed_check"]).sum())
        reported = int(hazards["expected"].astype(bool).sum())
        lines.append(
            f"{oracle}: bugs caught {caught} / {len(bugs)} "
            f"({100.0 * caught / max(len(bugs), 1):.1f}%), false alarms {alarms} / {len(correct)} "
            f"({100.0 * alarms / max(len(correct), 1):.1f}%)"
            + (f", hazards passed and reported {reported} / {len(hazards)}" if len(hazards)
               else ""))
        missed = list(bugs.loc[bugs["passed_check"], "case"]) + \
            list(correct.loc[~correct["passed_check"], "case"]) + \
            list(hazards.loc[~hazards["expected"].astype(bool), "case"])
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
            cells.append(f"{int(of_kind['expected'].astype(bool).sum())} / {len(of_kind)}"
                         if len(of_kind) else "")
        rows.append((family, oracle, *cells))
    return rows


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


# ---------------------------------------------------------------------- for people

class NoReportError(FileNotFoundError):
    """The folder holds none of the gradcheck CSVs (detailed, summary, detection)."""


def _read_csv(path):
    import pandas as pd

    return pd.read_csv(path) if path.is_file() else None


def _closeness(detailed):
    """Per oracle × layer: the worst case (largest error / tolerance), sorted closest first.

    Columns ``oracle``, ``layer``, ``gradient`` (of the worst row), ``cases``,
    ``failed_cases``, ``max_rel_error``, ``tolerance``, ``ratio``.
    """
    rows = detailed.assign(ratio=detailed["max_rel_error"] / detailed["tolerance"])
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
    import math

    return math.exp(sum(math.log(v) for v in values) / len(values))


def bench_goal_lines(bench_layers=None, bench_checker=None):
    """Return the goal lines of the benchmarks' CSVs (DataFrames; either may be None)."""
    import math

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
                [(r.layer, r.gradient, f"{r.max_rel_error:.2e}", f"{r.tolerance:.0e}",
                  f"{r.ratio:.2e}", r.cases, r.failed_cases) for r in rows.itertuples()])
        if len(failed):
            lines += ["", "### Failed rows", ""]
            lines += _md_table(
                ["test", "layer", "gradient", "oracle", "max relative error", "tolerance"],
                [(f"`{r.test}`", r.layer, r.gradient, r.oracle, f"{r.max_rel_error:.2e}",
                  f"{r.tolerance:.0e}") for r in failed.itertuples()])
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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_errors(detailed, path):
    """Draw ``errors.png``: per-case max relative errors per layer, one panel per oracle."""
    import numpy as np

    plt = _pyplot()
    cases = _cases(detailed)
    closeness = _closeness(detailed)
    # Layers ordered by their closest approach to a tolerance over all oracles: closest on top.
    order = list(closeness.groupby("layer")["ratio"].max().sort_values().index)
    oracles = sorted(cases["oracle"].unique())
    height = max(3.0, 0.45 * len(order) + 1.6)
    fig, axes = plt.subplots(1, len(oracles), figsize=(4.6 * len(oracles) + 1.6, height),
                             sharey=True, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, oracle in zip(axes[0], oracles):
        rows = cases[cases["oracle"] == oracle]
        data, positions = [], []
        for i, layer in enumerate(order):
            errors = rows.loc[rows["layer"] == layer, "max_rel_error"].to_numpy(float)
            if not len(errors):
                continue
            # A relative error is at most 2; inf marks a gradient of the wrong shape.
            errors = np.clip(errors, ERROR_FLOOR, 2.0)
            data.append(errors)
            positions.append(i)
            ok = rows.loc[rows["layer"] == layer, "passed"].to_numpy(bool)
            jitter = rng.uniform(-0.18, 0.18, size=len(errors))
            ax.scatter(errors[ok], i + jitter[ok], s=9, alpha=0.45, color="tab:blue",
                       linewidths=0, zorder=3)
            if (~ok).any():
                ax.scatter(errors[~ok], i + jitter[~ok], s=22, color="tab:red", marker="x",
                           zorder=4)
        if data:
            style = dict(positions=positions, widths=0.6, showfliers=False,
                         medianprops={"color": "black"}, boxprops={"color": "0.4"},
                         whiskerprops={"color": "0.4"}, capprops={"color": "0.4"})
            try:   # matplotlib >= 3.10; `vert` is deprecated there
                ax.boxplot(data, orientation="horizontal", **style)
            except TypeError:
                ax.boxplot(data, vert=False, **style)
        for tolerance in sorted(rows["tolerance"].unique()):
            ax.axvline(tolerance, color="tab:red", linestyle="--", linewidth=1.2, zorder=2)
            ax.text(tolerance, len(order) - 0.45, f" tolerance {tolerance:.0e}", color="tab:red",
                    fontsize=8, va="bottom", ha="center")
        ax.set_xscale("log")
        top = max(rows["tolerance"].max(), rows["max_rel_error"].clip(upper=2.0).max())
        ax.set_xlim(ERROR_FLOOR / 3, 30 * top)   # room on the right of the tolerance
        ax.set_title(oracle)
        ax.grid(axis="x", which="major", alpha=0.3)
        ax.set_xlabel(f"max relative error per case\n(log scale; 0 drawn at {ERROR_FLOOR:.0e})")
        ax.set_ylim(-0.7, len(order) - 0.1)
    axes[0][0].set_yticks(range(len(order)), order)
    axes[0][0].set_ylabel("layer (closest to its tolerance on top)")
    fig.suptitle("gradcheck: per-case worst relative error (dots), box = quartiles, "
                 "dashed = tolerance", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bench(bench_layers, path):
    """Draw ``bench.png``: time ratio ours / torch per shape, with the 1.0 and 2.0 goal lines."""
    plt = _pyplot()
    rows = bench_layers.reset_index(drop=True)
    labels = [f"{r.layer}  {r.shape}" for r in rows.itertuples()]
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
    ``bench_layers.csv`` and ``bench_checker.csv``. ``errors.png`` needs the
    detailed CSV, ``bench.png`` the bench_layers one. Without matplotlib only
    ``summary.md`` is written.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    NoReportError
        When ``out_dir`` holds none of the gradcheck CSVs.
    """
    out = Path(out_dir)
    if not any((out / name).is_file() for name in (DETAILED_CSV, SUMMARY_CSV, DETECTION_CSV)):
        raise NoReportError(f"no gradcheck CSV ({DETAILED_CSV}, {SUMMARY_CSV} or "
                            f"{DETECTION_CSV}) in {out}")
    detailed = _read_csv(out / DETAILED_CSV)
    detections = _read_csv(out / DETECTION_CSV)
    bench_layers = _read_csv(out / BENCH_LAYERS_CSV)
    bench_checker = _read_csv(out / BENCH_CHECKER_CSV)
    written, pictures = [], []
    try:
        _pyplot()
    except ImportError:
        plotting = False
    else:
        plotting = True
    if plotting and detailed is not None and len(detailed):
        written.append(plot_errors(detailed, out / ERRORS_PNG))
        pictures.append(ERRORS_PNG)
    if plotting and bench_layers is not None and len(bench_layers):
        written.append(plot_bench(bench_layers, out / BENCH_PNG))
        pictures.append(BENCH_PNG)
    path = out / SUMMARY_MD
    path.write_text(_summary_markdown(out, detailed, detections, bench_layers, bench_checker,
                                      pictures), encoding="utf-8")
    return [path, *written]
