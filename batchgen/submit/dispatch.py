"""Send journal rows to the provider: bounded requests in flight, the pace, retries by outcome class.

Each row is worked by one of a pool of row tasks, larger than the concurrency: a row waiting out its
Retry-After or backoff does not hold a connection, so scattered 429s do not idle the run. Requests in
flight are bounded by the pace's window (at most the concurrency); when each may start is the
:class:`~batchgen.submit.gate.Gate`'s call, and a provider's long Retry-After (a quota) its business too.
A row is claimed in the ledger and committed ``in_flight`` (synced) before its request leaves; its outcome is
journaled (by the :class:`Settler`) before anything else happens. Both go through one
:class:`~batchgen.journal.group.GroupCommit`, which writes the rows of many requests with one sync.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from ..clock import SYSTEM, Clock
from ..errors import BatchgenError
from ..journal import Journal, Record
from ..journal.group import ClaimsClosed, GroupCommit
from ..ledger import BILLED, Ledger
from ..pace import LONG_RETRY_AFTER, Pace
from ..settings import Settings
from ..transport import SendCancelled, Transport, TransportError, open_transport
from .gate import Gate, Stopped
from .outcome import TryAgain, classify, classify_error, parse_retry_after, parse_window
from .report import Report
from .retry import AttemptBudget, RetryPolicy
from .settle import Settler

ROW_TASKS_PER_SLOT = 4


class Dispatcher:
    """Sends the rows it is given; ``interrupt()`` stops it gracefully, a second call at once."""

    def __init__(
        self,
        journal: Journal,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        blocking: frozenset[str] = BILLED,
        transport: Transport | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings = settings
        self.commit = GroupCommit(journal, ledger, blocking)
        limits = settings.limits
        self.transport = transport or open_transport(settings.provider.transport, limits.concurrency)
        self.pace = Pace(limits.rate, start=16.0, ceiling=limits.concurrency, clock=clock.now)
        self.report = Report()
        self.gate = Gate(self.pace, self.report, limits.max_requests, limits.stop_after, self._notice, clock.sleep)
        self.retries = RetryPolicy(
            AttemptBudget(limits.max_attempts), down=lambda: self.pace.down, failing=lambda: self.pace.failing
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._settler: Settler | None = None

    def stop(self, reason: str) -> None:
        """Stop dispatching: rows not yet sent stay as they are (claims still waiting too); requests in flight
        may finish."""
        self.gate.close(reason)
        self.commit.close_claims()

    def interrupt(self) -> None:
        """First call: stop dispatching and give requests in flight ``grace`` seconds. Second: cancel them."""
        if self.report.interrupted:
            self._cancel_all()
            return
        self.report.interrupted = True
        self.stop("interrupted")
        asyncio.get_running_loop().call_later(self.settings.limits.grace, self._cancel_all)

    def _cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def run(self, records: list[Record]) -> Report:
        """Work every record until done or stopped; a cancellation cancels the requests in flight too."""
        settings = self.settings
        self._settler = Settler(self.commit, settings, self.stop, len(records), self.report, self.gate)
        loop = asyncio.get_running_loop()
        timer = (
            loop.call_later(settings.limits.stop_after, self.stop, "the time limit was reached")
            if settings.limits.stop_after is not None
            else None
        )
        rows = iter(records)
        count = min(len(records), settings.limits.concurrency * ROW_TASKS_PER_SLOT)
        self._tasks = {asyncio.create_task(self._worker(rows)) for _ in range(count)}
        try:
            await asyncio.gather(*self._tasks)
        except asyncio.CancelledError:
            self._cancel_all()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            raise
        finally:
            if timer:
                timer.cancel()
            self._settler.close()
            self.commit.close()
            await self.transport.aclose()
        return self.report

    async def _worker(self, rows: Iterator[Record]) -> None:
        settler = self._settler
        assert settler is not None
        for record in rows:
            if self.gate.closed.is_set():
                return
            try:
                await self._row(record, settler)
            except asyncio.CancelledError:
                return  # interrupted: the row was journaled where it stood
            except BatchgenError as exc:  # the journal could not be written: stop at once
                settler.fail(exc)
                return

    async def _row(self, record: Record, settler: Settler) -> None:
        """One row through its attempts, as the retry policy allows, waiting outside the slot."""
        try:
            async for attempt in self.retries.attempts(self.gate.sleep, self.gate.hold):
                with attempt:
                    await self._attempt(record, attempt.retry_state.attempt_number, settler)
        except Stopped:
            return
        except TryAgain as exc:
            await settler.exhausted(record, exc.outcome)

    async def _attempt(self, record: Record, number: int, settler: Settler) -> None:
        """One request. Its outcome is decided and queued for the journal in its slot; the slot is freed before
        the write is on disk, so the next request's claim joins the same group commit (the answer first)."""
        settings = self.settings
        async with self.gate.enter() as ticket:
            try:
                holder = await self.commit.claim(record)
            except ClaimsClosed:
                self.gate.unsent(ticket)
                raise Stopped from None
            except BaseException:
                self.gate.unsent(ticket)
                raise
            if holder is not None:
                self.gate.unsent(ticket)
                settler.skipped(record)  # another output holds the row: it is not sent
                return
            try:
                await self.gate.depart()
            except BaseException:
                self.gate.unsent(ticket)
                self.commit.give_back(record)
                raise
            if self.commit.claims_closed:  # the run stopped in the turn its claim was written: it never leaves
                self.gate.unsent(ticket)
                self.commit.give_back(record)
                raise Stopped
            started = settler.keeper.leaving(record, ticket)
            try:
                response = await self.transport.send(
                    settings.provider.url,
                    settings.provider.headers(record.key),
                    record.body,
                    timeout=settings.provider.timeout,
                    connect_timeout=settings.provider.connect_timeout,
                )
            except TransportError as exc:
                self.pace.unanswered(ticket)
                outcome = classify_error(exc, settings.provider.timeout)
            except SendCancelled as exc:
                await settler.cancelled(record, exc.body_sent)
                raise
            else:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                remaining, reset = parse_window(response.headers)
                self.pace.answered(ticket, response.status, retry_after, remaining, reset)
                outcome = classify(response)
                self._window_used_up(settler, reset)
            written = settler.settle(record, outcome, number, self.pace.clock() - started)
        await written

    def _window_used_up(self, settler: Settler, reset: float | None) -> None:
        """The provider's window of requests is used up for a long while (``X-RateLimit-Reset`` minutes away): a
        state of the run, said at once like a quota, and a stop now if it opens past the time limit."""
        resume = self.pace.resume_at
        wait = 0.0 if resume is None or reset is None else resume - self.pace.clock()
        if wait >= LONG_RETRY_AFTER:
            why = "its window of requests is used up (X-RateLimit-Remaining: 0)"
            self.gate.hold(wait, why, "X-RateLimit-Reset")
            settler.keeper.pause(wait, why)

    def _notice(self, text: str | None) -> None:
        """A state of the run on the progress; an outage's start and end in the night, too."""
        if self._settler is None:
            return
        self._settler.tally.show(text)
        outage = self.pace.outage
        if text is not None and self.pace.down and outage.since is not None:  # (the gate's words: "... ; next try")
            self._settler.keeper.down(time.time() - (self.pace.clock() - outage.since), text.split(";")[0])
        elif text is None:
            self._settler.keeper.up()
