"""What one attempt's answer means: the contract's outcome classes, decided from the status, the body, and
whether the request body had left this machine (which only the transport can say).
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..transport import NoAnswer, NotSent, Response, TransportError

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
FATAL_STATUSES = frozenset({401, 402, 403})
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one attempt ended: a plain value. Each subclass is an outcome class of the contract; what follows
    from it (the row's state, a retry, a stop) is the :class:`~batchgen.submit.settle.Settler`'s call."""

    message: str = ""
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted(Outcome):
    """A 2xx with job ids."""

    job_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Retryable(Outcome):
    """Refused (408/425/429/5xx) or never sent (connect error): safe to send again, not before ``retry_after``."""

    retry_after: float | None = None

    @property
    def answered(self) -> bool:
        return self.status is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected(Outcome):
    """Any other 4xx (and 3xx, never followed): the provider read the request and refused it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fatal(Outcome):
    """401/402/403: no request of this run can succeed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ambiguous(Outcome):
    """The provider may have created (and billed) jobs, but no job id came back."""

    timed_out: bool = False


class TryAgain(Exception):
    """Raised in one place, once a retryable outcome is journaled, so that tenacity sends the row again."""

    def __init__(self, outcome: Retryable) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After in seconds, from either form (delta-seconds or an HTTP date), capped at an hour."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_window(headers: Mapping[str, str], now: float | None = None) -> tuple[int | None, float | None]:
    """``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds from now; an epoch time is read as one),
    or None for each that is missing or not a number."""
    remaining = _number(headers.get("x-ratelimit-remaining"))
    reset = _number(headers.get("x-ratelimit-reset"))
    if reset is not None and reset > 1e9:  # seconds since the epoch, as GitHub and others send it
        reset -= time.time() if now is None else now
    return (
        None if remaining is None else max(int(remaining), 0),
        None if reset is None else min(max(reset, 0.0), MAX_RETRY_AFTER),
    )


def _number(value: str | None) -> float | None:
    try:
        number = float(value.strip()) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def server_message(response: Response) -> str:
    """What the server said: ``error.message``, ``message`` or ``detail``, else its first 200 characters."""
    body = _json(response.body)
    if isinstance(body, dict):
        error = body.get("error")
        for found in (
            error.get("message") if isinstance(error, dict) else error,
            body.get("message"),
            body.get("detail"),
        ):
            if isinstance(found, str) and found.strip():
                return found.strip()[:500]
    text = response.body.decode("utf-8", "replace").strip()[:200]
    return text or response.reason or "no message"


def classify(response: Response) -> Outcome:
    """The outcome class of an HTTP answer: its status, and for a 2xx whether the body holds job ids."""
    status = response.status
    if 200 <= status < 300:
        return _jobs(response)
    message = f"HTTP {status}: {server_message(response)}"
    if status in RETRY_STATUSES or status >= 500:
        return Retryable(
            message=message, status=status, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    if status in FATAL_STATUSES:
        return Fatal(message=message, status=status)
    return Rejected(message=message, status=status)


def classify_error(error: TransportError, timeout: float) -> Outcome:
    """A request without an HTTP answer: retryable if the body never left, ambiguous once it may have."""
    if isinstance(error, NotSent):
        return Retryable(message=f"not sent ({error.reason})")
    timed_out = isinstance(error, NoAnswer) and error.timed_out
    what = f"no answer within {timeout:g} s" if timed_out else f"no answer after the request was sent ({error.reason})"
    return Ambiguous(message=f"{what}; the provider may have created jobs", timed_out=timed_out)


def _jobs(response: Response) -> Outcome:
    """The ids of a 2xx answer, or :class:`Ambiguous` if the body is not the promised jobs JSON."""
    shown = response.body[:200].decode("utf-8", "replace")
    status = response.status
    try:
        ids = [job["id"] for job in _json(response.body)["jobs"]]
    except (KeyError, TypeError):
        return Ambiguous(message=f"HTTP {status} with a body that is not jobs JSON: {shown!r}", status=status)
    if not ids or not all(isinstance(i, str) and i.strip() for i in ids):
        return Ambiguous(message=f"HTTP {status} without job ids: {shown!r}", status=status)
    return Accepted(message=f"HTTP {status}", status=status, job_ids=tuple(str(i).strip() for i in ids))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
