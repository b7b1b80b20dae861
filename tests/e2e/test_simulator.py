"""The simulator serves the provider's contract over loopback: bearer check, schema check, two ids, faults, a log."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from batchgen.simulator import QUOTA_MESSAGE, Downtime, Faults, FixedWindow, Generations, ProviderLimits

from ..support.runs import API_KEY, SAMPLES, read_sheet, spawn

BODY = {"model": "FUZZ-1.0", "title": "t", "tag": "pop", "lyrics": "la", "instrumental": False}
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {**BODY, "model": "FUZZ-9"},
            "model: Input should be 'FUZZ-1.0', 'FUZZ-1.1', 'FUZZ-1.0 Pro' or 'FUZZ-1.1 Pro'",
        ),
        ({**BODY, "instrumental": "false"}, "instrumental: Input should be a valid boolean"),
        (
            {**BODY, "morph": {"normalized_weirdness": 1.5}},
            "morph.normalized_weirdness: Input should be less than or equal to 1",
        ),
        ({**BODY, "morph": {"duration": "30"}}, "morph.duration: Input should be a valid number"),
        ({k: v for k, v in BODY.items() if k != "title"}, "title: Field required"),
        ({**BODY, "extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_bodies_are_checked_against_the_seed_schema(start_simulator, body, message) -> None:
    server = start_simulator()
    answer = httpx.post(f"{server.url}/riffusion/generate", json=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json() == {"error": {"message": message}}
    assert server.simulator.accepted == []


def test_bearer_key_is_checked_and_two_ids_come_back(start_simulator) -> None:
    server = start_simulator()
    assert httpx.post(f"{server.url}/riffusion/generate", json=BODY).status_code == 401
    assert (
        httpx.post(f"{server.url}/riffusion/generate", json=BODY, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    answer = httpx.post(f"{server.url}/riffusion/generate", json=BODY, headers={**AUTH, "Idempotency-Key": "k1"})
    ids = [job["id"] for job in answer.json()["jobs"]]
    assert answer.status_code == 200 and len(set(ids)) == 2
    assert server.simulator.accepted[0]["idempotency_key"] == "k1"
    assert httpx.get(f"{server.url}/_simulator/log").json()["accepted"][0]["job_ids"] == ids


def test_rate_limit_answers_429_beyond_it(start_simulator) -> None:
    server = start_simulator(rate_limit=3)
    with httpx.Client() as client:
        codes = [client.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_an_in_flight_cap_answers_429_at_once_beyond_it(start_simulator) -> None:
    server = start_simulator(latency_ms=300, limits=ProviderLimits(in_flight=2))

    async def post_four() -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            url = f"{server.url}/riffusion/generate"
            return list(await asyncio.gather(*(client.post(url, json=BODY, headers=AUTH) for _ in range(4))))

    answers = asyncio.run(post_four())
    refused = [answer for answer in answers if answer.status_code == 429]
    assert sorted(answer.status_code for answer in answers) == [200, 200, 429, 429]
    assert all(answer.headers["Retry-After"] == "1" for answer in refused)
    assert all(answer.elapsed.total_seconds() < 0.3 for answer in refused)  # at once, not after the latency


def test_a_quota_refuses_every_request_once_spent(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(quota=2))
    with httpx.Client() as client:
        answers = [client.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 429, 429]
    assert answers[2].json() == {"error": {"message": QUOTA_MESSAGE}}
    assert answers[2].headers["Retry-After"] == "3600"
    assert len(server.simulator.accepted) == 2


def test_simulate_command_serves_logs_and_stops_on_sigterm(tmp_path: Path, cli) -> None:
    log = tmp_path / "accepted.jsonl"
    server = spawn("simulate", "--port", "0", "--log", log, "--latency-ms", "5")
    banner = server.stderr.readline()
    port = re.search(r"127\.0\.0\.1:(\d+)/", banner)[1]  # type: ignore[index]
    output = tmp_path / "out.xlsx"
    result = cli("run", SAMPLES / "catalog.csv", "-o", output, "--base-url", f"http://127.0.0.1:{port}", "--quiet")
    assert result.code == 0, result.err
    server.send_signal(signal.SIGTERM)
    _, err = server.communicate(timeout=10)
    assert server.returncode == 0
    assert "16 requests accepted" in err
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert {i for entry in logged for i in entry["job_ids"]} == {line["job_id"] for line in read_sheet(output, "jobs")}
    assert (
        cli("simulate", "--host", "10.1.2.3").err.strip()
        == "error: --host: 10.1.2.3 is not a loopback address; the simulator listens on loopback only"
    )


def post(url: str) -> httpx.Response:
    """One request on a new connection."""
    return httpx.post(f"{url}/riffusion/generate", json=BODY, headers=AUTH)


def test_a_fixed_window_answers_429_with_the_seconds_to_its_reset(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(window=FixedWindow(2, 30.0)))
    answers = [post(server.url) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert [answer.headers["X-RateLimit-Remaining"] for answer in answers] == ["1", "0", "0"]
    refused = answers[2]
    assert refused.headers["Retry-After"] in ("29", "30") and refused.headers["X-RateLimit-Limit"] == "2"
    assert int(refused.headers["X-RateLimit-Reset"]) - time.time() == pytest.approx(30, abs=2)
    assert len(server.simulator.accepted) == 2


def test_a_generation_cap_refuses_without_retry_after_until_the_hold_ends(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(generations=Generations(1, hold=0.3)))
    first, second = post(server.url), post(server.url)
    assert (first.status_code, second.status_code) == (200, 429)
    assert "Retry-After" not in second.headers
    assert second.json() == {"error": {"message": "Too many generations running"}}
    time.sleep(0.35)
    assert post(server.url).status_code == 200


def test_an_outage_answers_503_to_everything_then_heals(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(outage=Downtime(0.2, 1.5)))
    started = time.monotonic()
    assert post(server.url).status_code == 200  # the first request: the outage counts from it
    time.sleep(0.3)
    assert [post(server.url).status_code for _ in range(3)] == [503, 503, 503]
    time.sleep(max(0.0, started + 1.6 - time.monotonic()))
    assert post(server.url).status_code == 200
    assert [entry["fault"] for entry in server.simulator.received].count("outage") == 3


def test_an_outage_can_refuse_connections_then_listen_again(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(outage=Downtime(0.2, 1.5, refuse=True)))
    started = time.monotonic()
    with httpx.Client() as kept:  # a keep-alive connection opened before the outage
        assert kept.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH).status_code == 200
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):
            post(server.url)
        with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError)):  # closed by the provider
            kept.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH)
    time.sleep(max(0.0, started + 1.6 - time.monotonic()))
    assert post(server.url).status_code == 200
    assert len(server.simulator.received) == 2


def test_mixed_refusals_429_with_retry_after_and_503_can_be_asked_for(start_simulator) -> None:
    server = start_simulator(faults=Faults(rate_429=0.2, rate_5xx=0.1, retry_after=2, seed=5))
    with httpx.Client() as client:
        answers = [client.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH) for _ in range(400)]
    codes = [answer.status_code for answer in answers]
    assert 60 <= codes.count(429) <= 100 and 25 <= codes.count(503) <= 55
    assert {answer.headers.get("Retry-After") for answer in answers if answer.status_code == 429} == {"2"}
    assert all("Retry-After" not in answer.headers for answer in answers if answer.status_code == 503)


def test_jittered_latency_spreads_the_answers(start_simulator) -> None:
    server = start_simulator(latency_ms=40, jitter="uniform", faults=Faults(seed=2))
    took = []
    for _ in range(20):
        started = time.monotonic()
        post(server.url)
        took.append(time.monotonic() - started)
    assert min(took) >= 0.02 and max(took) - min(took) >= 0.01
