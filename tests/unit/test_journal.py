"""The journal, the ledger and rescue files: keys, crash recovery, a done record is final, schema versions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from batchgen.errors import JournalError, UnsavedIds, UsageError
from batchgen.journal import Journal, LeftOut, NewRow, Record, row_keys
from batchgen.journal.schema import VERSION
from batchgen.rescue import clear_rescued, load_rescued, save_rescued

A = {"model": "FUZZ-1.0", "title": "A", "tag": "pop", "lyrics": "la", "instrumental": False}
B = {**A, "title": "B"}


def rows(*payloads: dict[str, Any]) -> list[NewRow]:
    keys = row_keys(payloads)
    return [
        NewRow(key, i + 2, i + 2, p["title"], json.dumps(p), {"note": f"n{i}"})
        for i, (key, p) in enumerate(zip(keys, payloads, strict=True))
    ]


def open_with(tmp_path: Path, *payloads: dict[str, Any]) -> tuple[Journal, int]:
    journal = Journal.open(tmp_path / "out.xlsx.journal")
    return journal, journal.start_run("in.csv", rows(*payloads), [], ["note"])


def test_row_keys_survive_reordering_and_count_duplicates() -> None:
    first = row_keys([A, B, A])
    assert len(set(first)) == 3 and first[0] != first[2]
    assert set(row_keys([B, A, A])) == set(first)
    assert row_keys([{**A, "title": "A "}])[0] != first[0]


def test_in_flight_rows_become_unknown_after_a_crash(tmp_path: Path) -> None:
    journal, run = open_with(tmp_path, A, B)
    key_a, key_b = row_keys([A, B])
    journal.mark_in_flight(key_a)
    journal.mark_in_flight(key_b)
    journal.mark_done(key_b, ["id-1"], 200)
    journal.close()
    with Journal.open(tmp_path / "out.xlsx.journal") as again:
        assert again.recover() == 1
        assert again.states() == {key_a: "unknown", key_b: "done"}
        assert again.to_send(run) == []
        assert [record.key for record in again.to_send(run, retry_unknown=True)] == [key_a]


def test_a_done_record_is_final_even_for_a_direct_sql_update(tmp_path: Path) -> None:
    journal, _ = open_with(tmp_path, A)
    (key,) = row_keys([A])
    journal.mark_done(key, ["id-1", "id-2"], 200)
    journal.mark_unknown(key, None, "late drop")  # guarded: nothing changes
    journal.mark_pending(key, 429, "late refusal")
    assert journal.states() == {key: "done"}
    assert journal.records()[0].job_ids == ["id-1", "id-2"]
    with pytest.raises(sqlite3.IntegrityError, match="a done row is final"), journal.db:
        journal.db.execute("UPDATE rows SET state='pending', job_ids=NULL WHERE key=?", (key,))


def test_retry_flags_select_what_is_sent_again(tmp_path: Path) -> None:
    journal, run = open_with(tmp_path, A, B, {**A, "title": "C"}, {**A, "title": "D"})
    a, b, c, d = row_keys([A, B, {**A, "title": "C"}, {**A, "title": "D"}])
    journal.mark_failed(a, 404, "rejected", retryable=False)
    journal.mark_failed(b, 503, "refused 5 times", retryable=True)
    journal.mark_unknown(c, None, "dropped")
    assert [r.key for r in journal.to_send(run)] == [b, d]
    assert [r.key for r in journal.to_send(run, retry_failed=True)] == [a, b, d]
    assert [r.key for r in journal.to_send(run, retry_unknown=True)] == [b, c, d]
    journal.leave_out([LeftOut(5, 5, "D", "already sent elsewhere", {}, "skipped", d)])
    assert [r.key for r in journal.to_send(run)] == [b]
    assert journal.counts(run) == {"failed": 2, "unknown": 1, "skipped": 1}


def test_a_first_release_journal_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.journal"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, input TEXT NOT NULL);"
        "CREATE TABLE rows (key TEXT PRIMARY KEY, row INTEGER NOT NULL, title TEXT NOT NULL, payload TEXT NOT NULL,"
        " extras TEXT NOT NULL, state TEXT NOT NULL, retryable INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL"
        " DEFAULT 0, job_ids TEXT, http_status INTEGER, message TEXT, seen_run INTEGER NOT NULL, created_at TEXT NOT"
        " NULL, updated_at TEXT NOT NULL, submitted_at TEXT);"
        "CREATE TABLE invalid (row INTEGER PRIMARY KEY, title TEXT NOT NULL, message TEXT NOT NULL, extras TEXT NOT"
        " NULL, state TEXT NOT NULL DEFAULT 'invalid');"
        "INSERT INTO runs VALUES (1, '2026-01-01', 'in.csv');"
        "INSERT INTO rows VALUES ('k-0', 2, 'A', '{}', '{}', 'done', 0, 1, '[\"old-id\"]', 200, NULL, 1,"
        " 'x', 'x', 'x');"
    )
    db.commit()
    db.close()
    with Journal.open(path) as journal:
        assert journal.db.execute("PRAGMA user_version").fetchone() == (VERSION,)
        assert [done.job_ids for done in journal.done()] == [["old-id"]]
        with pytest.raises(sqlite3.IntegrityError), journal.db:
            journal.db.execute("UPDATE rows SET state='pending'")


def test_a_journal_from_a_newer_batchgen_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.journal"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={VERSION + 1}")
    with pytest.raises(UsageError, match=f"written by a newer batchgen \\(journal version {VERSION + 1}"):
        Journal.open(path)


def test_an_unwritable_journal_is_a_journal_error(tmp_path: Path) -> None:
    journal, _ = open_with(tmp_path, A)
    journal.db.close()
    journal.db = sqlite3.connect(f"file:{journal.path}?mode=ro", uri=True)
    with pytest.raises(JournalError, match=r"cannot write the journal .* \(attempt to write a readonly database\)"):
        journal.mark_in_flight(row_keys([A])[0])


def test_rescue_files_keep_unsaved_ids_until_imported(tmp_path: Path, state_dir: Path) -> None:
    output = tmp_path / "out.xlsx"
    saved = save_rescued(output, [UnsavedIds(2, "A", "k-0", ("id-1", "id-2")), UnsavedIds(3, "B", "k-1", ("id-3",))])
    assert saved.is_relative_to(state_dir)
    with saved.open("a") as handle:
        handle.write('{"key": "k-2", "job_ids": ["cut short')  # a crash while appending
    assert [(e["key"], e["job_ids"]) for e in load_rescued(output)] == [("k-0", ["id-1", "id-2"]), ("k-1", ["id-3"])]
    assert load_rescued(tmp_path / "other.xlsx") == []
    clear_rescued(output)
    assert load_rescued(output) == []


def test_a_row_without_a_message_says_what_its_state_knows() -> None:
    def record(state: str, message: str | None = None) -> Record:
        return Record("k", 2, 2, "T", b"{}", {}, state, False, 0, [], None, message, 1, None)

    assert record("pending").reason == "not sent yet"
    assert record("in_flight").reason.startswith("sent, answer not received")
    assert record("pending", "HTTP 503: busy").reason == "HTTP 503: busy"
