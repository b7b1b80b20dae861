"""A long night built through the journal's own API, for the report's size and speed: rows sent at a steady rate
with refusals, failures and a few ambiguous answers, a quota pause ended by Ctrl-C, and a resume to the end."""

from __future__ import annotations

import json
import random
from pathlib import Path

from batchgen.journal import Journal, journal_path, row_keys
from batchgen.journal.store import Attempt, Change, Event, NewRow, done, unknown
from batchgen.paths import real

RATE = 14.0  # requests per second
PAUSE = (0.4, 1200.0)  # the quota pause: where in the night (a fraction of the attempts), and how long to a resume
BATCH = 5000  # attempts per transaction: the group commit writes them in batches too


def long_night(output: Path, attempts: int, seed: int = 27) -> None:
    """Write the journal of ``output``: ``attempts`` requests over two runs, two hours for 100,000."""
    dice = random.Random(seed)
    answers = [_answer(dice.random()) for _ in range(attempts - 1)] + [("accepted", 200)]
    payloads = [
        {"title": f"Song {i}", "tag": "pop", "lyrics": f"lyrics {i}"}
        for i in range(sum(outcome != "retryable" for outcome, _ in answers))
    ]
    rows = [
        NewRow(key, number + 2, number + 2, payload["title"], json.dumps(payload), {})
        for number, (key, payload) in enumerate(zip(row_keys(payloads), payloads, strict=True))
    ]
    with Journal.open(journal_path(real(output))) as journal:
        # Made to be read, not to survive a power cut: its commits need not wait for the disk, and its 90,000
        # rows fit the page cache. What is written, and how (the journal's own methods), is the same.
        journal.db.execute("PRAGMA synchronous=OFF")
        journal.db.execute("PRAGMA cache_size=-200000")
        run = journal.start_run("catalog.xlsx", rows, [], [])
        at = 1_796_600_000.0  # an evening, Unix seconds
        journal.apply([], events=[Event(run, at, "start", f"run {run} of catalog.xlsx")])
        kept: list[Attempt] = []
        changes: list[Change] = []
        row, tries = iter(rows), 0
        record = next(row)
        for number, (outcome, status) in enumerate(answers):
            if number == int(attempts * PAUSE[0]):  # the credit runs out; Ctrl-C; a resume once it is back
                stopped = at + PAUSE[1] - 60
                pause = [
                    Event(run, at, "pause", "HTTP 429: quota exceeded", at + 3600),
                    Event(run, stopped, "signal", "interrupted"),
                ]
                run = journal.start_run("catalog.xlsx", rows, [], [])
                at += PAUSE[1]
                journal.apply([], events=[*pause, Event(run, at, "resume", f"run {run} of catalog.xlsx")])
            at += dice.expovariate(RATE)
            latency, tries = dice.lognormvariate(-0.7, 0.5), tries + 1
            kept.append(Attempt(run, record.key, tries, at, at + latency, outcome, status, latency, 6, RATE, 8))
            if outcome != "retryable":
                ids = [f"job-{number}-a", f"job-{number}-b"]
                changes.append(done(record.key, ids, 200) if status else unknown(record.key, None, "no answer"))
                record, tries = next(row, record), 0
            if len(kept) == BATCH:
                journal.apply(changes, attempts=kept)
                kept, changes = [], []
        journal.apply(changes, attempts=kept, events=[Event(run, at + 1, "end", "every row was worked")])


def _answer(roll: float) -> tuple[str, int | None]:
    """An attempt's outcome class and status: 8% refused, 2% failed (503), 0.3% no answer, else accepted."""
    if roll < 0.08:
        return "retryable", 429
    if roll < 0.1:
        return "retryable", 503
    return ("ambiguous", None) if roll < 0.103 else ("accepted", 200)
