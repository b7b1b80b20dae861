"""One run of a checked input against one output: journal, ledger and rescue file, dispatch, output.

Before anything is sent, what the journal lacks is restored: job ids rescued after a failed write, rows the
ledger says were sent to this output (a deleted or restored-from-backup journal), and, if the journal is
new, rows the existing output already shows. Rows the ledger says were sent to another output are left out
as ``skipped``. After the run the output is rebuilt from the journal, whatever happened.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import rescue
from .errors import BatchgenError, JournalError, OutputError
from .journal import Journal, LeftOut, NewRow, journal_path, row_keys
from .ledger import LedgerLink, Sent, state_dir
from .loader import Table, in_range
from .paths import output_lock
from .settings import Settings
from .submit import Dispatcher, Report
from .validate import Validation, title_of
from .writer import OUTPUT_STAMP, read_jobs, remove_stale_temporaries, write_output

log = logging.getLogger("batchgen")


@dataclass(slots=True)
class Plan:
    """What a run will record: valid rows with their keys, rows left out and why, and keys by row number."""

    table: Table
    validation: Validation
    rows: list[NewRow] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    keys: dict[int, str] = field(default_factory=dict)


def plan(
    table: Table,
    validation: Validation,
    *,
    rows: tuple[int, int | None] | None = None,
    skip_hidden: bool = False,
    dedupe: bool = False,
) -> Plan:
    """Key every valid row (over the whole file, so shards of it agree), then apply ``rows`` and the skips."""
    keys = row_keys(item.payload for item in validation.valid)
    result = Plan(table, validation)
    first_of = {later: first for first, later in validation.duplicates} if dedupe else {}
    messages: dict[int | str, list[str]] = defaultdict(list)
    for error in validation.errors:
        messages[error.row].append(f"{error.field}: {error.message}")
    for row in validation.invalid_rows:
        if in_range(row.number, rows) and not (skip_hidden and row.hidden):
            result.left_out.append(
                LeftOut(row.number, row.label, title_of(row), "; ".join(messages[row.label]), row.extras)
            )
    for key, item in zip(keys, validation.valid, strict=True):
        source = item.source
        if not in_range(source.number, rows):
            continue
        result.keys[source.number] = key
        title = str(item.payload["title"])
        if skip_hidden and source.hidden:
            result.left_out.append(
                LeftOut(
                    source.number,
                    source.label,
                    title,
                    "hidden in Excel; not sent (--skip-hidden)",
                    source.extras,
                    "hidden",
                    key,
                )
            )
        elif source.label in first_of:
            result.left_out.append(
                LeftOut(
                    source.number,
                    source.label,
                    title,
                    f"same request as row {first_of[source.label]}; not sent (--dedupe)",
                    source.extras,
                    "duplicate",
                    key,
                )
            )
        else:
            result.rows.append(NewRow(key, source.number, source.label, title, _body(item.payload), source.extras))
    return result


def _body(payload: dict[str, Any]) -> str:
    """The JSON that is sent: the payload's own key order (the API page's), compact, UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class Outcome:
    """What :class:`Batch` hands back to the library's front door."""

    report: Report
    counts: dict[str, int]
    journal: Path
    restored: int = 0
    skipped: int = 0
    errors: list[BatchgenError] = field(default_factory=list)


class Batch:
    """A run of ``plan`` against ``output`` (its resolved real path) with ``settings``."""

    def __init__(
        self,
        plan: Plan,
        output: Path,
        settings: Settings,
        *,
        simulate: bool = False,
        retry_unknown: bool = False,
        retry_failed: bool = False,
        allow_resend: bool = False,
        force: bool = False,
        annotate: Path | None = None,
        encoding: str | None = None,
    ) -> None:
        self.plan, self.output, self.settings = plan, output, settings
        self.ledger = None if simulate else LedgerLink(settings.host, str(output))
        self.retry_unknown, self.retry_failed, self.allow_resend = retry_unknown, retry_failed, allow_resend
        self.force, self.annotate, self.encoding = force, annotate, encoding
        self.dispatcher: Dispatcher | None = None

    async def run(self, stop: asyncio.Event | None = None) -> Outcome:
        folder = state_dir()
        journal_file = journal_path(self.output)
        with output_lock(self.output, None if self.ledger is None else folder / "locks"):
            remove_stale_temporaries(self.output)
            existed = journal_file.exists()
            journal = Journal.open(journal_file, self.ledger, folder)
            try:
                return await self._run(journal, existed, stop)
            finally:
                journal.close()

    async def _run(self, journal: Journal, existed: bool, stop: asyncio.Event | None) -> Outcome:
        table = self.plan.table
        journal.recover()
        run = journal.start_run(table.name, self.plan.rows, self.plan.left_out, table.extra_columns, self.force)
        outcome = Outcome(Report(), {}, journal.path)
        outcome.restored = self._restore(journal, existed)
        outcome.skipped = self._skip_sent_elsewhere(journal)
        records = journal.to_send(run, self.retry_unknown, self.retry_failed)
        self.dispatcher = Dispatcher(journal, self.settings)
        watcher = asyncio.create_task(_watch(stop, self.dispatcher)) if stop is not None else None
        try:
            outcome.report = await self.dispatcher.run(records)
        finally:
            if watcher is not None:
                watcher.cancel()
            outcome.errors += self._finish(journal, outcome)
            outcome.counts = dict(journal.counts(run))
        return outcome

    def _finish(self, journal: Journal, outcome: Outcome) -> list[BatchgenError]:
        """Rescue unsaved ids, then write the output and the annotated copy: each failure is reported."""
        errors: list[BatchgenError] = []
        report = outcome.report
        if report.unsaved:
            errors.append(self._rescue(report))
        elif report.error is not None:
            errors.append(report.error)
        try:
            write_output(journal, self.output, lambda stamp: journal.set_meta(OUTPUT_STAMP, stamp))
            if self.annotate is not None:
                from .annotate import write_annotated  # openpyxl (and numpy through it) only when asked

                write_annotated(self.plan.table, journal, self.annotate, self.plan.keys, self.encoding)
        except JournalError:
            pass  # the journal already failed during the run: that error says it all
        except OutputError as exc:
            errors.append(exc)
        except OSError as exc:
            errors.append(OutputError(f"cannot write {self.annotate} ({exc.strerror or exc})", self.annotate))
        return errors

    def _rescue(self, report: Report) -> JournalError:
        cause = report.error.message if report.error else "cannot write the journal"
        count = sum(len(item.job_ids) for item in report.unsaved)
        try:
            path: Path | None = rescue.save(self.output, report.unsaved)
            kept = f"they are saved in {path}, which the next run on this output imports"
        except OSError as exc:
            path = None
            kept = f"they could not be saved to a rescue file either ({exc.strerror or exc}): copy them now"
        message = f"{cause}; {count} job id(s) of {len(report.unsaved)} row(s) were not stored: {kept}"
        return JournalError(message, report.unsaved, path)

    def _restore(self, journal: Journal, existed: bool) -> int:
        """Job ids the journal lacks: from a rescue file, the ledger (this output), and the output itself."""
        states = journal.states()
        restored = 0
        entries = rescue.load(self.output)
        for entry in entries:
            if states.get(entry["key"], "done") != "done":
                journal.mark_done(entry["key"], list(entry["job_ids"]), None, "rescued after a failed journal write")
                states[entry["key"]] = "done"
                restored += 1
        if entries and all(states.get(entry["key"]) == "done" for entry in entries):
            rescue.clear(self.output)
        if self.ledger is not None:
            restored += self._from_ledger(journal, states)
        if not existed:
            restored += self._from_output(journal, states)
        if restored:
            log.warning(
                "%d row(s) restored to the journal from earlier runs (rescue file, ledger or output); "
                "they are not sent again",
                restored,
            )
        return restored

    def _from_ledger(self, journal: Journal, states: dict[str, str]) -> int:
        assert self.ledger is not None
        restored = 0
        for sent in self._ledger_entries(journal, here=True):
            if sent.state == "done" and sent.job_ids and states.get(sent.key) != "done":
                journal.mark_done(sent.key, list(sent.job_ids), None, "restored from the ledger of sent rows")
            elif sent.state != "done" and states.get(sent.key) in ("pending", "failed"):
                journal.mark_unknown(
                    sent.key,
                    None,
                    f"sent on {sent.sent_at} (per the ledger) without a stored job "
                    "id: the provider may have created jobs",
                )
            else:
                continue
            states[sent.key] = "done" if sent.state == "done" else "unknown"
            restored += 1
        return restored

    def _from_output(self, journal: Journal, states: dict[str, str]) -> int:
        """A new journal beside an existing output: rows whose job ids the output shows are done already."""
        header, lines = read_jobs(self.output)
        if not lines:
            return 0
        known = {job_id for done in journal.done() for job_id in done.job_ids}
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        column = {name: header.index(name) for name in ("row", "title", "job_id") if name in header}
        for line in lines:
            values = {name: str(line[index]) if index < len(line) else "" for name, index in column.items()}
            if values.get("job_id") and values["job_id"] not in known:
                groups[(values.get("row", ""), values.get("title", ""))].append(values["job_id"])
        restored = 0
        for (row, title), ids in groups.items():
            candidates = [r for r in self.plan.rows if r.title == title and states.get(r.key) != "done"]
            candidates.sort(key=lambda r: str(r.label) != row.removesuffix(".0"))
            if candidates:
                journal.mark_done(candidates[0].key, ids, None, "restored from the existing output")
                states[candidates[0].key] = "done"
                restored += 1
        return restored

    def _skip_sent_elsewhere(self, journal: Journal) -> int:
        """Rows the ledger says were sent to another output are left out, unless ``allow_resend``."""
        if self.ledger is None or self.allow_resend:
            return 0
        states = journal.states()
        by_key = {row.key: row for row in self.plan.rows}
        skipped: dict[str, LeftOut] = {}
        for sent in self._ledger_entries(journal, here=False):
            row = by_key.get(sent.key)
            if row is None or states.get(sent.key) == "done" or sent.key in skipped:
                continue
            skipped[sent.key] = LeftOut(
                row.row,
                row.label,
                row.title,
                f"already sent to {sent.output} on {sent.sent_at}; not sent again (--allow-resend sends it anyway)",
                row.extras,
                "skipped",
                row.key,
            )
        if skipped:
            journal.leave_out(list(skipped.values()))
            log.warning(
                "%d row(s) were already sent to another output and are skipped (--allow-resend sends them anyway)",
                len(skipped),
            )
        return len(skipped)

    def _ledger_entries(self, journal: Journal, here: bool) -> Sequence[Sent]:
        assert self.ledger is not None
        entries = self.ledger.lookup(journal.db, (row.key for row in self.plan.rows))
        return [sent for sent in entries if (sent.output == self.ledger.output) == here]


async def _watch(stop: asyncio.Event, dispatcher: Dispatcher) -> None:
    """The caller's stop event (the command line's Ctrl-C) interrupts the dispatcher, gracefully."""
    await stop.wait()
    dispatcher.interrupt()
