"""The validation report: a copy of the input for people, every bad cell highlighted."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from ..support.helpers import write_csv
from ..support.runs import SAMPLES


def test_report_highlights_and_comments_every_bad_cell(tmp_path: Path, cli) -> None:
    report = tmp_path / "errors.xlsx"
    result = cli("validate", SAMPLES / "invalid.xlsx", "--report", report)
    assert result.code == 2
    book = openpyxl.load_workbook(report)
    assert book.sheetnames == ["Sheet1", "errors"]
    sheet = book["Sheet1"]
    assert sheet["K8"].fill.fgColor.rgb.endswith("FFC7CE")
    assert sheet["K8"].comment.text == "normalized_weirdness: 1.4 is above the maximum 1"
    assert sheet["A2"].comment is None and sheet["A2"].value == "Midnight Harbor"  # good cells untouched
    lines = [[cell.value for cell in row] for row in book["errors"].iter_rows()]
    assert lines[0] == ["sheet", "cell", "row", "field", "value", "message"]
    assert ["Sheet1", "K8", 8, "normalized_weirdness", 1.4, "1.4 is above the maximum 1"] in lines
    assert len(lines) == 1 + 9


def test_report_of_a_csv_keeps_text_as_text(tmp_path: Path, cli) -> None:
    source = write_csv(tmp_path, 'title,tag,lyrics,model\n"=cmd()",pop,la,FUZZ-9\n')
    report = tmp_path / "errors.xlsx"
    assert cli("validate", source, "--report", report).code == 2
    sheet = openpyxl.load_workbook(report)["input"]
    assert (sheet["A2"].value, sheet["A2"].data_type) == ("=cmd()", "s")
    assert sheet["D2"].comment.text.startswith("model: 'FUZZ-9' is not a model")
    assert (
        cli("validate", source, "--report", tmp_path / "errors.csv").err.strip()
        == f"error: --report: {tmp_path / 'errors.csv'} must end in .xlsx"
    )


def test_report_marks_a_header_in_the_wrong_unit_on_its_own_cell(tmp_path: Path, cli) -> None:
    source = write_csv(tmp_path, "title,tag,lyrics,transform,riff_id,Duration (min)\nA,pop,la,extend,r,2\n")
    report = tmp_path / "errors.xlsx"
    assert cli("validate", source, "--report", report).code == 2
    sheet = openpyxl.load_workbook(report)["input"]
    assert sheet["F1"].comment.text.startswith("Duration (min): is in minutes, but the API takes duration in seconds")
    assert sheet["A1"].comment is None
