"""The default transport: ``httpx.AsyncClient`` keep-alive pools that together hold ``concurrency`` connections.

Whether the body left is read from httpx's ``trace`` extension (httpcore's ``send_request_body.complete``).

httpcore 1.0's pool offers a freed connection to every queued request, so its CPU cost per request grows with
the pool's size and collapses past about 40 connections (7 ms per request at 64, 134 requests/s where the
provider allowed 1,280; encode/httpx#3215). Pools of at most ``POOL_SIZE`` connections, each request going to
the least busy one, keep it near 0.7 ms at any concurrency.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import httpx

from . import NoAnswer, NotSent, Response, SendCancelled, describe

_BODY_SENT = frozenset({"http11.send_request_body.complete", "http2.send_request_body.complete"})
POOL_SIZE = 16


class HttpxTransport:
    """``Transport`` over httpx."""

    def __init__(self, concurrency: int) -> None:
        pools = math.ceil(concurrency / POOL_SIZE)
        sizes = [concurrency // pools + (index < concurrency % pools) for index in range(pools)]
        self._clients = [
            httpx.AsyncClient(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                follow_redirects=False,
                timeout=None,
            )
            for size in sizes
        ]
        self._busy = [0] * pools

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout: float, connect_timeout: float
    ) -> Response:
        sent = False

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            nonlocal sent
            sent = sent or event in _BODY_SENT

        pool = self._busy.index(min(self._busy))
        self._busy[pool] += 1
        try:
            async with asyncio.timeout(timeout):
                answer = await self._clients[pool].post(
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
        finally:
            self._busy[pool] -= 1
        return Response(
            answer.status_code, answer.reason_phrase, {k.lower(): v for k, v in answer.headers.items()}, answer.content
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
