"""Turn raw rows into request payloads, or into problems that name the cell a person must fix.

Cell parsing (numbers stored as text, the contract's boolean spellings, case-insensitive enums) and the
product's own rules (required text, morph consistency) live here; value ranges come from :mod:`.schema`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .loader import SourceRow, Table
from .schema import (
    DEFAULT_MODEL,
    MODELS,
    MORPH_FIELDS,
    MORPH_ID_FIELDS,
    STRENGTH_FIELDS,
    TIME_FIELDS,
    TRANSFORMS,
    GenerateRequest,
)

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "x"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})
_SPACES = re.compile(r"\s+")


class CellError(ValueError):
    """A cell whose value cannot be read as what its column needs."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid cell: ``Sheet1!F12 normalized_weirdness: 1.4 is above the maximum 1``."""

    row: int
    field: str
    ref: str
    message: str

    def __str__(self) -> str:
        return f"{self.ref} {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class ValidRow:
    """A row that passed: its source (for row number and passthrough columns) and the body to POST."""

    source: SourceRow
    payload: dict[str, Any]


@dataclass(slots=True)
class Validation:
    """Every valid row and every problem of a file, so all of them are reported at once."""

    valid: list[ValidRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    invalid_rows: list[SourceRow] = field(default_factory=list)
    duplicates: list[tuple[int, int]] = field(default_factory=list)


def show(value: Any) -> str:
    """A cell value as a person would type it: ``1.4``, ``30``, ``'remix'``."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return f"{value:.12g}"
    return repr(str(value)[:60])


def parse_text(value: Any) -> str:
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


def parse_number(value: Any) -> float:
    """Excel numbers and numeric text (`` 0.5 ``, ``0,5``, ``50%``) as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CellError(f"{show(value)} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip().replace("\u00a0", "")
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1].strip(), 0.01
    try:
        return float(text) * scale
    except ValueError:
        raise CellError(f"{show(value)} is not a number") from None


def parse_bool(value: Any) -> bool:
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
    raise CellError(f"{show(value)} is not a yes/no value; use TRUE or FALSE (also yes/no, y/n, 1/0, x)")


def _choice(options: tuple[str, ...], what: str, fold: Callable[[str], str]) -> Callable[[Any], str]:
    """A parser that matches a cell against ``options`` after ``fold`` and returns the canonical spelling."""
    canonical = {fold(option): option for option in options}

    @functools.lru_cache(maxsize=1024)  # a column holds a handful of spellings, repeated on every row
    def lookup(text: str) -> str | None:
        return canonical.get(fold(text))

    def parse(value: Any) -> str:
        found = lookup(parse_text(value))
        if found is None:
            raise CellError(f"{show(value)} is not a {what}; use one of {', '.join(options)}")
        return found

    return parse


parse_model = _choice(MODELS, "model", lambda s: _SPACES.sub(" ", s).lower())
parse_transform = _choice(TRANSFORMS, "transform", lambda s: re.sub(r"[\s\-]+", "_", s).lower())

PARSERS: dict[str, Callable[[Any], Any]] = {
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


def validate_table(table: Table, default_model: str = DEFAULT_MODEL) -> Validation:
    """Check every row of ``table``; collect payloads for the good rows and problems for the others."""
    result = Validation()
    for row in table.rows:
        problems, payload = _validate_row(table, row, default_model)
        if problems:
            result.problems.extend(problems)
            result.invalid_rows.append(row)
        else:
            result.valid.append(ValidRow(row, payload))
    result.duplicates = find_duplicates(result.valid)
    return result


def find_duplicates(valid: list[ValidRow]) -> list[tuple[int, int]]:
    """(first row, later row) for each row whose request is identical to an earlier row's: each costs money."""
    first: dict[str, int] = {}
    pairs = []
    for item in valid:
        request = json.dumps(item.payload, sort_keys=True, ensure_ascii=False)
        if request in first:
            pairs.append((first[request], item.source.number))
        else:
            first[request] = item.source.number
    return pairs


def _validate_row(table: Table, row: SourceRow, default_model: str) -> tuple[list[Problem], dict[str, Any]]:
    problems: list[Problem] = []

    def report(name: str, message: str) -> None:
        problems.append(Problem(row.number, name, table.cell_ref(row.number, name), message))

    values: dict[str, Any] = {}
    for name, raw in row.fields.items():
        try:
            values[name] = PARSERS[name](raw)
        except CellError as exc:
            report(name, str(exc))
    for name in ("title", "tag"):
        if name not in row.fields:
            report(name, "is required" + ("" if name in table.columns else f"; the file has no {name} column"))
    instrumental = values.get("instrumental", False)
    instrumental_unreadable = "instrumental" in row.fields and "instrumental" not in values
    if not instrumental and not instrumental_unreadable and not values.get("lyrics"):
        report("lyrics", "is required unless instrumental is TRUE")
    morph = {name: values[name] for name in MORPH_FIELDS if name in values}
    given_morph = [name for name in MORPH_FIELDS if name in row.fields]
    _check_morph(given_morph, morph, report)

    body = {
        "model": values.get("model", default_model),
        "title": values.get("title", ""),
        "tag": values.get("tag", ""),
        "lyrics": values.get("lyrics", ""),
        "instrumental": instrumental,
    }
    if morph:
        body["morph"] = morph
    try:
        payload = GenerateRequest.model_validate(body).payload()
    except ValidationError as exc:
        for error in exc.errors():
            report(str(error["loc"][-1]), _message(error))
    if problems:
        problems.sort(key=lambda p: (len(table.columns.get(p.field, "~~~~")), table.columns.get(p.field, "~")))
        return problems, {}
    if "morph" in payload:
        payload["morph"] = {k: _json_number(v) for k, v in payload["morph"].items()}
    return problems, payload


def _check_morph(given: list[str], morph: dict[str, Any], report: Callable[[str, str], None]) -> None:
    """The contract's morph consistency rules, reported on the cell a person would change."""
    if not given:
        return
    transform = morph.get("transform")
    if "transform" not in given:
        report("transform", f"is required when morph options are given ({', '.join(given)})")
        return
    if transform is None:
        return
    ids = [name for name in MORPH_ID_FIELDS if name in given]
    if not ids:
        report("transform", f"{transform} needs a riff_id or an audio_upload_id")
    elif len(ids) == 2:
        report("audio_upload_id", "give either riff_id or audio_upload_id, not both")
    if transform == "inpaint":
        start, end = morph.get("replace_start_at"), morph.get("replace_end_at")
        if "replace_start_at" not in given or "replace_end_at" not in given:
            report("transform", "inpaint needs replace_start_at and replace_end_at")
        elif isinstance(start, float) and isinstance(end, float) and not start < end:
            report("replace_end_at", f"{show(end)} must be greater than replace_start_at ({show(start)})")


def _message(error: dict[str, Any]) -> str:
    """Pydantic's error in the words of the contract, with the /100 hint for percentages."""
    value, kind, name = error.get("input"), error["type"], str(error["loc"][-1])
    if kind == "less_than_equal":
        message = f"{show(value)} is above the maximum {show(error['ctx']['le'])}"
        if name in STRENGTH_FIELDS and 1 < value <= 100:
            message += f"; did you mean {show(value / 100)}?"
        return message
    if kind == "greater_than_equal":
        return f"{show(value)} is below the minimum {show(error['ctx']['ge'])}"
    if kind == "finite_number":
        return f"{value} is not a finite number"
    return f"{show(value)}: {error['msg']}"


def _json_number(value: Any) -> Any:
    """Whole numbers are sent as JSON integers (``30``, not ``30.0``); everything else as it is."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
