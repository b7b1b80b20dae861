"""The per-user ledger: one SQLite file in the state folder, shared by every run of the user.

WAL lets several processes read while one writes; ``synchronous=FULL`` syncs every commit, so a claim is on
disk before its request leaves. A claim is one ``BEGIN IMMEDIATE`` transaction (the write lock first, then
the check, then the insert): two runs claiming one row at the same instant are serialised, and the second
sees the first's claim.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..environment import STATE_ENV
from ..system import sqlite_durable
from .base import BILLED, RELEASED, SENT_COLUMNS, Batch, Entry, LedgerError, Sent

LEDGER_FILE = "ledger.sqlite"
VERSION = 2
BUSY_MS = 60_000  # another run's transaction is short; a minute covers a slow disk

# Version 1 (no user_version) had no claim identity; version 2 adds the journal and write sequence of a claim.
_TABLE = """
CREATE TABLE IF NOT EXISTS sent (
    key TEXT NOT NULL, host TEXT NOT NULL, output TEXT NOT NULL, state TEXT NOT NULL, sent_at TEXT NOT NULL,
    job_ids TEXT, PRIMARY KEY (key, host, output)
);
"""
_V2 = ("ALTER TABLE sent ADD COLUMN journal TEXT", "ALTER TABLE sent ADD COLUMN seq INTEGER")


class SqliteLedger:
    """The SQLite ledger in ``folder``, bound to ``host`` and ``output`` (see :class:`~batchgen.ledger.Ledger`)."""

    def __init__(self, folder: Path, host: str, output: str) -> None:
        self.host, self.output = host, output
        self.where = str(folder / LEDGER_FILE)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit, so a claim can take the write lock first (IMMEDIATE).
            self.db = sqlite3.connect(self.where, isolation_level=None, check_same_thread=False)
            self.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            sqlite_durable(self.db)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(
                f"cannot open the ledger of sent rows in {folder} ({exc}); set {STATE_ENV} to a writable folder"
            ) from None

    def _migrate(self) -> None:
        (version,) = self.db.execute("PRAGMA user_version").fetchone()
        if version > VERSION:
            raise sqlite3.DatabaseError(f"written by a newer batchgen (ledger version {version}); upgrade batchgen")
        if version == VERSION:
            return
        with self._transaction():
            self.db.execute(_TABLE)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(sent)")}
            if "seq" not in columns:
                for statement in _V2:
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version={VERSION}")

    def write(self, batch: Batch) -> dict[str, Sent]:
        failed: dict[str, Sent] = {}
        try:
            with self._transaction():
                for entry in batch.entries:  # first: a row released and claimed again stays claimed
                    self._apply(entry)
                for key in batch.claims:
                    holder = self._holder(key, batch.blocking)
                    if holder is not None:
                        failed[key] = holder
                        continue
                    self.db.execute(
                        """INSERT INTO sent (key, host, output, state, sent_at, job_ids, journal, seq)
                           VALUES (?, ?, ?, 'in_flight', ?, NULL, ?, ?)
                           ON CONFLICT (key, host, output) DO UPDATE SET state='in_flight',
                               sent_at=excluded.sent_at, journal=excluded.journal, seq=excluded.seq
                           WHERE state != 'done'""",
                        (key, self.host, self.output, batch.at, batch.journal, batch.seq),
                    )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write the ledger of sent rows {self.where} ({exc})") from None
        return failed

    def _holder(self, key: str, blocking: frozenset[str]) -> Sent | None:
        """Another output's entry for ``key`` in one of the ``blocking`` states, if any."""
        if not blocking:
            return None
        found = self.db.execute(
            f"SELECT {SENT_COLUMNS} FROM sent WHERE key=? AND host=? AND output != ? "
            f"AND state IN ({', '.join('?' * len(blocking))}) ORDER BY sent_at LIMIT 1",
            (key, self.host, self.output, *sorted(blocking)),
        ).fetchone()
        return _sent(found) if found else None

    def _apply(self, entry: Entry) -> None:
        where = (entry.key, self.host, self.output)
        if entry.state == RELEASED:
            self.db.execute("DELETE FROM sent WHERE key=? AND host=? AND output=? AND state != 'done'", where)
            return
        ids = json.dumps(list(entry.job_ids)) if entry.job_ids else None
        self.db.execute(
            """INSERT INTO sent (key, host, output, state, sent_at, job_ids) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (key, host, output) DO UPDATE SET state=excluded.state,
                   job_ids=COALESCE(excluded.job_ids, job_ids)
               WHERE state != 'done'""",
            (*where, entry.state, entry.at, ids),
        )

    def lookup(self, keys: Iterable[str]) -> list[Sent]:
        found: list[Sent] = []
        try:
            for key in set(keys):
                cursor = self.db.execute(
                    f"SELECT {SENT_COLUMNS} FROM sent WHERE key=? AND host=? "
                    f"AND state IN ({', '.join('?' * len(BILLED))})",
                    (key, self.host, *sorted(BILLED)),
                )
                found.extend(_sent(values) for values in cursor)
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
    key, output, state, sent_at, job_ids, journal, seq = values
    return Sent(
        str(key),
        str(output),
        str(state),
        str(sent_at),
        tuple(json.loads(str(job_ids))) if job_ids else (),
        None if journal is None else str(journal),
        None if seq is None else int(str(seq)),
    )
