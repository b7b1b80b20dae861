"""The workbook's ``night`` sheet (issue 27) opened in LibreOffice as a producer would open it: the figures per
minute where the sheet says, and its native chart drawn from them, every minute of the night in each series."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from batchgen.journal import Journal, journal_path
from batchgen.night import KINDS, read_night
from batchgen.nightsheet import TOP
from batchgen.paths import real

from ..support.nights import long_night
from ..support.office import libreoffice_with_uno, office, script

SPREADSHEET_EPOCH = dt.datetime(1899, 12, 30, tzinfo=dt.UTC)  # day 0 of a sheet's dates


@pytest.mark.skipif(not libreoffice_with_uno(), reason="needs LibreOffice and python3-uno (.ci/run installs them)")
def test_the_night_sheet_opens_in_libreoffice_with_its_chart(tmp_path: Path, cli) -> None:
    output = tmp_path / "night.xlsx"
    long_night(output, 3000)  # four minutes of requests around a 20-minute pause
    assert cli("export", output).code == 0
    with office(tmp_path / "profile") as pipe:
        script("night.py", pipe, output, tmp_path / "found.json", tmp_path / "night.pdf")
    found = json.loads((tmp_path / "found.json").read_text())
    with Journal.open(journal_path(real(output))) as journal:
        night = read_night(journal, step=60)
    minutes, first = len(night.spans), night.spans[0]
    assert minutes > 20 and found["sheets"] == ["jobs", "failed", "night"]
    assert found["header_row"] == TOP and found["last_row"] == TOP + minutes
    day = (dt.datetime.fromtimestamp(first.start, dt.UTC) - SPREADSHEET_EPOCH) / dt.timedelta(days=1)
    assert found["first"] == pytest.approx([day, *(first.answers[kind] for kind in KINDS), first.sent])
    [chart] = found["charts"]
    assert chart["title"] == "The night: answers per minute, and the pace"
    assert chart["types"] == [
        ["com.sun.star.chart2.ColumnChartType", [[kind, minutes] for kind in KINDS]],
        ["com.sun.star.chart2.LineChartType", [["pace (requests/s)", minutes]]],
    ]
    assert (tmp_path / "night.pdf").read_bytes()[:5] == b"%PDF-"  # it prints
