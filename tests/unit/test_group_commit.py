"""The group commit and recovery, on real SQLite files: claims and answers of one turn share a flush, answers
reach the ledger lazily, a stopped run refuses waiting claims, and a run after a crash makes the journal and the
ledger agree. Also the per-user ledger file's migration and errors."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from batchgen.history import History
from batchgen.journal import Journal, Record
from batchgen.journal.group import ClaimsClosed, GroupCommit
from batchgen.journal.store import done, pending
from batchgen.ledger import BILLED, Batch, Entry, LedgerError
from batchgen.ledger.sqlite import SqliteLedger

from .test_journal import A, B, open_with, row_keys, rows

HOST = "https://api.example.com"


def ledger(folder: Path, output: str, host: str = HOST) -> SqliteLedger:
    return SqliteLedger(folder, host, output)


def test_an_older_ledger_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "ledger.sqlite")
    old.execute(
        "CREATE TABLE sent (key TEXT NOT NULL, host TEXT NOT NULL, output TEXT NOT NULL, state TEXT NOT NULL,"
        " sent_at TEXT NOT NULL, job_ids TEXT, PRIMARY KEY (key, host, output))"
    )
    old.execute("INSERT INTO sent VALUES ('k', ?, '/a', 'done', 't', '[\"id-1\"]')", (HOST,))
    old.execute("INSERT INTO sent VALUES ('k', 'http://127.0.0.1:9', '/a', 'unknown', 't', NULL)")  # older spellings
    old.execute("INSERT INTO sent VALUES ('k', 'http://LOCALHOST:9', '/a', 'done', 't', '[\"id-2\"]')")
    old.commit()
    old.close()
    (entry,) = ledger(tmp_path, "/b").lookup(["k"])
    assert (entry.output, entry.job_ids, entry.journal, entry.seq) == ("/a", ("id-1",), None, None)
    (loopback,) = ledger(tmp_path, "/b", host="http://localhost:9").lookup(["k"])  # one spelling, the done one kept
    assert (loopback.state, loopback.job_ids) == ("done", ("id-2",))
    newer = sqlite3.connect(tmp_path / "ledger.sqlite")
    newer.execute("PRAGMA user_version=99")
    newer.close()
    with pytest.raises(LedgerError, match="newer batchgen"):
        ledger(tmp_path, "/b")


def test_runs_that_start_at_once_on_an_older_ledger_all_open_it_its_rows_intact(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "ledger.sqlite")
    old.execute(
        "CREATE TABLE sent (key TEXT NOT NULL, host TEXT NOT NULL, output TEXT NOT NULL, state TEXT NOT NULL,"
        " sent_at TEXT NOT NULL, job_ids TEXT, journal TEXT, seq INTEGER, PRIMARY KEY (key, host, output))"
    )
    old.execute("INSERT INTO sent VALUES ('k', 'http://127.0.0.1:9', '/a', 'done', 't', '[\"id-1\"]', 'j', 1)")
    old.execute("PRAGMA user_version=2")
    old.commit()
    old.close()
    start, opened = threading.Barrier(3), []

    def first_use() -> None:
        start.wait()
        opened.append(ledger(tmp_path, "/b", host="http://localhost:9"))

    threads = [threading.Thread(target=first_use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 3
    for each in opened:
        assert [(sent.output, sent.job_ids, sent.journal) for sent in each.lookup(["k"])] == [("/a", ("id-1",), "j")]
        each.close()


def test_an_unwritable_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    with pytest.raises(LedgerError, match=r"cannot open the ledger of sent rows in .*BATCHGEN_STATE_DIR"):
        ledger(blocker, "/o")


def records(journal: Journal, run: int) -> list[Record]:
    return journal.to_send(run)


def test_group_commit_writes_the_claims_and_answers_of_one_turn_in_one_flush(tmp_path: Path) -> None:
    journal, run = open_with(tmp_path, A, B, {**A, "title": "C"})
    store = ledger(tmp_path / "state", "/out.xlsx")
    commit = GroupCommit(journal, store, BILLED)
    a, b, c = records(journal, run)

    async def scenario() -> None:
        assert await asyncio.gather(*(commit.claim(record) for record in (a, b, c))) == [None, None, None]
        assert journal.sequence() == 1  # three claims, one batch
        await asyncio.gather(commit.settle(done(a.key, ["id-1"], 200)), commit.settle(pending(b.key, 503, "busy")))
        assert journal.states() == {a.key: "done", b.key: "pending", c.key: "in_flight"}
        assert {s.key: s.state for s in store.lookup([a.key, b.key])} == {a.key: "in_flight", b.key: "in_flight"}
        commit.close()  # the ledger learns of the answers at the latest at the end

    asyncio.run(scenario())
    assert {s.key: (s.state, s.job_ids) for s in store.lookup([a.key, b.key, c.key])} == {
        a.key: ("done", ("id-1",)),
        c.key: ("in_flight", ()),
    }


def test_a_claim_another_output_holds_leaves_the_row_skipped_naming_it(tmp_path: Path) -> None:
    journal, run = open_with(tmp_path, A, B)
    ledger(tmp_path / "state", "/elsewhere/b.xlsx").write(Batch([row_keys([A])[0]], at="2026-11-29T04:12:00"))
    commit = GroupCommit(journal, ledger(tmp_path / "state", "/out.xlsx"), BILLED)
    a, b = records(journal, run)

    async def scenario() -> None:
        holder, free = await asyncio.gather(commit.claim(a), commit.claim(b))
        assert holder is not None and holder.output == "/elsewhere/b.xlsx" and free is None

    asyncio.run(scenario())
    (left,) = journal.left_out()
    assert (left.key, left.state) == (a.key, "skipped")
    assert "taken by a run for /elsewhere/b.xlsx on 2026-11-29T04:12:00 (sent, or about to be)" in left.message
    assert commit.skipped_to == {"/elsewhere/b.xlsx": 1}
    assert journal.states()[a.key] == "pending" and journal.states()[b.key] == "in_flight"


def test_a_ledger_that_fails_stops_claims_but_answers_still_reach_the_journal(tmp_path: Path) -> None:
    journal, run = open_with(tmp_path, A, B)
    store = ledger(tmp_path / "state", "/out.xlsx")
    commit = GroupCommit(journal, store, BILLED)
    a, b = records(journal, run)

    async def scenario() -> None:
        await commit.claim(a)
        store.db.close()  # the ledger goes away
        answer = asyncio.ensure_future(commit.settle(done(a.key, ["id-1"], 200)))
        with pytest.raises(LedgerError):
            await commit.claim(b)
        await answer

    asyncio.run(scenario())
    assert journal.states() == {a.key: "done", b.key: "pending"}


def test_a_claim_whose_request_never_left_is_given_back(tmp_path: Path) -> None:
    journal, run = open_with(tmp_path, A)
    commit = GroupCommit(journal, None, BILLED)
    (a,) = records(journal, run)

    async def scenario() -> None:
        waiting = asyncio.ensure_future(commit.claim(a))
        await asyncio.sleep(0)
        waiting.cancel()  # interrupted while its claim was being written
        await asyncio.sleep(0)
        commit.close()

    asyncio.run(scenario())
    assert journal.states() == {a.key: "pending"}


def reopen(tmp_path: Path, output: str = "/out.xlsx") -> tuple[Journal, History]:
    journal = Journal.open(tmp_path / "out.xlsx.journal")
    journal.recover()
    history = History(journal, rows(A, B), tmp_path / "out.xlsx", ledger(tmp_path / "state", output))
    return journal, history


def test_after_a_crash_between_the_claim_and_the_journal_the_claim_is_released(tmp_path: Path) -> None:
    journal, _ = open_with(tmp_path, A, B)
    a, b = row_keys([A, B])
    store = ledger(tmp_path / "state", "/out.xlsx")
    store.write(Batch([a], at="t", journal=journal.identity(), seq=journal.sequence() + 1))  # then the crash
    journal.close()
    journal, history = reopen(tmp_path)
    assert history.restore(existed=True) == 0
    assert journal.states() == {a: "pending", b: "pending"}  # never sent: sent now
    assert store.lookup([a]) == []


def test_a_claim_of_another_machine_at_this_output_is_never_this_runs_own(tmp_path: Path) -> None:
    """Another machine of the same name writing the same path: its claim is left out as another output's would
    be, and named so; its done rows give this journal their ids (a replaced machine sends nothing again)."""
    journal, _ = open_with(tmp_path, A, B)
    a, b = row_keys([A, B])
    twin = ledger(tmp_path / "state", "/out.xlsx")
    twin.machine = "the-twin"
    twin.write(Batch([a, b], at="t", journal="twin-journal", seq=1))
    twin.write(Batch(entries=[Entry(b, "done", "t", ("id-1",))], journal="twin-journal"))
    journal.close()
    journal, history = reopen(tmp_path)
    assert history.restore(existed=True) == 1
    assert history.skip_sent_elsewhere() == 1
    assert journal.states() == {a: "pending", b: "done"}
    (left,) = journal.left_out()
    assert (left.key, left.state) == (a, "skipped")
    assert "taken by a run for /out.xlsx on another machine of that name (the-twin) on t" in left.message
    assert set(history.ledger.write(Batch([a], at="t", journal=journal.identity(), seq=1))) == {a}  # still the twin's


def test_a_claim_of_an_earlier_journal_of_this_machine_is_taken_over_and_its_row_unknown(tmp_path: Path) -> None:
    """The journal was deleted (or the machine replaced under its ``BATCHGEN_MACHINE``): no run holds the claim
    any more, and its request may have left."""
    journal, _ = open_with(tmp_path, A, B)
    a, b = row_keys([A, B])
    store = ledger(tmp_path / "state", "/out.xlsx")
    store.write(Batch([a], at="t", journal="deleted-journal", seq=1))
    journal.close()
    journal, history = reopen(tmp_path)
    assert history.restore(existed=True) == 1
    assert history.skip_sent_elsewhere() == 0
    assert journal.states() == {a: "unknown", b: "pending"}  # it may have been sent: never again on its own
    (entry,) = store.lookup([a])
    assert (entry.journal, entry.state) == (journal.identity(), "unknown")
    assert history.ledger.write(Batch([a], at="t", journal=journal.identity(), seq=1)) == {}  # `retry_unknown`


def test_the_ledger_is_brought_up_to_date_from_the_journal(tmp_path: Path) -> None:
    journal, _ = open_with(tmp_path, A, B)
    a, b = row_keys([A, B])
    store = ledger(tmp_path / "state", "/out.xlsx")
    store.write(Batch([a, b], at="t", journal=journal.identity(), seq=1))
    journal.apply([done(a, ["id-1"], 200)], sequence=1)
    journal.mark_unknown(b, None, "dropped")  # the run died before the ledger learnt either
    journal.close()
    journal, history = reopen(tmp_path)
    history.restore(existed=True)
    assert {s.key: (s.state, s.job_ids) for s in store.lookup([a, b])} == {a: ("done", ("id-1",)), b: ("unknown", ())}


def test_a_claim_waiting_when_the_run_stops_is_refused(tmp_path: Path) -> None:
    journal, run = open_with(tmp_path, A)
    commit = GroupCommit(journal, None, BILLED)
    (a,) = records(journal, run)

    async def scenario() -> None:
        waiting = asyncio.ensure_future(commit.claim(a))
        commit.close_claims()  # the run stops before the claim's flush
        with pytest.raises(ClaimsClosed):
            await waiting

    asyncio.run(scenario())
    assert journal.states() == {a.key: "pending"}


def test_a_row_interrupted_once_claimed_is_given_back_and_released(tmp_path: Path) -> None:
    journal, run = open_with(tmp_path, A, B)
    store = ledger(tmp_path / "state", "/out.xlsx")
    a = records(journal, run)[0]
    sent: list[str] = []

    async def scenario() -> None:
        commit = GroupCommit(journal, store, BILLED)

        async def worker() -> None:
            await commit.claim(a)
            sent.append(a.key)

        task = asyncio.create_task(worker())
        await asyncio.sleep(0)  # the claim is queued, its flush scheduled
        asyncio.get_running_loop().call_soon(task.cancel)  # cancelled in the very turn its claim is written
        with pytest.raises(asyncio.CancelledError):
            await task
        commit.close()

    asyncio.run(scenario())
    assert sent == [] and journal.states()[a.key] == "pending"
    assert store.lookup([a.key]) == []  # its claim released: another output may send it
