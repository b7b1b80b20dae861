"""What the pace sees of the answers: round-trip time, sends and answers per second, the last round-trip's
answers, and the long share of 429s."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable

ROUND_MIN = 4  # answers that make a round-trip's evidence, when a round-trip holds fewer
SHARE_HORIZON = 500  # answers over which the share of 429s is averaged
HORIZON = 4.0  # seconds of sends and accepted answers kept to measure rates over


class Moments:
    """Moments of the last :data:`HORIZON` seconds, counted since any moment in O(log n): the pace asks on every
    request."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._start = 0

    def add(self, moment: float) -> None:
        self._times.append(moment)

    def count_since(self, moment: float, now: float) -> int:
        self._trim(now)
        return len(self._times) - bisect.bisect_left(self._times, moment, self._start)

    def _trim(self, now: float) -> None:
        self._start = bisect.bisect_left(self._times, now - HORIZON, self._start)
        if self._start > 1024 and self._start * 2 > len(self._times):
            del self._times[: self._start]
            self._start = 0


class Meter:
    """What the pace sees: round-trip time, sends and answers per second, the last round-trip's answers."""

    def __init__(self) -> None:
        self.srtt: float | None = None
        self.share = 0.0  # share of 429s over the last few hundred answers (an average that starts at 0...)
        self.weight = 0.0  # (...so it is read divided by its weight so far: Adam's bias correction)
        self.began: float | None = None
        self.sends = Moments()
        self.accepted = Moments()
        self.recent: deque[tuple[float, int]] = deque(maxlen=256)

    def sent(self, now: float) -> None:
        self.began = now if self.began is None else self.began
        self.sends.add(now)

    def answered(self, now: float, latency: float, status: int) -> None:
        self.srtt = latency if self.srtt is None else 0.875 * self.srtt + 0.125 * latency
        self.recent.append((now, status))
        if status != 429 and status < 500:
            self.accepted.add(now)

    def sample(self, throttled: bool) -> None:
        """Count an answer in the long share of 429s (:meth:`long_share`)."""
        self.share += (throttled - self.share) / SHARE_HORIZON
        self.weight += (1 - self.weight) / SHARE_HORIZON

    def long_share(self) -> float:
        """The share of 429s over the last few hundred answers."""
        return self.share / self.weight if self.weight else 0.0

    def round_trip(self) -> float:
        return self.srtt if self.srtt is not None else 0.1

    def per_second(self, moments: Moments, now: float, span: float = 1.0) -> float:
        """Events per second over the last ``span`` (at most a second), or since sending began if shorter."""
        if self.began is None:
            return 0.0
        span = max(min(now - self.began, span, HORIZON), self.round_trip(), 0.05)
        return moments.count_since(now - span, now) / span

    def last_second(self, now: float) -> float:
        """Answers other than 429 and 5xx in the last second: what a per-second limit let through."""
        return float(self.accepted.count_since(now - 1.0, now))

    def most_recent(self, test: Callable[[int], bool], now: float, least: int = ROUND_MIN) -> bool:
        """Whether most answers of the last round-trip (at least ``least`` of them) pass ``test``."""
        window = [status for at, status in self.recent if now - at <= self.round_trip()]
        if len(window) < least:
            window = [status for _, status in list(self.recent)[-least:]]
        return len(window) >= least and sum(map(test, window)) * 2 > len(window)

    def throttled_last_second(self, now: float) -> tuple[int, int]:
        """(answers, 429s) in the last second."""
        window = [status for at, status in self.recent if now - at <= 1.0]
        return len(window), window.count(429)
