"""What one attempt's answer means: the contract's outcome classes, decided from the status, the body and
whether the request body had left this machine.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
FATAL_STATUSES = frozenset({401, 402, 403})
MAX_RETRY_AFTER = 3600.0


class Outcome(Exception):
    """How one attempt ended, when it did not end with job ids. Subclasses name the outcome class."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class Retryable(Outcome):
    """Refused (408/425/429/5xx) or never sent (connect error): safe to send again."""

    @property
    def answered(self) -> bool:
        return self.status is not None


class Rejected(Outcome):
    """Any other 4xx: the provider read the request and refused it; sending it again would not help."""


class Fatal(Outcome):
    """401/402/403: no request of this run can succeed."""


class Ambiguous(Outcome):
    """The provider may have created (and billed) jobs, but no job id came back."""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from either form (delta-seconds or an HTTP date), capped at an hour."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, read whole: the status, the Retry-After header and the body."""

    status: int
    reason: str
    retry_after: str | None
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def server_message(response: Answer) -> str:
    """What the server said: ``error.message``, ``message`` or ``detail``, else its first 200 characters."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        for found in (error.get("message") if isinstance(error, dict) else error, body.get("message"), body.get("detail")):
            if isinstance(found, str) and found.strip():
                return found.strip()[:500]
    text = response.text.strip()[:200]
    return text or response.reason or "no message"


def job_ids(response: Answer) -> list[str]:
    """The ids of a 200 answer, or :class:`Ambiguous` if the body is not the promised jobs JSON."""
    try:
        jobs = response.json()["jobs"]
        ids = [job["id"] for job in jobs]
    except (ValueError, KeyError, TypeError):
        raise Ambiguous(f"HTTP {response.status} with a body that is not jobs JSON: {response.text[:200]!r}", response.status) from None
    if not ids or not all(isinstance(i, str) and i.strip() for i in ids):
        raise Ambiguous(f"HTTP {response.status} without job ids: {response.text[:200]!r}", response.status)
    return ids


def classify(response: Answer) -> list[str]:
    """Job ids for an accepted answer; otherwise raise the outcome class of the status."""
    status = response.status
    if 200 <= status < 300:
        return job_ids(response)
    message = f"HTTP {status}: {server_message(response)}"
    if status in RETRY_STATUSES or status >= 500:
        raise Retryable(message, status, parse_retry_after(response.retry_after))
    if status in FATAL_STATUSES:
        raise Fatal(message, status)
    raise Rejected(message, status)


def classify_error(exc: BaseException, body_sent: bool) -> Outcome:
    """A transport failure: retryable if the body never left, ambiguous once the provider may have it."""
    what = type(exc).__name__ if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) else f"{type(exc).__name__}: {exc}"
    if not body_sent:
        return Retryable(f"not sent ({what})")
    return Ambiguous(f"no answer after the request was sent ({what}); the provider may have created jobs")
