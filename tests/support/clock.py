"""A fake clock for the fast layer: time passes only when a sleep asks it to."""

from __future__ import annotations

import asyncio


class FakeClock:
    """Time that passes only when a sleep asks it to: every wait returns at once, and is counted."""

    def __init__(self) -> None:
        self.time = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += max(seconds, 0.0)
        await asyncio.sleep(0)
