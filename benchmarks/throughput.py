"""How close to the provider's own pace a batch runs, what each transport costs, and batchgen's fixed costs."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness import (
    KEY,
    Child,
    Figure,
    batchgen,
    child,
    inputs,
    make_rows,
    simulator,
    simulator_log,
    write_csv,
    write_xlsx,
)

PEERS = Path(__file__).with_name("peers.py")


def send_all(
    work: Path, rows: int, url: str, concurrency: int, transport: str, name: str, launcher: Sequence[str] = ()
) -> Child:
    """``batchgen run`` of ``rows`` generated rows to a new output ``name``, as a user runs it (or through
    ``launcher``, Python code that runs the command line given in ``sys.argv[1:]``), with a ledger of its own:
    a simulator on a port an earlier one had is the same provider to the ledger, which would skip the rows."""
    args: list[str | Path] = ["run", inputs(work, rows), "-o", work / f"{name}.xlsx", "--base-url", url, "-q"]
    args += ["--concurrency", str(concurrency), "--transport", transport]
    runner = [sys.executable, "-c", *launcher] if launcher else [sys.executable, "-m", "batchgen"]
    return child([*runner, *args], {"BATCHGEN_API_KEY": KEY, "BATCHGEN_STATE_DIR": str(work / f"{name}.state")})


def littles_law(work: Path) -> list[Figure]:
    """Wall time against rows x latency / concurrency, for the default transport and for aiohttp."""
    figures = []
    for rows, latency, concurrency, transport, target in (
        (2000, 0.2, 32, "httpx", 1.2),
        (5000, 0.05, 64, "aiohttp", 1.3),
        (5000, 0.05, 64, "httpx", None),
    ):
        with simulator("--latency-ms", str(latency * 1000)) as url:
            run = send_all(work, rows, url, concurrency, transport, f"little_{transport}_{rows}")
            log = simulator_log(url)["accepted"]
        accepted = len(log)
        bound = rows * latency / concurrency
        ratio = run.wall / bound
        arrivals = [entry["at"] for entry in log] or [0.0]
        sending = max(arrivals) - min(arrivals) + latency  # first request in to last answer out
        figures.append(
            Figure(
                f"E {rows:,} rows, {latency * 1000:.0f} ms, c={concurrency}, {transport}",
                "wall (start-up and output included) / Little's-law bound; the sending phase alone",
                f"{run.wall:.2f} s / {bound:.2f} s = {ratio:.2f}x; sending {sending:.2f} s = {sending / bound:.2f}x",
                f"<= {target}x" if target else "-",
                (target is None or ratio <= target) and accepted == rows and run.code == 0,
            )
        )
    return figures


def transports(work: Path) -> list[Figure]:
    """Client CPU per request and Little's-law ratio of each transport at several concurrencies.

    The simulator's latency grows with the concurrency so that it is asked for about 800 requests/s, what one
    simulator process serves on this machine: the client, not the simulator, is what is measured.
    """
    figures = []
    rows = 2000
    for concurrency in (8, 32, 64, 256):
        latency = max(0.02, concurrency / 800)
        for transport in ("httpx", "aiohttp"):
            with simulator("--latency-ms", str(latency * 1000)) as url:
                run = send_all(work, rows, url, concurrency, transport, f"t_{transport}_{concurrency}")
            ratio = run.wall / (rows * latency / concurrency)
            figures.append(
                Figure(
                    f"F c={concurrency}, {latency * 1000:.0f} ms, {transport}",
                    "client CPU per request (whole process); wall / Little's-law bound",
                    f"{run.cpu / rows * 1000:.2f} ms; {ratio:.2f}x",
                    "-",
                    run.code == 0,
                )
            )
    return figures


def fixed_costs(work: Path) -> list[Figure]:
    """The costs around the sending: start-up, reading and journaling the rows, writing the output."""
    from batchgen.journal import Journal, journal_path
    from batchgen.writer import write_output

    started = [batchgen("--help").wall for _ in range(5)]
    help_time = sorted(started)[2]
    source = inputs(work, 5000)
    with simulator() as url:
        run = batchgen("run", source, "-o", work / "fixed.xlsx", "--base-url", url, "-q", "--max-requests", "1")
    with Journal.open(journal_path((work / "fixed.xlsx").resolve())) as journal, journal.db:
        journal.db.execute(  # two distinct ids per row, as the provider returns them
            "UPDATE rows SET state='done', submitted_at='2026-01-01T00:00:00+00:00',"
            " job_ids=json_array(lower(hex(randomblob(16))), lower(hex(randomblob(16)))) WHERE state != 'done'"
        )
    with Journal.open(journal_path((work / "fixed.xlsx").resolve())) as journal:
        began = time.monotonic()
        write_output(journal, work / "fixed_written.xlsx")
        output = time.monotonic() - began
    return [
        Figure(
            "G fixed costs",
            "batchgen --help start-up (median of 5)",
            f"{help_time:.3f} s",
            "<= 0.45 s",
            help_time <= 0.45,
        ),
        Figure(
            "G fixed costs",
            "a run of 5,000 rows that sends one request (read, check, journal, write)",
            f"{run.wall:.2f} s",
            "-",
            run.code == 1,
        ),
        Figure("G fixed costs", "writing a 10,000-line jobs sheet", f"{output:.2f} s", "-", True),
    ]


def load_validate(work: Path) -> list[Figure]:
    rows = make_rows(100_000)
    figures = []
    for path, limit in ((write_xlsx(work / "big.xlsx", rows), 10.0), (write_csv(work / "big.csv", rows), 4.0)):
        ours = batchgen("validate", path)
        figures.append(
            Figure(
                "H load + validate",
                f"100,000-row {path.suffix[1:]}: time, peak memory",
                f"{ours.wall:.2f} s, {ours.peak_mb:.0f} MB",
                f"<= {limit:g} s, <= 1024 MB",
                ours.wall <= limit and ours.peak_mb <= 1024 and ours.code == 0,
            )
        )
    return figures


def bare_floor(work: Path) -> list[Figure]:
    """A bare loop of each client against the same simulator: the floor any client would land on."""
    figures = []
    for client in ("httpx", "aiohttp"):
        with simulator("--latency-ms", "50") as url:
            floor = child([sys.executable, PEERS, "bare", url, "5000", "64", client])
        figures.append(
            Figure(
                "E floor",
                f"bare {client} loop, 5,000 rows, 50 ms, c=64",
                f"{floor.wall:.2f} s = {floor.wall / (5000 * 0.05 / 64):.2f}x, "
                f"{floor.cpu / 5000 * 1000:.2f} ms CPU per request",
                "-",
                floor.code == 0,
            )
        )
    return figures


SCENARIOS = {"E": littles_law, "F": transports, "G": fixed_costs, "H": load_validate, "I": bare_floor}
