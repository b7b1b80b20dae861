"""``batchgen report``: the night of an output as one self-contained HTML page.

The charts are drawn by matplotlib as SVG inlined in the page: no script, no font or style sheet fetched, so the
page opens offline, prints, and stays small (the night is drawn in spans, never one mark per attempt).
"""

from __future__ import annotations

import datetime as dt
import html
import io
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from .errors import UsageError
from .files import atomic_write
from .journal import journal_path
from .night import COLOURS, KINDS, PERCENTILES, Decision, Night, decisions, read_night
from .paths import real, refuse_same
from .status import open_journal

if TYPE_CHECKING:
    from matplotlib.axes import Axes

T = TypeVar("T")
GENERATOR = '<meta name="generator" content="batchgen">'  # how a page batchgen wrote is known again
NAMED = 10  # rows named in a line of the decisions' table
MARKS = {
    "start": "#555555",
    "resume": "#1565c0",
    "pause": "#ef6c00",
    "stop": "#b71c1c",
    "signal": "#b71c1c",
    "end": "#555555",
    "lost": "#b71c1c",
}


def page_path(output: Path) -> Path:
    """Where the page goes by default: ``results.xlsx`` -> ``results.night.html``."""
    return output.with_suffix(".night.html")


def write_report(output: str | Path, path: str | Path | None = None) -> Path:
    """Write the night of ``output`` to ``path`` (by default :func:`page_path`); return where it went.

    Never the output, its journal, its input or batchgen's ledger (by any name), nor any file that is not a page
    batchgen wrote: ``-o`` names where the page goes, not a file to give up.
    """
    target = real(path) if path is not None else page_path(real(output))
    with open_journal(output) as journal:
        source = journal.run_info(journal.latest_run())[0]
        refuse_same(target, "path", output=output, journal=journal_path(real(output)), input=source or None)
        if target.is_file() and not _written_here(target):
            raise UsageError(
                f"{target} exists and is not a page batchgen wrote; move it away or choose another file",
                setting="path",
            )
        night = read_night(journal)
        rows = decisions(journal, Path(output))
    text = render(night, rows, Path(output).name)
    atomic_write(target, lambda handle: _put(handle, text))
    return target


def _written_here(path: Path) -> bool:
    """Whether ``path`` is a page batchgen wrote (its head says so; pages from before the mark have its title)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return GENERATOR.encode() in head or b"<title>The night of " in head


def render(night: Night, rows: list[Decision], title: str) -> str:
    """The page: totals, the three charts with the night's events marked, the events and the rows to decide."""
    import matplotlib

    matplotlib.use("svg")
    charts = _charts(night) if night.spans else "<p>No request was sent yet.</p>"
    totals = "".join(f"<tr><td>{k}</td><td>{night.totals[k]}</td></tr>" for k in KINDS)
    states = "".join(f"<tr><td>{_e(s)}</td><td>{n}</td></tr>" for s, n in night.states.items())
    events = "".join(
        f"<tr><td>{_clock(e.at)}</td><td>{_e(e.kind)}</td><td>{_e(e.why)}</td>"
        f"<td>{_clock(e.until) if e.until else ''}</td></tr>"
        for e in night.events
    )
    decide = _decisions(rows)
    span = "second" if night.step == 1 else "minute"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{GENERATOR}<title>The night of {_e(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }} table {{ border-collapse: collapse; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }}
code {{ font-size: 0.9em; }} .chart svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>The night of {_e(title)}</h1>
<p>Input {_e(night.source)}; from {_clock(night.first)} to {_clock(night.last)} (UTC), {night.attempts} requests,
drawn per {span}.</p>
<h2>Answers</h2><table id="totals"><tr><th>kind</th><th>answers</th></tr>{totals}</table>
<h2>Rows</h2><table id="states"><tr><th>state</th><th>rows</th></tr>{states}</table>
<div class="chart" id="charts">{charts}</div>
<h2>Events</h2><table id="events"><tr><th>at (UTC)</th><th>event</th><th>why</th><th>until</th></tr>{events}</table>
<h2>Rows that need a decision</h2>
<table id="decisions"><tr><th>state</th><th>rows</th><th>which</th><th>why</th><th>command</th></tr>{decide}</table>
</body></html>
"""


def _decisions(rows: list[Decision]) -> str:
    """The rows to decide on, one line per state, reason and command (the first few rows named): a night with
    20,000 unknown rows is still a short table and a small page; the failed sheet lists every row."""
    groups: dict[tuple[str, str, str], list[Decision]] = {}
    for row in rows:
        groups.setdefault((row.state, row.reason, row.command), []).append(row)
    lines = []
    for (state, reason, command), members in groups.items():
        which = ", ".join(f"{row.label} ({row.title})" for row in members[:NAMED])
        if len(members) > NAMED:
            which += f" and {len(members) - NAMED} more: the failed sheet lists them"
        lines.append(
            f"<tr><td>{_e(state)}</td><td>{len(members)}</td><td>{_e(which)}</td><td>{_e(reason)}</td>"
            f"<td><code>{_e(command)}</code></td></tr>"
        )
    return "".join(lines)


def _charts(night: Night) -> str:
    """Answers per span by kind; the pace beside what got through; latency percentiles: one SVG, shared time."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    times = [_utc(span.start) for span in night.spans] + [_utc(night.spans[-1].start + night.step)]
    figure, (answers, pace, latency) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    figure.subplots_adjust(left=0.07, right=0.93, top=0.96, bottom=0.06, hspace=0.22)  # not a layout engine: 0.5 s
    try:
        unit = "s" if night.step == 1 else "min"
        bottom = [0] * len(times)
        for name in KINDS:
            counts = _closed([span.answers[name] for span in night.spans])
            answers.fill_between(
                times,
                bottom,
                [b + c for b, c in zip(bottom, counts, strict=True)],
                step="post",
                color=COLOURS[name],
                label=name,
                linewidth=0,
            )
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        answers.set_ylabel(f"answers per {unit}")
        answers.set_title("Answers by kind")
        pace.step(
            times,
            _closed([s.answers["accepted"] / night.step for s in night.spans]),
            where="post",
            color="#2e7d32",
            label="accepted per second",
        )
        pace.step(
            times, _closed([s.rate or None for s in night.spans]), where="post", color="#1565c0", label="pace's rate"
        )
        pace.set_ylabel("requests per second")
        pace.set_title("The pace beside what got through")
        window = pace.twinx()
        window.step(
            times,
            _closed([s.window or None for s in night.spans]),
            where="post",
            color="#777777",
            linestyle="--",
            label="window",
        )
        window.step(
            times,
            _closed([s.flight or None for s in night.spans]),
            where="post",
            color="#aaaaaa",
            linestyle=":",
            label="in flight",
        )
        window.set_ylabel("requests in flight")
        pace.legend(loc="upper left", fontsize="small")
        window.legend(loc="upper right", fontsize="small")
        for p, style in zip(PERCENTILES, ("-", "--", ":"), strict=True):
            latency.step(
                times, _closed([s.percentile(p) for s in night.spans]), where="post", linestyle=style, label=f"p{p}"
            )
        latency.set_ylabel("latency (s)")
        latency.set_title("Latency percentiles")
        latency.set_xlabel("UTC")
        latency.set_xlim(times[0], times[-1])
        clock = "%H:%M:%S" if night.step == 1 else "%H:%M"
        latency.xaxis.set_major_formatter(FuncFormatter(lambda day, _: f"{_utc(day * 86400.0):{clock}}"))
        latency.legend(loc="upper left", fontsize="small")
        answers.legend(loc="upper left", fontsize="small", ncols=len(KINDS))
        for name, axes in (("answers", answers), ("pace", pace), ("latency", latency)):
            axes.patch.set_gid(f"{name}-plot")  # the plot's frame: a reader maps a mark's x back to its time
            _mark(axes, name, night)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    finally:
        plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _mark(axes: Axes, chart: str, night: Night) -> None:
    """The night's events on a chart: a pause as a shaded span until it ended, others as lines, named on the first
    chart. Each mark's id names its chart, its place among the events and its kind (``answers-event-3-pause``)."""
    for number, event in enumerate(night.events):
        colour, gid = MARKS.get(event.kind, "#555555"), f"{chart}-event-{number}-{event.kind}"
        at = _day(event.at)
        if event.kind == "pause":
            axes.axvspan(at, _day(night.pause_end(event)), color=colour, alpha=0.15, gid=gid)
        else:
            axes.axvline(at, color=colour, linewidth=1, linestyle="--", gid=gid)
        if chart == "answers":
            place = axes.get_xaxis_transform()  # x in time, y from the plot's bottom (0) to its top (1)
            label = {"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1}
            axes.text(
                at, 0.98, event.kind, transform=place, rotation=90, va="top", ha="right", color=colour, bbox=label
            )


def _closed(values: list[T]) -> list[T]:
    """A series with its last value again at the night's end: a step drawn "post" shows the last span too."""
    return [*values, values[-1]]


def _day(moment: float) -> float:
    """A Unix time on matplotlib's date axis (days since its epoch, 1970)."""
    return moment / 86400.0


def _put(handle: IO[bytes], text: str) -> None:
    handle.write(text.encode())


def _utc(moment: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(moment, dt.UTC)


def _clock(moment: float) -> str:
    return f"{_utc(moment):%Y-%m-%d %H:%M:%S}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
