"""The team ledger: one PostgreSQL database that several machines share (``BATCHGEN_LEDGER=postgresql://...``).

Same rules as the per-user SQLite ledger; what differs is how a claim is made atomic across machines. An
entry claimed by a run that blocks others is ``exclusive``, and a partial unique index allows one exclusive
entry per provider host and row key. Two machines that claim one row at the same instant both pass the check
(neither sees the other's claim before it commits); the second one's insert then waits for the first's commit
and fails, its transaction is written again, and this time its check sees the first claim. Claims made with
resending allowed are not exclusive, so several outputs may hold one key, as with SQLite.

An output is named ``machine:/real/path`` (``$BATCHGEN_MACHINE``, else the host name), so a message about a row
held elsewhere names the machine too; but who holds a claim is its journal, not that name. A commit
returns once the server has flushed it (``synchronous_commit=on`` is asked for whatever the server's default),
so a claim is durable before its request leaves. Timeouts are short: a ledger out of reach stops a run within
seconds (:class:`~batchgen.ledger.LedgerDown`) instead of holding it, and a connection that died is replaced.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..redact import redact
from .base import (
    BILLED,
    RELEASED,
    SENT_COLUMNS,
    Batch,
    Entry,
    LedgerDown,
    LedgerError,
    Sent,
    Song,
    respell,
    sent_from,
    song_columns,
    without_password,
)

VERSION = 3
CONNECT_S = 5  # a ledger out of reach is noticed within seconds, at the start and mid-run
STATEMENT_MS, LOCK_MS = 10_000, 5_000
ANSWER_S = 15.0  # a server that stops answering altogether (a frozen process) is cut off after this long
# A dead peer on an open connection: unacknowledged data for 5 s, or no keepalive answer for 5 + 2 x 2 s.
SOCKET = {"tcp_user_timeout": 5000, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2}
SESSION = f"-c statement_timeout={STATEMENT_MS} -c lock_timeout={LOCK_MS} -c synchronous_commit=on -c TimeZone=UTC"
WRITES = 5  # a write that met another machine's simultaneous claim is written again, this many times at most
_MIGRATION_LOCK = 0x6261_7463_6867_656E  # advisory lock id ("batchgen"): machines that start at once migrate in turn
_CONFLICTS = (errors.UniqueViolation, errors.DeadlockDetected, errors.SerializationFailure)

# One tuple of statements per version: a newer batchgen appends, and never edits what is released. Version 2
# makes each journal's entries its own (the journal joins the key), records the account and the machine, and
# lets one exclusive entry per account and row key too; its hosts are then rewritten in one spelling
# (:meth:`PostgresLedger._respell`). Version 3 records the row each entry is of (:class:`~.base.Song`), found by
# its title: older entries have none, and are never taken for an earlier version of an edited row.
_MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (
        """CREATE TABLE batchgen_sent (
            host TEXT NOT NULL, key TEXT NOT NULL, output TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('in_flight', 'done', 'unknown')),
            sent_at TIMESTAMPTZ NOT NULL, job_ids TEXT[], journal TEXT, seq BIGINT,
            exclusive BOOLEAN NOT NULL, PRIMARY KEY (host, key, output))""",
        "CREATE UNIQUE INDEX batchgen_sent_claim ON batchgen_sent (host, key) WHERE exclusive",
    ),
    (
        "ALTER TABLE batchgen_sent ADD COLUMN account TEXT, ADD COLUMN machine TEXT",
        "UPDATE batchgen_sent SET journal = '' WHERE journal IS NULL",
        "ALTER TABLE batchgen_sent ALTER COLUMN journal SET DEFAULT '', ALTER COLUMN journal SET NOT NULL",
        "ALTER TABLE batchgen_sent DROP CONSTRAINT batchgen_sent_pkey, ADD PRIMARY KEY (host, key, output, journal)",
        "CREATE UNIQUE INDEX batchgen_sent_account ON batchgen_sent (account, key) WHERE exclusive",
        "CREATE INDEX batchgen_sent_key ON batchgen_sent (key)",  # a row's entries at any host or account
    ),
    (
        "ALTER TABLE batchgen_sent ADD COLUMN title TEXT, ADD COLUMN song TEXT",
        "CREATE INDEX batchgen_sent_title ON batchgen_sent (title)",
    ),
)
_PROVIDER = "key = ANY(%(keys)s) AND (host = %(host)s OR account = %(account)s)"  # either matches
_MINE = "output = %(output)s AND journal = %(journal)s"
_HOLDERS = f"""SELECT DISTINCT ON (key) {SENT_COLUMNS} FROM batchgen_sent
    WHERE {_PROVIDER} AND NOT ({_MINE}) AND state = ANY(%(blocking)s) ORDER BY key, sent_at"""
# Entries that give way to this claim: another's that this run may send again, and this journal's own under
# another host of the same account (a claim of one row by one journal is one exclusive entry).
_YIELD = f"""UPDATE batchgen_sent SET exclusive = FALSE WHERE {_PROVIDER} AND exclusive
    AND CASE WHEN {_MINE} THEN host <> %(host)s ELSE NOT state = ANY(%(blocking)s) END"""
_CLAIM = """INSERT INTO batchgen_sent
        (host, key, output, journal, state, sent_at, seq, exclusive, account, machine, title, song)
    SELECT %(host)s, claimed, %(output)s, %(journal)s, 'in_flight', %(at)s::timestamptz, %(seq)s::bigint,
        %(exclusive)s, %(account)s, %(machine)s, title, song
    FROM unnest(%(keys)s::text[], %(titles)s::text[], %(songs)s::text[]) AS claimed (claimed, title, song)
    ON CONFLICT (host, key, output, journal) DO UPDATE SET state = 'in_flight', sent_at = excluded.sent_at,
        seq = excluded.seq, exclusive = batchgen_sent.exclusive OR excluded.exclusive,
        account = excluded.account, machine = excluded.machine,
        title = COALESCE(excluded.title, batchgen_sent.title), song = COALESCE(excluded.song, batchgen_sent.song)
    WHERE batchgen_sent.state <> 'done'"""
_RELEASE = """DELETE FROM batchgen_sent WHERE key = %(key)s AND (host = %(host)s OR account = %(account)s)
    AND output = %(output)s AND journal = %(journal)s AND state <> 'done'"""
_ENTRY = """INSERT INTO batchgen_sent
        (host, key, output, journal, state, sent_at, job_ids, account, machine, title, song, exclusive)
    VALUES (%(host)s, %(key)s, %(output)s, %(journal)s, %(state)s, %(at)s, %(ids)s, %(account)s, %(machine)s,
        %(title)s, %(song)s, NOT EXISTS (SELECT 1 FROM batchgen_sent WHERE key = %(key)s AND exclusive
            AND (host = %(host)s OR account = %(account)s)))
    ON CONFLICT (host, key, output, journal) DO UPDATE SET state = excluded.state,
        job_ids = COALESCE(excluded.job_ids, batchgen_sent.job_ids),
        title = COALESCE(excluded.title, batchgen_sent.title), song = COALESCE(excluded.song, batchgen_sent.song)
    WHERE batchgen_sent.state <> 'done'"""
_LOOKUP = f"SELECT {SENT_COLUMNS} FROM batchgen_sent WHERE {_PROVIDER} AND state = ANY(%(billed)s) ORDER BY sent_at"
_TITLES = f"""SELECT {SENT_COLUMNS} FROM batchgen_sent WHERE title = ANY(%(titles)s)
    AND (host = %(host)s OR account = %(account)s) AND state = ANY(%(billed)s) ORDER BY sent_at"""

Connection = psycopg.Connection[tuple[Any, ...]]
T = TypeVar("T")


class PostgresLedger:
    """The ledger in the database at ``url``, bound to a provider (``host``, ``account``), this machine's
    ``output`` (named ``machine-name:/real/path``) and its ``machine`` id."""

    def __init__(self, url: str, host: str, output: str, account: str | None = None, machine: str = "") -> None:
        self.host, self.account, self.output, self.machine = host, account, output, machine
        self.where = without_password(url)
        params = conninfo_to_dict(url)
        self._password = str(params.get("password") or "")
        options = f"{params.get('options') or ''} {SESSION}".strip()
        self._conninfo = make_conninfo(
            url, options=options, connect_timeout=CONNECT_S, application_name="batchgen", **SOCKET
        )
        self._db: Connection | None = None
        self.answer_within = ANSWER_S
        try:
            self._run(self._migrate)
        except LedgerError:
            self.close()
            raise

    def write(self, batch: Batch) -> dict[str, Sent]:
        return self._run(lambda db: self._write(db, batch))

    def lookup(self, keys: Iterable[str]) -> list[Sent]:
        wanted = {**self._provider(keys), "billed": sorted(BILLED)}
        found = self._run(lambda db: db.execute(_LOOKUP, wanted).fetchall())
        return [_sent(values) for values in found]

    def lookup_titles(self, titles: Iterable[str]) -> list[Sent]:
        wanted = {**self._provider(()), "titles": sorted(set(titles)), "billed": sorted(BILLED)}
        found = self._run(lambda db: db.execute(_TITLES, wanted).fetchall())
        return [_sent(values) for values in found]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _provider(self, keys: Iterable[str]) -> dict[str, Any]:
        return {"keys": sorted(set(keys)), "host": self.host, "account": self.account}

    def _write(self, db: Connection, batch: Batch) -> dict[str, Sent]:
        """Entries (first: a row released and claimed again stays claimed), then claims (the check, then the
        insert the unique indexes arbitrate)."""
        mine = {"output": self.output, "journal": batch.journal or "", "account": self.account}
        mine |= {"machine": self.machine, "host": self.host}
        if batch.entries:
            with db.pipeline():
                for entry in batch.entries:
                    self._apply(db, entry, mine, batch.songs.get(entry.key))
        keys = sorted(set(batch.claims))  # one order on every machine: two claims of many rows never deadlock
        failed: dict[str, Sent] = {}
        blocking = sorted(batch.blocking)
        if keys and blocking:
            found = db.execute(_HOLDERS, {**mine, **self._provider(keys), "blocking": blocking})
            failed = {row[0]: _sent(row) for row in found}
        free = [key for key in keys if key not in failed]
        if free and blocking:  # an exclusive claim
            db.execute(_YIELD, {**mine, **self._provider(free), "blocking": blocking})
        if free:
            songs = [song_columns(batch.songs.get(key)) for key in free]
            claim: dict[str, Any] = {"at": batch.at, "seq": batch.seq, "exclusive": bool(blocking), "keys": free}
            claim |= {"titles": [title for title, _ in songs], "songs": [song for _, song in songs]}
            db.execute(_CLAIM, {**mine, **claim})
        return failed

    def _apply(self, db: Connection, entry: Entry, mine: dict[str, Any], song: Song | None) -> None:
        if entry.taken_from is not None:
            db.execute(_RELEASE, {**mine, "key": entry.key, "journal": entry.taken_from})
        if entry.state == RELEASED:
            db.execute(_RELEASE, {**mine, "key": entry.key})
            return
        values: dict[str, Any] = {
            "key": entry.key,
            "state": entry.state,
            "at": entry.at,
            "ids": list(entry.job_ids) or None,
        }
        values["title"], values["song"] = song_columns(song)
        db.execute(_ENTRY, {**mine, **values})

    def _migrate(self, db: Connection) -> None:
        """Create or extend the schema; machines that start at once take turns (an advisory lock)."""
        made = db.execute("SELECT to_regclass('batchgen_migrations') IS NOT NULL").fetchone() == (True,)
        if made and self._version(db) == VERSION:
            return
        db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        db.execute(
            "CREATE TABLE IF NOT EXISTS batchgen_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), by TEXT NOT NULL)"
        )
        version = self._version(db)
        if version > VERSION:
            raise LedgerError(
                f"the team ledger {self.where} was written by a newer batchgen (ledger version {version}); "
                "upgrade batchgen"
            )
        for number, statements in enumerate(_MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                db.execute(statement)
            if number == 2:
                self._respell(db)
            db.execute("INSERT INTO batchgen_migrations (version, by) VALUES (%s, %s)", (number, "batchgen"))

    @staticmethod
    def _respell(db: Connection) -> None:
        """Older entries' hosts in today's spelling (:func:`~batchgen.settings.provider_host`), so a row sent
        before the upgrade is found under any spelling. Where two spellings of one entry meet, the one moved
        first stays the exclusive one and an entry already in the new spelling is kept as it is."""
        for (host,) in db.execute("SELECT DISTINCT host FROM batchgen_sent").fetchall():
            spelt = respell(host)
            if spelt == host:
                continue
            values = {"old": host, "new": spelt}
            db.execute(
                """UPDATE batchgen_sent AS moved SET exclusive = FALSE WHERE host = %(old)s AND exclusive
                   AND EXISTS (SELECT 1 FROM batchgen_sent AS kept
                       WHERE kept.host = %(new)s AND kept.key = moved.key AND kept.exclusive)""",
                values,
            )
            db.execute(
                """UPDATE batchgen_sent AS moved SET host = %(new)s WHERE host = %(old)s
                   AND NOT EXISTS (SELECT 1 FROM batchgen_sent AS kept WHERE kept.host = %(new)s
                       AND kept.key = moved.key AND kept.output = moved.output AND kept.journal = moved.journal)""",
                values,
            )

    @staticmethod
    def _version(db: Connection) -> int:
        found = db.execute("SELECT COALESCE(MAX(version), 0) FROM batchgen_migrations").fetchone()
        return int(found[0]) if found else 0

    def _run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one committed transaction, on the open connection or a new one.

        A write is idempotent (a claim this output already holds is claimed again), so it may be written again:
        after another machine's simultaneous claim, and once on a new connection when the old one had died
        while idle (a server restarted, a firewall that drops quiet connections).
        """
        for _ in range(WRITES):
            reused = self._db is not None
            watchdog: _Watchdog | None = None
            try:
                db = self._db = self._db or psycopg.connect(self._conninfo, autocommit=True)
                with _Watchdog(db, self.answer_within) as watchdog, db.transaction():
                    return work(db)
            except _CONFLICTS:
                continue
            except psycopg.Error as exc:
                died = self._db is not None and self._db.broken
                self.close()
                if watchdog is not None and watchdog.fired:
                    raise self._down(f"no answer within {self.answer_within:g} s") from None
                if not (reused and died):
                    raise self._down(str(exc)) from None
        raise LedgerDown(f"the team ledger {self.where} kept refusing this run's claims; run it again", self.where)

    def _down(self, error: str) -> LedgerDown:
        reason = " ".join(line.strip() for line in error.splitlines() if line.strip())
        return LedgerDown(
            f"the team ledger {self.where} cannot be used ({redact(reason, self._password)}): rows cannot be "
            "claimed, so no request is sent until it is back; then run the same command again",
            self.where,
        )


class _Watchdog:
    """Cuts a connection whose server has not answered within ``seconds``.

    The statement timeout is the server's own; a server that does not run at all (a frozen process, a hung
    proxy) never sends it, and the commit thread would wait forever, holding up the journal writes of the
    answers that came meanwhile. Shutting the socket down makes the waiting call fail at once.
    """

    def __init__(self, db: Connection, seconds: float) -> None:
        self.db, self.fired = db, False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _cut(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError, psycopg.Error), socket.socket(fileno=os.dup(self.db.pgconn.socket)) as cut:
            cut.shutdown(socket.SHUT_RDWR)


def _sent(values: tuple[Any, ...]) -> Sent:
    return sent_from(values, values[3].isoformat(), tuple(values[4] or ()))
