"""What ``batchgen status`` and ``batchgen export`` read from an output's journal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .journal import Journal, journal_path
from .paths import output_lock, real
from .results import State
from .writer import check_output, write_tables


@dataclass(slots=True)
class Status:
    """Rows per state of the last run, its throughput, and one line per row a person should look at."""

    source: str
    started: str
    counts: dict[str, int]
    throughput: str = ""
    lines: list[tuple[int | str, str, str]] = field(default_factory=list)


def open_journal(output: str | Path, setting: str = "output") -> Journal:
    """The journal of an existing output; a clear error, naming the ``setting`` that gave it, if there is none."""
    found = journal_path(real(output))
    if not found.is_file():
        raise UsageError(f"{output}: no journal found ({found}); was it written by batchgen run?", setting=setting)
    return Journal.open(found)


def status(output: str | Path) -> Status:
    """Rows failed, unknown, pending, left out (invalid, skipped...) or restored after a lost write."""
    with open_journal(output) as journal:
        run = journal.latest_run()
        source, started = journal.run_info(run)
        found = Status(source, started, dict(journal.counts(run)))
        done, first, last = journal.done_span()
        if done and first and last:
            seconds = (dt.datetime.fromisoformat(last) - dt.datetime.fromisoformat(first)).total_seconds()
            rate = f"{done / seconds:.1f} rows/s" if seconds > 0 else "all within one second"
            found.throughput = f"{done} rows done between {first} and {last} ({rate})"
        found.lines += [(r.label, r.state, r.reason) for r in journal.unfinished(run)]
        found.lines += [(o.label, o.state, o.message) for o in journal.left_out()]
        found.lines += [
            (r.label, State.DONE, r.message) for r in journal.records() if r.state == State.DONE and r.message
        ]
    return found


def export(output: str | Path, shards: list[Path] | None = None) -> None:
    """Rebuild ``output`` from its journal, or merge the outputs of ``shards`` (runs with ``rows``) into it."""
    target = real(output)
    check_output(target)
    journals: list[Journal] = []
    try:
        journals += [open_journal(shard, "shards") for shard in shards or []] or [open_journal(output)]
    except UsageError:
        for journal in journals:
            journal.close()
        raise
    lock = Path(f"{journal_path(target)}.lock")
    leftover = not lock.exists() and not journal_path(target).exists()  # a merged output has no journal
    try:
        with output_lock(target, None):
            write_tables(target, journals)
    finally:
        for journal in journals:
            journal.close()
        if leftover:
            lock.unlink(missing_ok=True)
