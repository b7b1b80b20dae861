"""A transport that answers from a script, in memory: the fast test layer's provider (httpx's ``MockTransport``).

``ScriptedTransport(handler)`` calls ``handler(request)`` for each request: it returns a :class:`Response`, or
raises :class:`NotSent` / :class:`NoAnswer` as a real client would. No socket is opened and no time passes,
so every rule of dispatch, settlement and pace runs in milliseconds on a fake clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import Response


@dataclass(frozen=True, slots=True)
class Request:
    """What was sent: the URL, the headers and the body, decoded for the handler's convenience."""

    url: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Request], Response]


@dataclass(slots=True)
class ScriptedTransport:
    """Answers with ``handler``; ``requests`` keeps every request it was given, in order."""

    handler: Handler
    requests: list[Request] = field(default_factory=list)

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout: float, connect_timeout: float
    ) -> Response:
        request = Request(url, dict(headers), body)
        self.requests.append(request)
        await asyncio.sleep(0)  # a turn of the loop, as a real request takes: others run meanwhile
        return self.handler(request)

    async def aclose(self) -> None:
        return None


def answer(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Response:
    """A response with a JSON ``body`` (or raw bytes), for handlers."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return Response(status, "", {name.lower(): value for name, value in (headers or {}).items()}, content)
