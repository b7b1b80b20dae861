"""The report page in a real headless browser with the network off (issue 27): nothing fetched, no console error,
its charts drawn and a screenshot that is not blank; the same for a 100,000-attempt night, painted in under 2 s
from a file under 5 MB."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import batchgen
from batchgen.journal import Journal, journal_path
from batchgen.night import read_night
from batchgen.paths import real
from batchgen.simulator import Faults, ProviderLimits

from ..support.browser import Browser
from ..support.helpers import songs, write_xlsx
from ..support.nights import long_night
from ..support.runs import API_KEY

# What a reader's browser drew: the charts' SVG, each plot's frame, the events' marks, the paths with an area.
DRAWN = """(() => {
  const box = e => { const b = e.getBoundingClientRect(); return [b.width, b.height]; };
  return {
    svgs: [...document.querySelectorAll("svg")].map(s => [...box(s), s.querySelectorAll("path").length]),
    plots: ["answers", "pace", "latency"].map(c => document.getElementById(c + "-plot")).map(g => g && box(g)),
    marks: document.querySelectorAll("[id*='-event-']").length,
    painted: [...document.querySelectorAll("svg path")].filter(p => {
      const b = p.getBBox(); return b.width > 0 || b.height > 0;
    }).length,
    totals: document.querySelectorAll("#totals tr").length,
  };
})()"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(tmp_path / "profile")
    try:
        yield opened
    finally:
        opened.close()


def seen(browser: Browser, page: Path, events: int) -> float:
    """Open ``page``, check what the browser drew, and return the seconds to its first painted frame."""
    seconds = browser.open(page)
    drawn: dict[str, Any] = browser.evaluate(DRAWN)
    assert browser.errors() == []
    assert browser.requests() == [page.resolve().as_uri()]  # nothing else was fetched, or even tried
    [(width, height, paths)] = drawn["svgs"]
    assert width > 600 and height > 400 and paths > 50
    assert all(plot is not None and plot[0] > 300 and plot[1] > 100 for plot in drawn["plots"]), drawn["plots"]
    assert drawn["marks"] == 3 * events and drawn["painted"] > 50 and drawn["totals"] == 5
    image = Image.open(io.BytesIO(browser.screenshot())).convert("RGB")
    colours = image.getcolors(image.width * image.height)
    assert colours is not None and len(colours) > 100  # text, four kinds, lines: not a blank page
    assert max(count for count, _ in colours) < 0.97 * image.width * image.height  # the page is white around them
    return seconds


def test_the_page_of_a_night_opens_offline_with_its_charts_drawn(
    tmp_path: Path, start_simulator, browser: Browser
) -> None:
    server = start_simulator(latency_ms=20, faults=Faults(rate_429=0.1, rate_5xx=0.05, seed=5), limits=ProviderLimits())
    output = tmp_path / "out.xlsx"
    batchgen.run(write_xlsx(tmp_path, songs(40)), output, base_url=server.url, api_key=API_KEY, concurrency=4)
    page = batchgen.report(output)
    with Journal.open(journal_path(real(output))) as journal:
        events = len(read_night(journal).events)
    assert events >= 2  # the run's start and end, at least, are on the page's timeline
    assert seen(browser, page, events) > 0  # drawn offline, no console errors (``seen``), a frame painted


def test_a_100000_attempt_night_is_painted_in_under_2_s_from_under_5_mb(tmp_path: Path, browser: Browser) -> None:
    output = tmp_path / "night.xlsx"
    long_night(output, 100_000)
    started = time.monotonic()
    page = batchgen.report(output, tmp_path / "night.html")
    assert time.monotonic() - started < 10  # drawn per minute, never a mark per attempt
    assert page.stat().st_size < 5_000_000
    assert seen(browser, page, events=5) < 2.0
