"""Real-world and hostile files (tests/support/fixtures, most written by LibreOffice): each one ends in the right
payloads, or in one clear ``error:`` line with exit 2 and nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.loader import MAX_ROWS, load
from batchgen.validate import validate_table

from ..support.helpers import write_sheet_xml
from ..support.real_world import OK
from ..support.runs import FIXTURES

ROWS = {"libreoffice_human_headers.xlsx": 5}  # files whose other rows test_payloads.py checks field by field

ERRORS = {
    "empty.csv": "empty.csv is empty",
    "blank_lines_only.csv": "blank_lines_only.csv is empty",
    "header_only.xlsx": "has no data rows under its header (row 1)",
    "no_known_header.xlsx": "no header row found in the first 20 rows",
    "duplicate_columns.xlsx": "columns A and B both name the field title",
    "random_bytes.xlsx": "is not a readable Excel workbook",
    "truncated.xlsx": "is not a readable Excel workbook",
    "legacy.xls": "legacy .xls workbooks are not supported; save it as .xlsx or .csv",
    "password_protected.xlsx": "is an encrypted (password-protected) workbook",
    "billion_laughs.xlsx": "xl/worksheets/sheet1.xml declares XML entities (a DTD); refusing to open it",
    "zip_bomb.xlsx": "which looks like a zip bomb; refusing to open it",
    "cp1252.csv": "is not UTF-8 (byte 0xe9 at offset 22); save it as UTF-8 or pass --encoding NAME "
    "(e.g. --encoding cp1252)",
    "utf16_unicode_text.csv": "pass --encoding NAME (e.g. --encoding utf-16)",
    "invalid_cells.xlsx": "invalid_cells.xlsx: 2 problem(s) in 2 of 2 rows",
}


def test_the_fixture_folder_holds_every_kind() -> None:
    files = {path.name for path in FIXTURES.iterdir() if path.is_file() and path.suffix != ".py"}
    assert files == set(OK) | set(ERRORS)
    assert len(files) >= 25


@pytest.mark.parametrize("name", sorted(OK))
def test_real_world_file_gives_the_right_payloads(name: str) -> None:
    validation = validate_table(load(FIXTURES / name))
    assert validation.errors == []
    bodies = {row.payload["title"]: row.payload for row in validation.valid}
    assert set(OK[name]) <= set(bodies) and len(bodies) == ROWS.get(name, len(OK[name]))
    for title, expected in OK[name].items():
        for field, value in expected.items():
            assert bodies[title][field] == value, (title, field)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_broken_or_hostile_file_gives_one_clear_error(name: str, cli) -> None:
    result = cli("validate", FIXTURES / name)
    assert result.code == 2
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("error: ") and ERRORS[name] in last, result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "name, encoding, title",
    [("cp1252.csv", "cp1252", "Café crème"), ("utf16_unicode_text.csv", "utf-16", "Unicode text")],
)
def test_encoding_option_reads_other_encodings(name: str, encoding: str, title: str) -> None:
    assert [row.payload["title"] for row in validate_table(load(FIXTURES / name, encoding=encoding)).valid] == [title]


def test_a_million_row_sheet_is_refused_with_a_clear_limit(tmp_path: Path, cli) -> None:
    path = tmp_path / "million.csv"
    path.write_text("title,tag,lyrics\n" + "Song,pop,la\n" * 1_000_000)
    result = cli("validate", path)
    assert result.code == 2
    assert (
        result.err.strip()
        == f"error: {path}: 1,000,001 rows is above the limit of {MAX_ROWS:,} per file; split it into several files"
    )


XXE = (
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/hostname">]>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="inlineStr"><is><t>title</t></is></c><c r="B1" t="inlineStr"><is><t>tag</t></is></c>'
    '</row><row r="2"><c r="A2" t="inlineStr"><is><t>&secret;</t></is></c>'
    '<c r="B2" t="inlineStr"><is><t>pop</t></is></c></row></sheetData></worksheet>'
)


def test_entity_tricks_are_refused_by_both_readers(tmp_path: Path, cli) -> None:
    """calamine reads the cells; openpyxl (for --report and --annotate copies) parses through defusedxml."""
    import openpyxl
    from defusedxml import DefusedXmlException

    xxe = write_sheet_xml(tmp_path, "", name="xxe.xlsx", document=XXE)
    for path in (FIXTURES / "billion_laughs.xlsx", xxe):
        with pytest.raises(ValueError) as refused, path.open("rb") as handle:
            openpyxl.load_workbook(handle)
        assert isinstance(refused.value.__context__, DefusedXmlException), path
        result = cli("validate", path, "--report", tmp_path / "report.xlsx")
        last = result.err.strip().splitlines()[-1]
        assert result.code == 2 and last.startswith(f"error: {path}: xl/worksheets/"), result.err
        assert last.endswith("declares XML entities (a DTD); refusing to open it")
        assert not (tmp_path / "report.xlsx").exists()
