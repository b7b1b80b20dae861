"""Copies of the input for people: the validation report (bad cells highlighted and commented, plus an
``errors`` sheet) and the annotated catalog (each row followed by its job ids, status and error).

An Excel input is copied with openpyxl, so its formatting and other sheets stay; a CSV or ODS input becomes a
new workbook with its cells, as text. Either way the copy is written atomically and the input is never touched.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.comments import Comment
from openpyxl.packaging.custom import CustomPropertyList, StringProperty
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from .errors import UsageError
from .files import atomic_write
from .journal import JournalView
from .loader import EXCEL_SUFFIXES, BadCell, Table, read_grid
from .paths import refuse_same
from .results import State
from .validate import Validation

BAD = PatternFill("solid", fgColor="FFC7CE")
HEADER = Font(bold=True)
ERROR_COLUMNS = ["sheet", "cell", "row", "field", "value", "message"]
MARK, CUSTOM_PROPERTIES = "batchgen", "docProps/custom.xml"  # the custom property on every copy batchgen writes


def write_report(table: Table, validation: Validation, path: Path, encoding: str | None = None) -> None:
    """A validation's ``report``: the input with each invalid cell highlighted and commented, an ``errors`` sheet."""
    check_target(path, "report", table)
    book, sheet = _copy(table, encoding)
    by_cell: dict[str, list[str]] = defaultdict(list)
    errors = book.create_sheet("errors")
    for column, name in enumerate(ERROR_COLUMNS, start=1):
        _put(errors, 1, column, name)
    fields = {row.number: {**row.fields, **row.extras} for row in table.rows}
    for number, problem in enumerate(validation.errors, start=2):
        letter = table.letter(problem.field) or "A"
        cell = f"{letter}{problem.row}"
        by_cell[cell].append(f"{problem.field}: {problem.message}")
        value = fields.get(problem.row, {}).get(problem.field, "") if isinstance(problem.row, int) else ""
        for column, item in enumerate(
            [sheet.title, cell, problem.row, problem.field, _text(value), problem.message], start=1
        ):
            _put(errors, number, column, item)
    for cell, messages in by_cell.items():
        sheet[cell].fill = BAD
        sheet[cell].comment = Comment("\n".join(messages), "batchgen")
    for cell in errors[1]:
        cell.font = HEADER
    errors.freeze_panes = "A2"
    _save(book, path, "validation report")


def write_annotated(
    table: Table, journal: JournalView, path: Path, keys: dict[int, str], encoding: str | None = None
) -> None:
    """A run's ``annotate`` copy: the input with ``job_id_1``, ``job_id_2``, ``status`` and ``error`` after each row.

    Ids are joined to rows by row key (``keys``: row number -> key), never by row number: after rows were
    deleted or inserted between runs, every id still lands on its own song.
    """
    by_key: dict[str, list[str]] = {done.key: done.job_ids for done in journal.done()}
    status: dict[str, tuple[str, str]] = {
        record.key: (record.state, record.message or "") for record in journal.unfinished(journal.latest_run())
    }
    ids = {number: by_key[key] for number, key in keys.items() if key in by_key}
    unfinished = {number: status[key] for number, key in keys.items() if key in status}
    unfinished.update({bad.row: (bad.state, bad.message) for bad in journal.left_out()})
    book, sheet = _copy(table, encoding)
    width = max(2, *(len(found) for found in ids.values())) if ids else 2
    first = sheet.max_column + 1
    names = [*(f"job_id_{n}" for n in range(1, width + 1)), "status", "error"]
    for offset, name in enumerate(names):
        _put(sheet, table.header_row, first + offset, name).font = HEADER
    for row in table.rows:
        found = ids.get(row.number, [])
        state, message = (State.DONE, "") if found else unfinished.get(row.number, ("", ""))
        for offset, value in enumerate([*found, *[""] * (width - len(found)), state, message]):
            _put(sheet, row.number, first + offset, value)
    for offset in range(len(names)):
        sheet.column_dimensions[get_column_letter(first + offset)].width = 38 if offset < width else 14
    _save(book, path, "annotated copy")


def check_target(path: Path, setting: str, table: Table, output: Path | None = None) -> None:
    """A report or annotated copy is an .xlsx in an existing folder, never the input or the output, and never a
    workbook batchgen did not write (a copy it wrote is its own to write again)."""
    if table.path is None:
        raise UsageError("a copy of the input needs a file input, not a DataFrame", setting=setting)
    if path.suffix.lower() != ".xlsx":
        raise UsageError(f"{path} must end in .xlsx", setting=setting)
    if not path.parent.is_dir():
        raise UsageError(f"the folder {path.parent} does not exist", setting=setting)
    refuse_same(path, setting, input=table.path, output=output)
    if path.exists() and not _written_here(path):
        raise UsageError(
            f"{path} exists and was not written by batchgen; move it away or choose another file", setting=setting
        )


def _written_here(path: Path) -> bool:
    """Whether the workbook at ``path`` carries the mark batchgen puts on the copies it writes."""
    try:
        with zipfile.ZipFile(path) as package:
            properties = package.read(CUSTOM_PROPERTIES)
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return f'name="{MARK}"'.encode() in properties


def _save(book: Workbook, path: Path, what: str) -> None:
    """Write ``book`` atomically, marked as batchgen's ``what`` (so a later run may write it again)."""
    props: CustomPropertyList[StringProperty] = book.custom_doc_props  # type: ignore[attr-defined]  # not in stubs
    if MARK in props.names:  # a copy of a copy: one mark
        del props[MARK]
    props.append(StringProperty(name=MARK, value=what))
    atomic_write(path, book.save)


def _copy(table: Table, encoding: str | None) -> tuple[Workbook, Worksheet]:
    """The input as an editable workbook, and the sheet that was read."""
    assert table.path is not None
    if table.path.suffix.lower() in EXCEL_SUFFIXES:
        with table.path.open("rb") as handle:  # closed even when openpyxl refuses the file
            book = openpyxl.load_workbook(handle, rich_text=True)
        return book, book[table.sheet or book.sheetnames[0]]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = (table.sheet or table.path.stem)[:31]
    records = read_grid(table.path, sheet=table.sheet, encoding=encoding).records
    for number, record in enumerate(records, start=1):
        for column, value in enumerate(record, start=1):
            _put(sheet, number, column, value)
    return book, sheet


def _text(value: Any) -> Any:
    return value.message if isinstance(value, BadCell) else value


def _put(sheet: Worksheet, row: int, column: int, value: Any) -> Cell | MergedCell:
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
