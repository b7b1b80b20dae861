"""The transport contract (the docstring of :mod:`batchgen.transport`), the same tests on both clients, over
real loopback HTTP against the simulator."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from batchgen.simulator import Faults
from batchgen.transport import NoAnswer, NotSent, Response, SendCancelled, open_transport

from ..support.runs import API_KEY

BODY = json.dumps({"model": "FUZZ-1.0", "title": "t", "tag": "pop", "lyrics": "la", "instrumental": False}).encode()
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json", "Idempotency-Key": "k1"}


def send(transport: str, url: str, timeout: float = 5.0) -> Response:
    async def once() -> Response:
        client = open_transport(transport, 4)  # type: ignore[arg-type]
        try:
            return await client.send(f"{url}/riffusion/generate", HEADERS, BODY, timeout=timeout, connect_timeout=2)
        finally:
            await client.aclose()

    return asyncio.run(once())


def test_an_answer_comes_back_whole_with_lower_case_headers(start_simulator, transport) -> None:
    server = start_simulator()
    answer = send(transport, server.url)
    assert answer.status == 200 and len(json.loads(answer.body)["jobs"]) == 2
    assert answer.headers["content-type"].startswith("application/json")
    assert server.simulator.accepted[0]["idempotency_key"] == "k1"


@pytest.mark.parametrize("fault, status", [("429", 429), ("503", 503), ("404", 404), ("401", 401), ("307", 307)])
def test_every_status_is_an_answer_and_redirects_are_not_followed(start_simulator, transport, fault, status) -> None:
    server = start_simulator(Faults(script=[fault]))
    answer = send(transport, server.url)
    assert answer.status == status and len(server.simulator.received) == 1
    if status == 429:
        assert answer.headers["retry-after"] == "1"


def test_connection_refused_is_not_sent(transport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NotSent):
        send(transport, f"http://127.0.0.1:{port}")


def test_an_unknown_host_is_not_sent(transport) -> None:
    with pytest.raises(NotSent):
        send(transport, "http://batchgen-no-such-host.invalid")


@pytest.mark.parametrize("fault", ["drop", "accept_drop"])
def test_a_connection_closed_after_the_body_left_is_no_answer(start_simulator, transport, fault) -> None:
    server = start_simulator(Faults(script=[fault]))
    with pytest.raises(NoAnswer) as raised:
        send(transport, server.url)
    assert not raised.value.timed_out
    assert API_KEY not in str(raised.value)


def test_a_whole_request_timeout_after_the_body_left_is_a_timed_out_no_answer(start_simulator, transport) -> None:
    server = start_simulator(Faults(script=["hang"], hang_seconds=3))
    with pytest.raises(NoAnswer) as raised:  # 1.5 s: time to connect and send on a busy machine, not to answer
        send(transport, server.url, timeout=1.5)
    assert raised.value.timed_out


def test_a_cancelled_request_says_whether_its_body_left(start_simulator, transport) -> None:
    server = start_simulator(Faults(script=["hang"], hang_seconds=3))

    async def cancelled() -> SendCancelled:
        client = open_transport(transport, 2)  # type: ignore[arg-type]
        task = asyncio.create_task(
            client.send(f"{server.url}/riffusion/generate", HEADERS, BODY, timeout=5, connect_timeout=2)
        )
        await asyncio.sleep(0.3)
        task.cancel()
        try:
            await task
        except SendCancelled as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("the request was not cancelled")

    assert asyncio.run(cancelled()).body_sent


def send_many(transport: str, url: str, concurrency: int, count: int) -> list[int]:
    """``count`` requests at once through one transport of ``concurrency``: their statuses."""

    async def many() -> list[int]:
        client = open_transport(transport, concurrency)  # type: ignore[arg-type]
        try:
            answers = await asyncio.gather(
                *(
                    client.send(f"{url}/riffusion/generate", HEADERS, BODY, timeout=10, connect_timeout=5)
                    for _ in range(count)
                )
            )
        finally:
            await client.aclose()
        return [answer.status for answer in answers]

    return asyncio.run(many())


def test_the_pool_reuses_connections(start_simulator, transport) -> None:
    server = start_simulator()
    assert send_many(transport, server.url, 2, 10) == [200] * 10
    assert len(server.simulator.peers) <= 2  # ten requests over at most two connections


def test_the_pool_holds_exactly_the_concurrency(start_simulator, transport) -> None:
    """httpx's connections are split over several small pools (httpcore's large pools are slow): together they
    still open as many connections as the concurrency allows, and no more."""
    server = start_simulator(latency_ms=200)
    assert send_many(transport, server.url, 40, 100) == [200] * 100
    assert len(server.simulator.peers) == 40
