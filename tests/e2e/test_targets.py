"""Every file a run writes is checked before the first request: never the input, never a file batchgen did not
write, each writable. Real subprocesses against the simulator; nothing may reach its log."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchgen.errors import OutputError
from batchgen.targets import check_targets

from ..support.helpers import write_csv
from ..support.runs import finish, run_args

SONGS = "title,tag,lyrics\nA,pop,la\nB,pop,lb\nC,,lc\n"


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` made immutable (root, which a read-only mode does not stop) or read-only."""
    root = os.geteuid() == 0
    if root and subprocess.run(["chattr", "+i", path], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make a file immutable")
    if not root:
        path.chmod(0o444)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", path], check=True)
        else:
            path.chmod(0o644)


def test_a_producers_own_failed_csv_is_never_replaced(tmp_path, start_simulator) -> None:
    server = start_simulator()
    notes = tmp_path / "notes.failed.csv"
    notes.write_text("my own notes,keep me\n")
    code, err = finish(*run_args(write_csv(tmp_path, SONGS), tmp_path / "notes.csv", server.url, "--skip-invalid"))
    assert code == 2, err
    assert _errors(err) == [
        f"error: -o: {notes} exists and was not written by batchgen (this output keeps its failed rows there); "
        "move it away or choose another output"
    ]
    assert notes.read_text() == "my own notes,keep me\n"
    assert server.simulator.accepted == [] and not (tmp_path / "notes.csv").exists()


def test_its_own_failures_file_as_input_is_never_written_over(tmp_path, start_simulator) -> None:
    server = start_simulator()
    output = tmp_path / "res.csv"
    code, err = finish(*run_args(write_csv(tmp_path, SONGS), output, server.url, "--skip-invalid"))
    assert code == 1, err
    failures = tmp_path / "res.failed.csv"
    before = failures.read_bytes()
    code, err = finish(*run_args(failures, output, server.url, "--skip-invalid"))
    assert code == 2, err
    assert _errors(err) == [f"error: -o: the failures file {failures} is the input ({failures}); choose another file"]
    assert failures.read_bytes() == before and len(server.simulator.accepted) == 2


def test_a_log_file_named_like_the_journal_is_refused(tmp_path, start_simulator) -> None:
    server = start_simulator()
    output = tmp_path / "res.csv"
    journal = tmp_path / "res.csv.journal"
    code, err = finish(*run_args(write_csv(tmp_path, SONGS), output, server.url, "--log-file", journal))
    assert code == 2, err
    assert _errors(err) == [f"error: --log-file: {journal} is the journal ({journal}); choose another file"]
    assert server.simulator.accepted == []


@pytest.mark.parametrize("which", ["res.csv", "res.failed.csv", "res.csv.journal"])
def test_an_output_file_that_cannot_be_written_stops_the_run_before_anything_is_sent(
    tmp_path, start_simulator, transport, which
) -> None:
    server = start_simulator()
    source, output = write_csv(tmp_path, SONGS), tmp_path / "res.csv"
    assert finish(*run_args(source, output, server.url, "--skip-invalid", "--transport", transport))[0] == 1
    source = write_csv(tmp_path, SONGS.replace("C,,lc", "C,pop,lc") + "D,pop,ld\n")
    target = tmp_path / which
    with unwritable(target):
        code, err = finish(*run_args(source, output, server.url, "--transport", transport))
    assert code == 4, err
    assert _errors(err) == [f"error: cannot write {target} (it is read-only or immutable); nothing was sent"]
    assert len(server.simulator.accepted) == 2


def test_an_unwritable_journal_is_an_output_error_naming_it(tmp_path) -> None:
    journal = tmp_path / "out.xlsx.journal-wal"
    journal.write_bytes(b"")
    with unwritable(journal), pytest.raises(OutputError, match=r"out\.xlsx\.journal-wal"):
        check_targets(tmp_path / "out.xlsx", source=None)
