"""The pace on a grid (issue #25): every limiter, limits 2-50/s, latencies 20-500 ms, concurrency 8-64, seeds.

    python benchmarks/grid.py --quick --limiter nginx-strict haproxy   # five cells each, about 2.5 min each
    python benchmarks/grid.py --quick --limiter nginx-strict --seconds 10      # shorter cells, a first look
    python benchmarks/grid.py --quick --jobs 2                 # every limiter, two cells at a time
    python benchmarks/grid.py --limiter haproxy --limits 5 20 --latencies 20 100:lognormal --concurrency 8
    python benchmarks/grid.py --markdown docs/benchmarks.md   # the whole grid (hours), its table written there

Limiters: nginx-strict (``limit_req``, no burst), nginx-burst (``burst=5 nodelay``), nginx-conn (``limit_conn``),
haproxy (``sc_http_req_rate(0) gt N``), and the simulator's own shapes: sim-rate (sliding one-second window),
sim-window (fixed window with its reset), sim-generations (generation cap, slot held after the answer),
sim-inflight (cap on requests in flight). The exit code is 0 only when every cell passes.

Each cell starts the simulator (``batchgen simulate``, its own process), a limiter in front of it where the
cell has one (``limiters.py``), and runs batchgen as a user does: ``python -m batchgen run ... --base-url URL
--concurrency C``, no ``--rate``. A latency is milliseconds, or ``MS:uniform`` / ``MS:lognormal`` for jitter
around it. Every answer the client got is counted at the server side: the limiter's access log (its 429s never
reach the simulator), else the simulator's log of what it received.

A cell's limit is in requests per second. A cap on requests in flight (``nginx-conn``, ``sim-inflight``) is the
cap that allows it at the cell's latency, ``K = max(1, round(limit x L))``; a cap on generations still running
(``sim-generations``, each slot held ``HOLD`` s after its answer) ``G = max(1, round(limit x (L + HOLD)))``; a
fixed window (``sim-window``) ``limit x WINDOW`` requests per ``WINDOW`` s, counted from the first request.

What a perfect client achieves, first request to last answer, for N rows at latency L and concurrency C (the
concurrency alone allows ``ceil(N / C) x L``; each shape's own bound, the larger of the two is the perfect
time):

- a rate R (strict leaky bucket, a sliding window, HAProxy's rate): even pacing, ``(N - 1) / R + L``;
- a burst B on top of R (``nodelay``): B + 1 at once, then even pacing, ``max(N - 1 - B, 0) / R + L``;
- a cap of K in flight: ``ceil(N / min(K, C)) x L``;
- a fixed window of W per S seconds: the windows before the last full, its rows in waves of C from its start,
  ``P x S + ceil((N - P x W) / C) x L`` with ``P = floor((N - 1) / W)``;
- a cap of G generations held HOLD s after the answer: ``ceil(N / G) x (L + HOLD) - HOLD``.

Rows per cell: what the perfect client sends in ``--seconds`` (20 s) at the limit, at least 20. A cell passes
with >= 90% of perfect and <= 3% of requests answered 429, or at most 8 refusals (spent learning the limit).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import KEY, child, inputs, simulator, simulator_log, write_between
from limiters import SHAPES, Answer, limiter, missing

HOLD = 1.0  # seconds a generation slot stays held after its answer
WINDOW = 5.0  # seconds of a fixed window
TARGET_SHARE, TARGET_REFUSED, TARGET_USED = 0.03, 8, 0.90
SIMULATED = ("sim-rate", "sim-window", "sim-generations", "sim-inflight")
LIMITERS = (*SHAPES, *SIMULATED)
QUICK = (  # (limit/s, latency, concurrency): every value of each axis at least once, five cells
    (2, "100", 8),
    (5, "500", 16),
    (10, "20", 64),
    (20, "100:lognormal", 16),
    (50, "20", 8),
)


@dataclass(frozen=True)
class Cell:
    limiter: str
    limit: float
    latency: str
    concurrency: int
    seed: int

    @property
    def latency_s(self) -> float:
        return float(self.latency.split(":")[0]) / 1000

    @property
    def cap(self) -> int:
        """Requests in flight (or generations running) that allow ``limit`` per second at this latency."""
        hold = HOLD if self.limiter == "sim-generations" else 0.0
        return max(1, round(self.limit * (self.latency_s + hold)))

    def rows(self, seconds: float) -> int:
        latency, c = self.latency_s, self.concurrency
        if self.limiter in ("nginx-conn", "sim-inflight"):
            per_second = min(self.cap, c) / latency
        elif self.limiter == "sim-generations":
            per_second = min(self.cap / (latency + HOLD), c / latency)
        else:
            per_second = min(self.limit, c / latency)
        return max(20, round(per_second * seconds))

    def perfect(self, rows: int) -> float:
        """Seconds from the first request to the last answer for a perfect client (the module's formulas)."""
        latency, c = self.latency_s, self.concurrency
        waves = math.ceil(rows / c) * latency
        if self.limiter in ("nginx-conn", "sim-inflight"):
            return math.ceil(rows / min(self.cap, c)) * latency
        if self.limiter == "sim-generations":
            return max(waves, math.ceil(rows / self.cap) * (latency + HOLD) - HOLD)
        if self.limiter == "sim-window":  # the last window's rows go in waves of c from its start
            per_window = max(1, round(self.limit * WINDOW))
            before = (rows - 1) // per_window
            return max(waves, before * WINDOW + math.ceil((rows - before * per_window) / c) * latency)
        burst = SHAPES[self.limiter].burst if self.limiter in SHAPES else 0
        return max(waves, max(rows - 1 - burst, 0) / self.limit + latency)

    def label(self) -> str:
        cap = f" (cap {self.cap})" if self.limiter in ("nginx-conn", "sim-inflight", "sim-generations") else ""
        return f"{self.limiter} {self.limit:g}/s{cap}, {self.latency} ms, c={self.concurrency}, seed {self.seed}"


@dataclass
class Result:
    cell: Cell
    rows: int
    perfect: float
    took: float
    answers: int
    refused: int
    done: int
    code: int

    @property
    def used(self) -> float:
        return self.perfect / self.took if self.took > 0 else 0.0

    @property
    def ok(self) -> bool:
        share = self.refused / max(self.answers, 1)
        return (
            self.used >= TARGET_USED
            and (share <= TARGET_SHARE or self.refused <= TARGET_REFUSED)
            and self.done == self.rows
        )

    def line(self) -> str:
        share = self.refused / max(self.answers, 1)
        done = "" if self.done == self.rows else f", {self.rows - self.done} rows not done (exit {self.code})"
        return (
            f"perfect {self.perfect:.1f} s, batchgen {self.took:.1f} s = {self.used:.0%}; "
            f"429 {share:.1%} ({self.refused} of {self.answers}){done}"
        )


def simulator_options(cell: Cell) -> list[str]:
    """The simulator's flags for a cell: its latency (and jitter), seed, and its own limit when it has one."""
    base, _, jitter = cell.latency.partition(":")
    options = ["--latency-ms", base, "--seed", str(cell.seed)]
    if jitter:
        options += ["--latency-jitter", jitter]
    if cell.limiter == "sim-rate":
        options += ["--rate-limit", f"{cell.limit:g}"]
    elif cell.limiter == "sim-inflight":
        options += ["--in-flight-limit", str(cell.cap)]
    elif cell.limiter == "sim-generations":
        options += ["--generation-cap", str(cell.cap), "--generation-hold", f"{HOLD:g}"]
    elif cell.limiter == "sim-window":
        options += ["--fixed-window", f"{max(1, round(cell.limit * WINDOW))}/{WINDOW:g}"]
    return options


@contextmanager
def provider(cell: Cell, limit: float | None = None) -> Iterator[tuple[str, Callable[[], list[Answer]]]]:
    """The simulator, behind the cell's limiter if it has one: the base URL, and how to read every answer
    (the limiter's access log, or the simulator's log of what it received)."""
    with ExitStack() as stack:
        url = stack.enter_context(simulator(*simulator_options(cell)))
        if cell.limiter in SHAPES:
            shape = SHAPES[cell.limiter]
            front = stack.enter_context(
                limiter(shape, limit or (cell.cap if shape.kind == "conn" else cell.limit), url)
            )
            yield front.url, front.answers
        else:
            yield url, lambda: simulated_answers(url)


def simulated_answers(url: str) -> list[Answer]:
    received = simulator_log(url)["received"]
    return [Answer(e["at"], e.get("done", e["at"]), int(e.get("status") or 0)) for e in received]


def batchgen_run(source: Path, output: Path, url: str, state: Path, *extra: str) -> int:
    """``python -m batchgen run`` as a user runs it, no ``--rate``; its exit code."""
    args = [sys.executable, "-m", "batchgen", "run", source, "-o", output, "--base-url", url, "-q", *extra]
    return child(args, {"BATCHGEN_API_KEY": KEY, "BATCHGEN_STATE_DIR": str(state)}).code


def done_rows(answers: list[Answer]) -> int:
    return sum(answer.status == 200 for answer in answers)


def run_cell(cell: Cell, work: Path, seconds: float) -> Result:
    rows = cell.rows(seconds)
    folder = Path(tempfile.mkdtemp(prefix="cell-", dir=work))
    with provider(cell) as (url, read):
        code = batchgen_run(
            inputs(work, rows), folder / "out.xlsx", url, folder / "state", "--concurrency", str(cell.concurrency)
        )
        time.sleep(0.2)  # the limiter writes its last log lines
        answers = read()
    took = max(a.end for a in answers) - min(a.start for a in answers) if answers else 0.0
    refused = sum(answer.status == 429 for answer in answers)
    return Result(cell, rows, cell.perfect(rows), took, len(answers), refused, done_rows(answers), code)


def cells(args: argparse.Namespace) -> list[Cell]:
    if args.quick:
        grid = [(limit, latency, c) for limit, latency, c in QUICK]
    else:
        grid = list(itertools.product(args.limits, args.latencies, args.concurrency))
    return [
        Cell(name, float(limit), latency, int(c), seed)
        for name in args.limiter
        for limit, latency, c in grid
        for seed in args.seeds
    ]


def table(results: list[Result]) -> str:
    lines = [
        "| cell | rows | perfect | batchgen | used | answered 429 | result |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        share = r.refused / max(r.answers, 1)
        lines.append(
            f"| {r.cell.label()} | {r.rows} | {r.perfect:.1f} s | {r.took:.1f} s | {r.used:.0%} | "
            f"{share:.1%} ({r.refused} of {r.answers}) | {'pass' if r.ok else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limiter", nargs="+", choices=LIMITERS, default=list(LIMITERS))
    parser.add_argument("--limits", nargs="+", type=float, default=[2, 5, 10, 20, 50], help="requests per second")
    parser.add_argument("--latencies", nargs="+", default=["20", "100", "500", "100:lognormal"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[8, 16, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="five covering cells per limiter, one seed each")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long a cell lasts at the limit")
    parser.add_argument("--jobs", type=int, default=1, help="cells in parallel (separate ports)")
    parser.add_argument("--markdown", type=Path, help="write the grid table between <!-- grid --> markers")
    args = parser.parse_args()
    if args.quick:
        args.seeds = args.seeds[:1]
    for name in list(args.limiter):
        reason = missing(SHAPES[name].program) if name in SHAPES else None
        if reason:
            print(f"{name}: {reason}", flush=True)
            args.limiter.remove(name)
    todo = cells(args)
    with tempfile.TemporaryDirectory(prefix="batchgen-grid-") as folder:
        work = Path(folder)
        for rows in {cell.rows(args.seconds) for cell in todo}:
            inputs(work, rows)  # made once, before cells run in parallel
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = []
            for result in pool.map(lambda cell: run_cell(cell, work, args.seconds), todo):
                print(f"{result.cell.label()}: {result.line()} {'pass' if result.ok else 'FAIL'}", flush=True)
                results.append(result)
    report = table(results)
    print(
        "\n" + report + f"\n{sum(r.ok for r in results)} of {len(results)} cells pass ({os.getloadavg()[0]:.1f} load)"
    )
    if args.markdown:
        write_between(args.markdown, report, "grid")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
