"""A team's machines on one PostgreSQL ledger, tried as a team would: each machine a real process with a home and
a state folder of its own, all against one simulator whose request log counts what was billed. No row is
billed twice, the merged outputs hold every id once, an outage stops the runs within seconds, and a replaced
machine gets its ids back from the ledger. The ledger's password never shows."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

import batchgen
from batchgen.journal import Journal, journal_path
from batchgen.paths import real
from batchgen.simulator import BackgroundSimulator

from ..support.helpers import songs, write_csv, write_xlsx
from ..support.pgserver import PASSWORD, PostgresServer, free_port
from ..support.runs import API_KEY, accepted_ids, accepted_keys, read_sheet, spawn, wait_for

pytestmark = pytest.mark.postgres
STOP_WITHIN = 5.0  # seconds after the ledger went away, no request is accepted any more


@dataclass
class Machine:
    """One machine of the team: its own home and state folder, its own output, the team's ledger."""

    folder: Path
    ledger: str

    @property
    def output(self) -> Path:
        return self.folder / "out.xlsx"

    @property
    def env(self) -> dict[str, str]:
        home, state = self.folder / "home", self.folder / "state"
        for path in (home, state):
            path.mkdir(parents=True, exist_ok=True)
        return {"HOME": str(home), "BATCHGEN_STATE_DIR": str(state), "BATCHGEN_LEDGER": self.ledger}

    def start(self, source: Path, server: BackgroundSimulator, *extra: str) -> subprocess.Popen[str]:
        args = ["run", source, "-o", self.output, "--base-url", server.url, "--quiet", *extra]
        return spawn(*args, env=self.env)


def machines(tmp_path: Path, ledger: str, count: int) -> list[Machine]:
    return [Machine(tmp_path / f"machine-{number}", ledger) for number in range(count)]


def wait(*children: subprocess.Popen[str]) -> list[tuple[int, str]]:
    """Each child's exit code and stderr; none shows a traceback or the ledger's password."""
    ended = []
    for child in children:
        out, err = child.communicate(timeout=180)
        assert "Traceback" not in err, err
        assert PASSWORD not in out + err
        ended.append((child.returncode, err))
    return ended


def billed_once(server: BackgroundSimulator, rows: int) -> None:
    keys = Counter(accepted_keys(server))
    assert max(keys.values()) == 1, "a row was accepted twice"
    assert len(keys) == rows


def merged(tmp_path: Path, team: list[Machine]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """``batchgen export --merge`` of every machine's output: its jobs and failed sheets."""
    target = tmp_path / "merged.xlsx"
    args: list[str | Path] = ["export", target]
    for machine in team:
        args += ["--merge", machine.output]
    ((code, err),) = wait(spawn(*args))
    assert code == 0, err
    return read_sheet(target, "jobs"), read_sheet(target, "failed")


def complete(tmp_path: Path, team: list[Machine], server: BackgroundSimulator) -> None:
    """The merged output holds every id the provider returned, once, and no row is listed as failed."""
    jobs, failed = merged(tmp_path, team)
    ids = [line["job_id"] for line in jobs]
    assert len(ids) == len(set(ids)) and set(ids) == accepted_ids(server)
    assert failed == []


@pytest.mark.parametrize("count, rows", [(2, 300), (4, 200)])
def test_machines_on_one_sheet_at_once_bill_every_row_once(
    tmp_path: Path, start_simulator, ledger_url: str, count: int, rows: int
) -> None:
    server = start_simulator(latency_ms=400)  # runs long enough to overlap, however fast each starts
    source = write_xlsx(tmp_path, songs(rows))
    team = machines(tmp_path, ledger_url, count)
    ended = wait(*[machine.start(source, server) for machine in team])
    assert all(code in (0, 1) for code, _ in ended), ended
    billed_once(server, rows)
    complete(tmp_path, team, server)
    assert sum(bool(read_sheet(machine.output, "jobs")) for machine in team) >= 2  # they did share the sheet
    host = socket.gethostname()
    for machine, (code, err) in zip(team, ended, strict=True):
        skipped = [line for line in read_sheet(machine.output, "failed") if line["state"] == "skipped"]
        assert (code == 1) == bool(skipped), err
        others = {f"{host}:{real(other.output)}" for other in team if other is not machine}
        assert all(any(name in str(line["error"]) for name in others) for line in skipped)


def test_a_ledger_out_of_reach_at_the_start_sends_nothing(tmp_path: Path, start_simulator, postgres) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(10))
    port = free_port()
    machine = Machine(tmp_path / "machine", f"postgresql://batchgen:{PASSWORD}@127.0.0.1:{port}/team")
    for extra in ((), ("--ledger", machine.ledger)):  # from the environment, then the flag
        started = time.monotonic()
        ((code, err),) = wait(machine.start(source, server, *extra))
        assert code == 3, err
        lines = err.strip().splitlines()
        assert [line for line in lines if line.startswith("error:")] == [lines[-1]]
        assert lines[-1].startswith(
            f"error: the team ledger postgresql://batchgen@127.0.0.1:{port}/team cannot be used"
        )
        assert time.monotonic() - started < 15
    assert server.simulator.received == []


def test_a_ledger_that_stops_mid_run_stops_dispatching_and_the_reruns_finish(
    tmp_path: Path, start_simulator, postgres: PostgresServer, ledger_url: str
) -> None:
    server = start_simulator(latency_ms=100)
    rows = 240
    source = write_xlsx(tmp_path, songs(rows))
    team = machines(tmp_path, ledger_url, 2)
    children = [machine.start(source, server, "--concurrency", "4") for machine in team]
    try:
        wait_for(lambda: len(server.simulator.accepted) >= 60)
        stopped = time.time()
        postgres.stop("immediate")
        ended = wait(*children)
    finally:
        postgres.start()
    late = max(entry["at"] for entry in server.simulator.accepted) - stopped
    print(f"last request accepted {late:.2f} s after the ledger stopped")
    assert late < STOP_WITHIN
    for code, err in ended:
        assert code == 3, err
        assert err.strip().splitlines()[-1].startswith("error: the team ledger postgresql://batchgen@127.0.0.1:")
    assert len(server.simulator.accepted) < rows
    journaled: dict[str, list[str]] = {}
    for machine in team:  # requests in flight finished: each row is done with its ids, or was never sent
        with Journal.open(journal_path(real(machine.output))) as journal:
            assert {record.state for record in journal.records()} <= {"done", "pending"}
            journaled.update({done.key: done.job_ids for done in journal.done()})
    assert journaled == {entry["idempotency_key"]: entry["job_ids"] for entry in server.simulator.accepted}
    ended = wait(*[machine.start(source, server, "--concurrency", "8") for machine in team])
    assert all(code in (0, 1) for code, _ in ended), ended
    billed_once(server, rows)
    complete(tmp_path, team, server)
    with psycopg.connect(ledger_url) as db:  # brought up to date from the journals: every id is in the ledger
        found = db.execute("SELECT unnest(job_ids) FROM batchgen_sent WHERE state = 'done'").fetchall()
    assert {job_id for (job_id,) in found} == accepted_ids(server)


def test_a_replaced_machine_gets_every_id_back_from_the_ledger_and_sends_nothing(
    tmp_path: Path, start_simulator, ledger_url: str
) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(60))
    (machine,) = machines(tmp_path, ledger_url, 1)
    ((code, err),) = wait(machine.start(source, server))
    assert code == 0, err
    shutil.rmtree(machine.folder)  # output, journal, home and state folder gone
    machine.folder.mkdir()
    ((code, err),) = wait(machine.start(source, server))
    assert code == 0, err
    assert "warning: 60 row(s) restored to the journal" in err
    assert len(server.simulator.accepted) == 60
    ids = [line["job_id"] for line in read_sheet(machine.output, "jobs")]
    assert len(ids) == len(set(ids)) and set(ids) == accepted_ids(server)


def test_the_library_records_this_machine_and_the_real_path(tmp_path: Path, start_simulator, ledger_url: str) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(5))
    (tmp_path / "sub").mkdir()
    result = batchgen.run(
        source, tmp_path / "sub" / ".." / "out.xlsx", base_url=server.url, api_key=API_KEY, ledger=ledger_url
    )
    assert result.ok
    with psycopg.connect(ledger_url) as db:
        outputs = db.execute("SELECT DISTINCT output FROM batchgen_sent").fetchall()
    assert outputs == [(f"{socket.gethostname()}:{real(tmp_path / 'out.xlsx')}",)]


def test_an_edit_moved_into_another_machines_shard_is_changed_not_sent(
    tmp_path: Path, start_simulator, ledger_url: str
) -> None:
    """Two machines, a shard each by row number; a row inserted at the top moves an edited row into the other
    machine's shard. The team ledger knows the song by its title's fingerprint: not billed again without
    ``--resend-changed``."""
    server = start_simulator()
    one, two = machines(tmp_path, ledger_url, 2)

    def sheet(rows: list[tuple[str, str]]) -> Path:
        return write_csv(tmp_path, "title,tag,lyrics\n" + "".join(f"{title},pop,{words}\n" for title, words in rows))

    ed = [(f"Ed {i:03d}", f"words {i}") for i in range(1, 11)]
    assert [code for code, _ in wait(one.start(sheet(ed), server, "--rows", "2-6"))] == [0]
    assert [code for code, _ in wait(two.start(sheet(ed), server, "--rows", "7-11"))] == [0]
    edited = [
        ("Inserted", "new words"),
        *((title, f"{words} fixed" if title == "Ed 005" else words) for title, words in ed),
    ]
    assert [code for code, _ in wait(one.start(sheet(edited), server, "--rows", "2-6"))] == [0]
    ((code, err),) = wait(two.start(sheet(edited), server, "--rows", "7-12"))
    assert [entry["body"]["title"] for entry in server.simulator.accepted[10:]] == ["Inserted"], err
    assert code == 1 and "row 7: lyrics changed since it was sent on" in err and "--resend-changed" in err
    ((code, err),) = wait(two.start(sheet(edited), server, "--rows", "7-12", "--resend-changed"))
    assert code == 0, err
    assert [entry["body"]["lyrics"] for entry in server.simulator.accepted[11:]] == ["words 5 fixed"]
    billed_once(server, 12)
