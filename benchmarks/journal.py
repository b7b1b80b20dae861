"""What the journal and the ledger cost at scale: a large batch beside a bare client sending the same requests.

Every row of batchgen is claimed in the ledger and journaled ``in_flight`` (synced) before its request leaves,
and its ids journaled (synced) when the answer comes; group commit shares each sync among the rows of a batch.
The bare loop does none of that: the ratio is what exactly-once costs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import Figure, child, simulator, simulator_log
from throughput import PEERS, send_all

ROWS, LATENCY, CONCURRENCY = 20_000, 0.02, 64
TARGET = 1.6  # --transport aiohttp against a bare aiohttp loop


def at_scale(work: Path) -> list[Figure]:
    """20,000 rows, 20 ms, 64 in flight: bare aiohttp, then batchgen with each transport."""
    with simulator("--latency-ms", str(LATENCY * 1000)) as url:
        bare = child([sys.executable, PEERS, "bare", url, str(ROWS), str(CONCURRENCY), "aiohttp"])
    figures = [
        Figure(
            f"O {ROWS:,} rows, {LATENCY * 1000:.0f} ms, c={CONCURRENCY}",
            "bare aiohttp loop",
            f"{bare.wall:.2f} s, {bare.cpu / ROWS * 1000:.2f} ms CPU per row",
            "-",
            bare.code == 0,
        )
    ]
    for transport in ("aiohttp", "httpx"):
        with simulator("--latency-ms", str(LATENCY * 1000)) as url:
            run = send_all(work, ROWS, url, CONCURRENCY, transport, f"scale_{transport}")
            accepted = len(simulator_log(url)["accepted"])
        ratio = run.wall / bare.wall
        target = TARGET if transport == "aiohttp" else None
        figures.append(
            Figure(
                f"O {ROWS:,} rows, {LATENCY * 1000:.0f} ms, c={CONCURRENCY}",
                f"batchgen --transport {transport} (journal, ledger, output) / bare aiohttp",
                f"{run.wall:.2f} s = {ratio:.2f}x, {run.cpu / ROWS * 1000:.2f} ms CPU per row",
                f"<= {target}x" if target else "reported",
                (target is None or ratio <= target) and accepted == ROWS and run.code == 0,
            )
        )
    return figures


SCENARIOS = {"O": at_scale}
