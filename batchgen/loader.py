"""Load a CSV file, an Excel workbook, a pandas DataFrame or a list of dicts into rows of raw cells.

The loader finds the header, maps columns to the API's field names and drops blank rows, keeping the row
numbers a person sees in Excel. It judges no value (that is the validator's job, so that every bad cell is
reported at once), but it does record what a cell's cached value hides: an Excel error, a formula without a
saved value, a hidden row, a CSV record with more cells than its header (an unquoted comma shifted them), and
text that lost its characters: a word of only ``?`` marks in a field of a CSV file read from a legacy encoding
(cp1252 and the like, Excel's plain "CSV"), which is how such a file stores the characters it cannot hold. A
UTF-8 (or UTF-16) file holds every character, so there ``???`` is what the person typed, and is sent. A lone
``?`` after a space counts too (one lost character looks just like it), so a French ``Où ?`` in such a file
is refused as well: saving it as UTF-8 is the fix either way.

A DataFrame's numbers are the ones a person sees: a float32 ``0.1`` is 0.1 (not 0.10000000149011612), a
``Decimal`` is a number, a numpy integer an integer. A repeated index label names its position as well
(``'x' (position 3)``, as ``df.iloc[3]``), so that every message, and the output, says which row it means.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .cells import show
from .errors import InputError
from .headers import HeaderProblem, NearMiss, field_for, resembles, wrong_unit
from .ooxml import SheetFacts, scan

if TYPE_CHECKING:
    import pandas as pd

Source: TypeAlias = "str | os.PathLike[str] | pd.DataFrame | Sequence[Mapping[str, Any]]"
Kind = Literal["csv", "xlsx", "ods", "frame"]

HEADER_SEARCH_ROWS = 20
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
MAX_ROWS = 250_000
MAX_FILE_BYTES = 512 * 2**20
MAX_UNPACKED_BYTES = 1024 * 2**20
MAX_PACKING_RATIO = 200
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SAVE_IT = "open and save it in Excel or LibreOffice"
EXTRA_CELLS = "extra cells"
_LOST = re.compile(r"(?<![\w?])\?+(?![\w?])")  # a word of only ? marks; in ``Why???`` they follow letters


@dataclass(frozen=True, slots=True)
class BadCell:
    """A cell whose cached value is not what the sheet shows: reported by the validator, never sent."""

    message: str


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row: its number (Excel's, or the DataFrame position), its label, fields and passthrough cells.

    ``overflow`` says why a CSV record has cells beyond its header: the row is reported, never sent shifted.
    """

    number: int
    label: int | str
    fields: dict[str, Any]
    extras: dict[str, Any]
    hidden: bool = False
    overflow: str | None = None


@dataclass(slots=True)
class Grid:
    """Every record of a source as read, before any header is looked for."""

    records: list[list[Any]]
    kind: Kind
    name: str
    sheet: str | None = None
    facts: SheetFacts = field(default_factory=SheetFacts)
    decimal_comma: bool = False
    labels: list[int | str] | None = None
    positioned: set[int | str] = field(default_factory=set)
    legacy: str | None = None


@dataclass(slots=True)
class Table:
    """What the loader read: where from, which column holds which field, and the rows."""

    name: str
    kind: Kind
    sheet: str | None
    header_row: int
    columns: dict[str, str]
    headers: dict[str, str]
    extra_columns: list[str]
    rows: list[SourceRow]
    decimal_comma: bool = False
    extra_letters: dict[str, str] = field(default_factory=dict)
    header_problems: list[HeaderProblem] = field(default_factory=list)
    path: Path | None = None
    positioned: set[int | str] = field(default_factory=set)

    def letter(self, name: str) -> str | None:
        """The column of a field, of a passed-through column, or of a field's header as written."""
        found = self.columns.get(name) or self.extra_letters.get(name)
        return found or next((self.columns[key] for key, heading in self.headers.items() if heading == name), None)

    def cell_ref(self, row: int | str, name: str) -> str:
        """Where a person finds a cell: ``Sheet1!F12`` (``Sheet1, row 12`` for a whole row), ``row 12`` (CSV) or
        ``index 3, column 'W'`` (frames)."""
        column = self.letter(name)
        if self.kind == "frame":
            index = row if row in self.positioned else repr(row)  # a repeated label already says its position
            return f"index {index}" + (f", column {self.headers.get(name, name)!r}" if column else "")
        if self.sheet is None:
            return f"row {row}"
        sheet = self.sheet if re.fullmatch(r"\w+", self.sheet) else "'" + self.sheet.replace("'", "''") + "'"
        return f"{sheet}!{column}{row}" if column else f"{sheet}, row {row}"  # no column: no cell address

    @property
    def hidden(self) -> list[int]:
        return [row.number for row in self.rows if row.hidden]


def load(
    source: Source, *, sheet: str | None = None, header_row: int | None = None, encoding: str | None = None
) -> Table:
    """Read ``source`` into a :class:`Table`; raise :class:`InputError` with a clear message."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        grid = read_grid(path, sheet=sheet, encoding=encoding)
        try:
            table = build_table(grid, header_row)
        except NoHeaderError as exc:
            others = _headed_sheets(path, grid.sheet) if sheet is None and grid.sheet is not None else []
            if not others:
                raise
            which = f"sheet {others[0]!r} has" if len(others) == 1 else f"sheets {', '.join(map(repr, others))} have"
            found = exc.message.removesuffix(USE_HEADER_ROW)
            raise InputError(f"{found}; {which} one: choose it with `sheet` (or use `header_row`)") from None
        table.path = path
        return table
    if sheet is not None or encoding is not None:
        raise InputError("sheet and encoding apply to files, not to a DataFrame or a list of dicts")
    return build_table(frame_grid(source), header_row if header_row is not None else 1)


def read_grid(path: Path, *, sheet: str | None = None, encoding: str | None = None) -> Grid:
    """Every record of the file at ``path``: nothing judged yet."""
    suffix = path.suffix.lower()
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the spreadsheet's own path")
    if path.exists() and not path.is_file():  # a device, a pipe: /dev/null, <(...)
        raise InputError(f"{path} is not a file; give the spreadsheet's own path")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"{path}: {size / 2**20:.0f} MB is above the limit of {MAX_FILE_BYTES // 2**20} MB; "
            "split it into several files"
        )
    if suffix == ".csv":
        if sheet is not None:
            raise InputError(f"{path}: `sheet` applies to Excel workbooks, not to CSV files")
        return _read_csv(path, encoding)
    if suffix in EXCEL_SUFFIXES or suffix == ".ods":
        return _read_workbook(path, sheet)
    if suffix == ".xls":
        raise InputError(f"{path}: legacy .xls workbooks are not supported; save it as .xlsx or .csv")
    raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; save it as .xlsx or .csv")


def frame_grid(source: Any) -> Grid:
    """A DataFrame or a list of dicts as records: NaN, None, pd.NA and NaT are blank cells."""
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        if not all(isinstance(item, Mapping) for item in source):
            raise InputError("a list source must hold dicts (one per row)")
        header = list(dict.fromkeys(key for item in source for key in item))
        records = [[item.get(key) for key in header] for item in source]
        return Grid(
            [header, *[[_plain(value) for value in row] for row in records]],
            "frame",
            "rows",
            labels=list(range(len(records))),
        )
    import pandas as pd

    if not isinstance(source, pd.DataFrame):
        raise InputError(f"cannot read a {type(source).__name__}: pass a path, a pandas DataFrame or a list of dicts")
    if source.columns.has_duplicates:
        raise InputError(
            f"DataFrame: duplicate column labels {sorted(set(source.columns[source.columns.duplicated()]))}"
        )
    # column by column, from each column's own array: a float32 stays a float32 until it is read as a person would
    columns = [[_plain(value) for value in source.iloc[:, pos].array] for pos in range(source.shape[1])]
    records = [list(record) for record in zip(*columns, strict=True)]
    labels, positioned = _labels(source.index.tolist())
    return Grid(
        [[str(name) for name in source.columns], *records], "frame", "DataFrame", labels=labels, positioned=positioned
    )


def _labels(index: list[Any]) -> tuple[list[int | str], set[int | str]]:
    """Index labels as row labels, and those made from a repeated label with its position (``'x' (position 3)``)."""
    plain = [label if isinstance(label, (int, str)) else str(label) for label in index]
    repeated = {label for label, count in Counter(plain).items() if count > 1}
    labels = [f"{label!r} (position {pos})" if label in repeated else label for pos, label in enumerate(plain)]
    return labels, {labels[pos] for pos, label in enumerate(plain) if label in repeated}


def _plain(value: Any) -> Any:
    """numpy and pandas scalars as Python values; NaN and friends as None."""
    if type(value).__module__ == "numpy":
        value = _from_numpy(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if (isinstance(value, Decimal) and value.is_nan()) or type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def _from_numpy(value: Any) -> Any:
    """A numpy scalar as Python's; a float32 (or float16) as the shortest decimal that reads back as the same
    number, which is what a person sees: float32 0.1 is 0.1, where Python's float of it is 0.10000000149011612."""
    import numpy as np

    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        return float(np.format_float_positional(value, unique=True))
    return value.item() if isinstance(value, np.generic) else value


def _read_csv(path: Path, encoding: str | None) -> Grid:
    """Decode the whole file (UTF-8, BOM or not, unless told otherwise) and split it into records."""
    data = path.read_bytes()
    try:
        text = data.decode(encoding or "utf-8-sig")
    except LookupError:
        raise InputError(f"`encoding`: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        if encoding:
            raise InputError(f"{path}: cannot be read as {encoding} (byte {exc.start})") from None
        likely = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "cp1252"  # Excel's "Unicode Text" is UTF-16
        at = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)  # the decoder counts after a BOM
        raise InputError(
            f"{path}: is not UTF-8 (byte 0x{data[at]:02x} at offset {at}); "
            f"save it as UTF-8 or pass `encoding` NAME (e.g. `encoding` {likely})"
        ) from None
    if "\x00" in text:
        if encoding is None and len(data) > 1 and 0 in data[:2]:  # UTF-16 without a BOM: a NUL in every other byte
            order = "le" if data[1] == 0 else "be"
            raise InputError(
                f"{path}: holds NUL bytes, as UTF-16 text without a BOM does; pass `encoding` utf-16-{order}"
            )
        raise InputError(f"{path}: is not a text file (it holds NUL bytes)")
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        records = list(itertools.islice(reader, MAX_ROWS + HEADER_SEARCH_ROWS + 1))
    except csv.Error as exc:  # a cell past the limit: a quote left open makes the rest of the file one cell
        hint = "; is a quote left open?" if "field limit" in str(exc) else ""
        raise InputError(f"{path}: is not a readable CSV file at line {reader.line_num} ({exc}{hint})") from None
    if len(records) > MAX_ROWS + HEADER_SEARCH_ROWS:
        raise InputError(_too_many(path, len(records) + sum(1 for _ in reader)))
    legacy = encoding if encoding and not codecs.lookup(encoding).name.startswith("utf") else None
    return Grid(list(records), "csv", str(path), decimal_comma=delimiter == ";", legacy=legacy)


def _sniff_delimiter(text: str) -> str:
    """``,`` ``;`` or tab: the sniffer's guess, else the one the first non-empty line uses most."""
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        first = next((line for line in sample.splitlines() if line.strip()), "")
        return max(",;\t", key=first.count)


def _check_package(path: Path) -> None:
    """Refuse, before parsing, what is not a workbook package or would unpack to more than memory allows."""
    with path.open("rb") as handle:
        if handle.read(8) == OLE_MAGIC:
            raise InputError(
                f"{path}: is an encrypted (password-protected) workbook or a legacy .xls renamed; "
                "save an unprotected copy as .xlsx"
            )
    try:
        with zipfile.ZipFile(path) as package:
            members = package.infolist()
            _check_sizes(path, members)
            _check_entities(path, package, members)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
        hint = f"; it looks like a CSV file: rename it to {path.stem}.csv" if _looks_like_csv(path) else ""
        raise InputError(f"{path}: is not a readable Excel workbook ({_short(exc)}){hint}") from None


def _looks_like_csv(path: Path) -> bool:
    """Text whose first line separates cells with ``,`` ``;`` or a tab: a CSV file renamed .xlsx."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
        first = head.split(b"\n")[0].rstrip(b"\r").decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return False
    return first.replace("\t", " ").isprintable() and any(mark in first for mark in ",;\t")


def _check_sizes(path: Path, members: list[zipfile.ZipInfo]) -> None:
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise InputError(
            f"{path}: unpacks to {unpacked / 2**20:.0f} MB, above the limit of {MAX_UNPACKED_BYTES // 2**20} MB"
        )
    for member in members:
        if member.file_size > 2**20 and member.file_size > MAX_PACKING_RATIO * max(member.compress_size, 1):
            raise InputError(
                f"{path}: {member.filename} is packed {member.file_size // max(member.compress_size, 1)}:1, "
                "which looks like a zip bomb; refusing to open it"
            )


def _check_entities(path: Path, package: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> None:
    """A spreadsheet never declares XML entities; one that does is an entity-expansion or XXE trick."""
    for member in members:
        if member.filename.endswith((".xml", ".rels")):
            with package.open(member) as part:
                head = part.read(4096)
            if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                raise InputError(f"{path}: {member.filename} declares XML entities (a DTD); refusing to open it")


def _read_workbook(path: Path, sheet: str | None) -> Grid:
    """The cached values of one sheet from A1 (list positions are Excel's numbers), and what they hide."""
    import python_calamine

    _check_package(path)
    try:
        book = python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.PasswordError:
        raise InputError(f"{path}: the workbook is password-protected; save an unprotected copy") from None
    except Exception as exc:  # calamine raises several unrelated types for a damaged file
        raise InputError(f"{path}: is not a readable Excel workbook ({_short(exc)})") from None
    try:
        if sheet is None:
            visible = [m.name for m in book.sheets_metadata if m.visible == python_calamine.SheetVisibleEnum.Visible]
            if not visible:
                raise InputError(f"{path}: the workbook has no visible sheet")
            sheet = visible[0]
        elif sheet not in book.sheet_names:
            raise InputError(f"`sheet`: {path} has no sheet {sheet!r} (it has: {', '.join(book.sheet_names)})")
        try:
            found = book.get_sheet_by_name(sheet)
            if found.height > MAX_ROWS + HEADER_SEARCH_ROWS:
                raise InputError(_too_many(path, found.height))
            records = found.to_python(skip_empty_area=False)
        except InputError:
            raise
        except Exception as exc:  # calamine refuses some error cells (#SPILL!, #CALC!): openpyxl reads them
            if path.suffix.lower() not in EXCEL_SUFFIXES or "error value" not in str(exc):
                raise
            records = _openpyxl_values(path, sheet)
        facts = scan(path, sheet) if path.suffix.lower() in EXCEL_SUFFIXES else SheetFacts()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: sheet {sheet!r} cannot be read ({_short(exc)})") from None
    finally:
        book.close()
    kind: Kind = "ods" if path.suffix.lower() == ".ods" else "xlsx"
    return Grid(records, kind, str(path), sheet, facts)


def _openpyxl_values(path: Path, sheet: str) -> list[list[Any]]:
    """The cached values of ``sheet`` as openpyxl reads them (defusedxml guards its parser)."""
    import openpyxl

    with path.open("rb") as handle:  # closed even when openpyxl refuses the file
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        try:
            return [list(row) for row in book[sheet].iter_rows(values_only=True)]
        finally:
            book.close()


def _too_many(path: Path, rows: int) -> str:
    return f"{path}: {rows:,} rows is above the limit of {MAX_ROWS:,} per file; split it into several files"


def _short(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def in_range(number: int, rows: tuple[int, int | None] | None) -> bool:
    """Whether row ``number`` is in the ``rows`` range ``rows`` (first, last or None for the end)."""
    return rows is None or (rows[0] <= number and (rows[1] is None or number <= rows[1]))


def is_blank(value: Any) -> bool:
    """An empty cell, or one holding only white space, means "not given"."""
    return value is None or (isinstance(value, str) and not value.strip())


def column_letter(index: int) -> str:
    """Excel's letters for a 0-based column index: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def build_table(grid: Grid, header_row: int | None) -> Table:
    """Find the header, map its columns, and keep every non-blank row below it with its row number."""
    where = grid.name + (f" (sheet {grid.sheet})" if grid.sheet else "")
    index = _find_header(grid.records, header_row, where)
    header = grid.records[index]
    frame = grid.kind == "frame"
    named = {pos: field_for(cell) for pos, cell in enumerate(header) if not is_blank(cell)}
    width = max(named, default=-1) + 1
    present = {name for name in named.values() if name}
    table = Table(grid.name, grid.kind, grid.sheet, index + 1, {}, {}, [], [], grid.decimal_comma)
    table.positioned = grid.positioned
    positions: dict[int, str] = {}
    extras: dict[int, str] = {}
    for pos, name in named.items():
        letter = str(header[pos]) if frame else column_letter(pos)
        heading = str(header[pos]).strip()
        if name is not None:
            if name in table.columns:
                raise InputError(f"{where}: columns {table.columns[name]} and {letter} both name the field {name}")
            table.columns[name], table.headers[name], positions[pos] = letter, heading, name
            unit = wrong_unit(heading)
            if unit is not None:
                table.header_problems.append(unit)
            continue
        similar = resembles(header[pos], present)
        if similar is not None:
            table.header_problems.append(NearMiss(heading, similar))
        extras[pos] = heading if heading not in extras.values() else f"{heading} ({letter})"
        table.extra_letters[extras[pos]] = letter
    table.extra_columns = list(extras.values())
    for offset, record in enumerate(grid.records[index + 1 :], start=index + 2):
        if all(is_blank(cell) for cell in record):
            continue
        number = offset - 2 if frame else offset
        label: int | str = grid.labels[number] if grid.labels is not None else number
        table.rows.append(
            SourceRow(
                number,
                label,
                {
                    name: cell
                    for pos, name in positions.items()
                    if not is_blank(cell := _cell(grid, record, offset, pos, True))
                },
                {
                    name: cell
                    for pos, name in extras.items()
                    if not is_blank(cell := _cell(grid, record, offset, pos, False))
                },
                offset in grid.facts.hidden_rows,
                _overflow(record, width) if grid.kind == "csv" else None,
            )
        )
    if not table.rows:
        raise InputError(f"{where} has no data rows under its header (row {index + 1})")
    return table


def _overflow(record: list[Any], width: int) -> str | None:
    """Why a CSV record has cells beyond the header's ``width``, if it has any that are not blank."""
    beyond = [cell for cell in record[width:] if not is_blank(cell)]
    if not beyond:
        return None
    count = max(pos for pos, cell in enumerate(record) if not is_blank(cell)) + 1
    return (
        f"the row has {count} cells but the header has {width}: a comma in a cell without quotes around it splits "
        f"the cell and shifts the ones after it (beyond the header: {', '.join(map(show, beyond))}); put that "
        'cell in double quotes, as in "synthwave, dreamy"'
    )


def _cell(grid: Grid, record: list[Any], row: int, pos: int, is_field: bool) -> Any:
    """The value of one cell, or a :class:`BadCell` when its cached value is not the truth."""
    value = record[pos] if pos < len(record) else None
    if grid.legacy and is_field and isinstance(value, str) and _LOST.search(value):
        return BadCell(
            f"{show(value)} has a word of only ? marks: saved as {grid.legacy}, the file lost the characters that "
            'encoding cannot hold (Japanese, emoji...); save the sheet as "CSV UTF-8" and use that file'
        )
    facts = grid.facts
    where = (row, pos)
    if is_field and is_blank(value) and where in facts.merged:
        span = facts.merged[where]
        return BadCell(
            f"is part of the merged cells {span}, whose value only its first cell holds; unmerge them and fill "
            "each row's own cell"
        )
    if not (facts.formulas or facts.errors):
        return value
    if where in facts.errors:
        error = facts.errors[where]
        return BadCell(f"{error} is an Excel error value; fix the formula or the cell") if is_field else error
    if where in facts.uncached:
        return BadCell(
            "is a formula without a saved value (the file was written by a program that does not "
            f"calculate formulas); {SAVE_IT}"
        )
    if is_field and facts.recalculated_on_load and where in facts.formulas:
        return BadCell(
            "is a formula in a workbook that asks to be recalculated when opened, so its saved value "
            f"is a placeholder, not its result; {SAVE_IT}"
        )
    return value


def _find_header(records: list[list[Any]], header_row: int | None, where: str) -> int:
    """The 0-based index of the header: ``header_row`` or the first of 20 rows naming two known fields."""
    if not records or all(all(is_blank(c) for c in r) for r in records):
        raise InputError(f"{where} is empty")
    if header_row is not None:
        if not 1 <= header_row <= len(records):
            raise InputError(f"`header_row`: {where} has no row {header_row} (it has {len(records)} rows)")
        return header_row - 1
    found = _header_index(records)
    if found is None:
        hint = _misnamed_header(records) or USE_HEADER_ROW
        raise NoHeaderError(
            f"{where}: no header row found in the first {HEADER_SEARCH_ROWS} rows "
            f"(it needs at least two known columns, such as title and tag){hint}"
        )
    return found


def _misnamed_header(records: list[list[Any]]) -> str | None:
    """Where a header is, that names too few fields because some are misspelled: ``header_row`` would not help,
    renaming them does."""
    for index, record in enumerate(records[:HEADER_SEARCH_ROWS]):
        cells = [str(c).strip() for c in record if not is_blank(c)]
        known = {name for name in map(field_for, cells) if name is not None}
        near = {cell: resembles(cell, known) for cell in cells if field_for(cell) is None}
        misnamed = {cell: name for cell, name in near.items() if name is not None}
        if misnamed and len(known) + len(set(misnamed.values())) >= 2:
            names = ", ".join(f"{cell} looks like {name}" for cell, name in misnamed.items())
            return f"; row {index + 1} may be it, but {names}: rename {'them' if len(misnamed) > 1 else 'it'}"
    return None


USE_HEADER_ROW = "; use `header_row`"


class NoHeaderError(InputError):
    """No row among the first ones names two known fields."""


def _header_index(records: list[list[Any]]) -> int | None:
    """The first of the first 20 records that names two known fields, if one does."""
    for index, record in enumerate(records[:HEADER_SEARCH_ROWS]):
        if len({field_for(c) for c in record if not is_blank(c)} - {None}) >= 2:
            return index
    return None


def _headed_sheets(path: Path, read: str) -> list[str]:
    """The visible sheets of the workbook at ``path``, other than ``read``, whose first rows hold a header: a
    workbook that opens on a notes sheet has its catalog on another."""
    import python_calamine

    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        visible = [m.name for m in book.sheets_metadata if m.visible == python_calamine.SheetVisibleEnum.Visible]
        return [
            name
            for name in visible
            if name != read
            and _header_index(book.get_sheet_by_name(name).to_python(nrows=HEADER_SEARCH_ROWS)) is not None
        ]
    finally:
        book.close()
