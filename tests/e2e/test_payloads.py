"""The bodies the provider receives, field by field, from a workbook LibreOffice wrote with human headers."""

from __future__ import annotations

from ..support.runs import FIXTURES, read_sheet


def test_libreoffice_workbook_produces_the_contract_payloads(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    result = cli(
        "run",
        FIXTURES / "libreoffice_human_headers.xlsx",
        "-o",
        output,
        "--base-url",
        server.url,
        "--quiet",
        "--concurrency",
        "1",
    )
    assert result.code == 0, result.err
    bodies = {entry["body"]["title"]: entry["body"] for entry in server.simulator.accepted}
    assert bodies == {
        "Plain Song": {
            "model": "FUZZ-1.0",
            "title": "Plain Song",
            "tag": "indie pop",
            "lyrics": "Line one\nLine two",
            "instrumental": False,
        },
        "Instrumental Piece": {
            "model": "FUZZ-1.1 Pro",
            "title": "Instrumental Piece",
            "tag": "ambient",
            "lyrics": "",
            "instrumental": True,
        },
        "Cover Me": {
            "model": "FUZZ-1.1",
            "title": "Cover Me",
            "tag": "rock",
            "lyrics": "Cover lyrics",
            "instrumental": False,
            "morph": {
                "transform": "cover",
                "riff_id": "riff_123",
                "normalized_weirdness": 0.5,
                "normalized_cover_strength": 0.8,
                "normalized_lyrics_strength": 0.5,
            },
        },
        "Inpaint Me": {
            "model": "FUZZ-1.0",
            "title": "Inpaint Me",
            "tag": "soul",
            "lyrics": "Inpaint lyrics",
            "instrumental": False,
            "morph": {
                "transform": "inpaint",
                "audio_upload_id": "upl_9",
                "replace_start_at": 10,
                "replace_end_at": 20.5,
                "duration": 60,
            },
        },
        "Numeric Riff": {
            "model": "FUZZ-1.0",
            "title": "Numeric Riff",
            "tag": "jazz",
            "lyrics": "la la",
            "instrumental": False,
            "morph": {"transform": "extend", "riff_id": "12345", "duration": 0},
        },
    }
    for body in bodies.values():  # JSON types, not only values: booleans are booleans, numbers are numbers
        assert isinstance(body["instrumental"], bool)
        for name, value in body.get("morph", {}).items():
            expected = str if name in ("transform", "riff_id", "audio_upload_id") else (int, float)
            assert isinstance(value, expected) and not isinstance(value, bool), (name, value)
    assert type(bodies["Numeric Riff"]["morph"]["duration"]) is int  # whole numbers go out as 0, not 0.0
    rows = {line["title"]: line["row"] for line in read_sheet(output, "jobs")}
    assert rows == {"Plain Song": 4, "Instrumental Piece": 5, "Cover Me": 6, "Inpaint Me": 8, "Numeric Riff": 9}
