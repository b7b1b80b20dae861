"""The library interrupted as a notebook's stop button does it (SIGINT: Python's own handler raises
KeyboardInterrupt): requests in flight finish within the grace, every job id the provider issued is stored, and
the interrupt is raised. A real child process against the simulator, 1.5 s per answer."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import batchgen
from batchgen.journal import Journal, journal_path

from ..support.runs import API_KEY, accepted_ids, read_sheet, wait_for

CALLS = {
    "run": "batchgen.run(rows, OUT, base_url=URL, api_key=KEY, transport=T, concurrency=8)",
    # a notebook: a loop runs in the main thread under Python's own SIGINT handler (no asyncio.run)
    "run inside a running loop": "async def main():\n"
    "    batchgen.run(rows, OUT, base_url=URL, api_key=KEY, transport=T, concurrency=8)\n"
    "asyncio.new_event_loop().run_until_complete(main())",
    # asyncio.run turns the first Ctrl-C into a cancellation of its task, then raises KeyboardInterrupt
    "arun": "asyncio.run(batchgen.arun(rows, OUT, base_url=URL, api_key=KEY, transport=T, concurrency=8))",
}


@pytest.mark.parametrize("call", list(CALLS))
def test_an_interrupted_library_run_keeps_every_id_issued_for_requests_in_flight(
    tmp_path: Path, start_simulator, transport: str, call: str
) -> None:
    server = start_simulator(latency_ms=1500)
    output = tmp_path / "out.xlsx"
    script = (
        "import asyncio, batchgen\n"
        f"URL, KEY, T, OUT = {server.url!r}, {API_KEY!r}, {transport!r}, {str(output)!r}\n"
        "rows = [{'title': f'Song {i}', 'tag': 'pop', 'lyrics': f'words {i}'} for i in range(40)]\n"
        f"{CALLS[call]}\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    simulator = server.simulator
    try:
        wait_for(lambda: len(simulator.received) - len(simulator.accepted) >= 8)  # 8 requests in flight
        interrupted, sent = time.monotonic(), len(simulator.received)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    ended = time.monotonic() - interrupted
    assert err.rstrip().splitlines()[-1] == "KeyboardInterrupt", err
    issued = accepted_ids(server)
    assert len(simulator.received) == sent == len(simulator.accepted) < 40  # every request in flight answered
    assert {line["job_id"] for line in read_sheet(output, "jobs")} == issued
    with Journal.open(journal_path(output.resolve())) as journal:
        assert {job_id for row in journal.done() for job_id in row.job_ids} == issued
        assert journal.counts(journal.latest_run())["done"] == sent
    assert ended < 15  # promptly: within the grace, not after the whole sheet


async def _timed_out(run: Callable[[], Coroutine[Any, Any, object]]) -> None:
    await asyncio.wait_for(run(), 1.0)  # a notebook's guard around a long call


async def _sibling_failed(run: Callable[[], Coroutine[Any, Any, object]]) -> None:
    async def other() -> None:
        await asyncio.sleep(1.0)
        raise RuntimeError("another task of the group failed")

    async with asyncio.TaskGroup() as group:  # the group cancels the batch
        group.create_task(run())
        group.create_task(other())


@pytest.mark.parametrize("cancel", [_timed_out, _sibling_failed], ids=["wait_for", "task group"])
def test_a_cancelled_arun_keeps_every_id_issued_for_requests_in_flight(
    tmp_path: Path, start_simulator, transport: str, cancel: Callable[..., Coroutine[Any, Any, None]]
) -> None:
    """A cancellation that is not Ctrl-C (a timeout, a failed sibling task) is a graceful stop too: it comes 1 s in,
    while the second round of requests is in flight (0.75 s per answer)."""
    server = start_simulator(latency_ms=750)
    output = tmp_path / "out.xlsx"
    rows = [{"title": f"Song {i}", "tag": "pop", "lyrics": f"words {i}"} for i in range(40)]

    def run() -> Coroutine[Any, Any, object]:
        return batchgen.arun(rows, output, base_url=server.url, api_key=API_KEY, transport=transport)

    started, begun = time.monotonic(), time.time()
    with pytest.raises((TimeoutError, ExceptionGroup)):
        asyncio.run(cancel(run))
    assert time.monotonic() - started < 15
    simulator = server.simulator
    cancelled = begun + 1.0  # when both ways cancel it
    assert any(entry["at"] < cancelled < entry["at"] + 0.75 for entry in simulator.received)  # some in flight
    issued = accepted_ids(server)
    assert 0 < len(simulator.accepted) == len(simulator.received) < 40  # every request in flight answered
    assert {line["job_id"] for line in read_sheet(output, "jobs")} == issued
    with Journal.open(journal_path(output.resolve())) as journal:
        assert {job_id for row in journal.done() for job_id in row.job_ids} == issued
