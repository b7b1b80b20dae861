"""Cell parsing: numbers are never read as other numbers; the comma rules of the contract; yes/no words."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from batchgen.cells import BadValue, parse_bool, parse_model, parse_number, parse_text, parse_transform


@pytest.mark.parametrize(
    "text, comma, value",
    [
        ("0.5", False, 0.5),
        (" 0.5 ", False, 0.5),
        ("\u00a00.5\u00a0", False, 0.5),
        ("1,000", False, 1000.0),
        ("12,345.5", False, 12345.5),
        ("1,234,567", False, 1234567.0),
        ("50%", False, 0.5),
        ("-3", False, -3.0),
        (".5", False, 0.5),
        ("1e2", False, 100.0),
        ("0,5", True, 0.5),
        ("1,000", True, 1.0),
        ("12,75", True, 12.75),
        ("0.5", True, 0.5),
        ("50,5%", True, 0.505),
        (",5", True, 0.5),
    ],
)
def test_numbers(text: str, comma: bool, value: float) -> None:
    assert parse_number(text, comma) == pytest.approx(value)


@pytest.mark.parametrize(
    "text, comma, message",
    [
        ("1,5", False, "'1,5' is not a number: a comma here can only be a thousands separator (1,000)"),
        ("0,5", False, "'0,5' is not a number: a comma here can only be a thousands separator (1,000)"),
        ("1,00", False, "'1,00' is not a number: a comma here can only be a thousands separator (1,000)"),
        ("01,000", False, "'01,000' is not a number: a comma here can only be a thousands separator (1,000)"),
        ("1,000,5", True, "'1,000,5' is not a number: a comma here can only be the decimal mark (0,5)"),
        (
            "1.000",
            True,
            "'1.000' is ambiguous in a ;-separated file (a thousands separator, or a decimal point?); "
            "write it without the dot, or with a decimal comma",
        ),
        ("1 000", False, "'1 000' is not a number"),
        ("1_000", False, "'1_000' is not a number"),
        ("١٢", False, "'١٢' is not a number"),
        ("0x10", False, "'0x10' is not a number"),
        ("lots", False, "'lots' is not a number"),
    ],
)
def test_numbers_that_could_be_misread_are_refused(text: str, comma: bool, message: str) -> None:
    with pytest.raises(BadValue) as refused:
        parse_number(text, comma)
    assert str(refused.value) == message


def test_excel_numbers_and_non_numbers() -> None:
    assert parse_number(0.25) == 0.25 and parse_number(30) == 30.0
    with pytest.raises(BadValue, match="TRUE is not a number"):
        parse_number(True)
    with pytest.raises(BadValue, match="'2026-01-02' is a date or time, not a number"):
        parse_number(dt.date(2026, 1, 2))


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, True),
        ("TRUE", True),
        ("yes", True),
        ("Y", True),
        ("1", True),
        (1, True),
        (1.0, True),
        ("x", True),
        (False, False),
        ("false", False),
        ("No", False),
        ("n", False),
        ("0", False),
        (0, False),
    ],
)
def test_booleans(value: Any, expected: bool) -> None:
    assert parse_bool(value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, "si", "oui"])
def test_other_booleans_are_refused(value: Any) -> None:
    with pytest.raises(BadValue, match="is not a yes/no value; use TRUE or FALSE"):
        parse_bool(value)


def test_text_choices_and_numbers_as_text() -> None:
    assert parse_text(12345.0) == "12345" and parse_text(" a\r\nb ") == "a\nb" and parse_text(False) == "FALSE"
    assert parse_model(" fuzz-1.1   pro ") == "FUZZ-1.1 Pro"
    assert parse_transform("Swap-Vocals") == "swap_vocals"
    with pytest.raises(BadValue, match="'remix' is not a transform; use one of cover, extend"):
        parse_transform("remix")
