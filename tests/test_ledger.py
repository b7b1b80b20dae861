"""The ledger of sent rows and the group commit, on real SQLite files: claims are atomic across connections,
answers follow lazily, and a run after a crash makes the journal and the ledger agree."""

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
from batchgen.ledger import BILLED, RELEASED, Batch, Entry, LedgerError, blocking_states
from batchgen.ledger.sqlite import SqliteLedger

from .test_journal import A, B, open_with, row_keys, rows

HOST = "https://api.example.com"


def ledger(folder: Path, output: str, host: str = HOST) -> SqliteLedger:
    return SqliteLedger(folder, host, output)


def test_a_row_claimed_by_one_output_is_refused_to_another_naming_it(tmp_path: Path) -> None:
    first, second = ledger(tmp_path, "/data/a.xlsx"), ledger(tmp_path, "/data/b.xlsx")
    assert first.write(Batch(["k1", "k2"], at="2026-11-29T04:12:00+00:00")) == {}
    refused = second.write(Batch(["k2", "k3"], at="2026-11-29T04:13:00+00:00"))
    assert list(refused) == ["k2"]
    assert (refused["k2"].output, refused["k2"].state, refused["k2"].sent_at) == (
        "/data/a.xlsx",
        "in_flight",
        "2026-11-29T04:12:00+00:00",
    )
    assert {(s.key, s.output) for s in second.lookup(["k1", "k2", "k3"])} == {
        ("k1", "/data/a.xlsx"),
        ("k2", "/data/a.xlsx"),
        ("k3", "/data/b.xlsx"),
    }
    assert ledger(tmp_path, "/data/b.xlsx", "https://staging.example.com").lookup(["k1"]) == []  # billed apart


def test_what_blocks_a_claim_follows_the_settings(tmp_path: Path) -> None:
    assert blocking_states(allow_resend=False, retry_unknown=False) == BILLED
    assert blocking_states(allow_resend=False, retry_unknown=True) == {"in_flight", "done"}
    assert blocking_states(allow_resend=True, retry_unknown=False) == frozenset()
    first, second = ledger(tmp_path, "/a"), ledger(tmp_path, "/b")
    first.write(Batch(["gone", "kept"], [], "t1"))
    first.write(Batch(entries=[Entry("gone", "unknown", "t2"), Entry("kept", "done", "t2", ("id-1",))]))
    assert list(second.write(Batch(["gone", "kept"], at="t3", blocking=blocking_states(False, True)))) == ["kept"]
    assert second.write(Batch(["kept"], at="t4", blocking=blocking_states(True, False))) == {}  # sent on purpose


def test_released_rows_free_their_claim_and_a_done_entry_is_final(tmp_path: Path) -> None:
    first, second = ledger(tmp_path, "/a"), ledger(tmp_path, "/b")
    first.write(Batch(["k"], at="t1"))
    first.write(Batch(["k"], [Entry("k", RELEASED, "t2")], "t2"))  # released, then claimed again: still held
    assert list(second.write(Batch(["k"], at="t3"))) == ["k"]
    first.write(Batch(entries=[Entry("k", RELEASED, "t4")]))
    assert second.write(Batch(["k"], at="t5")) == {}
    second.write(Batch(entries=[Entry("k", "done", "t6", ("id-9",))]))
    second.write(Batch(entries=[Entry("k", "unknown", "t7"), Entry("k", RELEASED, "t7")]))
    (entry,) = first.lookup(["k"])
    assert (entry.output, entry.state, entry.job_ids) == ("/b", "done", ("id-9",))


def test_claims_from_many_connections_at_once_give_each_row_to_one_output(tmp_path: Path) -> None:
    keys = [f"k{i}" for i in range(200)]
    won: dict[str, list[str]] = {}

    def claim(output: str) -> None:
        mine = ledger(tmp_path, output)
        refused: set[str] = set()
        for start in range(0, len(keys), 8):
            refused |= set(mine.write(Batch(keys[start : start + 8], at="t")))
        won[output] = [key for key in keys if key not in refused]
        mine.close()

    threads = [threading.Thread(target=claim, args=(f"/out-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [key for keys_won in won.values() for key in keys_won]
    assert sorted(claimed) == sorted(keys)  # every row once, overall


def test_an_older_ledger_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "ledger.sqlite")
    old.execute(
        "CREATE TABLE sent (key TEXT NOT NULL, host TEXT NOT NULL, output TEXT NOT NULL, state TEXT NOT NULL,"
        " sent_at TEXT NOT NULL, job_ids TEXT, PRIMARY KEY (key, host, output))"
    )
    old.execute("INSERT INTO sent VALUES ('k', ?, '/a', 'done', 't', '[\"id-1\"]')", (HOST,))
    old.commit()
    old.close()
    (entry,) = ledger(tmp_path, "/b").lookup(["k"])
    assert (entry.output, entry.job_ids, entry.journal, entry.seq) == ("/a", ("id-1",), None, None)
    newer = sqlite3.connect(tmp_path / "ledger.sqlite")
    newer.execute("PRAGMA user_version=99")
    newer.close()
    with pytest.raises(LedgerError, match="newer batchgen"):
        ledger(tmp_path, "/b")


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
    assert "sent by another run to /elsewhere/b.xlsx at 2026-11-29T04:12:00" in left.message
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


def test_a_claim_of_a_replaced_journal_makes_its_row_unknown(tmp_path: Path) -> None:
    journal, _ = open_with(tmp_path, A, B)
    a, b = row_keys([A, B])
    ledger(tmp_path / "state", "/out.xlsx").write(Batch([a], at="t", journal="another-journal", seq=1))
    journal.close()
    journal, history = reopen(tmp_path)
    assert history.restore(existed=True) == 1
    assert journal.states() == {a: "unknown", b: "pending"}  # it may have been sent: never again on its own


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
