"""``batchgen template``: a workbook that prevents errors while it is filled in, rather than reporting them later.

Every column of the contract, with Excel data validation (drop-downs, number ranges), an input message on
each column, a frozen header, a "How to fill" sheet and one example row per transform on its own sheet (so that
examples are never sent by accident).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xlsxwriter

from .errors import UsageError
from .files import atomic_write
from .headers import accepted_names, field_for
from .schema import ALL_FIELDS, MODELS, STRENGTH_FIELDS, TIME_FIELDS, TRANSFORMS

LAST_ROW = 5000
BOOLEANS = ["TRUE", "FALSE"]

# (header, width, what a person must know, validation)
COLUMNS: list[tuple[str, int, str, dict[str, Any]]] = [
    ("Title", 28, "Required. The song's title.", {"validate": "length", "criteria": ">", "value": 0}),
    ("Tag", 22, "Required. Style tags, e.g. synthwave, dreamy.", {"validate": "length", "criteria": ">", "value": 0}),
    ("Lyrics", 50, "Required unless Instrumental is TRUE. Line breaks are kept (Alt+Enter).", {"validate": "any"}),
    ("Model", 14, "Blank means FUZZ-1.0.", {"validate": "list", "source": list(MODELS)}),
    ("Instrumental", 13, "TRUE for no vocals; blank means FALSE.", {"validate": "list", "source": BOOLEANS}),
    (
        "Transform",
        13,
        "Only to morph an existing riff or upload; needs Riff ID or Audio Upload ID.",
        {"validate": "list", "source": list(TRANSFORMS)},
    ),
    ("Riff ID", 16, "The riff to morph (or Audio Upload ID, not both).", {"validate": "any"}),
    ("Audio Upload ID", 16, "The upload to morph (or Riff ID, not both).", {"validate": "any"}),
    *(
        (
            " ".join(word.capitalize() for word in name.split("_")),
            14,
            "A number from 0 to 1 (0.5, not 50).",
            {"validate": "decimal", "criteria": "between", "minimum": 0, "maximum": 1},
        )
        for name in STRENGTH_FIELDS
    ),
    *(
        (
            " ".join(word.capitalize() for word in name.split("_")),
            13,
            "Seconds, 0 or more. Inpaint needs Replace Start At < Replace End At.",
            {"validate": "decimal", "criteria": ">=", "value": 0},
        )
        for name in TIME_FIELDS
    ),
]

EXAMPLES: list[dict[str, Any]] = [
    {"Title": "Plain song", "Tag": "indie pop", "Lyrics": "First line\nSecond line", "Model": "FUZZ-1.1"},
    {"Title": "Instrumental", "Tag": "ambient", "Instrumental": True},
    {
        "Title": "A cover",
        "Tag": "rock",
        "Lyrics": "Cover lyrics",
        "Transform": "cover",
        "Riff ID": "riff_123",
        "Normalized Cover Strength": 0.8,
    },
    {
        "Title": "Longer",
        "Tag": "jazz",
        "Lyrics": "More of it",
        "Transform": "extend",
        "Riff ID": "riff_123",
        "Crop End At": 30,
    },
    {
        "Title": "Fixed bridge",
        "Tag": "soul",
        "Lyrics": "New bridge",
        "Transform": "inpaint",
        "Audio Upload ID": "upl_456",
        "Replace Start At": 30,
        "Replace End At": 45,
    },
    {
        "Title": "New singer",
        "Tag": "soul",
        "Lyrics": "Same words",
        "Transform": "swap_vocals",
        "Audio Upload ID": "upl_456",
    },
    {
        "Title": "New band",
        "Tag": "funk",
        "Lyrics": "Same words",
        "Transform": "swap_sound",
        "Riff ID": "riff_123",
        "Normalized Sound Prompt Strength": 0.6,
    },
]

HOW_TO = [
    "How to fill this catalog",
    "",
    "One row of the Catalog sheet is one song, that is one paid generation request. Leave no example rows there.",
    "Title and Tag are required; Lyrics too, unless Instrumental is TRUE.",
    "Model: pick from the list; blank means FUZZ-1.0.",
    "Morph (optional): to cover, extend, inpaint or swap an existing riff or upload, pick a Transform and give",
    "exactly one of Riff ID or Audio Upload ID. Strengths are numbers from 0 to 1; times are seconds.",
    "Inpaint replaces the part between Replace Start At and Replace End At.",
    "You may add columns of your own (catalog number, notes): they are copied to the output, never sent.",
    "The Examples sheet shows one row per transform. Headers may be spelled in any of the ways listed below;",
    "a header that only resembles one (Weirdnes, riffid) is refused, so that no setting is dropped unseen.",
    "",
    "Check it before anything is sent (batchgen's validate); then run it: each row is sent once, the job ids of",
    "every row are written to the output you name, and running it again resumes.",
]


def write_template(path: str | Path, force: bool = False) -> Path:
    """Write the template to ``path`` (.xlsx), atomically; an existing file is replaced only with ``force``."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise UsageError(f"{path}: the template is an Excel workbook; name it .xlsx")
    if not path.parent.is_dir():
        raise UsageError(f"{path}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise UsageError(
            f"{path} already exists (a filled catalog?); choose another name, or pass `force` to replace it"
        )
    atomic_write(path, _write)
    return path


def _write(handle: Any) -> None:
    book = xlsxwriter.Workbook(handle, {"strings_to_formulas": False, "strings_to_numbers": False})
    header = book.add_format(
        {"bold": True, "bg_color": "#305496", "font_color": "#FFFFFF", "text_wrap": True, "valign": "top"}
    )
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    catalog = book.add_worksheet("Catalog")
    examples = book.add_worksheet("Examples")
    for sheet in (catalog, examples):
        sheet.freeze_panes(1, 0)
        sheet.set_row(0, 30)
        for column, (title, width, _, _) in enumerate(COLUMNS):
            sheet.write_string(0, column, title, header)
            sheet.set_column(column, column, width, wrap if title == "Lyrics" else None)
    for column, (title, _, message, rule) in enumerate(COLUMNS):
        also = [name for name in accepted_names(field_for(title) or title) if name != title]
        hint = f"{message} Header also accepted as: {', '.join(also)}."
        catalog.data_validation(
            1,
            column,
            LAST_ROW,
            column,
            {
                **rule,
                "input_title": title[:32],
                "input_message": hint[:255],
                "error_title": f"Not a valid {title}"[:32],
                "error_message": message[:255],
                "ignore_blank": True,
            },
        )
    names = [title for title, *_ in COLUMNS]
    for number, example in enumerate(EXAMPLES, start=1):
        for name, value in example.items():
            examples.write(number, names.index(name), value, wrap if name == "Lyrics" else None)
    guide = book.add_worksheet("How to fill")
    guide.set_column(0, 0, 110)
    guide.write_string(0, 0, HOW_TO[0], book.add_format({"bold": True, "font_size": 14}))
    for number, line in enumerate(HOW_TO[1:], start=1):
        guide.write_string(number, 0, line)
    first = len(HOW_TO) + 1
    guide.write_string(
        first,
        0,
        "Accepted headers (any case; spaces, - and . are alike; a leading morph. is ignored)",
        book.add_format({"bold": True}),
    )
    for number, field in enumerate(ALL_FIELDS, start=first + 1):
        guide.write_string(number, 0, f"{field}:  {', '.join(accepted_names(field))}")
    book.close()
