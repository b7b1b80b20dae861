"""The workbook's ``night`` sheet: the night per minute and a native chart of it, for a producer who only opens
the workbook. Drawn by xlsxwriter into the workbook :mod:`batchgen.writer` is writing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .journal import JournalView
from .night import COLOURS, KINDS, PERCENTILES, read_night

HEADER = ["minute (UTC)", *KINDS, "sent", "pace (requests/s)", "window", *(f"p{p} latency (s)" for p in PERCENTILES)]
EVENTS_AT = len(HEADER) + 1  # the events' table starts one column after the figures
TOP = 19  # rows above the figures, where the chart is: the first thing seen when the sheet opens, and printed


def add_night(book: Any, journals: Sequence[JournalView]) -> None:
    """Add the ``night`` sheet to ``book`` (an xlsxwriter workbook) when one journal with attempts made the
    output (a merge of several outputs has no single night)."""
    if len(journals) != 1:
        return
    night = read_night(journals[0], step=60)
    if not night.spans:
        return
    sheet = book.add_worksheet("night")
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)  # as wide as a page, as long as it takes
    minute = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet.set_column(0, 0, 17)
    sheet.set_column(1, len(HEADER) - 1, 11)
    header = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    sheet.set_row(TOP, 30)  # two lines: a spreadsheet does not grow a row to wrapped text it did not type
    sheet.write_row(TOP, 0, HEADER, header)
    for number, span in enumerate(night.spans, start=TOP + 1):
        sheet.write_datetime(number, 0, _utc(span.start), minute)
        rate = round(span.rate, 2) if span.sent else None
        latencies = [span.percentile(p) for p in PERCENTILES]
        sheet.write_row(number, 1, [*(span.answers[k] for k in KINDS), span.sent, rate, span.window or None])
        sheet.write_row(number, 1 + len(KINDS) + 3, [None if value is None else round(value, 3) for value in latencies])
    sheet.set_column(EVENTS_AT, EVENTS_AT, 17)
    sheet.set_column(EVENTS_AT + 2, EVENTS_AT + 2, 50)
    sheet.write_row(TOP, EVENTS_AT, ["event (UTC)", "kind", "why"], header)
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for number, event in enumerate(night.events, start=TOP + 1):
        sheet.write_datetime(number, EVENTS_AT, _utc(event.at), when)
        sheet.write_string(number, EVENTS_AT + 1, event.kind)
        sheet.write_string(number, EVENTS_AT + 2, event.why)
    _chart(book, sheet, len(night.spans))


def _chart(book: Any, sheet: Any, lines: int) -> None:
    """Answers per minute by kind (stacked columns) and the pace's rate (a line, right axis), over the figures.

    The minutes are categories, not a date axis: a spreadsheet's date axis counts whole days, and would pile a
    night's minutes into one column."""
    answers = book.add_chart({"type": "column", "subtype": "stacked"})
    for column, name in enumerate(KINDS, start=1):
        answers.add_series(
            {
                "name": ["night", TOP, column],
                "categories": ["night", TOP + 1, 0, TOP + lines, 0],
                "values": ["night", TOP + 1, column, TOP + lines, column],
                "fill": {"color": COLOURS[name]},
                "gap": 20,
            }
        )
    pace = book.add_chart({"type": "line"})
    rate = len(KINDS) + 2
    pace.add_series(
        {
            "name": ["night", TOP, rate],
            "categories": ["night", TOP + 1, 0, TOP + lines, 0],
            "values": ["night", TOP + 1, rate, TOP + lines, rate],
            "y2_axis": True,
            "line": {"color": "#1565c0", "width": 1.5},
        }
    )
    answers.combine(pace)
    answers.set_title({"name": "The night: answers per minute, and the pace"})
    answers.set_x_axis(
        {"name": "minute (UTC)", "text_axis": True, "num_format": "hh:mm", "num_font": {"rotation": -45}}
    )
    answers.set_y_axis({"name": "answers per minute"})
    pace.set_y2_axis({"name": "pace (requests/s)"})
    answers.set_legend({"position": "bottom"})
    answers.set_size({"width": 900, "height": 360})
    sheet.insert_chart(0, 0, answers, {"x_offset": 8, "y_offset": 4})


def _utc(moment: float) -> dt.datetime:
    """A Unix time as the naive UTC datetime a spreadsheet cell holds."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).replace(tzinfo=None)
