"""`gradcheck report` on damaged CSVs: exit 2, the file and the line named, nothing written."""

import csv
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from gradcheck.cli import EXIT_USAGE, main
from gradcheck.report import (
    BENCH_PNG, DETAILED_CSV, DETECTION_COLUMNS, DETECTION_CSV, ERRORS_PNG, SUMMARY_CSV, SUMMARY_MD,
    DamagedReportError, read_report_csv, write_readable_report, write_reports,
)
from property_tests.gradcheck.test_summary import _folder

BENCH_LAYERS_CSV = "bench_layers.csv"


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _unterminated_quote(folder):
    # Line 3 (the second row): the config cell loses its closing quote, so the quote
    # runs into the next row.
    path = folder / DETAILED_CSV
    lines = _lines(path)
    assert lines[2].count('1}"') == 1
    lines[2] = lines[2].replace('1}"', "1}")
    path.write_text("".join(lines), encoding="utf-8")
    return DETAILED_CSV, 3, "quote"


def _cut_inside_quotes(folder):
    # The file ends inside the quoted config cell of its last row (line 16).
    path = folder / DETAILED_CSV
    text = path.read_text(encoding="utf-8")
    path.write_text(text[:text.rindex('""n""')], encoding="utf-8")
    return DETAILED_CSV, 16, "never closed"


def _cut_short(folder):
    # The last row (line 16) ends after its oracle: a truncated file.
    path = folder / DETAILED_CSV
    text = path.read_text(encoding="utf-8")
    path.write_text(text[:text.rindex(",torch,") + len(",torch")], encoding="utf-8")
    return DETAILED_CSV, 16, "truncated"


def _empty(folder):
    (folder / DETECTION_CSV).write_bytes(b"")
    return DETECTION_CSV, 1, "empty"


def _header_only(folder):
    path = folder / DETAILED_CSV
    path.write_text(_lines(path)[0], encoding="utf-8")
    return DETAILED_CSV, 1, "no rows"


def _wrong_columns(folder):
    # The summary's columns where the detailed table's should be.
    (folder / DETAILED_CSV).write_bytes((folder / SUMMARY_CSV).read_bytes())
    return DETAILED_CSV, 1, "lacks the column(s) test, config, seed"


def _wrong_type(folder):
    path = folder / DETAILED_CSV
    lines = _lines(path)
    assert lines[5].count(",True,") == 1
    lines[5] = lines[5].replace(",True,", ",yes,")
    path.write_text("".join(lines), encoding="utf-8")
    return DETAILED_CSV, 6, "column 'passed': 'yes' is not True or False"


def _extra_field(folder):
    path = folder / DETECTION_CSV
    lines = _lines(path)
    lines[2] = lines[2].rstrip("\n") + ",surplus\n"
    path.write_text("".join(lines), encoding="utf-8")
    width = len(DETECTION_COLUMNS)
    return DETECTION_CSV, 3, f"{width + 1} field(s), the header (line 1) has {width}"


def _damaged_summary(folder):
    # The summary CSV is not read for summary.md, but it is checked too.
    path = folder / SUMMARY_CSV
    lines = _lines(path)
    lines[1] = lines[1].replace("finite_differences,3,", "finite_differences,three,", 1)
    path.write_text("".join(lines), encoding="utf-8")
    return SUMMARY_CSV, 2, "column 'cases': 'three' is not an integer"


def _damaged_bench(folder):
    path = folder / BENCH_LAYERS_CSV
    lines = _lines(path)
    lines[2] = lines[2].replace(",3.0\n", ",fast\n")
    path.write_text("".join(lines), encoding="utf-8")
    return BENCH_LAYERS_CSV, 3, "column 'time_ratio': 'fast' is not a number"


def _set_cell(path, row, column, text):
    """Rewrite the CSV at ``path`` with the cell of data row ``row`` (1-based) in ``column``
    set to ``text``; return the line of that row (no field of these files spans lines)."""
    with path.open(encoding="utf-8", newline="") as file:
        records = list(csv.reader(file))
    records[row][records[0].index(column)] = text
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(records)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return row + 1


def _empty_error(folder):
    line = _set_cell(folder / DETAILED_CSV, 3, "max_rel_error", "")
    return DETAILED_CSV, line, "column 'max_rel_error': is empty: an error is a number"


def _negative_error(folder):
    line = _set_cell(folder / DETAILED_CSV, 4, "max_abs_error", "-1.0e-03")
    return DETAILED_CSV, line, "column 'max_abs_error': '-1.0e-03' is negative"


def _empty_summary_error(folder):
    line = _set_cell(folder / SUMMARY_CSV, 2, "median_rel_error", "")
    return SUMMARY_CSV, line, "column 'median_rel_error': is empty"


def _negative_size(folder):
    line = _set_cell(folder / DETAILED_CSV, 5, "size", "-6")
    return DETAILED_CSV, line, "column 'size': '-6' is negative"


def _negative_count(folder):
    line = _set_cell(folder / SUMMARY_CSV, 1, "failed_cases", "-1")
    return SUMMARY_CSV, line, "column 'failed_cases': '-1' is negative"


def _config_not_json(folder):
    line = _set_cell(folder / DETAILED_CSV, 2, "config", "{n: 1")
    return DETAILED_CSV, line, "column 'config': '{n: 1' is not JSON"


def _config_a_list(folder):
    line = _set_cell(folder / DETAILED_CSV, 6, "config", "[1, 2]")
    return DETAILED_CSV, line, "column 'config': '[1, 2]' is JSON but a list, not an object"


DAMAGES = [_unterminated_quote, _cut_inside_quotes, _cut_short, _empty, _header_only,
           _wrong_columns, _wrong_type, _extra_field, _damaged_summary, _damaged_bench,
           _empty_error, _negative_error, _empty_summary_error, _negative_size, _negative_count,
           _config_not_json, _config_a_list]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__.strip("_") for d in DAMAGES])
def test_a_damaged_csv_is_named_with_its_line_and_nothing_is_written(tmp_path, capsys, damage):
    folder = _folder(tmp_path, bench=True)
    name, line, problem = damage(folder)
    assert main(["report", "--dir", str(folder)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{folder / name}:{line}: " in err, err
    assert problem in err, err
    assert "nothing written" in err and "Traceback" not in err, err
    for picture in (SUMMARY_MD, ERRORS_PNG, BENCH_PNG):
        assert not (folder / picture).exists(), picture
    with pytest.raises(DamagedReportError) as raised:
        write_readable_report(folder)
    assert (raised.value.path.name, raised.value.line) == (name, line)
    assert isinstance(raised.value, ValueError)


def test_the_line_counts_the_lines_of_a_quoted_field_that_spans_several(tmp_path):
    path = tmp_path / DETECTION_CSV
    pd.DataFrame([
        {"case": "a", "family": "f", "kind": "bug", "oracle": "auto", "expected_verdict": "fail",
         "passed_check": False, "as_expected": True,
         "diagnosis": "first line\nsecond line\nthird line"},
        {"case": "b", "family": "f", "kind": "typo", "oracle": "auto", "expected_verdict": "fail",
         "passed_check": True, "as_expected": True, "diagnosis": ""},
    ]).to_csv(path, index=False)
    # The first row takes lines 2-4, so the second starts on line 5, as an editor shows it.
    with pytest.raises(DamagedReportError, match=r":5: column 'kind': 'typo' is not one of "
                                                 r"bug, correct, hazard"):
        read_report_csv(path)


def test_blank_lines_and_a_missing_final_newline_are_no_damage(tmp_path):
    folder = _folder(tmp_path)
    path = folder / DETECTION_CSV
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n", encoding="utf-8")
    detailed = folder / DETAILED_CSV
    detailed.write_text(detailed.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
    assert [p.name for p in write_readable_report(folder)] == [SUMMARY_MD, ERRORS_PNG]
    assert len(read_report_csv(path)) == 2 and len(read_report_csv(detailed)) == 15


def test_read_report_csv_needs_a_schema_for_an_unknown_file(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="`path`.*other.csv.*no schema"):
        read_report_csv(path)
    assert list(read_report_csv(path, {"a": "int"})["a"]) == [1]


@pytest.mark.parametrize("name", [DETAILED_CSV, DETECTION_CSV, BENCH_LAYERS_CSV])
def test_a_csv_that_is_a_directory_is_refused_not_skipped(tmp_path, capsys, name):
    folder = _folder(tmp_path, bench=True)
    (folder / name).unlink()
    (folder / name).mkdir()
    assert main(["report", "--dir", str(folder)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{folder / name}: is a directory, not a CSV file" in err, err
    assert "nothing written" in err and "Traceback" not in err, err
    for picture in (SUMMARY_MD, ERRORS_PNG, BENCH_PNG):
        assert not (folder / picture).exists(), picture
    with pytest.raises(DamagedReportError) as raised:
        write_readable_report(folder)
    assert (raised.value.path.name, raised.value.line) == (name, None)


def test_the_only_csv_a_directory_is_damage_not_an_empty_folder(tmp_path, capsys):
    (tmp_path / DETAILED_CSV).mkdir()
    assert main(["report", "--dir", str(tmp_path)]) == EXIT_USAGE
    assert "is a directory" in capsys.readouterr().err


def test_control_characters_in_names_are_drawn_as_escapes_without_a_glyph_warning(
        tmp_path, capsys):
    folder = _folder(tmp_path, bench=True)
    for row in (1, 2, 3):
        _set_cell(folder / DETAILED_CSV, row, "layer", "Ne\x00ar\x07")
    _set_cell(folder / BENCH_LAYERS_CSV, 1, "shape", "m=1\x01")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # matplotlib's "Glyph 0 missing" is a UserWarning
        assert main(["report", "--dir", str(folder)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "written: " in captured.out, captured
    assert read_report_csv(folder / DETAILED_CSV)["layer"][0] == "Ne\x00ar\x07"   # kept


def test_a_nan_error_of_a_real_check_is_written_as_nan_and_read_back(tmp_path):
    from gradcheck import check_function

    def forward(x):
        return 2 * x

    def backward(dout, x):
        return np.full_like(dout, np.nan)

    result = check_function(forward, backward, np.linspace(0.1, 1.0, 3))
    rows = [{"test": "t", "config": "{}", **row} for row in result.to_rows()]
    assert any(np.isnan(row["max_abs_error"]) for row in rows)
    write_reports(rows, tmp_path)
    with (tmp_path / DETAILED_CSV).open(encoding="utf-8", newline="") as file:
        cells = list(csv.DictReader(file))
    assert {cell["max_abs_error"] for cell in cells} == {"nan"}
    frame = read_report_csv(tmp_path / DETAILED_CSV)
    assert frame["max_abs_error"].isna().all() and not frame["passed"].any()
    with warnings.catch_warnings():
        # Every error is far above the tolerance: the panel takes the tolerance's line and
        # label in (no "constrained_layout not applied" warning).
        warnings.simplefilter("error")
        assert [p.name for p in write_readable_report(tmp_path)] == [SUMMARY_MD, ERRORS_PNG]


def test_a_report_that_cannot_be_written_exits_2_without_a_traceback(tmp_path, capsys):
    folder = _folder(tmp_path)
    (folder / SUMMARY_MD).mkdir()    # where summary.md goes, a directory
    assert main(["report", "--dir", str(folder)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"cannot write the report in {folder}: " in err and SUMMARY_MD in err, err
    assert "Traceback" not in err, err
