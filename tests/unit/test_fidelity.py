"""What a sheet really says: error cells, formulas without a saved value, hidden rows, near-miss headers,
comma numbers, DataFrames. Every file is made by the test; every message is asserted with its cell."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

import batchgen
from batchgen.loader import load
from batchgen.validate import validate_table

from ..support.helpers import inline, write_csv, write_sheet_xml, write_xlsx

HEAD = ["title", "tag", "lyrics", "transform", "riff_id", "normalized_weirdness", "notes"]
HEAD_XML = (
    '<row r="1">' + "".join(inline(f"{col}1", name) for col, name in zip("ABCDEFG", HEAD, strict=True)) + "</row>"
)
SAVE = "open and save it in Excel or LibreOffice"


def row_xml(number: int, weirdness: str, notes: str = "") -> str:
    cells = "".join(
        inline(f"{col}{number}", text) for col, text in zip("ABCDE", ["A", "pop", "la", "cover", "r"], strict=True)
    )
    return f'<row r="{number}">{cells}{weirdness}{notes}</row>'


def messages(path: Path) -> list[str]:
    return [str(error) for error in batchgen.validate(path).errors]


@pytest.mark.parametrize("error", ["#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"])
def test_typed_excel_errors_in_a_field_column_name_the_cell(tmp_path: Path, error: str) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Songs"
    sheet.append(HEAD)
    sheet.append(["A", "pop", "la", "cover", "r", 0.5, "ok"])
    sheet.append(["B", "pop", "la", "cover", "r", error, error])
    sheet["F3"].data_type = "e"
    sheet["G3"].data_type = "e"
    book.save(tmp_path / "errors.xlsx")
    report = batchgen.validate(tmp_path / "errors.xlsx")
    assert [str(e) for e in report.errors] == [
        f"Songs!F3 normalized_weirdness: {error} is an Excel error value; fix the formula or the cell"
    ]
    assert (report.errors[0].row, report.errors[0].cell, report.errors[0].column) == (
        3,
        "Songs!F3",
        "normalized_weirdness",
    )
    notes = load(tmp_path / "errors.xlsx").rows[1].extras["notes"]
    assert notes == error  # in a passed-through column an error value is passed through as text


@pytest.mark.parametrize("suffix", [".xlsx", ".xlsm"])
def test_formulas_whose_cached_value_is_an_error(tmp_path: Path, suffix: str) -> None:
    cell = '<c r="F2" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
    path = write_sheet_xml(tmp_path, HEAD_XML + row_xml(2, cell), name=f"cached{suffix}")
    assert messages(path) == [
        "Sheet1!F2 normalized_weirdness: #DIV/0! is an Excel error value; fix the formula or the cell"
    ]


def test_spill_and_calc_errors_too(tmp_path: Path) -> None:
    rows = row_xml(2, '<c r="F2" t="e"><f>SEQUENCE(2)</f><v>#SPILL!</v></c>')
    rows += row_xml(3, '<c r="F3" t="e"><f>LAMBDA(x,x)</f><v>#CALC!</v></c>')
    assert messages(write_sheet_xml(tmp_path, HEAD_XML + rows)) == [
        "Sheet1!F2 normalized_weirdness: #SPILL! is an Excel error value; fix the formula or the cell",
        "Sheet1!F3 normalized_weirdness: #CALC! is an Excel error value; fix the formula or the cell",
    ]


def test_formulas_without_a_saved_value_are_errors_in_any_column(tmp_path: Path) -> None:
    rows = row_xml(2, '<c r="F2"><f>0.2+0.3</f></c>', '<c r="G2"><f>A2&amp;"!"</f><v/></c>')
    assert messages(write_sheet_xml(tmp_path, HEAD_XML + rows)) == [
        "Sheet1!F2 normalized_weirdness: is a formula without a saved value (the file was written by a program that "
        f"does not calculate formulas); {SAVE}",
        "Sheet1!G2 notes: is a formula without a saved value (the file was written by a program that does not "
        f"calculate formulas); {SAVE}",
    ]


def test_formulas_with_saved_values_count_as_those_values(tmp_path: Path) -> None:
    rows = row_xml(2, '<c r="F2"><f>0.2+0.3</f><v>0.5</v></c>', '<c r="G2" t="str"><f>""</f><v></v></c>')
    path = write_sheet_xml(tmp_path, HEAD_XML + rows)
    assert messages(path) == []
    assert load(path).rows[0].fields["normalized_weirdness"] == 0.5


def test_a_workbook_asking_to_be_recalculated_has_placeholder_values(tmp_path: Path) -> None:
    rows = row_xml(2, '<c r="F2"><f>0.2+0.3</f><v>0</v></c>', '<c r="G2" t="str"><f>"x"</f><v>x</v></c>')
    path = write_sheet_xml(tmp_path, HEAD_XML + rows, calc_on_load=True)
    assert messages(path) == [
        "Sheet1!F2 normalized_weirdness: is a formula in a workbook that asks to be recalculated when opened, so its "
        f"saved value is a placeholder, not its result; {SAVE}"
    ]
    assert load(path).rows[0].extras["notes"] == "x"  # a passed-through column keeps its saved value


def test_openpyxl_written_formulas_are_refused(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [HEAD, ["A", "pop", "la", "cover", "r", "=0.2+0.3", "n"]])
    assert messages(path) == [
        f"Sheet1!F2 normalized_weirdness: is a formula without a saved value (the file was "
        f"written by a program that does not calculate formulas); {SAVE}"
    ]


def hidden_book(tmp_path: Path, autofilter: bool) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["title", "tag", "lyrics", "status"])
    for number in range(2, 9):
        sheet.append([f"Song {number}", "pop", "la", "skip" if number in (4, 5, 7) else "go"])
    for number in (4, 5, 7):
        sheet.row_dimensions[number].hidden = True
    if autofilter:
        sheet.auto_filter.ref = "A1:D8"
        sheet.auto_filter.add_filter_column(3, ["go"])
    path = tmp_path / f"hidden_{autofilter}.xlsx"
    book.save(path)
    return path


@pytest.mark.parametrize("autofilter", [False, True])
def test_hidden_rows_are_said_and_sent_unless_skipped(
    tmp_path: Path, autofilter: bool, caplog: pytest.LogCaptureFixture
) -> None:
    path = hidden_book(tmp_path, autofilter)
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        report = batchgen.validate(path)
    assert report.hidden == [4, 5, 7]
    assert "3 rows are hidden in Excel: 4-5, 7; they are sent. `skip_hidden` leaves them out" in caplog.messages
    assert report.rows == 7 and report.ok


def test_hidden_rows_with_problems_do_not_block_when_skipped(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [["title", "tag", "lyrics"], ["A", "pop", "la"], [None, "pop", "la"]])
    book_path = tmp_path / "h.xlsx"
    from openpyxl import load_workbook

    book = load_workbook(path)
    book.active.row_dimensions[3].hidden = True  # type: ignore[union-attr]
    book.save(book_path)
    assert messages(book_path) == ["Sheet1!A3 title: is required"]
    assert batchgen.validate(book_path, skip_hidden=True).errors == []


def test_near_miss_headers_are_errors_with_their_header_cell(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [
            ["Title", "Tags", "Lyrcs", "Transform", "riffid", "Weirdnes", "Notes"],
            ["A", "pop", "la", "cover", "r", 0.5, "n"],
        ],
    )
    assert messages(path) == [
        "Sheet1!C1 Lyrcs: looks like lyrics but is not one of its accepted names (lyrics, Lyrics, Lyric); rename the "
        "column (to one of those, or to a name unlike any field to keep it unsent)",
        "Sheet1!E1 riffid: looks like riff_id but is not one of its accepted names (riff_id, Riff ID); rename the "
        "column (to one of those, or to a name unlike any field to keep it unsent)",
        "Sheet1!F1 Weirdnes: looks like normalized_weirdness but is not one of its accepted names "
        "(normalized_weirdness, Normalized Weirdness, normalised weirdness, Weirdness); rename the column (to one of "
        "those, or to a name unlike any field to keep it unsent)",
        "Sheet1!D2 transform: cover needs a riff_id or an audio_upload_id",
        "Sheet1, row 2, lyrics: is required unless instrumental is TRUE",
    ]


def test_accepted_variants_are_sent_and_unrelated_columns_listed_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_csv(
        tmp_path,
        "Title,Tags,Lyric,Transform,Riff ID,Normalised Weirdness,Duration (s),Cover Strength,"
        "Notes,Catalog No\nA,pop,la,cover,r,0.5,30,0.8,n1,C1\nB,pop,la,cover,r,0.1,1,0.2,,\n",
    )
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        table = load(path)
        report = batchgen.validate(path)
    assert report.ok and report.passthrough == ["Notes", "Catalog No"]
    assert caplog.messages.count("passed through, not sent: Notes, Catalog No") == 1
    assert validate_table(table).valid[0].payload["morph"] == {
        "riff_id": "r",
        "transform": "cover",
        "normalized_weirdness": 0.5,
        "normalized_cover_strength": 0.8,
        "duration": 30,
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("title;tag;lyrics;transform;riff_id;duration\nA;pop;la;extend;r;1,5\n", []),
        ('title,tag,lyrics,transform,riff_id,duration\nA,pop,la,extend,r,"1,000"\n', []),
        (
            'title,tag,lyrics,transform,riff_id,duration\nA,pop,la,extend,r,"1,5"\n',
            ["row 2, duration: '1,5' is not a number: a comma here can only be a thousands separator (1,000)"],
        ),
        (
            "title;tag;lyrics;transform;riff_id;duration\nA;pop;la;extend;r;1.000\n",
            [
                "row 2, duration: '1.000' is ambiguous in a ;-separated file (a thousands separator, or a "
                "decimal point?); write it without the dot, or with a decimal comma"
            ],
        ),
    ],
)
def test_comma_numbers_in_csv_files(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert messages(write_csv(tmp_path, text)) == expected


def test_comma_numbers_are_read_as_the_file_means_them(tmp_path: Path) -> None:
    semicolon = write_csv(tmp_path, "title;tag;lyrics;transform;riff_id;duration\nA;pop;la;extend;r;1,5\n", "a.csv")
    comma = write_csv(tmp_path, 'title,tag,lyrics,transform,riff_id,duration\nA,pop,la,extend,r,"1,000"\n', "b.csv")
    assert validate_table(load(semicolon)).valid[0].payload["morph"]["duration"] == 1.5
    assert validate_table(load(comma)).valid[0].payload["morph"]["duration"] == 1000


def test_a_dataframe_with_missing_values_names_index_and_column() -> None:
    frame = pd.DataFrame(
        {
            "Title": ["A", None, "C", "D"],
            "Tag": ["pop", "pop", pd.NA, "pop"],
            "Lyrics": ["la", "la", "la", float("nan")],
            "Instrumental": [False, False, False, True],
            "When": [pd.NaT, pd.Timestamp("2026-01-02"), pd.NaT, pd.NaT],
        },
        index=["s1", "s2", "s3", "s4"],
    )
    report = batchgen.validate(frame)
    assert [str(e) for e in report.errors] == [
        "index 's2', column 'Title', title: is required",
        "index 's3', column 'Tag', tag: is required",
    ]
    assert (report.errors[0].row, report.errors[0].column) == ("s2", "Title")
    table = load(frame)
    payload = validate_table(table).valid[1].payload
    assert payload == {"model": "FUZZ-1.0", "title": "D", "tag": "pop", "lyrics": "", "instrumental": True}
    assert "When" not in table.rows[0].extras and "nan" not in str(table.rows)


def test_a_list_of_dicts_uses_the_same_header_rules() -> None:
    rows = [{"Title": "A", "Tags": "pop", "Lyric": "la", "Weirdnes": 0.5}, {"Title": "B", "Tags": "rock", "Lyric": "x"}]
    assert next(str(e) for e in batchgen.validate(rows).errors).startswith(
        "column 'Weirdnes', Weirdnes: looks like normalized_weirdness"
    )
    ok = batchgen.validate([{"title": "A", "tag": "pop", "lyrics": "la", "Notes": None}])
    assert ok.ok and ok.rows == 1


def test_validate_lists_every_kind_of_problem_at_once(tmp_path: Path) -> None:
    rows = '<row r="1">' + "".join(
        inline(f"{c}1", n)
        for c, n in zip(
            "ABCDEFGH",
            ["Title", "Tags", "Lyrics", "Transform", "Riff ID", "Weirdness", "Duration", "Cover Strenght"],
            strict=True,
        )
    )
    rows += "</row>"
    rows += (
        '<row r="2">'
        + inline("A2", "A")
        + inline("B2", "pop")
        + inline("C2", "la")
        + inline("D2", "cover")
        + inline("E2", "r")
        + '<c r="F2" t="e"><v>#N/A</v></c>'
        + inline("G2", "1,5")
        + "</row>"
    )
    rows += '<row r="3" hidden="1">' + inline("B3", "pop") + inline("C3", "la") + '<c r="F3"><f>1/3</f></c>' + "</row>"
    found = messages(write_sheet_xml(tmp_path, rows))
    assert found == [
        "Sheet1!H1 Cover Strenght: looks like normalized_cover_strength but is not one of its accepted names "
        "(normalized_cover_strength, Normalized Cover Strength, normalised cover strength, Cover Strength); rename "
        "the column (to one of those, or to a name unlike any field to keep it unsent)",
        "Sheet1!F2 normalized_weirdness: #N/A is an Excel error value; fix the formula or the cell",
        "Sheet1!G2 duration: '1,5' is not a number: a comma here can only be a thousands separator (1,000)",
        "Sheet1!A3 title: is required",
        "Sheet1!D3 transform: is required when morph options are given (normalized_weirdness)",
        "Sheet1!F3 normalized_weirdness: is a formula without a saved value (the file was written by a program that "
        f"does not calculate formulas); {SAVE}",
    ]


def test_a_header_in_another_unit_than_seconds_is_an_error_naming_its_header_cell(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [
            ["Title", "Tag", "Lyrics", "Transform", "Riff ID", "Duration (min)", "Crop End At (ms)", "Notes (min)"],
            ["A", "pop", "la", "extend", "r", 2, 95000, "n"],
        ],
    )
    report = batchgen.validate(path)
    assert [str(error) for error in report.errors] == [
        "Sheet1!F1 Duration (min): is in minutes, but the API takes duration in seconds: its values would be sent "
        "in the wrong unit; convert them to seconds and name the column 'Duration (s)'",
        "Sheet1!G1 Crop End At (ms): is in milliseconds, but the API takes crop_end_at in seconds: its values would "
        "be sent in the wrong unit; convert them to seconds and name the column 'Crop End At (s)'",
    ]
    assert (report.errors[0].row, report.errors[0].cell, report.errors[0].column) == (1, "Sheet1!F1", "Duration (min)")
    assert report.invalid_rows == 1  # every row would carry the wrong unit: none may be sent


def test_units_in_csv_and_dataframe_headers_name_the_header() -> None:
    frame = pd.DataFrame({"title": ["A"], "tag": ["pop"], "lyrics": ["la"], "transform": ["extend"]})
    frame["riff_id"], frame["Duration (beats)"] = "r", 16
    assert [str(error) for error in batchgen.validate(frame).errors] == [
        "column 'Duration (beats)', Duration (beats): says 'beats', which may be a unit: the API takes duration in "
        "seconds, so its values could be sent in the wrong unit; if they are seconds, name the column 'Duration (s)'"
    ]


def test_seconds_in_any_spelling_are_sent_as_they_are(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "Title,Tag,Lyrics,Transform,Riff ID,Duration (secs),Crop End At [seconds],Weirdness (0-1)\n"
        "A,pop,la,extend,r,30,12.5,0.5\n",
    )
    assert messages(path) == []
    assert validate_table(load(path)).valid[0].payload["morph"] == {
        "riff_id": "r",
        "transform": "extend",
        "normalized_weirdness": 0.5,
        "crop_end_at": 12.5,
        "duration": 30,
    }


def test_a_csv_record_with_more_cells_than_its_header_is_an_error_naming_the_row(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "Title,Tag,Lyrics,,\n"
        "Midnight Harbor,synthwave, dreamy,Neon on the water\n"
        '"Quoted, fine","synthwave, dreamy",la,,\n'
        "Trailing,pop,la,,,,\n",
    )
    report = batchgen.validate(path)
    assert [str(error) for error in report.errors] == [
        "row 2, extra cells: the row has 4 cells but the header has 3: a comma in a cell without quotes around it "
        "splits the cell and shifts the ones after it (beyond the header: 'Neon on the water'); put that cell in "
        'double quotes, as in "synthwave, dreamy"'
    ]
    assert (report.errors[0].row, report.errors[0].cell) == (2, "row 2")
    valid = validate_table(load(path)).valid
    assert [item.payload["tag"] for item in valid] == ["synthwave, dreamy", "pop"]
    assert [item.source.number for item in valid] == [3, 4]


LOST = (
    "Title,Tag,Lyrics,Notes\n"
    '??? (Sakura Rain),j-pop,"Ame ga\n?? ???",ok\n'
    "Why???,pop,Café (?) olé,???\n"
    "Où ?,chanson,la,\n"
    "Fine,pop,Who? What?,\n"
)


def test_question_mark_words_in_a_legacy_encoded_csv_are_lost_characters(tmp_path: Path) -> None:
    path = write_csv(tmp_path, LOST, encoding="cp1252")
    report = batchgen.validate(path, encoding="cp1252")
    fix = (
        "saved as cp1252, the file lost the characters that encoding cannot hold (Japanese, emoji...); save the "
        'sheet as "CSV UTF-8" and use that file'
    )
    assert [str(error) for error in report.errors] == [
        f"row 2, title: '??? (Sakura Rain)' has a word of only ? marks: {fix}",
        f"row 2, lyrics: 'Ame ga\\n?? ???' has a word of only ? marks: {fix}",
        f"row 3, lyrics: 'Café (?) olé' has a word of only ? marks: {fix}",
        f"row 4, title: 'Où ?' has a word of only ? marks: {fix}",
    ]
    assert (report.errors[0].row, report.errors[0].cell, report.errors[0].column) == (2, "row 2", "Title")


def test_question_marks_in_a_utf8_csv_are_what_the_person_typed(tmp_path: Path) -> None:
    path = write_csv(tmp_path, LOST)
    assert batchgen.validate(path).ok and batchgen.validate(path, encoding="utf-8").ok
    assert validate_table(load(path)).valid[0].payload["title"] == "??? (Sakura Rain)"


def test_dataframe_numbers_are_the_numbers_a_person_sees() -> None:
    frame = pd.DataFrame(
        {
            "title": ["A", "B"],
            "tag": "pop",
            "lyrics": "la",
            "transform": "extend",
            "riff_id": "r",
            "weirdness": np.array([0.1, 0.7], dtype="float32"),
            "cover strength": [Decimal("0.5"), Decimal("NaN")],
            "duration": np.array([30, 12], dtype="int16"),
            "crop end at": np.array([12.5, np.nan], dtype="float16"),
            "variation strength": pd.array([None, 0.3], dtype="Float32"),
        }
    )
    payloads = [item.payload for item in validate_table(load(frame)).valid]
    assert [json.dumps(payload["morph"]) for payload in payloads] == [
        '{"riff_id": "r", "transform": "extend", "normalized_weirdness": 0.1, "normalized_cover_strength": 0.5, '
        '"crop_end_at": 12.5, "duration": 30}',
        '{"riff_id": "r", "transform": "extend", "normalized_weirdness": 0.7, "normalized_variation_strength": 0.3, '
        '"duration": 12}',
    ]


def test_a_list_of_dicts_with_decimals_and_numpy_scalars() -> None:
    rows = [
        {"title": "A", "tag": "pop", "lyrics": "la", "transform": "cover", "riff_id": "r", "weirdness": Decimal("0.5")},
        {
            "title": "B",
            "tag": "pop",
            "lyrics": "la",
            "transform": "cover",
            "riff_id": "r",
            "weirdness": np.float32(0.3),
        },
        {"title": "C", "tag": "pop", "lyrics": "la", "transform": "extend", "riff_id": "r", "duration": np.int64(7)},
    ]
    morphs = [item.payload["morph"] for item in validate_table(load(rows)).valid]
    assert [json.dumps(morph, sort_keys=True) for morph in morphs] == [
        '{"normalized_weirdness": 0.5, "riff_id": "r", "transform": "cover"}',
        '{"normalized_weirdness": 0.3, "riff_id": "r", "transform": "cover"}',
        '{"duration": 7, "riff_id": "r", "transform": "extend"}',
    ]
    bad = [{**rows[0], "weirdness": Decimal("1.5")}]
    assert [str(error) for error in batchgen.validate(bad).errors] == [
        "index 0, column 'weirdness', normalized_weirdness: 1.5 is above the maximum 1"
    ]


def test_repeated_index_labels_are_named_with_their_position() -> None:
    frame = pd.DataFrame({"title": ["A", None, "C", None], "tag": "pop", "lyrics": "la"}, index=["x", "y", "x", "x"])
    report = batchgen.validate(frame)
    assert [str(error) for error in report.errors] == [
        "index 'y', column 'title', title: is required",
        "index 'x' (position 3), column 'title', title: is required",
    ]
    assert [error.row for error in report.errors] == ["y", "'x' (position 3)"]
    assert [row.label for row in load(frame).rows] == ["'x' (position 0)", "y", "'x' (position 2)", "'x' (position 3)"]
