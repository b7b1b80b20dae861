"""The journal's writes: a run's rows, and every state change, each committed before the caller goes on.

``in_flight`` is committed before a request is sent, ``done`` with its job ids as soon as the answer arrives.
WAL with ``synchronous=NORMAL`` makes each commit survive a killed process, so a SIGKILL at any instant never
loses a stored job id. A ``done`` record is final: updates skip it, and a trigger refuses any that would not.
When the ledger is attached, each change is mirrored there in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import JournalError, UsageError
from ..ledger import LedgerLink
from .schema import connect
from .view import JournalView, dumps


def now() -> str:
    """UTC timestamps in ISO 8601, to the second: what people read in the output sheet."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True, slots=True)
class NewRow:
    """A valid input row as the journal records it."""

    key: str
    row: int
    label: int | str
    title: str
    payload: str
    extras: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A row not sent this run: ``invalid``, ``duplicate`` (dedupe), ``hidden`` or ``skipped`` (sent elsewhere)."""

    row: int
    label: int | str
    title: str
    message: str
    extras: dict[str, Any]
    state: str = "invalid"
    key: str | None = None


class Journal(JournalView):
    """A batch's SQLite journal. Open it with :meth:`open`; every method commits before it returns."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        super().__init__(db)
        self.path = path

    @classmethod
    def open(cls, path: Path, ledger: LedgerLink | None = None, ledger_folder: Path | None = None) -> Journal:
        """Open (or create) the journal at ``path``, migrate it, and attach the ledger if given."""
        db = connect(path)
        if ledger is not None and ledger_folder is not None:
            try:
                ledger.attach(db, ledger_folder)
            except (sqlite3.Error, OSError) as exc:
                db.close()
                raise JournalError(
                    f"cannot open the ledger of sent rows in {ledger_folder} ({exc}); "
                    "set BATCHGEN_STATE_DIR to a writable folder"
                ) from None
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
        keys = [key for (key,) in self.db.execute("SELECT key FROM rows WHERE state='in_flight'")]
        for key in keys:
            self._set(
                key,
                "unknown",
                message="interrupted while the request was in flight: the provider may have created jobs",
            )
        return len(keys)

    def start_run(
        self,
        input_name: str,
        rows: Sequence[NewRow],
        left_out: Sequence[LeftOut],
        extra_columns: list[str],
        force: bool = False,
    ) -> int:
        """Record a run over the current input: new rows become ``pending``, known rows keep their state.

        A journal that shares no row with the input was made from another batch: refused unless ``force``.
        """
        stamp = now()
        keys = {row.key for row in rows}
        known = {key for (key,) in self.db.execute("SELECT key FROM rows")}
        if known and keys and not force and known.isdisjoint(keys):
            (previous,) = self.db.execute("SELECT input FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            raise UsageError(
                f"{self.path} was made from another input ({previous}) and shares no row with "
                f"{input_name}; choose another -o, or pass --force to add these rows to it"
            )
        with self._writing():
            run = self.db.execute("INSERT INTO runs (started_at, input) VALUES (?, ?)", (stamp, input_name)).lastrowid
            assert run is not None
            self.db.executemany(
                """INSERT INTO rows (key, row, label, title, payload, extras, state, seen_run, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET row=excluded.row, label=excluded.label, extras=excluded.extras,
                       seen_run=excluded.seen_run""",
                (
                    (r.key, r.row, _label(r.row, r.label), r.title, r.payload, dumps(r.extras), run, stamp, stamp)
                    for r in rows
                ),
            )
            self.db.execute("DELETE FROM invalid")
            self.db.executemany(
                "INSERT INTO invalid (row, label, title, message, extras, state, key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (o.row, _label(o.row, o.label), o.title, o.message, dumps(o.extras), o.state, o.key)
                    for o in left_out
                ),
            )
            self._set_meta("extra_columns", json.dumps(extra_columns, ensure_ascii=False))
        return run

    def leave_out(self, left_out: Sequence[LeftOut]) -> None:
        """Add rows found to be left out after the run started (sent to another output, per the ledger)."""
        with self._writing():
            self.db.executemany(
                "INSERT OR REPLACE INTO invalid (row, label, title, message, extras, state, key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (o.row, _label(o.row, o.label), o.title, o.message, dumps(o.extras), o.state, o.key)
                    for o in left_out
                ),
            )

    # -- state changes, each committed before the caller goes on ------------------------------------

    def mark_in_flight(self, key: str) -> None:
        self._set(key, "in_flight", bump=True)

    def mark_done(self, key: str, job_ids: list[str], status: int | None, message: str | None = None) -> None:
        self._set(key, "done", job_ids=json.dumps(job_ids), http_status=status, message=message, submitted_at=now())

    def mark_pending(self, key: str, status: int | None, message: str) -> None:
        """A request that was refused or never reached the provider: safe to send again."""
        self._set(key, "pending", http_status=status, message=message)

    def mark_failed(self, key: str, status: int | None, message: str, retryable: bool) -> None:
        self._set(key, "failed", http_status=status, message=message, retryable=int(retryable))

    def mark_unknown(self, key: str, status: int | None, message: str) -> None:
        self._set(key, "unknown", http_status=status, message=message)

    def _set(self, key: str, state: str, bump: bool = False, **values: Any) -> None:
        """One guarded state change: a done row is never touched; the ledger's trigger follows it."""
        stamp = now()
        assignments = "".join(f", {name}=?" for name in values)
        attempts = "attempts + 1" if bump else "attempts"
        with self._writing():
            self.db.execute(
                f"UPDATE rows SET state=?, attempts={attempts}, updated_at=?{assignments}"
                " WHERE key=? AND state != 'done'",
                (state, stamp, *values.values(), key),
            )

    def set_meta(self, name: str, value: str) -> None:
        with self._writing():
            self._set_meta(name, value)

    def _set_meta(self, name: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value",
            (name, value),
        )

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One committed transaction; a failure (full disk, removed file) becomes a :class:`JournalError`."""
        try:
            with self.db:
                yield
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write the journal {self.path} ({exc})") from None


def _label(row: int, label: int | str) -> str | None:
    """Labels are stored only when they differ from the row number (a DataFrame's index)."""
    return None if label == row else json.dumps(label)
