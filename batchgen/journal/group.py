"""Group commit: the journal and ledger writes of a run's requests, batched and in order.

Rows about to be sent are *claimed* (in the ledger, then ``in_flight`` in the journal); answers are *settled*
(their state and job ids in the journal, and in the ledger). Each flush takes everything queued since the last
one: one ledger transaction, then one journal transaction, each synced once, so the cost of a sync is shared
by every row of the batch (group commit, as databases do). A caller's await returns only when its write is on
disk: no request leaves, and nothing is logged or shown, before that.

A flush runs on the event loop itself, once per turn of the loop, after every task that was ready has queued
its writes. Requests are sent only from the loop, so none can leave while a write is not yet synced, and
since a flush holds every answer that came before it, job ids are on disk before the next request leaves. The
answers that arrive during a sync wait in the sockets and make the next batch. The night's record (each
attempt, each run event) rides along in the same transactions: it never costs a sync of its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import BatchgenError
from ..ledger import LEDGER_FAILURES, RELEASED, Batch, Entry, Ledger, Sent, Song
from ..results import State
from .store import Attempt, Change, Event, Journal, in_flight, now, pending
from .view import LeftOut, Record

log = logging.getLogger("batchgen")


ANSWERS_WAIT = 0.002  # seconds an answer alone may wait for a claim to share a flush with


class ClaimsClosed(Exception):
    """Raised to a claim still waiting for its flush when the run stopped dispatching: its request never leaves."""


@dataclass(slots=True)
class _Flush:
    """What one flush writes, and who waits for it."""

    claims: list[tuple[Record, asyncio.Future[Sent | None]]] = field(default_factory=list)
    changes: list[tuple[Change, asyncio.Future[None]]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class _Written:
    """What a flush did: the claims another output holds, and the error of each part that failed."""

    refused: dict[str, Sent] = field(default_factory=dict)
    ledger_error: BatchgenError | None = None
    journal_error: BatchgenError | None = None


class GroupCommit:
    """Claims and settlements of one run, written in groups; ``blocking`` as in :func:`~batchgen.ledger.Batch`."""

    def __init__(self, journal: Journal, ledger: Ledger | None, blocking: frozenset[str]) -> None:
        self.journal, self.ledger, self.blocking = journal, ledger, blocking
        self.identity = journal.identity()
        self.sequence = journal.sequence()
        self.skipped_to: dict[str, int] = {}  # other outputs that held rows of this run, and how many
        self.ledger_error: BatchgenError | None = None  # the ledger failed: no more claims in this run
        self._queue = _Flush()
        self._scheduled: asyncio.Handle | None = None
        self._entries: list[Entry] = []  # the ledger follows answers with the next claims: one sync less
        self._closed = False

    async def claim(self, record: Record) -> Sent | None:
        """Claim ``record`` and mark it ``in_flight``, on disk; or the entry of the output that holds it.

        Raises :class:`~batchgen.errors.JournalError` (a :class:`LedgerError` for the ledger) if it cannot.
        """
        future: asyncio.Future[Sent | None] = asyncio.get_running_loop().create_future()
        self._queue.claims.append((record, future))
        self._kick(soon=True)
        try:
            return await future
        except asyncio.CancelledError:  # interrupted once claimed, before its request could leave: give it back
            if future.done() and not future.cancelled() and future.exception() is None and future.result() is None:
                self.give_back(record)
            raise

    def give_back(self, record: Record) -> None:
        """A claimed row whose request will never leave (the run stopped, or it was interrupted): pending again."""
        unsent = self.write(pending(record.key, None, "interrupted before the request was sent"))
        unsent.add_done_callback(lambda done: done.cancelled() or done.exception())

    def close_claims(self) -> None:
        """The run stops dispatching: claims not yet written are refused (:class:`ClaimsClosed`)."""
        self._closed = True

    @property
    def claims_closed(self) -> bool:
        return self._closed

    def write(self, change: Change) -> asyncio.Future[None]:
        """Queue ``change`` (an answer's outcome) now; the future is done when it is on disk.

        Queued before the caller frees its request slot, an answer is written no later than the next claim.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.changes.append((change, future))
        self._kick(soon=False)
        return future

    def keep(self, attempt: Attempt | None = None, event: Event | None = None) -> None:
        """Queue an attempt or an event of the night: written with the next flush, nobody waits for it."""
        if attempt is not None:
            self._queue.attempts.append(attempt)
        if event is not None:
            self._queue.events.append(event)
        self._kick(soon=False)

    async def settle(self, change: Change) -> None:
        """Write ``change`` to the journal, on disk, before the caller goes on."""
        await self.write(change)

    def close(self) -> None:
        """Write whatever is still queued (rows given back after an interrupt), and bring the ledger up to date."""
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._flush()
        if self._entries and self.ledger is not None and self.ledger_error is None:
            try:
                self.ledger.write(Batch(entries=self._entries, journal=self.identity))
            except LEDGER_FAILURES as exc:
                log.warning("%s; the next run on this output brings the ledger up to date", exc)
            self._entries = []

    def _kick(self, soon: bool) -> None:
        """A claim is flushed at the next turn of the loop: a request waits for it. Answers alone wait up to
        :data:`ANSWERS_WAIT` for the claim their freed slot is about to make, and share its sync."""
        loop = asyncio.get_running_loop()
        if soon and isinstance(self._scheduled, asyncio.TimerHandle):
            self._scheduled.cancel()
            self._scheduled = None
        if self._scheduled is None:
            self._scheduled = loop.call_soon(self._flush) if soon else loop.call_later(ANSWERS_WAIT, self._flush)

    def _flush(self) -> None:
        """Write every queued claim and answer. Under load, the answers that arrive while a flush syncs make the
        next batch larger: the cost of a sync spreads over more rows as the rate grows."""
        self._scheduled = None
        while self._queue.claims or self._queue.changes or self._queue.attempts or self._queue.events:
            batch, self._queue = self._queue, _Flush()
            claims = [] if self._closed else [record for record, _ in batch.claims]
            self._resolve(batch, self._write(claims, batch))

    def _write(self, claims: list[Record], queued: _Flush) -> _Written:
        """The ledger first (answers since its last write, then claims), then the journal.

        The ledger learns of answers with the next claims (or at the end): a flush without claims syncs the
        journal alone. Until then the journal has them, and a run after a crash brings the ledger up to date.
        """
        written = _Written()
        changes = [change for change, _ in queued.changes]
        self._entries += [entry for entry in map(_entry, changes) if entry is not None]
        sequence = self.sequence + 1 if claims else None
        if claims and self.ledger is not None and self.ledger_error is None:
            batch = Batch(
                [record.key for record in claims],
                self._entries,
                now(),
                self.identity,
                sequence,
                self.blocking,
                {record.key: Song.of(record.title, record.body.decode(), record.row) for record in claims},
            )
            try:
                written.refused = self.ledger.write(batch)
                self._entries = []
            except LEDGER_FAILURES as exc:
                # Not tried again in this run: it stops, and a ledger out of reach would make each answer still
                # coming wait out a timeout before its journal write. The next run brings the ledger up to date.
                self.ledger_error = exc
        if claims and self.ledger_error is not None:
            written.ledger_error = self.ledger_error
            claims = []  # no claim, no request; the answers still go to the journal
            sequence = None
        sent = [in_flight(record.key) for record in claims if record.key not in written.refused]
        refused = written.refused
        left_out = [
            _skipped(record, refused[record.key], self._holder(refused[record.key]))
            for record in claims
            if record.key in refused
        ]
        try:
            self.journal.apply([*changes, *sent], left_out, sequence, queued.attempts, queued.events)
        except BatchgenError as exc:
            written.journal_error = exc
            return written
        if sequence is not None:
            self.sequence = sequence
        return written

    def _holder(self, holder: Sent) -> str:
        """Where a row this run was refused went, as messages name it (:meth:`~batchgen.ledger.Sent.holder`)."""
        assert self.ledger is not None
        return holder.holder(self.ledger.output, self.ledger.machine)

    def _resolve(self, batch: _Flush, written: _Written) -> None:
        for _, settled in batch.changes:
            _settle_future(settled, written.journal_error, None)
        claim_error = written.journal_error or written.ledger_error
        for record, claimed in batch.claims:
            if self._closed:
                _settle_future(claimed, ClaimsClosed(), None)
                continue
            holder = written.refused.get(record.key)
            if holder is not None and claim_error is None:
                where = self._holder(holder)
                self.skipped_to[where] = self.skipped_to.get(where, 0) + 1
            if claimed.cancelled() and holder is None and claim_error is None:
                self.give_back(record)  # claimed for a request that will never leave (interrupted meanwhile)
                continue
            _settle_future(claimed, claim_error, holder)


def _settle_future(future: asyncio.Future[Any], error: BaseException | None, value: Any) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _entry(change: Change) -> Entry | None:
    """What a journal change means for this output's ledger entry (``None``: nothing)."""
    if change.state == State.DONE:
        return Entry(change.key, "done", now(), change.job_ids)
    if change.state == State.UNKNOWN:
        return Entry(change.key, "unknown", now())
    if change.state in (State.PENDING, State.FAILED):
        return Entry(change.key, RELEASED, now())
    return None


def _skipped(record: Record, holder: Sent, where: str) -> LeftOut:
    return LeftOut(
        record.row,
        record.label,
        record.title,
        f"{holder.went(where)}; not sent again (`allow_resend` sends it anyway)",
        record.extras,
        State.SKIPPED,
        record.key,
    )
