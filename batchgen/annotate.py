"""Copies of the input for people: the validation report (bad cells highlighted and commented, plus an
``errors`` sheet) and the annotated catalog (each row followed by its job ids, status and error).

An Excel input is copied with openpyxl, so its formatting and other sheets stay; a CSV or ODS input becomes a
new workbook with its cells, as text. Either way the copy is written atomically and the input is never touched.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from .errors import UsageError
from .journal import Journal
from .loader import Table, read_records
from .validate import Validation
from .writer import atomic_write

BAD = PatternFill("solid", fgColor="FFC7CE")
HEADER = Font(bold=True)
ERROR_COLUMNS = ["sheet", "cell", "row", "field", "value", "message"]


def write_report(table: Table, validation: Validation, path: str | Path, encoding: str | None = None) -> Path:
    """``validate --report``: the input with each invalid cell highlighted and commented, and an ``errors`` sheet."""
    path = check_target(path, "--report")
    book, sheet = _copy(table, encoding)
    by_cell: dict[str, list[str]] = defaultdict(list)
    errors = book.create_sheet("errors")
    for column, name in enumerate(ERROR_COLUMNS, start=1):
        _put(errors, 1, column, name)
    fields = {row.number: row.fields for row in table.rows}
    for number, problem in enumerate(validation.problems, start=2):
        cell = f"{table.columns.get(problem.field, 'A')}{problem.row}"
        by_cell[cell].append(f"{problem.field}: {problem.message}")
        value = fields.get(problem.row, {}).get(problem.field, "")
        for column, item in enumerate([sheet.title, cell, problem.row, problem.field, value, problem.message], start=1):
            _put(errors, number, column, item)
    for cell, messages in by_cell.items():
        sheet[cell].fill = BAD
        sheet[cell].comment = Comment("\n".join(messages), "batchgen")
    for cell in errors[1]:
        cell.font = HEADER
    errors.freeze_panes = "A2"
    atomic_write(path, "wb", book.save)
    return path


def write_annotated(table: Table, journal: Journal, path: str | Path, encoding: str | None = None) -> Path:
    """``run --annotate``: the input with ``job_id_1``, ``job_id_2``, ``status`` and ``error`` after each row."""
    path = check_target(path, "--annotate")
    run = journal.latest_run()
    ids: dict[int, list[str]] = {done.row: done.job_ids for done in journal.done()}
    status: dict[int, tuple[str, str]] = {record.row: (record.state, record.message or "") for record in journal.unfinished(run)}
    status.update({bad.row: (bad.state, bad.message) for bad in journal.invalid()})
    book, sheet = _copy(table, encoding)
    width = max(2, *(len(found) for found in ids.values())) if ids else 2
    first = sheet.max_column + 1
    names = [*(f"job_id_{n}" for n in range(1, width + 1)), "status", "error"]
    for offset, name in enumerate(names):
        _put(sheet, table.header_row, first + offset, name).font = HEADER
    for row in table.rows:
        found = ids.get(row.number, [])
        state, message = ("done", "") if found else status.get(row.number, ("", ""))
        for offset, value in enumerate([*found, *[""] * (width - len(found)), state, message]):
            _put(sheet, row.number, first + offset, value)
    for offset in range(len(names)):
        sheet.column_dimensions[get_column_letter(first + offset)].width = 38 if offset < width else 14
    atomic_write(path, "wb", book.save)
    return path


def check_target(path: str | Path, flag: str) -> Path:
    """A report or annotated copy is an .xlsx in an existing folder: refused before anything is sent."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise UsageError(f"{flag}: {path} must end in .xlsx")
    if not path.parent.is_dir():
        raise UsageError(f"{flag}: the folder {path.parent} does not exist")
    return path


def _copy(table: Table, encoding: str | None) -> tuple[Workbook, Worksheet]:
    """The input as an editable workbook, and the sheet that was read."""
    if table.path.suffix.lower() in (".xlsx", ".xlsm"):
        book = openpyxl.load_workbook(table.path, rich_text=True)
        return book, book[table.sheet]
    book = Workbook()
    sheet = book.active
    sheet.title = (table.sheet or table.path.stem)[:31]
    records, _ = read_records(table.path, sheet=table.sheet, encoding=encoding)
    for number, record in enumerate(records, start=1):
        for column, value in enumerate(record, start=1):
            _put(sheet, number, column, value)
    return book, sheet


def _put(sheet: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Set a cell; text stays text (never a formula) without the control characters a workbook cannot hold."""
    cell = sheet.cell(row, column)
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
        cell.value = text or None
        if text:
            cell.data_type = "s"
    elif value is None or isinstance(value, (int, float, bool, dt.date, dt.time)):
        cell.value = value
    else:
        cell.value = str(value)
    return cell
