"""The pace against each shape a provider's limit takes (issue #17): a cap on requests in flight, a limit that
changes during the run, one limit shared by two runs, a fixed limit with and without ``--rate``, and a quota.

Every figure comes from the simulator's own log (what it received and accepted, with its clock), so the client's
start-up and output do not blur it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness import KEY, Figure, inputs, make_rows, simulator, simulator_log, write_xlsx

Log = dict[str, list[dict[str, Any]]]


def run(source: Path, output: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    """``batchgen run`` in the background (two may share one simulator), stderr kept."""
    return subprocess.Popen(
        [sys.executable, "-m", "batchgen", "run", str(source), "-o", str(output), "--base-url", url, "-q", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BATCHGEN_API_KEY": KEY},
    )


def refused(entries: list[dict[str, Any]]) -> float:
    """Share of requests answered 429 (by a limit or the in-flight cap)."""
    return sum(entry["fault"] == "429" for entry in entries) / max(len(entries), 1)


def per_second(log: Log, start: float, end: float | None = None) -> float:
    """Accepted requests per second between ``start`` and ``end`` (the last acceptance if None)."""
    times = [entry["at"] for entry in log["accepted"]]
    end = max(times) if end is None else end
    return sum(start <= at < end for at in times) / (end - start) if end > start else 0.0


def load() -> str:
    """The machine's load average, to read the figures by: two other engineers share these 2 cores."""
    return "load " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def in_flight_cap(work: Path) -> list[Figure]:
    """In-flight cap 4 at 100 ms, --concurrency 16: the cap allows 40/s. Three runs: it must be stable."""
    figures = []
    for attempt in range(1, 4):
        with simulator("--latency-ms", "100", "--in-flight-limit", "4") as url:
            child = run(inputs(work, 1200), work / f"cap{attempt}.xlsx", url, "--concurrency", "16")
            child.communicate()
            log = simulator_log(url)
        rate = per_second(log, log["received"][0]["at"])
        share = refused(log["received"])
        figures.append(
            Figure(
                f"J in-flight cap 4, 100 ms, c=16, 1,200 rows (run {attempt})",
                "accepted per second (of 40/s); answered 429",
                f"{rate:.1f}/s = {rate / 40:.0%}, {share:.1%} ({load()})",
                ">= 90%, <= 3%",
                rate >= 36 and share <= 0.03 and child.returncode == 0,
            )
        )
    return figures


SCHEDULE = ((0.0, 20.0), (20.0, 5.0), (40.0, 40.0))


def changing_limit(work: Path) -> list[Figure]:
    """20/s for 20 s, then 5/s, then 40/s after 40 s (c=32, 50 ms): each window after its first 5 s."""
    spec = ",".join(f"{rate:g}@{start:g}" for start, rate in SCHEDULE)
    with simulator("--latency-ms", "50", "--limit-schedule", spec) as url:
        child = run(inputs(work, 1500), work / "schedule.xlsx", url, "--concurrency", "32", "--max-attempts", "50")
        child.communicate()
        log = simulator_log(url)
    first = log["received"][0]["at"]
    last = max(entry["at"] for entry in log["accepted"])
    bounds = [start for start, _ in SCHEDULE[1:]] + [last - first]
    used = []
    for (start, limit), end in zip(SCHEDULE, bounds, strict=True):
        used.append(per_second(log, first + start + 5, first + end) / limit)
    share = refused(log["received"])
    return [
        Figure(
            "K limit 20/s -> 5/s (at 20 s) -> 40/s (at 40 s), c=32, 50 ms, 1,500 rows",
            "used of each window's limit (after 5 s in it); answered 429",
            f"{', '.join(f'{value:.0%}' for value in used)}; {share:.1%} ({load()})",
            ">= 85% each, <= 5%",
            min(used) >= 0.85 and share <= 0.05 and child.returncode == 0,
        )
    ]


def shared_key(work: Path) -> list[Figure]:
    """Two runs on one key (one simulator) share a 20/s limit, 600 rows each, c=8, 50 ms."""
    sources = []
    for name in ("a", "b"):
        rows = make_rows(600)
        for row in rows:
            row[0] = f"{name} {row[0]}"
        sources.append(write_xlsx(work / f"shared_{name}.xlsx", rows))
    with simulator("--latency-ms", "50", "--rate-limit", "20") as url:
        children = [
            run(source, work / f"shared_{index}.xlsx", url, "--max-attempts", "50")
            for index, source in enumerate(sources)
        ]
        for child in children:
            child.communicate()
        log = simulator_log(url)
    runs = {entry["idempotency_key"]: entry["body"]["title"][0] for entry in log["accepted"]}
    ends = [max(entry["at"] for entry in log["accepted"] if runs[entry["idempotency_key"]] == name) for name in "ab"]
    first, together = log["received"][0]["at"], min(ends)  # while both were sending
    both = [entry for entry in log["accepted"] if entry["at"] < together]
    shares = [sum(runs[entry["idempotency_key"]] == name for entry in both) / max(len(both), 1) for name in "ab"]
    rate = len(both) / (together - first)
    share = refused(log["received"])
    return [
        Figure(
            "L two runs share one 20/s limit, 600 rows each, c=8, 50 ms",
            "together per second while both send; each run's share of those rows; answered 429",
            f"{rate:.1f}/s = {rate / 20:.0%}; {shares[0]:.0%} / {shares[1]:.0%}; {share:.1%} ({load()})",
            ">= 90%, each >= 35%, <= 5%",
            rate >= 18 and min(shares) >= 0.35 and share <= 0.05 and all(c.returncode == 0 for c in children),
        )
    ]


def rate_cap(work: Path) -> list[Figure]:
    """``--rate 200/s`` where the provider allows more (20 ms, c=32): the cap must be delivered."""
    with simulator("--latency-ms", "20") as url:
        child = run(inputs(work, 3000), work / "rate200.xlsx", url, "--rate", "200/s", "--concurrency", "32")
        child.communicate()
        log = simulator_log(url)
    rate = per_second(log, log["received"][0]["at"])
    return [
        Figure(
            "M --rate 200/s, no limit, c=32, 20 ms, 3,000 rows",
            "accepted per second",
            f"{rate:.1f}/s ({load()})",
            ">= 190/s",
            rate >= 190 and child.returncode == 0,
        )
    ]


class Console:
    """A run's stderr, line by line with the moment each arrived."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(child,), daemon=True)
        self._thread.start()

    def _read(self, child: subprocess.Popen[str]) -> None:
        assert child.stderr is not None
        for line in child.stderr:
            self.lines.append((time.time(), line.rstrip()))

    def first(self, pattern: str, timeout: float) -> float | None:
        """When a line matching ``pattern`` arrived, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((at for at, line in self.lines if re.search(pattern, line)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        return None

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "\n".join(line for _, line in self.lines)


def pending(output: Path) -> int:
    """Rows of ``output`` still pending, as ``batchgen status`` shows them (-1 if it cannot)."""
    status = subprocess.run(
        [sys.executable, "-m", "batchgen", "status", str(output)], capture_output=True, text=True, check=False
    )
    found = re.search(r"pending (\d+)", status.stdout)
    return int(found[1]) if found else -1


def quota(work: Path) -> list[Figure]:
    """Credit runs out after 100 rows (429 "quota exceeded", Retry-After 3600), 300 rows, c=8, 20 ms."""
    figures = []
    stop_at = (dt.datetime.now() + dt.timedelta(minutes=6)).strftime("%H:%M")
    for extra, name in ((("--stop-at", stop_at), "with --stop-at 6 min ahead"), ((), "without a time limit")):
        output = work / f"quota_{len(extra)}.xlsx"
        with simulator("--latency-ms", "20", "--quota", "100") as url:
            args = ["run", str(inputs(work, 300)), "-o", str(output), "--base-url", url, *extra]
            child = subprocess.Popen(
                [sys.executable, "-m", "batchgen", *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "BATCHGEN_API_KEY": KEY, "PYTHONUNBUFFERED": "1"},
            )
            console = Console(child)
            said = console.first(r"warning: provider: quota exceeded", timeout=60)
            if not extra:
                time.sleep(2)
                child.send_signal(signal.SIGINT)
            try:
                code = child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
            ended = time.time()
            log = simulator_log(url)
        first = min((entry["at"] for entry in log["received"] if entry["fault"] == "quota"), default=ended)
        left, expected = pending(output), 300 - len(log["accepted"])  # all but the rows accepted
        text = console.text()
        message = "quota exceeded: no credits left" in text
        told = f"{said - first:.1f} s" if said else "never"
        if extra:
            figures.append(
                Figure(
                    f"N quota after 100 rows (300 rows), {name}",
                    "exit code; first quota answer to exit; rows pending; provider's message shown",
                    f"exit {code}; {ended - first:.1f} s; {left} pending; message {'shown' if message else 'missing'}",
                    f"exit 1, <= 15 s, {expected}, shown",
                    code == 1 and ended - first <= 15 and left == expected and message,
                )
            )
        else:
            until = re.search(r"waiting until (\d\d:\d\d)", text)
            figures.append(
                Figure(
                    f"N quota after 100 rows (300 rows), {name}",
                    "first quota answer to the console's 'waiting until'; Ctrl-C: exit code, rows pending",
                    f"{told} (until {until[1] if until else '?'}); exit {code}, {left} pending",
                    f"<= 5 s; exit 130, {expected}",
                    said is not None and said - first <= 5 and code == 130 and left == expected,
                )
            )
    return figures


SCENARIOS = {"J": in_flight_cap, "K": changing_limit, "L": shared_key, "M": rate_cap, "N": quota}
