"""The validator: every rule of the contract, with its message and cell reference, and the payload's shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchgen.loader import load
from batchgen.validate import Validation, validate_table

from ..support.helpers import write_csv, write_xlsx

HEADER = [
    "title",
    "tag",
    "lyrics",
    "instrumental",
    "model",
    "transform",
    "riff_id",
    "audio_upload_id",
    "normalized_weirdness",
    "crop_end_at",
    "replace_start_at",
    "replace_end_at",
    "duration",
]


def check(tmp_path: Path, *rows: dict[str, Any], default_model: str = "FUZZ-1.0") -> Validation:
    """Validate rows given as {field: value} under HEADER, in a workbook sheet named Sheet1."""
    path = write_xlsx(tmp_path, [HEADER, *([row.get(name) for name in HEADER] for row in rows)])
    return validate_table(load(path), default_model)


def problems(tmp_path: Path, **cells: Any) -> list[str]:
    row = {"title": "A", "tag": "pop", "lyrics": "la", **cells}
    return [str(p) for p in check(tmp_path, {k: v for k, v in row.items() if v is not None}).errors]


def payload(tmp_path: Path, **cells: Any) -> dict[str, Any]:
    row = {"title": "A", "tag": "pop", "lyrics": "la", **cells}
    result = check(tmp_path, {k: v for k, v in row.items() if v is not None})
    assert not result.errors, [str(p) for p in result.errors]
    return result.valid[0].payload


@pytest.mark.parametrize(
    "cells, expected",
    [
        ({"title": None}, ["Sheet1!A2 title: is required"]),
        ({"title": "   "}, ["Sheet1!A2 title: is required"]),
        ({"tag": None}, ["Sheet1!B2 tag: is required"]),
        ({"lyrics": None}, ["Sheet1!C2 lyrics: is required unless instrumental is TRUE"]),
        ({"lyrics": None, "instrumental": "no"}, ["Sheet1!C2 lyrics: is required unless instrumental is TRUE"]),
        (
            {"instrumental": "maybe"},
            ["Sheet1!D2 instrumental: 'maybe' is not a yes/no value; use TRUE or FALSE (also yes/no, y/n, 1/0, x)"],
        ),
        (
            {"model": "FUZZ-2.0"},
            ["Sheet1!E2 model: 'FUZZ-2.0' is not a model; use one of FUZZ-1.0, FUZZ-1.1, FUZZ-1.0 Pro, FUZZ-1.1 Pro"],
        ),
        (
            {"transform": "remix", "riff_id": "r"},
            [
                "Sheet1!F2 transform: 'remix' is not a transform; use one of cover, extend, inpaint, swap_vocals, "
                "swap_sound"
            ],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": 1.4},
            ["Sheet1!I2 normalized_weirdness: 1.4 is above the maximum 1"],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": 50},
            ["Sheet1!I2 normalized_weirdness: 50 is above the maximum 1; did you mean 0.5?"],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": 1.99},
            ["Sheet1!I2 normalized_weirdness: 1.99 is above the maximum 1"],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": 100},
            ["Sheet1!I2 normalized_weirdness: 100 is above the maximum 1; did you mean 1?"],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": 150},
            ["Sheet1!I2 normalized_weirdness: 150 is above the maximum 1"],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": -0.1},
            ["Sheet1!I2 normalized_weirdness: -0.1 is below the minimum 0"],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": "nan"},
            ["Sheet1!I2 normalized_weirdness: nan is not a finite number"],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": "lots"},
            ["Sheet1!I2 normalized_weirdness: 'lots' is not a number"],
        ),
        (
            {"transform": "cover", "riff_id": "r", "normalized_weirdness": True},
            ["Sheet1!I2 normalized_weirdness: TRUE is not a number"],
        ),
        (
            {"transform": "extend", "riff_id": "r", "crop_end_at": -5},
            ["Sheet1!J2 crop_end_at: -5 is below the minimum 0"],
        ),
        (
            {"transform": "extend", "riff_id": "r", "duration": "inf"},
            ["Sheet1!M2 duration: inf is not a finite number"],
        ),
        (
            {"riff_id": "r", "normalized_weirdness": 0.5},
            ["Sheet1!F2 transform: is required when morph options are given (riff_id, normalized_weirdness)"],
        ),
        ({"transform": "cover"}, ["Sheet1!F2 transform: cover needs a riff_id or an audio_upload_id"]),
        (
            {"transform": "cover", "riff_id": "r", "audio_upload_id": "u"},
            ["Sheet1!H2 audio_upload_id: give either riff_id or audio_upload_id, not both"],
        ),
        (
            {"transform": "inpaint", "riff_id": "r"},
            ["Sheet1!F2 transform: inpaint needs replace_start_at and replace_end_at"],
        ),
        (
            {"transform": "inpaint", "riff_id": "r", "replace_start_at": 20, "replace_end_at": 20},
            ["Sheet1!L2 replace_end_at: 20 must be greater than replace_start_at (20)"],
        ),
    ],
)
def test_each_rule_reports_its_cell(tmp_path: Path, cells: dict[str, Any], expected: list[str]) -> None:
    assert problems(tmp_path, **cells) == expected


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        {"title": "ok", "tag": "pop", "lyrics": "la"},
        {"tag": "pop", "lyrics": "la", "model": "nope"},
        {"title": "B", "tag": "pop", "lyrics": "la", "transform": "cover", "riff_id": "r", "normalized_weirdness": 2},
    )
    assert [str(p) for p in result.errors] == [
        "Sheet1!A3 title: is required",
        "Sheet1!E3 model: 'nope' is not a model; use one of FUZZ-1.0, FUZZ-1.1, FUZZ-1.0 Pro, FUZZ-1.1 Pro",
        "Sheet1!I4 normalized_weirdness: 2 is above the maximum 1; did you mean 0.02?",
    ]
    assert [row.source.number for row in result.valid] == [2]
    assert [row.number for row in result.invalid_rows] == [3, 4]


def test_csv_problems_name_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "title,tag,lyrics,transform,riff_id,normalized_weirdness\nA,pop,la,cover,r,1.4\n")
    assert [str(p) for p in validate_table(load(path)).errors] == [
        "row 2, normalized_weirdness: 1.4 is above the maximum 1"
    ]


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "title,lyrics\nA,la\n")
    assert [str(p) for p in validate_table(load(path)).errors] == [
        "row 2, tag: is required; the file has no tag column"
    ]


def test_minimal_payload_has_instrumental_and_no_morph(tmp_path: Path) -> None:
    assert payload(tmp_path, title="  A  ", tag=" pop ") == {
        "model": "FUZZ-1.0",
        "title": "A",
        "tag": "pop",
        "lyrics": "la",
        "instrumental": False,
    }


def test_instrumental_row_sends_empty_lyrics(tmp_path: Path) -> None:
    assert payload(tmp_path, lyrics=None, instrumental=True) == {
        "model": "FUZZ-1.0",
        "title": "A",
        "tag": "pop",
        "lyrics": "",
        "instrumental": True,
    }


@pytest.mark.parametrize(
    "spelling, value",
    [
        (True, True),
        (False, False),
        ("TRUE", True),
        ("false", False),
        ("Yes", True),
        ("no", False),
        ("Y", True),
        ("n", False),
        (1, True),
        (0, False),
        ("1", True),
        ("0", False),
        ("x", True),
        ("X", True),
        (None, False),
    ],
)
def test_boolean_spellings(tmp_path: Path, spelling: Any, value: bool) -> None:
    assert payload(tmp_path, instrumental=spelling)["instrumental"] is value


@pytest.mark.parametrize(
    "spelling, canonical",
    [
        ("fuzz-1.1", "FUZZ-1.1"),
        ("FUZZ-1.0 PRO", "FUZZ-1.0 Pro"),
        (" fuzz-1.1  pro ", "FUZZ-1.1 Pro"),
    ],
)
def test_model_is_matched_case_insensitively_and_sent_canonical(tmp_path: Path, spelling: str, canonical: str) -> None:
    assert payload(tmp_path, model=spelling)["model"] == canonical


def test_default_model_applies_to_blank_cells(tmp_path: Path) -> None:
    result = check(tmp_path, {"title": "A", "tag": "pop", "lyrics": "la"}, default_model="FUZZ-1.1 Pro")
    assert result.valid[0].payload["model"] == "FUZZ-1.1 Pro"


def test_morph_holds_exactly_the_given_fields_as_numbers(tmp_path: Path) -> None:
    body = payload(
        tmp_path, transform="Swap Vocals", audio_upload_id=12345, normalized_weirdness=" 0.25 ", duration="30"
    )
    assert body["morph"] == {
        "transform": "swap_vocals",
        "audio_upload_id": "12345",
        "normalized_weirdness": 0.25,
        "duration": 30,
    }
    assert isinstance(body["morph"]["duration"], int)


def test_numbers_as_text_percent_and_thousands(tmp_path: Path) -> None:
    body = payload(tmp_path, transform="extend", riff_id="r", normalized_weirdness=" 0.4 ", crop_end_at="1,000")
    assert body["morph"] == {"transform": "extend", "riff_id": "r", "normalized_weirdness": 0.4, "crop_end_at": 1000}
    assert (
        payload(tmp_path, transform="cover", riff_id="r", normalized_weirdness="40%")["morph"]["normalized_weirdness"]
        == 0.4
    )


def test_a_decimal_comma_in_a_workbook_text_cell_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, transform="cover", riff_id="r", normalized_weirdness="0,4") == [
        "Sheet1!I2 normalized_weirdness: '0,4' is not a number: a comma here can only be a thousands separator (1,000)"
    ]


def test_lyrics_keep_inner_line_breaks_with_crlf_as_lf(tmp_path: Path) -> None:
    assert payload(tmp_path, lyrics="one\r\ntwo\rthree\n\nfour")["lyrics"] == "one\ntwo\nthree\n\nfour"
