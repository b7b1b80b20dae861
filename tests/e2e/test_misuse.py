"""The ordinary mistakes of a real night, tried as a user would, with real subprocesses against the simulator
and its request log: nothing is billed twice, no job id is lost, no file is overwritten by accident."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batchgen.journal import journal_path
from batchgen.paths import real

from ..support.helpers import songs, write_csv, write_xlsx
from ..support.runs import accepted_ids, finish, no_duplicates, read_sheet, run_args, spawn, wait_for


def test_a_deleted_journal_is_rebuilt_from_the_ledger_and_nothing_is_sent_again(tmp_path, start_simulator) -> None:
    server = start_simulator()
    source, output = write_xlsx(tmp_path, songs(30)), tmp_path / "out.xlsx"
    assert finish(*run_args(source, output, server.url, "--max-requests", "12"))[0] == 1
    journal_path(real(output)).unlink()
    code, err = finish(*run_args(source, output, server.url))
    assert code == 0, err
    assert "warning: 12 row(s) restored to the journal" in err
    no_duplicates(server)
    assert len(server.simulator.accepted) == 30
    status = subprocess.run(["batchgen", "status", output], capture_output=True, text=True)
    assert status.stdout.count("  done  restored from the ledger of sent rows") == 12, status.stdout
    assert {line["job_id"] for line in read_sheet(output, "jobs")} == accepted_ids(server)


def test_an_output_folder_restored_from_a_backup_sends_nothing_twice(tmp_path, start_simulator) -> None:
    server = start_simulator()
    folder, backup = tmp_path / "work", tmp_path / "backup"
    folder.mkdir()
    source, output = write_xlsx(tmp_path, songs(20)), folder / "out.xlsx"
    assert finish(*run_args(source, output, server.url, "--max-requests", "5"))[0] == 1
    shutil.copytree(folder, backup)  # last night's backup
    assert finish(*run_args(source, output, server.url))[0] == 0
    shutil.rmtree(folder)
    shutil.copytree(backup, folder)  # restored: the journal only knows the first five rows
    code, err = finish(*run_args(source, output, server.url))
    assert code == 0, err
    no_duplicates(server)
    assert len(server.simulator.accepted) == 20
    assert {line["job_id"] for line in read_sheet(output, "jobs")} == accepted_ids(server)


def test_without_journal_and_ledger_the_output_still_says_what_was_sent(tmp_path, start_simulator, state_dir) -> None:
    server = start_simulator()
    source, output = write_xlsx(tmp_path, songs(10)), tmp_path / "out.xlsx"
    assert finish(*run_args(source, output, server.url, "--max-requests", "4"))[0] == 1
    journal_path(real(output)).unlink()
    (state_dir / "ledger.sqlite").unlink()
    assert finish(*run_args(source, output, server.url))[0] == 0
    no_duplicates(server)
    assert len(server.simulator.accepted) == 10


@pytest.mark.parametrize("spelling", ["symlink", "dotdot", "hardlink"])
def test_one_run_per_output_by_any_name(tmp_path, start_simulator, spelling) -> None:
    server = start_simulator(latency_ms=100)
    source, output = write_xlsx(tmp_path, songs(40)), tmp_path / "out.xlsx"
    assert finish(*run_args(source, output, server.url, "--max-requests", "1"))[0] == 1  # the output exists
    (tmp_path / "sub").mkdir()
    other = {
        "symlink": tmp_path / "link.xlsx",
        "dotdot": tmp_path / "sub" / ".." / "out.xlsx",
        "hardlink": tmp_path / "hard.xlsx",
    }[spelling]
    if spelling == "symlink":
        other.symlink_to(output)
    elif spelling == "hardlink":
        os.link(output, other)
    first = spawn(*run_args(source, output, server.url, "--concurrency", "1"))
    wait_for(lambda: len(server.simulator.received) >= 3)
    code, err = finish(*run_args(source, other, server.url))
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith("error: -o: another batchgen run is using ")
    no_duplicates(server)


def test_a_second_output_sends_only_rows_never_sent(tmp_path, start_simulator) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(12))
    assert finish(*run_args(source, tmp_path / "first.xlsx", server.url, "--max-requests", "7"))[0] == 1
    code, err = finish(*run_args(source, tmp_path / "second.xlsx", server.url))
    assert code == 1 and "7 rows were already sent to another output" in err
    no_duplicates(server)
    assert len(server.simulator.accepted) == 12
    skipped = [line for line in read_sheet(tmp_path / "second.xlsx", "failed") if line["state"] == "skipped"]
    assert len(skipped) == 7 and all(str(real(tmp_path / "first.xlsx")) in line["error"] for line in skipped)
    status = subprocess.run(["batchgen", "status", tmp_path / "second.xlsx"], capture_output=True, text=True)
    assert "skipped 7" in status.stdout and "already sent to" in status.stdout
    code, _ = finish(*run_args(source, tmp_path / "second.xlsx", server.url, "--allow-resend"))
    assert code == 0 and len(server.simulator.accepted) == 19  # resent on purpose


def test_overlapping_shards_send_the_overlap_once(tmp_path, start_simulator) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(10))
    assert finish(*run_args(source, tmp_path / "a.xlsx", server.url, "--rows", "2-8"))[0] == 0
    code, err = finish(*run_args(source, tmp_path / "b.xlsx", server.url, "--rows", "6-11"))
    assert code == 1 and "3 rows were already sent to another output" in err
    no_duplicates(server)
    assert len(server.simulator.accepted) == 10


def test_shards_run_one_after_the_other_to_one_output_show_every_row_as_the_inputs(tmp_path, start_simulator) -> None:
    """``--rows 2-6`` then ``--rows 7-11`` to one output: the first shard's rows are still in the input. Their
    lines showed an empty row, at the end, as if deleted, and the annotated copy showed no id for them."""
    server = start_simulator()
    source, output, copy = write_xlsx(tmp_path, songs(10)), tmp_path / "out.xlsx", tmp_path / "annotated.xlsx"
    assert finish(*run_args(source, output, server.url, "--rows", "2-6"))[0] == 0
    assert finish(*run_args(source, output, server.url, "--rows", "7-11", "--annotate", copy))[0] == 0
    no_duplicates(server)
    assert len(server.simulator.accepted) == 10
    jobs = read_sheet(output, "jobs")
    assert [int(line["row"]) for line in jobs] == sorted(n for n in range(2, 12) for _ in range(2))  # input order
    ids = {entry["body"]["title"]: entry["job_ids"] for entry in server.simulator.accepted}
    sheet = openpyxl.load_workbook(copy).active
    assert sheet is not None
    annotated = {row[0]: list(row[3:5]) for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert annotated == ids


@contextlib.contextmanager
def small_disk(tmp_path: Path, kind: str) -> Iterator[tuple[Path, Any]]:
    """A folder whose disk fills up: a 600 kB tmpfs (where the test may mount one), or a file size limit."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if kind == "rlimit":
        yield folder, lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the file size limit variant covers this")
    try:
        yield folder, None
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("kind", ["tmpfs", "rlimit"])
def test_a_full_disk_loses_no_job_id_and_a_rerun_bills_nothing_twice(
    tmp_path, start_simulator, state_dir, kind
) -> None:
    server = start_simulator(latency_ms=5)
    source = write_csv(tmp_path, "title,tag,lyrics\n" + "".join(f"Song {i},pop,{'la ' * 80}\n" for i in range(400)))
    with small_disk(tmp_path, kind) as (folder, limit):
        output = folder / "out.xlsx"
        child = spawn(*run_args(source, output, server.url, "--concurrency", "8"), preexec_fn=limit)
        _, err = child.communicate(timeout=120)
        assert child.returncode == 4, err
        assert "Traceback" not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: cannot write the journal")
        if not output.exists():  # the summary never points at an output that is not there
            assert f"output: not written ({real(output)};" in err, err
        printed = {
            i
            for line in err.splitlines()
            if line.startswith("job ids not stored:")
            for i in line.split("  ")[-1].split(", ")
        }
        # Answers that came after the first failed write may still fit (a smaller transaction): those ids are
        # stored. Every id that was not is on stderr, said so on the last line, and in a rescue file.
        assert ("were not stored" in last) == bool(printed), err
        if printed:
            rescued = list((state_dir / "rescue").glob("*.jsonl"))
            assert len(rescued) == 1 and all(i in rescued[0].read_text() for i in printed)
        assert "every job id is kept" not in err
        sent = len(server.simulator.accepted)
        assert sent < 400
        moved = tmp_path / "roomy"
        shutil.copytree(folder, moved)  # the user frees space: here, by moving the folder to a roomy disk
    code, err = finish(*run_args(source, moved / "out.xlsx", server.url, "--allow-resend", "--concurrency", "8"))
    assert code in (0, 1), err
    no_duplicates(server)
    unknown = {line["title"] for line in read_sheet(moved / "out.xlsx", "failed") if line["state"] == "unknown"}
    shown = {line["job_id"] for line in read_sheet(moved / "out.xlsx", "jobs")}
    for entry in server.simulator.accepted:  # every id the provider returned is in the output, or its row unknown
        assert set(entry["job_ids"]) <= shown or entry["body"]["title"] in unknown


def test_an_output_that_cannot_be_written_is_exit_4_and_a_rerun_writes_it(tmp_path, start_simulator) -> None:
    server = start_simulator()
    source, output = write_xlsx(tmp_path, songs(6)), tmp_path / "results.csv"
    assert finish(*run_args(source, output, server.url, "--max-requests", "3"))[0] == 1
    failures = tmp_path / "results.failed.csv"
    failures.unlink()
    failures.mkdir()  # something in the way: the failures file cannot be replaced
    code, err = finish(*run_args(source, output, server.url))
    assert code == 4, err
    assert err.strip().splitlines()[-1] == (
        f"error: cannot write {real(failures)} (a folder is in its place); nothing was sent"
    )
    assert len(server.simulator.accepted) == 3  # found before anything was sent
    failures.rmdir()
    assert finish(*run_args(source, output, server.url))[0] == 0
    no_duplicates(server)
    assert len(server.simulator.accepted) == 6
    assert len(output.read_text(encoding="utf-8-sig").splitlines()) == 13


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="a folder where no file can be made: Linux's /proc")
def test_an_output_whose_lock_cannot_be_made_is_exit_4_not_another_run(tmp_path, start_simulator) -> None:
    """No other run held it: the lock file could not be made. It said "another batchgen run is using" (exit 2)."""
    server = start_simulator()
    code, err = finish(*run_args(write_xlsx(tmp_path, songs(2)), Path("/proc/x.xlsx"), server.url))
    assert code == 4, err
    assert err.strip().splitlines()[-1] == (
        "error: cannot write /proc/x.xlsx (cannot make x.xlsx.journal.lock); nothing was sent"
    )
    assert server.simulator.received == []


def test_a_failing_log_file_stops_the_run_and_loses_no_id(tmp_path, start_simulator) -> None:
    server = start_simulator(latency_ms=5)
    source, output = write_xlsx(tmp_path, songs(50)), tmp_path / "out.xlsx"
    code, err = finish(*run_args(source, output, server.url, "--log-file", "/dev/full", "--concurrency", "4"))
    assert code == 4, err
    assert err.strip().splitlines()[-1].startswith("error: cannot write the log file /dev/full (No space left")
    assert len(server.simulator.accepted) <= 8
    assert {line["job_id"] for line in read_sheet(output, "jobs")} == accepted_ids(server)


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_a_wrong_base_path_stops_early_and_a_rerun_with_the_right_one_finishes(
    tmp_path, start_simulator, transport
) -> None:
    server = start_simulator(latency_ms=20)
    source, output = write_xlsx(tmp_path, songs(60)), tmp_path / "out.xlsx"
    code, err = finish(*run_args(source, output, server.url + "/v2", "--concurrency", "8", "--transport", transport))
    assert code == 3, err
    assert "the first 8 answers were all the same rejection (HTTP 404" in err
    assert len(server.simulator.received) == 0 and server.simulator.rejected_paths <= 3 * 8
    assert {line["state"] for line in read_sheet(output, "failed")} == {"pending"}
    assert finish(*run_args(source, output, server.url, "--transport", transport))[0] == 0
    assert len(server.simulator.accepted) == 60


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_a_timeout_below_the_provider_latency_stops_early(tmp_path, start_simulator, transport) -> None:
    server = start_simulator(latency_ms=1500)
    source, output = write_xlsx(tmp_path, songs(60)), tmp_path / "out.xlsx"
    code, err = finish(
        *run_args(source, output, server.url, "--concurrency", "4", "--timeout", "0.5", "--transport", transport)
    )
    assert code == 3, err
    found = re.search(
        r"no answer within --timeout 0\.5 s; the provider may still be creating jobs for these (\d+) rows", err
    )
    assert found is not None, err
    assert len(server.simulator.received) <= 3 * 4
    states = Counter(line["state"] for line in read_sheet(output, "failed"))
    assert states["unknown"] == len(server.simulator.received) and states["pending"] == 60 - states["unknown"]
    # the requests still in flight when the first 4 timed out ended unknown too: the message counts every one
    assert int(found.group(1)) == states["unknown"] > 4


def test_rows_deleted_and_inserted_keep_current_row_numbers_and_annotations(tmp_path, start_simulator) -> None:
    server = start_simulator()
    output, annotated = tmp_path / "out.xlsx", tmp_path / "annotated.xlsx"
    rows = [["title", "tag", "lyrics"], *[[f"Song {i}", "pop", "la"] for i in range(6)]]
    source = write_xlsx(tmp_path, rows)
    assert finish(*run_args(source, output, server.url, "--max-requests", "4", "--concurrency", "1"))[0] == 1
    assert [entry["body"]["title"] for entry in server.simulator.accepted] == ["Song 0", "Song 1", "Song 2", "Song 3"]
    edited = [rows[0], ["New first", "rock", "la"], *rows[1:3], *rows[4:], ["New last", "jazz", "la"]]  # -Song 2
    write_xlsx(tmp_path, edited)
    assert finish(*run_args(source, output, server.url, "--annotate", annotated))[0] == 0
    no_duplicates(server)
    jobs = read_sheet(output, "jobs")
    by_title = {line["title"]: int(line["row"]) if line["row"] else None for line in jobs}
    assert [line["title"] for line in jobs][::2] == [
        "New first",
        "Song 0",
        "Song 1",
        "Song 3",
        "Song 4",
        "Song 5",
        "New last",
        "Song 2",
    ]  # current order, the deleted row last
    assert by_title == {
        "New first": 2,
        "Song 0": 3,
        "Song 1": 4,
        "Song 3": 5,
        "Song 4": 6,
        "Song 5": 7,
        "New last": 8,
        "Song 2": None,
    }  # the deleted row's old number, 4, is Song 1's now
    ids = {entry["body"]["title"]: entry["job_ids"] for entry in server.simulator.accepted}
    sheet = openpyxl.load_workbook(annotated).active
    assert sheet is not None
    for row in sheet.iter_rows(min_row=2, values_only=True):
        assert list(row[3:5]) == ids[row[0]] and row[5] == "done"  # every id on its own song's row


def test_copies_never_overwrite_the_input_or_the_output(tmp_path, start_simulator, monkeypatch) -> None:
    server = start_simulator()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    source = write_xlsx(tmp_path, songs(2))
    before = source.read_bytes()
    for flag, target in (("--annotate", "sub/../input.xlsx"), ("--annotate", "out.xlsx")):
        code, err = finish(*run_args(Path("input.xlsx"), Path("out.xlsx"), server.url, flag, target))
        assert code == 2 and err.strip().splitlines()[-1].startswith(f"error: {flag}: {target} is the "), err
    code, err = finish("validate", "input.xlsx", "--report", "./sub/../input.xlsx")
    assert code == 2 and "is the input" in err
    assert source.read_bytes() == before and server.simulator.received == []


def test_a_report_or_log_never_writes_over_a_persons_file_another_output_or_the_ledger(
    tmp_path, start_simulator, state_dir
) -> None:
    """``report -o`` wrote its page over a catalog, another output and the ledger (every later run then failed,
    and the advice to use another state folder would have billed every row again); a log went into the ledger."""
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(3))
    for output in ("out.xlsx", "other.xlsx"):
        assert finish(*run_args(source, tmp_path / output, server.url, "--allow-resend"))[0] == 0
    catalog, ledger = tmp_path / "mine.xlsx", state_dir / "ledger.sqlite"
    catalog.write_bytes(b"a person's catalog")
    before = {path: path.read_bytes() for path in (catalog, tmp_path / "other.xlsx", ledger)}
    for target in before:
        code, err = finish("report", tmp_path / "out.xlsx", "-o", target)
        assert code == 2 and err.strip().startswith(f"error: -o: {real(target)} "), err
    assert "is batchgen's ledger of sent rows" in err
    assert {path: path.read_bytes() for path in before} == before
    page = tmp_path / "night.html"
    for _ in range(2):  # a page it wrote is its own to write again
        assert finish("report", tmp_path / "out.xlsx", "-o", page)[0] == 0
    fresh = state_dir / "fresh"
    fresh.mkdir()
    code, err = finish(
        *run_args(source, tmp_path / "third.xlsx", server.url, "--log-file", fresh / "ledger.sqlite"),
        env={"BATCHGEN_STATE_DIR": str(fresh)},
    )
    assert code == 2 and "error: --log-file: " in err and "ledger of sent rows" in err, err
    assert len(server.simulator.received) == 6


def test_new_outputs_get_the_users_umask(tmp_path, start_simulator) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(2))

    def umask_022() -> None:
        os.umask(0o022)

    assert finish(*run_args(source, tmp_path / "out.xlsx", server.url), preexec_fn=umask_022)[0] == 0
    assert stat.S_IMODE((tmp_path / "out.xlsx").stat().st_mode) == 0o644
    (tmp_path / "out.xlsx").chmod(0o640)
    write_xlsx(tmp_path, songs(3))
    assert finish(*run_args(source, tmp_path / "out.xlsx", server.url), preexec_fn=umask_022)[0] == 0
    assert stat.S_IMODE((tmp_path / "out.xlsx").stat().st_mode) == 0o640  # a replaced file keeps its mode
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_bad_settings_leave_the_journal_as_it_was(tmp_path, start_simulator) -> None:
    server = start_simulator()
    source, output = write_xlsx(tmp_path, songs(8)), tmp_path / "out.xlsx"
    assert finish(*run_args(source, output, server.url, "--max-requests", "3"))[0] == 1
    journal = journal_path(real(output)).read_bytes()
    for url in ("http://[::1", "https://exa..mple.com", "http://127.0.0.1:99999", f"{server.url} x"):
        code, err = finish(*run_args(source, output, url))
        assert code == 2 and err.strip().startswith("error: --base-url: "), err
    code, err = finish(*run_args(source, output, server.url), key="sk\nbroken")
    assert code == 2 and err.strip() == "error: the API key has a line break inside it; check BATCHGEN_API_KEY"
    assert journal_path(real(output)).read_bytes() == journal
    code, err = finish(*run_args(source, output, server.url))
    assert code == 0, err
    assert len(server.simulator.accepted) == 8 and "unknown" not in err


@pytest.mark.parametrize("where", ["query", "credentials", "path"])
def test_a_key_put_in_the_base_url_is_never_printed(tmp_path, start_simulator, where) -> None:
    """The user pasted the key into the URL: refused, and the message (cron mail, a CI log) never shows it."""
    server = start_simulator()
    key = "sk-test-1234567890abcdef"
    host = server.url.removeprefix("http://")
    url = {
        "query": f"{server.url}/x?api_key={key}",
        "credentials": f"http://user:{key}@{host}/x",
        "path": f"{server.url}/{key} /x",
    }[where]
    code, err = finish(*run_args(write_xlsx(tmp_path, songs(2)), tmp_path / "out.xlsx", url), key=key)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: --base-url: "), err
    assert key not in err and "1234567890" not in err
    assert server.simulator.received == []


def test_identical_rows_sent_on_purpose_stay_done_when_the_flag_is_dropped(tmp_path, start_simulator) -> None:
    """Takes sent with --send-duplicates are paid and have ids: a later run without the flag (or a --rows shard
    of them) never calls them ``duplicate, not sent``, and they keep their place in the output."""
    server = start_simulator()
    source = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\nA,pop,la\n A ,pop,la\nB,pop,lb\n")
    output = tmp_path / "out.csv"
    assert finish(*run_args(source, output, server.url, "--rows", "2-3"))[0] == 1  # row 3: duplicate
    code, err = finish(*run_args(source, output, server.url, "--send-duplicates"))
    assert code == 0, err
    assert len(server.simulator.accepted) == 4
    for extra, summary in ((["--rows", "3-4"], "2 rows: 2 done;"), ([], "4 rows: 4 done;")):
        code, err = finish(*run_args(source, output, server.url, *extra))
        assert code == 0 and summary in err, err
        assert len(server.simulator.accepted) == 4
    with output.open(encoding="utf-8-sig") as handle:
        lines = list(csv.DictReader(handle))
    assert [line["row"] for line in lines] == ["2", "2", "3", "3", "4", "4", "5", "5"]
    status = subprocess.run(["batchgen", "status", output], capture_output=True, text=True)
    assert "duplicate" not in status.stdout and "done 4" in status.stdout, status.stdout
