"""The night of an output, read back from its journal: its attempts per second or minute, its events, its totals,
and the rows that need a decision with the command for each. What the report page and the ``night`` sheet draw.

Answers are counted in four kinds: ``accepted`` (job ids came back), ``refused`` (a 429: the provider's limit),
``ambiguous`` (the provider may have created jobs: no clear answer, or cut short after the request left) and
``failed`` (every other answer: 5xx, 4xx, a connection that failed before anything was sent).
"""

from __future__ import annotations

import itertools
import operator
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .journal import JournalView
from .journal.store import Event
from .results import State

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("accepted", "refused", "failed", "ambiguous")
COLOURS = dict(zip(KINDS, ("#2e7d32", "#f9a825", "#c62828", "#6a1b9a"), strict=True))  # the page's and the sheet's
OPENINGS = ("start", "resume")
ENDINGS = ("stop", "signal", "end")
LOST = "no word from this run after this moment: it was killed, or its machine stopped (or it is still running)"
LONG_NIGHT = 1800.0  # seconds: a night longer than this is drawn per minute, not per second
PERCENTILES = (50, 90, 99)


@dataclass(slots=True)
class Span:
    """One second (or minute) of the night: answers per kind, requests sent, the pace's mean rate and largest
    window and in flight among the requests that left in it, and latency percentiles of its answers."""

    start: float
    answers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    sent: int = 0
    rate: float = 0.0
    window: int = 0
    flight: int = 0
    latency: dict[int, float] = field(default_factory=dict)  # percentile -> seconds (nearest rank)

    def percentile(self, p: int) -> float | None:
        """The ``p``-th percentile (one of :data:`PERCENTILES`) of this span's latencies, ``None`` without any."""
        return self.latency.get(p)


@dataclass(frozen=True, slots=True)
class Decision:
    """A row that needs a decision: its state, why, and the command that acts on it."""

    label: int | str
    title: str
    state: str
    reason: str
    command: str


@dataclass(slots=True)
class Night:
    """An output's night: ``step`` seconds per span, from ``first`` to ``last`` (Unix seconds)."""

    source: str
    step: int
    first: float
    last: float
    spans: list[Span]
    events: list[Event]
    totals: dict[str, int]  # answers per kind
    attempts: int
    states: dict[str, int]  # rows per state, as ``status`` counts them

    def pause_end(self, pause: Event) -> float:
        """When ``pause`` really ended: at the time the provider gave, or when its run ended, or when a later run
        started, whichever came first."""
        ends = [pause.until if pause.until is not None else self.last, self.last]
        ends += [
            e.at
            for e in self.events
            if e.at >= pause.at and (e.kind in ENDINGS if e.run == pause.run else e.kind in OPENINGS)
        ]
        return min(ends)


# An attempt's kind (see the module's docstring), as SQL: the night is counted in the database.
ENDED = "COALESCE(answered, sent + COALESCE(latency, 0))"  # when an attempt was answered, or gave up waiting
KIND_SQL = (
    "CASE WHEN outcome = 'accepted' THEN 'accepted' WHEN status = 429 THEN 'refused'"
    " WHEN outcome IN ('ambiguous', 'interrupted') THEN 'ambiguous' ELSE 'failed' END"
)


def read_night(journal: JournalView, step: int | None = None) -> Night:
    """An output's night from its ``journal`` (every run on it is part of it), in spans of ``step``
    seconds (by default a second, a minute for a night longer than :data:`LONG_NIGHT`)."""
    run = journal.latest_run()
    source = journal.run_info(run)[0]
    events = _with_lost(journal, [Event(*values) for values in journal.db.execute("SELECT * FROM events ORDER BY at")])
    count, earliest, latest = journal.db.execute(f"SELECT COUNT(*), MIN(sent), MAX({ENDED}) FROM attempts").fetchone()
    moments = [event.at for event in events] + ([earliest, latest] if count else [])
    first, last = (min(moments), max(moments)) if moments else (0.0, 0.0)
    step = step or (60 if last - first > LONG_NIGHT else 1)
    first = first // step * step  # spans start on the second (the minute)
    spans, totals = _spans(journal, first, step)
    return Night(
        source,
        step,
        first,
        last,
        spans,
        events,
        totals,
        count,
        dict(journal.counts(run)),
    )


def _with_lost(journal: JournalView, events: list[Event]) -> list[Event]:
    """``events``, and a ``lost`` event for each run that started and never said how it ended (a process killed
    with SIGKILL writes nothing), at the last moment it was heard from. Not an ending: a run waiting out a pause
    is silent, so its pause is drawn on until the next run."""
    unended = {e.run for e in events if e.kind in OPENINGS} - {e.run for e in events if e.kind in ENDINGS}
    heard = {run: max(e.at for e in events if e.run == run) for run in unended}
    for run, at in journal.db.execute("SELECT run, MAX(COALESCE(answered, sent)) FROM attempts GROUP BY run"):
        if run in heard:
            heard[run] = max(heard[run], at)
    return sorted([*events, *(Event(run, at, "lost", LOST) for run, at in heard.items())], key=lambda e: e.at)


def _spans(journal: JournalView, first: float, step: int) -> tuple[list[Span], dict[str, int]]:
    """Every span of ``step`` seconds from ``first`` (the quiet ones too), and answers per kind in all: a request
    counts where it left, its answer where it came (where it gave up waiting, for none). Counted by SQLite: a
    Python loop over 100,000 attempts costs more, and numpy costs its import at the end of every run."""
    db, found = journal.db, dict[int, Span]()

    def span(index: int) -> Span:
        return found.setdefault(index, Span(first + index * step))

    index = "CAST((({}) - ?) / ? AS INTEGER)"
    for at, sent, rate, window, flight in db.execute(
        f"SELECT {index.format('sent')} AS i, COUNT(*), SUM(rate), MAX(window), MAX(flight) FROM attempts GROUP BY i",
        (first, step),
    ):
        left = span(at)
        left.sent, left.rate, left.window, left.flight = sent, rate / sent, window or 0, flight or 0
    totals = dict.fromkeys(KINDS, 0)
    for at, which, answers in db.execute(
        f"SELECT {index.format(ENDED)} AS i, {KIND_SQL} AS k, COUNT(*) FROM attempts GROUP BY i, k", (first, step)
    ):
        span(at).answers[which] = answers
        totals[which] += answers
    timed = db.execute(
        f"SELECT {index.format('answered')} AS i, latency FROM attempts"
        " WHERE answered IS NOT NULL AND latency IS NOT NULL ORDER BY i, latency",
        (first, step),
    )
    for at, group in itertools.groupby(timed, key=operator.itemgetter(0)):
        ordered = [latency for _, latency in group]
        size = len(ordered)
        span(at).latency = {p: ordered[min(size - 1, max(0, round(p / 100 * size + 0.5) - 1))] for p in PERCENTILES}
    return [found.get(i) or Span(first + i * step) for i in range(max(found, default=-1) + 1)], totals


def decisions(journal: JournalView, output: Path) -> list[Decision]:
    """Rows unknown, failed, changed or skipped: why, and the command for each (the page is read by people who
    type commands; each command names its setting too, for the library)."""
    source = journal.run_info(journal.latest_run())[0]
    run = f"batchgen run {shlex.quote(source)} -o {shlex.quote(str(output))}"

    def command(setting: str | None, note: str = "") -> str:
        if setting is None:
            return run
        flag = "-" * 2 + setting.replace("_", "-")  # the setting's command-line spelling
        return f"{run} {flag}  ({setting}=True{note})"

    found = []
    for record in journal.unfinished(journal.latest_run()):
        if record.state == State.UNKNOWN:
            how = command("retry_unknown", "; check with the provider first: it may have billed them")
        elif record.state == State.FAILED:
            how = command(None) if record.retryable else command("retry_failed", ", after fixing the row")
        else:
            continue
        found.append(Decision(record.label, record.title, record.state, record.message or "", how))
    setting: dict[str, str] = {State.CHANGED: "resend_changed", State.SKIPPED: "allow_resend"}
    for left in journal.left_out():
        if left.state in setting:
            found.append(Decision(left.label, left.title, left.state, left.message, command(setting[left.state])))
    return found


def attempts_frame(journal: JournalView) -> pd.DataFrame:
    """Every attempt of the night, one line each: its run, row, title, key, attempt number, when it was sent and
    answered (UTC), outcome class, kind, HTTP status, latency (s), and the pace when it left."""
    import pandas as pd

    frame = pd.read_sql_query(
        f"SELECT a.run, r.row, r.title, a.key, a.attempt, a.sent, a.answered, a.outcome, {KIND_SQL} AS kind,"
        " a.status, a.latency, a.flight, a.rate, a.window FROM attempts a LEFT JOIN rows r ON r.key = a.key"
        " ORDER BY a.sent",
        journal.db,
    )
    for column in ("sent", "answered"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    for column in ("row", "status"):  # missing for a row no longer in the journal, an attempt with no answer
        frame[column] = frame[column].astype("Int64")
    return frame
