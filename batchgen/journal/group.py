"""Group commit: the journal and ledger writes of a run's requests, batched, in order, off the event loop.

Rows about to be sent are *claimed* (in the ledger, then ``in_flight`` in the journal); answers are *settled*
(their state and job ids in the journal, then lazily in the ledger). Each flush takes everything queued since
the last one: one ledger transaction, then one journal transaction, each synced once. A caller's await returns
only when its write is on disk, so no request leaves, and nothing is logged or shown, before that; and since a
flush holds every answer that came before it, ids are synced before the next request leaves.

The writes run on one thread of their own: the event loop keeps sending and receiving during a sync, which is
what lets the next batch grow (as databases do with group commit).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import BatchgenError
from ..ledger import LEDGER_FAILURES, RELEASED, Batch, Entry, Ledger, Sent
from .store import Change, Journal, LeftOut, in_flight, now, pending
from .view import Record


@dataclass(slots=True)
class _Flush:
    """What one flush writes, and who waits for it."""

    claims: list[tuple[Record, asyncio.Future[Sent | None]]] = field(default_factory=list)
    changes: list[tuple[Change, asyncio.Future[None]]] = field(default_factory=list)


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
        self._flusher: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="batchgen-commit")

    async def claim(self, record: Record) -> Sent | None:
        """Claim ``record`` and mark it ``in_flight``, on disk; or the entry of the output that holds it.

        Raises :class:`~batchgen.errors.JournalError` (a :class:`LedgerError` for the ledger) if it cannot.
        """
        future: asyncio.Future[Sent | None] = asyncio.get_running_loop().create_future()
        self._queue.claims.append((record, future))
        self._kick()
        return await future

    async def settle(self, change: Change) -> None:
        """Write ``change`` (an answer's outcome) to the journal, on disk, before the caller goes on."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.changes.append((change, future))
        self._kick()
        await future

    async def close(self) -> None:
        """Wait for every queued write, then let the thread go."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        self._thread.shutdown(wait=True)

    def _kick(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())

    async def _flush_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue.claims or self._queue.changes:
            batch, self._queue = self._queue, _Flush()
            claims = [record for record, _ in batch.claims]
            changes = [change for change, _ in batch.changes]
            written = await loop.run_in_executor(self._thread, self._write, claims, changes)
            self._resolve(batch, written)

    def _write(self, claims: list[Record], changes: list[Change]) -> _Written:
        """On the commit thread: the ledger first (claims, then entries), then the journal."""
        written = _Written()
        sequence = self.sequence + 1 if claims else None
        if self.ledger is not None and self.ledger_error is None:
            batch = Batch(
                [record.key for record in claims],
                [entry for entry in map(_entry, changes) if entry is not None],
                now(),
                self.identity,
                sequence,
                self.blocking,
            )
            try:
                written.refused = self.ledger.write(batch)
            except LEDGER_FAILURES as exc:
                # Not tried again in this run: it stops, and a ledger out of reach would make each answer still
                # coming wait out a timeout before its journal write. The next run brings the ledger up to date.
                self.ledger_error = exc
        if self.ledger_error is not None:
            written.ledger_error = self.ledger_error
            claims = []  # no claim, no request; the answers still go to the journal
            sequence = None
        sent = [in_flight(record.key) for record in claims if record.key not in written.refused]
        left_out = [_skipped(record, written.refused[record.key]) for record in claims if record.key in written.refused]
        try:
            self.journal.apply([*changes, *sent], left_out, sequence)
        except BatchgenError as exc:
            written.journal_error = exc
            return written
        if sequence is not None:
            self.sequence = sequence
        return written

    def _resolve(self, batch: _Flush, written: _Written) -> None:
        for _, settled in batch.changes:
            _settle_future(settled, written.journal_error, None)
        claim_error = written.journal_error or written.ledger_error
        for record, claimed in batch.claims:
            holder = written.refused.get(record.key)
            if holder is not None and claim_error is None:
                self.skipped_to[holder.output] = self.skipped_to.get(holder.output, 0) + 1
            if claimed.cancelled() and holder is None and claim_error is None:
                # Claimed for a request that will never leave (its row was interrupted meanwhile): give it back.
                unsent = pending(record.key, None, "interrupted before the request was sent")
                self._queue.changes.append((unsent, asyncio.get_running_loop().create_future()))
                self._kick()
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
    if change.state == "done":
        ids = tuple(_ids(change.values.get("job_ids")))
        return Entry(change.key, "done", now(), ids)
    if change.state == "unknown":
        return Entry(change.key, "unknown", now())
    if change.state in ("pending", "failed"):
        return Entry(change.key, RELEASED, now())
    return None


def _ids(encoded: object) -> list[str]:
    return [str(job_id) for job_id in json.loads(str(encoded))] if encoded else []


def _skipped(record: Record, holder: Sent) -> LeftOut:
    return LeftOut(
        record.row,
        record.label,
        record.title,
        f"sent by another run to {holder.output} at {holder.sent_at}; not sent again (--allow-resend sends it anyway)",
        record.extras,
        "skipped",
        record.key,
    )
