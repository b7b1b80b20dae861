"""Which field a column header names, and which headers only look like one.

People write headers their own way: ``Normalised Weirdness``, ``Duration (s)``, ``Cover Strength``, ``Lyric``.
Those are accepted. A header that is neither a field nor an accepted variant but resembles one (``Weirdnes``,
``Lyrcs``, ``riffid``) would drop a setting silently if it were passed through, so it is reported instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schema import ALL_FIELDS, STRENGTH_FIELDS

_SEPARATORS = re.compile(r"[\s.\-]+")
_NOT_WORD = re.compile(r"[^a-z0-9_]")
_UNIT = re.compile(r"\s*[(\[][^)\]]*[)\]]\s*$")
_KNOWN = frozenset(ALL_FIELDS)
_SHORT = {name.removeprefix("normalized_"): name for name in STRENGTH_FIELDS}
OUTPUT_COLUMNS = frozenset({"row", "title", "job_id", "job_index", "tag", "model", "submitted_at", "state", "error"})


def normalize(name: object) -> str:
    """A header as a key: trimmed, lower case, runs of spaces, ``-`` and ``.`` as ``_``, no leading ``morph_``."""
    key = _SEPARATORS.sub("_", str(name).strip().lower())
    key = _NOT_WORD.sub("", key).strip("_")
    return key.removeprefix("morph_")


def field_for(header: object) -> str | None:
    """The field a header names, allowing the accepted variants; None for any other header."""
    key = normalize(_UNIT.sub("", str(header)))
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


def resembles(header: object, present: set[str]) -> str | None:
    """The field an unknown header resembles (typo, missing ``_``, field name as one of its words), if any.

    Fields that already have a column are left out: ``Original Title`` beside ``Title`` is another column.
    """
    key = normalize(_UNIT.sub("", str(header))).replace("normalised_", "normalized_")
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
