"""Outcome classes: the contract's table, decided from status, body and whether the body was sent."""

from __future__ import annotations

import email.utils

import pytest

from batchgen.redact import redact
from batchgen.submit.outcome import (
    Accepted,
    Ambiguous,
    Fatal,
    Outcome,
    Rejected,
    Retryable,
    classify,
    classify_error,
    parse_retry_after,
    parse_window,
    server_message,
)
from batchgen.submit.tripwire import Tripwire
from batchgen.transport import NoAnswer, NotSent, Response

JOBS = b'{"jobs": [{"id": "a"}, {"id": "b"}]}'


def answer(status: int, body: bytes = b"", **headers: str) -> Response:
    return Response(status, "Reason", {k.lower().replace("_", "-"): v for k, v in headers.items()}, body)


@pytest.mark.parametrize(
    "status, kind",
    [
        (408, Retryable),
        (425, Retryable),
        (429, Retryable),
        (500, Retryable),
        (502, Retryable),
        (503, Retryable),
        (504, Retryable),
        (599, Retryable),
        (400, Rejected),
        (404, Rejected),
        (409, Rejected),
        (413, Rejected),
        (422, Rejected),
        (307, Rejected),
        (401, Fatal),
        (402, Fatal),
        (403, Fatal),
    ],
)
def test_status_classes(status: int, kind: type[Outcome]) -> None:
    outcome = classify(answer(status, b'{"error": {"message": "because"}}'))
    assert type(outcome) is kind
    assert outcome.status == status and outcome.message == f"HTTP {status}: because"


def test_accepted_answers_carry_their_ids() -> None:
    assert classify(answer(200, JOBS)) == Accepted(message="HTTP 200", status=200, job_ids=("a", "b"))


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502</html>",
        b'{"jobs": []}',
        b'{"jobs": [{"id": ""}]}',
        b'{"job": 1}',
        b'{"jobs": [{"id": 5}]}',
        b"\xff\xfe",
    ],
)
def test_a_200_without_jobs_json_is_ambiguous(body: bytes) -> None:
    assert type(classify(answer(200, body))) is Ambiguous


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"error": {"message": "bad tag"}}', "bad tag"),
        (b'{"message": "slow down"}', "slow down"),
        (b'{"detail": "nope"}', "nope"),
        (b'{"error": "plain"}', "plain"),
        (b"x" * 300, "x" * 200),
        (b"", "Reason"),
    ],
)
def test_server_messages(body: bytes, message: str) -> None:
    assert server_message(answer(400, body)) == message


def test_transport_errors_by_whether_the_body_left() -> None:
    assert isinstance(classify_error(NotSent("ConnectError: refused"), 120), Retryable)
    timed_out = classify_error(NoAnswer("no answer", timed_out=True), 1.5)
    assert isinstance(timed_out, Ambiguous) and timed_out.timed_out
    assert timed_out.message == "no answer within 1.5 s; the provider may have created jobs"
    dropped = classify_error(NoAnswer("RemoteProtocolError: closed"), 120)
    assert isinstance(dropped, Ambiguous) and not dropped.timed_out


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("3", now) == 3.0 and parse_retry_after("0.5", now) == 0.5
    assert parse_retry_after("-4", now) == 0.0 and parse_retry_after("999999", now) == 3600.0
    assert parse_retry_after("junk", now) is None and parse_retry_after(None, now) is None
    assert parse_retry_after(email.utils.formatdate(now + 10, usegmt=True), now) == 10.0
    assert parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now) == 0.0
    refused = classify(answer(429, b"", retry_after="7"))
    assert isinstance(refused, Retryable) and refused.retry_after == 7.0


def test_the_key_is_masked_as_a_whole_token() -> None:
    assert redact("Name or service not known", "k") == "Name or service not known"
    assert redact("bad key k given", "k") == "bad key *** given"
    assert redact("Bearer sk-test-5f1c9b7e2a6d,", "sk-test-5f1c9b7e2a6d") == "Bearer ***,"
    assert redact("token=xsk-test-5f1c9b7e2a6d", "sk-test-5f1c9b7e2a6d") == "token=x***"
    assert redact("anything", "") == "anything"


def test_tripwire_same_rejection_on_the_first_answers() -> None:
    wire = Tripwire(concurrency=2, rows=100)  # max(2, 4) = 4 answers
    for _ in range(3):
        wire.rejected(404, "Not found")
        assert wire.holding and wire.trip is None
    wire.rejected(404, "Not found")
    assert wire.trip is not None and (wire.trip.kind, wire.trip.status, wire.trip.count) == ("rejection", 404, 4)


def test_tripwire_a_sheet_smaller_than_the_window_counts_all_its_rows() -> None:
    wire = Tripwire(concurrency=8, rows=3)
    wire.rejected(400, "HTTP 400: lyrics too long")
    wire.rejected(400, "HTTP 400: lyrics too long")
    assert wire.holding and wire.trip is None
    wire.rejected(400, "HTTP 400: lyrics too long")
    assert wire.trip is not None and (wire.trip.status, wire.trip.count) == (400, 3)
    mixed = Tripwire(concurrency=8, rows=3)
    mixed.rejected(400, "bad")
    mixed.answered()
    mixed.rejected(400, "bad")
    mixed.rejected(400, "bad")
    assert mixed.trip is None


def test_tripwire_mixed_answers_release_the_held_rows() -> None:
    wire = Tripwire(concurrency=8, rows=100)
    wire.rejected(400, "bad")
    wire.answered()
    assert not wire.holding and wire.trip is None
    other = Tripwire(concurrency=8, rows=100)
    other.rejected(400, "bad")
    other.rejected(422, "worse")
    assert not other.holding and other.trip is None


def test_tripwire_timeouts_and_ambiguous_streaks() -> None:
    wire = Tripwire(concurrency=4, rows=100)
    for _ in range(4):
        wire.ambiguous(timed_out=True, answered=False, message="timeout")
    assert wire.trip is not None and wire.trip.kind == "timeouts"
    late = Tripwire(concurrency=4, rows=100)
    late.answered()
    for _ in range(7):
        late.ambiguous(timed_out=True, answered=False, message="timeout")
    assert late.trip is None
    late.ambiguous(timed_out=False, answered=False, message="dropped")
    assert late.trip is not None and late.trip.kind == "ambiguous" and late.trip.count == 8


def test_rate_limit_headers_give_what_is_left_and_when_the_window_opens() -> None:
    assert parse_window({"x-ratelimit-remaining": "7", "x-ratelimit-reset": "2.5"}) == (7, 2.5)
    assert parse_window({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000060"}, now=1700000000.0) == (
        0,
        60.0,
    )  # an epoch time, as GitHub sends it
    assert parse_window({"x-ratelimit-remaining": "-3"}) == (0, None)
    assert parse_window({"x-ratelimit-remaining": "many", "x-ratelimit-reset": "nan"}) == (None, None)
    assert parse_window({}) == (None, None)
