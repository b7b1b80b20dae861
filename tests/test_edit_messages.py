"""What an edited row's message says changed: the fields whose value differs, in the request's order."""

from __future__ import annotations

from batchgen.edits import describe

SENT = {
    "model": "FUZZ-1.0",
    "title": "Paper Moon",
    "tag": "jazz",
    "lyrics": "Moon made of paper",
    "instrumental": False,
    "morph": {"transform": "cover", "riff_id": "r1", "normalized_weirdness": 0.7},
}


def test_one_field() -> None:
    assert describe(SENT, {**SENT, "lyrics": "Moon made of glass"}) == "lyrics changed"


def test_several_fields_including_a_morph_option_and_one_added() -> None:
    now = {**SENT, "model": "FUZZ-1.1", "morph": {**SENT["morph"], "normalized_weirdness": 0.8, "duration": 30}}
    assert describe(SENT, now) == "model, normalized_weirdness and duration changed"


def test_an_earlier_request_known_only_from_an_output_line() -> None:
    line = {"title": "Paper Moon", "tag": "jazz", "model": "FUZZ-1.0"}
    assert describe(line, {**SENT, "tag": "swing"}) == "tag changed"
    assert describe(line, {**SENT, "lyrics": "other"}) == "the request changed"
