"""The workbook's ``night`` sheet: the night per minute and a native chart of it, for a producer who only opens
the workbook. Drawn by xlsxwriter into the workbook :mod:`batchgen.writer` is writing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .journal import JournalView
from .night import KINDS, PERCENTILES, read_night

HEADER = ["minute (UTC)", *KINDS, "sent", "pace (requests/s)", "window", *(f"p{p} latency (s)" for p in PERCENTILES)]
EVENTS_AT = len(HEADER) + 1  # the events' table starts one column after the figures


def add_night(book: Any, journals: Sequence[JournalView]) -> None:
    """Add the ``night`` sheet to ``book`` (an xlsxwriter workbook) when one journal with attempts made the
    output (a merge of several outputs has no single night)."""
    if len(journals) != 1:
        return
    night = read_night(journals[0], step=60)
    if not night.spans:
        return
    sheet = book.add_worksheet("night")
    minute = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet.set_column(0, 0, 17)
    sheet.set_column(1, len(HEADER) - 1, 11)
    sheet.freeze_panes(1, 0)
    sheet.write_row(0, 0, HEADER)
    for number, span in enumerate(night.spans, start=1):
        sheet.write_datetime(number, 0, _utc(span.start), minute)
        rate = round(span.rate, 2) if span.sent else None
        latencies = [span.percentile(p) for p in PERCENTILES]
        sheet.write_row(number, 1, [*(span.answers[k] for k in KINDS), span.sent, rate, span.window or None])
        sheet.write_row(number, 1 + len(KINDS) + 3, [None if value is None else round(value, 3) for value in latencies])
    sheet.set_column(EVENTS_AT, EVENTS_AT, 17)
    sheet.set_column(EVENTS_AT + 2, EVENTS_AT + 2, 50)
    sheet.write_row(0, EVENTS_AT, ["event (UTC)", "kind", "why"])
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for number, event in enumerate(night.events, start=1):
        sheet.write_datetime(number, EVENTS_AT, _utc(event.at), when)
        sheet.write_string(number, EVENTS_AT + 1, event.kind)
        sheet.write_string(number, EVENTS_AT + 2, event.why)
    _chart(book, sheet, len(night.spans))


def _chart(book: Any, sheet: Any, lines: int) -> None:
    """Answers per minute by kind (stacked columns) and the pace's rate (a line, right axis)."""
    answers = book.add_chart({"type": "column", "subtype": "stacked"})
    colours = dict(zip(KINDS, ("#2e7d32", "#f9a825", "#c62828", "#6a1b9a"), strict=True))
    for column, name in enumerate(KINDS, start=1):
        answers.add_series(
            {
                "name": ["night", 0, column],
                "categories": ["night", 1, 0, lines, 0],
                "values": ["night", 1, column, lines, column],
                "fill": {"color": colours[name]},
                "gap": 20,
            }
        )
    pace = book.add_chart({"type": "line"})
    rate = len(KINDS) + 2
    pace.add_series(
        {
            "name": ["night", 0, rate],
            "categories": ["night", 1, 0, lines, 0],
            "values": ["night", 1, rate, lines, rate],
            "y2_axis": True,
            "line": {"color": "#1565c0", "width": 1.5},
        }
    )
    answers.combine(pace)
    answers.set_title({"name": "The night: answers per minute, and the pace"})
    answers.set_x_axis({"name": "minute (UTC)", "date_axis": True, "num_format": "hh:mm"})
    answers.set_y_axis({"name": "answers per minute"})
    pace.set_y2_axis({"name": "pace (requests/s)"})
    answers.set_legend({"position": "bottom"})
    answers.set_size({"width": 900, "height": 360})
    sheet.insert_chart(1, EVENTS_AT + 4, answers)


def _utc(moment: float) -> dt.datetime:
    """A Unix time as the naive UTC datetime a spreadsheet cell holds."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).replace(tzinfo=None)
