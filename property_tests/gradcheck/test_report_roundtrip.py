"""gradcheck_detailed.csv read back with read_detailed: the documented dtypes and the values
that were written."""

import json
import math

import numpy as np
import pandas as pd
import pytest

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


def _recorded(configs):
    """The rows a Recorder keeps for one check per config (a passing check of 2 x)."""
    from gradcheck.pytest_plugin import Recorder

    recorder = Recorder()
    for config in configs:
        recorder.function(lambda x: 2 * x, lambda dout, x: 2 * dout, np.linspace(0.1, 1, 3),
                          config=config)
    return recorder.rows


@pytest.mark.parametrize("config, said", [
    ([1, 2], "got list [1, 2]"), ("m=4", "got str 'm=4'"), (("m", 4), "got tuple ('m', 4)"),
    ({1: "a"}, "`config` keys must be str (they name the config.<key> columns), got int 1"),
    ({"m": {(1, 2): 3}}, "`config` {'m': {(1, 2): 3}} cannot be written as JSON"),
], ids=["list", "str", "tuple", "int key", "tuple key inside"])
def test_the_fixture_refuses_a_config_that_is_not_a_dict_with_str_keys(config, said):
    from gradcheck.pytest_plugin import Recorder

    calls = []
    with pytest.raises(TypeError) as raised:
        Recorder().function(lambda x: calls.append(1) or 2 * x, lambda dout, x: 2 * dout,
                            np.ones(2), config=config)
    assert said in str(raised.value), str(raised.value)
    assert calls == [] and "`config`" in str(raised.value)   # refused before the check runs


def test_numpy_scalars_of_a_config_are_numbers_and_bools_in_its_json(tmp_path):
    rows = _recorded([{"m": np.int64(3), "on": np.bool_(True), "lr": np.float32(0.5),
                       "shape": np.array([2, 3])}])
    assert json.loads(rows[0]["config"]) == {"m": 3, "on": True, "lr": 0.5, "shape": [2, 3]}
    write_reports(rows, tmp_path)
    frame = read_detailed(tmp_path / DETAILED_CSV)
    assert frame["config.m"].dtype == np.int64 and frame["config.on"].dtype == bool
    assert json.loads(frame["config"][0]) == {"m": 3, "on": True, "lr": 0.5, "shape": [2, 3]}


def test_a_big_int_in_a_config_comes_back_exact(tmp_path):
    rows = _recorded([{"n": 2 ** 70 + 1}, {"n": 3}, {}])
    per = len(rows) // 3    # rows per check
    write_reports(rows, tmp_path)
    frame = read_detailed(tmp_path / DETAILED_CSV)
    assert frame["config.n"].tolist() == [2 ** 70 + 1] * per + [3] * per + [None] * per
    assert json.loads(frame["config"][0]) == {"n": 2 ** 70 + 1}


def test_mixed_types_in_one_key_give_strings_and_the_json_keeps_them_apart(tmp_path):
    # The documented rule (docs/reports.md): typed from the cells as text, all of them.
    rows = _recorded([{"k": True}, {"k": 1}, {"k": "True"}, {"k": ""}, {}])
    per = len(rows) // 5    # rows per check
    write_reports(rows, tmp_path)
    frame = read_detailed(tmp_path / DETAILED_CSV)
    assert frame["config.k"].tolist()[::per] == ["True", "1", "True", "", ""]
    assert [json.loads(text).get("k", "missing") for text in frame["config"][::per]] == [
        True, 1, "True", "", "missing"]
