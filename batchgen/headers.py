"""Which field a column header names, and which headers only look like one.

People write headers their own way: ``Normalised Weirdness``, ``Duration (s)``, ``Cover Strength``, ``Lyric``.
Those are accepted. A header that is neither a field nor an accepted variant but resembles one (``Weirdnes``,
``Lyrcs``, ``riffid``) would drop a setting silently if it were passed through, so it is reported instead.

Text in brackets at the end of a header (``Duration (s)``, ``Crop End At [ms]``) is the column's unit or a
note, and it is never dropped unread, because a number is sent as written, whatever unit it was typed in:

* a time field (``crop_end_at``, ``replace_start_at``, ``replace_end_at``, ``duration``) is sent in seconds:
  ``(s)``, ``(sec)``, ``(secs)``, ``(second)``, ``(seconds)`` (also ``in seconds``, ``sec.``) are accepted.
  Another unit (``min``, ``ms``, ``hours``, ``%``) is an error: the values would be sent in the wrong unit.
  Any other text (``beats``, ``mm:ss``, ``approx``) is an error too: it may be a unit batchgen does not know.
* a strength (``normalized_*``) is sent as a fraction from 0 to 1: only the range ``(0-1)`` (``0..1``,
  ``0 to 1``) is accepted; a unit (``%``, ``0-100``, ``s``) or any other text is an error, for the same reasons.
* any other field is text or a choice, sent as written or matched by name: a note in brackets
  (``Title (English)``, ``Lyrics (optional)``) cannot change what is sent, so it is accepted. Two such
  columns for one field are refused by the loader as naming the same field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schema import ALL_FIELDS, STRENGTH_FIELDS, TIME_FIELDS

_SEPARATORS = re.compile(r"[\s.\-]+")
_NOT_WORD = re.compile(r"[^a-z0-9_]")
_QUALIFIER = re.compile(r"\s*[(\[]([^)\]]*)[)\]]\s*$")
_RANGE = re.compile(r"0\s*(?:-|\u2013|\.\.|to)\s*(1|100)(?:\.0+)?")
_UNITS = {
    word: unit
    for unit, words in (
        ("seconds", ("s", "sec", "secs", "second", "seconds")),
        ("minutes", ("m", "min", "mins", "minute", "minutes")),
        ("hours", ("h", "hr", "hrs", "hour", "hours")),
        ("milliseconds", ("ms", "msec", "msecs", "millisecond", "milliseconds")),
        ("percent", ("%", "pct", "percent", "percentage")),
    )
    for word in words
}
_SENT_IN = {**dict.fromkeys(TIME_FIELDS, "seconds"), **dict.fromkeys(STRENGTH_FIELDS, "fraction")}
_TAKES = {"seconds": ("in seconds", "seconds"), "fraction": ("as a fraction from 0 to 1", "fractions from 0 to 1")}
_KNOWN = frozenset(ALL_FIELDS)
_SHORT = {name.removeprefix("normalized_"): name for name in STRENGTH_FIELDS}
OUTPUT_COLUMNS = frozenset(
    {"row", "title", "job_id", "job_index", "tag", "model", "submitted_at", "key", "superseded", "state", "error"}
)


def normalize(name: object) -> str:
    """A header as a key: trimmed, lower case, runs of spaces, ``-`` and ``.`` as ``_``, no leading ``morph_``."""
    key = _SEPARATORS.sub("_", str(name).strip().lower())
    key = _NOT_WORD.sub("", key).strip("_")
    return key.removeprefix("morph_")


def field_for(header: object) -> str | None:
    """The field a header names, allowing the accepted variants; None for any other header."""
    key = normalize(_QUALIFIER.sub("", str(header)))
    key = key.replace("normalised_", "normalized_")
    for candidate in (key, key.removesuffix("s"), "lyrics" if key == "lyric" else key):
        candidate = _SHORT.get(candidate, candidate)
        if candidate in _KNOWN:
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class NearMiss:
    """A header that resembles ``field`` without being one of its accepted names."""

    header: str
    field: str

    def message(self) -> str:
        return (
            f"looks like {self.field} but is not one of its accepted names ({', '.join(accepted_names(self.field))}); "
            "rename the column (to one of those, or to a name unlike any field to keep it unsent)"
        )


@dataclass(frozen=True, slots=True)
class WrongUnit:
    """A header naming the number ``field`` with bracketed text (``note``) that is not the unit it is sent in.

    ``unit`` is what the note means when batchgen knows it as a unit (``minutes``), else None; ``base`` is the
    header without the note, to suggest a name.
    """

    header: str
    field: str
    note: str
    unit: str | None
    base: str

    def message(self) -> str:
        sent_in = _SENT_IN[self.field]
        takes, plural = _TAKES[sent_in]
        rename = f"{self.base} (s)" if sent_in == "seconds" else self.base
        if self.unit is None:
            return (
                f"says {self.note!r}, which may be a unit: the API takes {self.field} {takes}, so its values could "
                f"be sent in the wrong unit; if they are {plural}, name the column {rename!r}"
            )
        return (
            f"is in {self.unit}, but the API takes {self.field} {takes}: its values would be sent in the wrong "
            f"unit; convert them to {plural} and name the column {rename!r}"
        )


HeaderProblem = NearMiss | WrongUnit


def wrong_unit(header: object) -> WrongUnit | None:
    """The bracketed note of a number field's header, when it is not the unit the field is sent in."""
    text = str(header).strip()
    found = _QUALIFIER.search(text)
    field = field_for(text)
    if found is None or field not in _SENT_IN:
        return None
    unit = _unit_of(found.group(1))
    if unit == _SENT_IN[field] or not found.group(1).strip():
        return None
    return WrongUnit(text, field, found.group(1).strip(), unit, text[: found.start()].strip())


def _unit_of(note: str) -> str | None:
    """What a bracketed note says as a unit (``seconds``, ``minutes``, ``fraction``...), or None if none."""
    text = note.strip().lower().rstrip(".").removeprefix("in ").strip()
    found = _RANGE.fullmatch(text)
    if found:
        return "fraction" if found.group(1) == "1" else "percent"
    return _UNITS.get(text)


def resembles(header: object, present: set[str]) -> str | None:
    """The field an unknown header resembles (typo, missing ``_``, field name as one of its words), if any.

    Fields that already have a column are left out: ``Original Title`` beside ``Title`` is another column.
    """
    key = normalize(_QUALIFIER.sub("", str(header))).replace("normalised_", "normalized_")
    squashed = key.replace("_", "")
    if len(squashed) < 3:
        return None
    words = key.split("_")
    for field in ALL_FIELDS:
        if field in present:
            continue
        for name in _names_of(field):
            target = name.replace("_", "")
            parts = name.split("_")
            if squashed == target or _near(squashed, target) or _within(words, parts) or _within(parts, words):
                return field
    return None


def accepted_names(field: str) -> list[str]:
    """How a header may name ``field``, for messages and the template's help."""
    words = field.split("_")
    names = [field, " ".join(word.capitalize() for word in words).replace(" Id", " ID")]
    if field in STRENGTH_FIELDS:
        short = field.removeprefix("normalized_")
        names += ["normalised " + " ".join(words[1:]), " ".join(word.capitalize() for word in short.split("_"))]
    elif field == "tag":
        names.append("Tags")
    elif field == "lyrics":
        names.append("Lyric")
    elif field in ("crop_end_at", "replace_start_at", "replace_end_at", "duration"):
        names.append(names[1] + " (s)")
    return names


def output_name(label: str) -> str:
    """A passthrough column whose name is one of the output's own columns is written as ``input <name>``."""
    return f"input {label}" if normalize(label) in OUTPUT_COLUMNS else label


def _names_of(field: str) -> list[str]:
    """The field and, for a strength, its name without ``normalized_``."""
    short = field.removeprefix("normalized_")
    return [field, short] if short != field else [field]


def _within(outer: list[str], inner: list[str]) -> bool:
    """``model_no`` holds the field ``model`` as whole words, ``variation`` is part of a strength's name."""
    if len("".join(inner)) < 5 or len(outer) <= len(inner):
        return False
    return any(outer[i : i + len(inner)] == inner for i in range(len(outer) - len(inner) + 1))


def _near(word: str, target: str) -> bool:
    """One edit away (two for long names), counting a swap of neighbours as one edit."""
    if len(word) < 4 or abs(len(word) - len(target)) > 2:
        return False
    return _distance(word, target) <= (1 if len(target) < 8 else 2)


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]
