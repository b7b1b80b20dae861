"""Benchmarks: is the provider the speed limit of a batch, never batchgen? Each figure prints with its target.

    python benchmarks/run.py                    # every scenario (about twenty minutes on 2 cores)
    python benchmarks/run.py --only A B C       # some of them
    python benchmarks/run.py --markdown docs/benchmarks.md   # also write the table there

Scenarios: A-D the pace when the provider misbehaves (faults.py); E-I throughput, transports and fixed costs
(throughput.py); J-N the pace against each shape of limit: in flight, changing, shared, --rate, quota
(limits.py); O what the journal and ledger cost at scale (journal.py). The simulator runs in its own process and
batchgen runs as a user runs it (harness.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import faults
import journal
import limits
import throughput
from harness import Figure, machine, table, write_between

SCENARIOS = {**faults.SCENARIOS, **throughput.SCENARIOS, **limits.SCENARIOS, **journal.SCENARIOS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="scenarios to run (default: all)")
    parser.add_argument("--markdown", type=Path, help="also write the table and the machine to this file")
    args = parser.parse_args()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="batchgen-bench-") as folder:
        os.environ["BATCHGEN_STATE_DIR"] = str(Path(folder) / "state")  # never the user's own ledger
        for name in args.only or sorted(SCENARIOS):
            started = time.monotonic()
            found = SCENARIOS[name](Path(folder))
            figures += found
            for figure in found:
                print(
                    f"{figure.scenario}: {figure.measure}: {figure.value} (target {figure.target}) "
                    f"{'pass' if figure.ok else 'FAIL'}  [{time.monotonic() - started:.0f} s]",
                    flush=True,
                )
    report = f"Machine: {machine()}\n\n{table(figures)}\n"
    print("\n" + report)
    if args.markdown:
        write_between(args.markdown, report, "figures")
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
