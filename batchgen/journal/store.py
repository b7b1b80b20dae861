"""The journal's writes: a run's rows, and every state change, each committed and synced before the caller goes on.

``in_flight`` is committed before a request is sent, ``done`` with its job ids as soon as the answer arrives.
A ``done`` record is final: updates skip it, and a trigger refuses any that would not. During a run, the
changes of many rows are applied in one transaction (:meth:`Journal.apply`, driven by the group commit).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sqlite3
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import JournalError, UsageError
from ..results import State
from .schema import connect
from .view import JournalView, LeftOut, dumps

IDENTITY, SEQUENCE = "journal_id", "seq"  # meta names: which journal this is, and its count of claim batches


def now() -> str:
    """UTC timestamps in ISO 8601, to the second: what people read in the output sheet."""
    return _second(int(time.time()))


@functools.lru_cache(maxsize=1)
def _second(epoch: int) -> str:
    """One second's timestamp, made once: every row written within it shares it."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


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
class Place:
    """Where a row of the input stands, and its cells not sent: all a row outside a ``rows`` shard needs."""

    key: str
    row: int
    label: int | str
    extras: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EarlierLine:
    """A row an existing output shows as sent, no longer in the input: known from its line alone."""

    key: str
    row: int
    title: str
    payload: str  # the fields the output shows (title, tag, model), as JSON
    job_ids: list[str]
    submitted_at: str


@dataclass(frozen=True, slots=True)
class Change:
    """One guarded state change of a row: ``values`` are other columns to set; ``bump`` counts an attempt;
    ``job_ids`` the ids a done row got (also in ``values``, as the journal stores them)."""

    key: str
    state: str
    values: dict[str, Any] = field(default_factory=dict)
    bump: bool = False
    job_ids: tuple[str, ...] = ()


class Attempt(NamedTuple):
    """One request of a run, kept for the night's report: when it left (Unix seconds) and was answered, its
    outcome class (``accepted``, ``retryable``, ``rejected``, ``fatal``, ``ambiguous``, ``interrupted``) and
    status, and the pace when it left: requests in flight with it, the rate (per second) and the window.
    A tuple: the journal inserts it as it is."""

    run: int
    key: str
    attempt: int
    sent: float
    answered: float | None
    outcome: str
    status: int | None
    latency: float | None
    flight: int
    rate: float
    window: int


class Event(NamedTuple):
    """A moment of a run (``start``, ``resume``, ``pause``, ``stop``, ``signal``) at ``at`` (Unix seconds), with
    why; a pause also says ``until`` when."""

    run: int
    at: float
    kind: str
    why: str = ""
    until: float | None = None


class Journal(JournalView):
    """A batch's SQLite journal. Open it with :meth:`open`; every method commits before it returns."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        super().__init__(db)
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open (or create) the journal at ``path`` and migrate it."""
        return cls(connect(path), path)

    def identity(self) -> str:
        """This journal's own id, made when it is first used: a claim in the ledger names it."""
        found = self.meta(IDENTITY)
        if found is None:
            found = uuid.uuid4().hex
            self.set_meta(IDENTITY, found)
        return found

    def sequence(self) -> int:
        """How many batches of claims this journal has committed: a claim in the ledger carries its number."""
        return int(self.meta(SEQUENCE) or 0)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- a run's start -------------------------------------------------------------------------------

    def recover(self) -> int:
        """Turn ``in_flight`` rows left by a crash into ``unknown``: their request may have been billed. Each is
        an attempt of the night too (it left when its claim was synced, and no answer was kept): the report of
        a night with a ``kill -9`` counted the requests it had seen answered only."""
        lost = list(self.db.execute("SELECT key, attempts, updated_at FROM rows WHERE state='in_flight'"))
        message = "interrupted while the request was in flight: the provider may have created jobs"
        run = self.latest_run()
        attempts = [
            Attempt(
                run, key, count, dt.datetime.fromisoformat(left).timestamp(), None, "interrupted", None, None, 0, 0.0, 0
            )
            for key, count, left in lost
        ]
        self.apply([unknown(key, None, message) for key, _, _ in lost], attempts=attempts)
        return len(lost)

    def start_run(
        self,
        input_name: str,
        rows: Sequence[NewRow],
        left_out: Sequence[LeftOut],
        extra_columns: list[str],
        force: bool = False,
        in_file: Collection[str] = (),
        others: Sequence[Place] = (),
    ) -> int:
        """Record a run over the current input: new rows become ``pending``, known rows keep their state.

        A journal that shares no row with the input (``rows``, and ``in_file``: the file's rows outside a
        ``rows`` shard) was made from another batch: refused unless ``force``. Known rows of the file outside the
        shard (``others``) take their current place and stay the input's, never sent by this run.
        """
        stamp = now()
        keys = {row.key for row in rows}.union(in_file)
        known = {key for (key,) in self.db.execute("SELECT key FROM rows")}
        places = set(self.db.execute("SELECT row, title FROM rows"))  # an edited row keeps its place and title
        if (
            known
            and keys
            and not force
            and known.isdisjoint(keys)
            and places.isdisjoint((r.row, r.title) for r in rows)
        ):
            (previous,) = self.db.execute("SELECT input FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            raise UsageError(
                f"{self.path} was made from another input ({previous}) and shares no row with "
                f"{input_name}; choose another `output`, or pass `force` to add these rows to it"
            )
        with self._writing():
            run = self.db.execute("INSERT INTO runs (started_at, input) VALUES (?, ?)", (stamp, input_name)).lastrowid
            assert run is not None
            self.db.executemany(
                """INSERT INTO rows (key, row, label, title, payload, extras, state, seen_run, file_run, created_at,
                       updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET row=excluded.row, label=excluded.label, extras=excluded.extras,
                       seen_run=excluded.seen_run, file_run=excluded.file_run, replaced_by=NULL""",
                (
                    (r.key, r.row, _label(r.row, r.label), r.title, r.payload, dumps(r.extras), run, run, stamp, stamp)
                    for r in rows
                ),
            )
            self.db.executemany(
                "UPDATE rows SET row=?, label=?, extras=?, file_run=? WHERE key=?",
                ((r.row, _label(r.row, r.label), dumps(r.extras), run, r.key) for r in others),
            )
            self.db.execute("DELETE FROM invalid")
            self._leave_out(self._still_out(left_out, run))
            self._set_meta("extra_columns", json.dumps(extra_columns, ensure_ascii=False))
        return run

    def add_earlier(self, lines: Sequence[EarlierLine]) -> None:
        """Record rows an existing output shows as sent, that the input no longer has (a new journal)."""
        stamp = now()
        with self._writing():
            self.db.executemany(
                """INSERT OR IGNORE INTO rows (key, row, title, payload, extras, state, job_ids, message, seen_run,
                       created_at, updated_at, submitted_at)
                   VALUES (?, ?, ?, ?, '{}', 'done', ?, 'restored from the existing output', 0, ?, ?, ?)""",
                (
                    (e.key, e.row, e.title, e.payload, json.dumps(e.job_ids), stamp, stamp, e.submitted_at or stamp)
                    for e in lines
                ),
            )

    def replace(self, old: str, new: str) -> None:
        """Row ``new`` is the edited ``old`` and is sent again: ``old``'s ids are superseded, never its own."""
        with self._writing():
            self.db.execute("UPDATE rows SET replaced_by=? WHERE key=?", (new, old))

    def moved(self, places: Sequence[tuple[str, NewRow]], run: int) -> None:
        """Done rows (their keys), edited since, stand where these rows of ``run``'s input stand: the jobs sheet
        shows their ids there, never at a place another row has taken. An earlier version not done (unknown,
        or left to another output) stays out of the run: it is never sent."""
        with self._writing():
            self.db.executemany(
                "UPDATE rows SET row=?, label=?, extras=?, seen_run=? WHERE key=? AND state='done'",
                ((row.row, _label(row.row, row.label), dumps(row.extras), run, key) for key, row in places),
            )

    def leave_out(self, left_out: Sequence[LeftOut]) -> None:
        """Add rows found to be left out after the run started (sent to another output, per the ledger)."""
        with self._writing():
            self._leave_out(left_out)

    def _still_out(self, left_out: Sequence[LeftOut], run: int) -> list[LeftOut]:
        """``left_out`` but the rows already done here (identical takes sent with ``send_duplicates``, a hidden
        row sent before ``skip_hidden``): a row with job ids is a done row of ``run``, at its current place."""
        done = {key for (key,) in self.db.execute("SELECT key FROM rows WHERE state='done'")}
        kept = [item for item in left_out if item.key in done]
        self.db.executemany(
            "UPDATE rows SET row=?, label=?, extras=?, seen_run=? WHERE key=?",
            ((o.row, _label(o.row, o.label), dumps(o.extras), run, o.key) for o in kept),
        )
        return [item for item in left_out if item.key not in done]

    def _leave_out(self, left_out: Sequence[LeftOut]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO invalid (row, label, title, message, extras, state, key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((o.row, _label(o.row, o.label), o.title, o.message, dumps(o.extras), o.state, o.key) for o in left_out),
        )

    # -- state changes, each committed before the caller goes on ------------------------------------

    def mark_in_flight(self, key: str) -> None:
        self.apply([in_flight(key)])

    def mark_done(self, key: str, job_ids: list[str], status: int | None, message: str | None = None) -> None:
        self.apply([done(key, job_ids, status, message)])

    def mark_pending(self, key: str, status: int | None, message: str) -> None:
        """A request that was refused or never reached the provider: safe to send again."""
        self.apply([pending(key, status, message)])

    def mark_failed(self, key: str, status: int | None, message: str, retryable: bool) -> None:
        self.apply([failed(key, status, message, retryable)])

    def mark_unknown(self, key: str, status: int | None, message: str) -> None:
        self.apply([unknown(key, status, message)])

    def apply(
        self,
        changes: Sequence[Change],
        left_out: Sequence[LeftOut] = (),
        sequence: int | None = None,
        attempts: Sequence[Attempt] = (),
        events: Sequence[Event] = (),
    ) -> None:
        """Apply ``changes`` (a done row is never touched), record ``left_out`` rows, the claim ``sequence``, and
        the ``attempts`` and ``events`` of the night: one transaction, one sync."""
        stamp = now()
        with self._writing():
            for change in changes:
                assignments = "".join(f", {name}=?" for name in change.values)
                counted = "attempts + 1" if change.bump else "attempts"
                self.db.execute(
                    f"UPDATE rows SET state=?, attempts={counted}, updated_at=?{assignments}"
                    " WHERE key=? AND state != 'done'",
                    (change.state, stamp, *change.values.values(), change.key),
                )
            if left_out:
                self._leave_out(left_out)
            if sequence is not None:
                self._set_meta(SEQUENCE, str(sequence))
            if attempts:
                self.db.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", attempts)
            if events:
                self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", events)

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


def in_flight(key: str) -> Change:
    return Change(key, State.IN_FLIGHT, bump=True)


def done(key: str, job_ids: list[str], status: int | None, message: str | None = None) -> Change:
    values = {"job_ids": json.dumps(job_ids), "http_status": status, "message": message, "submitted_at": now()}
    return Change(key, State.DONE, values, job_ids=tuple(job_ids))


def failed(key: str, status: int | None, message: str, retryable: bool) -> Change:
    return Change(key, State.FAILED, {"http_status": status, "message": message, "retryable": int(retryable)})


def pending(key: str, status: int | None, message: str) -> Change:
    return Change(key, State.PENDING, {"http_status": status, "message": message})


def unknown(key: str, status: int | None, message: str) -> Change:
    return Change(key, State.UNKNOWN, {"http_status": status, "message": message})
