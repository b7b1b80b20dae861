"""Write the output: a view of the journal, appended to what the output already holds, replaced atomically.

``jobs`` has one line per job id; ``failed`` one line per row without job ids. Lines already in an existing
output are kept as they are and only ids not yet there are appended, so no job id ever appears twice.
"""

from __future__ import annotations

import csv
import heapq
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import python_calamine
import xlsxwriter

from .errors import OutputError, UsageError
from .journal import Journal

JOB_COLUMNS = ["row", "title", "job_id", "job_index", "tag", "model", "submitted_at"]
FAILED_COLUMNS = ["row", "title", "state", "error"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SUFFIXES = (".xlsx", ".csv")
OUTPUT_STAMP = "output_stamp"
COLUMN_WIDTHS = {"row": 7, "title": 32, "job_id": 38, "job_index": 10, "tag": 20, "model": 14, "submitted_at": 26,
                 "state": 10, "error": 80}
# constant_memory streams rows to disk; the strings_to_* switches keep input text exactly as it was typed
XLSX_OPTIONS = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}

Table = tuple[list[str], list[list[Any]]]


def failed_csv_path(output: Path) -> Path:
    """``results.csv`` keeps its failures in ``results.failed.csv``."""
    return output.with_name(output.stem + ".failed.csv")


def check_output(output: str | Path) -> Path:
    """Refuse, before anything is sent, an output that could not be written or read back."""
    output = Path(output)
    if output.suffix.lower() not in SUFFIXES:
        raise UsageError(f"-o: {output} must end in .xlsx or .csv")
    folder = output.parent
    if not folder.is_dir():
        raise UsageError(f"-o: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"-o: the folder {folder} is not writable")
    read_jobs(output)
    return output


def read_jobs(output: Path) -> Table:
    """The header and lines of an existing ``jobs`` table (empty if there is no output yet)."""
    if not output.exists():
        return [], []
    try:
        if output.suffix.lower() == ".csv":
            with output.open(newline="", encoding="utf-8-sig") as handle:
                lines = list(csv.reader(handle))
        else:
            book = python_calamine.CalamineWorkbook.from_path(str(output))
            try:
                if "jobs" not in book.sheet_names:
                    raise UsageError(f"-o: {output} exists but has no jobs sheet; choose another output file")
                lines = book.get_sheet_by_name("jobs").to_python()
            finally:
                book.close()
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"-o: {output} exists but cannot be read ({str(exc)[:200]}); choose another output file") from None
    if lines and "job_id" not in lines[0]:
        raise UsageError(f"-o: {output} exists but its jobs table has no job_id column; choose another output file")
    return ([str(name) for name in lines[0]], lines[1:]) if lines else ([], [])


def build_jobs(journals: list[Journal], existing: Table) -> Table:
    """The existing lines, then one line per job id of the journals that they do not hold yet, in row order."""
    old_header, old_lines = existing
    header = old_header or list(JOB_COLUMNS)
    for name in [*JOB_COLUMNS, *(column for journal in journals for column in journal.extra_columns())]:
        if name not in header:
            header.append(name)
    width = len(header)
    lines = [list(line) + [""] * (width - len(line)) for line in old_lines]
    id_column = header.index("job_id")
    known = {str(line[id_column]) for line in lines}
    for record in heapq.merge(*(journal.done() for journal in journals), key=lambda done: done.row):
        for index, job_id in enumerate(record.job_ids, start=1):
            if job_id in known:
                continue
            known.add(job_id)
            values = {
                "row": record.row,
                "title": record.title,
                "job_id": job_id,
                "job_index": index,
                "tag": record.tag,
                "model": record.model,
                "submitted_at": record.submitted_at,
                **record.extras,
            }
            lines.append([values.get(name, "") for name in header])
    return header, lines


def build_failed(journals: list[Journal]) -> Table:
    """Every row of each journal's latest run without job ids, with its state and the reason, in row order."""
    lines = []
    for journal in journals:
        lines += [[bad.row, bad.title, bad.state, bad.message] for bad in journal.invalid()]
        lines += [
            [record.row, record.title, record.state, record.message or "not sent yet"]
            for record in journal.unfinished(journal.latest_run())
        ]
    lines.sort(key=lambda line: line[0])
    return list(FAILED_COLUMNS), lines


def write_output(journal: Journal, output: str | Path) -> None:
    """Rebuild the output from the journal; each file is replaced atomically, never half-written.

    When neither the journal nor the output files changed since the last write, nothing is rewritten:
    resuming a finished batch of 100,000 rows should not cost a minute of spreadsheet writing.
    """
    output = Path(output)
    files = [output, failed_csv_path(output)] if output.suffix.lower() == ".csv" else [output]
    fingerprint = journal.fingerprint()
    if journal.meta(OUTPUT_STAMP) == _stamp(fingerprint, files):
        return
    _write(output, [journal])
    journal.set_meta(OUTPUT_STAMP, _stamp(fingerprint, files))


def merge_outputs(journals: list[Journal], output: str | Path) -> None:
    """One output from the journals of several shards (``run --rows A-B``), appended like any other."""
    _write(Path(output), journals)


def _write(output: Path, journals: list[Journal]) -> None:
    jobs = build_jobs(journals, read_jobs(output))
    failed = build_failed(journals)
    try:
        if output.suffix.lower() == ".csv":
            atomic_write(output, "w", lambda handle: _write_csv(handle, jobs))
            atomic_write(failed_csv_path(output), "w", lambda handle: _write_csv(handle, failed))
        else:
            atomic_write(output, "wb", lambda handle: _write_workbook(handle, {"jobs": jobs, "failed": failed}))
    except OSError as exc:
        raise OutputError(
            f"cannot write {output}: {exc.strerror or exc}; every job id is kept in the journal, "
            "run the same command again to write it"
        ) from None


def _stamp(fingerprint: str, files: list[Path]) -> str:
    """The journal's fingerprint and each output file's size and time: a change to either means rewrite."""
    stats = [(path.stat().st_size, path.stat().st_mtime_ns) if path.exists() else None for path in files]
    return f"{fingerprint} {stats}"


def atomic_write(path: Path, mode: str, write: Callable[[Any], None]) -> None:
    """Write to a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with _open(handle, mode) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@contextmanager
def _open(handle: int, mode: str) -> Iterator[Any]:
    if "b" in mode:
        with os.fdopen(handle, mode) as stream:
            yield stream
    else:
        with os.fdopen(handle, mode, encoding="utf-8-sig", newline="") as stream:
            yield stream


def _write_csv(handle: TextIO, table: Table) -> None:
    """CSV for Excel: UTF-8 with BOM, and text that would start a formula prefixed with ``'`` (OWASP)."""
    header, lines = table
    writer = csv.writer(handle)
    writer.writerow(header)
    writer.writerows([_csv_cell(value) for value in line] for line in lines)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START) and not value.startswith("'"):
        return "'" + value
    return value


def _write_workbook(handle: BinaryIO, sheets: dict[str, Table]) -> None:
    """Stream the sheets with xlsxwriter; text is always stored as text, never as a formula or a link."""
    book = xlsxwriter.Workbook(handle, XLSX_OPTIONS)
    for name, (header, lines) in sheets.items():
        sheet = book.add_worksheet(name)
        for column, title in enumerate(header):
            sheet.set_column(column, column, COLUMN_WIDTHS.get(title, 16))
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, len(lines), max(len(header) - 1, 0))
        sheet.write_row(0, 0, header)
        for number, line in enumerate(lines, start=1):
            sheet.write_row(number, 0, line)
    book.close()
