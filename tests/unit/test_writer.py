"""The output: row order and numbers of the current input, kept lines, collisions, atomic and mode-keeping
writes, text never a formula; and which spellings name the same file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batchgen.errors import UsageError
from batchgen.files import atomic_write
from batchgen.journal import Journal, LeftOut, NewRow, row_keys
from batchgen.paths import output_lock, real, refuse_same, same_file
from batchgen.writer import _csv_cell, _csv_text, build_failed, build_jobs, check_output, read_jobs, write_output

A = {"model": "FUZZ-1.0", "title": "A", "tag": "pop", "lyrics": "la", "instrumental": False}


def song(title: str) -> dict[str, Any]:
    return {**A, "title": title}


def start(journal: Journal, titles: list[str], numbers: list[int], extras: dict[str, Any] | None = None) -> int:
    payloads = [song(t) for t in titles]
    keys = row_keys(payloads)
    new = [
        NewRow(k, n, n, p["title"], json.dumps(p), extras or {})
        for k, n, p in zip(keys, numbers, payloads, strict=True)
    ]
    return journal.start_run("in.csv", new, [], list((extras or {}).keys()))


def finish(journal: Journal, title: str, *ids: str) -> None:
    journal.mark_done(row_keys([song(title)])[0], list(ids), 200)


def test_jobs_follow_the_current_input_with_its_row_numbers(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "out.xlsx.journal")
    start(journal, ["A", "B", "C"], [2, 3, 4])
    finish(journal, "C", "c1", "c2")
    finish(journal, "B", "b1", "b2")
    start(journal, ["New", "C", "A"], [2, 3, 4])  # B deleted, a row inserted on top, A moved down
    finish(journal, "A", "a1", "a2")
    _header, lines = build_jobs([journal], ([], []))
    assert [(line[0], line[1], line[2]) for line in lines] == [
        (3, "C", "c1"),
        (3, "C", "c2"),
        (4, "A", "a1"),
        (4, "A", "a2"),
        ("", "B", "b1"),
        ("", "B", "b2"),
    ]  # rows of the current input in order; B, no longer in it, at the end with no number (its 3 is C's now)


def test_outputs_of_several_machines_merge_in_row_order_with_no_stale_failure(tmp_path: Path) -> None:
    """Two machines ran one sheet: each left out the rows the other sent, and each saw the same invalid row."""
    titles, numbers = ["A", "B", "C", "D"], [2, 3, 4, 5]
    machines = [Journal.open(tmp_path / f"{name}.xlsx.journal") for name in "ab"]
    key = dict(zip(titles, row_keys([song(t) for t in titles]), strict=True))
    invalid = LeftOut(6, 6, "E", "tag: required", {})
    for journal, mine, theirs in zip(machines, ("AC", "B"), ("BD", "AC"), strict=True):
        start(journal, titles, numbers)
        for title in mine:
            finish(journal, title, f"{title.lower()}1")
        elsewhere = [
            LeftOut(n, n, t, "sent by another run", {}, "skipped", key[t])
            for t, n in zip(titles, numbers, strict=True)
            if t in theirs
        ]
        journal.leave_out([*elsewhere, invalid])
    machines[1].mark_unknown(key["D"], None, "dropped")  # b sent D, no ids came: a's "skipped" must not hide it
    _header, jobs = build_jobs(machines, ([], []))
    assert [line[2] for line in jobs] == ["a1", "b1", "c1"]
    _header, failed = build_failed(machines)
    assert failed == [[5, "D", "unknown", "dropped"], [6, "E", "invalid", "tag: required"]]


def test_existing_lines_are_kept_and_ids_never_repeat(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "out.xlsx.journal")
    start(journal, ["A"], [2])
    finish(journal, "A", "a1", "a2")
    old = (["row", "title", "job_id", "checked by"], [[9, "A", "a1", "Ana"], [7, "Z", "z1", "Bo"]])
    header, lines = build_jobs([journal], old)
    assert header[:4] == ["row", "title", "job_id", "checked by"]
    assert [line[:4] for line in lines] == [[2, "A", "a1", "Ana"], [2, "A", "a2", ""], [7, "Z", "z1", "Bo"]]


def test_passthrough_columns_named_like_output_columns_are_renamed(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "out.xlsx.journal")
    start(journal, ["A"], [2], {"job_id": "mine", "Row": "r9", "Key": "k7", "Notes": "n"})
    finish(journal, "A", "a1")
    header, lines = build_jobs([journal], ([], []))
    assert header == [
        "row",
        "title",
        "job_id",
        "job_index",
        "tag",
        "model",
        "submitted_at",
        "key",
        "input job_id",
        "input Row",
        "input Key",
        "Notes",
    ]
    assert lines[0][:3] == [2, "A", "a1"] and lines[0][8:] == ["mine", "r9", "k7", "n"]


def test_output_is_replaced_atomically_and_keeps_text_as_text(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "out.xlsx.journal")
    start(journal, ["=1+1\x07"], [2])
    finish(journal, "=1+1\x07", "id-1", "id-2")
    output = tmp_path / "out.xlsx"
    write_output(journal, output)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("out.xlsx.journal")) == ["out.xlsx"]
    sheet = openpyxl.load_workbook(output)["jobs"]
    assert [(cell.value, cell.data_type) for cell in sheet[2]][:3] == [(2, "n"), ("=1+1_x0007_", "s"), ("id-1", "s")]


def test_csv_output_neutralises_formulas(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "out.csv.journal")
    start(journal, ["+cmd|' /C calc'!A0"], [2])
    finish(journal, "+cmd|' /C calc'!A0", "id-1")
    write_output(journal, tmp_path / "out.csv")
    assert "'+cmd|' /C calc'!A0" in (tmp_path / "out.csv").read_text(encoding="utf-8-sig")
    assert (tmp_path / "out.failed.csv").read_text(encoding="utf-8-sig").strip() == "row,title,state,error"


def test_new_files_get_the_umask_and_replaced_files_keep_their_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.bin", lambda handle: handle.write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o640
    (tmp_path / "kept.bin").write_bytes(b"old")
    (tmp_path / "kept.bin").chmod(0o604)
    atomic_write(tmp_path / "kept.bin", lambda handle: handle.write(b"new"))
    assert (tmp_path / "kept.bin").read_bytes() == b"new"
    assert stat.S_IMODE((tmp_path / "kept.bin").stat().st_mode) == 0o604


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.xlsx"
    target.write_bytes(b"old")

    def broken(handle: Any) -> None:
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.xlsx"]


def test_an_output_that_is_not_ours_is_refused_before_sending(tmp_path: Path) -> None:
    (tmp_path / "mine.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(UsageError, match="exists but cannot be read"):
        check_output(tmp_path / "mine.xlsx")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="has no job_id column"):
        check_output(tmp_path / "other.csv")
    with pytest.raises(UsageError, match=r"must end in \.xlsx or \.csv"):
        check_output(tmp_path / "out.txt")
    (tmp_path / "theirs.csv").write_text("row,title,job_id\n2,Mine,abc\n")  # a person's, no journal beside it
    with pytest.raises(UsageError, match=r"was not written by batchgen \(its jobs table has no job_index, tag, model"):
        check_output(tmp_path / "theirs.csv")
    # an output of batchgen from before rows had keys, its journal lost: still ours, restored from its lines
    (tmp_path / "old.csv").write_text("row,title,job_id,job_index,tag,model,submitted_at\n2,A,abc,1,pop,m,2026\n")
    check_output(tmp_path / "old.csv")
    assert read_jobs(tmp_path / "absent.xlsx") == ([], [])


def test_one_file_by_any_spelling(tmp_path: Path) -> None:
    target = tmp_path / "out.xlsx"
    target.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.xlsx").symlink_to(target)
    os.link(target, tmp_path / "hard.xlsx")
    for other in ("link.xlsx", "sub/../out.xlsx", "hard.xlsx"):
        assert same_file(tmp_path / other, target), other
    assert real(tmp_path / "link.xlsx") == real(target)
    assert not same_file(tmp_path / "sub", target)
    with pytest.raises(UsageError, match="is the input"):
        refuse_same(tmp_path / "sub" / ".." / "out.xlsx", "annotate", input=target)


def test_the_lock_is_held_by_one_run_per_output_whatever_its_name(tmp_path: Path) -> None:
    target = tmp_path / "out.xlsx"
    target.write_bytes(b"x")
    (tmp_path / "link.xlsx").symlink_to(target)
    os.link(target, tmp_path / "hard.xlsx")
    locks = tmp_path / "locks"
    with output_lock(real(target), locks):
        for other in ("link.xlsx", "hard.xlsx"):
            with (
                pytest.raises(UsageError, match="another batchgen run is using"),
                output_lock(real(tmp_path / other), locks),
            ):
                pass
    with output_lock(real(tmp_path / "link.xlsx"), locks):  # free again once the first run ended
        assert (tmp_path / "out.xlsx.journal.lock").exists()


def test_csv_quotes_read_back_exactly_and_an_older_unquoted_quote_stays() -> None:
    for title in ("-Intro-", "@home", "+1 Remix", "=Equals", "'Quoted'", "Plain", "'"):
        assert _csv_text(_csv_cell(title)) == title
    assert _csv_text("'Round Midnight") == "'Round Midnight"  # written as is before quotes were quoted
