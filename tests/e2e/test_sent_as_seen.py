"""What is sent is what the sheet says, end to end: a real ``batchgen run`` child process or the library
against the simulator, whose request log shows that a refused file sent nothing and that accepted bodies
carry the numbers a person sees."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

import batchgen

from ..support.helpers import write_csv
from ..support.runs import API_KEY, spawn


def run(source: Path, url: str, *extra: str) -> tuple[int, str]:
    """``batchgen run SOURCE`` as a child process; its exit code and stderr."""
    child = spawn("run", source, "-o", source.with_name("out.xlsx"), "--base-url", url, "--quiet", *extra)
    _, err = child.communicate(timeout=120)
    assert "Traceback" not in err, err
    return child.returncode, err


def test_a_header_in_minutes_sends_nothing(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    source = write_csv(
        tmp_path, "Title,Tag,Lyrics,Transform,Riff ID,Duration (min)\nA,pop,la,extend,r,2\nB,pop,la,extend,r,3\n"
    )
    code, err = run(source, server.url)
    assert code == 2, err
    assert (
        "row 1, Duration (min): is in minutes, but the API takes duration in seconds: its values would be sent in "
        "the wrong unit; convert them to seconds and name the column 'Duration (s)'"
    ) in err.splitlines()
    assert server.simulator.received == []


SHIFTED = "Title,Tag,Lyrics\nMidnight Harbor,synthwave, dreamy,Neon on the water\nCalm Tide,ambient,Waves\n"


def test_an_unquoted_comma_sends_nothing(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    code, err = run(write_csv(tmp_path, SHIFTED), server.url)
    assert code == 2, err
    assert err.splitlines()[0].startswith("row 2, extra cells: the row has 4 cells but the header has 3")
    assert server.simulator.received == []


def test_an_unquoted_comma_is_never_sent_shifted_even_when_invalid_rows_are_skipped(
    tmp_path: Path, start_simulator
) -> None:
    server = start_simulator()
    code, err = run(write_csv(tmp_path, SHIFTED), server.url, "--skip-invalid")
    assert code == 1, err
    assert [entry["body"]["title"] for entry in server.simulator.accepted] == ["Calm Tide"]


def test_lost_characters_in_a_legacy_csv_send_nothing(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    text = "Title,Tag,Lyrics\n??? (Sakura Rain),j-pop,Ame ga furu\nCafé,chanson,Why???\n"
    code, err = run(write_csv(tmp_path, text, encoding="cp1252"), server.url, "--encoding", "cp1252")
    assert code == 2, err
    assert err.splitlines()[0] == (
        "row 2, title: '??? (Sakura Rain)' has a word of only ? marks: saved as cp1252, the file lost the "
        'characters that encoding cannot hold (Japanese, emoji...); save the sheet as "CSV UTF-8" and use that file'
    )
    assert server.simulator.received == []
    code, err = run(write_csv(tmp_path, text, name="utf8.csv"), server.url)
    assert code == 0, err
    assert sorted(entry["body"]["title"] for entry in server.simulator.accepted) == ["??? (Sakura Rain)", "Café"]


def test_dataframe_numbers_arrive_as_a_person_sees_them(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    frame = pd.DataFrame(
        {
            "Title": ["Float32", "Decimal", "Integer"],
            "Tag": "pop",
            "Lyrics": "la",
            "Transform": "extend",
            "Riff ID": "r",
            "Weirdness": np.array([0.1, np.nan, np.nan], dtype="float32"),
            "Cover Strength": [None, Decimal("0.5"), None],
            "Duration": np.array([12, 30, 7], dtype="int32"),
        },
        index=["x", "y", "x"],
    )
    result = batchgen.run(frame, tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY)
    assert result.ok
    morphs = {entry["body"]["title"]: entry["body"]["morph"] for entry in server.simulator.accepted}
    assert morphs["Float32"]["normalized_weirdness"] == 0.1  # the JSON said 0.1, not 0.10000000149011612
    assert morphs["Decimal"]["normalized_cover_strength"] == 0.5
    assert [type(morph["duration"]) for morph in morphs.values()] == [int, int, int]
    assert sorted(morph["duration"] for morph in morphs.values()) == [7, 12, 30]
    assert list(result.jobs["row"].unique()) == ["'x' (position 0)", "y", "'x' (position 2)"]


def test_a_decimal_is_a_number_in_a_list_of_dicts(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    rows = [
        {"title": "A", "tag": "pop", "lyrics": "la", "transform": "cover", "riff_id": "r", "weirdness": Decimal("0.5")}
    ]
    assert batchgen.run(rows, tmp_path / "out.csv", base_url=server.url, api_key=API_KEY).ok
    assert [entry["body"]["morph"]["normalized_weirdness"] for entry in server.simulator.accepted] == [0.5]
