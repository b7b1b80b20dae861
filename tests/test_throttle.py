"""The throttle on a fake clock: run-wide pause, first estimate, cuts, slow growth, the --rate ceiling."""

from __future__ import annotations

import pytest

from batchgen import throttle
from batchgen.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(throttle.time, "monotonic", fake)
    return fake


def test_unpaced_until_the_first_429_then_paced_below_what_got_through(clock: Clock) -> None:
    gate = Throttle()
    for _ in range(20):
        assert gate.reserve() == 0.0
        gate.answered()
        clock.now += 0.01
    gate.throttled(retry_after=2.0)
    assert gate.rate == pytest.approx(18.0)
    assert gate.reserve() == pytest.approx(2.0)  # every row waits out the Retry-After
    clock.now += 2.0
    assert gate.reserve() == 0.0
    assert gate.reserve() == pytest.approx(1 / 18)


def test_cuts_only_when_the_pace_is_to_blame_and_growth_is_slow(clock: Clock) -> None:
    gate = Throttle(cap=None)
    for _ in range(10):
        gate.answered()
    gate.throttled(None)
    gate.throttled(None)  # the same burst: no second cut
    assert gate.rate == pytest.approx(9.0)
    clock.now += 1.5
    gate.throttled(None)
    assert gate.rate == pytest.approx(9.0)  # one scattered 429 below the last cut's pace: a pause, no cut
    gate.throttled(None)
    gate.throttled(None)
    assert gate.rate == pytest.approx(8.1)  # but most answers since the cut being 429s is about the pace
    clock.now += 1.0  # the pause is over: growth starts from here
    assert gate.reserve() == 0.0 and gate.rate == pytest.approx(8.1)
    clock.now += 2.0
    assert gate.reserve() == 0.0
    assert 8.1 * 1.02 < gate.rate < 8.1 * 1.05


def test_without_evidence_only_the_pause_applies(clock: Clock) -> None:
    gate = Throttle()
    gate.answered()
    gate.throttled(0.5)
    assert gate.rate is None
    assert gate.reserve() == pytest.approx(0.5)
    clock.now += 0.5
    assert gate.reserve() == 0.0 and gate.reserve() == 0.0


def test_rate_cap_is_never_exceeded(clock: Clock) -> None:
    gate = Throttle(cap=5.0)
    waits = []
    for _ in range(3):
        waits.append(gate.reserve())
        clock.now += 1.0 if waits[-1] == 0 else waits[-1]
    assert gate.rate == 5.0
    assert gate.reserve() == 0.0 and gate.reserve() == pytest.approx(0.2)
