"""The gate in front of every attempt: the window bounds the requests in flight, and a provider's long wait
(a quota) is a state of the run, said once, or a stop when it ends past the run's time limit."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from batchgen.pace import Pace
from batchgen.pace.outage import FIRST_TRY
from batchgen.submit import Report
from batchgen.submit.gate import Gate, Stopped

from ..support.pace_sim import Clock, bring_down

MESSAGE = "quota exceeded: no credits left"


def test_the_window_bounds_the_requests_in_flight_and_a_close_wakes_those_waiting_for_room() -> None:
    async def main() -> tuple[int, int, int]:
        gate = Gate(Pace(start=1e6, ceiling=3), Report(), None)
        inside, most, stopped = 0, 0, 0
        release = asyncio.Event()

        async def request() -> None:
            nonlocal inside, most, stopped
            try:
                async with gate.enter():
                    inside += 1
                    most = max(most, inside)
                    await release.wait()
                    inside -= 1
            except Stopped:
                stopped += 1

        tasks = [asyncio.create_task(request()) for _ in range(8)]
        while most < 3:
            await asyncio.sleep(0)
        gate.close("done")
        release.set()
        await asyncio.gather(*tasks)
        return most, stopped, gate.pace.flight.count

    most, stopped, left = asyncio.run(main())
    assert most == 3  # at most the window (here the concurrency, 3), never all eight
    assert stopped == 5 and left == 0  # the others were stopped at the gate; every place was given back


def test_a_long_wait_is_said_once_with_the_time_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    shown: list[str | None] = []
    report = Report()
    gate = Gate(Pace(clock=Clock()), report, None, notice=shown.append)
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        gate.hold(3600.0, MESSAGE)
        gate.hold(3600.0, MESSAGE)  # the same wait, answered to another request in flight
    [record] = caplog.records
    assert report.waiting is not None and record.getMessage() == str(report.waiting)
    until = f"{report.waiting.until:%H:%M}"
    assert record.getMessage() == f"provider: {MESSAGE}; waiting until {until} (Retry-After 3600 s)"
    assert getattr(record, "waiting", None) is report.waiting  # the command line adds how to stop
    assert shown == [f"waiting until {until}"]
    assert not gate.closed.is_set()


def test_a_wait_that_ends_past_the_time_limit_stops_the_run_now(caplog: pytest.LogCaptureFixture) -> None:
    report = Report()
    gate = Gate(Pace(clock=Clock()), report, None, stop_after=360.0)
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        gate.hold(3600.0, MESSAGE)
    assert gate.closed.is_set()
    assert report.stopped is not None and MESSAGE in report.stopped and "past the time limit" in report.stopped
    assert "stopping now" in caplog.records[0].getMessage()


def test_a_wait_within_the_time_limit_does_not_stop_the_run() -> None:
    gate = Gate(Pace(clock=Clock()), Report(), None, stop_after=7200.0)
    gate.hold(3600.0, MESSAGE)
    assert not gate.closed.is_set()


def test_a_provider_down_is_said_with_since_when_and_the_next_try(caplog: pytest.LogCaptureFixture) -> None:
    clock, shown, report = Clock(), list[str | None](), Report()
    pace = Pace(clock=clock)
    slept: list[float] = []

    async def sleeper(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    gate = Gate(pace, report, None, notice=shown.append, sleeper=sleeper)
    bring_down(pace, clock)

    async def one() -> None:
        async with gate.enter():
            pass

    with caplog.at_level(logging.WARNING, logger="batchgen"):
        asyncio.run(one())
    assert slept and slept[0] == pytest.approx(FIRST_TRY)  # the probe waited for its time
    assert report.down is not None and re.fullmatch(
        r"provider down since \d\d:\d\d \(503\); next try \d\d:\d\d:\d\d", report.down
    )
    assert shown == [report.down, None]  # said while waiting, cleared when the probe leaves
    assert report.down in caplog.records[0].getMessage()


def test_a_slot_given_back_lets_the_request_waiting_for_the_next_one_go_at_once() -> None:
    """A row held by another run gives its slot back: the next row goes now, not a pace interval later (a second
    machine on one sheet walks past the rows the first holds at once, and finds rows of its own)."""

    async def never(_seconds: float) -> None:
        await asyncio.Event().wait()  # the clock stands still: only the slot given back can let it through

    async def main() -> tuple[float, float, int]:
        gate = Gate(Pace(start=2.0, ceiling=4, clock=Clock()), Report(), None, sleeper=never)

        async def next_row() -> float:
            async with gate.enter() as ticket:
                return ticket.sent_at

        async with gate.enter() as held:
            waiting = asyncio.create_task(next_row())
            await asyncio.sleep(0)
            assert not waiting.done()  # its slot is half a second away
            gate.unsent(held)  # the first row was held by another run: it never left
            after = await asyncio.wait_for(waiting, 1.0)
        return held.sent_at, after, gate.report.requests

    first, second, requests = asyncio.run(main())
    assert second == first  # the same instant: the slot given back was taken at once
    assert requests == 1  # the request that never left is not counted
