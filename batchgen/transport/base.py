"""The seam between batchgen and an HTTP client, as small as httpx's own transports.

One async method takes plain values and returns plain values, or raises one of three exceptions that say
whether the request body left this machine. That, and nothing else, decides between "send it again" and
"the provider may have created (and billed) jobs", so each implementation learns it from its client's own
signal (httpx's ``trace`` extension, aiohttp's request tracing), never by guessing from an exception's type.

The contract both implementations are tested against (``tests/e2e/test_transport.py``):

``await transport.send(url, headers, body, timeout=..., connect_timeout=...)``

* POSTs ``body`` to ``url`` with ``headers``, on a pooled keep-alive connection; never follows a redirect.
* Returns a :class:`Response` when an HTTP answer came back whole, whatever its status.
* Raises :class:`NotSent` when the body did not leave this machine: DNS failure, connection refused or
  reset while connecting, connect timeout (``connect_timeout``), no pooled connection within ``timeout``.
* Raises :class:`NoAnswer` when the body was sent but no whole answer came back: the connection closed or was
  reset, the answer was cut short, or ``timeout`` (the whole request) ran out (``timed_out``).
* When the calling task is cancelled, raises :class:`SendCancelled` (a ``CancelledError``) with ``body_sent``.
* Exception messages never contain the headers (the API key is in one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

TransportName = Literal["httpx", "aiohttp"]
TRANSPORTS: tuple[TransportName, ...] = ("httpx", "aiohttp")


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer read whole. Header names are lower case."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class TransportError(Exception):
    """A request that got no HTTP answer; ``reason`` says what happened, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotSent(TransportError):
    """The body never left this machine: sending it again cannot create a job twice."""


class NoAnswer(TransportError):
    """The body was sent, but no whole answer came back: the provider may have processed it."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class SendCancelled(asyncio.CancelledError):
    """The caller cancelled the request; ``body_sent`` says whether the body had left this machine."""

    def __init__(self, body_sent: bool) -> None:
        super().__init__("cancelled after the body was sent" if body_sent else "cancelled before the body was sent")
        self.body_sent = body_sent


class Transport(Protocol):
    """What the dispatcher needs from an HTTP client; see the module docstring for the contract."""

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout: float, connect_timeout: float
    ) -> Response: ...

    async def aclose(self) -> None: ...


def unanswered(exc: BaseException, body_sent: bool, timed_out: bool = False) -> TransportError:
    """What a request that ended in ``exc`` without an answer was: :class:`NotSent` or :class:`NoAnswer`."""
    if not body_sent:
        return NotSent(f"no connection within the time limit ({describe(exc)})" if timed_out else describe(exc))
    return NoAnswer("no answer within the time limit" if timed_out else describe(exc), timed_out=timed_out)


def describe(exc: BaseException) -> str:
    """An exception as one short line: its type, and its message when it has one."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
