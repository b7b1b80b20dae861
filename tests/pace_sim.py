"""A discrete-event model of a batch against a provider, on a fake clock, to test the pace's control law.

Rows wait for a free connection (``concurrency``) and for the pace; each answer comes back after ``latency``.
The provider refuses with 429 beyond ``limit`` accepted requests in any one-second window (the simulator's
rule), and also at random with ``p429`` (scattered 429s) or ``p5xx``. A refused row waits its Retry-After
without holding a connection, as the dispatcher does.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from batchgen.pace import Pace


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
    seed: int = 1
    accepted: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.dice = random.Random(self.seed)

    def answer(self, now: float) -> int:
        roll = self.dice.random()
        if roll < self.p429:
            return 429
        if roll < self.p429 + self.p5xx:
            return 503
        limit = self.limit_at(now) if self.limit_at else self.limit
        if limit is not None:
            while self.accepted and now - self.accepted[0] >= 1.0:
                self.accepted.popleft()
            if len(self.accepted) >= limit:
                return 429
            self.accepted.append(now)
        return 200


@dataclass
class Outcome:
    wall: float
    requests: int
    refused: int
    accepted_rate: float
    resent_early: int
    sends: list[tuple[float, int]]


def simulate(
    rows: int,
    provider: Provider,
    *,
    concurrency: int = 8,
    latency: float = 0.02,
    cap: float | None = None,
    jitter: float = 0.1,
    seed: int = 3,
    start_rate: float | None = None,
) -> tuple[Outcome, Pace]:
    """Run ``rows`` rows through a :class:`Pace` as the dispatcher would (start rate as it sets it)."""
    clock = Clock()
    start = clock.now
    pace = Pace(cap, start=start_rate or 8.0 * concurrency, clock=clock)
    dice = random.Random(seed)
    ready: deque[int] = deque(range(rows))
    events: list[tuple[float, int, int, int, object]] = []
    free, seq, done, requests, refused, early = concurrency, 0, 0, 0, 0, 0
    not_before: dict[int, float] = {}
    sends: list[tuple[float, int]] = []
    first_ok = last_ok = None
    wake_at = 0.0
    while done < rows:
        while free and ready:
            delay = pace.wait()
            if delay > 0:
                if wake_at <= clock.now or clock.now + delay < wake_at:  # the earliest wake-up is enough
                    wake_at = clock.now + delay
                    seq += 1
                    heapq.heappush(events, (wake_at, seq, 0, -1, None))
                break
            row = ready.popleft()
            if clock.now < not_before.get(row, 0.0) - 1e-9:
                early += 1
            ticket = pace.send()
            status = provider.answer(clock.now)
            requests += 1
            sends.append((clock.now, status))
            free -= 1
            seq += 1
            back = clock.now + latency * (1 + jitter * (dice.random() - 0.5))
            heapq.heappush(events, (back, seq, 1, row, (ticket, status)))
        if not events:
            break
        at, _, kind, row, data = heapq.heappop(events)
        clock.now = max(clock.now, at)
        if kind == 1:
            ticket, status = data  # type: ignore[misc]
            free += 1
            pace.answered(ticket, status, provider.retry_after if status == 429 else None)
            if status == 200:
                done += 1
                first_ok = clock.now if first_ok is None else first_ok
                last_ok = clock.now
            else:
                refused += status == 429
                wait = provider.retry_after if status == 429 else 0.5
                not_before[row] = clock.now + wait
                seq += 1
                heapq.heappush(events, (clock.now + wait, seq, 2, row, None))
        elif kind == 2:
            ready.append(row)
    span = (last_ok or clock.now) - start
    return Outcome(clock.now - start, requests, refused, rows / span if span else 0.0, early, sends), pace
