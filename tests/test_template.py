"""The template: written by batchgen, filled and saved by LibreOffice (headless, through UNO), validated, sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path

import openpyxl
import pytest

from .conftest import read_sheet

FILL = Path(__file__).resolve().parent / "libreoffice" / "fill.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def libreoffice_with_uno() -> bool:
    if not shutil.which("soffice") or not os.path.exists(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import uno"], capture_output=True).returncode == 0


def test_template_has_every_column_validation_and_examples(tmp_path: Path, cli) -> None:
    path = tmp_path / "catalog.xlsx"
    assert cli("template", path).code == 0
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Catalog", "Examples", "How to fill"]
    catalog = book["Catalog"]
    assert catalog.freeze_panes == "A2"
    rules = {str(rule.sqref).split(":")[0][:-1]: rule for rule in catalog.data_validations.dataValidation}
    assert rules["D"].type == "list" and rules["D"].formula1 == '"FUZZ-1.0,FUZZ-1.1,FUZZ-1.0 Pro,FUZZ-1.1 Pro"'
    assert rules["F"].formula1 == '"cover,extend,inpaint,swap_vocals,swap_sound"'
    assert rules["E"].formula1 == '"TRUE,FALSE"'
    assert (rules["I"].type, rules["I"].formula1, rules["I"].formula2) == ("decimal", "0", "1")
    assert (rules["N"].type, rules["N"].operator, rules["N"].formula1) == ("decimal", "greaterThanOrEqual", "0")
    assert all(rule.promptTitle and rule.prompt for rule in rules.values()) and len(rules) == 17
    examples = cli("validate", path, "--sheet", "Examples")
    assert examples.code == 0 and "7 rows, all valid" in examples.out
    assert "has no data rows" in cli("validate", path).err  # the catalog itself starts empty: no example is sent
    assert "Header also accepted as: normalized_weirdness, normalised weirdness, Weirdness." in rules["K"].prompt
    guide = [row[0].value for row in book["How to fill"].iter_rows()]
    assert (
        "normalized_cover_strength:  normalized_cover_strength, Normalized Cover Strength, normalised cover "
        "strength, Cover Strength" in guide
    )


def test_template_never_overwrites_a_filled_catalog(tmp_path: Path, cli) -> None:
    path = tmp_path / "catalog.xlsx"
    path.write_bytes(b"my filled catalog")
    refused = cli("template", path)
    assert refused.code == 2
    assert refused.err.strip() == (
        f"error: {path} already exists (a filled catalog?); choose another name, or pass --force to replace it"
    )
    assert path.read_bytes() == b"my filled catalog"
    assert cli("template", path, "--force").code == 0 and path.read_bytes()[:2] == b"PK"


@pytest.mark.slow
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
    pipe = f"batchgen{uuid.uuid4().hex}"
    office = subprocess.Popen(
        [
            "soffice",
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            f"--accept=pipe,name={pipe};urp;",
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        subprocess.run([SYSTEM_PYTHON, FILL, pipe, template, filled, tmp_path / "rows.json"], check=True, timeout=120)
    finally:
        office.terminate()
        office.wait(timeout=30)
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
