"""A discrete-event model of batches against a provider, on a fake clock, to test the pace's control law.

Each batch's rows wait for its pace (rate and window of requests in flight, ``concurrency`` its ceiling); each
answer comes back after ``latency``. The provider has the shapes of limit that providers deploy: the simulator's
``limit`` (429 beyond that many accepted requests in any one-second window; ``limit_at`` makes it change over
time), nginx's ``limit_req`` (``bucket``: rate and burst, in nginx's own arithmetic; no burst is a strict leaky
bucket), HAProxy's stick table (``counting``: more than that many requests, refused ones too, in its one-second
rate counter), a ``fixed`` window of N requests per T seconds that says when it opens, a cap on requests
``in_flight``, a cap on generations ``running`` (a slot held ``hold`` seconds after the answer), a ``quota``
after which every request gets 429 with a Retry-After of an hour, an outage (``down``: 503 from T1 to T2
seconds), and random 429s (``p429``) or 5xx (``p5xx``). A refused row waits its Retry-After without holding a
place in flight, as the dispatcher does. Several batches may share one provider: one key used by several runs.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchgen.pace import Pace, Ticket
from batchgen.pace.outage import DOWN_AFTER
from batchgen.simulator import QUOTA_RETRY_AFTER

START = 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Reply:
    status: int
    retry_after: float | None = None
    at_once: bool = False
    remaining: int | None = None
    reset: float | None = None


@dataclass
class Provider:
    limit: float | None = None
    p429: float = 0.0
    p5xx: float = 0.0
    retry_after: float | None = 1.0
    limit_at: Callable[[float], float | None] | None = None
    in_flight: int | None = None
    in_flight_retry_after: float | None = 1.0  # the simulator's cap says 1 s; nginx's limit_conn says nothing
    quota: int | None = None
    bucket: tuple[float, float] | None = None  # nginx limit_req: (rate, burst)
    counting: float | None = None  # HAProxy: more than this in its one-second counter, refused ones too
    fixed: tuple[int, float] | None = None  # N per T seconds, with X-RateLimit-* headers
    announce: bool = True  # the fixed window says Remaining/Reset on every answer, not only on its 429s
    running: int | None = None
    hold: float = 0.0
    down: tuple[float, float] | None = None
    seed: int = 1
    accepted: deque[float] = field(default_factory=deque)
    processing: int = 0
    total: int = 0
    held: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dice = random.Random(self.seed)
        self._excess, self._last = 0.0, -math.inf  # nginx's state, in milli-requests and milliseconds
        self._period, self._counts = -1, [0, 0]  # HAProxy's freq_ctr: the current period and (previous, current)
        self._window, self._used = -1, 0

    def answer(self, now: float) -> Reply:
        """The answer to a request arriving at ``now``; ``at_once``: answered at the gateway, not after the latency."""
        if self.down is not None and self.down[0] <= now - START < self.down[1]:
            return Reply(503)
        if self.quota is not None and self.total >= self.quota:
            return Reply(429, QUOTA_RETRY_AFTER, True)
        if self.in_flight is not None and self.processing >= self.in_flight:
            return Reply(429, self.in_flight_retry_after, True)
        if self.running is not None:
            self.held = [until for until in self.held if until > now]
            if self.processing + len(self.held) >= self.running:
                return Reply(429, None, True)
        if self.counting is not None and self._rate_counter(now) > self.counting:
            return Reply(429, None, True)
        if self.bucket is not None and not self._leaky(now):
            return Reply(429, None, True)
        if self.fixed is not None:
            return self._fixed(now)
        return self._process(now)

    def finished(self, now: float, status: int) -> None:
        """A request processed after the latency ends now; a generation holds its slot ``hold`` longer."""
        self.processing -= 1
        if self.running is not None and status == 200:
            self.held.append(now + self.hold)

    def _leaky(self, now: float) -> bool:
        rate, burst = self.bucket  # type: ignore[misc]
        ms = int(now * 1000) - self._last
        excess = max(self._excess - rate * 1000 * ms / 1000 + 1000, 0.0)
        if excess > burst * 1000:
            return False
        self._excess, self._last = excess, int(now * 1000)
        return True

    def _rate_counter(self, now: float) -> float:
        period = int(now)
        if period != self._period:
            self._counts = [self._counts[1] if period == self._period + 1 else 0, 0]
            self._period = period
        self._counts[1] += 1
        return self._counts[1] + self._counts[0] * (1 - (now - period))

    def _fixed(self, now: float) -> Reply:
        count, seconds = self.fixed  # type: ignore[misc]
        window = int((now - START) // seconds)
        if window != self._window:
            self._window, self._used = window, 0
        reset = START + (window + 1) * seconds - now
        if self._used >= count:
            return Reply(429, math.ceil(reset), True, 0, reset)
        reply = self._process(now)
        self._used += reply.status == 200
        return replace_reply(reply, count - self._used, reset) if self.announce else reply

    def _process(self, now: float) -> Reply:
        roll = self.dice.random()
        if roll < self.p429:
            return Reply(429, self.retry_after)
        if roll < self.p429 + self.p5xx:
            return Reply(503)
        limit = self.limit_at(now) if self.limit_at else self.limit
        if limit is not None:
            while self.accepted and now - self.accepted[0] >= 1.0:
                self.accepted.popleft()
            if len(self.accepted) >= limit:
                return Reply(429, self.retry_after)
            self.accepted.append(now)
        self.total += 1
        return Reply(200)


def replace_reply(reply: Reply, remaining: int, reset: float) -> Reply:
    return Reply(reply.status, reply.retry_after, reply.at_once, remaining, reset)


@dataclass
class Outcome:
    wall: float
    requests: int
    refused: int
    accepted_rate: float
    resent_early: int
    sends: list[tuple[float, int]]
    done: int = 0
    most_in_flight: int = 0
    finished: float = 0.0  # when its last row was accepted, in seconds from the start


@dataclass
class Batch:
    """One run: its rows, its pace, and what happened to them."""

    rows: int
    pace: Pace
    latency: float
    jitter: float
    ready: deque[int]
    outcome: Outcome
    not_before: dict[int, float] = field(default_factory=dict)
    first_ok: float | None = None
    last_ok: float | None = None
    wake_at: float = 0.0


def simulate(rows: int, provider: Provider, **options: Any) -> tuple[Outcome, Pace]:
    """Run ``rows`` rows through a :class:`Pace` as the dispatcher would (the options of :func:`simulate_many`)."""
    [(outcome, pace)] = simulate_many([rows], provider, **options)
    return outcome, pace


def simulate_many(
    rows: list[int],
    provider: Provider,
    *,
    concurrency: int = 8,
    latency: float = 0.02,
    cap: float | None = None,
    jitter: float = 0.1,
    seed: int = 3,
    start_rate: float | None = None,
    until: float | None = None,
    delays: list[float] | None = None,
    transit: float = 0.0,
) -> list[tuple[Outcome, Pace]]:
    """Batches of ``rows[i]`` rows started together against one provider, or ``delays[i]`` seconds after the
    first (two runs on one key seldom start in the same millisecond); ``until`` ends the model early. A request
    reaches the provider up to ``transit`` seconds after it leaves (a real client's send path and the server's
    loop: two requests paced 1/rate apart can arrive closer, which a strict bucket refuses)."""
    clock = Clock()
    start = clock.now
    dice = random.Random(seed)
    batches = [
        Batch(
            count,
            Pace(cap, start=start_rate or 16.0, ceiling=concurrency, clock=clock),
            latency,
            jitter,
            deque(range(count)),
            Outcome(0.0, 0, 0, 0.0, 0, []),
        )
        for count in rows
    ]
    events: list[tuple[float, int, int, int, int, object]] = []
    seq = 0
    begins = [start + delay for delay in delays or [0.0] * len(batches)]

    def push(at: float, kind: int, which: int, row: int, data: object = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, which, row, data))

    while any(batch.outcome.done < batch.rows for batch in batches):
        for which, batch in enumerate(batches):
            pace, outcome = batch.pace, batch.outcome
            if clock.now < begins[which]:
                if batch.wake_at != begins[which]:
                    batch.wake_at = begins[which]
                    push(batch.wake_at, 0, which, -1)
                continue
            while batch.ready and pace.room():
                delay = pace.wait()
                if delay > 0:
                    if batch.wake_at <= clock.now or clock.now + delay < batch.wake_at:  # the earliest is enough
                        batch.wake_at = clock.now + delay
                        push(batch.wake_at, 0, which, -1)
                    break
                row = batch.ready.popleft()
                if clock.now < batch.not_before.get(row, 0.0) - 1e-9:
                    outcome.resent_early += 1
                ticket = pace.send()
                outcome.most_in_flight = max(outcome.most_in_flight, pace.flight.count)
                reply = provider.answer(clock.now + (transit * dice.random() if transit else 0.0))
                provider.processing += not reply.at_once
                outcome.requests += 1
                outcome.sends.append((clock.now, reply.status))
                back = clock.now + (0.0 if reply.at_once else latency * (1 + jitter * (dice.random() - 0.5)))
                push(back, 1, which, row, (ticket, reply))
        if not events or (until is not None and events[0][0] > start + until):
            break
        at, _, kind, which, row, data = heapq.heappop(events)
        clock.now = max(clock.now, at)
        batch = batches[which]
        if kind == 1:
            wait = answer(batch, provider, clock.now, row, data)
            if wait is not None:
                push(clock.now + wait, 2, which, row)
        elif kind == 2:
            batch.ready.append(row)
    results = []
    for batch in batches:
        outcome = batch.outcome
        outcome.wall = clock.now - start
        span = outcome.finished = (batch.last_ok or clock.now) - start
        outcome.accepted_rate = outcome.done / span if span else 0.0
        results.append((outcome, batch.pace))
    return results


def answer(batch: Batch, provider: Provider, now: float, row: int, data: object) -> float | None:
    """An answer reaches its batch: the pace hears it; the row is done, or waits this long to go again."""
    ticket, reply = data  # type: ignore[misc]
    assert isinstance(ticket, Ticket) and isinstance(reply, Reply)
    status, retry_after = reply.status, reply.retry_after
    if not reply.at_once:
        provider.finished(now, status)
    batch.pace.answered(ticket, status, retry_after, reply.remaining, reply.reset)
    batch.pace.release()
    if status == 200:
        batch.outcome.done += 1
        batch.first_ok = now if batch.first_ok is None else batch.first_ok
        batch.last_ok = now
        return None
    batch.outcome.refused += status == 429
    wait: float = retry_after if retry_after is not None else 0.5
    batch.not_before[row] = now + wait
    return wait


def bring_down(pace: Pace, clock: Clock) -> None:
    """One answer, then a 503 to every request for longer than an outage takes to be called one."""
    pace.answered(pace.send(), 200)
    pace.release()
    for _ in range(DOWN_AFTER):
        clock.now += 0.3
        pace.answered(pace.send(), 503)
        pace.release()
