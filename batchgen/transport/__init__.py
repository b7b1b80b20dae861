"""The seam between batchgen and an HTTP client: the contract (:mod:`.base`) and its two implementations,
httpx (the default) and aiohttp, each imported only when chosen."""

from __future__ import annotations

from .base import (
    TRANSPORTS,
    NoAnswer,
    NotSent,
    Response,
    SendCancelled,
    Transport,
    TransportError,
    TransportName,
    describe,
    unanswered,
)


def open_transport(name: TransportName, concurrency: int) -> Transport:
    """A transport whose connection pool holds ``concurrency`` connections."""
    if name == "aiohttp":
        from .aiohttp import AiohttpTransport

        return AiohttpTransport(concurrency)
    from .httpx import HttpxTransport

    return HttpxTransport(concurrency)


__all__ = [
    "TRANSPORTS",
    "NoAnswer",
    "NotSent",
    "Response",
    "SendCancelled",
    "Transport",
    "TransportError",
    "TransportName",
    "describe",
    "open_transport",
    "unanswered",
]
