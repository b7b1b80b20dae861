"""Credit runs out (issue #17): the provider answers every request 429 "quota exceeded" with a Retry-After of an
hour. The run says so at once with the time it would resume, stops now when that is past its time limit, and
ends cleanly on Ctrl-C while it waits; the rows not sent stay pending."""

from __future__ import annotations

import logging
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

import batchgen
from batchgen.simulator import QUOTA_MESSAGE, FixedWindow, ProviderLimits

from ..support.helpers import songs, write_xlsx
from ..support.runs import API_KEY, read_sheet, spawn

WAITING = re.compile(
    rf"warning: provider: {QUOTA_MESSAGE}; waiting until (\d\d):(\d\d) \(Retry-After 3600 s\); "
    r"Ctrl-C stops, progress is kept"
)


def run_args(source: Path, output: Path, url: str, transport: str, *extra: str) -> list[str | Path]:
    return ["run", source, "-o", output, "--base-url", url, "--transport", transport, "--concurrency", "2", *extra]


def test_past_the_time_limit_the_run_stops_at_once_and_keeps_the_rows_pending(
    tmp_path: Path, start_simulator, cli, transport
) -> None:
    server = start_simulator(limits=ProviderLimits(quota=3))
    output = tmp_path / "out.xlsx"
    started = time.monotonic()
    result = cli(*run_args(write_xlsx(tmp_path, songs(10)), output, server.url, transport, "--stop-after", "30m"))
    assert time.monotonic() - started < 60  # not the half hour of the time limit
    assert result.code == 1, result.err
    assert f"provider: {QUOTA_MESSAGE}" in result.err and "past the time limit" in result.err
    assert "stopped: provider: quota exceeded" in result.err
    assert Counter(line["state"] for line in read_sheet(output, "failed")) == {"pending": 7}
    assert len(server.simulator.accepted) == 3


def test_a_window_used_up_for_minutes_is_said_at_once_and_past_the_time_limit_stops_now(
    tmp_path: Path, start_simulator, cli, transport
) -> None:
    """10 requests per 10 minutes: the tenth answer says none is left until the reset. The run sat silent for its
    whole time limit (30 s), then said only that the time limit was reached."""
    server = start_simulator(limits=ProviderLimits(window=FixedWindow(10, 600)))
    output = tmp_path / "out.xlsx"
    started = time.monotonic()
    result = cli(*run_args(write_xlsx(tmp_path, songs(30)), output, server.url, transport, "--stop-after", "60s"))
    assert time.monotonic() - started < 30, result.err  # not the minute of the time limit
    assert result.code == 1, result.err
    assert re.search(
        r"provider: its window of requests is used up \(X-RateLimit-Remaining: 0\); waiting until \d\d:\d\d "
        r"\(X-RateLimit-Reset 6\d\d s\), past the time limit of this run",
        result.err,
    ), result.err
    assert len(server.simulator.accepted) == 10 and server.simulator.received[10:] == []
    assert Counter(line["state"] for line in read_sheet(output, "failed")) == {"pending": 20}


def test_without_a_time_limit_the_run_says_until_when_it_waits_and_ctrl_c_ends_it(
    tmp_path: Path, start_simulator, transport
) -> None:
    server = start_simulator(limits=ProviderLimits(quota=3))
    output = tmp_path / "out.xlsx"
    child = spawn(*run_args(write_xlsx(tmp_path, songs(10)), output, server.url, transport, "--quiet"))
    assert child.stderr is not None
    lines = []
    for line in child.stderr:  # the warning comes at once, with the time the provider gave
        lines.append(line)
        if WAITING.search(line):
            break
    else:
        raise AssertionError("".join(lines))
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert Counter(line["state"] for line in read_sheet(output, "failed")) == {"pending": 7}


def test_the_library_reports_the_wait_on_the_result_and_to_its_logger(
    tmp_path: Path, start_simulator, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_simulator(limits=ProviderLimits(quota=2))
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        result = batchgen.run(
            write_xlsx(tmp_path, songs(6)),
            tmp_path / "out.xlsx",
            base_url=server.url,
            api_key=API_KEY,
            stop_after=1800.0,
        )
    assert result.waiting is not None and result.waiting.message == QUOTA_MESSAGE
    assert result.waiting.retry_after == 3600
    assert result.stopped is not None and QUOTA_MESSAGE in result.stopped
    assert result.counts["done"] == 2 and result.counts["pending"] == 4
    assert any(QUOTA_MESSAGE in record.getMessage() for record in caplog.records)
