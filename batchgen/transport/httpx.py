"""The default transport: one ``httpx.AsyncClient`` whose keep-alive connections number the concurrency.

Whether the body left is read from httpx's ``trace`` extension (httpcore's ``send_request_body.complete``).

httpcore 1.0's pool offers a freed connection to every queued request, so its CPU cost per request grows with
the pool's size (encode/httpx#3215; the figures are in ``docs/benchmarks.md``, F). So the client's transport
(httpx's seam for this) spreads the connections over pools of at most :data:`POOL_SIZE`, each request going to
the least busy one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from .base import Response, SendCancelled, unanswered

_BODY_SENT = frozenset({"http11.send_request_body.complete", "http2.send_request_body.complete"})
POOL_SIZE = 16


class _Pools(httpx.AsyncBaseTransport):
    """``concurrency`` keep-alive connections in pools of at most :data:`POOL_SIZE`; a request holds its pool
    until its response is closed."""

    def __init__(self, concurrency: int) -> None:
        count = math.ceil(concurrency / POOL_SIZE)
        sizes = [concurrency // count + (index < concurrency % count) for index in range(count)]
        self._pools = [
            httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=size, max_keepalive_connections=size))
            for size in sizes
        ]
        self._busy = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._busy.index(min(self._busy))
        self._busy[pool] += 1
        try:
            response = await self._pools[pool].handle_async_request(request)
        except BaseException:
            self._busy[pool] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Releasing(response.stream, self._busy, pool)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Releasing(httpx.AsyncByteStream):
    """A response body that gives its pool back once, when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, busy: list[int], pool: int) -> None:
        self._stream = stream
        self._busy = busy
        self._pool = pool
        self._open = True

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._open:
                self._open = False
                self._busy[self._pool] -= 1


class HttpxTransport:
    """``Transport`` over httpx."""

    def __init__(self, concurrency: int) -> None:
        self._client = httpx.AsyncClient(transport=_Pools(concurrency), follow_redirects=False, timeout=None)

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
            raise unanswered(exc, sent, timed_out=True) from None
        except (httpx.HTTPError, OSError) as exc:
            raise unanswered(exc, sent) from None
        return Response(
            answer.status_code, answer.reason_phrase, {k.lower(): v for k, v in answer.headers.items()}, answer.content
        )

    async def aclose(self) -> None:
        await self._client.aclose()
