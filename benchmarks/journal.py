"""What the journal and the ledger cost at scale: a large batch beside a bare client sending the same requests.

Every row of batchgen is claimed in the ledger and journaled ``in_flight`` (synced) before its request leaves,
and its ids journaled (synced) when the answer comes; group commit shares each sync among the rows of a batch.
The bare loop does none of that: the ratio is what exactly-once costs. ``O-night`` is what the night's record
adds (every attempt and run event journaled for ``batchgen report``, in the same group commit): the same run with
and without it.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from harness import Figure, child, simulator, simulator_log
from throughput import PEERS, send_all

ROWS, LATENCY, CONCURRENCY = 20_000, 0.02, 64
TARGET = 1.6  # --transport aiohttp against a bare aiohttp loop
REPEATS, NIGHT_TARGET = 5, 0.03  # runs with and without the night's record, alternated; added wall time, medians
# batchgen's command line with the night's record taken out: its keeper notes nothing and queues nothing.
WITHOUT_NIGHT = """
import sys
from batchgen.cli import main
from batchgen.submit.keep import Keeper
Keeper.event = lambda self, *args, **kwargs: None
Keeper.leaving = lambda self, record, ticket: self.gate.pace.clock()
Keeper.answered = Keeper.interrupted = Keeper.pause = lambda self, *args: None
main(sys.argv[1:])
"""


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


def night_cost(work: Path) -> list[Figure]:
    """Scenario O's batchgen run (aiohttp) with and without the night's record, alternated, medians."""
    walls: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    ledgers = os.environ["BATCHGEN_STATE_DIR"]
    for repeat in range(REPEATS):
        for kept in (True, False) if repeat % 2 == 0 else (False, True):  # ABBA: a drifting load hits both
            # A ledger of its own: a simulator on a port an earlier one had is the same provider to the ledger,
            # and the rows it sent would be skipped.
            os.environ["BATCHGEN_STATE_DIR"] = str(work / f"night_state_{kept}_{repeat}")
            with simulator("--latency-ms", str(LATENCY * 1000)) as url:
                name = f"night_{kept}_{repeat}"
                run = send_all(work, ROWS, url, CONCURRENCY, "aiohttp", name, () if kept else (WITHOUT_NIGHT,))
                assert run.code == 0 and len(simulator_log(url)["accepted"]) == ROWS, run.err
            walls[kept].append(run.wall)
            cpus[kept].append(run.cpu)
            print(f"O-night run {repeat + 1}, night kept: {kept}: {run.wall:.2f} s, CPU {run.cpu:.2f} s", flush=True)
    os.environ["BATCHGEN_STATE_DIR"] = ledgers
    kept, without = statistics.median(walls[True]), statistics.median(walls[False])
    paired = statistics.median(a / b for a, b in zip(walls[True], walls[False], strict=True)) - 1
    cpu = statistics.median(cpus[True]) / statistics.median(cpus[False]) - 1  # steadier than wall on a busy machine
    spread = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(walls[True], walls[False], strict=True))
    return [
        Figure(
            f"O {ROWS:,} rows, {LATENCY * 1000:.0f} ms, c={CONCURRENCY}, aiohttp",
            f"wall with every attempt and run event journaled / without (median of {REPEATS} each; runs: {spread} s)",
            f"{kept:.2f} s / {without:.2f} s = {kept / without - 1:+.1%}; median of the pairs {paired:+.1%};"
            f" CPU {cpu:+.1%}",
            f"<= +{NIGHT_TARGET:.0%}",
            kept / without - 1 <= NIGHT_TARGET,
        )
    ]


SCENARIOS = {"O": at_scale, "O-night": night_cost}
