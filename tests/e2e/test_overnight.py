"""Unattended runs: chaos with kill -9 and misuse between runs, Retry-After, the pace against a real limit,
budgets, signals, the log file, status and export, shards."""

from __future__ import annotations

import itertools
import json
import random
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

from batchgen.journal import Journal, Record, journal_path
from batchgen.paths import real
from batchgen.simulator import Faults

from ..support.helpers import songs, write_xlsx
from ..support.runs import API_KEY, accepted_keys, read_sheet, run_args, spawn, wait_for


def test_chaos_with_kills_and_misuse_loses_nothing_and_bills_nothing_twice(
    tmp_path: Path, start_simulator, transport
) -> None:
    chaos = Faults(
        rate_429=0.05,
        rate_5xx=0.05,
        rate_drop=0.02,
        rate_accept_drop=0.02,
        rate_hang=0.01,
        rate_malformed=0.01,
        retry_after=0.2,
        hang_seconds=5,
        seed=7,
    )
    server = start_simulator(chaos, latency_ms=5)
    source, output = write_xlsx(tmp_path, songs(400)), tmp_path / "out.xlsx"
    renamed = tmp_path / "renamed.xlsx"
    dice = random.Random(11)

    def args(target: Path) -> list[str | Path]:
        return run_args(
            source,
            target,
            server.url,
            "--concurrency",
            "16",
            "--timeout",
            "1",
            "--max-attempts",
            "8",
            "--transport",
            transport,
        )

    for round_number in range(3):  # SIGKILL at random moments, each after some more rows were accepted
        child = spawn(*args(output))
        target = len(server.simulator.accepted) + dice.randint(20, 90)
        wait_for(lambda target=target: len(server.simulator.accepted) >= target, timeout=60)
        time.sleep(dice.random() * 0.05)
        child.kill()
        child.communicate()
        if round_number == 0:  # the user deletes the journal (a backup restored without it)
            journal_path(real(output)).unlink()
        if round_number == 1 and output.exists():  # ...and later renames the output: a second output
            output.rename(renamed)
    twin = tmp_path / "twin.xlsx"
    # The renamed output is another output (rows sent for out.xlsx are skipped), and a second run of the same
    # sheet to a third output starts at the same instant: each row goes to one of them.
    together = [spawn(*args(renamed)), spawn(*args(twin))]
    for finished in together:
        _, err = finished.communicate(timeout=120)
        assert finished.returncode in (0, 1), err
    for _ in range(4):  # then run the original output to the end
        final = spawn(*args(output))
        _, err = final.communicate(timeout=120)
        assert final.returncode in (0, 1), err
        with Journal.open(journal_path(real(output))) as journal:
            if not journal.to_send(journal.latest_run()):
                break
    else:
        raise AssertionError("the batch did not finish in 4 runs")

    keys = accepted_keys(server)
    assert max(Counter(keys).values()) == 1, "a row was accepted twice"
    states: dict[str, list[Record]] = defaultdict(list)
    outputs = [path for path in (output, renamed, twin) if journal_path(real(path)).exists()]
    for path in outputs:  # rows sent for the renamed output and the twin are in their own journals
        with Journal.open(journal_path(real(path))) as journal:
            for record in journal.records():
                states[record.key].append(record)
    assert len(states) == 400
    stored = {i for found in states.values() for record in found for i in record.job_ids}
    shown = {line["job_id"] for path in outputs for line in read_sheet(path, "jobs")}
    for entry in server.simulator.accepted:  # every job id the provider returned is stored, or its row is unknown
        found = states[entry["idempotency_key"]]
        assert set(entry["job_ids"]) <= stored or any(record.state == "unknown" for record in found), found
    assert stored <= shown, "a stored job id is missing from the outputs"
    ambiguous = {
        e["idempotency_key"]
        for e in server.simulator.received
        if e["fault"] in ("drop", "accept_drop", "malformed", "hang")
    }
    assert all(any(record.state in ("unknown", "done") for record in states[key]) for key in ambiguous)


def test_no_row_is_resent_before_its_retry_after(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["429"] * 4 + (["ok"] * 4 + ["429"]) * 4, retry_after=0.4))
    result = cli(
        *run_args(
            write_xlsx(tmp_path, songs(30)),
            tmp_path / "out.xlsx",
            server.url,
            "--concurrency",
            "4",
            "--max-attempts",
            "10",
        )
    )
    assert result.code == 0, result.err
    by_key = defaultdict(list)
    for entry in server.simulator.received:
        by_key[entry["idempotency_key"]].append(entry)
    refused = 0
    for attempts in by_key.values():
        for previous, following in itertools.pairwise(attempts):
            assert previous["fault"] == "429"
            assert following["at"] - previous["at"] >= 0.4
            refused += 1
    assert refused == 8


def test_the_pace_finds_a_hidden_limit_with_few_refusals(tmp_path: Path, start_simulator, cli, transport) -> None:
    """Behaviour, not speed: every row done, each once, few refusals. How fast the limit is used is a figure of
    the machine: benchmark C (``benchmarks/faults.py``) measures it, and tests/unit/test_pace.py's steady-limit test
    checks the rule on the fake clock."""
    server = start_simulator(rate_limit=40, latency_ms=20)
    result = cli(
        *run_args(
            write_xlsx(tmp_path, songs(300)),
            tmp_path / "out.xlsx",
            server.url,
            "--concurrency",
            "8",
            "--max-attempts",
            "20",
            "--transport",
            transport,
        )
    )
    assert result.code == 0, result.err
    received = server.simulator.received
    assert sorted(accepted_keys(server)) == sorted(set(accepted_keys(server))) and len(accepted_keys(server)) == 300
    # The pace heeds the limit: a client that did not would see most of its requests refused (8 in flight at
    # 20 ms try 400/s against 40/s). How few it spends (<= 3%) is benchmark C's figure: a busy machine moves it.
    throttled = sum(entry["fault"] == "429" for entry in received)
    assert throttled <= 0.2 * len(received), throttled


def test_rate_cap_is_a_hard_ceiling(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator()
    result = cli(*run_args(write_xlsx(tmp_path, songs(30)), tmp_path / "out.xlsx", server.url, "--rate", "20/s"))
    assert result.code == 0, result.err
    times = [entry["at"] for entry in server.simulator.received]
    assert times[-1] - times[0] >= 29 / 20 * 0.95
    assert all(sum(1 for t in times if start <= t < start + 1) <= 21 for start in times)


def test_max_requests_stops_and_a_rerun_continues(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator()
    source, output = write_xlsx(tmp_path, songs(10)), tmp_path / "out.xlsx"
    result = cli(*run_args(source, output, server.url, "--max-requests", "3"))
    assert result.code == 1
    assert (
        result.err.strip().splitlines()[-1]
        == "stopped: --max-requests 3 reached; run the same command again to continue"
    )
    assert len(server.simulator.received) == 3
    assert {line["state"] for line in read_sheet(output, "failed")} == {"pending"}
    assert cli(*run_args(source, output, server.url)).code == 0
    assert len(set(accepted_keys(server))) == len(accepted_keys(server)) == 10


def test_stop_after_finishes_in_flight_and_keeps_the_rest(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(latency_ms=200)
    output = tmp_path / "out.xlsx"
    started = time.monotonic()
    result = cli(
        *run_args(write_xlsx(tmp_path, songs(40)), output, server.url, "--concurrency", "2", "--stop-after", "1s")
    )
    assert time.monotonic() - started < 4
    assert result.code == 1 and "stopped: the time limit was reached" in result.err
    assert len(read_sheet(output, "jobs")) == 2 * len(server.simulator.accepted)
    assert len(server.simulator.accepted) == len(server.simulator.received) < 40


def test_second_ctrl_c_exits_at_once_with_a_consistent_journal(tmp_path: Path, start_simulator, transport) -> None:
    server = start_simulator(Faults(rate_hang=1.0, hang_seconds=60))
    output = tmp_path / "out.xlsx"
    child = spawn(
        *run_args(write_xlsx(tmp_path, songs(10)), output, server.url, "--concurrency", "3", "--transport", transport)
    )
    wait_for(lambda: len(server.simulator.received) == 3)
    child.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert child.poll() is None  # the first Ctrl-C waits for the requests in flight
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=10)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    states = Counter(line["state"] for line in read_sheet(output, "failed"))
    assert states == {"unknown": 3, "pending": 7}  # sent and unanswered: unknown; never sent: pending


def test_a_journal_from_another_input_is_refused_unless_forced(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    assert cli(*run_args(write_xlsx(tmp_path, songs(2), name="a.xlsx"), output, server.url)).code == 0
    other = write_xlsx(tmp_path, songs(2, start=100), name="b.xlsx")
    refused = cli(*run_args(other, output, server.url))
    assert refused.code == 2
    assert "was made from another input" in refused.err and "--force" in refused.err
    assert len(server.simulator.received) == 2
    assert cli(*run_args(other, output, server.url, "--force")).code == 0
    assert len(read_sheet(output, "jobs")) == 8


def test_log_file_has_one_line_per_attempt_without_key_or_lyrics(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["503", "400"]))
    log = tmp_path / "attempts.jsonl"
    result = cli(
        *run_args(
            write_xlsx(tmp_path, songs(2)), tmp_path / "out.xlsx", server.url, "--concurrency", "1", "--log-file", log
        )
    )
    assert result.code == 1
    text = log.read_text()
    assert API_KEY not in text and "lyrics 0" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert sorted((line["row"], line["attempt"], line["status"], line["outcome"]) for line in lines) == [
        (2, 1, 503, "retryable"),
        (2, 2, 200, "accepted"),
        (3, 1, 400, "rejected"),
    ]
    assert all(line["latency_ms"] >= 0 and line["row_key"] for line in lines)


def test_status_and_export(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["ok", "ok", "400"]))
    output = tmp_path / "out.xlsx"
    assert cli(*run_args(write_xlsx(tmp_path, songs(3)), output, server.url, "--concurrency", "1")).code == 1
    status = cli("status", output)
    assert status.code == 0
    assert "done 2  failed 1  unknown 0  pending 0  in_flight 0  skipped 0  invalid 0" in status.out
    assert "row 4  failed  HTTP 400: The provider rejected this request" in status.out
    before = read_sheet(output, "jobs")
    output.unlink()
    assert cli("export", output).code == 0
    assert read_sheet(output, "jobs") == before
    missing = cli("status", tmp_path / "other.xlsx")
    assert missing.code == 2 and "no journal found" in missing.err


def test_shards_by_row_range_merge_into_one_output(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(10))
    first, second, merged = tmp_path / "part1.xlsx", tmp_path / "part2.xlsx", tmp_path / "all.xlsx"
    assert cli(*run_args(source, first, server.url, "--rows", "2-6")).code == 0
    assert cli(*run_args(source, second, server.url, "--rows", "7-")).code == 0
    assert len(server.simulator.accepted) == 10
    assert cli("export", merged, "--merge", first, "--merge", second).code == 0
    jobs = read_sheet(merged, "jobs")
    assert [line["row"] for line in jobs] == [row for row in range(2, 12) for _ in range(2)]
    assert {line["job_id"] for line in jobs} == {i for entry in server.simulator.accepted for i in entry["job_ids"]}
    assert cli("export", merged, "--merge", first, "--merge", second).code == 0  # merging again adds nothing
    assert len(read_sheet(merged, "jobs")) == 20
    assert not list(tmp_path.glob("all.xlsx*.lock"))  # a merged output leaves no lock file behind
    empty = cli(*run_args(source, tmp_path / "none.xlsx", server.url, "--rows", "50-60"))
    assert empty.code == 2 and "has no data rows between 50 and 60" in empty.err
