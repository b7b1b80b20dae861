"""The simulator serves the provider's contract: bearer check, schema check, two ids, faults, a log."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import statistics
import time
from pathlib import Path

import httpx
import pytest

from batchgen.errors import UsageError
from batchgen.simulator import QUOTA_MESSAGE, Downtime, Faults, FixedWindow, Generations, Latency, ProviderLimits

from .conftest import API_KEY, SAMPLES, read_sheet, spawn

BODY = {"model": "FUZZ-1.0", "title": "t", "tag": "pop", "lyrics": "la", "instrumental": False}
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_rate_limit_answers_429_beyond_it(start_simulator) -> None:
    server = start_simulator(rate_limit=3)
    with httpx.Client() as client:
        codes = [client.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_quota_refuses_every_request_once_spent(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(quota=2))
    with httpx.Client() as client:
        answers = [client.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 429, 429]
    assert answers[2].json() == {"error": {"message": QUOTA_MESSAGE}}
    assert answers[2].headers["Retry-After"] == "3600"
    assert len(server.simulator.accepted) == 2


def test_a_limit_schedule_changes_the_rate_from_each_start_on() -> None:
    limits = ProviderLimits(rate=10, schedule=[(20.0, 5.0), (40.0, 40.0)])
    assert [limits.rate_at(t) for t in (0, 19.9, 20, 39, 40, 1000)] == [10, 10, 5, 5, 40, 40]


def test_unknown_fault_names_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown fault 'boom'"):
        Faults(script=["boom"])


@pytest.mark.slow
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


def test_a_fixed_window_admits_its_count_then_says_when_it_resets() -> None:
    window = FixedWindow(3, 10.0)
    remaining = [window.admit(elapsed, 1000.0)[1]["X-RateLimit-Remaining"] for elapsed in (0.0, 1.0, 2.0)]
    assert remaining == ["2", "1", "0"]
    admitted, headers = window.admit(2.5, 1000.0)
    assert not admitted
    assert headers == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1008",
        "Retry-After": "8",
    }
    assert window.admit(9.8, 1000.0)[1]["Retry-After"] == "1"  # rounded up, never 0
    admitted, headers = window.admit(10.0, 1000.0)
    assert admitted and headers["X-RateLimit-Remaining"] == "2" and "Retry-After" not in headers


def test_a_generation_cap_holds_each_accepted_slot_after_its_answer() -> None:
    generations = Generations(2, hold=1.0)
    assert [generations.take(0.0), generations.take(0.0), generations.take(0.1)] == [True, True, False]
    generations.release(0.2, accepted=True)  # held until 1.2
    generations.release(0.3, accepted=False)  # a refused or failed request frees its slot at once
    assert generations.take(0.3)
    assert not generations.take(1.1)
    assert generations.take(1.2)


def test_an_outage_lasts_from_its_start_to_its_end() -> None:
    outage = Downtime(30.0, 60.0)
    assert [outage.down(t) for t in (29.9, 30.0, 59.9, 60.0)] == [False, True, True, False]


@pytest.mark.parametrize("jitter", ["uniform", "lognormal"])
def test_jittered_latency_keeps_its_mean(jitter: str) -> None:
    latency = Latency(0.1, jitter, seed=4)
    draws = [latency.draw() for _ in range(4000)]
    assert statistics.fmean(draws) == pytest.approx(0.1, rel=0.05)
    assert len(set(draws)) == len(draws)
    if jitter == "uniform":
        assert min(draws) >= 0.05 and max(draws) <= 0.15
    else:
        assert max(draws) > 0.25  # the long tail


def test_an_unknown_jitter_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown jitter 'gauss'; use one of uniform, lognormal"):
        Latency(0.1, "gauss")


@pytest.mark.parametrize(
    "args, message",
    [
        (("--fixed-window", "100"), "'100' is not such as 100/10"),
        (("--fixed-window", "100/0"), "'100/0' is not such as 100/10"),
        (("--outage", "60-30"), "'60-30' is not such as 30-60"),
        (("--latency-jitter", "gauss"), "'gauss' is not one of 'uniform', 'lognormal'"),
    ],
)
def test_simulate_refuses_shapes_that_do_not_parse(cli, args, message) -> None:
    result = cli("simulate", "--port", "0", *args)
    assert result.code == 2 and message in result.err


def post(url: str) -> httpx.Response:
    """One request on a new connection."""
    return httpx.post(f"{url}/riffusion/generate", json=BODY, headers=AUTH)


@pytest.mark.slow
def test_a_fixed_window_answers_429_with_the_seconds_to_its_reset(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(window=FixedWindow(2, 30.0)))
    answers = [post(server.url) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert [answer.headers["X-RateLimit-Remaining"] for answer in answers] == ["1", "0", "0"]
    refused = answers[2]
    assert refused.headers["Retry-After"] in ("29", "30") and refused.headers["X-RateLimit-Limit"] == "2"
    assert int(refused.headers["X-RateLimit-Reset"]) - time.time() == pytest.approx(30, abs=2)
    assert len(server.simulator.accepted) == 2


@pytest.mark.slow
def test_a_generation_cap_refuses_without_retry_after_until_the_hold_ends(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(generations=Generations(1, hold=0.3)))
    first, second = post(server.url), post(server.url)
    assert (first.status_code, second.status_code) == (200, 429)
    assert "Retry-After" not in second.headers
    assert second.json() == {"error": {"message": "Too many generations running"}}
    time.sleep(0.35)
    assert post(server.url).status_code == 200


@pytest.mark.slow
def test_an_outage_answers_503_to_everything_then_heals(start_simulator) -> None:
    server = start_simulator(limits=ProviderLimits(outage=Downtime(0.2, 1.5)))
    started = time.monotonic()
    assert post(server.url).status_code == 200  # the first request: the outage counts from it
    time.sleep(0.3)
    assert [post(server.url).status_code for _ in range(3)] == [503, 503, 503]
    time.sleep(max(0.0, started + 1.6 - time.monotonic()))
    assert post(server.url).status_code == 200
    assert [entry["fault"] for entry in server.simulator.received].count("outage") == 3


@pytest.mark.slow
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


@pytest.mark.slow
def test_mixed_refusals_429_with_retry_after_and_503_can_be_asked_for(start_simulator) -> None:
    server = start_simulator(faults=Faults(rate_429=0.2, rate_5xx=0.1, retry_after=2, seed=5))
    with httpx.Client() as client:
        answers = [client.post(f"{server.url}/riffusion/generate", json=BODY, headers=AUTH) for _ in range(400)]
    codes = [answer.status_code for answer in answers]
    assert 60 <= codes.count(429) <= 100 and 25 <= codes.count(503) <= 55
    assert {answer.headers.get("Retry-After") for answer in answers if answer.status_code == 429} == {"2"}
    assert all("Retry-After" not in answer.headers for answer in answers if answer.status_code == 503)


@pytest.mark.slow
def test_jittered_latency_spreads_the_answers(start_simulator) -> None:
    server = start_simulator(latency_ms=40, jitter="uniform", faults=Faults(seed=2))
    took = []
    for _ in range(20):
        started = time.monotonic()
        post(server.url)
        took.append(time.monotonic() - started)
    assert min(took) >= 0.02 and max(took) - min(took) >= 0.01
