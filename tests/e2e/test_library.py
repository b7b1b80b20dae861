"""The library without the command line: DataFrames in and out, exceptions with data, event loops, no side
effects on the host program (signals, stdout, the key)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import threading
from pathlib import Path

import pandas as pd
import pytest

import batchgen
from batchgen.results import State
from batchgen.simulator import Faults

from ..support.runs import API_KEY, accepted_ids, wait_for


def counted(**states: int) -> dict[str, int]:
    """``RunResult.counts`` as it must be: every state, 0 where none."""
    return {**dict.fromkeys(State, 0), **states}


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Title": ["Alpha", "Beta", "Gamma"],
            "Tags": ["pop", "rock", "jazz"],
            "Lyrics": ["la", None, float("nan")],
            "Instrumental": [False, True, True],
            "Weirdness": [0.5, float("nan"), pd.NA],
            "Transform": ["cover", None, None],
            "Riff ID": ["r1", None, None],
            "Released": [pd.NaT, pd.Timestamp("2026-05-01"), pd.NaT],
        },
        index=["cat-1", "cat-2", "cat-3"],
    )


def test_a_dataframe_in_and_dataframes_out(tmp_path: Path, start_simulator, transport) -> None:
    server = start_simulator()
    result = batchgen.run(frame(), tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY, transport=transport)
    assert result.ok and result.counts == counted(done=3)
    bodies = {entry["body"]["title"]: entry["body"] for entry in server.simulator.accepted}
    assert bodies["Alpha"] == {
        "model": "FUZZ-1.0",
        "title": "Alpha",
        "tag": "pop",
        "lyrics": "la",
        "instrumental": False,
        "morph": {"riff_id": "r1", "transform": "cover", "normalized_weirdness": 0.5},
    }
    assert bodies["Beta"] == {"model": "FUZZ-1.0", "title": "Beta", "tag": "rock", "lyrics": "", "instrumental": True}
    jobs = result.jobs
    assert isinstance(jobs, pd.DataFrame) and len(jobs) == 6
    assert list(jobs["row"].unique()) == ["cat-1", "cat-2", "cat-3"]  # the DataFrame's own index labels
    assert set(jobs["job_id"]) == accepted_ids(server)
    assert list(jobs["Released"]) == ["", "", "2026-05-01T00:00:00", "2026-05-01T00:00:00", "", ""]  # never "NaT"
    assert result.failed.empty and list(result.failed.columns) == ["row", "title", "state", "error"]


def test_a_list_of_dicts(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    rows = [{"title": "A", "tag": "pop", "lyrics": "la"}, {"title": "B", "tag": "pop", "lyrics": "la", "Notes": "x"}]
    result = batchgen.run(rows, tmp_path / "out.csv", base_url=server.url, api_key=API_KEY)
    assert result.ok and len(server.simulator.accepted) == 2
    assert list(result.jobs["Notes"]) == ["", "", "x", "x"]


def test_an_invalid_frame_raises_every_error_and_sends_nothing(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    bad = frame()
    bad.loc["cat-2", "Title"] = None
    bad.loc["cat-1", "Weirdness"] = 4.0
    with pytest.raises(batchgen.InvalidInputError) as raised:
        batchgen.run(bad, tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY)
    assert [(e.row, e.column, e.field) for e in raised.value.errors] == [
        ("cat-1", "Weirdness", "normalized_weirdness"),
        ("cat-2", "Title", "title"),
    ]
    assert str(raised.value.errors[0]) == (
        "index 'cat-1', column 'Weirdness', normalized_weirdness: 4 is above the maximum 1; did you mean 0.04?"
    )
    assert server.simulator.received == [] and not (tmp_path / "out.xlsx").exists()


def test_resume_through_the_library(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    source = pd.DataFrame({"title": [f"S{i}" for i in range(10)], "tag": "pop", "lyrics": "la"})
    first = batchgen.run(source, tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY, max_requests=4)
    assert not first.ok and first.counts == counted(done=4, pending=6) and first.stopped == "`max_requests` 4 reached"
    second = batchgen.run(source, tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY)
    assert second.ok and second.requests == 6 and len(server.simulator.accepted) == 10


@pytest.mark.parametrize("said", ["no", "False", "0", 0, None])
def test_a_yes_or_no_that_is_not_a_bool_is_refused_and_nothing_is_billed_again(
    tmp_path: Path, start_simulator, said: object
) -> None:
    """``allow_resend="no"`` is a true string: taken as yes, it sent every row again to a second output."""
    server = start_simulator()
    source = pd.DataFrame({"title": ["E1", "E2"], "tag": ["pop", "rock"], "lyrics": ["x", "y"]})
    assert batchgen.run(source, tmp_path / "q1.xlsx", base_url=server.url, api_key=API_KEY).ok
    with pytest.raises(batchgen.UsageError) as refused:
        batchgen.run(source, tmp_path / "q2.xlsx", base_url=server.url, api_key=API_KEY, allow_resend=said)  # type: ignore[arg-type]
    assert str(refused.value) == f"allow_resend: {said!r} is not True or False"
    assert len(server.simulator.accepted) == 2 and not (tmp_path / "q2.xlsx").exists()


def test_a_fatal_answer_is_an_exception_with_its_status_not_an_exit(
    tmp_path: Path, start_simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_simulator()
    with pytest.raises(batchgen.FatalAPIError) as raised:
        batchgen.run(frame(), tmp_path / "out.xlsx", base_url=server.url, api_key="sk-wrong-key-0123456789")
    assert raised.value.status == 401 and raised.value.message == "HTTP 401: Invalid API key"
    assert raised.value.result is not None and raised.value.result.counts["pending"] == 3
    assert capsys.readouterr().out == ""


def test_run_works_inside_a_running_event_loop(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()

    async def notebook_cell() -> batchgen.RunResult:
        return batchgen.run(frame(), tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY)

    assert asyncio.run(notebook_cell()).ok


def test_arun_is_awaited(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    result = asyncio.run(
        batchgen.arun(frame(), tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY, transport="aiohttp")
    )
    assert result.counts == counted(done=3) and result.counts["failed"] == 0 and list(result.counts) == list(State)


def test_the_host_program_is_left_as_it_was(
    tmp_path: Path, start_simulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_simulator(Faults(script=["503", "accept_drop", "ok"]))
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with caplog.at_level(logging.DEBUG):
        result = batchgen.run(
            frame(), tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY, concurrency=1, progress=False
        )
        with pytest.raises(batchgen.UsageError) as refused:
            batchgen.run(frame(), tmp_path / "o2.xlsx", base_url="https://exa..mple.com", api_key=API_KEY)
    assert {signum: signal.getsignal(signum) for signum in handlers} == handlers
    assert capsys.readouterr().out == ""
    assert result.counts == counted(done=2, unknown=1)
    texts = [
        repr(result),
        str(result),
        repr(refused.value),
        str(refused.value),
        *caplog.messages,
        *(str(record.__dict__) for record in caplog.records),
    ]
    assert all(API_KEY not in text for text in texts)
    assert refused.value.setting == "base_url"


def test_keyboard_interrupt_cancels_the_batch_cleanly(tmp_path: Path, start_simulator) -> None:
    server = start_simulator(latency_ms=200)
    source = pd.DataFrame({"title": [f"S{i}" for i in range(40)], "tag": "pop", "lyrics": "la"})

    def interrupt_once_sending() -> None:  # mid-run however fast the machine: once the first request arrived
        wait_for(lambda: server.simulator.received)
        signal.raise_signal(signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_sending)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        batchgen.run(source, tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY, concurrency=2)
    interrupter.join()
    resumed = batchgen.run(source, tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY)
    assert resumed.counts["done"] + resumed.counts["unknown"] == 40 and resumed.counts["done"] >= 38
    keys = [entry["idempotency_key"] for entry in server.simulator.accepted]
    assert len(set(keys)) == len(keys)  # the interrupted requests were journaled: none was sent again


def test_a_timeout_stop_counts_every_row_it_left_unknown(tmp_path: Path, start_simulator) -> None:
    server = start_simulator(latency_ms=1500)
    source = pd.DataFrame({"title": [f"S{i}" for i in range(30)], "tag": "pop", "lyrics": "la"})
    with pytest.raises(batchgen.NoAnswerError) as raised:
        batchgen.run(source, tmp_path / "out.xlsx", base_url=server.url, api_key=API_KEY, concurrency=4, timeout=0.5)
    result = raised.value.result
    assert result is not None and result.stopped == str(raised.value)
    assert raised.value.unknown == result.counts["unknown"] == len(server.simulator.received) > 4
    assert f"creating jobs for these {result.counts['unknown']} rows (now unknown)" in str(raised.value)


def test_the_front_door_shows_every_option_typed() -> None:
    arun, run = inspect.signature(batchgen.arun), inspect.signature(batchgen.run)
    assert list(run.parameters) == list(arun.parameters)
    options = [p for p in run.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert len(options) > 25 and all(p.annotation is not inspect.Parameter.empty for p in options)
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in run.parameters.values())


def test_progress_is_a_callback_the_caller_draws(tmp_path: Path) -> None:
    seen: list[batchgen.Progress] = []
    rows = [{"title": f"Song {i}", "tag": "pop", "lyrics": "la"} for i in range(5)]
    result = batchgen.run(rows, tmp_path / "out.xlsx", simulate=True, progress=seen.append)
    assert result.ok and seen
    assert [p.finished for p in seen] == [1, 2, 3, 4, 5] and seen[-1].done == 5 and seen[-1].total == 5
