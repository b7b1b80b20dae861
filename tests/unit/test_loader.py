"""The loader: formats, header detection and normalisation, Excel row numbers, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from openpyxl import Workbook

from batchgen.errors import InputError
from batchgen.headers import field_for
from batchgen.loader import column_letter, load
from batchgen.ooxml import scan

from ..support.helpers import write_csv, write_xlsx
from ..support.runs import FIXTURES


@pytest.mark.parametrize(
    "header, field",
    [
        ("Title", "title"),
        ("  TITLE ", "title"),
        ("Tags", "tag"),
        ("Normalized Weirdness", "normalized_weirdness"),
        ("morph.normalized_weirdness", "normalized_weirdness"),
        ("MORPH-normalized-weirdness", "normalized_weirdness"),
        ("normalized   weirdness", "normalized_weirdness"),
        ("Riff ID", "riff_id"),
        ("morph.transform", "transform"),
        ("Crop-End.At", "crop_end_at"),
    ],
)
def test_header_names_are_normalised(header: str, field: str) -> None:
    assert field_for(header) == field


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 27, 701, 702)] == ["A", "Z", "AA", "AB", "ZZ", "AAA"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_delimiters_are_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = (
        delimiter.join(["title", "tag", "lyrics", "notes"]) + "\n" + delimiter.join(["A", "pop", "la", "x, y"]) + "\n"
    )
    table = load(write_csv(tmp_path, text.replace("x, y", '"x, y"' if delimiter == "," else "x, y")))
    assert table.rows[0].fields == {"title": "A", "tag": "pop", "lyrics": "la"}
    assert table.rows[0].extras == {"notes": "x, y"}


def test_csv_bom_crlf_and_multiline_cells_keep_excel_row_numbers(tmp_path: Path) -> None:
    text = 'title;tag;lyrics\r\n"A";pop;"one\r\ntwo\r\nthree"\r\n\r\nB;rock;"x"\r\n'
    table = load(write_csv(tmp_path, "\ufeff" + text))
    assert table.columns == {"title": "A", "tag": "B", "lyrics": "C"}
    assert [row.number for row in table.rows] == [2, 4]  # the empty record is row 3, as Excel shows it
    assert table.rows[0].fields["lyrics"] == "one\r\ntwo\r\nthree"


def test_header_below_title_lines_and_blank_rows(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [
            ["My spring catalog"],
            [],
            ["Title", "Tag", "Lyrics"],
            ["A", "pop", "la"],
            [None, " ", None],
            ["B", "rock", "x"],
        ],
    )
    table = load(path)
    assert table.header_row == 3
    assert [row.number for row in table.rows] == [4, 6]
    assert table.cell_ref(6, "tag") == "Sheet1!B6"


def test_header_row_override(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\nName,Genre,Words\n")
    table = load(path, header_row=1)
    assert [row.number for row in table.rows] == [2, 3]
    with pytest.raises(InputError, match=r"`header_row`: .* has no row 9"):
        load(path, header_row=9)


def test_unknown_columns_pass_through_and_blank_headers_are_ignored(tmp_path: Path) -> None:
    table = load(
        write_xlsx(tmp_path, [["title", "tag", "lyrics", None, "Catalog No"], ["A", "pop", "la", "stray", "C-1"]])
    )
    assert table.extra_columns == ["Catalog No"]
    assert table.rows[0].extras == {"Catalog No": "C-1"}


def test_first_visible_sheet_is_read_unless_sheet_is_given(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [["title", "tag"], ["Visible", "pop"]],
        sheet="Songs",
        hidden_first=[["title", "tag"], ["Hidden", "x"]],
    )
    assert load(path).rows[0].fields["title"] == "Visible"
    assert load(path, sheet="Hidden").rows[0].fields["title"] == "Hidden"
    with pytest.raises(InputError, match=r"`sheet`: .* has no sheet 'Nope'"):
        load(path, sheet="Nope")


def test_formulas_are_read_as_cached_values() -> None:
    table = load(FIXTURES / "libreoffice_human_headers.xlsx")
    cover = next(row for row in table.rows if row.fields["title"] == "Cover Me")
    assert cover.fields["normalized_weirdness"] == 0.5
    assert cover.extras["Notes"] == "http://x"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("old.xls", b"\xd0\xcf\x11\xe0", "save it as .xlsx or .csv"),
        ("song.numbers", b"PK", "unsupported file type .numbers; save it as .xlsx or .csv"),
        ("random.xlsx", bytes(range(256)) * 4, "is not a readable Excel workbook"),
        ("empty.csv", b"", "is empty"),
        ("header_only.csv", b"title,tag,lyrics\n", "has no data rows"),
        ("no_header.csv", b"a,b,c\n1,2,3\n", "no header row found in the first 20 rows"),
        ("binary.csv", b"title,tag\n\x00\x00\x00", "is not a text file"),
        ("dupes.csv", b"title,Title,tag\nA,B,C\n", "columns A and B both name the field title"),
        ("open.csv", b'title,tag,lyrics\nA,pop,la\nB,pop,"' + b"x" * 200_000, r"at line 3 \(.*quote left open"),
    ],
)
def test_unreadable_files_give_one_clear_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load(path)


def test_an_undecodable_byte_is_named_at_its_place_and_utf16_without_a_bom_gets_its_encoding(tmp_path: Path) -> None:
    """A BOM then latin-1 text named the byte three places early (the decoder counts after the BOM); UTF-16
    without a BOM was told to try cp1252, which then failed on its NUL bytes."""
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"\xef\xbb\xbftitle,tag,lyrics\nCaf\xe9,pop,la\n")
    with pytest.raises(InputError, match=r"is not UTF-8 \(byte 0xe9 at offset 23\)"):
        load(latin)
    for order in ("le", "be"):
        wide = tmp_path / f"wide-{order}.csv"
        wide.write_bytes("title,tag,lyrics\nA,pop,la\n".encode(f"utf-16-{order}"))
        with pytest.raises(InputError, match=f"as UTF-16 text without a BOM does; pass `encoding` utf-16-{order}$"):
            load(wide)
        assert load(wide, encoding=f"utf-16-{order}").rows[0].fields["title"] == "A"


def test_non_utf8_csv_names_encoding_and_reads_with_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "title;tag;lyrics\nCafé;chanson;Été\n", encoding="cp1252")
    with pytest.raises(InputError, match=r"is not UTF-8 .*`encoding`"):
        load(path)
    assert load(path, encoding="cp1252").rows[0].fields == {"title": "Café", "tag": "chanson", "lyrics": "Été"}
    with pytest.raises(InputError, match="unknown encoding"):
        load(path, encoding="klingon")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a folder; give the spreadsheet's own path"):
        load(tmp_path)
    if Path(os.devnull).exists() and not Path(os.devnull).is_file():  # a device is no file, though it exists
        with pytest.raises(InputError, match="is not a file; give the spreadsheet's own path"):
            load(Path(os.devnull))


def test_merged_ranges_mark_every_cell_but_their_first(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["title", "tag", "lyrics"])
    sheet.merge_cells("A2:B3")
    book.save(tmp_path / "m.xlsx")
    assert scan(tmp_path / "m.xlsx", sheet.title).merged == {(2, 1): "A2:B3", (3, 0): "A2:B3", (3, 1): "A2:B3"}


def test_text_renamed_xlsx_is_recognised_and_a_broken_zip_is_not(tmp_path: Path) -> None:
    (tmp_path / "a.xlsx").write_text("title;tag\nA;pop\n")
    (tmp_path / "b.xlsx").write_bytes(b"PK\x03\x04\x00\xff\xfe")
    with pytest.raises(InputError, match=r"looks like a CSV file: rename it to a\.csv"):
        load(tmp_path / "a.xlsx")
    with pytest.raises(InputError) as broken:
        load(tmp_path / "b.xlsx")
    assert "CSV" not in str(broken.value)
