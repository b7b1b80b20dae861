"""What batchgen is compared with: bare client loops (the floor) and a cookbook-style parallel processor.

The peer follows the published description of OpenAI's cookbook ``api_request_parallel_processor.py``: a main
loop hands requests out under a requests-per-minute budget, each request is its own task (no bound on those
in flight), any failure puts the request back on a retry queue until its attempts run out, and an error body
whose ``error.code`` is ``"429"`` pauses the whole loop for 15 s (the simulator's 429 body has no code, so, as
the cookbook reads it, it never pauses). It keeps no record of what was sent, so it retries requests the
provider may have processed: the simulator's log counts what that bills twice.

Run as ``python benchmarks/peers.py bare URL ROWS CONCURRENCY CLIENT`` or ``... cookbook URL ROWS``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable

from harness import KEY, lyrics

BODY = {"model": "FUZZ-1.1", "title": "t", "tag": "pop", "lyrics": lyrics(random.Random(1)), "instrumental": False}
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


async def bare(url: str, rows: int, concurrency: int, client: str) -> None:
    """The floor: a loop that only POSTs the same body at the same concurrency, with httpx or aiohttp."""
    body = json.dumps(BODY)
    remaining = list(range(rows))

    async def worker(post: Callable[[], Awaitable[None]]) -> None:
        while remaining:
            remaining.pop()
            await post()

    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, headers=HEADERS) as session:

            async def post_httpx() -> None:
                (await session.post(f"{url}/riffusion/generate", content=body)).raise_for_status()

            await asyncio.gather(*(worker(post_httpx) for _ in range(concurrency)))
        return
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), headers=HEADERS) as session:

        async def post_aiohttp() -> None:
            async with session.post(f"{url}/riffusion/generate", data=body) as answer:
                answer.raise_for_status()
                await answer.read()

        await asyncio.gather(*(worker(post_aiohttp) for _ in range(concurrency)))


async def cookbook(url: str, rows: int, per_minute: float = 60_000.0, attempts: int = 5) -> None:
    """The cookbook's loop, as described above (one request per row, keyed so the simulator can count)."""
    import aiohttp

    retry: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    fresh = iter(range(rows))
    capacity, updated, last_limit, in_progress = per_minute, time.time(), 0.0, 0
    pending: tuple[int, int] | None = None
    tasks: set[asyncio.Task[None]] = set()

    async with aiohttp.ClientSession() as session:

        async def call(row: int, left: int) -> None:
            nonlocal in_progress, last_limit
            failed = False
            try:
                headers = {**HEADERS, "Idempotency-Key": f"row-{row}"}
                async with session.post(
                    f"{url}/riffusion/generate", json={**BODY, "title": f"S{row}"}, headers=headers
                ) as answer:
                    data = await answer.json(content_type=None)
                if "error" in data:
                    failed = True
                    if isinstance(data["error"], dict) and data["error"].get("code") == "429":
                        last_limit = time.time()
            except Exception:  # the cookbook retries whatever went wrong
                failed = True
            if failed and left:
                retry.put_nowait((row, left))
            else:
                in_progress -= 1

        while True:
            if pending is None:
                if not retry.empty():
                    pending = retry.get_nowait()
                else:
                    row = next(fresh, None)
                    if row is not None:
                        pending, in_progress = (row, attempts), in_progress + 1
            now = time.time()
            capacity, updated = min(capacity + per_minute * (now - updated) / 60, per_minute), now
            if pending is not None and capacity >= 1:
                capacity -= 1
                task = asyncio.create_task(call(pending[0], pending[1] - 1))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                pending = None
            if in_progress == 0:
                break
            await asyncio.sleep(0.001)
            cooling = 15 - (time.time() - last_limit)
            if cooling > 0:
                await asyncio.sleep(cooling)


if __name__ == "__main__":
    kind, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "bare":
        asyncio.run(bare(target, count, int(sys.argv[4]), sys.argv[5]))
    else:
        asyncio.run(cookbook(target, count))
