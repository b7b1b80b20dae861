"""The night read back from the journal, in-process: a killed run and where its pause ends, a stopped run's pause,
the attempts DataFrame as docs/api.md gives it, and where the page may go."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import batchgen
from batchgen.journal import Journal, journal_path
from batchgen.journal.store import Attempt, Event, NewRow
from batchgen.night import LOST, read_night
from batchgen.paths import real

from ..support.nights import long_night

ROWS = [NewRow(f"key-{i}", i + 2, i + 2, f"Song {i}", "{}", {}) for i in range(3)]


def night_of(tmp_path: Path, events: list[Event], attempts: list[Attempt]) -> tuple[Path, Journal]:
    """An output whose journal has two runs over three rows, and these events and attempts."""
    output = tmp_path / "out.xlsx"
    journal = Journal.open(journal_path(real(output)))
    for _ in range(2):
        journal.start_run("in.csv", ROWS, [], [])
    journal.apply([], attempts=attempts, events=events)
    return output, journal


def attempt(run: int, key: str, sent: float, latency: float, status: int = 200) -> Attempt:
    outcome = "accepted" if status == 200 else "retryable"
    return Attempt(run, key, 1, sent, sent + latency, outcome, status, latency, 1, 2.0, 4)


def test_a_run_that_never_said_how_it_ended_is_lost_and_its_pause_lasts_until_the_next_run(tmp_path: Path) -> None:
    events = [Event(1, 100.0, "start"), Event(1, 110.0, "pause", "quota", 3710.0), Event(2, 200.0, "resume")]
    events.append(Event(2, 260.0, "end"))
    attempts = [attempt(1, "key-0", 101.0, 0.5), attempt(1, "key-1", 109.0, 1.5, 429), attempt(2, "key-1", 201, 0.3)]
    _, journal = night_of(tmp_path, events, attempts)
    with journal:
        night = read_night(journal)
    assert [(e.run, e.kind, e.at) for e in night.events] == [
        (1, "start", 100.0),
        (1, "pause", 110.0),
        (1, "lost", 110.5),  # its last answer came after its pause was kept
        (2, "resume", 200.0),
        (2, "end", 260.0),
    ]
    assert night.events[2].why == LOST
    assert night.pause_end(night.events[1]) == 200.0
    assert night.totals == {"accepted": 2, "refused": 1, "failed": 0, "ambiguous": 0}


def test_a_pause_ends_when_its_run_is_stopped(tmp_path: Path) -> None:
    events = [Event(1, 100.0, "start"), Event(1, 110.0, "pause", "quota", 3710.0), Event(1, 150.0, "signal")]
    _, journal = night_of(tmp_path, events, [attempt(1, "key-0", 101.0, 0.5)])
    with journal:
        night = read_night(journal)
    assert [e.kind for e in night.events] == ["start", "pause", "signal"]
    assert night.pause_end(night.events[1]) == 150.0


def test_the_attempts_are_a_dataframe_of_the_documented_columns(tmp_path: Path) -> None:
    output = tmp_path / "night.xlsx"
    long_night(output, 2000)
    frame = batchgen.attempts(output)
    texts = ["title", "key", "outcome", "kind"]  # object before pandas 3, its string dtype since
    assert all(pd.api.types.is_string_dtype(frame[column]) for column in texts)
    assert {column: str(dtype) for column, dtype in frame.drop(columns=texts).dtypes.items()} == {
        "run": "int64",
        "row": "Int64",
        "attempt": "int64",
        "sent": "datetime64[ns, UTC]",
        "answered": "datetime64[ns, UTC]",
        "status": "Int64",
        "latency": "float64",
        "flight": "int64",
        "rate": "float64",
        "window": "int64",
    }
    assert list(frame.columns[:9]) == ["run", "row", "title", "key", "attempt", "sent", "answered", "outcome", "kind"]
    with Journal.open(journal_path(real(output))) as journal:
        totals = read_night(journal).totals
    assert len(frame) == 2000 and frame.kind.value_counts().to_dict() == {k: n for k, n in totals.items() if n}
    assert frame.sent.is_monotonic_increasing and set(frame.run) == {1, 2}


def test_the_page_never_goes_over_the_output_and_says_when_nothing_was_sent(tmp_path: Path) -> None:
    output, journal = night_of(tmp_path, [], [])
    journal.close()
    with pytest.raises(batchgen.UsageError, match="path"):
        batchgen.report(output, output)
    page = batchgen.report(output)
    assert page == tmp_path / "out.night.html"
    assert "No request was sent yet." in page.read_text(encoding="utf-8")
    assert batchgen.attempts(output).empty
