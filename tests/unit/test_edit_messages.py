"""What an edited row's message says changed: the fields whose value differs, in the request's order."""

from __future__ import annotations

import json

from batchgen.edits import describe, pair_edits
from batchgen.journal import NewRow
from batchgen.journal.view import EarlierRow
from batchgen.ledger import Song

SENT = {
    "model": "FUZZ-1.0",
    "title": "Paper Moon",
    "tag": "jazz",
    "lyrics": "Moon made of paper",
    "instrumental": False,
    "morph": {"transform": "cover", "riff_id": "r1", "normalized_weirdness": 0.7},
}


def test_one_field() -> None:
    assert describe(_song(SENT), _song({**SENT, "lyrics": "Moon made of glass"})) == "lyrics changed"


def test_several_fields_including_a_morph_option_and_one_added() -> None:
    now = {**SENT, "model": "FUZZ-1.1", "morph": {**SENT["morph"], "normalized_weirdness": 0.8, "duration": 30}}
    assert describe(_song(SENT), _song(now)) == "model, normalized_weirdness and duration changed"


def test_an_earlier_request_known_only_from_an_output_line() -> None:
    line = {"title": "Paper Moon", "tag": "jazz", "model": "FUZZ-1.0"}
    assert describe(_song(line), _song({**SENT, "tag": "swing"})) == "tag changed"
    assert describe(_song(line), _song({**SENT, "lyrics": "other"})) == "the request changed"


def _song(payload: dict[str, object]) -> Song:
    return Song.of(str(payload["title"]), json.dumps(payload), 2)


def _new(row: int, title: str, **fields: str) -> NewRow:
    return NewRow(f"k{row}", row, row, title, json.dumps({"title": title, **fields}), {})


def _old(row: int, title: str, **fields: str) -> EarlierRow:
    return EarlierRow(f"old{row}", row, title, json.dumps({"title": title, **fields}), "done", "2026-12-01")


def test_rows_pair_by_title_wherever_they_stand() -> None:
    earlier = [_old(3, "Ed 003", lyrics="a"), _old(5, "Ed 005", lyrics="b")]
    rows = [_new(2, "Inserted", lyrics="n"), _new(4, "Ed 003", lyrics="a2"), _new(9, "Ed 005", lyrics="b2")]
    assert [(new.row, old.row) for new, old in pair_edits(earlier, rows)] == [(4, 3), (9, 5)]


def test_repeated_titles_pair_by_fields_before_order() -> None:
    earlier = [_old(2, "Take", tag="pop", lyrics="a"), _old(4, "Take", tag="rock", lyrics="b")]
    rows = [_new(3, "Take", tag="rock", lyrics="b2"), _new(6, "Take", tag="pop", lyrics="a2")]
    assert [(new.row, old.row) for new, old in pair_edits(earlier, rows)] == [(3, 4), (6, 2)]


def test_repeated_titles_alike_pair_in_order_and_extra_rows_stay_unpaired() -> None:
    earlier = [_old(2, "Take", lyrics="a"), _old(3, "Take", lyrics="b")]
    rows = [_new(5, "Take", lyrics="x"), _new(7, "Take", lyrics="y"), _new(8, "Take", lyrics="z")]
    assert [(new.row, old.row) for new, old in pair_edits(earlier, rows)] == [(5, 2), (7, 3)]


def test_rows_known_from_the_ledger_alone_pair_and_describe_as_rows_of_the_journal() -> None:
    """Another output sent them: the ledger has fingerprints, never the title or the lyrics."""
    earlier = [_old(2, "Take", tag="pop", lyrics="a"), _old(4, "Take", tag="rock", lyrics="b")]
    known = [EarlierRow(old.key, 0, "", "{}", old.state, old.sent_at, old.fingerprints()) for old in earlier]
    rows = [_new(3, "Take", tag="rock", lyrics="b2"), _new(6, "Take", tag="pop", lyrics="a2")]
    assert [(new.row, old.key) for new, old in pair_edits(known, rows)] == [(3, "old4"), (6, "old2")]
    assert describe(known[1].fingerprints(), Song.of("Take", rows[0].payload, 3)) == "lyrics changed"
    assert all(len(value) == 32 and value != "rock" for old in known for value in old.fingerprints().fields.values())
