"""When the next request may leave: never after a stop, never beyond the pace's window of requests in flight,
never before its rate allows, never past a budget; and what the run does when the provider asks it to wait long.

One request at a time waits for the window and the pace (a FIFO lock), so each send costs one sleep, not one per
waiting row, and rows leave in the order they reached the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable

from ..pace import Pace, Ticket
from ..results import Waiting
from .report import Report

log = logging.getLogger("batchgen")


class Stopped(Exception):
    """Raised to a row at the gate when the run stops dispatching."""


class Gate:
    """The window, the pace, ``max_requests``, the stop switch and the time limit in front of every attempt;
    counts requests in ``report``. ``notice`` shows a state of the run (waiting, or None when it ends)."""

    def __init__(
        self,
        pace: Pace,
        report: Report,
        max_requests: int | None,
        stop_after: float | None = None,
        notice: Callable[[str | None], None] | None = None,
        sleeper: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.pace = pace
        self.report = report
        self.max_requests = max_requests
        self.deadline = None if stop_after is None else pace.clock() + stop_after
        self.notice = notice
        self.sleeper = sleeper
        self.closed = asyncio.Event()
        self._turn = asyncio.Lock()
        self._room = asyncio.Event()  # set when a place in the window is freed (or the gate closes)
        self._given_back = asyncio.Event()  # set when a slot is given back: the one waiting for the next may go
        self._held_until = float("-inf")
        self._showing = False  # the notice shows a wait
        self._down_shown = float("nan")  # the probe time last said

    def close(self, reason: str) -> None:
        """Let no more requests through; the first reason is the one reported."""
        if not self.closed.is_set():
            self.report.stopped = reason
            self.closed.set()
            self._room.set()

    @contextlib.asynccontextmanager
    async def enter(self) -> AsyncIterator[Ticket]:
        """Hold a place in the window for one request: wait for room and the pace, count the request, and
        hand back its ticket; the place is freed when the block ends. :class:`Stopped` once closed."""
        ticket = await self._admit()
        try:
            yield ticket
        finally:
            self.pace.release(ticket)
            self._room.set()

    async def _admit(self) -> Ticket:
        async with self._turn:
            while True:
                if self.closed.is_set():
                    raise Stopped
                if not self.pace.room():
                    if self.pace.down:  # said as soon as it is known, even while a request in flight holds
                        self._say_down()  # the one place (a connection that hangs until the provider is back)
                    self._room.clear()
                    await self._room.wait()
                    continue
                delay = self.pace.wait()
                if delay <= 0:
                    break
                if self.pace.down:
                    self._say_down()
                self._given_back.clear()
                await self.sleep(delay, wake=self._given_back)
            if self.max_requests is not None and self.report.requests >= self.max_requests:
                self.close(f"`max_requests` {self.max_requests} reached")
                raise Stopped
            self.report.requests += 1
            if self._showing and self.notice:
                self._showing = False
                self.notice(None)  # the wait is over
            return self.pace.send()

    async def depart(self) -> None:
        """Wait until the request whose claim is written may leave, evenly after the one before it."""
        while (delay := self.pace.departure()) > 0 and not self.closed.is_set():
            await self.sleep(delay)
        self.pace.departed()

    def unsent(self, ticket: Ticket) -> None:
        """A request let through that never left (its row was claimed by another run, or the run stopped while it
        was being claimed): it is not counted, does not spend the budget, and gives its slot back to the pace, waking
        the request waiting for the next slot (a run that finds the rows ahead of it held by another machine walks
        past them at once, not at the pace's rate)."""
        self.report.requests -= 1
        self.pace.unsent(ticket)
        self._given_back.set()

    def hold(self, seconds: float, message: str, header: str = "Retry-After") -> None:
        """The provider asked the whole run to wait ``seconds`` (the pace has paused it): say so once, with the
        time it resumes; if that is past the time limit, stop now instead of idling until it."""
        now = self.pace.clock()
        if now + seconds <= self._held_until + 1.0:
            return  # the same wait, answered to another request in flight
        self._held_until = now + seconds
        waiting = Waiting(message, seconds, dt.datetime.now() + dt.timedelta(seconds=seconds), header)
        self.report.waiting = waiting
        if self.deadline is not None and now + seconds > self.deadline:
            reason = f"{waiting}, past the time limit of this run"
            log.warning("%s: stopping now; the rows not sent stay pending", reason)
            self.close(reason)
            return
        log.warning("%s", waiting, extra={"waiting": waiting})
        if self.notice:
            self._showing = True
            self.notice(f"waiting until {waiting.until:%H:%M}")

    def _say_down(self) -> None:
        """Say once per probe that the provider is down, since when, and when the next request tries it."""
        outage, now = self.pace.outage, self.pace.clock()
        if outage.since is None or outage.next_try == self._down_shown or not math.isfinite(outage.next_try):
            return
        self._down_shown = outage.next_try
        wall = dt.datetime.now()
        since = wall - dt.timedelta(seconds=now - outage.since)
        retry = wall + dt.timedelta(seconds=max(outage.next_try - now, 0.0))
        why = "no answer" if outage.status is None else str(outage.status)
        text = f"provider down since {since:%H:%M} ({why}); next try {retry:%H:%M:%S}"
        self.report.down = text
        log.warning("%s; rows keep their attempts", text)
        if self.notice:
            self._showing = True
            self.notice(text)

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleep on the run's clock, but wake at once when the gate closes (or ``wake`` is set)."""
        if self.closed.is_set():
            return
        events = [self.closed] if wake is None else [self.closed, wake]
        waits = [asyncio.ensure_future(self.sleeper(seconds)), *(asyncio.ensure_future(e.wait()) for e in events)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
