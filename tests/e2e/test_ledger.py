"""The ledger's rules, the same for the per-user SQLite file and the team's PostgreSQL database: a claim fails
when another output holds the row in a blocking state, two simultaneous claims never both succeed, a release
gives a row back, a done entry is final. PostgreSQL alone: its schema versions, machine names, outages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from batchgen.errors import UnreachableError
from batchgen.journal import Journal, NewRow, row_keys
from batchgen.journal.group import GroupCommit
from batchgen.journal.store import done
from batchgen.ledger import (
    BILLED,
    RELEASED,
    Batch,
    Entry,
    Ledger,
    LedgerDown,
    LedgerError,
    Sent,
    Song,
    blocking_states,
)
from batchgen.ledger import open_ledger as open_any

from ..support.pgserver import PASSWORD, PostgresServer, free_port

HOST = "https://api.example.com"
AT = "2026-11-29T04:12:00+00:00"
LATER = "2026-11-29T04:13:00+00:00"
PG = [pytest.mark.postgres]


class Opener(Protocol):
    def __call__(self, output: str, host: str = HOST, account: str | None = None) -> Ledger: ...


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=PG)])
def open_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """``open_ledger(output)``: a ledger of one backend, shared by every output of the test; closed at the end."""
    url = request.getfixturevalue("ledger_url") if request.param == "postgres" else None
    opened: list[Ledger] = []

    def open_one(output: str, host: str = HOST, account: str | None = None) -> Ledger:
        ledger = open_any(host, output, tmp_path / "state", url, account)
        opened.append(ledger)
        return ledger

    yield open_one
    for ledger in opened:
        ledger.close()


def claim(
    ledger: Ledger, *keys: str, blocking: frozenset[str] = BILLED, at: str = AT, journal: str = "journal-1"
) -> set[str]:
    """Claim ``keys`` for ``journal``; the ones refused."""
    return set(ledger.write(Batch(keys, (), at, journal, 1, blocking)))


def settle(ledger: Ledger, *entries: Entry, journal: str = "journal-1") -> None:
    """Bring ``journal``'s entries up to date (answers, releases)."""
    ledger.write(Batch(entries=entries, journal=journal))


def states(ledger: Ledger, key: str) -> dict[str, str]:
    return {sent.output: sent.state for sent in ledger.lookup([key])}


def test_a_row_held_by_another_output_is_refused_and_named(open_ledger: Opener) -> None:
    a, b = open_ledger("/a.xlsx"), open_ledger("/b.xlsx")
    assert claim(a, "k1", "k2") == set()
    refused = b.write(Batch(["k2", "k3"], (), LATER, "journal-2", 1))
    assert set(refused) == {"k2"}
    assert refused["k2"].output == a.output and refused["k2"].state == "in_flight"
    assert refused["k2"].sent_at.startswith("2026-11-29T04:12:00")
    assert (refused["k2"].journal, refused["k2"].seq) == ("journal-1", 1)
    assert claim(a, "k1") == set()  # its own claim again (a retried request): still its own
    assert states(a, "k3") == {b.output: "in_flight"}


def test_simultaneous_claims_of_one_row_never_both_succeed(open_ledger: Opener) -> None:
    ledgers = [open_ledger(f"/out-{i}.xlsx") for i in range(4)]
    keys = [f"k{i}" for i in range(200)]  # enough for claims to meet (without the unique index, most would)
    start = threading.Barrier(len(ledgers))
    won: dict[str, list[str]] = {}

    def run(ledger: Ledger) -> None:
        start.wait()
        for chunk in range(0, len(keys), 5):
            batch = keys[chunk : chunk + 5]
            refused = claim(ledger, *batch)
            for key in set(batch) - refused:
                won.setdefault(key, []).append(ledger.output)

    threads = [threading.Thread(target=run, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == sorted(keys)
    assert all(len(outputs) == 1 for outputs in won.values()), won


def test_blocking_states_decide_what_another_output_may_send(open_ledger: Opener) -> None:
    a, b, c = open_ledger("/a.xlsx"), open_ledger("/b.xlsx"), open_ledger("/c.xlsx")
    claim(a, "unknown", "done")
    settle(a, Entry("unknown", "unknown", AT), Entry("done", "done", AT, ("id-1",)))
    retry_unknown = blocking_states(allow_resend=False, retry_unknown=True)
    assert claim(b, "unknown", "done", blocking=retry_unknown, at=LATER) == {"done"}
    assert claim(c, "unknown") == {"unknown"}  # b has it in flight now, and a's unknown still blocks
    assert claim(c, "done", "unknown", blocking=blocking_states(allow_resend=True, retry_unknown=False)) == set()
    assert states(c, "unknown") == {a.output: "unknown", b.output: "in_flight", c.output: "in_flight"}
    assert states(c, "done") == {a.output: "done", c.output: "in_flight"}
    assert c.lookup(["unknown"])[0].output == a.output  # oldest first


def test_a_released_row_can_be_claimed_elsewhere_but_a_done_entry_is_final(open_ledger: Opener) -> None:
    a, b = open_ledger("/a.xlsx"), open_ledger("/b.xlsx")
    claim(a, "refused", "sent")
    settle(a, Entry("refused", RELEASED, AT), Entry("sent", "done", AT, ("id-1", "id-2")))
    assert a.lookup(["refused"]) == []
    assert claim(b, "refused", "sent") == {"sent"}
    settle(a, Entry("sent", RELEASED, LATER), Entry("sent", "unknown", LATER))
    claim(a, "sent")
    (done,) = a.lookup(["sent"])
    assert (done.state, done.job_ids) == ("done", ("id-1", "id-2"))


def test_a_row_released_and_claimed_again_in_one_write_stays_claimed(open_ledger: Opener) -> None:
    """A 503 gives the row back; its retry claims it in the same group commit: entries go first."""
    a, b = open_ledger("/a.xlsx"), open_ledger("/b.xlsx")
    claim(a, "retried")
    a.write(Batch(["retried"], [Entry("retried", RELEASED, LATER)], LATER, "journal-1", 2, BILLED))
    assert states(a, "retried") == {a.output: "in_flight"}
    assert claim(b, "retried") == {"retried"}


def test_entries_catch_up_without_a_claim(open_ledger: Opener) -> None:
    """What a run brings up to date from its journal: outcomes the ledger never heard of."""
    a, b = open_ledger("/a.xlsx"), open_ledger("/b.xlsx")
    settle(a, Entry("k", "done", AT, ("id-1",)), Entry("u", "unknown", AT))
    settle(b, Entry("k", "done", LATER, ("id-9",)), journal="journal-2")  # both had sent it (a resend, an outage)
    assert {(s.output, s.job_ids) for s in a.lookup(["k"])} == {(a.output, ("id-1",)), (b.output, ("id-9",))}
    assert claim(b, "u") == {"u"}


def test_a_claim_of_another_journal_at_the_same_output_is_never_this_runs_own(open_ledger: Opener) -> None:
    """Two machines of one name writing one path: one output name, two journals. Each claim is its journal's."""
    a, twin = open_ledger("/data/out.xlsx"), open_ledger("/data/out.xlsx")
    twin.machine = "the-twin"  # type: ignore[misc]  # its own state folder, its own id
    assert a.output == twin.output
    assert claim(a, "k1", "k2") == set()
    refused = twin.write(Batch(["k1", "k3"], (), LATER, "journal-2", 1))
    assert set(refused) == {"k1"}
    holder = refused["k1"]
    assert (holder.output, holder.journal, holder.machine) == (a.output, "journal-1", a.machine)
    assert not holder.owned(twin.output, "journal-2") and holder.owned(a.output, "journal-1")
    assert holder.holder(twin.output, twin.machine) == f"{a.output} on another machine of that name ({a.machine[:12]})"
    assert claim(a, "k1") == set()  # its own claim again: still its own
    assert claim(a, "k3") == {"k3"}  # and the twin's is not a's
    settle(twin, Entry("k1", RELEASED, LATER), Entry("k2", "done", LATER, ("id-9",)), journal="journal-2")
    assert {(s.key, s.journal, s.state, s.job_ids) for s in a.lookup(["k1", "k2"])} == {
        ("k1", "journal-1", "in_flight", ()),  # the twin's release and answers touch its own entries only
        ("k2", "journal-1", "in_flight", ()),
        ("k2", "journal-2", "done", ("id-9",)),
    }


def test_a_journal_takes_over_the_claim_of_an_earlier_journal_of_its_output(open_ledger: Opener) -> None:
    a, b = open_ledger("/a.xlsx"), open_ledger("/b.xlsx")
    claim(a, "k1", "k2", journal="deleted")
    settle(a, Entry("k1", "unknown", LATER, taken_from="deleted"), Entry("k2", "done", LATER, ("id-1",), "deleted"))
    assert {(s.key, s.journal, s.state) for s in a.lookup(["k1", "k2"])} == {
        ("k1", "journal-1", "unknown"),
        ("k2", "journal-1", "done"),
    }
    assert claim(a, "k1", blocking=blocking_states(allow_resend=False, retry_unknown=True)) == set()
    assert claim(b, "k1", "k2", journal="journal-2") == {"k1", "k2"}


def test_simultaneous_claims_of_two_journals_at_one_output_never_both_succeed(open_ledger: Opener) -> None:
    ledgers = [open_ledger("/data/out.xlsx") for _ in range(3)]
    keys = [f"k{i}" for i in range(150)]
    start = threading.Barrier(len(ledgers))
    won: dict[str, list[str]] = {}

    def run(number: int, ledger: Ledger) -> None:
        start.wait()
        for chunk in range(0, len(keys), 5):
            batch = keys[chunk : chunk + 5]
            for key in set(batch) - claim(ledger, *batch, journal=f"journal-{number}"):
                won.setdefault(key, []).append(f"journal-{number}")

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == sorted(keys)
    assert all(len(journals) == 1 for journals in won.values()), won


def test_one_provider_is_its_host_or_its_account(open_ledger: Opener) -> None:
    """Either match is enough: another host billing the same account, or the same host under another key."""
    a = open_ledger("/a.xlsx", account="account-1")
    assert claim(a, "k1", "k2") == set()
    alias = open_ledger("/b.xlsx", host="https://api-alias.example.com", account="account-1")
    assert claim(alias, "k1") == {"k1"}
    assert [sent.output for sent in alias.lookup(["k2"])] == [a.output]
    other_key = open_ledger("/c.xlsx", account="account-2")
    assert claim(other_key, "k2") == {"k2"}
    elsewhere = open_ledger("/d.xlsx", host="https://other.example.com", account="account-2")
    assert elsewhere.lookup(["k1", "k2"]) == []
    assert claim(elsewhere, "k1", "k2") == set()  # another provider altogether: its own bill
    unknown_account = open_ledger("/e.xlsx", host="https://other.example.com")  # no key known: the host alone
    assert claim(unknown_account, "k1") == {"k1"}


def test_a_journal_claims_its_row_again_under_another_host_of_its_account(open_ledger: Opener) -> None:
    a = open_ledger("/a.xlsx", account="account-1")
    claim(a, "k1")
    settle(a, Entry("k1", "unknown", AT))
    moved = open_ledger("/a.xlsx", host="https://api-alias.example.com", account="account-1")
    assert claim(moved, "k1", blocking=blocking_states(allow_resend=False, retry_unknown=True)) == set()
    assert claim(open_ledger("/b.xlsx", account="account-1"), "k1", journal="journal-2") == {"k1"}


def song(title: str, lyrics: str, row: int) -> Song:
    return Song.of(title, json.dumps({"title": title, "tag": "pop", "lyrics": lyrics}), row)


def test_an_entry_keeps_its_rows_fingerprints_found_by_title_from_any_output(open_ledger: Opener) -> None:
    """What an edited row (a new key) is matched with: the songs other outputs sent, by the provider's host or
    its account; never the title or the lyrics themselves."""
    a, b = open_ledger("/a.xlsx", account="account-1"), open_ledger("/b.xlsx", account="account-1")
    intro, outro = song("Intro", "la la", 2), song("Outro", "bye", 3)
    a.write(Batch(["k1", "k2"], (), AT, "journal-1", 1, BILLED, {"k1": intro, "k2": outro}))
    settle(a, Entry("k2", RELEASED, AT))  # refused: never billed
    b.write(Batch(entries=[Entry("k3", "done", LATER, ("id-3",))], journal="journal-2", songs={"k3": intro}))
    found = b.lookup_titles([intro.title, song("Other", "la la", 2).title])
    assert [(sent.key, sent.output, sent.song) for sent in found] == [("k1", a.output, intro), ("k3", b.output, intro)]
    assert b.lookup_titles([outro.title]) == []
    alias = open_ledger("/c.xlsx", host="https://api-alias.example.com", account="account-1")
    assert [sent.key for sent in alias.lookup_titles([intro.title])] == ["k1", "k3"]
    assert open_ledger("/d.xlsx", host="https://elsewhere.example.com").lookup_titles([intro.title]) == []
    settle(a, Entry("k1", "done", LATER, ("id-1",)))  # an answer keeps the fingerprints of its claim
    assert [sent.song for sent in a.lookup(["k1"])] == [intro]


def test_a_sqlite_ledger_of_version_3_is_upgraded_and_its_entries_match_no_edit(tmp_path: Path) -> None:
    """What batchgen wrote before rows had fingerprints: kept, still blocking, never taken for an edit's."""
    import sqlite3

    from batchgen.ledger.sqlite import _TABLE
    from batchgen.paths import LEDGER_FILE

    folder = tmp_path / "state"
    folder.mkdir()
    with sqlite3.connect(folder / LEDGER_FILE) as db:
        db.execute(_TABLE)
        db.execute(
            "INSERT INTO sent (key, host, output, journal, state, sent_at, job_ids) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("k1", HOST, "/a.xlsx", "journal-1", "done", AT, '["id-1"]'),
        )
        db.execute("PRAGMA user_version=3")
    db.close()
    ledger = open_any(HOST, "/b.xlsx", folder)
    try:
        ((before,),) = [ledger.lookup(["k1"])]
        assert (before.output, before.job_ids, before.song) == ("/a.xlsx", ("id-1",), None)
        assert claim(ledger, "k1") == {"k1"}
        intro = song("Intro", "la", 2)
        ledger.write(Batch(["k2"], (), LATER, "journal-2", 1, BILLED, {"k2": intro}))
        assert [sent.key for sent in ledger.lookup_titles([intro.title])] == ["k2"]
    finally:
        ledger.close()
    with sqlite3.connect(folder / LEDGER_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (4,)
    db.close()


class Unreachable:
    """A team ledger whose server went away: every write fails, as a dropped connection does."""

    host, output, where = HOST, "laptop:/out.xlsx", "postgresql://team@db/ledger"
    account, machine = None, "laptop"

    def __init__(self) -> None:
        self.writes = 0

    def write(self, batch: Batch) -> dict[str, Sent]:
        self.writes += 1
        raise LedgerDown(f"the team ledger {self.where} cannot be used", self.where)

    def lookup(self, keys: Iterable[str]) -> list[Sent]:
        return []

    def lookup_titles(self, titles: Iterable[str]) -> list[Sent]:
        return []

    def close(self) -> None: ...


def test_once_the_ledger_failed_nothing_is_claimed_and_answers_still_reach_the_journal(tmp_path: Path) -> None:
    """The run stops; answers still coming are journaled without waiting on the ledger again."""
    payloads = [{"title": title, "tag": "pop", "lyrics": "la"} for title in "AB"]
    rows = [
        NewRow(key, n, n, p["title"], json.dumps(p), {})
        for n, (key, p) in enumerate(zip(row_keys(payloads), payloads, strict=True), 2)
    ]
    ledger = Unreachable()
    with Journal.open(tmp_path / "out.xlsx.journal") as journal:
        run = journal.start_run("in.csv", rows, [], [])
        first, second = journal.to_send(run)
        commit = GroupCommit(journal, ledger, BILLED)

        async def dispatch() -> None:
            for record in (first, second):
                with pytest.raises(LedgerDown):
                    await commit.claim(record)
            await commit.settle(done(first.key, ["id-1"], 200))  # an answer to a request sent before the outage
            commit.close()

        asyncio.run(dispatch())
        assert ledger.writes == 1
        assert journal.states() == {first.key: "done", second.key: "pending"}


@pytest.mark.postgres
def test_the_schema_is_made_on_first_use_versioned_and_a_newer_one_refused(ledger_url: str, tmp_path: Path) -> None:
    import psycopg

    start, failures = threading.Barrier(3), []

    def first_use(number: int) -> None:  # three machines start at once on an empty database
        start.wait()
        try:
            open_any(HOST, f"/out-{number}.xlsx", tmp_path, ledger_url).close()
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=first_use, args=(number,)) for number in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with psycopg.connect(ledger_url, autocommit=True) as db:
        assert db.execute("SELECT version, by FROM batchgen_migrations").fetchall() == [
            (1, "batchgen"),
            (2, "batchgen"),
            (3, "batchgen"),
        ]
        db.execute("INSERT INTO batchgen_migrations (version, by) VALUES (4, 'batchgen 9.0')")
    with pytest.raises(LedgerError, match=r"written by a newer batchgen \(ledger version 4\); upgrade batchgen"):
        open_any(HOST, "/x.xlsx", tmp_path, ledger_url)


@pytest.mark.postgres
def test_a_team_ledger_of_version_1_is_upgraded_with_its_hosts_in_one_spelling(ledger_url: str, tmp_path: Path) -> None:
    import psycopg

    from batchgen.ledger.postgres import _MIGRATIONS

    with psycopg.connect(ledger_url, autocommit=True) as db:  # what batchgen 0.2 made, and two spellings of a host
        db.execute("CREATE TABLE batchgen_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ, by TEXT)")
        for statement in _MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO batchgen_migrations VALUES (1, now(), 'batchgen')")
        legacy = (
            "INSERT INTO batchgen_sent (host, key, output, state, sent_at, job_ids, journal, seq, exclusive) VALUES"
        )
        db.execute(f"{legacy} ('http://127.0.0.1:9', 'k', 'pc:/a', 'done', %s, %s, 'j1', 1, TRUE)", (AT, ["id-1"]))
        db.execute(f"{legacy} ('http://LOCALHOST:9', 'k', 'pc:/b', 'in_flight', %s, NULL, NULL, NULL, TRUE)", (AT,))
    ledger = open_any("http://localhost:9", "/c.xlsx", tmp_path, ledger_url, "account-1")
    try:
        found = {(sent.output, sent.state, sent.job_ids, sent.journal) for sent in ledger.lookup(["k"])}
        assert found == {("pc:/a", "done", ("id-1",), "j1"), ("pc:/b", "in_flight", (), None)}
        assert claim(ledger, "k", "k2") == {"k"}
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_team_ledger_of_version_2_is_upgraded_and_its_entries_match_no_edit(ledger_url: str, tmp_path: Path) -> None:
    import psycopg

    from batchgen.ledger.postgres import _MIGRATIONS

    with psycopg.connect(ledger_url, autocommit=True) as db:  # what batchgen made before rows had fingerprints
        db.execute("CREATE TABLE batchgen_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ, by TEXT)")
        for number, statements in enumerate(_MIGRATIONS[:2], start=1):
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO batchgen_migrations VALUES (%s, now(), 'batchgen')", (number,))
        db.execute(
            "INSERT INTO batchgen_sent (host, key, output, journal, state, sent_at, job_ids, exclusive)"
            " VALUES (%s, 'k1', 'pc:/a', 'j1', 'done', %s, %s, TRUE)",
            (HOST, AT, ["id-1"]),
        )
    ledger = open_any(HOST, "/b.xlsx", tmp_path, ledger_url)
    try:
        ((before,),) = [ledger.lookup(["k1"])]
        assert (before.output, before.job_ids, before.song) == ("pc:/a", ("id-1",), None)
        assert claim(ledger, "k1") == {"k1"}
        intro = song("Intro", "la", 2)
        ledger.write(Batch(["k2"], (), LATER, "journal-2", 1, BILLED, {"k2": intro}))
        assert [(sent.key, sent.song) for sent in ledger.lookup_titles([intro.title])] == [("k2", intro)]
    finally:
        ledger.close()
    with psycopg.connect(ledger_url, autocommit=True) as db:
        assert db.execute("SELECT MAX(version) FROM batchgen_migrations").fetchone() == (3,)


@pytest.mark.postgres
def test_a_team_ledger_names_the_machine_and_replaces_a_connection_that_died(ledger_url: str, tmp_path: Path) -> None:
    import psycopg

    ledger = open_any(HOST, "/data/out.xlsx", tmp_path, ledger_url)
    try:
        assert ledger.output == f"{socket.gethostname()}:/data/out.xlsx"
        assert PASSWORD not in ledger.where and ledger.where.startswith("postgresql://batchgen@127.0.0.1:")
        claim(ledger, "k1")
        with psycopg.connect(ledger_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'batchgen'"
            ).fetchall()
        assert killed == [(True,)]
        assert claim(ledger, "k2") == set()  # on a new connection
        assert {sent.key for sent in ledger.lookup(["k1", "k2"])} == {"k1", "k2"}
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_ledger_out_of_reach_is_down_within_seconds_and_its_password_is_never_shown(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = f"postgresql://batchgen:{PASSWORD}@127.0.0.1:{free_port()}/db?password={PASSWORD}"
    with pytest.raises(LedgerDown) as down:
        open_any(HOST, "/out.xlsx", tmp_path, url)
    assert isinstance(down.value, UnreachableError)
    where = f"postgresql://batchgen@127.0.0.1:{url.split(':')[3].split('/')[0]}/db"
    assert down.value.host == where and where in down.value.message
    assert PASSWORD not in down.value.message and "\n" not in down.value.message
    with pytest.raises(LedgerDown, match="password authentication failed") as refused:
        open_any(HOST, "/out.xlsx", tmp_path, postgres.url(password="Wrong-pw-31337"))
    assert "Wrong-pw-31337" not in refused.value.message


@pytest.mark.postgres
def test_a_server_that_stops_answering_is_cut_off(postgres: PostgresServer, ledger_url: str, tmp_path: Path) -> None:
    """A frozen server never sends its statement timeout: the ledger gives up on its own."""
    ledger = open_any(HOST, "/out.xlsx", tmp_path, ledger_url)
    ledger.answer_within = 1.0  # type: ignore[attr-defined]
    frozen = postgres.processes()
    try:
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(LedgerDown, match=r"cannot be used \(no answer within 1 s\)"):
            claim(ledger, "k1")
        assert time.monotonic() - started < 3
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        ledger.close()
    assert claim(ledger, "k2") == set()  # the server is back: a new connection
    ledger.close()
