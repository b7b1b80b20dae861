"""Exactly once across processes and signals: runs of one sheet at the same time, kills between outputs,
SIGHUP (Ctrl-C before dispatch: test_stop.py), and every journal or ledger write synced before a request leaves
(observed with strace). Real subprocesses against the simulator and its log of accepted requests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from batchgen.journal import Journal, journal_path
from batchgen.paths import real

from ..support.helpers import songs, write_csv, write_xlsx
from ..support.runs import API_KEY, accepted_ids, finish, no_duplicates, read_sheet, run_args, spawn, wait_for


def start_together(*argument_lists: list[str | Path]) -> list[tuple[int, str]]:
    """Start every run in the same instant (a cron job and a manual run), then wait for all."""
    children = [spawn(*args) for args in argument_lists]
    results = []
    for child in children:
        _, err = child.communicate(timeout=120)
        assert "Traceback" not in err, err
        results.append((child.returncode, err))
    return results


@pytest.mark.parametrize("runs", [2, 4])
def test_runs_of_one_sheet_at_the_same_time_send_each_row_once(tmp_path, start_simulator, runs) -> None:
    server = start_simulator(latency_ms=20)
    source = write_xlsx(tmp_path, songs(120))
    outputs = [tmp_path / f"results-{n}.xlsx" for n in range(runs)]
    results = start_together(*(run_args(source, out, server.url, "--concurrency", "8") for out in outputs))
    no_duplicates(server)
    assert len(server.simulator.accepted) == 120  # every row once, overall
    done = Counter()
    for (code, err), output in zip(results, outputs, strict=True):
        jobs = read_sheet(output, "jobs")
        done[output] = len(jobs) // 2
        skipped = [line for line in read_sheet(output, "failed") if line["state"] == "skipped"]
        assert len(skipped) + done[output] == 120
        if skipped:  # the run that left rows names the output that has them, in the sheet and on the console
            assert code == 1, err
            holders = {other for other in outputs if other != output and str(real(other)) in err}
            assert holders, err
            assert all(any(str(real(other)) in line["error"] for other in holders) for line in skipped)
        else:
            assert code == 0, err
    assert sum(done.values()) == 120
    shown = {line["job_id"] for output in outputs for line in read_sheet(output, "jobs")}
    assert shown == accepted_ids(server)


def test_a_killed_run_then_another_output_then_the_first_again_sends_no_row_twice(tmp_path, start_simulator) -> None:
    server = start_simulator(latency_ms=30)
    source = write_xlsx(tmp_path, songs(100))
    first, second = tmp_path / "first.xlsx", tmp_path / "second.xlsx"
    child = spawn(*run_args(source, first, server.url, "--concurrency", "6"))
    wait_for(lambda: len(server.simulator.accepted) >= 30)
    child.kill()
    child.communicate()
    code, err = finish(*run_args(source, second, server.url, "--concurrency", "6"))
    assert code == 1 and str(real(first)) in err, err  # rows of the killed run are not sent again
    code, err = finish(*run_args(source, first, server.url, "--concurrency", "6"))
    assert code == 1, err  # the rows the second output sent are skipped here
    no_duplicates(server)
    with Journal.open(journal_path(real(first))) as journal:
        unknown = {record.key for record in journal.records() if record.state == "unknown"}
    assert len(unknown) <= 6  # the requests in flight at the kill: never re-sent without being asked
    assert len(server.simulator.accepted) >= 100 - len(unknown)
    shown = {line["job_id"] for output in (first, second) for line in read_sheet(output, "jobs")}
    for entry in server.simulator.accepted:  # every id is in one of the outputs, unless its row is unknown
        assert set(entry["job_ids"]) <= shown or entry["idempotency_key"] in unknown


def test_sighup_mid_run_keeps_every_issued_id_in_the_output(tmp_path, start_simulator) -> None:
    server = start_simulator(latency_ms=150)
    source, output = write_xlsx(tmp_path, songs(80)), tmp_path / "out.xlsx"
    child = spawn(*run_args(source, output, server.url, "--concurrency", "8"))
    wait_for(lambda: len(server.simulator.accepted) >= 10)
    child.send_signal(signal.SIGHUP)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    shown = {line["job_id"] for line in read_sheet(output, "jobs")}
    assert shown == accepted_ids(server)  # requests in flight were let finish and their ids written
    code, err = finish(*run_args(source, output, server.url))
    assert code == 0, err
    no_duplicates(server)
    assert len(server.simulator.accepted) == 80


STRACE = shutil.which("strace")
_CALL = re.compile(r"^(?P<pid>\d+)\s+(?P<name>\w+)\((?P<fd>\d+)<(?P<path>[^>]*)>(?P<rest>.*)$")
_RESUMED = re.compile(r"^(?P<pid>\d+)\s+<\.\.\. (?P<name>\w+) resumed>")


@pytest.mark.skipif(
    (STRACE is None or not sys.platform.startswith("linux")) and os.environ.get("CI") != "true",
    reason="needs strace (.ci/run installs it)",
)
@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_no_request_leaves_while_a_journal_or_ledger_write_is_unsynced(tmp_path, start_simulator, transport) -> None:
    server = start_simulator(latency_ms=10)
    source, output = (
        write_csv(tmp_path, "title,tag,lyrics\n" + "".join(f"S{i},pop,la\n" for i in range(60))),
        (tmp_path / "out.xlsx"),
    )
    trace = tmp_path / "trace.txt"
    command = [
        sys.executable,
        "-m",
        "batchgen",
        *map(str, run_args(source, output, server.url, "--transport", transport)),
    ]
    done = subprocess.run(
        [
            str(STRACE),
            "-f",
            "-qq",
            "-yy",
            "-s",
            "24",
            "-o",
            str(trace),
            "-e",
            "trace=write,pwrite64,writev,pwritev,sendto,sendmsg,fsync,fdatasync",
            *command,
        ],
        env={**os.environ, "BATCHGEN_API_KEY": API_KEY},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(server.simulator.accepted) == 60
    dirty: dict[str, int] = {}  # database file -> number of writes not yet synced
    syncing: dict[str, str] = {}  # pid -> file whose sync has started but not returned
    requests = writes = syncs = 0
    for line in trace.read_text().splitlines():
        resumed = _RESUMED.match(line)
        if resumed:
            if resumed["name"] in ("fsync", "fdatasync") and resumed["pid"] in syncing:
                dirty.pop(syncing.pop(resumed["pid"]), None)
            continue
        call = _CALL.match(line)
        if call is None:
            continue
        name, path = call["name"], call["path"]
        database = path.endswith((".journal", ".journal-wal", "ledger.sqlite", "ledger.sqlite-wal"))
        if name in ("fsync", "fdatasync") and database:
            syncs += 1
            if "unfinished" in call["rest"]:
                syncing[call["pid"]] = path
            else:
                dirty.pop(path, None)
        elif name in ("pwrite64", "pwritev", "write", "writev") and database:
            writes += 1
            dirty[path] = dirty.get(path, 0) + 1
        elif name in ("write", "writev", "sendto", "sendmsg") and "TCP" in path and "POST /riffusion" in call["rest"]:
            requests += 1
            assert not dirty, f"request {requests} left with unsynced writes to {sorted(dirty)}"
    assert requests >= 60 and writes > 0 and syncs > 0
    assert not dirty, f"the process ended with unsynced writes to {sorted(dirty)}"
    assert len(read_sheet(output, "jobs")) == 120
