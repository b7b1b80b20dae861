"""Rescue files: job ids the provider returned that the journal could not store (a full disk, an I/O error).

They are written to the state folder, one JSON line per row, named after the output they belong to; the next
run on that output imports them into its journal and removes the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import UnsavedIds
from .journal import now
from .paths import state_dir
from .system import sync_file


def rescue_file(output: Path) -> Path:
    """Where the rescued ids of ``output`` (a resolved real path) are kept."""
    digest = hashlib.sha256(str(output).encode()).hexdigest()[:16]
    return state_dir() / "rescue" / f"{output.name}.{digest}.jsonl"


def save_rescued(output: Path, unsaved: Sequence[UnsavedIds]) -> Path:
    """Append ``unsaved`` to the output's rescue file and flush it to disk; raises OSError if it cannot."""
    path = rescue_file(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    at = now()
    lines = "".join(
        json.dumps(
            {
                "output": str(output),
                "key": item.key,
                "row": item.row,
                "title": item.title,
                "job_ids": list(item.job_ids),
                "at": at,
            },
            ensure_ascii=False,
        )
        + "\n"
        for item in unsaved
    )
    with path.open("a", encoding="utf-8") as handle:
        handle.write(lines)
        handle.flush()
        sync_file(handle.fileno())
    return path


def load_rescued(output: Path) -> list[dict[str, Any]]:
    """The rescued entries of ``output``; a line cut short by a crash is skipped, not fatal."""
    path = rescue_file(output)
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("key") and entry.get("job_ids"):
            entries.append(entry)
    return entries


def clear_rescued(output: Path) -> None:
    rescue_file(output).unlink(missing_ok=True)
