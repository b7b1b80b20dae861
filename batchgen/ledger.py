"""The per-user ledger of sent rows, and the state folder that holds it (and rescue files and locks).

The journal lives beside one output; the ledger spans every output of the user. Each row key sent to a
provider host is recorded with the output it went to, when, and its job ids. So the same sheet run to a
second output, overlapping ``--rows`` shards, or a run whose journal was deleted never bill a row twice.

The ledger is attached to the journal's SQLite connection, and a trigger mirrors each state change of the
journal's rows into it: both are written in one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STATE_ENV = "BATCHGEN_STATE_DIR"
LEDGER_FILE = "ledger.sqlite"
BILLED = ("in_flight", "done", "unknown")  # states whose request may have created jobs

# A trigger may not name the database it writes to: ``sent`` resolves to the ledger's (temp, main, then attached).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger.sent (
    key TEXT NOT NULL, host TEXT NOT NULL, output TEXT NOT NULL, state TEXT NOT NULL, sent_at TEXT NOT NULL,
    job_ids TEXT, PRIMARY KEY (key, host, output)
);
CREATE TEMP TABLE IF NOT EXISTS ledger_link (host TEXT NOT NULL, output TEXT NOT NULL);
CREATE TEMP TRIGGER IF NOT EXISTS ledger_follows AFTER UPDATE OF state, job_ids ON main.rows
BEGIN
    DELETE FROM sent
    WHERE NEW.state NOT IN ('in_flight', 'done', 'unknown') AND key = NEW.key AND state != 'done'
      AND host = (SELECT host FROM ledger_link) AND output = (SELECT output FROM ledger_link);
    INSERT INTO sent (key, host, output, state, sent_at, job_ids)
    SELECT NEW.key, host, output, NEW.state, NEW.updated_at, NEW.job_ids FROM ledger_link
    WHERE NEW.state IN ('in_flight', 'done', 'unknown')
    ON CONFLICT (key, host, output) DO UPDATE SET state = excluded.state,
        job_ids = COALESCE(excluded.job_ids, job_ids),
        sent_at = CASE WHEN excluded.state = 'in_flight' THEN excluded.sent_at ELSE sent_at END
    WHERE state != 'done';
END;
"""


def state_dir() -> Path:
    """``$BATCHGEN_STATE_DIR``, else the platform's per-user state folder (platformdirs)."""
    configured = os.environ.get(STATE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return platformdirs.user_state_path("batchgen", appauthor=False)


@dataclass(frozen=True, slots=True)
class Sent:
    """What the ledger knows of one row key: where it went, when, and with which job ids."""

    key: str
    output: str
    state: str
    sent_at: str
    job_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LedgerLink:
    """This run's place in the ledger: its provider host and its output (the resolved real path)."""

    host: str
    output: str

    def attach(self, db: sqlite3.Connection, folder: Path) -> None:
        """Attach the ledger in ``folder`` to ``db`` (creating it), in WAL mode for several processes, and make
        it follow every state change of the journal's rows: a trigger, so in the same transaction, in C."""
        folder.mkdir(parents=True, exist_ok=True)
        db.execute("ATTACH DATABASE ? AS ledger", (str(folder / LEDGER_FILE),))
        db.execute("PRAGMA ledger.journal_mode=WAL")
        db.execute("PRAGMA ledger.synchronous=NORMAL")
        db.executescript(_SCHEMA)
        db.execute("DELETE FROM temp.ledger_link")
        db.execute("INSERT INTO temp.ledger_link (host, output) VALUES (?, ?)", (self.host, self.output))
        db.commit()

    def lookup(self, db: sqlite3.Connection, keys: Iterable[str]) -> Iterator[Sent]:
        """Every billed entry of this host for ``keys``, whatever output it went to."""
        with _key_table(db, keys):
            cursor = db.execute(
                f"""SELECT s.key, s.output, s.state, s.sent_at, s.job_ids FROM ledger.sent s
                    JOIN temp.wanted w ON w.key = s.key
                    WHERE s.host=? AND s.state IN ({", ".join("?" * len(BILLED))}) ORDER BY s.sent_at""",
                (self.host, *BILLED),
            )
            for key, output, state, sent_at, job_ids in cursor.fetchall():
                yield Sent(key, output, state, sent_at, tuple(json.loads(job_ids)) if job_ids else ())


@contextmanager
def _key_table(db: sqlite3.Connection, keys: Iterable[str]) -> Iterator[None]:
    """A temporary table of keys to join with: faster than a long IN list, and without its size limit."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (key TEXT PRIMARY KEY)")
    db.execute("DELETE FROM temp.wanted")
    db.executemany("INSERT OR IGNORE INTO temp.wanted (key) VALUES (?)", ((key,) for key in keys))
    try:
        yield
    finally:
        db.execute("DELETE FROM temp.wanted")
        db.commit()
