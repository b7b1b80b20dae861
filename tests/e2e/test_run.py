"""End to end over real loopback HTTP: the CLI against the project's simulator, one outcome class per test,
each on both transports."""

from __future__ import annotations

import socket
from pathlib import Path

import openpyxl
import pytest

from batchgen.journal import journal_path
from batchgen.paths import real
from batchgen.simulator import Faults

from ..support.helpers import songs, write_csv, write_xlsx
from ..support.runs import API_KEY, SAMPLES, accepted_ids, accepted_keys, read_sheet


def run_args(input_path: Path, output: Path, url: str, transport: str, *extra: str) -> list[str | Path]:
    return ["run", input_path, "-o", output, "--base-url", url, "--quiet", "--transport", transport, *extra]


def test_sample_catalog_every_id_maps_to_its_row(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator()
    output = tmp_path / "results.xlsx"
    result = cli(*run_args(SAMPLES / "catalog.xlsx", output, server.url, transport))
    assert result.code == 0, result.err
    accepted = server.simulator.accepted
    assert len(accepted) == 16 and len(set(accepted_keys(server))) == 16
    jobs = read_sheet(output, "jobs")
    assert len(jobs) == 32 and {line["job_id"] for line in jobs} == accepted_ids(server)
    by_id = {job_id: entry["body"] for entry in accepted for job_id in entry["job_ids"]}
    for line in jobs:
        body = by_id[line["job_id"]]
        assert (line["title"], line["tag"], line["model"]) == (body["title"], body["tag"], body["model"])
    source = read_sheet(SAMPLES / "catalog.xlsx", "Catalog")
    for line in jobs:  # the row number points at the input row with that title and catalog number
        row = source[int(line["row"]) - 2]
        assert (row["Title"], row["Catalog No"]) == (line["title"], line["Catalog No"])
    assert read_sheet(output, "failed") == []
    assert "16 rows: 16 done; 16 requests sent" in result.err
    assert "warning: passed through, not sent: Catalog No, Producer" in result.err


def test_second_run_of_a_finished_batch_sends_nothing(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator()
    output = tmp_path / "results.xlsx"
    assert cli(*run_args(SAMPLES / "catalog.csv", output, server.url, transport)).code == 0
    before = read_sheet(output, "jobs")
    again = cli(*run_args(SAMPLES / "catalog.csv", output, server.url, transport))
    assert again.code == 0 and "0 requests sent" in again.err
    assert len(server.simulator.received) == 16 and read_sheet(output, "jobs") == before


def test_a_429_makes_its_row_wait_its_retry_after(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator(Faults(script=["429"], retry_after=1.5))
    result = cli(*run_args(write_xlsx(tmp_path, songs(1)), tmp_path / "out.xlsx", server.url, transport))
    assert result.code == 0, result.err
    first, second = server.simulator.received
    assert (first["fault"], second["fault"]) == ("429", "ok")
    assert second["at"] - first["at"] >= 1.5
    assert len(server.simulator.accepted) == 1


def test_a_scattered_429_does_not_stop_the_other_rows(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator(Faults(script=["ok", "ok", "ok", "429"], retry_after=2.0))
    result = cli(
        *run_args(write_xlsx(tmp_path, songs(12)), tmp_path / "out.xlsx", server.url, transport, "--concurrency", "2")
    )
    assert result.code == 0, result.err
    received = server.simulator.received
    refused = next(entry for entry in received if entry["fault"] == "429")
    during = [e for e in received if refused["at"] < e["at"] < refused["at"] + 1.5]
    assert len(during) >= 5  # the others went on while the refused row waited out its two seconds
    again = [e for e in received if e["idempotency_key"] == refused["idempotency_key"]][1]
    assert again["at"] - refused["at"] >= 2.0


def test_mostly_429s_pause_the_whole_run(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator(Faults(script=["429"] * 4, retry_after=1.0))
    result = cli(
        *run_args(write_xlsx(tmp_path, songs(6)), tmp_path / "out.xlsx", server.url, transport, "--concurrency", "4")
    )
    assert result.code == 0, result.err
    received = server.simulator.received
    last_refusal = max(e["at"] for e in received if e["fault"] == "429")
    first_refusal = min(e["at"] for e in received if e["fault"] == "429")
    later = [e for e in received if e["at"] > last_refusal]
    assert later and min(e["at"] for e in later) - first_refusal >= 0.9  # nobody went during the pause


def test_5xx_then_success(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator(Faults(script=["503", "502"]))
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(1)), output, server.url, transport))
    assert result.code == 0, result.err
    assert [entry["fault"] for entry in server.simulator.received] == ["503", "502", "ok"]
    first, second, third = (entry["at"] for entry in server.simulator.received)
    assert second - first >= 0.5 and third - second >= 1.0  # exponential backoff
    assert len(read_sheet(output, "jobs")) == 2


def test_5xx_on_every_attempt_fails_the_row_and_a_rerun_sends_it_again(
    tmp_path, start_simulator, cli, transport
) -> None:
    server = start_simulator(Faults(script=["ok", "503", "503"]))
    output, source = tmp_path / "out.xlsx", write_xlsx(tmp_path, songs(2))
    result = cli(*run_args(source, output, server.url, transport, "--max-attempts", "2", "--concurrency", "1"))
    assert result.code == 1
    assert read_sheet(output, "failed")[0]["error"] == "HTTP 503: Upstream error, try again (after 2 attempts)"
    assert cli(*run_args(source, output, server.url, transport)).code == 0
    assert len(read_sheet(output, "jobs")) == 4 and read_sheet(output, "failed") == []


def test_a_rejection_fails_its_row_and_is_sent_again_only_with_retry_failed(
    tmp_path, start_simulator, cli, transport
) -> None:
    server = start_simulator(Faults(script=["ok", "ok", "422", "ok"]))
    output, source = tmp_path / "out.xlsx", write_xlsx(tmp_path, songs(6))
    result = cli(*run_args(source, output, server.url, transport, "--concurrency", "1"))
    assert result.code == 1
    failed = read_sheet(output, "failed")
    assert failed == [{"row": 4, "title": "Song 2", "state": "failed", "error": "HTTP 422: Unprocessable request"}]
    assert cli(*run_args(source, output, server.url, transport)).code == 1
    assert len(server.simulator.received) == 6  # a plain rerun does not send a rejected row
    assert cli(*run_args(source, output, server.url, transport, "--retry-failed")).code == 0
    resent = server.simulator.received[6:]
    assert [e["idempotency_key"] for e in resent] == [server.simulator.received[2]["idempotency_key"]]


def test_401_stops_the_run_at_once(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator(latency_ms=50)
    output = tmp_path / "out.xlsx"
    result = cli(
        *run_args(write_xlsx(tmp_path, songs(40)), output, server.url, transport, "--concurrency", "4"),
        key="sk-wrong-key-123",
    )
    assert result.code == 3
    assert result.err.strip().splitlines()[-1] == "error: HTTP 401: Invalid API key"
    assert len(server.simulator.received) <= 4 and server.simulator.accepted == []
    assert {line["state"] for line in read_sheet(output, "failed")} == {"pending"}
    assert "sk-wrong-key-123" not in result.err + result.out


@pytest.mark.parametrize("fault", ["402", "403"])
def test_402_and_403_stop_the_run(tmp_path, start_simulator, cli, transport, fault) -> None:
    server = start_simulator(Faults(script=[fault] * 8))
    result = cli(*run_args(write_xlsx(tmp_path, songs(20)), tmp_path / "out.xlsx", server.url, transport))
    assert result.code == 3 and result.err.strip().splitlines()[-1].startswith(f"error: HTTP {fault}: ")
    assert len(server.simulator.received) <= 8


def test_a_dropped_answer_is_unknown_and_sent_again_only_when_asked(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator(Faults(script=["accept_drop"]))
    output, source = tmp_path / "out.xlsx", write_xlsx(tmp_path, songs(1))
    result = cli(*run_args(source, output, server.url, transport))
    assert result.code == 1 and "1 row is unknown" in result.err
    assert read_sheet(output, "failed")[0]["state"] == "unknown"
    assert cli(*run_args(source, output, server.url, transport)).code == 1
    assert len(server.simulator.received) == 1
    assert cli(*run_args(source, output, server.url, transport, "--retry-unknown")).code == 0
    assert len(server.simulator.accepted) == 2  # the provider did create jobs the first time: that is the risk
    assert len(read_sheet(output, "jobs")) == 2


@pytest.mark.parametrize("fault, extra", [("hang", ["--timeout", "0.5"]), ("malformed", []), ("drop", [])])
def test_ambiguous_answers_are_unknown_and_not_retried(tmp_path, start_simulator, cli, transport, fault, extra) -> None:
    server = start_simulator(Faults(script=[fault], hang_seconds=5))
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(1)), output, server.url, transport, *extra))
    assert result.code in (1, 3)
    assert len(server.simulator.received) == 1
    assert read_sheet(output, "failed")[0]["state"] == "unknown"


def test_unreachable_host_stops_the_run(tmp_path, cli, transport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = tmp_path / "out.xlsx"
    result = cli(
        *run_args(write_xlsx(tmp_path, songs(3)), output, f"http://127.0.0.1:{port}", transport, "--max-attempts", "2")
    )
    assert result.code == 3
    assert result.err.strip().splitlines()[-1].startswith(f"error: cannot reach 127.0.0.1:{port}")
    assert {line["state"] for line in read_sheet(output, "failed")} == {"pending"}


def test_redirects_are_never_followed(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator(Faults(script=["ok", "307"]))
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(2)), output, server.url, transport, "--concurrency", "1"))
    assert result.code == 1 and len(server.simulator.received) == 2
    assert read_sheet(output, "failed")[0]["error"].startswith("HTTP 307")


def test_api_key_appears_nowhere(tmp_path, start_simulator, cli, transport) -> None:
    server = start_simulator(Faults(script=["503", "accept_drop", "400", "ok"]))
    output = tmp_path / "out.xlsx"
    result = cli(
        *run_args(
            write_xlsx(tmp_path, songs(5)),
            output,
            server.url,
            transport,
            "--concurrency",
            "1",
            "--log-file",
            tmp_path / "log.jsonl",
        )
    )
    assert result.code == 1
    for path in tmp_path.iterdir():
        assert API_KEY.encode() not in path.read_bytes(), path
    assert API_KEY not in result.out + result.err


def test_invalid_file_sends_nothing(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(SAMPLES / "invalid.xlsx", output, server.url, "httpx"))
    assert result.code == 2
    assert "Sheet1!K8 normalized_weirdness: 1.4 is above the maximum 1" in result.err.splitlines()
    assert "Sheet1!I6 normalized_lyrics_strength: 70 is above the maximum 1; did you mean 0.7?" in result.err
    assert result.err.strip().splitlines()[-1].startswith("error: ")
    assert server.simulator.received == []
    assert not output.exists() and not journal_path(real(output)).exists()


def test_skip_invalid_sends_the_valid_rows_and_lists_the_others(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(SAMPLES / "invalid.xlsx", output, server.url, "aiohttp", "--skip-invalid"))
    assert result.code == 1
    assert len(server.simulator.accepted) == 1
    failed = read_sheet(output, "failed")
    assert [line["row"] for line in failed] == [3, 4, 5, 6, 7, 8, 9]
    assert {line["state"] for line in failed} == {"invalid"}


def test_csv_output_appends_new_ids_once(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.csv"
    source = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\nB,pop,la\n")
    assert cli(*run_args(source, output, server.url, "httpx")).code == 0
    source.write_text("title,tag,lyrics\nC,pop,la\nA,pop,la\nB,pop,la\n")
    assert cli(*run_args(source, output, server.url, "httpx")).code == 0
    lines = output.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 7 and len(server.simulator.accepted) == 3
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["2", "C"],
        ["2", "C"],
        ["3", "A"],
        ["3", "A"],
        ["4", "B"],
        ["4", "B"],
    ]
    assert (tmp_path / "out.failed.csv").read_text(encoding="utf-8-sig").strip() == "row,title,state,error"


def test_text_that_looks_like_a_formula_stays_text(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    source = write_csv(tmp_path, 'title,tag,lyrics,note\n"=HYPERLINK(""http://evil"",""x"")",pop,la,@SUM(1)\n')
    assert cli(*run_args(source, output, server.url, "httpx")).code == 0
    sheet = openpyxl.load_workbook(output)["jobs"]
    cells = {cell.value: cell.data_type for cell in sheet[2]}
    assert cells['=HYPERLINK("http://evil","x")'] == "s" and cells["@SUM(1)"] == "s"


def test_simulate_needs_no_key_and_no_url(tmp_path, cli, transport, state_dir) -> None:
    output = tmp_path / "out.xlsx"
    result = cli(
        "run", SAMPLES / "catalog.xlsx", "-o", output, "--simulate", "--quiet", "--transport", transport, key=None
    )
    assert result.code == 0, result.err
    assert len(read_sheet(output, "jobs")) == 32
    assert not (state_dir / "ledger.sqlite").exists()  # runs against the simulator never touch the ledger


def test_validate_command(cli) -> None:
    good = cli("validate", SAMPLES / "catalog.xlsx")
    assert good.code == 0 and "16 rows, all valid" in good.out
    bad = cli("validate", SAMPLES / "invalid.xlsx")
    assert bad.code == 2
    assert bad.out.splitlines()[0] == "Sheet1!A3 title: is required"
    assert bad.err.strip().splitlines()[-1] == f"error: {SAMPLES / 'invalid.xlsx'}: 9 problem(s) in 7 of 8 rows"


def test_thousands_of_identical_rows_are_told_in_a_few_lines(tmp_path, cli) -> None:
    """20,000 identical rows printed 19,999 warning lines."""
    same = "".join("A,pop,la\n" for _ in range(3000))
    groups = "".join(f"S{n},pop,la\nS{n},pop,la\n" for n in range(15))
    warned = cli("validate", write_csv(tmp_path, "title,tag,lyrics\n" + same + groups))
    assert warned.code == 0
    lines = warned.err.splitlines()
    assert lines[0] == (
        "warning: rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and 2989 more are identical requests: "
        "only row 2 is sent (--send-duplicates sends each)"
    )
    assert len(lines) == 11 and lines[-1] == "warning: ... and 6 more rows identical to an earlier one"


def test_identical_rows_send_one_request_by_default_and_each_with_send_duplicates(
    tmp_path, start_simulator, cli, transport
) -> None:
    server = start_simulator()
    source = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\nB,pop,la\n A ,pop,la\nA,pop,la\n")
    warned = cli("validate", source)
    assert warned.code == 0
    assert warned.err.splitlines() == [
        "warning: rows 2, 4 and 5 are identical requests: only row 2 is sent (--send-duplicates sends each)",
    ]
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(source, output, server.url, transport))
    assert result.code == 1, result.err
    assert sorted(entry["body"]["title"] for entry in server.simulator.accepted) == ["A", "B"]
    repeat = "same request as row 2; not sent (`send_duplicates` sends each once)"
    assert read_sheet(output, "failed") == [
        {"row": 4, "title": "A", "state": "duplicate", "error": repeat},
        {"row": 5, "title": "A", "state": "duplicate", "error": repeat},
    ]
    assert "4 rows: 2 done, 2 duplicate; 2 requests sent" in result.err
    assert (
        "not sent, the same request as an earlier row: 2 rows (see the failed sheet); --send-duplicates" in result.err
    )
    takes = cli(*run_args(source, tmp_path / "all.xlsx", server.url, transport, "--allow-resend", "--send-duplicates"))
    assert takes.code == 0, takes.err
    assert "warning: rows 2, 4 and 5 are identical requests: each is sent (--send-duplicates)" in takes.err
    assert len(server.simulator.accepted) == 6  # each row its own request, once
    again = cli(*run_args(source, tmp_path / "all.xlsx", server.url, transport, "--send-duplicates"))
    assert again.code == 0 and len(server.simulator.accepted) == 6
