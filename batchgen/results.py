"""What the library hands back: a run's result, a validation's report, each cell's problem, and the row states.

Plain data that imports nothing else of batchgen's, so the exceptions (which carry a result) sit below every
stage and no module imports one above it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class State(StrEnum):
    """Every state a row of a run can be in (``docs/states.md``), in the order people read them; each compares
    equal to its name as text."""

    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SKIPPED = "skipped"
    CHANGED = "changed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    HIDDEN = "hidden"


@dataclass(frozen=True, slots=True)
class Waiting:
    """The provider asked the whole run to wait (a quota, credit exhausted): its message, for how long, until
    when (local time)."""

    message: str
    retry_after: float
    until: dt.datetime
    header: str = "Retry-After"  # what said how long: a 429's Retry-After, or a window's X-RateLimit-Reset

    def __str__(self) -> str:
        return f"provider: {self.message}; waiting until {self.until:%H:%M} ({self.header} {self.retry_after:.0f} s)"


@dataclass(frozen=True, slots=True)
class CellError:
    """One problem, with its place: ``Sheet1!F12 normalized_weirdness: 1.4 is above the maximum 1``.

    ``row`` is the Excel row number (or the DataFrame's index label), ``column`` the header as written,
    ``field`` the API field, ``cell`` where to look (``Sheet1!F12``, ``row 12``, ``index 3, column 'W'``).
    """

    row: int | str
    column: str
    cell: str
    message: str
    field: str

    def __str__(self) -> str:
        separator = " " if "!" in self.cell else ", "
        return f"{self.cell}{separator}{self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Every problem of a source, and what a person should know before sending it."""

    source: str
    rows: int
    errors: list[CellError]
    hidden: list[int] = field(default_factory=list)
    passthrough: list[str] = field(default_factory=list)
    duplicates: list[tuple[int | str, int | str]] = field(default_factory=list)
    invalid_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(slots=True)
class RunResult:
    """What a run did. ``counts`` maps every :class:`State` to its number of rows (0 where none, so
    ``counts['failed']`` never raises); ``jobs`` and ``failed`` are the output's tables as DataFrames, read
    from the journal when asked (``tables``, set by the run). ``waiting``: the provider asked the whole run to
    wait (a quota): its message and until when."""

    output: Path
    journal: Path
    counts: dict[str, int]
    requests: int = 0  # requests that reached the provider
    retries: int = 0  # of those, the ones sent again for their row (a second attempt or later)
    unconnected: int = 0  # attempts that could not connect: nothing was sent
    interrupted: bool = False
    stopped: str | None = None
    restored: int = 0
    invalid: list[CellError] = field(default_factory=list)
    hidden: list[int] = field(default_factory=list)
    passthrough: list[str] = field(default_factory=list)
    duplicates: list[tuple[int | str, int | str]] = field(default_factory=list)
    waiting: Waiting | None = None
    tables: Callable[[str], pd.DataFrame] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Every row of the input is done."""
        return all(state == State.DONE for state, count in self.counts.items() if count)

    @property
    def jobs(self) -> pd.DataFrame:
        """One line per job id, as in the output's ``jobs`` sheet (read from the journal, the source of truth)."""
        return self._table("jobs")

    @property
    def failed(self) -> pd.DataFrame:
        """One line per row without job ids: ``row``, ``title``, ``state``, ``error``."""
        return self._table("failed")

    def _table(self, name: str) -> pd.DataFrame:
        if self.tables is None:
            raise LookupError(f"this result has no {name} table")
        return self.tables(name)
