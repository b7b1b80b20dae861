"""Mixed refusals (issue #30, item 8): 20% 429 with a Retry-After plus 10% 503, against the 20% 429 alone, in the
model (``tests/support/pace_sim.py``) over a grid of latencies, concurrencies and seeds. Target: within 2x.

    python benchmarks/mixed_refusals.py
    python benchmarks/mixed_refusals.py --rows 3000 --seeds 1 2 3
    python benchmarks/mixed_refusals.py --real --latencies 0.05 0.2 --concurrency 4 16 --seeds 1 2 3
    python benchmarks/mixed_refusals.py --limits 0 2 5 20 50 --latencies 0.02 0.1 0.5 --concurrency 8 16 64

Each cell is the wall time of ``--rows`` rows with both kinds of refusal over the wall time with the 429s alone,
same seed, behind a limit per second (``--limits``, 0: none; issue #25's grid) or none; the exit code is 0 only
when every cell is within the target. ``--real``: batchgen run as a user runs it against ``batchgen simulate``
with those faults (its own dice, seeded), seconds a run, not milliseconds.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

from harness import batchgen, inputs, simulator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.pace_sim import Provider, simulate

TARGET = 2.0
P429, P5XX, RETRY_AFTER = 0.2, 0.1, 2.0


def ratio(_work: Path, rows: int, latency: float, concurrency: int, seed: int, limit: float) -> float:
    """Wall with 429s and 503s over wall with the 429s alone."""
    walls = []
    for p5xx in (P5XX, 0.0):
        provider = Provider(p429=P429, p5xx=p5xx, retry_after=RETRY_AFTER, limit=limit or None, seed=seed)
        outcome, _pace = simulate(rows, provider, concurrency=concurrency, latency=latency, seed=seed)
        assert outcome.done == rows
        walls.append(outcome.wall)
    return walls[0] / walls[1]


def real_ratio(work: Path, rows: int, latency: float, concurrency: int, seed: int, limit: float) -> float:
    """The same, batchgen against the simulator: each run to a new output of the same generated sheet."""
    walls = []
    for p5xx in (P5XX, 0.0):
        faults = ["--rate-429", str(P429), "--rate-5xx", str(p5xx), "--retry-after", f"{RETRY_AFTER:g}"]
        faults += ["--rate-limit", f"{limit:g}"] if limit else []
        with simulator("--latency-ms", f"{latency * 1000:g}", *faults, "--seed", str(seed)) as url:
            output = work / f"mixed_{limit}_{latency}_{concurrency}_{seed}_{p5xx}.xlsx"
            # the same sheet's rows again, to a new output: the ledger would skip them, the provider here is free
            options = ["-q", "--concurrency", str(concurrency), "--allow-resend"]
            ran = batchgen("run", inputs(work, rows), "-o", output, "--base-url", url, *options)
            assert ran.code in (0, 1), ran.err  # 1: a row refused on each of its attempts (0.2 ** 5 a row)
        walls.append(ran.wall)
    return walls[0] / walls[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--latencies", nargs="+", type=float, default=[0.05, 0.2, 0.5], help="seconds")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--limits", nargs="+", type=float, default=[0.0], help="per second (0: none)")
    parser.add_argument("--real", action="store_true", help="batchgen against the simulator, not the model")
    args = parser.parse_args()
    ratios = []
    work = Path(tempfile.mkdtemp(prefix="batchgen-mixed-"))
    for limit, latency, concurrency in itertools.product(args.limits, args.latencies, args.concurrency):
        measure = real_ratio if args.real else ratio
        cell = [measure(work, args.rows, latency, concurrency, seed, limit) for seed in args.seeds]
        ratios += cell
        figures = " ".join(f"{r:.2f}" for r in cell)
        behind = f"{limit:g}/s, " if limit else ""
        print(f"{args.rows} rows, {behind}{latency * 1000:.0f} ms, c={concurrency}: {figures} (worst {max(cell):.2f}x)")
    over = sum(r > TARGET for r in ratios)
    print(
        f"median {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x, "
        f"{over} of {len(ratios)} over {TARGET:g}x (target: none)"
    )
    return 0 if over == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
