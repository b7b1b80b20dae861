"""When the next request may leave: never after a stop, never before the pace allows, never past a budget.

One request at a time waits for the pace (a FIFO lock), so each send costs one sleep, not one per waiting row,
and rows leave in the order they reached the gate.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..pace import Pace, Ticket
from .settle import Report


class Stopped(Exception):
    """Raised to a row at the gate when the run stops dispatching."""


class Gate:
    """The pace, ``max_requests`` and the stop switch in front of every attempt; counts requests in ``report``."""

    def __init__(self, pace: Pace, report: Report, max_requests: int | None) -> None:
        self.pace = pace
        self.report = report
        self.max_requests = max_requests
        self.closed = asyncio.Event()
        self._turn = asyncio.Lock()

    def close(self, reason: str) -> None:
        """Let no more requests through; the first reason is the one reported."""
        if not self.closed.is_set():
            self.report.stopped = reason
            self.closed.set()

    async def enter(self) -> Ticket:
        """Wait for the pace, then count the request and hand back its ticket; :class:`Stopped` once closed."""
        async with self._turn:
            while True:
                if self.closed.is_set():
                    raise Stopped
                delay = self.pace.wait()
                if delay <= 0:
                    break
                await self.sleep(delay)
            if self.max_requests is not None and self.report.requests >= self.max_requests:
                self.close(f"--max-requests {self.max_requests} reached")
                raise Stopped
            self.report.requests += 1
            return self.pace.send()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the gate closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout=seconds)
