"""The night's report end to end (issue 27): a night against the simulator with faults, a quota pause ended by
Ctrl-C, a second pause ended by SIGKILL, and a resume once the credit is back, on both transports. The page's
totals are the journal's and the simulator's log's; its marks are drawn where the pauses and stops happened."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import batchgen
from batchgen.journal import Journal, journal_path
from batchgen.night import KINDS, LOST, Night, read_night
from batchgen.paths import real
from batchgen.simulator import Faults, ProviderLimits

from ..support.helpers import songs, write_xlsx
from ..support.runs import read_sheet, spawn

T = TypeVar("T")
ROWS, QUOTA = 60, 25
FAULTS = Faults(rate_429=0.08, rate_5xx=0.05, rate_accept_drop=0.03, rate_drop=0.03, seed=27)
SVG = "{http://www.w3.org/2000/svg}"
TOLERANCE = 0.5  # seconds between a moment the test saw and the journal's record of it


def until(found: Callable[[], T | None], timeout: float = 60.0) -> T:
    """What ``found`` returns once it returns something."""
    deadline = time.monotonic() + timeout
    while (value := found()) is None:
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return value


def pauses(journal: Path, count: int) -> float | None:
    """When the ``count``-th pause was kept, once it is on disk (read beside the running child)."""
    db = sqlite3.connect(journal)
    try:
        found = [at for (at,) in db.execute("SELECT at FROM events WHERE kind = 'pause' ORDER BY at")]
    except sqlite3.OperationalError:  # not created yet
        return None
    finally:
        db.close()
    return found[count - 1] if len(found) >= count else None


def simulated_kind(entry: dict[str, Any]) -> str:
    """The kind of an answer as the simulator's log tells it."""
    if entry.get("status") == 429:
        return "refused"
    if entry["fault"] in ("drop", "accept_drop"):
        return "ambiguous"
    return "accepted" if entry.get("status") == 200 else "failed"


def table(page: str, name: str) -> dict[str, int]:
    """A two-column table of the page (``totals``, ``states``) as a dict."""
    body = re.search(rf'<table id="{name}">(.*?)</table>', page, re.S)
    assert body is not None
    return {key: int(value) for key, value in re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td></tr>", body[1])}


def xs(element: ET.Element) -> list[float]:
    """The x coordinates of the path drawn in ``element``."""
    path = element if element.tag == f"{SVG}path" else element.find(f".//{SVG}path")
    assert path is not None
    return [float(x) for x, _ in re.findall(r"(-?[\d.]+) (-?[\d.]+)", path.attrib["d"])]


def marks(page: str, night: Night, chart: str) -> dict[str, tuple[float, float]]:
    """The events drawn on ``chart``, by id, as the span of time each covers, read back from the SVG's geometry."""
    svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + len("</svg>")])
    groups = {g.attrib["id"]: g for g in svg.iter(f"{SVG}g") if "id" in g.attrib}
    left, right = min(xs(groups[f"{chart}-plot"])), max(xs(groups[f"{chart}-plot"]))
    seconds = len(night.spans) * night.step

    def moment(x: float) -> float:
        return night.first + (x - left) / (right - left) * seconds

    return {
        name.removeprefix(f"{chart}-"): (moment(min(xs(g))), moment(max(xs(g))))
        for name, g in groups.items()
        if name.startswith(f"{chart}-event-")
    }


def test_a_night_with_faults_a_pause_a_stop_and_a_kill_is_drawn_as_it_happened(
    tmp_path: Path, start_simulator, cli, transport: str
) -> None:
    server = start_simulator(latency_ms=20, faults=FAULTS, limits=ProviderLimits(quota=QUOTA))
    source, output = write_xlsx(tmp_path, songs(ROWS)), tmp_path / "out.xlsx"
    journal = journal_path(real(output))
    args = ["run", source, "-o", output, "--base-url", server.url, "--transport", transport]
    args += ["--concurrency", "4", "--quiet"]

    first = spawn(*args)  # the credit runs out: the run waits for the provider's hour, Ctrl-C ends it
    until(lambda: pauses(journal, 1))
    time.sleep(1.0)
    interrupted = time.time()
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 130, err
    received = list(server.simulator.received)
    second = spawn(*args)  # no credit yet: it waits again, and is killed
    until(lambda: pauses(journal, 2))
    time.sleep(1.0)
    killed = time.time()
    second.kill()
    second.communicate(timeout=30)
    quota = [entry for entry in received if entry["fault"] == "quota"]
    second_quota = [entry for entry in server.simulator.received[len(received) :] if entry["fault"] == "quota"]
    server.simulator.limits.quota = None  # the credit is back
    third = spawn(*args)
    _, err = third.communicate(timeout=120)
    assert third.returncode in (0, 1), err
    assert f"the night, drawn: batchgen report {output}\n" in err

    reported = cli("report", output)
    assert reported.code == 0, reported.err
    page = (tmp_path / "out.night.html").read_text(encoding="utf-8")
    with Journal.open(journal) as kept:
        night = read_night(kept)
        states = dict(kept.counts(kept.latest_run()))
        done = {key for (key,) in kept.db.execute("SELECT key FROM rows WHERE state = 'done'")}
    journaled = Counter({kind: 0 for kind in KINDS})
    journaled.update(night.totals)
    simulated = Counter({kind: 0 for kind in KINDS})
    simulated.update(simulated_kind(entry) for entry in server.simulator.received)
    frame = batchgen.attempts(output)
    assert table(page, "totals") == dict(journaled) == dict(simulated)
    assert Counter(frame["kind"]) + Counter() == journaled + Counter() and len(frame) == night.attempts
    assert table(page, "states") == {state: count for state, count in states.items() if count}
    minutes = [line for line in read_sheet(output, "night") if line["minute (UTC)"]]  # not the events' lines
    assert {kind: sum(int(line[kind]) for line in minutes) for kind in KINDS} == dict(journaled)
    assert states["done"] + states["unknown"] == ROWS
    assert night.totals["accepted"] == len(done) == states["done"]
    billed = {entry["idempotency_key"] for entry in server.simulator.accepted}
    faults = Counter(entry["fault"] for entry in server.simulator.received)
    assert done <= billed and len(billed - done) == faults["accept_drop"]  # accepted, but the answer was lost

    events = [(event.run, event.kind) for event in night.events]
    assert events == [
        (1, "start"),
        (1, "pause"),
        (1, "signal"),
        (2, "resume"),
        (2, "pause"),
        (2, "lost"),
        (3, "resume"),
        (3, "end"),
    ]
    _, pause, stop, _, second_pause, lost, last_resume, _ = night.events
    assert abs(pause.at - quota[0]["done"]) < TOLERANCE  # when the provider first said "quota exceeded"
    assert abs(stop.at - interrupted) < TOLERANCE and stop.why == "interrupted"
    assert abs(second_pause.at - second_quota[0]["done"]) < TOLERANCE
    assert lost.why == LOST and second_pause.at <= lost.at < killed  # last heard of before the kill
    assert night.pause_end(pause) == stop.at and night.pause_end(second_pause) == last_resume.at
    for chart in ("answers", "pace", "latency"):
        drawn = marks(page, night, chart)
        assert len(drawn) == len(night.events)
        for number, event in enumerate(night.events):
            begin, finish = drawn[f"event-{number}-{event.kind}"]
            assert abs(begin - event.at) < 0.05, (chart, event)
            ends = night.pause_end(event) if event.kind == "pause" else event.at
            assert abs(finish - ends) < 0.05, (chart, event)
