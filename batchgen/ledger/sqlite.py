"""The per-user ledger: one SQLite file in the state folder, shared by every run of the user.

WAL lets several processes read while one writes; ``synchronous=FULL`` syncs every commit, so a claim is on
disk before its request leaves. A claim is one ``BEGIN IMMEDIATE`` transaction (the write lock first, then
the check, then the insert): two runs claiming one row at the same instant are serialised, and the second
sees the first's claim.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..environment import STATE_ENV
from ..paths import LEDGER_FILE
from ..system import sqlite_durable
from .base import (
    BILLED,
    RELEASED,
    SENT_COLUMNS,
    Batch,
    Entry,
    LedgerError,
    Sent,
    Song,
    respell,
    sent_from,
    song_columns,
)

VERSION = 4
OPEN_TRIES = 20  # an open that met another run's switch to WAL is tried again, this many times at most
BUSY_MS = 60_000  # another run's transaction is short; a minute covers a slow disk

# Version 1 (no user_version) had no claim identity; version 2 added the journal and write sequence of a claim;
# version 3 makes each journal's entries its own (the journal joins the key), records the account and the
# machine, and writes every host in one spelling (the entries of older versions are rewritten); version 4
# records the row each entry is of (:class:`~batchgen.ledger.base.Song`), found by its title: older entries have
# none, and are never taken for an earlier version of an edited row.
_TABLE = """
CREATE TABLE sent (
    key TEXT NOT NULL, host TEXT NOT NULL, output TEXT NOT NULL, journal TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL, sent_at TEXT NOT NULL, job_ids TEXT, seq INTEGER, account TEXT, machine TEXT,
    PRIMARY KEY (key, host, output, journal)
)
"""
_V2 = ("ALTER TABLE sent ADD COLUMN journal TEXT", "ALTER TABLE sent ADD COLUMN seq INTEGER")
# Older entries, their hosts in one spelling: of two spellings of one entry, a done one is kept.
_V3 = (
    "ALTER TABLE sent RENAME TO sent_before_v3",
    _TABLE,
    """INSERT OR IGNORE INTO sent (key, host, output, journal, state, sent_at, job_ids, seq)
       SELECT key, batchgen_host(host), output, COALESCE(journal, ''), state, sent_at, job_ids, seq
       FROM sent_before_v3 ORDER BY state = 'done' DESC, sent_at""",
    "DROP TABLE sent_before_v3",
)
_V4 = (
    "ALTER TABLE sent ADD COLUMN title TEXT",
    "ALTER TABLE sent ADD COLUMN song TEXT",
    "CREATE INDEX sent_title ON sent (title)",
)
_PROVIDER = "key=? AND (host=? OR account=?)"  # another entry of this row at the same provider: either matches


class SqliteLedger:
    """The SQLite ledger in ``folder``, bound to a provider, an output and a machine (see
    :class:`~batchgen.ledger.Ledger`)."""

    def __init__(self, folder: Path, host: str, output: str, account: str | None = None, machine: str = "") -> None:
        self.host, self.account, self.output, self.machine = host, account, output, machine
        self.where = str(folder / LEDGER_FILE)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for attempt in range(OPEN_TRIES):
                try:
                    self._open()
                    break
                except sqlite3.OperationalError as exc:  # runs that start at once: switching an older ledger to
                    if "locked" not in str(exc) or attempt == OPEN_TRIES - 1:  # WAL is refused at once, not waited
                        raise
                    if hasattr(self, "db"):
                        self.db.close()
                    time.sleep(0.05 * (attempt + 1))
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(
                f"cannot open the ledger of sent rows in {folder} ({exc}); set {STATE_ENV} to a writable folder"
            ) from None

    def _open(self) -> None:
        # Autocommit mode: transactions are explicit, so a claim can take the write lock first (IMMEDIATE).
        self.db = sqlite3.connect(self.where, isolation_level=None, check_same_thread=False)
        self.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        sqlite_durable(self.db)
        self._migrate()

    def _migrate(self) -> None:
        (version,) = self.db.execute("PRAGMA user_version").fetchone()
        if version > VERSION:
            raise sqlite3.DatabaseError(f"written by a newer batchgen (ledger version {version}); upgrade batchgen")
        if version == VERSION:
            return
        self.db.create_function("batchgen_host", 1, respell, deterministic=True)
        with self._transaction():
            if self.db.execute("PRAGMA user_version").fetchone()[0] == VERSION:
                return  # another run migrated it while this one waited for the lock
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(sent)")}
            if not columns:
                self.db.execute(_TABLE)
            elif "machine" not in columns:
                if "seq" not in columns:
                    for statement in _V2:
                        self.db.execute(statement)
                for statement in _V3:
                    self.db.execute(statement)
            for statement in _V4:
                self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version={VERSION}")

    def write(self, batch: Batch) -> dict[str, Sent]:
        failed: dict[str, Sent] = {}
        journal = batch.journal or ""
        try:
            with self._transaction():
                for entry in batch.entries:  # first: a row released and claimed again stays claimed
                    self._apply(entry, journal, batch.songs.get(entry.key))
                for key in batch.claims:
                    holder = self._holder(key, journal, batch.blocking)
                    if holder is not None:
                        failed[key] = holder
                        continue
                    song = song_columns(batch.songs.get(key))
                    self.db.execute(
                        """INSERT INTO sent
                               (key, host, output, journal, state, sent_at, seq, account, machine, title, song)
                           VALUES (?, ?, ?, ?, 'in_flight', ?, ?, ?, ?, ?, ?)
                           ON CONFLICT (key, host, output, journal) DO UPDATE SET state='in_flight',
                               sent_at=excluded.sent_at, seq=excluded.seq, account=excluded.account,
                               machine=excluded.machine, title=COALESCE(excluded.title, title),
                               song=COALESCE(excluded.song, song)
                           WHERE state != 'done'""",
                        (key, self.host, self.output, journal, batch.at, batch.seq, self.account, self.machine, *song),
                    )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write the ledger of sent rows {self.where} ({exc})") from None
        return failed

    def _holder(self, key: str, journal: str, blocking: frozenset[str]) -> Sent | None:
        """The entry of another output, or of another journal here, for ``key`` in a ``blocking`` state."""
        if not blocking:
            return None
        found = self.db.execute(
            f"SELECT {SENT_COLUMNS} FROM sent WHERE {_PROVIDER} AND NOT (output=? AND journal=?) "
            f"AND state IN ({', '.join('?' * len(blocking))}) ORDER BY sent_at LIMIT 1",
            (key, self.host, self.account, self.output, journal, *sorted(blocking)),
        ).fetchone()
        return _sent(found) if found else None

    def _apply(self, entry: Entry, journal: str, song: Song | None) -> None:
        if entry.taken_from is not None:
            self._release(entry.key, entry.taken_from)
        if entry.state == RELEASED:
            self._release(entry.key, journal)
            return
        where = (entry.key, self.host, self.output, journal)
        ids = json.dumps(list(entry.job_ids)) if entry.job_ids else None
        self.db.execute(
            """INSERT INTO sent (key, host, output, journal, state, sent_at, job_ids, account, machine, title, song)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (key, host, output, journal) DO UPDATE SET state=excluded.state,
                   job_ids=COALESCE(excluded.job_ids, job_ids), title=COALESCE(excluded.title, title),
                   song=COALESCE(excluded.song, song)
               WHERE state != 'done'""",
            (*where, entry.state, entry.at, ids, self.account, self.machine, *song_columns(song)),
        )

    def _release(self, key: str, journal: str) -> None:
        """``journal``'s entry for ``key`` at this output, unless done, goes (whatever spelling of the host)."""
        self.db.execute(
            f"DELETE FROM sent WHERE {_PROVIDER} AND output=? AND journal=? AND state != 'done'",
            (key, self.host, self.account, self.output, journal),
        )

    def lookup(self, keys: Iterable[str]) -> list[Sent]:
        return self._billed(_PROVIDER, keys)

    def lookup_titles(self, titles: Iterable[str]) -> list[Sent]:
        return self._billed("title=? AND (host=? OR account=?)", titles)

    def _billed(self, where: str, values: Iterable[str]) -> list[Sent]:
        """The billed entries of this provider that ``where`` picks, for each of ``values``, oldest first."""
        found: list[Sent] = []
        try:
            for value in set(values):
                cursor = self.db.execute(
                    f"SELECT {SENT_COLUMNS} FROM sent WHERE {where} AND state IN ({', '.join('?' * len(BILLED))})",
                    (value, self.host, self.account, *sorted(BILLED)),
                )
                found.extend(map(_sent, cursor))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the ledger of sent rows {self.where} ({exc})") from None
        return sorted(found, key=lambda sent: sent.sent_at)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def _sent(values: tuple[object, ...]) -> Sent:
    job_ids = values[4]
    return sent_from(values, str(values[3]), tuple(json.loads(str(job_ids))) if job_ids else ())
