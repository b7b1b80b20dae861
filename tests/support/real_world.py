"""What each real-world file in tests/support/fixtures must give: its titles, and fields of their payloads."""

from __future__ import annotations

from typing import Any

OK: dict[str, dict[str, dict[str, Any]]] = {
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
