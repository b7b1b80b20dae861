"""Unattended runs: chaos with kill -9, Retry-After, adaptive pace, budgets, signals, journal hygiene, logs."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

from batchgen.journal import Journal, journal_path
from batchgen.simulator import Faults

from .conftest import API_KEY, accepted_keys, read_sheet, spawn
from .helpers import songs, write_xlsx
from .test_crash import wait_for


def run_args(source: Path, output: Path, url: str, *extra: str) -> list:
    return ["run", source, "-o", output, "--base-url", url, "--quiet", *extra]


def test_chaos_with_kills_loses_nothing_and_bills_nothing_twice(tmp_path: Path, start_simulator) -> None:
    chaos = Faults(rate_429=0.05, rate_5xx=0.05, rate_drop=0.02, rate_accept_drop=0.02, rate_hang=0.01,
                   rate_malformed=0.01, retry_after=0.2, hang_seconds=5, seed=7)
    server = start_simulator(chaos, latency_ms=5)
    source, output = write_xlsx(tmp_path, songs(500)), tmp_path / "out.xlsx"
    args = run_args(source, output, server.url, "--concurrency", "16", "--timeout", "1", "--max-attempts", "8")
    dice = random.Random(11)
    for _ in range(3):  # SIGKILL at random moments, each after some more rows were accepted
        child = spawn(*args)
        target = len(server.simulator.accepted) + dice.randint(20, 120)
        wait_for(lambda target=target: len(server.simulator.accepted) >= target, timeout=60)
        time.sleep(dice.random() * 0.05)
        child.kill()
        child.wait()
    for _ in range(4):  # then run it to the end: until nothing is left that a plain rerun would send
        final = spawn(*args)
        _, err = final.communicate(timeout=180)
        assert final.returncode in (0, 1), err
        with Journal.open(journal_path(output)) as journal:
            if not journal.to_send(journal.latest_run(), retry_unknown=False):
                break
    else:
        raise AssertionError("the batch did not finish in 4 runs")

    keys = accepted_keys(server)
    assert max(Counter(keys).values()) == 1, "a row was accepted twice"
    with Journal.open(journal_path(output)) as journal:
        records = {record.key: record for record in journal.records()}
    assert len(records) == 500
    assert {record.state for record in records.values()} <= {"done", "unknown"}
    ids_in_output = [line["job_id"] for line in read_sheet(output, "jobs")]
    assert len(ids_in_output) == len(set(ids_in_output)), "a job id appears twice in the output"
    done_ids = {i for record in records.values() if record.state == "done" for i in record.job_ids}
    assert set(ids_in_output) == done_ids
    for entry in server.simulator.accepted:
        record = records[entry["idempotency_key"]]
        # accepted but never answered (dropped, malformed, killed in flight): the row must say unknown
        assert record.state == "unknown" or record.job_ids == entry["job_ids"]
    ambiguous = {e["idempotency_key"] for e in server.simulator.received if e["fault"] in ("drop", "accept_drop", "malformed", "hang")}
    assert all(records[key].state == "unknown" for key in ambiguous)
    unknown_lines = [line for line in read_sheet(output, "failed") if line["state"] == "unknown"]
    assert len(unknown_lines) == sum(record.state == "unknown" for record in records.values())


def test_no_row_is_resent_before_its_retry_after(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["429"] * 6 + ["ok", "429"] * 6, retry_after=0.4))
    result = cli(*run_args(write_xlsx(tmp_path, songs(20)), tmp_path / "out.xlsx", server.url, "--concurrency", "4", "--max-attempts", "10"))
    assert result.code == 0, result.err
    by_key = defaultdict(list)
    for entry in server.simulator.received:
        by_key[entry["idempotency_key"]].append(entry)
    refused = 0
    for attempts in by_key.values():
        for previous, following in zip(attempts, attempts[1:]):
            assert previous["fault"] == "429"
            assert following["at"] - previous["at"] >= 0.4
            refused += 1
    assert refused == 12


def test_adaptive_pace_settles_near_the_provider_limit(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(rate_limit=20, latency_ms=20)
    started = time.monotonic()
    result = cli(*run_args(write_xlsx(tmp_path, songs(300)), tmp_path / "out.xlsx", server.url, "--concurrency", "8", "--max-attempts", "20"))
    elapsed = time.monotonic() - started
    assert result.code == 0, result.err
    received = server.simulator.received
    throttled = sum(entry["fault"] == "429" for entry in received)
    rate = 300 / (received[-1]["at"] - received[0]["at"])
    print(f"adaptive: {rate:.1f} req/s of 20 allowed, {throttled}/{len(received)} answered 429, {elapsed:.1f}s")
    assert rate >= 0.8 * 20
    assert throttled <= 0.05 * len(received)


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
    assert result.err.strip().splitlines()[-1] == "stopped: --max-requests 3 reached; run the same command again to continue"
    assert len(server.simulator.received) == 3
    assert {line["state"] for line in read_sheet(output, "failed")} == {"pending"}
    assert cli(*run_args(source, output, server.url)).code == 0
    assert len(set(accepted_keys(server))) == len(accepted_keys(server)) == 10


def test_stop_after_finishes_in_flight_and_keeps_the_rest(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(latency_ms=200)
    output = tmp_path / "out.xlsx"
    started = time.monotonic()
    result = cli(*run_args(write_xlsx(tmp_path, songs(40)), output, server.url, "--concurrency", "2", "--stop-after", "1s"))
    assert time.monotonic() - started < 4
    assert result.code == 1
    assert "stopped: the time limit was reached" in result.err
    assert len(read_sheet(output, "jobs")) == 2 * len(server.simulator.accepted)
    assert len(server.simulator.accepted) == len(server.simulator.received) < 40


def test_second_ctrl_c_exits_at_once_with_a_consistent_journal(tmp_path: Path, start_simulator) -> None:
    server = start_simulator(Faults(rate_hang=1.0, hang_seconds=60))
    output = tmp_path / "out.xlsx"
    child = spawn(*run_args(write_xlsx(tmp_path, songs(10)), output, server.url, "--concurrency", "3"))
    wait_for(lambda: len(server.simulator.received) == 3)
    child.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert child.poll() is None  # the first Ctrl-C waits for the requests in flight
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=10)
    assert child.returncode == 130, err
    states = Counter(line["state"] for line in read_sheet(output, "failed"))
    assert states == {"unknown": 3, "pending": 7}  # sent and unanswered: unknown; never sent: pending


def test_two_runs_on_one_output_are_prevented(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(latency_ms=100)
    source, output = write_xlsx(tmp_path, songs(40)), tmp_path / "out.xlsx"
    first = spawn(*run_args(source, output, server.url, "--concurrency", "1"))
    wait_for(lambda: len(server.simulator.received) >= 1)
    second = cli(*run_args(source, output, server.url))
    assert second.code == 2
    assert second.err.strip() == f"error: -o: another batchgen run is using {output}; wait for it to finish"
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)
    assert max(Counter(accepted_keys(server)).values()) == 1


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
    result = cli(*run_args(write_xlsx(tmp_path, songs(2)), tmp_path / "out.xlsx", server.url, "--concurrency", "1", "--log-file", log))
    assert result.code == 1
    text = log.read_text()
    assert API_KEY not in text and "lyrics 0" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["row"], line["attempt"], line["status"], line["outcome"]) for line in lines] == [
        (2, 1, 503, "retryable"), (2, 2, 400, "rejected"), (3, 1, 200, "done"),
    ]
    assert all(line["latency_ms"] >= 0 for line in lines)


def test_status_and_export(tmp_path: Path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["400"]))
    output = tmp_path / "out.xlsx"
    assert cli(*run_args(write_xlsx(tmp_path, songs(3)), output, server.url, "--concurrency", "1")).code == 1
    status = cli("status", output)
    assert status.code == 0
    assert "done 2  failed 1  unknown 0  pending 0  in_flight 0  invalid 0" in status.out
    assert "row 2  failed  HTTP 400: The provider rejected this request" in status.out
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
    empty = cli(*run_args(source, tmp_path / "none.xlsx", server.url, "--rows", "50-60"))
    assert empty.code == 2 and "has no data rows between 50 and 60" in empty.err
