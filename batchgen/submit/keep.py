"""The night's record: every attempt and every run event, queued on the group commit (no sync of their own).

An attempt is kept when its outcome is decided, with what the pace was when its request left (noted by
:meth:`Keeper.leaving`); events are kept as they happen: the run's start (or resume), a pause the provider asked
for (a quota) or imposed (an outage, kept when it ends), the stop and why, a signal, and the end of a run that was
not stopped (so a run with none of these is one that was killed: the report says so). Times are Unix seconds, so
several runs on one output make one night.
"""

from __future__ import annotations

import asyncio
import time

from ..journal import Record
from ..journal.group import GroupCommit
from ..journal.store import Attempt, Event
from ..pace import Pace, Ticket
from .gate import Gate
from .outcome import Outcome
from .report import Report


def window(pace: Pace) -> int:
    """Requests the pace allows in flight now (the pace's window)."""
    return pace.flight.allowed


class Keeper:
    """Keeps the attempts and events of one run in the journal, through ``commit``."""

    def __init__(self, commit: GroupCommit, gate: Gate, report: Report) -> None:
        self.commit, self.gate, self.report = commit, gate, report
        journal = commit.journal
        self.run = journal.latest_run()
        source, _ = journal.run_info(self.run)
        earlier = journal.db.execute("SELECT COUNT(*) FROM runs WHERE id < ?", (self.run,)).fetchone()[0]
        self.event("resume" if earlier else "start", f"run {self.run} of {source}")
        self._leaving: dict[str, tuple[int, float, int, float, int]] = {}  # row key -> its attempt, when, the pace
        self._attempts: dict[str, int] = {}  # row key -> requests sent in this run
        self._held_until = float("-inf")
        self._down: tuple[float, str] | None = None  # since when (Unix seconds) the provider is down, and the word
        self._watch = asyncio.ensure_future(self._stopped())

    def event(self, kind: str, why: str = "", until: float | None = None) -> None:
        self.commit.keep(event=Event(self.run, time.time(), kind, why, until))

    def leaving(self, record: Record, ticket: Ticket) -> float:
        """``record``'s request leaves now: note when, and the pace; returns the pace's clock (for its latency)."""
        pace, attempt = self.gate.pace, self._attempts.get(record.key, 0) + 1
        self._attempts[record.key] = attempt
        self._leaving[record.key] = (attempt, time.time(), ticket.flight, pace.rate, window(pace))
        return pace.clock()

    def answered(self, record: Record, outcome: Outcome, latency: float) -> None:
        """Keep the attempt that ended in ``outcome`` (an HTTP answer when it has a status; else ``latency`` is
        how long it waited for none)."""
        self._keep(record, type(outcome).__name__.lower(), outcome.status, latency)

    def interrupted(self, record: Record) -> None:
        """An attempt cut short by a hard interrupt."""
        self._keep(record, "interrupted", None, None)

    def pause(self, seconds: float, why: str) -> None:
        """The provider asked the whole run to wait ``seconds`` (a quota); the same wait told to each request in
        flight is kept once."""
        at = time.time()
        if at + seconds <= self._held_until + 1.0:
            return
        self._held_until = at + seconds
        self.event("pause", why, at + seconds)

    def down(self, since: float, why: str) -> None:
        """The provider is down (an outage: every answer a 5xx, or none), since ``since``: kept as a pause of the
        run when it answers again, or when the run ends first."""
        if self._down is None:
            self._down = (since, why)

    def up(self) -> None:
        """The provider answers again: the outage is kept, from when it began to now."""
        if self._down is not None:
            since, why = self._down
            self._down = None
            self.commit.keep(event=Event(self.run, since, "pause", why, time.time()))

    def close(self) -> None:
        """The run is over: keep how it ended, unless its stop was kept already."""
        self.up()
        if not self._watch.done():
            self._watch.cancel()
            self._ended()

    async def _stopped(self) -> None:
        """Keep the stop when the run stops dispatching, not when its last request is answered."""
        await self.gate.closed.wait()
        self._ended()

    def _ended(self) -> None:
        """Why the run ended: stopped (a signal when it was interrupted), or every row was worked."""
        if self.gate.closed.is_set():
            self.event("signal" if self.report.interrupted else "stop", self.report.stopped or "")
        else:
            self.event("end", "every row was worked")

    def _keep(self, record: Record, outcome: str, status: int | None, latency: float | None) -> None:
        left = self._leaving.pop(record.key, None)
        if left is None:  # its request never left: not an attempt
            return
        attempt, sent, flight, rate, allowed = left
        at = sent + latency if status is not None and latency is not None else None
        self.commit.keep(
            Attempt(self.run, record.key, attempt, sent, at, outcome, status, latency, flight, rate, allowed)
        )
