"""The two knobs of the pace and how they grow: a send rate (:class:`Rate`, its start times on :class:`Slots`)
and a window of requests in flight (:class:`Flight`), each cut and regrown by :class:`Cubic`."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

BETA = 0.7  # the multiplicative cut
RECOVERY = 1.5  # CUBIC's K: seconds to grow back to the rate of the last cut
PLATEAU = 3.0  # then hold just below it this many times as long before probing beyond it
HOLD = 0.98  # the plateau's height: the rate of a cut was at the limit
PROBE = 2.0  # then probe beyond it this many times as long, before slow start takes over
MIN_RATE = 0.5
SLACK = 0.002
TOLERANCE = 0.02  # a slot taken this late keeps the grid: over any second, at most 2% + 1 more than the rate
START_WINDOW = 4  # requests in flight before the first answers (TCP's initial window, in requests)
RECENT_ACCEPTED = 64  # accepted answers whose numbers in flight tell a cap on requests in flight


@dataclass(frozen=True, slots=True)
class Ticket:
    """Handed out with each send; given back with the answer to tell which pace it was sent at, how many were
    in flight with it, and whether it filled the window (only then does an answer say the window is used)."""

    sent_at: float
    epoch: int
    flight: int = 1
    filled: bool = False


@dataclass(frozen=True, slots=True)
class Cubic:
    """Growth after the cut at ``last_cut`` from ``w_max``: botocore's ``CubicCalculator`` with a fixed K
    (:data:`RECOVERY`), then a plateau just below ``w_max`` and a probe beyond it."""

    w_max: float
    last_cut: float

    def later(self, seconds: float) -> Cubic:
        """The same growth, ``seconds`` later: time stands still while an undone cut was judged."""
        return Cubic(self.w_max, self.last_cut + seconds)

    def probing(self, now: float) -> bool:
        """Whether growth is past the plateau: probing beyond ``w_max``, or over (slow start)."""
        return now - self.last_cut >= RECOVERY * (1 + PLATEAU)

    def target(self, now: float) -> float | None:
        """The rate CUBIC allows at ``now``; None once the probe found no 429 (slow start takes over)."""
        since = now - self.last_cut
        if since >= RECOVERY * (1 + PLATEAU + PROBE):
            return None
        if RECOVERY <= since < RECOVERY * (1 + PLATEAU):
            return self.w_max * HOLD
        since = since if since < RECOVERY else since - RECOVERY * PLATEAU
        return self.w_max * (HOLD + (HOLD - BETA) * ((since - RECOVERY) / RECOVERY) ** 3)


class Slots:
    """Start times on a grid of ``1 / rate`` in absolute time (a token bucket as GCRA), and the run's pause."""

    def __init__(self) -> None:
        self.next = 0.0
        self.paused_until = 0.0

    def wait(self, now: float) -> float:
        """Seconds until the next slot (0: now). One less than :data:`SLACK` away is taken at once: a timer
        cannot wait less than about a millisecond, and the grid keeps the rate exact over any longer span."""
        wait = max(self.paused_until - now, self.next - now)
        return wait if wait > SLACK else 0.0

    def take(self, now: float, rate: float) -> None:
        """The next slot is one interval after this one, not after now: a wake-up up to :data:`TOLERANCE` late
        costs nothing (the slot after it comes that much sooner), so timer lateness never erodes the rate. Later
        than that the grid restarts from now: after an idle spell, no burst."""
        self.next = (self.next if now - self.next <= TOLERANCE else now) + 1 / rate

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def reset(self, now: float, rate: float) -> None:
        """A new rate applies from now: a slot set far off by a slower one is brought forward."""
        self.next = min(self.next, now + 1 / rate)


class Flight:
    """The window of requests in flight: TCP's congestion window counted in requests (Netflix's AIMD limit).

    It grows only while it is used (slow start: one more for each accepted answer to a request that filled it,
    so it doubles per round-trip while every request fills it). A 429 is about the window when its request went
    with more in flight than any accepted one of late (a cap on requests in flight refuses exactly those); a cut
    sets it to 0.7 of that, and CUBIC regrows it like the rate, at most one beyond the most in flight since.
    A request that went with more in flight than before but the window far from full was sent by the rate (a
    rate in slow start overshooting a rate limit does that): a 429 to it is the rate's. ``ceiling``
    (the ``concurrency``) is never exceeded.
    """

    def __init__(self, ceiling: int | None) -> None:
        self.ceiling = ceiling
        self.window = float(min(START_WINDOW, ceiling or START_WINDOW))
        self.count = 0
        self.fine: deque[int] = deque(maxlen=RECENT_ACCEPTED)  # in flight with each recently accepted request
        self.peak = 0  # the most in flight since the last cut: CUBIC grows the window at most one beyond it
        self.cubic: Cubic | None = None  # None: slow start

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now (a window of 4.9, CUBIC's plateau below a cut at 5, allows 4)."""
        allowed = max(1, int(self.window + 0.05))
        return min(allowed, self.ceiling) if self.ceiling else allowed

    def room(self) -> bool:
        return self.count < self.allowed

    def sent(self, now: float) -> tuple[int, bool]:
        """Count a request; (requests in flight with it, whether it filled the window)."""
        if self.cubic is not None:
            target = self.cubic.target(now)
            self.cubic = None if target is None else self.cubic
            self.window = self._bounded(min(target, self.peak + 1) if target is not None else self.window)
        self.count += 1
        self.peak = max(self.peak, self.count)
        return self.count, self.count >= self.allowed

    def released(self) -> None:
        self.count = max(self.count - 1, 0)

    def accepted(self, ticket: Ticket) -> None:
        self.fine.append(ticket.flight)
        if self.cubic is None and ticket.filled:
            self.window = self._bounded(self.window + 1)

    def too_many(self, ticket: Ticket) -> bool:
        """Whether a 429 to ``ticket`` is about the number in flight: it went with more in flight than any
        accepted request, and with the window nearly full (were it far from full, the rate sent it)."""
        return ticket.flight > max(self.fine, default=0) and ticket.flight >= BETA * self.allowed

    def cut(self, now: float, flight: int) -> None:
        self.cubic, self.peak = Cubic(float(flight), now), 0
        self.window = self._bounded(BETA * flight)

    def snapshot(self) -> tuple[float, Cubic | None]:
        return self.window, self.cubic

    def restore(self, snapshot: tuple[float, Cubic | None], paused: float) -> None:
        """Back to a window from before a cut, growing as it was ``paused`` seconds ago."""
        self.window, cubic = snapshot
        self.cubic = None if cubic is None else cubic.later(paused)

    def _bounded(self, window: float) -> float:
        window = max(window, 1.0)
        return min(window, float(self.ceiling)) if self.ceiling else window


class Rate:
    """The send rate: slow start, CUBIC after a cut, ``cap`` (``rate``) on top, and the slots it hands out.

    Growth must be earned: never above twice what is actually being sent, or a run held back by its window
    would accumulate a meaningless rate.
    """

    def __init__(self, start: float, cap: float | None, now: float) -> None:
        self.cap = cap
        self.value = min(start, cap) if cap else start
        self.slow_start = True
        self.cubic = Cubic(self.value, now)
        self.slots = Slots()

    def grow(self, now: float, sending: float) -> None:
        """CUBIC after a cut; slow start again once it probed well beyond the last cut without a 429."""
        if self.slow_start:
            return
        target = self.cubic.target(now)
        if target is None:
            self.slow_start = True
            return
        self.value = self._ceiling(max(target, MIN_RATE), sending)

    def accepted(self, round_trip: float, sending: float) -> None:
        """In slow start, each accepted answer multiplies the rate by ``2 ** (1 / answers in a round-trip)``."""
        if self.slow_start:
            answers_per_round = max(1.0, self.value * round_trip)
            self.value = self._ceiling(self.value * 2 ** (1 / answers_per_round), sending)

    def cut(self, now: float, base: float) -> None:
        self.cubic, self.value, self.slow_start = Cubic(base, now), max(MIN_RATE, base * BETA), False

    def snapshot(self) -> tuple[float, Cubic, bool]:
        return self.value, self.cubic, self.slow_start

    def restore(self, snapshot: tuple[float, Cubic, bool], now: float, paused: float) -> None:
        """Back to a rate from before a cut, growing as it was ``paused`` seconds ago, except that a probe
        beyond the last cut does not go on at once: it first holds a plateau at the rate it had reached. (Two
        runs on one key undo each other's cuts, the other's probe making the 429s "not rarer"; resumed probes
        then climbed together, run after run, into a train of 429s.)"""
        self.value, cubic, self.slow_start = snapshot
        cubic = cubic.later(paused)
        self.cubic = cubic if self.slow_start or not cubic.probing(now) else Cubic(self.value / HOLD, now - RECOVERY)

    def _ceiling(self, rate: float, sending: float) -> float:
        rate = min(rate, max(2 * sending, self.cubic.w_max, MIN_RATE))
        return min(rate, self.cap) if self.cap else rate
