"""The pace on the limiter grid of ``grid.py``, in the model (``tests/support/pace_sim.py``): seconds, not hours.

    python benchmarks/model_grid.py                      # every shape, the whole grid, two seeds
    python benchmarks/model_grid.py --limiter haproxy --limits 20 --verbose

Each cell is ``grid.py``'s (same rows, same perfect client, same pass rule); the limiters are the model's
versions of nginx, HAProxy and the simulator's shapes. The exit code is 0 only when every cell passes.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

from grid import HOLD, LIMITERS, TARGET_REFUSED, TARGET_SHARE, TARGET_USED, WINDOW, Cell

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.pace_sim import Provider, simulate

JITTER = {"": 0.1, "uniform": 0.5, "lognormal": 0.8}  # the model's latency spread for grid.py's jitter names
TRANSIT = 0.003  # seconds a request may take from leaving to reaching the limiter: what the real grid shows


def provider(cell: Cell) -> Provider:
    """The model's version of the cell's limiter."""
    limit, seed = cell.limit, cell.seed
    shapes = {
        "nginx-strict": Provider(bucket=(limit, 0), seed=seed),
        "nginx-burst": Provider(bucket=(limit, 5), seed=seed),
        "nginx-conn": Provider(in_flight=cell.cap, in_flight_retry_after=None, seed=seed),
        "haproxy": Provider(counting=limit, seed=seed),
        "sim-rate": Provider(limit=limit, seed=seed),
        "sim-window": Provider(fixed=(round(limit * WINDOW), WINDOW), seed=seed),
        "sim-generations": Provider(running=cell.cap, hold=HOLD, seed=seed),
        "sim-inflight": Provider(in_flight=cell.cap, seed=seed),
    }
    return shapes[cell.limiter]


def run(cell: Cell, seconds: float) -> tuple[float, float, int, int, bool]:
    """(share of perfect, share of 429s, refusals, requests, pass) for one cell."""
    rows = cell.rows(seconds)
    base, _, spread = cell.latency.partition(":")
    outcome, _pace = simulate(
        rows,
        provider(cell),
        concurrency=cell.concurrency,
        latency=float(base) / 1000,
        jitter=JITTER[spread],
        seed=cell.seed,
        until=40 * seconds,
        transit=TRANSIT,
    )
    used = cell.perfect(rows) / outcome.finished if outcome.finished else 0.0
    share = outcome.refused / max(outcome.requests, 1)
    ok = outcome.done == rows and used >= TARGET_USED and (share <= TARGET_SHARE or outcome.refused <= TARGET_REFUSED)
    return used, share, outcome.refused, outcome.requests, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limiter", nargs="+", choices=LIMITERS, default=list(LIMITERS))
    parser.add_argument("--limits", nargs="+", type=float, default=[2, 5, 10, 20, 50])
    parser.add_argument("--latencies", nargs="+", default=["20", "100", "500", "100:lognormal"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[8, 16, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--verbose", action="store_true", help="one line per cell")
    args = parser.parse_args()
    every = True
    for name in args.limiter:
        results = []
        for limit, latency, c, seed in itertools.product(args.limits, args.latencies, args.concurrency, args.seeds):
            cell = Cell(name, limit, latency, c, seed)
            used, share, refused, requests, ok = run(cell, args.seconds)
            results.append((used, share, ok))
            if args.verbose or not ok:
                mark = "pass" if ok else "FAIL"
                print(f"  {cell.label()}: used {used:.0%}, 429 {share:.1%} ({refused} of {requests}) {mark}")
        passed = sum(ok for *_, ok in results)
        every = every and passed == len(results)
        used = statistics.median(u for u, *_ in results)
        refused = statistics.median(s for _, s, _ in results)
        print(f"{name}: {passed}/{len(results)} pass, median used {used:.0%}, median 429 {refused:.1%}", flush=True)
    return 0 if every else 1


if __name__ == "__main__":
    sys.exit(main())
