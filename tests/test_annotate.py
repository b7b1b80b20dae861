"""Copies of the input for people: the validation report and the annotated catalog."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from batchgen.simulator import Faults

from .conftest import SAMPLES
from .helpers import write_csv


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


@pytest.mark.slow
def test_annotated_copy_has_ids_status_and_error_on_each_row(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["ok", "400"]))
    source = write_csv(tmp_path, "title,tag,lyrics,notes\nA,pop,la,keep me\nB,pop,la,\n,pop,la,\n")
    annotated = tmp_path / "annotated.xlsx"
    result = cli(
        "run",
        source,
        "-o",
        tmp_path / "out.xlsx",
        "--base-url",
        server.url,
        "--quiet",
        "--concurrency",
        "1",
        "--skip-invalid",
        "--annotate",
        annotated,
    )
    assert result.code == 1
    rows = [[cell.value for cell in row] for row in openpyxl.load_workbook(annotated).active.iter_rows()]
    ids = server.simulator.accepted[0]["job_ids"]
    assert rows == [
        ["title", "tag", "lyrics", "notes", "job_id_1", "job_id_2", "status", "error"],
        ["A", "pop", "la", "keep me", *ids, "done", None],
        ["B", "pop", "la", None, None, None, "failed", "HTTP 400: The provider rejected this request"],
        [None, "pop", "la", None, None, None, "invalid", "title: is required"],
    ]


def test_report_marks_a_header_in_the_wrong_unit_on_its_own_cell(tmp_path: Path, cli) -> None:
    source = write_csv(tmp_path, "title,tag,lyrics,transform,riff_id,Duration (min)\nA,pop,la,extend,r,2\n")
    report = tmp_path / "errors.xlsx"
    assert cli("validate", source, "--report", report).code == 2
    sheet = openpyxl.load_workbook(report)["input"]
    assert sheet["F1"].comment.text.startswith("Duration (min): is in minutes, but the API takes duration in seconds")
    assert sheet["A1"].comment is None
