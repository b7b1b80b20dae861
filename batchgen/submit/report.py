"""What a submission did, as plain counts and reasons: the dispatcher fills it, the front door reads it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..errors import BatchgenError, UnsavedIds
from ..results import Waiting


@dataclass(slots=True)
class Report:
    """What a submission did: requests sent, rows per outcome, why it stopped early, if it did, and the last
    time the provider asked the whole run to wait (a quota), or was down, if it did."""

    requests: int = 0  # attempts that left the gate, whether or not they connected
    retries: int = 0  # requests that reached the provider as a row's second attempt or later
    unconnected: int = 0  # attempts that never connected (nothing reached the provider)
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None
    error: BatchgenError | None = None
    unsaved: list[UnsavedIds] = field(default_factory=list)
    interrupted: bool = False
    waiting: Waiting | None = None
    down: str | None = None  # the last word on a provider that was down, if it was
