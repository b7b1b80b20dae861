"""The fast layer of a run: dispatch, settlement and the gate driven through the scripted transport on a fake
clock (no socket, no sleeping), one test per outcome class of the contract."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from batchgen.clock import Clock
from batchgen.errors import FatalAPIError, NoAnswerError, UnreachableError
from batchgen.journal import Journal, NewRow, row_keys
from batchgen.ledger import Batch, Ledger
from batchgen.ledger.sqlite import SqliteLedger
from batchgen.settings import Limits, Provider, Settings
from batchgen.submit import Dispatcher, Report
from batchgen.transport import NoAnswer, NotSent, Response
from batchgen.transport.scripted import Request, ScriptedTransport, answer

from ..support.clock import FakeClock

KEY = "sk-fast-layer-0123456789"
JOBS = {"jobs": [{"id": "job-1"}, {"id": "job-2"}]}


def dispatch(
    tmp_path: Path,
    handler: Callable[[Request], Response],
    rows: int = 3,
    ledger: Ledger | None = None,
    **limits: int,
) -> tuple[Report, dict[str, str], Journal, ScriptedTransport, FakeClock]:
    payloads = [{"model": "FUZZ-1.0", "title": f"Song {i}", "tag": "pop", "lyrics": "la"} for i in range(rows)]
    journal = Journal.open(tmp_path / "out.xlsx.journal")
    new = [
        NewRow(key, i + 2, i + 2, p["title"], json.dumps(p), {})
        for i, (key, p) in enumerate(zip(row_keys(payloads), payloads, strict=True))
    ]
    run = journal.start_run("in.csv", new, [], [])
    provider = Provider(base_url="https://api.example.com", api_key=SecretStr(KEY), timeout=5.0)
    settings = Settings(provider=provider, limits=Limits(**{"concurrency": 2, "max_attempts": 3, **limits}))
    transport, clock = ScriptedTransport(handler), FakeClock()
    dispatcher = Dispatcher(journal, settings, ledger=ledger, transport=transport, clock=Clock(clock.now, clock.sleep))
    report = asyncio.run(dispatcher.run(journal.to_send(run)))
    return report, journal.states(), journal, transport, clock


def test_accepted_rows_are_done_with_their_ids(tmp_path: Path) -> None:
    report, states, journal, transport, _ = dispatch(tmp_path, lambda request: answer(200, JOBS))
    assert set(states.values()) == {"done"} and report.requests == 3 and report.error is None
    assert all(record.job_ids == ["job-1", "job-2"] for record in journal.records())
    sent = transport.requests[0]
    assert sent.url == "https://api.example.com/riffusion/generate"
    assert sent.headers["Authorization"] == f"Bearer {KEY}" and sent.headers["Idempotency-Key"] in states
    assert sent.json["title"].startswith("Song")


def test_a_refusal_is_retried_after_its_retry_after(tmp_path: Path) -> None:
    seen: dict[str, int] = {}

    def handler(request: Request) -> Response:
        seen[request.headers["Idempotency-Key"]] = seen.get(request.headers["Idempotency-Key"], 0) + 1
        if seen[request.headers["Idempotency-Key"]] == 1:
            return answer(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"})
        return answer(200, JOBS)

    report, states, journal, _, clock = dispatch(tmp_path, handler)
    assert set(states.values()) == {"done"} and report.retries == 3
    assert all(record.attempts == 2 for record in journal.records())
    assert max(clock.slept) >= 7.0  # each row waited out its Retry-After, on the fake clock


def test_a_request_that_never_left_is_sent_again(tmp_path: Path) -> None:
    attempts: list[str] = []

    def handler(request: Request) -> Response:
        attempts.append(request.headers["Idempotency-Key"])
        if attempts.count(request.headers["Idempotency-Key"]) == 1 and len(attempts) > 1:
            raise NotSent("ConnectError: connection refused")
        return answer(200, JOBS)

    report, states, *_ = dispatch(tmp_path, handler)
    assert set(states.values()) == {"done"} and report.retries == 2


def test_a_rejection_fails_its_row_with_the_server_message(tmp_path: Path) -> None:
    def handler(request: Request) -> Response:
        if request.json["title"] == "Song 1":
            return answer(422, {"detail": "lyrics too long"})
        return answer(200, JOBS)

    report, states, journal, *_ = dispatch(tmp_path, handler)
    failed = [record for record in journal.records() if record.state == "failed"]
    assert [(r.title, r.http_status, r.message) for r in failed] == [("Song 1", 422, "HTTP 422: lyrics too long")]
    assert sorted(states.values()) == ["done", "done", "failed"] and report.error is None


def test_a_fatal_answer_stops_the_run_and_leaves_rows_pending(tmp_path: Path) -> None:
    report, states, *_ = dispatch(tmp_path, lambda request: answer(401, {"message": "bad key"}), rows=6)
    assert isinstance(report.error, FatalAPIError) and report.error.status == 401
    assert set(states.values()) == {"pending"} and report.requests <= 2  # no new request after the first answers


@pytest.mark.parametrize(
    "fault",
    [NoAnswer("RemoteProtocolError: closed after the body"), answer(200, b"<html>oops</html>")],
    ids=["dropped", "malformed"],
)
def test_an_ambiguous_end_leaves_the_row_unknown_and_never_resends_it(tmp_path: Path, fault: object) -> None:
    def handler(request: Request) -> Response:
        if request.json["title"] == "Song 0":
            if isinstance(fault, Exception):
                raise fault
            assert isinstance(fault, Response)
            return fault
        return answer(200, JOBS)

    report, _, journal, transport, _ = dispatch(tmp_path, handler)
    unknown = [record.title for record in journal.records() if record.state == "unknown"]
    assert unknown == ["Song 0"] and len(transport.requests) == 3 and report.retries == 0


def test_no_request_ever_answered_is_unreachable(tmp_path: Path) -> None:
    def handler(request: Request) -> Response:
        raise NotSent("ConnectError: Name or service not known")

    report, states, *_ = dispatch(tmp_path, handler)
    assert isinstance(report.error, UnreachableError) and "cannot reach api.example.com" in report.error.message
    assert set(states.values()) == {"pending"}


def test_refused_on_every_attempt_fails_the_row_as_retryable(tmp_path: Path) -> None:
    def handler(request: Request) -> Response:
        if request.json["title"] == "Song 2":
            return answer(503, {"message": "busy"})
        return answer(200, JOBS)

    report, _, journal, transport, _ = dispatch(tmp_path, handler, max_attempts=4)
    assert report.retries == 3 and report.error is None  # sent again 3 times: its last refusal is not retried
    (failed,) = [record for record in journal.records() if record.state == "failed"]
    assert failed.retryable and failed.message == "HTTP 503: busy (after 4 attempts)"
    assert sum(r.json["title"] == "Song 2" for r in transport.requests) == 4


def test_the_same_rejection_on_every_first_answer_stops_with_rows_pending(tmp_path: Path) -> None:
    report, states, *_ = dispatch(tmp_path, lambda request: answer(404, {"message": "no route"}), rows=8)
    assert isinstance(report.error, FatalAPIError) and "the first 4 answers were all the same rejection" in str(
        report.error
    )
    assert set(states.values()) == {"pending"}


def test_every_first_request_timing_out_stops_with_those_rows_unknown(tmp_path: Path) -> None:
    def handler(request: Request) -> Response:
        raise NoAnswer("no answer within the time limit", timed_out=True)

    report, states, *_ = dispatch(tmp_path, handler, rows=8)
    assert isinstance(report.error, NoAnswerError)
    unknown = sum(state == "unknown" for state in states.values())
    assert unknown == report.error.unknown >= 4 and "pending" in states.values()


def test_max_requests_is_a_budget(tmp_path: Path) -> None:
    report, states, *_ = dispatch(tmp_path, lambda request: answer(200, JOBS), rows=5, max_requests=2)
    assert report.requests == 2 and sorted(states.values()) == ["done", "done", "pending", "pending", "pending"]
    assert report.stopped == "`max_requests` 2 reached"


def test_a_row_another_output_holds_is_skipped_and_not_counted_as_a_request(tmp_path: Path) -> None:
    first = {"model": "FUZZ-1.0", "title": "Song 0", "tag": "pop", "lyrics": "la"}
    elsewhere = SqliteLedger(tmp_path / "state", "https://api.example.com", "/elsewhere.xlsx")
    elsewhere.write(Batch(row_keys([first]), at="2026-11-29T04:12:00"))
    ledger = SqliteLedger(tmp_path / "state", "https://api.example.com", "/out.xlsx")
    report, states, journal, transport, _ = dispatch(tmp_path, lambda request: answer(200, JOBS), 2, ledger=ledger)
    assert report.requests == 1 == len(transport.requests) and report.outcomes["skipped"] == 1
    (left,) = journal.left_out()
    assert left.state == "skipped" and "/elsewhere.xlsx" in left.message
    assert sorted(states.values()) == ["done", "pending"]
