"""The pace when the provider misbehaves: scattered 429s, a fault mix, a steady hidden limit, a --rate cap.

Each scenario prints the wall time, its ratio to its bound (the same rows without faults, or the limit), the
share of requests answered 429, and the reference run.
"""

from __future__ import annotations

import itertools
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import Child, Figure, batchgen, child, double_billed, inputs, simulator, simulator_log

FAULT_MIX = [
    "--rate-500",
    "0.05",
    "--rate-429",
    "0.03",
    "--retry-after",
    "1",
    "--rate-drop",
    "0.02",
    "--rate-accept-drop",
    "0.02",
    "--rate-malformed",
    "0.01",
    "--seed",
    "7",
]


def run(source: Path, output: Path, url: str, *extra: str) -> Child:
    return batchgen("run", source, "-o", output, "--base-url", url, "-q", *extra)


def refused_share(log: dict[str, list[dict[str, Any]]]) -> float:
    received = log["received"]
    return sum(entry["fault"] == "429" for entry in received) / max(len(received), 1)


def early_resends(log: dict[str, list[dict[str, Any]]], retry_after: float) -> int:
    """Attempts that followed a 429 of the same row sooner than its Retry-After."""
    attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log["received"]:
        attempts[entry["idempotency_key"]].append(entry)
    return sum(
        1
        for tries in attempts.values()
        for before, after in itertools.pairwise(tries)
        if before["fault"] == "429" and after["at"] - before["at"] < retry_after - 0.01
    )


def reference(work: Path, rows: int, concurrency: int) -> Child:
    """The same rows without faults, to a new output (a finished one would send nothing)."""
    with simulator("--latency-ms", "50") as url:
        return run(
            inputs(work, rows), work / f"reference_{uuid.uuid4().hex}.xlsx", url, "--concurrency", str(concurrency)
        )


def fault_mix(work: Path) -> list[Figure]:
    rows, concurrency = 3000, 16
    clean = reference(work, rows, concurrency)
    with simulator("--latency-ms", "50", *FAULT_MIX) as url:
        faulty = run(inputs(work, rows), work / "mix.xlsx", url, "--concurrency", str(concurrency))
        log = simulator_log(url)
    ratio = faulty.wall / clean.wall
    with simulator("--latency-ms", "50", *FAULT_MIX) as url:
        peer = child([sys.executable, Path(__file__).with_name("peers.py"), "cookbook", url, str(rows)])
        peer_log = simulator_log(url)
    return [
        Figure(
            "A fault mix, 3,000 rows, 50 ms, c=16",
            "wall vs the same rows without faults",
            f"{faulty.wall:.2f} s / {clean.wall:.2f} s = {ratio:.2f}x, {refused_share(log):.1%} answered 429, "
            f"{double_billed(log)} billed twice",
            "<= 1.5x",
            ratio <= 1.5 and faulty.code in (0, 1),
        ),
        Figure(
            "A fault mix (peer)",
            "cookbook-style processor, same faults",
            f"{peer.wall:.2f} s = {peer.wall / clean.wall:.2f}x, {double_billed(peer_log)} rows billed twice",
            "-",
            True,
        ),
    ]


def scattered(work: Path) -> list[Figure]:
    rows, concurrency = 3000, 16
    clean = reference(work, rows, concurrency)
    with simulator("--latency-ms", "50", "--rate-429", "0.05", "--retry-after", "1", "--seed", "3") as url:
        faulty = run(inputs(work, rows), work / "scattered.xlsx", url, "--concurrency", str(concurrency))
        log = simulator_log(url)
    ratio, early = faulty.wall / clean.wall, early_resends(log, 1.0)
    return [
        Figure(
            "B 5% scattered 429s (Retry-After 1), 3,000 rows, c=16",
            "wall vs fault-free; early re-sends",
            f"{faulty.wall:.2f} s / {clean.wall:.2f} s = {ratio:.2f}x, {refused_share(log):.1%} answered 429, "
            f"{early} re-sent early",
            "<= 1.3x, 0 early",
            ratio <= 1.3 and early == 0 and faulty.code == 0,
        )
    ]


def limited(work: Path, extra: tuple[str, ...]) -> tuple[float, float, Child]:
    """600 rows against a steady 20 requests/s limit: accepted per second, share answered 429."""
    with simulator("--latency-ms", "20", "--rate-limit", "20") as url:
        result = run(
            inputs(work, 600),
            work / f"limited{len(extra)}.xlsx",
            url,
            "--concurrency",
            "8",
            "--max-attempts",
            "20",
            *extra,
        )
        log = simulator_log(url)
    accepted = log["accepted"]
    span = accepted[-1]["at"] - log["received"][0]["at"]
    return len(accepted) / span, refused_share(log), result


def steady_limit(work: Path) -> list[Figure]:
    rate, refused, result = limited(work, ())
    return [
        Figure(
            "C steady limit 20/s, 600 rows, no --rate",
            "accepted per second; answered 429",
            f"{rate:.2f}/s, {refused:.2%}",
            ">= 19/s, <= 3%",
            rate >= 19 and refused <= 0.03 and result.code == 0,
        )
    ]


def capped(work: Path) -> list[Figure]:
    rate, refused, result = limited(work, ("--rate", "18/s"))
    return [
        Figure(
            "D --rate 18/s against the 20/s limit",
            "accepted per second; answered 429",
            f"{rate:.2f}/s, {refused:.2%}",
            ">= 17.1/s, 0",
            rate >= 17.1 and refused == 0 and result.code == 0,
        )
    ]


SCENARIOS = {"A": fault_mix, "B": scattered, "C": steady_limit, "D": capped}
