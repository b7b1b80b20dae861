"""Every file a run writes is checked before the first request: never the input, never a file batchgen did not
write, each writable. Real subprocesses against the simulator; nothing may reach its log."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from batchgen.errors import OutputError
from batchgen.targets import check_targets

from ..support.helpers import write_csv, write_xlsx
from ..support.runs import finish, run_args

SONGS = "title,tag,lyrics\nA,pop,la\nB,pop,lb\nC,,lc\n"


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` (a file or a folder) made immutable (root, which a read-only mode does not stop) or read-only."""
    root = os.geteuid() == 0
    mode = path.stat().st_mode
    if root and subprocess.run(["chattr", "+i", path], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make a file immutable")
    if not root:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", path], check=True)
        else:
            path.chmod(mode)


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


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_producers_own_table_with_a_job_id_column_is_never_taken_for_an_output(
    tmp_path, start_simulator, kind
) -> None:
    server = start_simulator()
    theirs = tmp_path / f"theirs.{kind}"
    if kind == "csv":
        theirs.write_text("row,title,job_id\n2,Mine,abc\n")
    else:
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "jobs"
        sheet.append(["row", "title", "job_id", "my comment"])
        sheet.append([2, "Mine", "abc", "keep me"])
        book.save(theirs)
    before = theirs.read_bytes()
    code, err = finish(*run_args(write_csv(tmp_path, SONGS), theirs, server.url, "--skip-invalid"))
    assert code == 2, err
    assert _errors(err) == [
        f"error: -o: {theirs} exists and was not written by batchgen (its jobs table has no job_index, tag, model, "
        "submitted_at columns); move it away or choose another output"
    ]
    assert theirs.read_bytes() == before and server.simulator.received == []
    # an output batchgen wrote, whose journal is gone and whose lines a person sorted, is still its own
    output = tmp_path / f"out.{kind}"
    assert finish(*run_args(write_csv(tmp_path, SONGS), output, server.url, "--skip-invalid"))[0] == 1
    for journal in tmp_path.glob(f"out.{kind}.journal*"):
        journal.unlink()
    code, err = finish(*run_args(write_csv(tmp_path, SONGS), output, server.url, "--skip-invalid"))
    assert code == 1 and not _errors(err), err
    assert len(server.simulator.accepted) == 2  # restored from the output: nothing sent again


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


@pytest.mark.slow
@pytest.mark.parametrize("which", ["output", "annotated copy"])
def test_a_folder_that_cannot_be_written_stops_the_run_before_anything_is_sent(
    tmp_path, start_simulator, which
) -> None:
    """A new file is made in its folder (the output by a temporary file and a rename): the folder is what must
    be writable, for the annotated copy as for the output."""
    server = start_simulator()
    folder = tmp_path / "locked"
    folder.mkdir()
    source = write_csv(tmp_path, SONGS.replace("C,,lc", "C,pop,lc"))
    output, copy = tmp_path / "res.xlsx", tmp_path / "copy.xlsx"
    target = folder / ("res.xlsx" if which == "output" else "copy.xlsx")
    if which == "output":
        output = target
    else:
        copy = target
        source = tmp_path / "input.xlsx"
        write_xlsx(tmp_path, [["title", "tag", "lyrics"], ["A", "pop", "la"], ["B", "pop", "lb"]])
    with unwritable(folder):
        code, err = finish(*run_args(source, output, server.url, "--annotate", copy))
    assert code == 4, err
    assert _errors(err) == [f"error: cannot write {target} (its folder {folder} cannot be written); nothing was sent"]
    assert server.simulator.accepted == []


@pytest.mark.slow
def test_a_log_file_is_appended_to_only_when_it_is_a_batchgen_log(tmp_path, start_simulator) -> None:
    """The log is appended to, so an existing file that is not a batchgen log (a workbook, notes) would get
    JSON lines in its middle: refused before anything is sent; a log of an earlier run goes on."""
    server = start_simulator()
    source = write_csv(tmp_path, SONGS.replace("C,,lc", "C,pop,lc"))
    log = tmp_path / "run.log"
    assert finish(*run_args(source, tmp_path / "a.csv", server.url, "--log-file", log, "--max-requests", "2"))[0] == 1
    assert finish(*run_args(source, tmp_path / "a.csv", server.url, "--log-file", log))[0] == 0
    assert len(log.read_text().splitlines()) == 3  # one line per attempt, both runs
    budget = tmp_path / "budget.xlsx"
    write_xlsx(tmp_path, [["item", "cost"], ["studio", 100]], name="budget.xlsx")
    for mine in (budget, source):
        before = mine.read_bytes()
        code, err = finish(
            *run_args(
                write_csv(tmp_path, "title,tag,lyrics\nD,pop,ld\n", "d.csv"),
                tmp_path / "d.csv.out.csv",
                server.url,
                "--log-file",
                mine,
            )
        )
        assert code == 2, err
        assert _errors(err) == [
            f"error: --log-file: {mine} exists and is not a batchgen log (the log is appended to); choose another file"
        ]
        assert mine.read_bytes() == before
    assert len(server.simulator.accepted) == 3


@pytest.mark.slow
def test_an_annotated_copy_or_report_never_replaces_a_workbook_batchgen_did_not_write(
    tmp_path, start_simulator
) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, [["title", "tag", "lyrics"], ["A", "pop", "la"], ["B", "pop", "lb"]])
    budget = write_xlsx(tmp_path, [["item", "cost"], ["studio", 100]], name="budget.xlsx")
    before = budget.read_bytes()
    code, err = finish(*run_args(source, tmp_path / "out.xlsx", server.url, "--annotate", budget))
    assert code == 2, err
    refused = f"{budget} exists and was not written by batchgen; move it away or choose another file"
    assert _errors(err) == [f"error: --annotate: {refused}"]
    code, err = finish("validate", source, "--report", budget)
    assert code == 2 and _errors(err) == [f"error: --report: {refused}"], err
    assert budget.read_bytes() == before and server.simulator.accepted == []
    copy, report = tmp_path / "copy.xlsx", tmp_path / "report.xlsx"
    for _ in range(2):  # a copy or report batchgen wrote is its own to write again
        assert finish(*run_args(source, tmp_path / "out.xlsx", server.url, "--annotate", copy))[0] == 0
        assert finish("validate", source, "--report", report)[0] == 0
    assert len(server.simulator.accepted) == 2


@pytest.mark.slow
def test_a_sheet_a_person_added_to_the_output_is_never_dropped(tmp_path, start_simulator) -> None:
    """The output is rebuilt from the journal (its jobs, failed and night sheets): a notes sheet a producer added
    would be lost without a word, so the run is refused before anything is sent, naming it."""
    server = start_simulator()
    source, output = write_csv(tmp_path, SONGS.replace("C,,lc", "C,pop,lc")), tmp_path / "res.xlsx"
    assert finish(*run_args(source, output, server.url, "--max-requests", "1"))[0] == 1
    book = openpyxl.load_workbook(output)
    book.create_sheet("My notes").append(["call the label about B"])
    book.save(output)
    code, err = finish(*run_args(source, output, server.url))
    assert code == 2, err
    assert _errors(err) == [
        f"error: -o: {output} has sheets batchgen did not write (My notes), which rewriting it would lose; move "
        "them to another workbook or choose another output"
    ]
    assert len(server.simulator.accepted) == 1
    assert "My notes" in openpyxl.load_workbook(output).sheetnames
