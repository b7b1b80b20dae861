"""A discrete-event model of batches against a provider, on a fake clock, to test the pace's control law.

Each batch's rows wait for its pace (rate and window of requests in flight, ``concurrency`` its ceiling); each
answer comes back after ``latency``. The provider has the simulator's limit shapes: 429 beyond ``limit``
accepted requests in any one-second window (``limit_at`` makes it change over time), 429 at once when more than
``in_flight`` are being processed, a ``quota`` after which every request gets 429 with a Retry-After of an
hour, and random 429s (``p429``) or 5xx (``p5xx``). A refused row waits its Retry-After without holding a place
in flight, as the dispatcher does. Several batches may share one provider: one key used by several runs.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchgen.pace import Pace, Ticket
from batchgen.simulator import QUOTA_RETRY_AFTER


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Provider:
    limit: float | None = None
    p429: float = 0.0
    p5xx: float = 0.0
    retry_after: float = 1.0
    limit_at: Callable[[float], float | None] | None = None
    in_flight: int | None = None
    quota: int | None = None
    seed: int = 1
    accepted: deque[float] = field(default_factory=deque)
    processing: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        self.dice = random.Random(self.seed)

    def answer(self, now: float) -> tuple[int, float | None, bool]:
        """The status of a request arriving at ``now``, its Retry-After, and whether it is answered at once
        (the quota and the in-flight cap, as the simulator's gateway does) or after the latency."""
        if self.quota is not None and self.total >= self.quota:
            return 429, QUOTA_RETRY_AFTER, True
        if self.in_flight is not None and self.processing >= self.in_flight:
            return 429, 1.0, True
        status, retry_after = self._process(now)
        return status, retry_after, False

    def _process(self, now: float) -> tuple[int, float | None]:
        roll = self.dice.random()
        if roll < self.p429:
            return 429, self.retry_after
        if roll < self.p429 + self.p5xx:
            return 503, None
        limit = self.limit_at(now) if self.limit_at else self.limit
        if limit is not None:
            while self.accepted and now - self.accepted[0] >= 1.0:
                self.accepted.popleft()
            if len(self.accepted) >= limit:
                return 429, self.retry_after
            self.accepted.append(now)
        self.total += 1
        return 200, None


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
) -> list[tuple[Outcome, Pace]]:
    """Batches of ``rows[i]`` rows started together against one provider, or ``delays[i]`` seconds after the
    first (two runs on one key seldom start in the same millisecond); ``until`` ends the model early."""
    clock = Clock()
    start = clock.now
    dice = random.Random(seed)
    batches = [
        Batch(
            count,
            Pace(cap, start=start_rate or 8.0 * concurrency, ceiling=concurrency, clock=clock),
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
                status, retry_after, at_once = provider.answer(clock.now)
                provider.processing += not at_once
                outcome.requests += 1
                outcome.sends.append((clock.now, status))
                back = clock.now + (0.0 if at_once else latency * (1 + jitter * (dice.random() - 0.5)))
                push(back, 1, which, row, (ticket, status, retry_after, at_once))
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
    ticket, status, retry_after, at_once = data  # type: ignore[misc]
    assert isinstance(ticket, Ticket)
    provider.processing -= not at_once
    batch.pace.answered(ticket, status, retry_after)
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
