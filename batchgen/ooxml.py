"""What a workbook's XML says that its cached values do not: error cells, formulas, hidden rows.

calamine (used for the values, it is fast) reads an error cell such as ``#N/A`` and a formula without a saved
value both as an empty cell; openpyxl can tell them apart but is slow on large sheets. So the sheet's XML is
scanned once with byte patterns for the few constructs that matter: ``t="e"`` cells, ``<f>`` elements and
their ``<v>``, ``hidden`` rows, merged ranges (only their first cell holds a value), and the workbook's
``fullCalcOnLoad`` flag.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from defusedxml import ElementTree

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_HIDDEN_ROW = re.compile(rb'<(?:\w+:)?row\b[^>]*?\shidden="(?:1|true)"[^>]*>')
_ERROR_CELL = re.compile(rb'<(?:\w+:)?c\b[^>]*?\st="e"[^>]*>')
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_CELL_START = re.compile(rb"<(?:\w+:)?c\s")
_CELL_END = re.compile(rb"</(?:\w+:)?c>")
_REF = re.compile(rb'\sr="([A-Z]+)(\d+)"')
_ROW_NUMBER = re.compile(rb'\sr="(\d+)"')
_TYPE = re.compile(rb'\st="(\w+)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
_MERGED = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\sref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')
_CALC_ON_LOAD = re.compile(r"\bfullCalcOnLoad=\"(?:1|true)\"")

Cell = tuple[int, int]  # (Excel row number, 0-based column index)


@dataclass(slots=True)
class SheetFacts:
    """The cells and rows of one sheet whose cached value does not tell the whole story."""

    hidden_rows: set[int] = field(default_factory=set)
    errors: dict[Cell, str] = field(default_factory=dict)
    formulas: set[Cell] = field(default_factory=set)
    uncached: set[Cell] = field(default_factory=set)
    merged: dict[Cell, str] = field(default_factory=dict)  # each cell of a merged range but its first: the range
    recalculated_on_load: bool = False


def column_index(letters: str) -> int:
    """Excel's column letters as a 0-based index: A -> 0, AB -> 27."""
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - 64
    return index - 1


def scan(path: Path, sheet: str) -> SheetFacts:
    """The facts of ``sheet`` in the .xlsx/.xlsm package at ``path`` (empty when a part cannot be found)."""
    with zipfile.ZipFile(path) as package:
        workbook = package.read("xl/workbook.xml").decode("utf-8", "replace")
        member = _sheet_member(package, workbook, sheet)
        if member is None:
            return SheetFacts()
        data = package.read(member)
    facts = SheetFacts(recalculated_on_load=bool(_CALC_ON_LOAD.search(_calc_pr(workbook))))
    for match in _HIDDEN_ROW.finditer(data):
        number = _ROW_NUMBER.search(match.group())
        if number:
            facts.hidden_rows.add(int(number[1]))
    for match in _ERROR_CELL.finditer(data):
        cell, body = _cell_at(data, match.start())
        value = _VALUE.search(body)
        if cell is not None:
            facts.errors[cell] = value[1].decode("utf-8", "replace") if value else "#VALUE!"
    for match in _FORMULA.finditer(data):
        start = _last_cell_start(data, match.start())
        if start is None:
            continue
        cell, body = _cell_at(data, start)
        if cell is None:
            continue
        facts.formulas.add(cell)
        value = _VALUE.search(body)
        typed = _TYPE.search(body[: body.find(b">")])
        if not (value and (value[1] or typed)):
            facts.uncached.add(cell)
    for match in _MERGED.finditer(data):
        first, last = (int(match[2]), column_index(match[1].decode())), (int(match[4]), column_index(match[3].decode()))
        ref = b"%s%s:%s%s" % match.groups()
        for row in range(first[0], last[0] + 1):
            for column in range(first[1], last[1] + 1):
                if (row, column) != first:
                    facts.merged[(row, column)] = ref.decode()
    return facts


def _calc_pr(workbook: str) -> str:
    start = workbook.find("calcPr")
    return workbook[start : workbook.find(">", start)] if start >= 0 else ""


def _sheet_member(package: zipfile.ZipFile, workbook: str, sheet: str) -> str | None:
    """The zip member of the sheet named ``sheet``, through the workbook's relationships."""
    root = ElementTree.fromstring(workbook)
    rel_id = next(
        (node.get(f"{_REL}id") for node in root.iter(f"{_MAIN}sheet") if node.get("name") == sheet),
        None,
    )
    try:
        rels = ElementTree.fromstring(package.read("xl/_rels/workbook.xml.rels"))
    except KeyError:
        return None
    for rel in rels.iter(f"{_PKG}Relationship"):
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
    return None


def _last_cell_start(data: bytes, before: int) -> int | None:
    """Where the ``<c`` element enclosing position ``before`` starts."""
    window = max(0, before - 4096)
    starts = list(_CELL_START.finditer(data, window, before))
    return starts[-1].start() if starts else None


def _cell_at(data: bytes, start: int) -> tuple[Cell | None, bytes]:
    """The reference and the whole text of the ``<c>`` element starting at ``start``."""
    head_end = data.find(b">", start)
    if head_end < 0:
        return None, b""
    head = data[start : head_end + 1]
    if head.endswith(b"/>"):
        body = head
    else:
        end = _CELL_END.search(data, head_end)
        body = data[start : end.end() if end else head_end + 1]
    ref = _REF.search(head)
    if not ref:
        return None, body
    return (int(ref[2]), column_index(ref[1].decode())), body
