"""The journal's reads: what to send, what the output shows, what ``status`` reports."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..ledger.base import Song
from ..results import State

_RECORD = (
    "key, row, label, title, payload, extras, state, retryable, attempts, job_ids, http_status, message, "
    "seen_run, submitted_at"
)


@dataclass(frozen=True, slots=True)
class Record:
    """One row of the journal, as the submitter and ``status`` see it; ``body`` is the exact JSON to POST."""

    key: str
    row: int
    label: int | str
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

    @property
    def reason(self) -> str:
        """Why the row has no job ids, as far as is known: its last message, else what its state says (a row
        ``in_flight`` after a crash was committed before its request left: it may have been billed)."""
        if self.message:
            return self.message
        if self.state == State.IN_FLIGHT:
            return "sent, answer not received (the provider may have created jobs; the next run marks it unknown)"
        return "not sent yet"


@dataclass(frozen=True, slots=True)
class DoneRow:
    """What the ``jobs`` sheet shows of a done row; ``current`` says whether the latest input still has it."""

    key: str
    label: int | str
    title: str
    tag: str
    model: str
    job_ids: list[str]
    submitted_at: str
    extras: dict[str, Any]
    current: bool
    row: int
    replaced_by: int | str | None = None  # the label of the row sent again after an edit: these ids are superseded


@dataclass(frozen=True, slots=True)
class EarlierRow:
    """A row of an earlier run whose request may have created jobs: what an edited row is compared with.

    A row known from the ledger alone (another output sent it) has only its ``song``, fingerprints of its title
    and fields; any other row, its title and request.
    """

    key: str
    row: int
    title: str
    payload: str
    state: str
    sent_at: str
    song: Song | None = None

    def fingerprints(self) -> Song:
        """The row as the ledger knows it: what edits are matched on, wherever the row is known from."""
        return self.song or Song.of(self.title, self.payload, self.row)


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A row a run does not send, with the reason: ``invalid``, ``duplicate`` (identical to an earlier row),
    ``hidden``, ``skipped`` (another output has it) or ``changed`` (edited since it was sent)."""

    row: int
    label: int | str
    title: str
    message: str
    extras: dict[str, Any]
    state: str = State.INVALID
    key: str | None = None


class JournalView:
    """Read-only queries over a journal connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def latest_run(self) -> int:
        (run,) = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()
        return int(run)

    def meta(self, name: str) -> str | None:
        found = self.db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return str(found[0]) if found else None

    def extra_columns(self) -> list[str]:
        return list(json.loads(self.meta("extra_columns") or "[]"))

    def to_send(self, run: int, retry_unknown: bool = False, retry_failed: bool = False) -> list[Record]:
        """Rows of ``run`` still owed a request: pending, refused too often, and on request unknown or rejected."""
        return self._select(
            "seen_run=? AND key NOT IN (SELECT key FROM invalid WHERE key IS NOT NULL) AND (state='pending'"
            " OR (state='failed' AND (retryable=1 OR ?)) OR (state='unknown' AND ?))",
            (run, int(retry_failed), int(retry_unknown)),
        )

    def billed(self) -> dict[str, list[str]]:
        """Rows whose request may have created jobs (done or unknown), with their job ids."""
        cursor = self.db.execute("SELECT key, job_ids FROM rows WHERE state IN ('done', 'unknown', 'in_flight')")
        return {key: json.loads(job_ids) if job_ids else [] for key, job_ids in cursor}

    def done_keys(self) -> set[str]:
        """The keys of every row with job ids."""
        return {key for (key,) in self.db.execute("SELECT key FROM rows WHERE state='done'")}

    def states(self) -> dict[str, str]:
        """Every row key and its state."""
        return {key: state for key, state in self.db.execute("SELECT key, state FROM rows")}

    def done(self) -> Iterator[DoneRow]:
        """Every row with job ids, from any run: rows of the latest input in its order, then the others, then
        rows an edited row replaced.

        Only what the output shows is read: decoding every payload (lyrics and all) would double the cost.
        """
        cursor = self.db.execute(
            "SELECT r.key, r.row, r.label, r.title, json_extract(r.payload, '$.tag'),"
            " json_extract(r.payload, '$.model'), r.job_ids, r.submitted_at, r.extras,"
            " (SELECT MAX(id) FROM runs) IN (r.seen_run, r.file_run) AS current, n.row, n.label"
            " FROM rows r LEFT JOIN rows n ON n.key = r.replaced_by WHERE r.state='done'"
            " ORDER BY r.replaced_by IS NOT NULL, current DESC, r.row, r.key"
        )
        for key, row, label, title, tag, model, job_ids, submitted_at, extras, current, new_row, new_label in cursor:
            yield DoneRow(
                key,
                _label(row, label),
                title,
                tag,
                model,
                json.loads(job_ids),
                submitted_at,
                json.loads(extras),
                bool(current),
                row,
                None if new_row is None else _label(new_row, new_label),
            )

    def sent_before(self, run: int) -> list[EarlierRow]:
        """Rows of earlier runs, no longer in the input, whose request may have created jobs (done or unknown)
        and that no edited row replaced yet."""
        cursor = self.db.execute(
            "SELECT key, row, title, payload, state, COALESCE(submitted_at, updated_at) FROM rows"
            " WHERE seen_run < ? AND state IN ('done', 'unknown') AND replaced_by IS NULL ORDER BY row",
            (run,),
        )
        return [EarlierRow(*values) for values in cursor]

    def unsent_before(self, run: int) -> list[EarlierRow]:
        """Rows of earlier runs, no longer in the input, that this output never sent (another output may have:
        they were ``skipped``) and that no edited row replaced yet."""
        cursor = self.db.execute(
            "SELECT key, row, title, payload, state, updated_at FROM rows"
            " WHERE seen_run < ? AND state IN ('pending', 'failed') AND replaced_by IS NULL ORDER BY row",
            (run,),
        )
        return [EarlierRow(*values) for values in cursor]

    def unfinished(self, run: int) -> list[Record]:
        """Rows of ``run`` without job ids: failed, unknown, or not sent yet."""
        return self._select(
            "seen_run=? AND state != 'done' AND key NOT IN (SELECT key FROM invalid WHERE key IS NOT NULL)", (run,)
        )

    def left_out(self) -> list[LeftOut]:
        cursor = self.db.execute("SELECT row, label, title, message, extras, state, key FROM invalid ORDER BY row")
        return [
            LeftOut(row, _label(row, label), title, message, json.loads(extras), state, key)
            for row, label, title, message, extras, state, key in cursor
        ]

    def counts(self, run: int) -> Counter[str]:
        """Rows of ``run`` per state, with the rows left out (invalid, duplicate, hidden, skipped). An edited row
        is counted once, ``changed``: its earlier version, done, stands at its place (:meth:`Journal.moved`)."""
        counts: Counter[str] = Counter()
        for state, count in self.db.execute(
            "SELECT state, COUNT(*) FROM rows WHERE seen_run=? AND (state='done'"
            " OR key NOT IN (SELECT key FROM invalid WHERE key IS NOT NULL))"
            " AND NOT (state='done' AND row IN (SELECT row FROM invalid WHERE state='changed')) GROUP BY state",
            (run,),
        ):
            counts[state] += count
        for state, count in self.db.execute("SELECT state, COUNT(*) FROM invalid GROUP BY state"):
            counts[state] += count
        return +counts

    def failures(self, run: int, retryable: bool) -> list[tuple[str, int]]:
        """The messages of ``run``'s failed rows (refused on every attempt, else rejected), most rows first."""
        cursor = self.db.execute(
            "SELECT COALESCE(message, ''), COUNT(*) FROM rows WHERE seen_run=? AND state='failed' AND retryable=?"
            " AND key NOT IN (SELECT key FROM invalid WHERE key IS NOT NULL) GROUP BY 1 ORDER BY 2 DESC, 1",
            (run, int(retryable)),
        )
        return [(str(message), int(count)) for message, count in cursor]

    def run_info(self, run: int) -> tuple[str, str]:
        """The input and start time of ``run``."""
        found = self.db.execute("SELECT input, started_at FROM runs WHERE id=?", (run,)).fetchone()
        return (str(found[0]), str(found[1])) if found else ("", "")

    def done_span(self) -> tuple[int, str | None, str | None]:
        """How many rows are done, and the first and last moment one was: the batch's throughput."""
        count, first, last = self.db.execute(
            "SELECT COUNT(*), MIN(submitted_at), MAX(submitted_at) FROM rows WHERE state='done'"
        ).fetchone()
        return int(count), first, last

    def fingerprint(self) -> str:
        """A digest of everything the output shows: equal digests mean an identical output."""
        digest = hashlib.sha256((self.meta("extra_columns") or "").encode())
        latest = self.latest_run()
        queries = (
            (
                "SELECT key, row, label, title, state, job_ids, message, submitted_at,"
                " ? IN (seen_run, file_run), extras FROM rows ORDER BY key",
                (latest,),
            ),
            ("SELECT row, label, title, message, extras, state FROM invalid ORDER BY row", ()),
            ("SELECT COUNT(*), MAX(sent) FROM attempts", ()),  # the night sheet (a run that sends nothing adds none)
        )
        for query, params in queries:
            for values in self.db.execute(query, params):
                digest.update(repr(values).encode())
        return digest.hexdigest()

    def records(self) -> list[Record]:
        """Every record, in row order."""
        return self._select("1", ())

    def _select(self, where: str, params: tuple[Any, ...]) -> list[Record]:
        cursor = self.db.execute(f"SELECT {_RECORD} FROM rows WHERE {where} ORDER BY row, key", params)
        return [_record(values) for values in cursor]


def _record(values: tuple[Any, ...]) -> Record:
    key, row, label, title, payload, extras, state, retryable, attempts, job_ids, status, message, seen, sub = values
    return Record(
        key,
        row,
        _label(row, label),
        title,
        payload.encode(),
        json.loads(extras),
        state,
        bool(retryable),
        attempts,
        json.loads(job_ids) if job_ids else [],
        status,
        message,
        seen,
        sub,
    )


def _label(row: int, label: str | None) -> int | str:
    if label is None:
        return row
    value = json.loads(label)
    return value if isinstance(value, (int, str)) else str(value)


def dumps(extras: dict[str, Any]) -> str:
    """Passthrough cells as JSON; dates and other non-JSON values as their text."""
    return json.dumps(extras, ensure_ascii=False, default=_as_text)


def _as_text(value: Any) -> str:
    """Dates and times as ISO 8601 (what people sort and filter on), anything else as its text."""
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)
