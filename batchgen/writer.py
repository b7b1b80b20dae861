"""Write the output: a view of the journal, merged with what the output already holds, replaced atomically.

``jobs`` has one line per job id, in the current input's row order with its current row numbers; lines of
rows no longer in the input, and lines the journal does not know, stay at the end. No job id appears twice.
``failed`` has one line per row without job ids. Each file is written at once (:mod:`batchgen.files`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from .errors import OutputError, UsageError
from .files import atomic_write
from .headers import output_name
from .journal import DoneRow, JournalView, journal_path
from .nightsheet import add_night
from .results import State

JOB_COLUMNS = ["row", "title", "job_id", "job_index", "tag", "model", "submitted_at", "key"]
SUPERSEDED = "superseded"  # a column only when an edited row was sent again: its earlier ids are not its own
FAILED_COLUMNS = ["row", "title", "state", "error"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SUFFIXES = (".xlsx", ".csv")
OUTPUT_STAMP = "output_stamp"
OWN_SHEETS = ("jobs", "failed", "night")  # what an output workbook holds: rebuilt from the journal each time
COLUMN_WIDTHS = {
    "row": 7,
    "title": 32,
    "job_id": 38,
    "job_index": 10,
    "tag": 20,
    "model": 14,
    "submitted_at": 26,
    "key": 36,
    SUPERSEDED: 40,
    "state": 10,
    "error": 80,
}
# constant_memory streams rows to disk; the strings_to_* switches keep input text exactly as it was typed
XLSX_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}

Sheet = tuple[list[str], list[list[Any]]]


def failed_csv_path(output: Path) -> Path:
    """``results.csv`` keeps its failures in ``results.failed.csv``."""
    return output.with_name(output.stem + ".failed.csv")


def output_files(output: Path) -> list[Path]:
    return [output, failed_csv_path(output)] if output.suffix.lower() == ".csv" else [output]


def check_output(output: Path) -> None:
    """Refuse, before anything is sent, an output that could not be written or read back."""
    if output.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{output} must end in .xlsx or .csv", setting="output")
    folder = output.parent
    if not folder.is_dir():
        raise UsageError(f"the folder {folder} does not exist", setting="output")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"the folder {folder} is not writable", setting="output")
    header, _ = read_jobs(output)
    missing = [name for name in JOB_COLUMNS if name not in header and name != "key"]  # (outputs before keys)
    if header and missing and not journal_path(output).exists():
        # a jobs table of a person's (no journal beside it says batchgen ran to it): its lines would be rewritten
        raise UsageError(
            f"{output} exists and was not written by batchgen (its jobs table has no {', '.join(missing)} "
            f"column{'s' if len(missing) > 1 else ''}); move it away or choose another output",
            setting="output",
        )
    if output.suffix.lower() != ".csv" and output.exists():
        _refuse_added_sheets(output)


def _refuse_added_sheets(output: Path) -> None:
    """The output is rebuilt from the journal: a sheet a person added to it would be lost without a word."""
    import python_calamine

    book = python_calamine.CalamineWorkbook.from_path(str(output))
    try:
        added = [name for name in book.sheet_names if name not in OWN_SHEETS]
    finally:
        book.close()
    if added:
        raise UsageError(
            f"{output} has sheets batchgen did not write ({', '.join(added)}), which rewriting it would lose; move "
            "them to another workbook or choose another output",
            setting="output",
        )


def read_jobs(output: Path) -> Sheet:
    """The header and lines of an existing ``jobs`` table (empty if there is no output yet)."""
    if not output.exists():
        return [], []
    try:
        if output.suffix.lower() == ".csv":
            with output.open(newline="", encoding="utf-8-sig") as handle:
                lines: list[list[Any]] = [[_csv_text(cell) for cell in line] for line in csv.reader(handle)]
        else:
            import python_calamine

            book = python_calamine.CalamineWorkbook.from_path(str(output))
            try:
                if "jobs" not in book.sheet_names:
                    raise UsageError(
                        f"{output} exists but has no jobs sheet; choose another output file", setting="output"
                    )
                lines = book.get_sheet_by_name("jobs").to_python()
            finally:
                book.close()
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(
            f"{output} exists but cannot be read ({str(exc)[:200]}); choose another output file", setting="output"
        ) from None
    if lines and "job_id" not in lines[0]:
        raise UsageError(
            f"{output} exists but its jobs table has no job_id column; choose another output file", setting="output"
        )
    return ([str(name) for name in lines[0]], [list(line) for line in lines[1:]]) if lines else ([], [])


def build_jobs(journals: Sequence[JournalView], existing: Sheet) -> Sheet:
    """One line per job id: the current input's rows in order, then rows no longer in it, then lines of the
    existing output that no journal knows. Columns a person added to the existing output are kept."""
    old_header, old_lines = existing
    header = list(old_header) or list(JOB_COLUMNS)
    for name in [*JOB_COLUMNS, *(output_name(c) for journal in journals for c in journal.extra_columns())]:
        if name not in header:
            header.append(name)
    old_ids = old_header.index("job_id") if old_header else 0
    kept = {str(line[old_ids]): dict(zip(old_header, line, strict=False)) for line in old_lines if len(line) > old_ids}
    # Rows of the latest input first, in row order (the outputs of several machines interleave, not follow),
    # then rows no longer in it, then rows an edited row replaced.
    done = sorted(
        (row for journal in journals for row in journal.done()),
        key=lambda d: (d.replaced_by is not None, not d.current, d.row),
    )
    if any(record.replaced_by is not None for record in done) and SUPERSEDED not in header:
        header.append(SUPERSEDED)
    lines: list[list[Any]] = []
    known: set[str] = set()
    for record in done:
        for index, job_id in enumerate(record.job_ids, start=1):
            if job_id in known:
                continue
            known.add(job_id)
            values = {**kept.get(job_id, {}), **_job_values(record, job_id, index)}
            lines.append([values.get(name, "") for name in header])
    for job_id, values in kept.items():
        if job_id not in known and job_id:
            known.add(job_id)
            lines.append([values.get(name, "") for name in header])
    return header, lines


def _job_values(record: DoneRow, job_id: str, index: int) -> dict[str, Any]:
    values = {output_name(name): value for name, value in record.extras.items()}
    # a row no longer in the input has no number: its old one may be another song's now
    values.update(
        row=record.label if record.current else "",
        title=record.title,
        job_id=job_id,
        job_index=index,
        tag=record.tag,
        model=record.model,
        submitted_at=record.submitted_at,
        key=record.key,
    )
    if record.replaced_by is not None:  # the ids of an edited row's earlier version: never shown as the row's own
        values.update(row="", superseded=f"sent before an edit; row {record.replaced_by} was sent again")
    else:  # its own again (an edit undone): the mark an earlier output line had is no longer true
        values[SUPERSEDED] = ""
    return values


def build_failed(journals: Sequence[JournalView]) -> Sheet:
    """Every row of each journal's latest run without job ids, with its state and the reason, in row order.

    Merged outputs (shards, machines) list a row once, and not at all when one of them has it done: a row
    another machine sent is ``skipped`` in this machine's journal, which is no failure of the batch. Where the
    journals disagree, a line that says what happened to the row wins over one that says another output has it.
    """
    done = set().union(*(journal.done_keys() for journal in journals))
    lines: dict[Any, tuple[int, list[Any]]] = {}
    for journal in journals:
        found = [(o.key, o.row, [o.label, o.title, o.state, o.message]) for o in journal.left_out()]
        found += [
            (r.key, r.row, [r.label, r.title, r.state, r.reason]) for r in journal.unfinished(journal.latest_run())
        ]
        for key, row, line in found:
            if key in done:
                continue
            identity = key or tuple(line)  # an invalid row has no key: the same line from two machines is one
            if identity not in lines or lines[identity][1][2] == State.SKIPPED:
                lines[identity] = (row, line)
    return list(FAILED_COLUMNS), [line for _, line in sorted(lines.values(), key=lambda item: item[0])]


def write_output(journal: JournalView, output: Path, stamp: Callable[[str], None] | None = None) -> None:
    """Rebuild the output from the journal; skipped when neither the journal nor the output files changed.

    Resuming a finished batch of 100,000 rows should not cost a minute of spreadsheet writing. ``stamp``
    records what was written (the journal's meta), so the next run can tell.
    """
    fingerprint = journal.fingerprint()
    if journal.meta(OUTPUT_STAMP) == _stamp(fingerprint, output_files(output)):
        return
    write_tables(output, [journal])
    if stamp is not None:
        stamp(_stamp(fingerprint, output_files(output)))


def write_tables(output: Path, journals: Sequence[JournalView]) -> None:
    """Write the jobs and failed tables of ``journals`` to ``output`` (and its failed.csv for CSV)."""
    jobs = build_jobs(journals, read_jobs(output))
    failed = build_failed(journals)
    try:
        if output.suffix.lower() == ".csv":
            atomic_write(output, lambda handle: _write_csv(handle, jobs))
            atomic_write(failed_csv_path(output), lambda handle: _write_csv(handle, failed))
        else:
            atomic_write(output, lambda handle: _write_workbook(handle, {"jobs": jobs, "failed": failed}, journals))
    except OSError as exc:
        raise OutputError(
            f"cannot write {output} ({exc.strerror or exc}); every job id is in the journal: "
            "run the same command again (or batchgen export) once it can be written",
            output,
        ) from None


def _stamp(fingerprint: str, files: list[Path]) -> str:
    """The journal's fingerprint and each output file's size and time: a change to either means rewrite."""
    stats = [(path.stat().st_size, path.stat().st_mtime_ns) if path.exists() else None for path in files]
    return f"{fingerprint} {stats}"


def _write_csv(handle: IO[bytes], table: Sheet) -> None:
    """CSV for Excel: UTF-8 with BOM, and text that would start a formula prefixed with ``'`` (OWASP)."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="", write_through=True)
    header, lines = table
    writer = csv.writer(text)
    writer.writerow([_csv_cell(name) for name in header])
    writer.writerows([_csv_cell(value) for value in line] for line in lines)
    text.flush()
    text.detach()


def _csv_cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula gets a protective quote (and so does text that starts with one,
    so that reading it back, :func:`_csv_text`, is exact)."""
    if isinstance(value, str) and value.startswith((*FORMULA_START, "'")):
        return "'" + value
    return value


def _csv_text(cell: str) -> str:
    """A cell of a CSV output as it was before :func:`_csv_cell` quoted it (a quote it did not add, in a file
    written before it quoted quotes, stays)."""
    return cell[1:] if cell.startswith("'") and cell[1:2] in (*FORMULA_START, "'") else cell


def _write_workbook(handle: IO[bytes], sheets: dict[str, Sheet], journals: Sequence[JournalView]) -> None:
    """Stream the sheets with xlsxwriter; text is always stored as text, never as a formula or a link."""
    import xlsxwriter

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
    add_night(book, journals)
    book.close()
