"""Load a CSV or Excel file into rows of raw cells, keeping the row numbers a person sees in Excel.

The loader only finds the header, maps columns to the API's field names and drops blank rows; it does not
judge any value. That is the validator's job, so every bad cell can be reported at once.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import python_calamine

from .errors import InputError
from .schema import ALL_FIELDS

HEADER_SEARCH_ROWS = 20
CSV_SUFFIXES = {".csv"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".ods"}
MAX_ROWS = 250_000
MAX_FILE_BYTES = 512 * 2**20
MAX_UNPACKED_BYTES = 1024 * 2**20
MAX_PACKING_RATIO = 200
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ALIASES = {"tags": "tag"}
_SEPARATORS = re.compile(r"[\s.\-]+")
_KNOWN = frozenset(ALL_FIELDS)


def normalize_header(name: Any) -> str:
    """Turn a header cell into a field name: ``MORPH-normalized-weirdness`` -> ``normalized_weirdness``."""
    key = _SEPARATORS.sub("_", str(name).strip().lower()).strip("_")
    key = key.removeprefix("morph_")
    return ALIASES.get(key, key)


def column_letter(index: int) -> str:
    """Excel's letters for a 0-based column index: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def is_blank(value: Any) -> bool:
    """An empty cell, or one holding only white space, means "not given"."""
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row: its Excel row number, its known fields and its passthrough columns (blank cells left out)."""

    number: int
    fields: dict[str, Any]
    extras: dict[str, Any]


@dataclass(slots=True)
class Table:
    """What the loader read: where from, where the header was, which column holds which field, and the rows."""

    path: Path
    sheet: str | None
    header_row: int
    columns: dict[str, str]
    extra_columns: list[str]
    rows: list[SourceRow] = field(default_factory=list)

    def cell_ref(self, row: int, name: str) -> str:
        """Where a person finds a cell: ``Sheet1!F12`` in a workbook, ``row 12,`` in a CSV file."""
        if self.sheet is None:
            return f"row {row},"
        sheet = self.sheet if re.fullmatch(r"\w+", self.sheet) else "'" + self.sheet.replace("'", "''") + "'"
        column = self.columns.get(name)
        return f"{sheet}!{column}{row}" if column else f"{sheet}!row {row}"


def load(
    path: str | Path,
    *,
    sheet: str | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
) -> Table:
    """Read ``path`` (.csv, .xlsx, .xlsm, .ods) into a :class:`Table`; raise :class:`InputError` with a clear message."""
    path = Path(path)
    records, sheet_name = read_records(path, sheet=sheet, encoding=encoding)
    return _build_table(path, sheet_name, records, header_row)


def read_records(path: Path, *, sheet: str | None = None, encoding: str | None = None) -> tuple[list[list[Any]], str | None]:
    """Every row of the file as a list of cells from A1 (and the sheet's name, None for CSV): nothing judged yet."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(
            f"{path}: {path.stat().st_size / 2**20:.0f} MB is above the limit of {MAX_FILE_BYTES // 2**20} MB; "
            "split it into several files"
        )
    if suffix in CSV_SUFFIXES:
        if sheet is not None:
            raise InputError(f"{path}: --sheet applies to Excel workbooks, not to CSV files")
        return _read_csv(path, encoding), None
    if suffix in EXCEL_SUFFIXES:
        return _read_workbook(path, sheet)
    if suffix == ".xls":
        raise InputError(f"{path}: legacy .xls workbooks are not supported; save it as .xlsx or .csv")
    raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; save it as .xlsx or .csv")


def _read_csv(path: Path, encoding: str | None) -> list[list[str]]:
    """Decode the whole file (UTF-8, BOM or not, unless told otherwise) and split it into records."""
    data = path.read_bytes()
    try:
        text = data.decode(encoding or "utf-8-sig")
    except LookupError:
        raise InputError(f"--encoding: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        if encoding:
            raise InputError(f"{path}: cannot be read as {encoding} (byte {exc.start})") from None
        likely = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "cp1252"  # Excel's "Unicode Text" is UTF-16
        raise InputError(
            f"{path}: is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"save it as UTF-8 or pass --encoding NAME (e.g. --encoding {likely})"
        ) from None
    if "\x00" in text:
        raise InputError(f"{path}: is not a text file (it holds NUL bytes)")
    delimiter = _sniff_delimiter(text)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
        records = list(itertools.islice(reader, MAX_ROWS + HEADER_SEARCH_ROWS + 1))
    except csv.Error as exc:
        raise InputError(f"{path}: is not a readable CSV file ({exc})") from None
    if len(records) > MAX_ROWS + HEADER_SEARCH_ROWS:
        raise InputError(_too_many(path, len(records) + sum(1 for _ in reader)))
    return records


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
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: is not a readable Excel workbook ({_short(exc)})") from None
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise InputError(f"{path}: unpacks to {unpacked / 2**20:.0f} MB, above the limit of {MAX_UNPACKED_BYTES // 2**20} MB")
    for member in members:
        if member.file_size > 2**20 and member.file_size > MAX_PACKING_RATIO * max(member.compress_size, 1):
            raise InputError(f"{path}: {member.filename} is packed {member.file_size // max(member.compress_size, 1)}:1, "
                             "which looks like a zip bomb; refusing to open it")


def _read_workbook(path: Path, sheet: str | None) -> tuple[list[list[Any]], str]:
    """The cached values of one sheet, from A1, so list positions are Excel's row and column numbers."""
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
            raise InputError(f"--sheet: {path} has no sheet {sheet!r} (it has: {', '.join(book.sheet_names)})")
        found = book.get_sheet_by_name(sheet)
        if found.height > MAX_ROWS + HEADER_SEARCH_ROWS:
            raise InputError(_too_many(path, found.height))
        return found.to_python(skip_empty_area=False), sheet
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: sheet {sheet!r} cannot be read ({_short(exc)})") from None
    finally:
        book.close()


def _too_many(path: Path, rows: int) -> str:
    return f"{path}: {rows:,} rows is above the limit of {MAX_ROWS:,} per file; split it into several files"


def _short(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _build_table(path: Path, sheet: str | None, records: list[list[Any]], header_row: int | None) -> Table:
    """Find the header, map its columns, and keep every non-blank row below it with its row number."""
    where = f"{path}" + (f" (sheet {sheet})" if sheet else "")
    index = _find_header(records, header_row, where)
    columns: dict[str, str] = {}
    positions: dict[int, str] = {}
    extras: dict[int, str] = {}
    for pos, cell in enumerate(records[index]):
        if is_blank(cell):
            continue
        name = normalize_header(cell)
        letter = column_letter(pos)
        if name in _KNOWN:
            if name in columns:
                raise InputError(f"{where}: columns {columns[name]} and {letter} both name the field {name}")
            columns[name], positions[pos] = letter, name
        else:
            label = str(cell).strip()
            extras[pos] = label if label not in extras.values() else f"{label} ({letter})"
    table = Table(path, sheet, index + 1, columns, list(extras.values()))
    for offset, record in enumerate(records[index + 1 :], start=index + 2):
        if all(is_blank(cell) for cell in record):
            continue
        table.rows.append(
            SourceRow(
                offset,
                {name: record[pos] for pos, name in positions.items() if pos < len(record) and not is_blank(record[pos])},
                {label: record[pos] for pos, label in extras.items() if pos < len(record) and not is_blank(record[pos])},
            )
        )
    if not table.rows:
        raise InputError(f"{where} has no data rows under its header (row {index + 1})")
    return table


def _find_header(records: list[list[Any]], header_row: int | None, where: str) -> int:
    """The 0-based index of the header: ``--header-row`` or the first of 20 rows naming two known fields."""
    if not records or all(all(is_blank(c) for c in r) for r in records):
        raise InputError(f"{where} is empty")
    if header_row is not None:
        if not 1 <= header_row <= len(records):
            raise InputError(f"--header-row: {where} has no row {header_row} (it has {len(records)} rows)")
        return header_row - 1
    for index, record in enumerate(records[:HEADER_SEARCH_ROWS]):
        if len({normalize_header(c) for c in record if not is_blank(c)} & _KNOWN) >= 2:
            return index
    raise InputError(
        f"{where}: no header row found in the first {HEADER_SEARCH_ROWS} rows "
        "(it needs at least two known columns, such as title and tag); use --header-row N"
    )
