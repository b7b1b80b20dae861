"""What happens after each attempt: the journal first, then the early-stop checks, the log and the progress.

The order matters: job ids are committed before anything that can fail (a log line, the progress bar), so
a full disk or a killed process never costs an id the provider returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import cast

from ..errors import BatchgenError, FatalAPIError, JournalError, NoAnswerError, UnreachableError, UnsavedIds
from ..journal import Record
from ..journal.group import GroupCommit
from ..journal.store import done, failed, pending, unknown
from ..pace import LONG_RETRY_AFTER
from ..redact import redact
from ..results import State
from ..settings import Settings
from .gate import Gate
from .keep import Keeper
from .outcome import Accepted, Ambiguous, Fatal, Outcome, Rejected, Retryable, TryAgain
from .report import Report
from .tally import Tally
from .tripwire import Trip, Tripwire


class Settler:
    """Journals each outcome and decides whether the run must stop; ``stop`` is called with the reason."""

    def __init__(
        self,
        commit: GroupCommit,
        settings: Settings,
        stop: Callable[[str], None],
        total: int,
        report: Report,
        gate: Gate,
    ) -> None:
        self.commit = commit
        self.keeper = Keeper(commit, gate, report)
        self.settings = settings
        self.stop = stop
        self.report = report
        self.tripwire = Tripwire(settings.limits.concurrency, total)
        self.answered = False
        self._unknown = 0  # rows this run left unknown, counted when decided (the progress counts later)
        self._held: list[tuple[Record, Rejected]] = []
        self.tally = Tally(settings, total, report, self.fail)

    def close(self) -> None:
        self.keeper.close()
        self.tally.close()

    def fail(self, error: BatchgenError) -> None:
        """Stop the run for good with ``error`` (the first one wins; a journal error always shows)."""
        if self.report.error is None or isinstance(error, JournalError):
            self.report.error = error
        self.stop(str(error))

    def settle(self, record: Record, outcome: Outcome, attempt: int, latency: float) -> Awaitable[None]:
        """Queue the row's new state and decide at once what follows: the early-stop checks, a stop (before the
        request's slot is freed, so no request leaves after it). The awaitable reports the attempt once it is on
        disk; for a retryable outcome it raises :class:`TryAgain`, the one place tenacity learns to retry."""
        outcome = replace(outcome, message=redact(outcome.message, self.settings.provider.api_key.get_secret_value()))
        key, status, message = record.key, outcome.status, outcome.message
        state, kind = State.PENDING, type(outcome).__name__.lower()
        if attempt > 1 and not (isinstance(outcome, Retryable) and not outcome.answered):
            self.report.retries += 1  # a request that reached the provider again for this row
        self.keeper.answered(record, outcome, latency)
        if status is not None and not isinstance(outcome, (Rejected, Ambiguous)):
            self._answered()
        if isinstance(outcome, Accepted):
            written = self.commit.write(done(key, list(outcome.job_ids), status))
            return self._after_done(written, record, outcome, attempt, latency)
        if isinstance(outcome, Retryable):
            written = self.commit.write(pending(key, status, message))
            if outcome.retry_after is not None and outcome.retry_after >= LONG_RETRY_AFTER:
                self.keeper.pause(outcome.retry_after, message)
            return self._after_retryable(written, record, outcome, attempt, latency)
        if isinstance(outcome, Fatal):
            written = self.commit.write(pending(key, status, message))
            self.fail(FatalAPIError(message, status))
        elif isinstance(outcome, Rejected):
            state, written = State.FAILED, self._rejected(record, outcome)
        else:
            assert isinstance(outcome, Ambiguous)
            state, written = State.UNKNOWN, self.commit.write(unknown(key, status, message))
            self._unknown += 1
            self.tripwire.ambiguous(outcome.timed_out, status is not None, message)
        self._check_trip()
        return self._after(written, partial(self.tally.finish, record, state, kind, attempt, latency, status, message))

    async def _after_done(
        self, written: Awaitable[None], record: Record, accepted: Accepted, attempt: int, latency: float
    ) -> None:
        try:
            await written
        except JournalError as exc:  # the ids exist and are billed: the user must see them
            self.report.unsaved.append(UnsavedIds(record.label, record.title, record.key, accepted.job_ids))
            self.fail(exc)
            return
        self.tally.finish(record, State.DONE, "accepted", attempt, latency, accepted.status, None)

    async def _after_retryable(
        self, written: Awaitable[None], record: Record, outcome: Retryable, attempt: int, latency: float
    ) -> None:
        await written
        self.report.unconnected += not outcome.answered
        self.tally.note(record, "retryable", attempt, latency, outcome.status, outcome.message)
        raise TryAgain(outcome)

    @staticmethod
    async def _after(written: Awaitable[None], then: Callable[[], None]) -> None:
        """Once ``written`` is on disk, ``then`` (the attempt's log line and count)."""
        await written
        then()

    async def exhausted(self, record: Record, error: Retryable) -> None:
        """Out of attempts. If nothing in this run was ever answered, the host is unreachable: stop."""
        if not error.answered and not self.answered:
            host = self.settings.provider.host
            reason = error.message.removeprefix("not sent (").removesuffix(")")  # the outcome's own wording
            message = f"cannot reach {host.split('://')[-1]}: could not connect ({reason})"
            self.fail(UnreachableError(message, host))
            return
        message = f"{error.message} (after {self.settings.limits.max_attempts} attempts)"
        await self.commit.settle(failed(record.key, error.status, message, retryable=True))
        self.tally.count(State.FAILED)

    async def cancelled(self, record: Record, body_sent: bool) -> None:
        """A request cut short by a hard interrupt: unknown if its body had left, else still pending."""
        self.keeper.interrupted(record)
        if body_sent:
            message = "interrupted after the request was sent: the provider may have created jobs"
            await self.commit.settle(unknown(record.key, None, message))
        else:
            await self.commit.settle(pending(record.key, None, "interrupted before the request was sent"))

    def skipped(self, record: Record) -> None:
        """A row another output holds in the ledger: left out (the group commit recorded why)."""
        self.tally.count(State.SKIPPED)

    def _rejected(self, record: Record, outcome: Rejected) -> asyncio.Future[None]:
        # may be a wrong base URL on every row: keep it pending until that is known, and after a stop it explains
        if self.tripwire.holding or self.tripwire.explains(outcome.status or 0):
            written = self.commit.write(pending(record.key, outcome.status, outcome.message))
            self._held.append((record, outcome))
        else:
            written = self.commit.write(failed(record.key, outcome.status, outcome.message, retryable=False))
        self.tripwire.rejected(outcome.status or 0, outcome.message)
        if not self.tripwire.holding and self.tripwire.trip is None:
            self._release_held()
        return written

    def _answered(self) -> None:
        """The provider answered: the early-stop checks learn it, and rejected rows held back are failed."""
        self.answered = True
        self.tripwire.answered()
        self._release_held()

    def _release_held(self) -> None:
        """The first answers were not all one rejection: the rejected rows held back are failed after all."""
        held, self._held = self._held, []
        for record, outcome in held:
            written = self.commit.write(failed(record.key, outcome.status, outcome.message, retryable=False))
            written.add_done_callback(self._journaled)

    def _journaled(self, written: asyncio.Future[None]) -> None:
        """A write nobody awaits: a failure still stops the run."""
        if not written.cancelled() and isinstance(written.exception(), BatchgenError):
            self.fail(cast(BatchgenError, written.exception()))

    def _check_trip(self) -> None:
        """Stop on a trip. Requests in flight when it fired end unknown too, so a no-answer stop recounts them."""
        trip = self.tripwire.trip
        if trip is None:
            return
        unknown = self._unknown
        if self.report.error is None:
            self.fail(_trip_error(trip, self.settings, unknown))
        elif isinstance(self.report.error, NoAnswerError):
            stale, self.report.error = self.report.error, _trip_error(trip, self.settings, unknown)
            if self.report.stopped == stale.message:  # the stop's reason, unless another stop came first
                self.report.stopped = self.report.error.message


def _trip_error(trip: Trip, settings: Settings, unknown: int) -> BatchgenError:
    """The stop's message; ``unknown`` is the number of rows this run has left unknown so far."""
    if trip.kind == "rejection":
        return FatalAPIError(
            f"stopped: the first {trip.count} answers were all the same rejection ({trip.message}); nothing was "
            f"created for them and those rows stay pending. Check the base URL ({settings.provider.url}) and the "
            "rows, then run again",
            trip.status,
        )
    if trip.kind == "timeouts":
        return NoAnswerError(
            f"no answer within `timeout` {settings.provider.timeout:g} s; the provider may still be creating jobs "
            f"for these {unknown} rows (now unknown). Raise `timeout` or check the provider, then run again "
            "(`retry_unknown` sends those rows again)",
            unknown,
        )
    return NoAnswerError(
        f"stopped: {trip.count} requests in a row got no clear answer ({trip.message}); the provider may have "
        f"created jobs for the {unknown} rows now unknown. Check the provider, then run again",
        unknown,
    )
