"""What every benchmark needs: the simulator in its own process, batchgen run as a user runs it (a child
process measured with ``wait4``, so CPU time and peak memory are its own), generated inputs, figures."""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY = "bench-key-0123456789"
WORDS = [
    "love",
    "night",
    "city",
    "fire",
    "rain",
    "heart",
    "road",
    "dream",
    "light",
    "shadow",
    "dance",
    "river",
    "moon",
    "gold",
    "silence",
    "echo",
    "wild",
]
HEADER = [
    "Title",
    "Tags",
    "Lyrics",
    "Model",
    "Instrumental",
    "Transform",
    "Riff ID",
    "Normalized Weirdness",
    "Duration",
    "Catalog No",
]


@dataclass
class Figure:
    scenario: str
    measure: str
    value: str
    target: str
    ok: bool


@dataclass
class Child:
    """A finished child process: wall time, CPU seconds, peak memory, exit code, stderr."""

    wall: float
    cpu: float
    peak_mb: float
    code: int
    err: str


def child(args: list[str | Path], env: dict[str, str] | None = None) -> Child:
    """Run a command and measure it with wait4, so CPU and memory are the child's alone."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [str(a) for a in args], stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        err.seek(0)
        text = err.read().decode(errors="replace")
    return Child(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), text)


def batchgen(*args: str | Path) -> Child:
    """``python -m batchgen ARGS`` with the benchmark key and a private state folder."""
    return child([sys.executable, "-m", "batchgen", *args], {"BATCHGEN_API_KEY": KEY})


@contextmanager
def simulator(*options: str) -> Iterator[str]:
    """``batchgen simulate`` in its own process on a free port; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "simulate", "--port", "0", *options],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BATCHGEN_API_KEY": KEY},
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        port = re.search(r":(\d+)/", banner)
        if not port:
            raise RuntimeError(f"simulator did not start: {banner}")
        yield f"http://127.0.0.1:{port[1]}"
    finally:
        process.terminate()
        process.communicate(timeout=30)


def simulator_log(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every request the simulator received and every one it accepted (each of those would be billed)."""
    with urllib.request.urlopen(f"{url}/_simulator/log", timeout=60) as answer:
        found: dict[str, list[dict[str, Any]]] = json.load(answer)
        return found


def double_billed(log: dict[str, list[dict[str, Any]]]) -> int:
    """Rows the provider accepted more than once: billed twice."""
    keys = [entry["idempotency_key"] for entry in log["accepted"]]
    return len(keys) - len(set(keys))


def lyrics(dice: random.Random) -> str:
    lines = (" ".join(dice.choice(WORDS) for _ in range(dice.randint(5, 9))) for _ in range(dice.randint(8, 16)))
    return "\n".join(lines)


def make_rows(count: int) -> list[list[Any]]:
    """Realistic rows: multi-line lyrics of 300-800 characters, a cover morph on every fifth row."""
    dice = random.Random(count)
    rows = []
    for i in range(count):
        morph = i % 5 == 0
        rows.append(
            [
                f"Song {i}",
                dice.choice(["pop", "rock", "jazz", "lo-fi"]),
                lyrics(dice),
                "FUZZ-1.1",
                False,
                "cover" if morph else None,
                f"riff_{i}" if morph else None,
                round(dice.random(), 2) if morph else None,
                30 if morph else None,
                f"CAT-{i:06d}",
            ]
        )
    return rows


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("Catalog")
    sheet.write_row(0, 0, HEADER)
    for number, row in enumerate(rows, start=1):
        sheet.write_row(number, 0, row)
    book.close()
    return path


def write_csv(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        out.writerows([["" if value is None else value for value in row] for row in rows])
    return path


def inputs(work: Path, rows: int) -> Path:
    """A generated catalog of ``rows`` rows (made once per folder)."""
    path = work / f"catalog_{rows}.xlsx"
    return path if path.exists() else write_xlsx(path, make_rows(rows))


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def table(figures: list[Figure]) -> str:
    lines = ["| scenario | measure | figure | target | result |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {f.scenario} | {f.measure} | {f.value} | {f.target} | {'pass' if f.ok else 'FAIL'} |" for f in figures
    ]
    return "\n".join(lines)


def write_between(path: Path, report: str, marker: str) -> None:
    """Replace what lies between ``<!-- marker -->`` and ``<!-- /marker -->`` in ``path``, keeping the prose
    around it (the markers are added at the end if missing)."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start not in text:
        text = f"{text.rstrip()}\n\n{start}\n{end}\n"
    before, rest = text.split(start, 1)
    path.write_text(f"{before}{start}\n{report}{end}{rest.split(end, 1)[1]}")
