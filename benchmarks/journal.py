"""What the journal and the ledger cost at scale: a large batch beside a bare client sending the same requests.

Every row of batchgen is claimed in the ledger and journaled ``in_flight`` (synced) before its request leaves,
and its ids journaled (synced) when the answer comes; group commit shares each sync among the rows of a batch.
The bare loop does none of that: the ratio is what exactly-once costs. ``O-night`` is what the night's record
adds (every attempt and run event journaled for ``batchgen report``, in the same group commit): the same run with
and without it.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from harness import Figure, child, simulator, simulator_log
from throughput import PEERS, send_all

from batchgen.journal import Journal
from batchgen.journal.store import Attempt, NewRow, done, in_flight
from batchgen.pace import Pace
from batchgen.submit.gate import Gate
from batchgen.submit.keep import Keeper
from batchgen.submit.outcome import Accepted
from batchgen.submit.report import Report

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


class _Collect:
    """What a keeper queues on the group commit, collected instead (the keeper uses nothing else of it)."""

    def __init__(self, journal: Journal) -> None:
        self.journal, self.attempts = journal, list[Attempt]()

    def keep(self, attempt: Attempt | None = None, event: object = None) -> None:
        if attempt is not None:
            self.attempts.append(attempt)


def night_cpu(work: Path) -> tuple[float, float]:
    """CPU seconds the night's record costs for ``ROWS`` requests, in this process (steadier than wall time): the
    keeper's notes (when each request left, its answer), and the inserts, in ``ROWS / 2`` journal transactions of
    two answers and two claims as scenario O's flushes are, against the same transactions without them."""
    rows = [NewRow(f"k{i}", i + 2, i + 2, f"Song {i}", "{}", {}) for i in range(ROWS)]

    async def keep(journal: Journal) -> tuple[float, list[Attempt]]:
        commit, pace, report = _Collect(journal), Pace(clock=time.monotonic), Report()
        keeper = Keeper(commit, Gate(pace, report, None), report)  # type: ignore[arg-type]
        ticket, answer = pace.send(), Accepted(message="", status=200, job_ids=("a", "b"))
        started = time.process_time()
        for record in journal.to_send(journal.latest_run()):
            keeper.leaving(record, ticket)
            keeper.answered(record, answer, LATENCY)
        return time.process_time() - started, commit.attempts

    def write(journal: Journal, attempts: list[Attempt]) -> float:
        started = time.process_time()
        for i in range(0, ROWS, 2):
            changes = [done(f"k{i}", ["a", "b"], 200), done(f"k{i + 1}", ["a", "b"], 200)]
            changes += [in_flight(f"k{(i + 2) % ROWS}"), in_flight(f"k{(i + 3) % ROWS}")]
            journal.apply(changes, attempts=attempts[i : i + 2])
        return time.process_time() - started

    with Journal.open(work / "night_cpu_kept.journal") as journal:
        journal.start_run("catalog.xlsx", rows, [], [])
        noted, attempts = asyncio.run(keep(journal))
        kept = write(journal, attempts)
    with Journal.open(work / "night_cpu_bare.journal") as journal:
        journal.start_run("catalog.xlsx", rows, [], [])
        bare = write(journal, [])
    return noted, kept - bare


def night_cost(work: Path) -> list[Figure]:
    """Scenario O's batchgen run (aiohttp) with and without the night's record, alternated, medians."""
    walls: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    for repeat in range(REPEATS):
        for kept in (True, False) if repeat % 2 == 0 else (False, True):  # ABBA: a drifting load hits both
            with simulator("--latency-ms", str(LATENCY * 1000)) as url:
                name = f"night_{kept}_{repeat}"
                run = send_all(work, ROWS, url, CONCURRENCY, "aiohttp", name, () if kept else (WITHOUT_NIGHT,))
                assert run.code == 0 and len(simulator_log(url)["accepted"]) == ROWS, run.err
            walls[kept].append(run.wall)
            cpus[kept].append(run.cpu)
            print(f"O-night run {repeat + 1}, night kept: {kept}: {run.wall:.2f} s, CPU {run.cpu:.2f} s", flush=True)
    kept, without = statistics.median(walls[True]), statistics.median(walls[False])
    paired = statistics.median(a / b for a, b in zip(walls[True], walls[False], strict=True)) - 1
    cpu = statistics.median(cpus[True]) / statistics.median(cpus[False]) - 1  # steadier than wall on a busy machine
    spread = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(walls[True], walls[False], strict=True))
    noted, inserted = night_cpu(work)
    return [
        Figure(
            f"O {ROWS:,} rows, {LATENCY * 1000:.0f} ms, c={CONCURRENCY}, aiohttp",
            f"wall with every attempt and run event kept / without (median of {REPEATS} each, ABBA; runs: {spread} s)",
            f"{kept:.2f} s / {without:.2f} s = {kept / without - 1:+.1%}; median of the pairs {paired:+.1%};"
            f" CPU {cpu:+.1%}; in-process, the keeper {noted:.2f} s CPU and the inserts {inserted:.2f} s ="
            f" {(noted + inserted) / statistics.median(cpus[False]):+.1%} of a run's CPU",
            f"<= +{NIGHT_TARGET:.0%}",
            kept / without - 1 <= NIGHT_TARGET,
        )
    ]


SCENARIOS = {"O": at_scale, "O-night": night_cost}
