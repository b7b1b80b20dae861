"""The pace's front: what the dispatcher asks (whether and when a request may go) and tells (what came of it),
and what the provider's own words (Retry-After, ``X-RateLimit-*``, a quota, an outage) do to the whole run."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from .flight import GAIN, Flight
from .model import Model
from .outage import Outage
from .slots import EVEN, SlotGrid, Slots, Ticket

LONG_RETRY_AFTER = 60.0  # a Retry-After this long is a state of the run (a quota), not a pace
ROUND_LEAST = 4  # answers that make a round's evidence, when a round-trip holds fewer
STORM_LEAST = 8  # answers that make a storm of 5xx, which the rows' own backoff handles until it is clear
EARLIER_LEAST = 20  # answers before a round that show the share of 429s a burst must go beyond


class Pace:
    """Hands out start times and places in flight: ``room()`` and ``wait()`` say whether and when a request
    may go, ``send()`` takes its slot and place, ``answered()`` hears what came of it."""

    def __init__(
        self,
        cap: float | None = None,
        *,
        start: float = 64.0,
        ceiling: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.clock = clock
        self.cap = cap
        self.model = Model(min(start, cap) if cap else start)
        self.slots = Slots(cap)
        self.flight = Flight(ceiling)
        self.outage = Outage()
        self.recent: deque[tuple[float, int]] = deque(maxlen=256)  # (when, status) of recent answers
        self._resume_at: float | None = None  # a pause of the whole run ends then
        self.departures = SlotGrid(EVEN)  # when requests actually leave, their claims synced
        self.leaving: set[int] = set()  # the serials of the requests in flight
        self.confirmed = False  # the cap on requests in flight refused one more: it, not a rate, holds them
        self._serial = 0

    @property
    def rate(self) -> float:
        """Requests per second the pace sends at now."""
        rate = self.model.phase.rate
        if self.confirmed and self.flight.bound is not None:  # the window holds requests: answers that come
            rate *= GAIN  # early (latency varies) may be followed at once, not at the cap's average rate
        return min(rate, self.cap) if self.cap else rate

    @property
    def resume_at(self) -> float | None:
        """When a pause of the whole run the provider asked for ends, if one is on."""
        return self._resume_at

    @property
    def down(self) -> bool:
        """The provider is down (:class:`~.outage.Outage`): one request at a time probes it."""
        return self.outage.down

    @property
    def failing(self) -> bool:
        """The provider is down, or failing every request for a while (:attr:`.outage.Outage.failing`)."""
        return self.outage.failing

    def room(self) -> bool:
        """Whether one more request may be in flight (if not, wait for a :meth:`release`); while the provider
        is down, one request at a time."""
        return self.flight.count < 1 if self.outage.down else self.flight.room()

    def wait(self) -> float:
        """Seconds until the next request may start (0: now), once there is :meth:`room`."""
        now = self.clock()
        return max(self.slots.wait(now), self.outage.next_try - now, 0.0)

    def send(self) -> Ticket:
        """Take the next slot and a place in flight; call when :meth:`wait` says 0."""
        now, model = self.clock(), self.model
        if self._resume_at is not None and now >= self._resume_at:
            self._resume_at = None
            model.resumed(now)
        self.outage.sent()
        if model.starting:  # the start's rate may not run far ahead of what is sent (held back by the window)
            most = 2 * self._sending(now) + 2 * self.flight.allowed / model.round_trip()
            model.phase.rate = min(model.phase.rate, most)
        phase = model.sent(now)
        # room for what the start's rate, or the estimate, needs in flight
        self.flight.follow(self.rate if model.starting else model.estimate, model.round_trip())
        self.flight.probing = model.phase.kind != "cruise"
        flight, filled = self.flight.sent()
        self.slots.take(now, self.rate)
        self._serial += 1
        self.leaving.add(self._serial)
        return Ticket(now, phase, flight, filled, self.rate, self._serial)

    def unsent(self, ticket: Ticket) -> None:
        """A request :meth:`send` let through never left: its slot is free again, and its phase never counts it
        (an answer that never comes would keep the phase from being judged)."""
        self.slots.give_back(ticket.sent_at)
        self.model.unsent(ticket.phase, ticket.sent_at)
        self.leaving.discard(ticket.serial)

    def departure(self) -> float:
        """Seconds until a request whose claim is on disk may leave: a sync takes longer one time than the next,
        and the requests must reach the provider as evenly spaced as their slots were."""
        return max(self.departures.wait(self.clock()), 0.0)

    def departed(self) -> None:
        self.departures.take(self.clock(), self.rate)

    def release(self, ticket: Ticket | None = None) -> None:
        """A request sent with :meth:`send` is over (answered or not, or cancelled): its place is free."""
        self.flight.released()
        if ticket is not None:
            self.leaving.discard(ticket.serial)

    def unanswered(self, ticket: Ticket | None = None) -> None:
        """A request that got no HTTP answer (a refused connection, a timeout): to an outage, a failure."""
        now = self.clock()
        self.outage.answered(now, None)
        if ticket is not None:
            self.leaving.discard(ticket.serial)
            self.model.answered(now, ticket.phase, now - ticket.sent_at, "other", ticket.rate, ticket.flight)

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
        now, model = self.clock(), self.model
        latency = max(now - ticket.sent_at, 0.0)
        self.leaving.discard(ticket.serial)
        self.outage.answered(now, status)
        self.recent.append((now, status))
        if retry_after is not None and retry_after >= LONG_RETRY_AFTER:
            self.pause(now + retry_after)  # a quota: the run waits; it says nothing about the pace
            model.answered(now, ticket.phase, latency, "other", ticket.rate, ticket.flight)
            return
        opens = reset if reset is not None else retry_after
        announced = opens is not None and remaining is not None and remaining <= self._sent_after(ticket)
        if announced:
            # the provider said how many were left when this request came in, and those sent after it take them
            # all (those sent before it, answered later, were counted already): the whole run waits for the
            # window, and a 429 of a window that is used up says nothing about the pace
            self.pause(now + opens)  # type: ignore[operator]
        if status == 429 and announced:
            verdict = "other"
        elif status == 429 and self.flight.bound is not None and ticket.flight > self.flight.bound:
            verdict = "bounded"  # beyond the cap on requests in flight: the window's business, not the rate's
            self.confirmed = True
        elif status == 429:
            verdict = "refused"
            self.flight.bound = None  # refused within the cap it seemed to have: a rate, not a cap
            self.confirmed = False
            # a burst refused with a Retry-After: everyone waits for it (in the start, or before the run has heard
            # the answers that show its share of 429s, once the last three were refused: a few answers say little,
            # and what got through of them becomes the estimate)
            young = model.starting or len(self.recent) < EARLIER_LEAST
            if retry_after is not None and self._mostly(429, now, ROUND_LEAST, 3 if young else 0):
                self.pause(now + retry_after)
        elif status >= 500:
            verdict = "other"  # the rows back off; the pace holds, but a provider that fails most requests
            if self._mostly(500, now, STORM_LEAST):  # gets a round-trip's breath before the next one
                self.slots.pause(now + model.round_trip())
        else:
            verdict = "accepted"
            growth = model.growth()
            self.flight.accepted(ticket.flight, ticket.filled, growth)
            model.phase.rate *= growth
        model.answered(now, ticket.phase, latency, verdict, ticket.rate, ticket.flight)
        if model.capped:
            self.flight.bound, model.capped = model.capped, 0
        self.slots.pause(model.drain_until)

    def _sent_after(self, ticket: Ticket) -> int:
        """Requests still in flight that were sent after ``ticket``'s (counted only for a window's answer)."""
        return sum(serial > ticket.serial for serial in self.leaving)

    def pause(self, until: float) -> None:
        """The whole run waits until ``until``; then what got through in the last second sets the pace."""
        self.slots.pause(until)
        self._resume_at = max(self._resume_at or until, until)

    def _mostly(self, status: int, now: float, least: int, last: int = 0) -> bool:
        """Whether most answers of the last round-trip (at least ``least`` of them, and the ``last`` ones all)
        were ``status`` (or any 5xx, for 500), and, for 429s, more than the background explains, or the share
        of 429s of the answers before them (scattered 429s are no burst, however the pace has yet to learn of
        them)."""
        answers = list(self.recent)
        size = sum(1 for at, _ in answers if now - at <= self.model.round_trip())
        size = max(size, least)
        window, before = answers[-size:], answers[:-size]
        hits = sum(code >= 500 if status == 500 else code == status for _, code in window)
        if status != 429:
            return len(window) >= least and hits * 2 > len(window)
        share = self.model.background.share
        if len(before) >= EARLIER_LEAST:
            share = max(share, sum(code == 429 for _, code in before) / len(before))
        expected = share * len(window)
        in_a_row = all(code == 429 for _, code in window[len(window) - last :])
        return (
            len(window) >= least
            and hits * 2 > len(window)
            and hits > expected + 3 * math.sqrt(expected) + 1
            and in_a_row
        )

    def _sending(self, now: float) -> float:
        """Requests sent per second over the last round-trip (at least 50 ms)."""
        span = max(self.model.round_trip(), 0.05)
        count = 0
        for at in reversed(self.model.sends):  # (the model keeps the last second's)
            if at <= now - span:
                break
            count += 1
        return count / span
