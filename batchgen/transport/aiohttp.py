"""The transport for hundreds of requests in flight: aiohttp's client costs less CPU per request.

Whether the body left is read from aiohttp's request tracing (``on_request_chunk_sent``). Proxy settings of
the environment are not read (``trust_env`` off): aiohttp would then look up ``~/.netrc`` on a thread for every
request, which cost more CPU than the request itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace

import aiohttp

from .base import Response, SendCancelled, unanswered


class _Progress:
    """Filled in by the trace hook: has the body left this machine?"""

    body_sent = False


async def _chunk_sent(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestChunkSentParams
) -> None:
    if isinstance(context.trace_request_ctx, _Progress):
        context.trace_request_ctx.body_sent = True


class AiohttpTransport:
    """``Transport`` over aiohttp; the session is made on first use, inside the running event loop."""

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        tracing = aiohttp.TraceConfig()
        tracing.on_request_chunk_sent.append(_chunk_sent)
        connector = aiohttp.TCPConnector(limit=self._concurrency, limit_per_host=self._concurrency)
        self._session = aiohttp.ClientSession(connector=connector, trace_configs=[tracing])
        return self._session

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, *, timeout: float, connect_timeout: float
    ) -> Response:
        session = self._session or self._open()
        progress = _Progress()
        limits = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)
        try:
            async with asyncio.timeout(timeout):
                async with session.post(
                    url,
                    data=body,
                    headers=dict(headers),
                    allow_redirects=False,
                    timeout=limits,
                    trace_request_ctx=progress,
                ) as answer:
                    content = await answer.read()
                    return Response(
                        answer.status, answer.reason or "", {k.lower(): v for k, v in answer.headers.items()}, content
                    )
        except asyncio.CancelledError:
            raise SendCancelled(progress.body_sent) from None
        except TimeoutError as exc:
            raise unanswered(exc, progress.body_sent, timed_out=True) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise unanswered(exc, progress.body_sent) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
