"""The journal's file: its tables, schema version (``PRAGMA user_version``), migrations and connection settings.

Version 1 is the first release's journal (it had no user_version); version 2 adds row labels (a DataFrame's
index), the key of a row left out of a run, and the trigger that makes a ``done`` record final; version 3
links a row sent again after an edit to the row it replaces (``replaced_by``), whose ids are then superseded;
version 4 keeps the night: every attempt (``attempts``) and every run event (``events``), for ``batchgen report``;
version 5 marks the rows the latest input holds outside a ``rows`` shard (``file_run``): still in it, not lost.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import JournalError, UsageError
from ..system import sqlite_durable

VERSION = 5

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, input TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY,
    row INTEGER NOT NULL,
    title TEXT NOT NULL,
    payload TEXT NOT NULL,
    extras TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'done', 'failed', 'unknown')),
    retryable INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    job_ids TEXT,
    http_status INTEGER,
    message TEXT,
    seen_run INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    submitted_at TEXT
);
CREATE INDEX IF NOT EXISTS rows_by_state ON rows (state, seen_run);
CREATE TABLE IF NOT EXISTS invalid (
    row INTEGER PRIMARY KEY, title TEXT NOT NULL, message TEXT NOT NULL, extras TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'invalid'
);
"""

_V2 = """
ALTER TABLE rows ADD COLUMN label TEXT;
ALTER TABLE invalid ADD COLUMN label TEXT;
ALTER TABLE invalid ADD COLUMN key TEXT;
CREATE TRIGGER IF NOT EXISTS done_is_final BEFORE UPDATE OF state, job_ids ON rows
WHEN OLD.state = 'done' AND (NEW.state IS NOT 'done' OR NEW.job_ids IS NOT OLD.job_ids)
BEGIN SELECT RAISE(ABORT, 'a done row is final'); END;
"""

_V3 = "ALTER TABLE rows ADD COLUMN replaced_by TEXT;"

# Times are Unix seconds (REAL): a night is drawn to the second and below. ``rate`` and ``window`` are the pace's
# when the request left; ``answered`` and ``status`` are NULL for a request that got no answer.
_V4 = """
CREATE TABLE IF NOT EXISTS attempts (
    run INTEGER NOT NULL, key TEXT NOT NULL, attempt INTEGER NOT NULL, sent REAL NOT NULL, answered REAL,
    outcome TEXT NOT NULL, status INTEGER, latency REAL, flight INTEGER, rate REAL, window INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    run INTEGER NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL, why TEXT NOT NULL, until REAL
);
"""

_V5 = "ALTER TABLE rows ADD COLUMN file_run INTEGER;"


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the journal at ``path`` and migrate it.

    WAL with ``synchronous=FULL`` syncs the log at every commit: a commit survives a power cut, not only a
    killed process. Writes during a run are grouped (:mod:`batchgen.journal.group`), so that costs one sync per
    batch of rows, not one per row.
    """
    try:
        db = sqlite3.connect(path)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        sqlite_durable(db)
        migrate(db, str(path))
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open the journal {path} ({exc})") from None
    return db


def migrate(db: sqlite3.Connection, where: str) -> None:
    """Bring a new or older journal to :data:`VERSION`; refuse one written by a newer batchgen."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version == 0:
        legacy = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='rows'").fetchone()
        version = 1 if legacy else 0
    if version > VERSION:
        raise UsageError(
            f"{where} was written by a newer batchgen (journal version {version}, this one reads up to "
            f"{VERSION}); upgrade batchgen to resume it"
        )
    if version == VERSION:
        return
    steps = _TABLES + (_V2 if version < 2 else "") + (_V3 if version < 3 else "") + _V4 + (_V5 if version < 5 else "")
    db.executescript("BEGIN;" + steps + f"PRAGMA user_version={VERSION};COMMIT;")
