"""The default transport: one ``httpx.AsyncClient`` with a keep-alive pool sized to the concurrency.

Whether the body left is read from httpx's ``trace`` extension (httpcore's ``send_request_body.complete``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from . import NoAnswer, NotSent, Response, SendCancelled, describe

_BODY_SENT = frozenset({"http11.send_request_body.complete", "http2.send_request_body.complete"})


class HttpxTransport:
    """``Transport`` over httpx."""

    def __init__(self, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.AsyncClient(limits=limits, follow_redirects=False, timeout=None)

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout: float, connect_timeout: float
    ) -> Response:
        sent = False

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            nonlocal sent
            sent = sent or event in _BODY_SENT

        try:
            async with asyncio.timeout(timeout):
                answer = await self._client.post(
                    url,
                    content=body,
                    headers=dict(headers),
                    extensions={"trace": trace},
                    timeout=httpx.Timeout(None, connect=connect_timeout),
                )
        except asyncio.CancelledError:
            raise SendCancelled(sent) from None
        except (TimeoutError, httpx.TimeoutException) as exc:
            if not sent:
                raise NotSent(f"no connection within the time limit ({describe(exc)})") from None
            raise NoAnswer("no answer within the time limit", timed_out=True) from None
        except (httpx.HTTPError, OSError) as exc:
            if not sent:
                raise NotSent(describe(exc)) from None
            raise NoAnswer(describe(exc)) from None
        return Response(
            answer.status_code, answer.reason_phrase, {k.lower(): v for k, v in answer.headers.items()}, answer.content
        )

    async def aclose(self) -> None:
        await self._client.aclose()
