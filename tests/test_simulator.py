"""The simulator serves the provider's contract: bearer check, schema check, two ids, faults, a log."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import httpx
import pytest

from batchgen.errors import UsageError
from batchgen.simulator import QUOTA_MESSAGE, Faults, Limits

from .conftest import API_KEY, SAMPLES, read_sheet, spawn

pytestmark = pytest.mark.slow

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
    server = start_simulator(latency_ms=300, limits=Limits(in_flight=2))

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
    server = start_simulator(limits=Limits(quota=2))
    with httpx.Client() as client:
        answers = [client.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 429, 429]
    assert answers[2].json() == {"error": {"message": QUOTA_MESSAGE}}
    assert answers[2].headers["Retry-After"] == "3600"
    assert len(server.simulator.accepted) == 2


def test_a_limit_schedule_changes_the_rate_from_each_start_on() -> None:
    limits = Limits(rate=10, schedule=[(20.0, 5.0), (40.0, 40.0)])
    assert [limits.rate_at(t) for t in (0, 19.9, 20, 39, 40, 1000)] == [10, 10, 5, 5, 40, 40]


def test_unknown_fault_names_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown fault 'boom'"):
        Faults(script=["boom"])


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
