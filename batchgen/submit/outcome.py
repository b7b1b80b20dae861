"""What one attempt's answer means: the contract's outcome classes, decided from the status, the body, and
whether the request body had left this machine (which only the transport can say).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from ..transport import NoAnswer, NotSent, Response, TransportError

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
    """Any other 4xx (and 3xx, never followed): the provider read the request and refused it."""


class Fatal(Outcome):
    """401/402/403: no request of this run can succeed."""


class Ambiguous(Outcome):
    """The provider may have created (and billed) jobs, but no job id came back."""

    def __init__(self, message: str, status: int | None = None, timed_out: bool = False) -> None:
        super().__init__(message, status)
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class Accepted:
    """A 200 with job ids."""

    status: int
    job_ids: list[str]


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


def classify(response: Response) -> Accepted:
    """Job ids for an accepted answer; otherwise raise the outcome class of the status."""
    status = response.status
    if 200 <= status < 300:
        return Accepted(status, _job_ids(response))
    message = f"HTTP {status}: {server_message(response)}"
    if status in RETRY_STATUSES or status >= 500:
        raise Retryable(message, status, parse_retry_after(response.headers.get("retry-after")))
    if status in FATAL_STATUSES:
        raise Fatal(message, status)
    raise Rejected(message, status)


def classify_error(error: TransportError, timeout: float) -> Outcome:
    """A request without an HTTP answer: retryable if the body never left, ambiguous once it may have."""
    if isinstance(error, NotSent):
        return Retryable(f"not sent ({error.reason})")
    timed_out = isinstance(error, NoAnswer) and error.timed_out
    what = f"no answer within {timeout:g} s" if timed_out else f"no answer after the request was sent ({error.reason})"
    return Ambiguous(f"{what}; the provider may have created jobs", timed_out=timed_out)


def _job_ids(response: Response) -> list[str]:
    """The ids of a 2xx answer, or :class:`Ambiguous` if the body is not the promised jobs JSON."""
    shown = response.body[:200].decode("utf-8", "replace")
    try:
        jobs = _json(response.body)["jobs"]
        ids = [job["id"] for job in jobs]
    except (KeyError, TypeError):
        raise Ambiguous(
            f"HTTP {response.status} with a body that is not jobs JSON: {shown!r}", response.status
        ) from None
    if not ids or not all(isinstance(i, str) and i.strip() for i in ids):
        raise Ambiguous(f"HTTP {response.status} without job ids: {shown!r}", response.status)
    return [str(i).strip() for i in ids]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def redact(text: str, secret: str) -> str:
    """``text`` with the key masked wherever it stands as a token of its own.

    With the key ``k``, "not known" stays as it is. A key of 12 characters or more cannot occur inside an
    ordinary word by chance, so every occurrence of it is masked.
    """
    if not secret:
        return text
    if len(secret) >= 12:
        return text.replace(secret, "***")
    return re.sub(rf"(?<![A-Za-z0-9_\-.~+/=]){re.escape(secret)}(?![A-Za-z0-9_\-.~+/=])", "***", text)
