"""Real-world and hostile files (tests/support/fixtures, most written by LibreOffice): each one ends in the right
payloads, or in one clear ``error:`` line with exit 2 and nothing sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ..support.runs import FIXTURES, read_sheet

OK = {
    "libreoffice_human_headers.xlsx": {"Plain Song": {"tag": "indie pop", "lyrics": "Line one\nLine two"}},
    "header_on_row_3.xlsx": {"Below the title": {"tag": "pop"}, "Second": {"tag": "rock"}},
    "hidden_first_sheet.xlsx": {"Visible one": {"tag": "pop"}},
    "trailing_and_merged_columns.xlsx": {"Merged header": {"lyrics": "la"}},
    "numbers_as_text.xlsx": {
        "Text numbers": {"morph": {"transform": "cover", "riff_id": "r1", "normalized_weirdness": 0.5, "duration": 30}}
    },
    "percent_cells.xlsx": {"Percent": {"morph": {"transform": "cover", "riff_id": "r1", "normalized_weirdness": 0.5}}},
    "formulas.xlsx": {
        "Formulas": {
            "lyrics": "la la",
            "morph": {"transform": "cover", "audio_upload_id": "u1", "duration": 30, "normalized_cover_strength": 0.25},
        }
    },
    "dates_in_passthrough.xlsx": {"Dated": {"lyrics": "la"}},
    "booleans.xlsx": {
        f"Bool {i}": {"instrumental": value}
        for i, value in enumerate([True, False, True, False, True, False, True, False, True, True, False])
    },
    "libreoffice.ods": {"As ODS": {"tag": "pop"}, "Second ODS": {"tag": "jazz"}},
    "excel_european.csv": {
        "Chanson": {
            "lyrics": "Première ligne\ndeuxième; ligne",
            "morph": {"transform": "cover", "riff_id": "r1", "normalized_weirdness": 0.5},
        },
        "Zweites Lied": {"tag": "schlager"},
    },
    "mac_cr_line_endings.csv": {"Old Mac": {"tag": "pop"}, "Second": {"tag": "rock"}},
    "long_lyrics.csv": {"Epic": {"tag": "prog rock"}},
    "control_characters.csv": {"Bell\x07 and tab": {"tag": "pop"}},  # trimmed: \x0b is white space
    "formula_injection.csv": {'=HYPERLINK("http://evil.example","x")': {"tag": "pop"}},
}


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
