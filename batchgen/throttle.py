"""When the next request may start: the run-wide pause after a 429, and an adaptive pace around it.

A run without ``--rate`` starts unpaced. The first 429 that follows a second with a few answers sets the pace
to 90% of the answers the provider gave without a 429 over that second (roughly its limit). A later 429 cuts the pace by another 10% only when it
says something about the pace: once the pace has grown back to where the last cut was made, or when more than a
fifth of the answers since that cut were 429s. Scattered 429s (a provider's hiccups) only pause the run, so they
cannot grind an overnight batch down to a crawl. Each second of sending raises the pace by 1%, plus one percent
for every 10 s since the last cut, never above ``--rate`` if given. The pace is a rate, not a number of requests
in flight, because at low latency even one connection can exceed a limit.
"""

from __future__ import annotations

import time
from collections import deque

DECREASE = 0.9
GROWTH = 0.01
QUIET_SPELL = 10.0
MIN_RATE = 0.5
WINDOW = 1.0
REFUSED_SHARE = 0.2
MIN_EVIDENCE = 2.0


class Throttle:
    """Hands out start times; :meth:`reserve` returns how long to wait, or 0 when a request may go now."""

    def __init__(self, cap: float | None = None) -> None:
        self.cap = cap
        self.rate: float | None = cap
        self._next = 0.0
        self._paused_until = 0.0
        self._last_cut = float("-inf")
        self._last_raise = time.monotonic()
        self._answers: deque[float] = deque()
        self._cut_from = float("inf")
        self._since_cut = {"answered": 0, "refused": 0}

    def reserve(self) -> float:
        """Seconds until a request may start; 0.0 means it may start now and its slot is taken."""
        now = time.monotonic()
        wait = max(self._paused_until, self._next if self.rate else 0.0) - now
        if wait > 0:
            return wait
        if self.rate:
            self._raise(now)
            self._next = now + 1 / self.rate
        return 0.0

    def answered(self) -> None:
        """An answer other than 429: evidence of what the provider lets through."""
        now = time.monotonic()
        self._since_cut["answered"] += 1
        self._answers.append(now)
        while now - self._answers[0] > WINDOW:
            self._answers.popleft()

    def throttled(self, retry_after: float | None) -> None:
        """A 429: pause every row until Retry-After (or a second), and slow the pace."""
        now = time.monotonic()
        self._paused_until = max(self._paused_until, now + (retry_after if retry_after is not None else 1.0))
        self._since_cut["refused"] += 1
        if now - self._last_cut < WINDOW or not self._pace_is_to_blame():
            return
        observed = sum(1 for moment in self._answers if now - moment <= WINDOW) / WINDOW
        if not self.rate and observed < MIN_EVIDENCE:
            return  # too little got through to estimate a limit from: the pause alone must do
        base = self.rate if self.rate else observed
        self._cut_from = base
        self.rate = max(MIN_RATE, base * DECREASE)
        self._last_cut = now
        self._last_raise = self._paused_until  # growth counts from the end of the pause
        self._since_cut = {"answered": 0, "refused": 0}

    def _pace_is_to_blame(self) -> bool:
        """Unpaced, back at the pace of the last cut, or refused often since: a 429 is about the pace."""
        refused, answered = self._since_cut["refused"], self._since_cut["answered"]
        return (
            self.rate is None
            or self.rate >= self._cut_from * 0.99
            or (refused >= 3 and refused > REFUSED_SHARE * (refused + answered))
        )

    def _raise(self, now: float) -> None:
        """Grow the pace back slowly while requests keep going out without a 429."""
        elapsed = min(now - self._last_raise, 2.0)  # an idle spell is no evidence the provider wants more
        if elapsed >= 1.0 and self.rate is not None:
            growth = GROWTH * (1 + (now - self._last_cut) / QUIET_SPELL)
            self.rate = min(self.rate * (1 + growth) ** elapsed, self.cap or float("inf"))
            self._last_raise = now
