"""The ``log_file``: one JSON line per attempt. Never the key, never the lyrics: only what explains a run.

It is written after the journal, so a log that cannot be written (a full disk) never costs a job id; the
run then stops at once with an :class:`OutputError`.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TextIO

from ..errors import OutputError, UsageError
from ..journal import Record, now


class AttemptLog:
    """An append-only JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: TextIO = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot open {path} ({exc.strerror or exc})", setting="log_file") from None

    def write(
        self, record: Record, attempt: int, latency: float, outcome: str, status: int | None, message: str | None
    ) -> None:
        entry = {
            "at": now(),
            "row": record.label,
            "row_key": record.key,
            "attempt": attempt,
            "status": status,
            "latency_ms": round(latency * 1000, 1),
            "outcome": outcome,
            "message": message,
        }
        try:
            self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError as exc:
            raise OutputError(
                f"cannot write the log file {self.path} ({exc.strerror or exc}); every job id "
                "received is in the journal",
                self.path,
            ) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a write that failed already stopped the run and said so
            self._file.close()
