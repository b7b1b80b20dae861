"""The SQLite journal: one record per input row, the single source of truth of a batch."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..paths import journal_path
from ..schema import canonical
from .store import EarlierLine, Journal, NewRow, Place, now
from .view import DoneRow, JournalView, LeftOut, Record


def row_keys(payloads: Iterable[dict[str, Any]]) -> list[str]:
    """A key per payload: hash of its canonical JSON plus its occurrence among identical payloads.

    Reordering or inserting rows keeps every key, and intentional duplicates get one key each.
    """
    seen: Counter[str] = Counter()
    keys = []
    for payload in payloads:
        digest = hashlib.sha256(canonical(payload).encode()).hexdigest()[:32]
        keys.append(f"{digest}-{seen[digest]}")
        seen[digest] += 1
    return keys


__all__ = [
    "DoneRow",
    "EarlierLine",
    "Journal",
    "JournalView",
    "LeftOut",
    "NewRow",
    "Place",
    "Record",
    "canonical",
    "journal_path",
    "now",
    "row_keys",
]
