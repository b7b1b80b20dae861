"""Real-world and hostile files (tests/support/fixtures, most written by LibreOffice): each one ends in the right
payloads, or in one clear ``error:`` line with exit 2 and nothing sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ..support.real_world import OK
from ..support.runs import FIXTURES, read_sheet


@pytest.mark.parametrize("name", ["libreoffice.ods", "excel_european.csv", "formulas.xlsx"])
def test_real_world_files_run_end_to_end(name: str, tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    result = cli("run", FIXTURES / name, "-o", output, "--base-url", server.url, "--quiet")
    assert result.code == 0, result.err
    bodies = {entry["body"]["title"]: entry["body"] for entry in server.simulator.accepted}
    assert set(bodies) == set(OK[name])
    assert {line["title"] for line in read_sheet(output, "jobs")} == set(bodies)


@pytest.mark.parametrize("name", ["zip_bomb.xlsx", "billion_laughs.xlsx", "invalid_cells.xlsx", "cp1252.csv"])
def test_a_refused_file_sends_nothing(name: str, tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator()
    result = cli("run", FIXTURES / name, "-o", tmp_path / "out.xlsx", "--base-url", server.url, "--quiet")
    assert result.code == 2 and result.err.strip().splitlines()[-1].startswith("error: ")
    assert server.simulator.received == [] and not (tmp_path / "out.xlsx").exists()


def test_dates_pass_through_as_iso_text(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    assert (
        cli("run", FIXTURES / "dates_in_passthrough.xlsx", "-o", output, "--base-url", server.url, "--quiet").code == 0
    )
    line = read_sheet(output, "jobs")[0]
    assert dt.date.fromisoformat(line["Release date"][:10]) == dt.date(2026, 12, 24)
