"""The SQLite journal: one record per input row, the single source of truth of a batch.

Every state change is committed before the next step happens: ``in_flight`` before a request is sent,
``done`` with its job ids as soon as the answer arrives. WAL with ``synchronous=NORMAL`` makes each commit
survive a killed process (only a power cut can lose the last commits), so a SIGKILL at any instant never
loses a stored job id and never lets a ``done`` row be sent again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import JournalError, UsageError
from .validate import ValidRow

STATES = ("pending", "in_flight", "done", "failed", "unknown")

_SCHEMA = """
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


def now() -> str:
    """UTC timestamps in ISO 8601, to the second: what people read in the output sheet."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def journal_path(output: str | Path) -> Path:
    """The journal lives beside the output: ``results.xlsx`` -> ``results.xlsx.journal``."""
    output = Path(output)
    return output.with_name(output.name + ".journal")


def row_keys(payloads: Iterable[dict[str, Any]]) -> list[str]:
    """A key per payload: hash of its canonical JSON plus its occurrence among identical payloads.

    Reordering or inserting rows keeps every key, and intentional duplicates get one key each.
    """
    seen: Counter[str] = Counter()
    keys = []
    for payload in payloads:
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()[:32]
        keys.append(f"{digest}-{seen[digest]}")
        seen[digest] += 1
    return keys


@dataclass(frozen=True, slots=True)
class Record:
    """One row of the journal, as the submitter and `status` see it; ``body`` is the exact JSON to POST."""

    key: str
    row: int
    title: str
    body: bytes
    extras: dict[str, Any]
    state: str
    retryable: bool
    attempts: int
    job_ids: list[str]
    http_status: int | None
    message: str | None
    seen_run: int
    submitted_at: str | None


@dataclass(frozen=True, slots=True)
class DoneRow:
    """What the ``jobs`` sheet shows of a done row."""

    row: int
    title: str
    tag: str
    model: str
    job_ids: list[str]
    submitted_at: str
    extras: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row not sent: ``invalid`` (skipped with ``--skip-invalid``) or ``duplicate`` (skipped with ``--dedupe``)."""

    row: int
    title: str
    message: str
    extras: dict[str, Any]
    state: str = "invalid"


class Journal:
    """A batch's SQLite journal. Open it with :meth:`open`; every method commits before it returns."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> Journal:
        path = Path(path)
        try:
            db = sqlite3.connect(path)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise UsageError(f"{path}: cannot open the journal ({exc})") from None
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- a run's start -------------------------------------------------------------------------------

    def recover(self) -> int:
        """Turn ``in_flight`` rows left by a crash into ``unknown``: their request may have been billed."""
        with self._writing():
            cursor = self.db.execute(
                "UPDATE rows SET state='unknown', message=?, updated_at=? WHERE state='in_flight'",
                ("interrupted while the request was in flight: the provider may have created jobs", now()),
            )
        return cursor.rowcount

    def start_run(
        self, input_path: str, valid: list[ValidRow], invalid: list[InvalidRow], extra_columns: list[str], force: bool = False
    ) -> int:
        """Record a run over the current file: new rows become ``pending``, known rows keep their state.

        A journal that shares no row with the file was made from another batch: refused unless ``force``.
        """
        stamp = now()
        keys = row_keys(item.payload for item in valid)
        known = {key for (key,) in self.db.execute("SELECT key FROM rows")}
        if known and not force and known.isdisjoint(keys):
            (previous,) = self.db.execute("SELECT input FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            raise UsageError(
                f"{self.path} was made from another input ({previous}) and shares no row with {input_path}; "
                "choose another -o, or pass --force to add these rows to it"
            )
        with self._writing():
            run = self.db.execute("INSERT INTO runs (started_at, input) VALUES (?, ?)", (stamp, input_path)).lastrowid
            self.db.executemany(
                """INSERT INTO rows (key, row, title, payload, extras, state, seen_run, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET row=excluded.row, extras=excluded.extras, seen_run=excluded.seen_run""",
                (
                    (key, item.source.number, item.payload["title"], json.dumps(item.payload, ensure_ascii=False),
                     _dumps(item.source.extras), run, stamp, stamp)
                    for key, item in zip(keys, valid)
                ),
            )
            self.db.execute("DELETE FROM invalid")
            self.db.executemany(
                "INSERT INTO invalid (row, title, message, extras, state) VALUES (?, ?, ?, ?, ?)",
                ((bad.row, bad.title, bad.message, _dumps(bad.extras), bad.state) for bad in invalid),
            )
            self._set_meta("extra_columns", json.dumps(extra_columns, ensure_ascii=False))
        return run

    def to_send(self, run: int, retry_unknown: bool) -> list[Record]:
        """Rows of this run still owed a request: pending, failed but retryable, and unknown if asked."""
        states = ("'pending'", "'unknown'") if retry_unknown else ("'pending'",)
        return self._select(
            f"seen_run=? AND (state IN ({', '.join(states)}) OR (state='failed' AND retryable=1))", (run,)
        )

    # -- state changes, each committed before the caller goes on ------------------------------------

    def mark_in_flight(self, key: str) -> None:
        self._update(key, "in_flight", attempts="attempts + 1")

    def mark_done(self, key: str, job_ids: list[str], status: int) -> None:
        self._update(key, "done", job_ids=json.dumps(job_ids), http_status=status, message=None, submitted_at=now())

    def mark_pending(self, key: str, status: int | None, message: str) -> None:
        """A request that was refused or never reached the provider: safe to send again."""
        self._update(key, "pending", http_status=status, message=message)

    def mark_failed(self, key: str, status: int | None, message: str, retryable: bool) -> None:
        self._update(key, "failed", http_status=status, message=message, retryable=int(retryable))

    def mark_unknown(self, key: str, status: int | None, message: str) -> None:
        self._update(key, "unknown", http_status=status, message=message)

    def _update(self, key: str, state: str, attempts: str = "attempts", **values: Any) -> None:
        assignments = "".join(f", {name}=?" for name in values)
        with self._writing():
            self.db.execute(
                f"UPDATE rows SET state=?, attempts={attempts}, updated_at=?{assignments} WHERE key=?",
                (state, now(), *values.values(), key),
            )

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One committed transaction; a failure (full disk, removed file) becomes a :class:`JournalError`."""
        try:
            with self.db:
                yield
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write the journal {self.path} ({exc})") from None

    # -- reading, for the writer and for status ---------------------------------------------------

    def latest_run(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]

    def extra_columns(self) -> list[str]:
        return json.loads(self.meta("extra_columns") or "[]")

    def meta(self, name: str) -> str | None:
        found = self.db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return found[0] if found else None

    def set_meta(self, name: str, value: str) -> None:
        with self._writing():
            self._set_meta(name, value)

    def _set_meta(self, name: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value", (name, value)
        )

    def fingerprint(self) -> str:
        """A digest of everything the output shows: equal digests mean an identical output."""
        digest = hashlib.sha256(self.meta("extra_columns").encode() if self.meta("extra_columns") else b"")
        latest = self.latest_run()
        queries = (
            ("SELECT key, row, title, state, job_ids, message, submitted_at, seen_run = ?, extras FROM rows ORDER BY key", (latest,)),
            ("SELECT row, title, message, extras, state FROM invalid ORDER BY row", ()),
        )
        for query, params in queries:
            for values in self.db.execute(query, params):
                digest.update(repr(values).encode())
        return digest.hexdigest()

    def done(self) -> Iterator[DoneRow]:
        """Every row with job ids, from any run (those jobs exist and were paid for), in row order.

        Only what the output shows is read: decoding every payload (lyrics and all) would double the cost.
        """
        cursor = self.db.execute(
            "SELECT row, title, json_extract(payload, '$.tag'), json_extract(payload, '$.model'), job_ids, submitted_at,"
            " extras FROM rows WHERE state='done' ORDER BY row, key"
        )
        for row, title, tag, model, job_ids, submitted_at, extras in cursor:
            yield DoneRow(row, title, tag, model, json.loads(job_ids), submitted_at, json.loads(extras))

    def unfinished(self, run: int) -> list[Record]:
        """Rows of ``run`` without job ids: failed, unknown, or not sent yet."""
        return self._select("seen_run=? AND state != 'done'", (run,))

    def run_info(self, run: int) -> tuple[str, str]:
        """The input and start time of ``run``."""
        found = self.db.execute("SELECT input, started_at FROM runs WHERE id=?", (run,)).fetchone()
        return found if found else ("", "")

    def done_span(self) -> tuple[int, str | None, str | None]:
        """How many rows are done, and the first and last moment one was: the batch's throughput."""
        return self.db.execute("SELECT COUNT(*), MIN(submitted_at), MAX(submitted_at) FROM rows WHERE state='done'").fetchone()

    def invalid(self) -> list[InvalidRow]:
        cursor = self.db.execute("SELECT row, title, message, extras, state FROM invalid ORDER BY row")
        return [InvalidRow(row, title, message, json.loads(extras), state) for row, title, message, extras, state in cursor]

    def counts(self, run: int) -> Counter[str]:
        """Rows of ``run`` per state."""
        cursor = self.db.execute("SELECT state, COUNT(*) FROM rows WHERE seen_run=? GROUP BY state", (run,))
        return Counter(dict(cursor.fetchall()))

    def _select(self, where: str, params: tuple) -> list[Record]:
        cursor = self.db.execute(
            "SELECT key, row, title, payload, extras, state, retryable, attempts, job_ids, http_status, message,"
            f" seen_run, submitted_at FROM rows WHERE {where} ORDER BY row, key",
            params,
        )
        return [_record(values) for values in cursor]

    def records(self) -> Iterator[Record]:
        """Every record, in row order."""
        yield from self._select("1", ())


def _record(values: tuple) -> Record:
    key, row, title, payload, extras, state, retryable, attempts, job_ids, status, message, seen_run, submitted = values
    return Record(
        key, row, title, payload.encode(), json.loads(extras), state, bool(retryable), attempts,
        json.loads(job_ids) if job_ids else [], status, message, seen_run, submitted,
    )


def _dumps(extras: dict[str, Any]) -> str:
    """Passthrough cells as JSON; dates and other non-JSON values as their text."""
    return json.dumps(extras, ensure_ascii=False, default=_as_text)


def _as_text(value: Any) -> str:
    """Dates and times as ISO 8601 (what people sort and filter on), anything else as its text."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
