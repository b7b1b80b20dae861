"""Turn raw rows into request payloads, or into errors that name the cell a person must fix.

Cell parsing lives in :mod:`.cells`; value ranges come from the request model in :mod:`.schema`; the
product's own rules (required text, morph consistency) are here. Every problem of a file is collected, so a
person fixes them all in one pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .cells import PARSERS, BadValue, parse_text, show
from .loader import EXTRA_CELLS, BadCell, SourceRow, Table
from .results import CellError
from .schema import DEFAULT_MODEL, MORPH_FIELDS, MORPH_ID_FIELDS, STRENGTH_FIELDS, GenerateRequest, canonical


@dataclass(frozen=True, slots=True)
class ValidRow:
    """A row that passed: its source (for row number and passthrough columns) and the body to POST."""

    source: SourceRow
    payload: dict[str, Any]


@dataclass(slots=True)
class Validation:
    """Every valid row and every problem of a table, so all of them are reported at once."""

    valid: list[ValidRow] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)
    invalid_rows: list[SourceRow] = field(default_factory=list)
    duplicates: list[tuple[int | str, int | str]] = field(default_factory=list)


def validate_table(table: Table, default_model: str | None = None) -> Validation:
    """Check every row of ``table``; payloads for the good rows, errors for the others."""
    header_errors = _header_errors(table)
    result = Validation(errors=list(header_errors))
    for row in table.rows:
        errors, payload = _RowCheck(table, row).run(default_model or DEFAULT_MODEL)
        if errors:
            result.errors.extend(errors)
            result.invalid_rows.append(row)
        else:
            result.valid.append(ValidRow(row, payload))
    if header_errors:  # the column's setting would be missing from (or wrong on) every row: none may be sent
        result.invalid_rows, result.valid = list(table.rows), []
    result.duplicates = find_duplicates(result.valid)
    return result


def _header_errors(table: Table) -> list[CellError]:
    """Columns that resemble a field without being one of its accepted names (a setting would be dropped), or
    that name a number field in another unit than it is sent in (a setting would be wrong)."""
    errors = []
    for miss in table.header_problems:
        cell = f"column {miss.header!r}" if table.kind == "frame" else table.cell_ref(table.header_row, miss.header)
        errors.append(CellError(table.header_row, miss.header, cell, miss.message(), miss.header))
    return errors


def find_duplicates(valid: list[ValidRow]) -> list[tuple[int | str, int | str]]:
    """(first row, later row) for each row whose request is identical to an earlier row's: each costs money."""
    first: dict[str, int | str] = {}
    pairs = []
    for item in valid:
        request = canonical(item.payload)
        if request in first:
            pairs.append((first[request], item.source.label))
        else:
            first[request] = item.source.label
    return pairs


class _RowCheck:
    """The checks of one row, collecting every problem with its cell."""

    def __init__(self, table: Table, row: SourceRow) -> None:
        self.table = table
        self.row = row
        self.errors: list[CellError] = []

    def report(self, name: str, message: str) -> None:
        column = self.table.headers.get(name, name)
        self.errors.append(CellError(self.row.label, column, self.table.cell_ref(self.row.label, name), message, name))

    def run(self, default_model: str) -> tuple[list[CellError], dict[str, Any]]:
        row, table = self.row, self.table
        values: dict[str, Any] = {}
        if row.overflow is not None:
            self.report(EXTRA_CELLS, row.overflow)
        for name, raw in row.fields.items():
            try:
                if isinstance(raw, BadCell):
                    raise BadValue(raw.message)
                values[name] = PARSERS[name](raw, table.decimal_comma)
            except BadValue as exc:
                self.report(name, str(exc))
        for label, raw in row.extras.items():
            if isinstance(raw, BadCell):
                self.report(label, raw.message)
        for name in ("title", "tag"):
            if name not in row.fields:
                self.report(name, "is required" + ("" if name in table.columns else f"; the file has no {name} column"))
        instrumental = values.get("instrumental", False)
        unreadable = row.fields.keys() - values.keys()  # already reported: "is required" would be noise
        if not instrumental and not unreadable & {"instrumental", "lyrics"} and not values.get("lyrics"):
            self.report("lyrics", "is required unless instrumental is TRUE")
        given = [name for name in MORPH_FIELDS if name in row.fields]
        morph = {name: values[name] for name in MORPH_FIELDS if name in values}
        self._check_morph(given, morph)
        body: dict[str, Any] = {
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
                self.report(str(error["loc"][-1]), _message(dict(error)))
        if self.errors:
            order = {name: index for index, name in enumerate(table.columns)}
            self.errors.sort(key=lambda e: order.get(e.field, len(order)))
            return self.errors, {}
        if "morph" in payload:
            payload["morph"] = {k: _json_number(v) for k, v in payload["morph"].items()}
        return [], payload

    def _check_morph(self, given: list[str], morph: dict[str, Any]) -> None:
        """The contract's morph consistency rules, reported on the cell a person would change."""
        if not given:
            return
        transform = morph.get("transform")
        if "transform" not in given:
            self.report("transform", f"is required when morph options are given ({', '.join(given)})")
            return
        if transform is None:
            return
        ids = [name for name in MORPH_ID_FIELDS if name in given]
        if not ids:
            self.report("transform", f"{transform} needs a riff_id or an audio_upload_id")
        elif len(ids) == 2:
            self.report("audio_upload_id", "give either riff_id or audio_upload_id, not both")
        if transform == "inpaint":
            start, end = morph.get("replace_start_at"), morph.get("replace_end_at")
            if "replace_start_at" not in given or "replace_end_at" not in given:
                self.report("transform", "inpaint needs replace_start_at and replace_end_at")
            elif isinstance(start, float) and isinstance(end, float) and not start < end:
                self.report("replace_end_at", f"{show(end)} must be greater than replace_start_at ({show(start)})")


def title_of(row: SourceRow) -> str:
    """A row's title for listings, even when its cell is bad."""
    title = row.fields.get("title", "")
    return "" if isinstance(title, BadCell) else parse_text(title, False)


def _message(error: dict[str, Any]) -> str:
    """Pydantic's error in the words of the contract, with the /100 hint for percentages.

    Only values in [2, 100] get the hint: 1.4 in a 0..1 column is a slip, not a percentage, and 0.014 would
    be a misleading suggestion.
    """
    value, kind, name = error.get("input"), error["type"], str(error["loc"][-1])
    if kind == "less_than_equal":
        message = f"{show(value)} is above the maximum {show(error['ctx']['le'])}"
        if name in STRENGTH_FIELDS and isinstance(value, (int, float)) and 2 <= value <= 100:
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
