"""gradcheck_detailed.csv read back with read_detailed: the documented dtypes and the values
that were written."""

import json
import math

import numpy as np
import pandas as pd

from gradcheck.report import DETAILED_COLUMNS, DETAILED_CSV, read_detailed, write_reports

STRINGS = ["test", "layer", "config", "tensor", "gradient", "oracle", "shape", "method", "plan",
           "self_checks", "reproduce"]
INTS = ["seed", "size", "mismatched", "excluded", "nondifferentiable", "tied", "forward_calls"]
FLOATS = ["max_rel_error", "max_abs_error", "tolerance"]


def _row(i, config, error, passed, self_checks="", reproduce=""):
    # Errors exact in the CSV's 7 significant digits, so the values come back equal.
    return {"test": f"t.py::test_{i}", "layer": "Dense", "config": json.dumps(config),
            "seed": i, "tensor": "W", "gradient": "dW", "oracle": "finite_differences",
            "shape": "3x2", "size": 6, "max_rel_error": error, "max_abs_error": error / 4,
            "tolerance": 1e-6, "mismatched": 0 if passed else 6, "excluded": i,
            "nondifferentiable": 2 * i, "tied": 0, "method": "full", "plan": "" if i else "p",
            "passed": passed, "forward_calls": 10 + i, "self_checks": self_checks,
            "reproduce": reproduce}


ROWS = [
    _row(0, {"m": 4, "scale": 0.5, "flag": True, "sizes": [2, 3], "extra": None, "act": "relu"},
         2.5e-07, True),
    _row(1, {"m": 5, "scale": 2, "flag": False, "act": "tanh"}, 0.0, True,
         self_checks="hazard: layer.forward modified its input x"),
    _row(2, {"scale": 1.25}, math.inf, False, reproduce="python -m pytest 't.py::test_2'"),
]


def test_read_detailed_gives_the_documented_dtypes_and_the_values_written(tmp_path):
    write_reports(ROWS, tmp_path)
    frame = read_detailed(tmp_path / DETAILED_CSV)
    spread = ["config.act", "config.extra", "config.flag", "config.m", "config.scale",
              "config.sizes"]
    at = DETAILED_COLUMNS.index("config") + 1
    assert list(frame.columns) == DETAILED_COLUMNS[:at] + spread + DETAILED_COLUMNS[at:]
    for column in STRINGS:
        assert pd.api.types.is_string_dtype(frame[column]), (column, frame[column].dtype)
        assert list(frame[column]) == [row[column] for row in ROWS], column   # "" for empty
    for column in INTS:
        assert frame[column].dtype == np.int64, column
        assert list(frame[column]) == [row[column] for row in ROWS], column
    for column in FLOATS:
        assert frame[column].dtype == np.float64, column
        assert list(frame[column]) == [row[column] for row in ROWS], column
    assert frame["passed"].dtype == bool and list(frame["passed"]) == [True, True, False]
    # config.<key>: as the cells are; Int64 / boolean where a row lacks the key.
    assert frame["config.m"].dtype == "Int64"
    assert frame["config.m"].tolist()[:2] == [4, 5] and frame["config.m"].isna().tolist() == [
        False, False, True]
    assert frame["config.scale"].dtype == np.float64
    assert list(frame["config.scale"]) == [0.5, 2.0, 1.25]
    assert frame["config.flag"].dtype == "boolean"
    assert frame["config.flag"].tolist()[:2] == [True, False] and frame["config.flag"].isna()[2]
    for column, cells in [("config.act", ["relu", "tanh", ""]),
                          ("config.sizes", ["[2, 3]", "", ""]),
                          ("config.extra", ["null", "", ""])]:
        assert pd.api.types.is_string_dtype(frame[column]), column
        assert list(frame[column]) == cells, column


def test_pandas_read_csv_alone_loses_those_dtypes(tmp_path):
    # Why read_detailed exists: what plain read_csv makes of the same file.
    write_reports(ROWS, tmp_path)
    plain = pd.read_csv(tmp_path / DETAILED_CSV)
    assert plain["config.m"].dtype == np.float64          # 4.0, 5.0, NaN
    assert plain["plan"].isna().sum() == 2                # "" came back as NaN
    frame = read_detailed(tmp_path / DETAILED_CSV)
    assert frame["config.m"].dtype == "Int64" and list(frame["plan"]) == ["p", "", ""]


def test_columns_without_gaps_come_back_as_plain_numpy_dtypes(tmp_path):
    rows = [_row(i, {"m": i, "on": bool(i % 2)}, 1e-8, True) for i in range(3)]
    write_reports(rows, tmp_path)
    frame = read_detailed(tmp_path / DETAILED_CSV)
    assert frame["config.m"].dtype == np.int64 and list(frame["config.m"]) == [0, 1, 2]
    assert frame["config.on"].dtype == bool and list(frame["config.on"]) == [False, True, False]
    # Empty in every row: strings, all "".
    assert list(frame["self_checks"]) == ["", "", ""] and list(frame["reproduce"]) == [""] * 3
