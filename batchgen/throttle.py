"""When the next request may start: the run-wide pause after a 429, and an adaptive pace around it.

A run without ``--rate`` starts unpaced. The first 429 sets the pace to 90% of the rate observed over the
last second (roughly the provider's limit); every later 429 cuts it by 10% (once per second at most, since one
burst brings several), and each second of sending raises it by 1%, up to ``--rate`` if given. The pace is a
rate, not a number of requests in flight, because at low latency even one connection can exceed a limit.
"""

from __future__ import annotations

import time
from collections import deque

DECREASE = 0.9
INCREASE_PER_SECOND = 1.01
MIN_RATE = 0.2
WINDOW = 1.0


class Throttle:
    """Hands out start times; :meth:`reserve` returns how long to wait, or 0 when a request may go now."""

    def __init__(self, cap: float | None = None) -> None:
        self.cap = cap
        self.rate: float | None = cap
        self._next = 0.0
        self._paused_until = 0.0
        self._last_cut = float("-inf")
        self._last_raise = time.monotonic()
        self._starts: deque[float] = deque()

    def reserve(self) -> float:
        """Seconds until a request may start; 0.0 means it may start now and its slot is taken."""
        now = time.monotonic()
        wait = max(self._paused_until, self._next if self.rate else 0.0) - now
        if wait > 0:
            return wait
        if self.rate:
            self._raise(now)
            self._next = now + 1 / self.rate
        self._starts.append(now)
        while self._starts and now - self._starts[0] > WINDOW:
            self._starts.popleft()
        return 0.0

    def throttled(self, retry_after: float | None) -> None:
        """A 429: pause every row until Retry-After (or a second), and slow the pace."""
        now = time.monotonic()
        self._paused_until = max(self._paused_until, now + (retry_after if retry_after is not None else 1.0))
        if now - self._last_cut < WINDOW:
            return
        self._last_cut = self._last_raise = now
        observed = sum(1 for start in self._starts if now - start <= WINDOW) / WINDOW
        base = self.rate if self.rate else observed
        self.rate = max(MIN_RATE, base * DECREASE)

    def _raise(self, now: float) -> None:
        """Grow the pace back slowly while requests keep going out without a 429."""
        elapsed = min(now - self._last_raise, 2.0)  # an idle spell is no evidence the provider wants more
        if elapsed >= 1.0 and self.rate is not None:
            self.rate = min(self.rate * INCREASE_PER_SECOND ** elapsed, self.cap or float("inf"))
            self._last_raise = now
