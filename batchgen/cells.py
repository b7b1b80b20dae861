"""Read one cell as what its column needs: text, a number, a yes/no, a model or a transform.

A number is never silently read as another number: a comma is the decimal mark only in a ``;``-separated
CSV file, a thousands separator only where it groups digits by three (``1,000``, ``12,345.5``), and anything
else that is not plainly a number is refused with the reason.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from .schema import MODELS, STRENGTH_FIELDS, TIME_FIELDS, TRANSFORMS

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "x"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})
_SPACES = re.compile(r"\s+")
_PLAIN = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.ASCII | re.IGNORECASE)
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?", re.ASCII)
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+", re.ASCII)
_DOT_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+", re.ASCII)


class Parser(Protocol):
    """Reads one cell; ``decimal_comma`` says the file writes 0,5 for one half (a ;-separated CSV)."""

    def __call__(self, value: Any, decimal_comma: bool = False) -> Any: ...


class BadValue(ValueError):
    """A cell whose value cannot be read as what its column needs; the text says why."""


def show(value: Any) -> str:
    """A cell value as a person would type it: ``1.4``, ``30``, ``'remix'``."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return f"{value:.12g}"
    return repr(str(value)[:60])


def parse_text(value: Any, decimal_comma: bool = False) -> str:
    """Any cell as text; Excel stores ``12345`` typed in a text column as the number 12345.0."""
    if isinstance(value, str):
        return (value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value).strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value).strip()


def parse_number(value: Any, decimal_comma: bool = False) -> float:
    """Excel numbers, a DataFrame's ``Decimal`` and numeric text (`` 0.5 ``, ``50%``, ``1,000``; ``0,5`` in a
    ``;`` file) as a float."""
    if isinstance(value, bool):
        raise BadValue(f"{show(value)} is not a number")
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        raise BadValue(f"{show(parse_text(value))} is a date or time, not a number")
    if not isinstance(value, str):
        raise BadValue(f"{show(value)} is not a number")
    text = value.strip().strip("\u00a0")
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1].strip(), 0.01
    if decimal_comma and _DOT_THOUSANDS.fullmatch(text):
        raise BadValue(
            f"{show(value)} is ambiguous in a ;-separated file (a thousands separator, or a decimal "
            f"point?); write it without the dot, or with a decimal comma"
        )
    if "," in text:
        if decimal_comma and _DECIMAL_COMMA.fullmatch(text):
            text = text.replace(",", ".")
        elif not decimal_comma and _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        else:
            where = "a thousands separator (1,000)" if not decimal_comma else "the decimal mark (0,5)"
            raise BadValue(f"{show(value)} is not a number: a comma here can only be {where}")
    if not _PLAIN.fullmatch(text):
        raise BadValue(f"{show(value)} is not a number")
    return float(text) * scale


def parse_bool(value: Any, decimal_comma: bool = False) -> bool:
    """TRUE/FALSE, yes/no, y/n, 1/0 or x, in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise BadValue(f"{show(value)} is not a yes/no value; use TRUE or FALSE (also yes/no, y/n, 1/0, x)")


def _choice(options: tuple[str, ...], what: str, fold: Callable[[str], str]) -> Parser:
    """A parser that matches a cell against ``options`` after ``fold`` and returns the canonical spelling."""
    canonical = {fold(option): option for option in options}

    @functools.lru_cache(maxsize=1024)  # a column holds a handful of spellings, repeated on every row
    def lookup(text: str) -> str | None:
        return canonical.get(fold(text))

    def parse(value: Any, decimal_comma: bool = False) -> str:
        found = lookup(parse_text(value))
        if found is None:
            raise BadValue(f"{show(value)} is not a {what}; use one of {', '.join(options)}")
        return found

    return parse


parse_model = _choice(MODELS, "model", lambda s: _SPACES.sub(" ", s).lower())
parse_transform = _choice(TRANSFORMS, "transform", lambda s: re.sub(r"[\s\-]+", "_", s).lower())

PARSERS: dict[str, Parser] = {
    "title": parse_text,
    "tag": parse_text,
    "lyrics": parse_text,
    "model": parse_model,
    "instrumental": parse_bool,
    "riff_id": parse_text,
    "audio_upload_id": parse_text,
    "transform": parse_transform,
    **{name: parse_number for name in (*STRENGTH_FIELDS, *TIME_FIELDS)},
}
