"""The summary printed in the terminal: compact, closest to the tolerance first, limited."""

import math

import pytest

from gradcheck.report import (
    SUMMARY_ROWS, detailed_table, format_summary, summary_table,
)
from property_tests.gradcheck.test_summary import _row

HEADER = ["layer", "gradient", "oracle", "max", "rel", "error", "tolerance", "error/tol",
          "passed"]


def _summary(n=30):
    """n layers against finite differences, layer Lk with error k × 1e-8 (ratio k / 100);
    L7 fails once, a long-named layer has an error of 0, and one NaN error fails."""
    rows = []
    for k in range(1, n + 1):
        for seed in range(2):
            error = 5e-6 if (k == 7 and seed == 1) else k * 1e-8
            rows.append(_row(f"t::L{k}", f"L{k}", "finite_differences", error, 1e-6, seed=seed))
    rows.append(_row("t::long", "AnExtremelyLongLayerNameFromAUsersOwnCode", "torch", 0.0, 1e-10))
    rows.append(_row("t::nan", "NaNLayer", "torch", math.nan, 1e-10))
    return summary_table(detailed_table(rows))


def _data(text):
    return [line.split() for line in text.splitlines()[1:] if not line.startswith("...")]


def test_the_failed_rows_come_first_then_the_closest_to_their_tolerance():
    text = format_summary(_summary(), limit=None)
    lines = text.splitlines()
    assert lines[0].split() == HEADER
    rows = _data(text)
    assert len(rows) == 32 and not text.splitlines()[-1].startswith("...")
    # NaN (no number, infinitely far) and L7 (5x its tolerance) failed; then L30, L29, ...
    assert [row[0] for row in rows[:5]] == ["NaNLayer", "L7", "L30", "L29", "L28"]
    assert rows[1][3:] == ["5.00e-06", "1e-06", "5.00e+00", "NO", "1/2"]
    assert rows[2][3:] == ["3.00e-07", "1e-06", "3.00e-01", "yes"]
    ratios = [float(row[5]) for row in rows[2:]]
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] == 0.0
    assert rows[-1][0] == "AnExtremelyLongLayerNa…"     # cut to 23 characters


def test_the_table_fits_in_100_columns_and_leaves_out_the_csv_only_counts():
    text = format_summary(_summary(), limit=None)
    assert max(len(line) for line in text.splitlines()) <= 100
    long_name = [line for line in text.splitlines() if line.startswith("AnExtremely")]
    assert long_name and long_name[0].split()[0] == "AnExtremelyLongLayerNa…"
    for column in ("seed", "nondifferentiable", "excluded", "tied", "median", "methods"):
        assert column not in text, column


def test_a_limit_keeps_the_closest_rows_and_says_where_the_rest_is():
    text = format_summary(_summary(), limit=5, full_table="reports/gradcheck_summary.csv")
    assert [row[0] for row in _data(text)] == ["NaNLayer", "L7", "L30", "L29", "L28"]
    assert text.splitlines()[-1] == ("... 27 more row(s), further from their tolerance; "
                                     "all 32 rows in reports/gradcheck_summary.csv")
    assert len(_data(format_summary(_summary()))) == SUMMARY_ROWS
    # No line about the rest when everything is shown.
    assert "more row(s)" not in format_summary(_summary(3), limit=10)


@pytest.mark.parametrize("limit", [0, -1, 2.5, "3", True])
def test_a_bad_limit_is_refused_naming_it(limit):
    with pytest.raises(ValueError, match=r"`limit` must be a positive integer or None, got "):
        format_summary(_summary(3), limit=limit)


MANY_LAYERS_TEST = """
import numpy as np
import pytest
from reference_impls import Dense

LAYERS = [type(f"Layer{i:02d}", (Dense,), {}) for i in range(9)]


@pytest.mark.parametrize("cls", LAYERS)
def test_layer(check_gradients, cls):
    rng = np.random.default_rng(0)
    check_gradients(cls(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))), rng.normal(size=(2, 4)))
"""


def test_the_plugin_prints_the_closest_rows_and_names_the_csv_with_all(pytester):
    pytester.makepyfile(test_inner=MANY_LAYERS_TEST)
    result = pytester.runpytest_subprocess("--gradcheck-report", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=9)
    lines = [line for line in result.stdout.lines if line.strip()]
    start = next(i for i, line in enumerate(lines) if "gradcheck summary" in line)
    assert "closest to the tolerance first (20 of 27 rows)" in lines[start]
    assert lines[start + 1].split() == HEADER
    table = lines[start + 2:start + 22]
    assert all(line.split()[0].startswith("Layer") for line in table)
    ratios = [float(line.split()[5]) for line in table]
    assert ratios == sorted(ratios, reverse=True)
    assert lines[start + 22] == ("... 7 more row(s), further from their tolerance; all 27 rows "
                                 "in out/gradcheck_summary.csv")
    assert max(len(line) for line in lines[start + 1:start + 23]) <= 100
    result.stdout.fnmatch_lines(["27 comparisons in 27 rows (layer × gradient × oracle), "
                                 "0 row(s) failed; written: *"])
