"""Small builders for input files, so each test states its own cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook


def write_csv(folder: Path, text: str, name: str = "input.csv", encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(folder: Path, rows: list[list[Any]], name: str = "input.xlsx", sheet: str = "Sheet1",
               hidden_first: list[list[Any]] | None = None) -> Path:
    """A workbook with ``rows`` on ``sheet``; ``hidden_first`` adds a hidden sheet in front of it."""
    book = Workbook()
    active = book.active
    if hidden_first is not None:
        active.title = "Hidden"
        for row in hidden_first:
            active.append(row)
        active.sheet_state = "hidden"
        active = book.create_sheet(sheet)
    else:
        active.title = sheet
    for row in rows:
        active.append(row)
    path = folder / name
    book.save(path)
    return path


def songs(count: int, start: int = 0) -> list[list[Any]]:
    """``count`` distinct valid rows under a title/tag/lyrics header."""
    return [["title", "tag", "lyrics"], *([f"Song {i}", "pop", f"lyrics {i}"] for i in range(start, start + count))]
