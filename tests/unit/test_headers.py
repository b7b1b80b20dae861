"""Header names: the accepted variants of each field, near misses refused, other columns passed through."""

from __future__ import annotations

import pytest

from batchgen.headers import accepted_names, field_for, output_name, resembles, wrong_unit


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


@pytest.mark.parametrize(
    "header",
    [
        "Duration (s)",
        "Duration (sec)",
        "Duration (secs)",
        "Duration (seconds)",
        "Crop End At [Sec.]",
        "Replace End At (in seconds)",
        "Duration ()",
        "Weirdness (0-1)",
        "Cover Strength (0..1)",
        "Title (English)",
        "Lyrics (optional)",
        "Tag(s)",
        "Riff ID (from the app)",
        "Notes (min)",
    ],
)
def test_seconds_ranges_and_notes_on_text_fields_are_accepted(header: str) -> None:
    assert wrong_unit(header) is None


@pytest.mark.parametrize(
    "header, unit",
    [
        ("Duration (min)", "minutes"),
        ("Duration (Minutes)", "minutes"),
        ("Crop End At (ms)", "milliseconds"),
        ("Replace Start At [hours]", "hours"),
        ("Duration (%)", "percent"),
        ("Weirdness (%)", "percent"),
        ("Normalized Cover Strength (0-100)", "percent"),
        ("Weirdness (s)", "seconds"),
        ("Duration (beats)", None),
        ("Duration (mm:ss)", None),
        ("Weirdness (approx)", None),
    ],
)
def test_other_units_and_unknown_notes_on_number_fields_are_problems(header: str, unit: str | None) -> None:
    problem = wrong_unit(header)
    assert problem is not None and problem.unit == unit and problem.header == header


def test_wrong_unit_messages_say_what_would_be_sent_and_how_to_fix_it() -> None:
    minutes, beats, percent = (wrong_unit(h) for h in ("Duration (min)", "Crop End At (beats)", "Weirdness (%)"))
    assert minutes is not None and beats is not None and percent is not None
    assert minutes.message() == (
        "is in minutes, but the API takes duration in seconds: its values would be sent in the wrong unit; "
        "convert them to seconds and name the column 'Duration (s)'"
    )
    assert beats.message() == (
        "says 'beats', which may be a unit: the API takes crop_end_at in seconds, so its values could be sent in "
        "the wrong unit; if they are seconds, name the column 'Crop End At (s)'"
    )
    assert percent.message() == (
        "is in percent, but the API takes normalized_weirdness as a fraction from 0 to 1: its values would be sent "
        "in the wrong unit; convert them to fractions from 0 to 1 and name the column 'Weirdness'"
    )
