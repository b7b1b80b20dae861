"""Journal and writer units: row keys, crash recovery, atomic and formula-safe output."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from email.utils import formatdate
from pathlib import Path

import openpyxl
import pytest

from batchgen.errors import UsageError
from batchgen.journal import Journal, row_keys
from batchgen.loader import SourceRow
from batchgen.outcome import parse_retry_after
from batchgen.submit import Settings, Submitter
from batchgen.validate import ValidRow
from batchgen.writer import check_output, write_output

from .conftest import API_KEY

A = {"model": "FUZZ-1.0", "title": "A", "tag": "pop", "lyrics": "la", "instrumental": False}
B = {**A, "title": "B"}


def test_row_keys_survive_reordering_and_count_duplicates() -> None:
    first = row_keys([A, B, A])
    assert len(set(first)) == 3
    assert first[0] != first[2]  # an intentional duplicate is its own row
    reordered = row_keys([B, A, A])
    assert set(reordered) == set(first)
    assert row_keys([{**A, "title": "A "}])[0] != first[0]


def journal_with(tmp_path: Path, *payloads: dict) -> tuple[Journal, int]:
    journal = Journal.open(tmp_path / "out.xlsx.journal")
    rows = [ValidRow(SourceRow(i + 2, {}, {"note": f"n{i}"}), payload) for i, payload in enumerate(payloads)]
    return journal, journal.start_run("in.csv", rows, [], ["note"])


def test_in_flight_rows_become_unknown_after_a_crash(tmp_path: Path) -> None:
    journal, run = journal_with(tmp_path, A, B)
    key_a, key_b = row_keys([A, B])
    journal.mark_in_flight(key_a)
    journal.mark_in_flight(key_b)
    journal.mark_done(key_b, ["id-1"], 200)
    journal.close()
    with Journal.open(tmp_path / "out.xlsx.journal") as journal:
        assert journal.recover() == 1
        states = {record.key: record.state for record in journal.records()}
        assert states == {key_a: "unknown", key_b: "done"}
        assert journal.to_send(run, retry_unknown=False) == []
        assert [record.key for record in journal.to_send(run, retry_unknown=True)] == [key_a]


def test_output_is_replaced_atomically_and_keeps_text_as_text(tmp_path: Path) -> None:
    evil = {**A, "title": "=1+1\x07"}
    journal, _ = journal_with(tmp_path, evil)
    journal.mark_done(row_keys([evil])[0], ["id-1", "id-2"], 200)
    output = tmp_path / "out.xlsx"
    write_output(journal, output)
    write_output(journal, output)
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith("out.xlsx.journal")) == ["out.xlsx"]
    sheet = openpyxl.load_workbook(output)["jobs"]
    assert [cell.value for cell in sheet[1]] == ["row", "title", "job_id", "job_index", "tag", "model", "submitted_at", "note"]
    # text stays text; the control character is kept in Excel's own escape (_x0007_), not dropped
    assert [(cell.value, cell.data_type) for cell in sheet[2]][:3] == [(2, "n"), ("=1+1_x0007_", "s"), ("id-1", "s")]
    assert sheet.max_row == 3


def test_csv_output_neutralises_formulas(tmp_path: Path) -> None:
    evil = {**A, "title": "+cmd|' /C calc'!A0"}
    journal, _ = journal_with(tmp_path, evil)
    journal.mark_done(row_keys([evil])[0], ["id-1"], 200)
    write_output(journal, tmp_path / "out.csv")
    assert "'+cmd|' /C calc'!A0" in (tmp_path / "out.csv").read_text(encoding="utf-8-sig")


def test_an_output_that_is_not_ours_is_refused_before_sending(tmp_path: Path) -> None:
    (tmp_path / "mine.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(UsageError, match="exists but cannot be read"):
        check_output(tmp_path / "mine.xlsx")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="has no job_id column"):
        check_output(tmp_path / "other.csv")


@pytest.mark.parametrize("header, seconds", [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("junk", None), (None, None), ("999999", 3600.0)])
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date() -> None:
    assert 8 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10


class ReadOnlyOnceSent(Journal):
    """A journal whose disk goes away right after a request leaves: the worst moment for a full disk."""

    def mark_in_flight(self, key: str) -> None:
        super().mark_in_flight(key)
        self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)


def test_journal_failure_stops_the_run_and_shows_the_ids_it_could_not_store(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    journal = ReadOnlyOnceSent.open(tmp_path / "out.xlsx.journal")
    run = journal.start_run("in.csv", [ValidRow(SourceRow(2, {}, {}), A), ValidRow(SourceRow(3, {}, {}), B)], [], [])
    settings = Settings(base_url=server.url, api_key=API_KEY, concurrency=1, progress=False)
    report = asyncio.run(Submitter(journal, settings).run(journal.to_send(run, retry_unknown=False)))
    (entry,) = server.simulator.accepted
    assert report.journal_error.endswith(f"job ids of row 2 not stored: {', '.join(entry['job_ids'])}")
    assert "attempt to write a readonly database" in report.journal_error
    assert report.stopped == report.journal_error


def test_an_unchanged_output_is_not_rewritten_but_an_edited_one_is(tmp_path: Path) -> None:
    journal, _ = journal_with(tmp_path, A)
    journal.mark_done(row_keys([A])[0], ["id-1"], 200)
    output = tmp_path / "out.xlsx"
    write_output(journal, output)
    first = output.stat().st_mtime_ns
    time.sleep(0.01)
    write_output(journal, output)
    assert output.stat().st_mtime_ns == first
    output.write_bytes(output.read_bytes())  # the user opened and saved it
    edited = output.stat().st_mtime_ns
    write_output(journal, output)
    assert output.stat().st_mtime_ns != edited
    journal.mark_failed(row_keys([A])[0], 400, "changed", retryable=False)
    before = output.stat().st_mtime_ns
    write_output(journal, output)
    assert output.stat().st_mtime_ns != before
