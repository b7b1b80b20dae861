"""A provider that is down for a while (every request answered 503, or no one listening): the run waits it out,
probing with one request at a time, says so, and does every row once it heals, about one request per row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import batchgen
from batchgen.simulator import Downtime, ProviderLimits

from ..support.helpers import songs, write_xlsx
from ..support.runs import accepted_keys, read_sheet

ROWS = 80


@pytest.mark.parametrize("refuse", [False, True], ids=["503", "refused"])
def test_an_outage_costs_no_row_its_attempts_and_about_one_request_per_row(
    tmp_path: Path, start_simulator, cli, transport: str, refuse: bool
) -> None:
    server = start_simulator(latency_ms=100, limits=ProviderLimits(outage=Downtime(1.0, 4.0, refuse=refuse)))
    output = tmp_path / "out.xlsx"
    result = cli(
        "run", write_xlsx(tmp_path, songs(ROWS)), "-o", output, "--base-url", server.url,
        "--transport", transport, "--concurrency", "8", "--max-attempts", "3",
    )  # fmt: skip
    assert re.search(r"provider down since \d\d:\d\d \((503|no answer)\); next try \d\d:\d\d:\d\d", result.err)
    keys = accepted_keys(server)
    assert len(keys) == len(set(keys))  # none billed twice
    jobs = read_sheet(output, "jobs")
    assert len(jobs) == 2 * len(keys)  # every id the provider issued is in the output
    if refuse:  # a connection closed under a request in flight: that row is unknown, never re-sent
        assert result.code in (0, 1) and len(keys) >= ROWS - 8, result.err
    else:  # every row done, none failed: no row spent its attempts on the outage
        assert result.code == 0 and len(keys) == ROWS, result.err
    # the requests in flight and those of the second it takes to tell, then one per probe
    assert len(server.simulator.received) <= ROWS + 40
    # the morning after: the night shows the outage as a pause of the run, from when it was told to its end
    night = batchgen.report(output, tmp_path / "night.html").read_text(encoding="utf-8")
    assert re.search(r"<td>pause</td><td>provider down since \d\d:\d\d \((503|no answer)\)</td>", night), night[-3000:]
