"""Small batches behind heavy scattered 429s (not about the pace, each with a Retry-After), in the model
(``tests/support/pace_sim.py``): the wall of each cell's seeds against the same rows with no 429 at all.

    python benchmarks/scattered_429s.py
    python benchmarks/scattered_429s.py --rows 16 50 --shares 0.2 0.3 0.4 --seeds 20

No target of the contract covers more than 5% scattered 429s (``faults.py`` holds that at 1.2x); this prints
what a producer whose provider refuses a fifth to two fifths of requests at random waits, so that a change of
the pace that makes it worse is seen. A pause of the whole run on a few early answers once left a 16-row batch
crawling at 1/s for 22 s.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.pace_sim import Provider, simulate


def wall(rows: int, share: float, retry_after: float, seed: int, latency: float, concurrency: int) -> float:
    provider = Provider(p429=share, retry_after=retry_after, seed=seed)
    outcome, _pace = simulate(rows, provider, concurrency=concurrency, latency=latency, seed=seed)
    assert outcome.done == rows
    return outcome.wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[16, 50])
    parser.add_argument("--shares", nargs="+", type=float, default=[0.2, 0.3, 0.4], help="of answers, 429")
    parser.add_argument("--retry-after", nargs="+", type=float, default=[0.05, 1.0], help="seconds")
    parser.add_argument("--seeds", type=int, default=20, help="seeds 1..N a cell")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    means, worsts = [], []
    for rows, share, retry_after in itertools.product(args.rows, args.shares, args.retry_after):
        seeds = range(1, args.seeds + 1)
        walls = [wall(rows, share, retry_after, seed, args.latency, args.concurrency) for seed in seeds]
        clean = statistics.mean(wall(rows, 0.0, retry_after, seed, args.latency, args.concurrency) for seed in seeds)
        means.append(statistics.mean(walls))
        worsts.append(max(walls))
        print(
            f"{rows} rows, {share:.0%} 429 (Retry-After {retry_after:g} s): mean {means[-1]:.1f} s, "
            f"worst {worsts[-1]:.1f} s; with no 429 {clean:.1f} s"
        )
    print(f"summed over the cells: mean walls {sum(means):.0f} s, worst walls {sum(worsts):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
