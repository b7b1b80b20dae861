"""How many requests may be in flight: enough for the pace's rate over a round-trip, never more than the
``concurrency``, nor than a cap on requests in flight that the provider showed."""

from __future__ import annotations

import math

START_WINDOW = 4  # requests in flight before the first answers (TCP's initial window, in requests)
GAIN = 2.0  # in flight allowed over the rate x the round-trip: room for latency that varies (BBR's cwnd gain)


class Flight:
    """The window. In the start it grows with each accepted answer to a request that filled it (doubling per
    round, as TCP's slow start); then it is what the rate needs in flight. A cap on requests in flight that
    the answers showed (``bound``) holds it; a probe tries one more, and an accepted one there raises it."""

    def __init__(self, ceiling: int | None) -> None:
        self.ceiling = ceiling or math.inf
        self.window = float(min(START_WINDOW, self.ceiling))
        self.count = 0
        self.bound: int | None = None
        self.probing = False

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now."""
        bound = math.inf if self.bound is None else self.bound + self.probing
        return int(min(self.window, self.ceiling, bound))

    def room(self) -> bool:
        return self.count < self.allowed

    def sent(self) -> tuple[int, bool]:
        """Count a request; (requests in flight with it, whether it filled the window)."""
        self.count += 1
        return self.count, self.count >= self.allowed

    def released(self) -> None:
        self.count = max(self.count - 1, 0)

    def accepted(self, flight: int, filled: bool, growth: float) -> None:
        """An accepted answer to a request that went with ``flight`` in flight; a full window grows by
        ``growth`` (the start's)."""
        if self.bound is not None and flight > self.bound:
            self.bound = flight
        if filled:
            self.window *= growth

    def follow(self, rate: float, round_trip: float) -> None:
        """The window is at least what the pace's rate needs in flight, with room to spare."""
        self.window = max(self.window, math.ceil(GAIN * rate * round_trip) + 1.0)
