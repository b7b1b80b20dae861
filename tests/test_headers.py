"""Header names: the accepted variants of each field, near misses refused, other columns passed through."""

from __future__ import annotations

import pytest

from batchgen.headers import accepted_names, field_for, output_name, resembles


@pytest.mark.parametrize(
    "header, field",
    [
        ("Normalised Weirdness", "normalized_weirdness"),
        ("normalised_cover_strength", "normalized_cover_strength"),
        ("Duration (s)", "duration"),
        ("Crop End At (seconds)", "crop_end_at"),
        ("Replace Start At [s]", "replace_start_at"),
        ("Weirdness", "normalized_weirdness"),
        ("Cover Strength", "normalized_cover_strength"),
        ("Lyrics Strength", "normalized_lyrics_strength"),
        ("Sound Prompt Strength", "normalized_sound_prompt_strength"),
        ("variation strength", "normalized_variation_strength"),
        ("morph.weirdness", "normalized_weirdness"),
        ("Lyric", "lyrics"),
        ("Tags", "tag"),
        ("Titles", "title"),
        ("Models", "model"),
        ("Riff IDs", "riff_id"),
        ("Instrumental?", "instrumental"),
        ("Title *", "title"),
    ],
)
def test_accepted_variants_name_their_field(header: str, field: str) -> None:
    assert field_for(header) == field


@pytest.mark.parametrize(
    "header, field",
    [
        ("Weirdnes", "normalized_weirdness"),
        ("Wierdness", "normalized_weirdness"),
        ("Normalized Wierdness", "normalized_weirdness"),
        ("Lyrcs", "lyrics"),
        ("riffid", "riff_id"),
        ("audioupload id", "audio_upload_id"),
        ("Cover Strenght", "normalized_cover_strength"),
        ("Transfrom", "transform"),
        ("Instrumentl", "instrumental"),
        ("Weirdness Level", "normalized_weirdness"),
        ("Upload ID", "audio_upload_id"),
        ("Model No", "model"),
        ("Duratoin (s)", "duration"),
    ],
)
def test_near_misses_name_the_field_they_resemble(header: str, field: str) -> None:
    assert field_for(header) is None
    assert resembles(header, set()) == field


@pytest.mark.parametrize(
    "header",
    [
        "Notes",
        "Catalog No",
        "Release date",
        "Deadline",
        "Producer",
        "Genre",
        "BPM",
        "ISRC",
        "Artist",
        "Tempo",
        "Comments",
        "Key",
        "Album",
        "Tag line",
    ],
)
def test_unrelated_headers_pass_through(header: str) -> None:
    assert field_for(header) is None
    assert resembles(header, set()) is None


def test_a_near_miss_of_a_field_that_has_its_column_is_another_column() -> None:
    assert resembles("Original Title", {"title"}) is None
    assert resembles("Original Title", set()) == "title"


def test_accepted_names_are_listed_for_messages_and_the_template() -> None:
    assert accepted_names("normalized_weirdness") == [
        "normalized_weirdness",
        "Normalized Weirdness",
        "normalised weirdness",
        "Weirdness",
    ]
    assert accepted_names("duration") == ["duration", "Duration", "Duration (s)"]
    assert accepted_names("riff_id") == ["riff_id", "Riff ID"]
    for field in ("normalized_cover_strength", "tag", "lyrics", "audio_upload_id", "crop_end_at"):
        assert all(field_for(name) == field for name in accepted_names(field))


@pytest.mark.parametrize(
    "label, written",
    [
        ("job_id", "input job_id"),
        ("Row", "input Row"),
        ("State", "input State"),
        ("error", "input error"),
        ("Submitted At", "input Submitted At"),
        ("Notes", "Notes"),
        ("Job", "Job"),
    ],
)
def test_passthrough_columns_that_collide_with_output_columns_are_renamed(label: str, written: str) -> None:
    assert output_name(label) == written
