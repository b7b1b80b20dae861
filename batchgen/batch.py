"""One run of a checked input against one output: journal, ledger and rescue file, dispatch, output.

Before anything is sent, what the journal lacks is restored (:mod:`batchgen.history`); after the run the output
is rebuilt from the journal, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .edits import find_changed
from .errors import BatchgenError, JournalError, OutputError
from .files import remove_stale_temporaries
from .history import History, report_skipped
from .journal import Journal, LeftOut, NewRow, Place, journal_path, row_keys
from .ledger import Ledger, blocking_states, open_ledger
from .loader import Table, in_range
from .paths import output_lock, state_dir
from .rescue import save_rescued
from .results import State
from .settings import Settings
from .submit import Dispatcher, Report
from .validate import Validation, title_of
from .writer import OUTPUT_STAMP, output_files, write_output

log = logging.getLogger("batchgen")
SHOWN_REASONS = 3  # distinct failure messages named on the console; the failed sheet has every row's


@dataclass(slots=True)
class Plan:
    """What a run will record: valid rows with their keys, rows left out and why, and keys by row number.

    ``in_file`` holds the key of every valid row of the file, ``rows`` or not: a row outside this shard is still
    in the input, never a row the input lost.
    """

    table: Table
    validation: Validation
    rows: list[NewRow] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    keys: dict[int, str] = field(default_factory=dict)
    in_file: frozenset[str] = frozenset()
    others: list[Place] = field(default_factory=list)  # valid rows outside the ``rows`` shard


def plan(
    table: Table,
    validation: Validation,
    *,
    rows: tuple[int, int | None] | None = None,
    skip_hidden: bool = False,
    send_duplicates: bool = False,
) -> Plan:
    """Key every valid row (over the whole file, so shards of it agree), then apply ``rows`` and the skips.

    A row identical to an earlier one (usually a copy-paste slip) is left out as ``duplicate`` unless
    ``send_duplicates``: nothing is billed twice unless the user asks for several takes.
    """
    keys = row_keys(item.payload for item in validation.valid)
    result = Plan(table, validation, in_file=frozenset(keys))
    first_of = {} if send_duplicates else {later: first for first, later in validation.duplicates}
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
        result.keys[source.number] = key
        if not in_range(source.number, rows):  # (its request is never built: this run does not send it)
            result.others.append(Place(key, source.number, source.label, source.extras))
            continue
        title = str(item.payload["title"])
        if skip_hidden and source.hidden:
            result.left_out.append(
                LeftOut(
                    source.number,
                    source.label,
                    title,
                    "hidden in Excel; not sent (`skip_hidden`)",
                    source.extras,
                    State.HIDDEN,
                    key,
                )
            )
        elif source.label in first_of:
            result.left_out.append(
                LeftOut(
                    source.number,
                    source.label,
                    title,
                    f"same request as row {first_of[source.label]}; not sent (`send_duplicates` sends each once)",
                    source.extras,
                    State.DUPLICATE,
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
class Finished:
    """What :class:`BatchRun` hands back to the library's front door."""

    report: Report
    counts: dict[str, int]
    journal: Path
    restored: int = 0
    skipped: int = 0
    errors: list[BatchgenError] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Choices:
    """What the user chose for a run beyond how to reach and pace the provider: which rows to send again, a
    journal made from another input, the annotated copy, and a team ledger's URL (None: the per-user file)."""

    simulate: bool = False
    retry_unknown: bool = False
    retry_failed: bool = False
    allow_resend: bool = False
    resend_changed: bool = False
    force: bool = False
    annotate: Path | None = None
    encoding: str | None = None
    ledger: str | None = None


class BatchRun:
    """A run of ``plan`` against ``output`` (its resolved real path) with ``settings`` and the user's ``choices``."""

    def __init__(self, plan: Plan, output: Path, settings: Settings, choices: Choices = Choices()) -> None:
        self.plan, self.output, self.settings, self.choices = plan, output, settings, choices
        self.dispatcher: Dispatcher | None = None

    async def run(self, stop: asyncio.Event | None = None) -> Finished:
        """Run the batch; ``stop``, when set, stops it gracefully.

        A cancellation (``asyncio.run``'s answer to Ctrl-C, a notebook's stop button) is a graceful stop first:
        requests in flight get the grace and their ids are stored, then the cancellation goes on. A
        cancellation once ``stop`` was set (a second Ctrl-C) cuts the requests in flight short.
        """
        stop = stop or asyncio.Event()
        task = asyncio.ensure_future(self._locked(stop))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await _wind_down(task, stop)
            raise

    async def _locked(self, stop: asyncio.Event) -> Finished:
        folder = state_dir()
        journal_file = journal_path(self.output)
        provider = self.settings.provider
        with output_lock(self.output, None if self.choices.simulate else folder / "locks"):
            remove_stale_temporaries(output_files(self.output))
            existed = journal_file.exists()
            ledger = (
                None
                if self.choices.simulate
                else open_ledger(provider.ledger_host, str(self.output), folder, self.choices.ledger, provider.account)
            )
            try:
                with Journal.open(journal_file) as journal:
                    return await self._run(journal, ledger, existed, stop)
            finally:
                if ledger is not None:
                    ledger.close()

    async def _run(self, journal: Journal, ledger: Ledger | None, existed: bool, stop: asyncio.Event) -> Finished:
        table = self.plan.table
        journal.recover()
        plan = self.plan
        run = journal.start_run(
            table.name, plan.rows, plan.left_out, table.extra_columns, self.choices.force, plan.in_file, plan.others
        )
        finished = Finished(Report(), {}, journal.path)
        history = History(journal, plan.rows, self.output, ledger)
        finished.restored = history.restore(existed)
        elsewhere = history.sent_elsewhere(journal.unsent_before(run), plan.in_file)
        find_changed(journal, plan.rows, run, self.choices.resend_changed, plan.in_file, elsewhere)
        finished.skipped = 0 if self.choices.allow_resend else history.skip_sent_elsewhere()
        records = journal.to_send(run, self.choices.retry_unknown, self.choices.retry_failed)
        blocking = blocking_states(self.choices.allow_resend, self.choices.retry_unknown)
        self.dispatcher = Dispatcher(journal, self.settings, ledger=ledger, blocking=blocking)
        watcher = None
        if stop.is_set():  # a signal while the sheet was read: nothing is sent
            self.dispatcher.interrupt()
        else:
            watcher = asyncio.create_task(_watch(stop, self.dispatcher))
        try:
            finished.report = await self.dispatcher.run(records)
        finally:
            if watcher is not None:
                watcher.cancel()
            report_skipped(self.dispatcher.commit.skipped_to)
            finished.errors += self._finish(journal, finished)
            finished.counts = dict(journal.counts(run))
            _report_failures(journal, run)
        return finished

    def _finish(self, journal: Journal, finished: Finished) -> list[BatchgenError]:
        """Rescue unsaved ids, then write the output and the annotated copy: each failure is reported."""
        errors: list[BatchgenError] = []
        report = finished.report
        if report.unsaved:
            errors.append(self._rescue(report))
        elif report.error is not None:
            errors.append(report.error)
        journal_failed = any(isinstance(error, JournalError) for error in errors)
        try:
            write_output(journal, self.output, lambda stamp: journal.set_meta(OUTPUT_STAMP, stamp))
        except JournalError as exc:  # the output is written; only its stamp in the journal failed
            if not journal_failed:
                errors.append(exc)
        except OutputError as exc:
            errors.append(exc)
        copy = self.choices.annotate
        if copy is not None:
            from .annotate import write_annotated  # openpyxl (and numpy through it) only when asked

            try:
                write_annotated(self.plan.table, journal, copy, self.plan.keys, self.choices.encoding)
            except OSError as exc:
                errors.append(OutputError(f"cannot write {copy} ({exc.strerror or exc})", copy))
        return errors

    def _rescue(self, report: Report) -> JournalError:
        cause = report.error.message if report.error else "cannot write the journal"
        count = sum(len(item.job_ids) for item in report.unsaved)
        try:
            path: Path | None = save_rescued(self.output, report.unsaved)
            kept = f"they are saved in {path}, which the next run on this output imports"
        except OSError as exc:
            path = None
            kept = f"they could not be saved to a rescue file either ({exc.strerror or exc}): copy them now"
        message = f"{cause}; {count} job id(s) of {len(report.unsaved)} row(s) were not stored: {kept}"
        return JournalError(message, report.unsaved, path)


def _report_failures(journal: Journal, run: int) -> None:
    """Why rows failed, in the provider's words and by how many: a count alone tells the user nothing."""
    for retryable, what, then in (
        (False, "rejected by the provider", "see the failed sheet, then `retry_failed` sends them again"),
        (True, "refused on every attempt", "the next run sends them again"),
    ):
        reasons = journal.failures(run, retryable)
        if reasons:
            shown = ", ".join(f"{message} ({count})" for message, count in reasons[:SHOWN_REASONS])
            more = f" and {len(reasons) - SHOWN_REASONS} more" if len(reasons) > SHOWN_REASONS else ""
            log.warning("%d row(s) %s: %s%s; %s", sum(n for _, n in reasons), what, shown, more, then)


async def _wind_down(task: asyncio.Future[Finished], stop: asyncio.Event) -> None:
    """The batch ``task`` after its caller was cancelled: stopped gracefully unless ``stop`` was set already,
    else (or on a further cancellation) cut short; either way it has ended, its output written."""
    if not stop.is_set() and not task.done():
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([task])
    if not task.done():
        task.cancel()
        await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved: the caller learns of the cancellation, the journal holds the rest


async def _watch(stop: asyncio.Event, dispatcher: Dispatcher) -> None:
    """The caller's stop event (the command line's Ctrl-C) interrupts the dispatcher, gracefully."""
    await stop.wait()
    dispatcher.interrupt()
