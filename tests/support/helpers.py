"""Small builders for input files, so each test states its own cells."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from openpyxl import Workbook


def write_csv(folder: Path, text: str, name: str = "input.csv", encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(
    folder: Path,
    rows: list[list[Any]],
    name: str = "input.xlsx",
    sheet: str = "Sheet1",
    hidden_first: list[list[Any]] | None = None,
) -> Path:
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


def xlsx_members(sheet_document: str | bytes, calc_on_load: bool = False) -> dict[str, str | bytes]:
    """The smallest package calamine, openpyxl and Excel accept, around one hand-written sheet ``Sheet1``."""
    calc = '<calcPr fullCalcOnLoad="1"/>' if calc_on_load else ""
    ns = "http://schemas.openxmlformats.org"
    office = f"{ns}/officeDocument/2006/relationships"
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return {
        "[Content_Types].xml": f'<?xml version="1.0"?><Types xmlns="{ns}/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{sheet_type}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{sheet_type}.worksheet+xml"/></Types>',
        "_rels/.rels": f'<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{office}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0"?><workbook xmlns="{ns}/spreadsheetml/2006/main" '
        f'xmlns:r="{office}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets>{calc}</workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{office}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet_document,
    }


def write_sheet_xml(
    folder: Path, sheet_xml: str, name: str = "raw.xlsx", calc_on_load: bool = False, document: str | None = None
) -> Path:
    """A workbook whose one sheet holds the rows ``sheet_xml`` exactly (or is ``document``): for cells openpyxl
    cannot write, such as a formula whose cached value is an Excel error."""
    document = document or (
        '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main"><sheetData>{sheet_xml}</sheetData></worksheet>'
    )
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        for member, text in xlsx_members(document, calc_on_load).items():
            package.writestr(member, text)
    return path


def inline(ref: str, text: str) -> str:
    """A text cell in sheet XML."""
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'
