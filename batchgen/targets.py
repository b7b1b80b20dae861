"""Every file a run will write, checked before the first request: money is never spent on a run whose results
cannot be kept, and no file a person made is written over.

The files are the output, its failures file (``results.failed.csv`` beside a CSV output), the journal, the log
file and the annotated copy. None may be the input, another of them (by resolved path and inode) or batchgen's
ledger; an existing failures file must be one batchgen wrote (its header), and so must an existing log file (its
lines); each existing one, and the folder of each, must be writable.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from .errors import OutputError, UsageError
from .journal import journal_path
from .paths import refuse_same, same_file
from .writer import FAILED_COLUMNS, failed_csv_path

JOURNAL_SIDECARS = ("-wal", "-shm")  # SQLite in WAL mode writes beside the journal too


def check_targets(
    output: Path, *, source: Path | None, log_file: Path | None = None, annotate: Path | None = None
) -> None:
    """Refuse (before anything is sent) a run that would write over its input, over a file it did not write,
    or into a file that cannot be written; ``output`` is the output's real path."""
    failures = failed_csv_path(output) if output.suffix.lower() == ".csv" else None
    journal = journal_path(output)
    # (what it is, the file, its setting); a file its setting does not name itself says what it is
    files = [("output", output, "output"), ("failures file", failures, "output"), ("journal", journal, "output")]
    files += [("log file", log_file, "log_file"), ("annotated copy", annotate, "annotate")]
    written = [(name, path, setting) for name, path, setting in files if path is not None]
    for index, (name, path, setting) in enumerate(written):
        for other, where, _ in [("input", source, ""), *written[:index]]:
            if where is not None and same_file(path, where):
                subject = f"the {name} {path}" if name in ("failures file", "journal") else str(path)
                raise UsageError(f"{subject} is the {other} ({where}); choose another file", setting=setting)
        refuse_same(path, setting)  # never batchgen's own ledger
    sidecars = [journal.with_name(journal.name + suffix) for suffix in JOURNAL_SIDECARS]
    for path in [*(path for _, path, _ in written), *sidecars]:
        if path.is_dir():
            raise OutputError(f"cannot write {path} (a folder is in its place); nothing was sent", path)
        if path.parent.is_dir() and not os.access(path.parent, os.W_OK):  # new files and atomic renames
            raise OutputError(
                f"cannot write {path} (its folder {path.parent} cannot be written); nothing was sent", path
            )
        if path.exists() and not os.access(path, os.W_OK):
            raise OutputError(f"cannot write {path} (it is read-only or immutable); nothing was sent", path)
    if failures is not None and failures.exists():
        _refuse_foreign(failures)
    if log_file is not None and log_file.is_file():
        _refuse_foreign_log(log_file)


def _refuse_foreign(failures: Path) -> None:
    """A failures file batchgen wrote starts with its own header; any other file of that name is a person's."""
    try:
        with failures.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        header = []
    if header != FAILED_COLUMNS:
        raise UsageError(
            f"{failures} exists and was not written by batchgen (this output keeps its failed rows there); "
            "move it away or choose another output",
            setting="output",
        )


def _refuse_foreign_log(log_file: Path) -> None:
    """The log is appended to: an existing one must be empty or a batchgen log (JSON lines of attempts), never a
    person's file that would get lines in its middle."""
    try:
        with log_file.open("rb") as handle:
            first = handle.readline(64 * 1024)
        entry = json.loads(first) if first.strip() else {"attempt": None}
    except (OSError, ValueError):
        entry = None
    if not (isinstance(entry, dict) and "attempt" in entry):
        raise UsageError(
            f"{log_file} exists and is not a batchgen log (the log is appended to); choose another file",
            setting="log_file",
        )
