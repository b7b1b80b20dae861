"""The template filled and saved by LibreOffice (headless, through UNO), then validated and sent."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from ..support.office import libreoffice_with_uno, office, script
from ..support.runs import read_sheet


@pytest.mark.skipif(not libreoffice_with_uno(), reason="needs LibreOffice and python3-uno (.ci/run installs them)")
def test_template_filled_in_libreoffice_validates_and_runs(tmp_path: Path, start_simulator, cli) -> None:
    template, filled = tmp_path / "template.xlsx", tmp_path / "filled.xlsx"
    assert cli("template", template).code == 0
    rows = [
        [
            ["A2", "string", "Filled in LibreOffice"],
            ["B2", "string", "pop"],
            ["C2", "string", "One\nTwo"],
            ["D2", "string", "FUZZ-1.1 Pro"],
        ],
        [["A3", "string", "Quiet one"], ["B3", "string", "ambient"], ["E3", "formula", "=TRUE()"]],
        [
            ["A4", "string", "Covered"],
            ["B4", "string", "rock"],
            ["C4", "string", "la"],
            ["F4", "string", "cover"],
            ["G4", "string", "riff_9"],
            ["L4", "value", 0.75],
            ["N4", "formula", "=10*3"],
        ],
    ]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    with office(tmp_path / "profile") as pipe:
        script("fill.py", pipe, template, filled, tmp_path / "rows.json")
    with zipfile.ZipFile(filled) as package:
        assert b"LibreOffice" in package.read("docProps/app.xml")  # saved by LibreOffice, not by us
    checked = cli("validate", filled)
    assert checked.code == 0, checked.out + checked.err
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    assert cli("run", filled, "-o", output, "--base-url", server.url, "--quiet", "--concurrency", "1").code == 0
    bodies = {entry["body"]["title"]: entry["body"] for entry in server.simulator.accepted}
    assert bodies == {
        "Filled in LibreOffice": {
            "model": "FUZZ-1.1 Pro",
            "title": "Filled in LibreOffice",
            "tag": "pop",
            "lyrics": "One\nTwo",
            "instrumental": False,
        },
        "Quiet one": {"model": "FUZZ-1.0", "title": "Quiet one", "tag": "ambient", "lyrics": "", "instrumental": True},
        "Covered": {
            "model": "FUZZ-1.0",
            "title": "Covered",
            "tag": "rock",
            "lyrics": "la",
            "instrumental": False,
            "morph": {"transform": "cover", "riff_id": "riff_9", "normalized_cover_strength": 0.75, "crop_end_at": 30},
        },
    }
    assert len(read_sheet(output, "jobs")) == 6
