"""The simulator's limit shapes and fault settings, each on its own clock; its command's refusals."""

from __future__ import annotations

import statistics

import httpx
import pytest

from batchgen.errors import UsageError
from batchgen.simulator import Downtime, Faults, FixedWindow, Generations, Latency, ProviderLimits, origin

from ..support.runs import API_KEY

BODY = {"model": "FUZZ-1.0", "title": "t", "tag": "pop", "lyrics": "la", "instrumental": False}
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_a_limit_schedule_changes_the_rate_from_each_start_on() -> None:
    limits = ProviderLimits(rate=10, schedule=[(20.0, 5.0), (40.0, 40.0)])
    assert [limits.rate_at(t) for t in (0, 19.9, 20, 39, 40, 1000)] == [10, 10, 5, 5, 40, 40]


def test_unknown_fault_names_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown fault 'boom'"):
        Faults(script=["boom"])


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


def test_the_simulators_url_puts_an_ipv6_address_in_brackets() -> None:
    """``--host ::1`` printed ``http://::1:8787``, which no client takes."""
    assert origin("::1", 8787) == "http://[::1]:8787"
    assert origin("127.0.0.1", 8787) == "http://127.0.0.1:8787"
