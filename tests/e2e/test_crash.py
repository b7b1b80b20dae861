"""Crash and interrupt: a real child process killed with SIGKILL or stopped with SIGINT, then run again."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

from batchgen.journal import Journal, journal_path
from batchgen.night import read_night
from batchgen.paths import real

from ..support.helpers import songs, write_xlsx
from ..support.runs import accepted_keys, read_sheet, spawn, wait_for


def test_kill_9_mid_run_loses_nothing_and_sends_nothing_twice(tmp_path: Path, start_simulator) -> None:
    server = start_simulator(latency_ms=40)
    source, output = write_xlsx(tmp_path, songs(150)), tmp_path / "out.xlsx"
    args = [
        "run",
        source,
        "-o",
        output,
        "--base-url",
        server.url,
        "--concurrency",
        "6",
        "--quiet",
        "--transport",
        "aiohttp",
    ]
    for threshold in (20, 70):
        child = spawn(*args)
        wait_for(lambda threshold=threshold: len(server.simulator.accepted) >= threshold)
        child.kill()
        child.communicate()
    final = spawn(*args)
    _, err = final.communicate(timeout=120)
    assert final.returncode in (0, 1), err

    keys = accepted_keys(server)
    assert max(Counter(keys).values()) == 1, "a row was accepted twice"
    with Journal.open(journal_path(real(output))) as journal:
        records = {record.key: record for record in journal.records()}
        night = read_night(journal)
    assert {record.state for record in records.values()} <= {"done", "unknown"}
    unknown = [key for key, record in records.items() if record.state == "unknown"]
    assert len(unknown) <= 2 * 6  # at most the requests in flight at each kill
    # the morning after counts the requests in flight at each kill too: the report said 37 where 40 had left
    assert night.attempts >= len(server.simulator.received) and night.totals["ambiguous"] >= len(unknown)
    jobs = read_sheet(output, "jobs")
    ids_in_output = [line["job_id"] for line in jobs]
    assert len(ids_in_output) == len(set(ids_in_output))
    for entry in server.simulator.accepted:  # every id the provider returned and the journal stored is in the output
        record = records[entry["idempotency_key"]]
        if record.state == "done":
            assert record.job_ids == entry["job_ids"]
            assert set(entry["job_ids"]) <= set(ids_in_output)
    assert len(records) == 150
    assert len(ids_in_output) == 2 * sum(record.state == "done" for record in records.values())


def test_sigint_stops_cleanly_and_a_rerun_finishes(tmp_path: Path, start_simulator) -> None:
    server = start_simulator(latency_ms=150)
    source, output = write_xlsx(tmp_path, songs(80)), tmp_path / "out.xlsx"
    args = ["run", source, "-o", output, "--base-url", server.url, "--concurrency", "4", "--quiet"]
    child = spawn(*args)
    wait_for(lambda: len(server.simulator.accepted) >= 8)
    child.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert time.monotonic() - started < 5
    assert "interrupted: run the same command again to resume" in err
    done_before = len(read_sheet(output, "jobs")) // 2
    assert 8 <= done_before < 80
    with Journal.open(journal_path(real(output))) as journal:
        assert "unknown" not in {record.state for record in journal.records()}  # in-flight requests were let finish

    again = spawn(*args)
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    keys = accepted_keys(server)
    assert len(keys) == len(set(keys)) == 80
    assert len({line["job_id"] for line in read_sheet(output, "jobs")}) == 160
