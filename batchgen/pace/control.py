"""The pace's front: what the dispatcher asks (whether and when a request may go) and tells (what came of it),
and which knob a 429 or a storm of 5xx cuts."""

from __future__ import annotations

import time
from collections.abc import Callable

from .judge import Judge
from .knobs import MIN_RATE, Flight, Rate, Ticket
from .meter import Meter
from .outage import Outage

ROUND_MIN_5XX = 8  # answers that make a storm of 5xx, which the rows' own backoff handles until it is clear
DEFAULT_PAUSE = 1.0
REGROWN = 0.95  # a cut under judgement has gone by when the rate is back this close to where it was cut
LONG_RETRY_AFTER = 60.0  # a Retry-After this long is a state of the run (a quota), not a pace


class Pace:
    """Hands out start times and places in flight: ``room()`` and ``wait()`` say whether and when a request
    may go, ``send()`` takes its slot and place, ``answered()`` hears what came of it and moves the knobs."""

    def __init__(
        self,
        cap: float | None = None,
        *,
        start: float = 64.0,
        ceiling: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.clock = clock
        self.meter = Meter()
        self.speed = Rate(start, cap, clock())
        self.flight = Flight(ceiling)
        self.judge = Judge(self.meter, self.speed, self.flight)
        self.outage = Outage()

    @property
    def rate(self) -> float:
        return self.speed.value

    @property
    def slow_start(self) -> bool:
        return self.speed.slow_start

    @property
    def background(self) -> float:
        """The share of 429s learned not to be about the pace."""
        return self.judge.background

    def room(self) -> bool:
        """Whether the window lets one more request be in flight (if not, wait for a :meth:`release`); while
        the provider is down, one request at a time."""
        return self.flight.count < 1 if self.outage.down else self.flight.room()

    def wait(self) -> float:
        """Seconds until the next request may start (0: now), once there is :meth:`room`."""
        now = self.clock()
        return max(self.speed.slots.wait(now), self.outage.next_try - now, 0.0)

    def send(self) -> Ticket:
        """Take the next slot and a place in the window; call when :meth:`wait` says 0."""
        now = self.clock()
        self.outage.sent()
        self.meter.sent(now)
        self.judge.close_probation(now)
        self.speed.grow(now, self._sending(now))
        self.speed.slots.take(now, self.rate)
        return Ticket(now, self.judge.epoch, *self.flight.sent(now))

    @property
    def down(self) -> bool:
        """The provider is down (:class:`~.outage.Outage`): one request at a time probes it."""
        return self.outage.down

    def unanswered(self) -> None:
        """A request that got no HTTP answer (a refused connection, a timeout): to an outage, a failure."""
        self.outage.answered(self.clock(), None)

    def release(self) -> None:
        """A request sent with :meth:`send` is over (answered or not): its place in the window is free."""
        self.flight.released()

    def answered(
        self,
        ticket: Ticket,
        status: int,
        retry_after: float | None = None,
        remaining: int | None = None,
        reset: float | None = None,
    ) -> None:
        """An HTTP answer (any status) to a request sent with ``ticket``, with what the provider said of its
        limit: ``Retry-After``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds from now)."""
        now, judge = self.clock(), self.judge
        self.outage.answered(now, status)
        if retry_after is not None and retry_after >= LONG_RETRY_AFTER:
            self.speed.slots.pause(now + retry_after)  # a quota: the run waits; it says nothing about the pace
            return
        opens = reset if reset is not None else retry_after
        if opens is not None and remaining is not None and remaining <= self.flight.count - 1:
            # the provider said how many are left until its window opens, and those in flight take them all:
            # the whole run waits for it, and a 429 of a window that is used up says nothing about the pace
            self.speed.slots.pause(now + opens)
            if status == 429:
                return
        self.meter.answered(now, max(now - ticket.sent_at, 0.0), status)
        judge.count(ticket.epoch, status)
        current = ticket.epoch == judge.epoch
        pressed = status == 429 and self.meter.most_recent(_throttled, now)
        # the long share leaves out 429s plainly about the pace: slow start's overshoot, rounds of mostly 429s
        self.meter.sample(status == 429 and not pressed and ticket.epoch > 0)
        if status == 429:
            if pressed:
                self.speed.slots.pause(now + (DEFAULT_PAUSE if retry_after is None else retry_after))
                judge.pressed = now
                if not current:
                    judge.press(now)
            if current:
                self._on_429(now, ticket, pressed)
        elif status >= 500:
            if current and judge.cut is None and now >= judge.quiet_5xx and self._failing(now):
                self._cut_now(now, ticket, cause=500)
        else:
            self.flight.accepted(ticket)
            if current:
                self.speed.accepted(self.meter.round_trip(), self._sending(now))
        judge.review(now)

    def _failing(self, now: float) -> bool:
        """Most recent answers are 5xx, out of at least :data:`ROUND_MIN_5XX`: with fewer (the first round-trip
        of a window that starts small), a few scattered ones would pass for a storm, and the cut they caused
        would stand, judged against a share that they inflated."""
        return self.meter.most_recent(_failed, now, ROUND_MIN_5XX)

    def _sending(self, now: float) -> float:
        """Requests sent per second over the last round-trip."""
        return self.meter.per_second(self.meter.sends, now, self.meter.round_trip())

    def _on_429(self, now: float, ticket: Ticket, pressed: bool) -> None:
        if self.judge.cut is not None:
            let_through = self.meter.last_second(now)
            if pressed and 0 < let_through < self.rate:  # faster than what gets
                self._cut_now(now, ticket, hard=True)  # through: no need to wait for judgement
            elif not pressed and self._regrown(ticket):
                self._cut_now(now, ticket, deepen=True)
            return  # (when nothing gets through, the pause is the answer, not a rate of nothing)
        if not self.judge.explains(now):
            self._cut_now(now, ticket)

    def _regrown(self, ticket: Ticket) -> bool:
        """Whether a 429 under judgement deepens the cut (once): the rate grew back to where it was cut before
        the cut could be judged (CUBIC regrows in :data:`RECOVERY` seconds, a judgement takes up to
        :data:`MAX_PROBATION_SECONDS`), and 429s go on there. Two runs on one key: the run over its share
        came back to it after each cut, its 429s then made every cut look "not rarer", and the two
        sent 5-10% over the limit between them for tens of seconds (6-7% of all requests refused)."""
        cut = self.judge.cut
        return (
            cut is not None
            and not cut.deep
            and not self.flight.too_many(ticket)
            and self.rate >= REGROWN * self.speed.cubic.w_max
        )

    def _cut_now(self, now: float, ticket: Ticket, hard: bool = False, cause: int = 429, deepen: bool = False) -> None:
        """Cut the knob that went too far and judge the cut in a new epoch: the window if it is what the refused
        request went too far by (:meth:`Flight.too_many`: a cap on requests in flight), else the rate, to 0.7 of
        what was being sent (or let through, if less).

        ``hard``: most answers are 429s, a limit is hit; what got through in the last second estimates it.
        Otherwise what gets through is counted since the last pause, if shorter than a second: the run that
        started second on a shared key, its first answers refused, was cut to what got through in a second
        it had mostly paused in, and kept a fifth of the limit while the other run had the rest.
        ``deepen``: the cut under judgement went by (:meth:`_regrown`); it is cut again, to be judged as one.
        """
        meter = self.meter
        if deepen:
            self.judge.deepen(now)
        else:
            self.judge.opened(now, cause)
        if self.flight.too_many(ticket):
            self.flight.cut(now, ticket.flight)
        else:
            span = max(2 * meter.round_trip(), 8 / self.rate)  # long enough to count a handful of sends
            sending = meter.per_second(meter.sends, now, span) or self.rate
            resumed = min(max(now - self.speed.slots.paused_until, 0.0), 1.0)  # a pause measures no pace
            accepted = (meter.last_second(now) if hard else meter.per_second(meter.accepted, now, resumed)) or self.rate
            self.speed.cut(now, max(min(self.rate, sending, accepted), MIN_RATE))
        self.judge.new_epoch(now)


def _throttled(status: int) -> bool:
    return status == 429


def _failed(status: int) -> bool:
    return status >= 500
