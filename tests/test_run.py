"""End to end over real loopback HTTP: the CLI against the project's simulator, one outcome class per test."""

from __future__ import annotations

import socket
from pathlib import Path

import openpyxl
import pytest

from batchgen.journal import journal_path
from batchgen.simulator import Faults

from .conftest import API_KEY, SAMPLES, accepted_ids, accepted_keys, read_sheet
from .helpers import songs, write_csv, write_xlsx


def run_args(input_path: Path, output: Path, url: str, *extra: str) -> list[str | Path]:
    return ["run", input_path, "-o", output, "--base-url", url, "--quiet", *extra]


def test_sample_catalog_every_id_maps_to_its_row(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "results.xlsx"
    result = cli(*run_args(SAMPLES / "catalog.xlsx", output, server.url))
    assert result.code == 0, result.err
    accepted = server.simulator.accepted
    assert len(accepted) == 16 and len(set(accepted_keys(server))) == 16
    jobs = read_sheet(output, "jobs")
    assert len(jobs) == 32
    assert {line["job_id"] for line in jobs} == accepted_ids(server)
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


def test_second_run_of_a_finished_batch_sends_nothing(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "results.xlsx"
    assert cli(*run_args(SAMPLES / "catalog.csv", output, server.url)).code == 0
    before = read_sheet(output, "jobs")
    again = cli(*run_args(SAMPLES / "catalog.csv", output, server.url))
    assert again.code == 0
    assert len(server.simulator.received) == 16
    assert read_sheet(output, "jobs") == before
    assert "0 requests sent" in again.err


def test_429_retry_after_is_honoured(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["429"], retry_after=1.5))
    result = cli(*run_args(write_xlsx(tmp_path, songs(1)), tmp_path / "out.xlsx", server.url, "--concurrency", "1"))
    assert result.code == 0, result.err
    first, second = server.simulator.received
    assert first["fault"] == "429" and second["fault"] == "ok"
    assert second["at"] - first["at"] >= 1.5
    assert len(server.simulator.accepted) == 1


def test_429_pauses_the_whole_run(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["429"], retry_after=1.0))
    result = cli(*run_args(write_xlsx(tmp_path, songs(4)), tmp_path / "out.xlsx", server.url, "--concurrency", "1"))
    assert result.code == 0, result.err
    first, *rest = server.simulator.received
    assert all(entry["at"] - first["at"] >= 1.0 for entry in rest)  # no other row went out during the pause


def test_5xx_then_success(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["503", "500", "502"]))
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(1)), output, server.url, "--concurrency", "1"))
    assert result.code == 0, result.err
    assert [entry["fault"] for entry in server.simulator.received] == ["503", "500", "502", "ok"]
    assert len(read_sheet(output, "jobs")) == 2


def test_5xx_on_every_attempt_fails_the_row_and_a_rerun_sends_it_again(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["503", "503"]))
    output, source = tmp_path / "out.xlsx", write_xlsx(tmp_path, songs(1))
    result = cli(*run_args(source, output, server.url, "--max-attempts", "2"))
    assert result.code == 1
    assert read_sheet(output, "failed")[0]["error"] == "HTTP 503: Upstream error, try again (after 2 attempts)"
    assert cli(*run_args(source, output, server.url)).code == 0
    assert len(read_sheet(output, "jobs")) == 2 and read_sheet(output, "failed") == []


def test_400_rejection_fails_the_row_and_is_not_resent(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["400"]))
    output, source = tmp_path / "out.xlsx", write_xlsx(tmp_path, songs(3))
    result = cli(*run_args(source, output, server.url, "--concurrency", "1"))
    assert result.code == 1
    failed = read_sheet(output, "failed")
    assert failed == [{"row": 2, "title": "Song 0", "state": "failed", "error": "HTTP 400: The provider rejected this request"}]
    assert len(read_sheet(output, "jobs")) == 4
    assert cli(*run_args(source, output, server.url)).code == 1
    assert len(server.simulator.received) == 3


def test_401_stops_the_run_at_once(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(latency_ms=50)
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(40)), output, server.url, "--concurrency", "4"), key="sk-wrong-key-123")
    assert result.code == 3
    assert result.err.strip().splitlines()[-1] == "error: HTTP 401: Invalid API key"
    assert len(server.simulator.received) <= 4
    assert server.simulator.accepted == []
    assert {line["state"] for line in read_sheet(output, "failed")} == {"pending"}
    assert "sk-wrong-key-123" not in result.err + result.out


def test_dropped_connection_is_unknown_and_sent_again_only_when_asked(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["accept_drop"]))
    output, source = tmp_path / "out.xlsx", write_xlsx(tmp_path, songs(1))
    result = cli(*run_args(source, output, server.url))
    assert result.code == 1
    assert "1 rows are unknown" in result.err
    assert read_sheet(output, "failed")[0]["state"] == "unknown"
    assert cli(*run_args(source, output, server.url)).code == 1
    assert len(server.simulator.received) == 1
    assert cli(*run_args(source, output, server.url, "--retry-unknown")).code == 0
    assert len(server.simulator.accepted) == 2  # the provider did create jobs the first time: that is the risk
    assert len(read_sheet(output, "jobs")) == 2


@pytest.mark.parametrize("fault, extra", [("hang", ["--timeout", "0.5"]), ("malformed", []), ("drop", [])])
def test_ambiguous_answers_are_unknown_and_not_retried(tmp_path, start_simulator, cli, fault, extra) -> None:
    server = start_simulator(Faults(script=[fault], hang_seconds=5))
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(1)), output, server.url, *extra))
    assert result.code == 1
    assert len(server.simulator.received) == 1
    assert read_sheet(output, "failed")[0]["state"] == "unknown"


def test_unreachable_host_stops_the_run(tmp_path, cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(3)), output, f"http://127.0.0.1:{port}", "--max-attempts", "2"))
    assert result.code == 3
    assert result.err.strip().splitlines()[-1].startswith("error: cannot reach 127.0.0.1")
    assert {line["state"] for line in read_sheet(output, "failed")} == {"pending"}


def test_invalid_file_sends_nothing(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(SAMPLES / "invalid.xlsx", output, server.url))
    assert result.code == 2
    assert "Sheet1!K8 normalized_weirdness: 1.4 is above the maximum 1; did you mean 0.014?" in result.err
    assert "Sheet1!I6 normalized_lyrics_strength: 70 is above the maximum 1; did you mean 0.7?" in result.err
    assert result.err.strip().splitlines()[-1].startswith("error: ")
    assert server.simulator.received == []
    assert not output.exists() and not journal_path(output).exists()


def test_skip_invalid_sends_the_valid_rows_and_lists_the_others(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(SAMPLES / "invalid.xlsx", output, server.url, "--skip-invalid"))
    assert result.code == 1
    assert len(server.simulator.accepted) == 1
    failed = read_sheet(output, "failed")
    assert [line["row"] for line in failed] == [3, 4, 5, 6, 7, 8, 9]
    assert {line["state"] for line in failed} == {"invalid"}


def test_csv_output_appends_new_ids_once(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.csv"
    source = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\nB,pop,la\n")
    assert cli(*run_args(source, output, server.url)).code == 0
    first = output.read_text(encoding="utf-8-sig").splitlines()
    source.write_text("title,tag,lyrics\nC,pop,la\nA,pop,la\nB,pop,la\n")
    assert cli(*run_args(source, output, server.url)).code == 0
    lines = output.read_text(encoding="utf-8-sig").splitlines()
    assert lines[: len(first)] == first and len(lines) == 7
    assert len(server.simulator.accepted) == 3
    assert (tmp_path / "out.failed.csv").read_text(encoding="utf-8-sig").strip() == "row,title,state,error"


def test_text_that_looks_like_a_formula_stays_text(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    output = tmp_path / "out.xlsx"
    source = write_csv(tmp_path, 'title,tag,lyrics,note\n"=HYPERLINK(""http://evil"",""x"")",pop,la,@SUM(1)\n')
    assert cli(*run_args(source, output, server.url)).code == 0
    sheet = openpyxl.load_workbook(output)["jobs"]
    cells = {cell.value: cell.data_type for cell in sheet[2]}
    assert cells['=HYPERLINK("http://evil","x")'] == "s"
    assert cells["@SUM(1)"] == "s"


def test_api_key_appears_nowhere(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["503", "accept_drop", "400"]))
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(4)), output, server.url, "--concurrency", "1"))
    assert result.code == 1
    for path in tmp_path.iterdir():
        assert API_KEY.encode() not in path.read_bytes(), path
    assert API_KEY not in result.out + result.err


def test_simulate_needs_no_key_and_no_url(tmp_path, cli) -> None:
    output = tmp_path / "out.xlsx"
    result = cli("run", SAMPLES / "catalog.xlsx", "-o", output, "--simulate", "--quiet", key=None)
    assert result.code == 0, result.err
    assert len(read_sheet(output, "jobs")) == 32


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "IN", "-o", "OUT", "--simulate", "--rate", "5/h"], "error: Invalid value for '--rate': '5/h' is not a rate such as 10/s or 300/min"),
        (["run", "IN", "-o", "OUT", "--simulate", "--stop-after", "soon"], "error: Invalid value for '--stop-after': 'soon' is not a duration"),
        (["run", "IN", "-o", "OUT", "--simulate", "--model", "FUZZ-9"], "error: Invalid value for '--model': 'FUZZ-9' is not a model"),
        (["run", "IN", "-o", "OUT", "--simulate", "--concurrency", "0"], "error: Invalid value for '--concurrency'"),
        (["run", "IN", "-o", "OUT", "--bogus"], "error: No such option '--bogus'"),
        (["run", "IN", "-o", "OUT"], "error: no provider: pass --base-url URL or set BATCHGEN_BASE_URL"),
        (["run", "IN", "-o", "OUT", "--base-url", "ftp://x"], "error: --base-url: 'ftp://x' is not an http(s) URL"),
        (["run", "IN", "-o", "OUT", "--base-url", "http://api.example.com"], "error: --base-url: http://api.example.com is not HTTPS"),
        (["run", "IN", "-o", "OUT", "--simulate", "--annotate", "copy.csv"], "error: --annotate: copy.csv must end in .xlsx"),
        (["run", "IN", "-o", "OUT", "--simulate", "--rows", "9-3"], "error: Invalid value for '--rows': '9-3' is not a row range"),
        (["run", "IN", "-o", "OUT", "--simulate", "--stop-at", "25:00"], "error: Invalid value for '--stop-at': '25:00' is not a time"),
        (["run", "IN", "-o", "OUT", "--simulate", "--log-file", "nodir/log.jsonl"], "error: --log-file: cannot open nodir/log.jsonl"),
        (["run", "IN", "-o", "out.txt", "--simulate"], "error: -o: out.txt must end in .xlsx or .csv"),
        (["run", "IN", "-o", "missing/out.xlsx", "--simulate"], "error: -o: the folder missing does not exist"),
        (["validate", "nope.csv"], "error: nope.csv: no such file"),
    ],
)
def test_user_errors_give_one_error_line(tmp_path, monkeypatch, cli, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\n", name="IN")
    (tmp_path / "IN").rename(tmp_path / "IN.csv")
    result = cli(*[("IN.csv" if arg == "IN" else "OUT.xlsx" if arg == "OUT" else arg) for arg in args])
    assert result.code == 2
    assert result.err.strip().splitlines()[-1].startswith(message), result.err
    assert "Traceback" not in result.err


def test_missing_key_is_a_usage_error(tmp_path, cli) -> None:
    result = cli(*run_args(SAMPLES / "catalog.csv", tmp_path / "o.xlsx", "http://127.0.0.1:9"), key=None)
    assert result.code == 2
    assert result.err.strip() == "error: BATCHGEN_API_KEY is not set: export your provider's API key"


def test_validate_command(cli) -> None:
    good = cli("validate", SAMPLES / "catalog.xlsx")
    assert good.code == 0 and "16 rows, all valid" in good.out
    bad = cli("validate", SAMPLES / "invalid.xlsx")
    assert bad.code == 2
    assert bad.out.splitlines()[0] == "Sheet1!A3 title: is required"
    assert bad.err.strip() == f"error: {SAMPLES / 'invalid.xlsx'}: 9 problem(s) in 7 of 8 rows"


def test_redirects_are_never_followed(tmp_path, start_simulator, cli) -> None:
    server = start_simulator(Faults(script=["307"]))
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(write_xlsx(tmp_path, songs(1)), output, server.url))
    assert result.code == 1
    assert len(server.simulator.received) == 1
    assert read_sheet(output, "failed")[0]["error"].startswith("HTTP 307")


def test_identical_rows_are_warned_about_and_dedupe_sends_one(tmp_path, start_simulator, cli) -> None:
    server = start_simulator()
    source = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\nB,pop,la\n A ,pop,la\nA,pop,la\n")
    warned = cli("validate", source)
    assert warned.code == 0
    assert warned.err.splitlines() == [
        "warning: rows 2 and 4 are identical requests; each is sent (use --dedupe to send one)",
        "warning: rows 2 and 5 are identical requests; each is sent (use --dedupe to send one)",
    ]
    output = tmp_path / "out.xlsx"
    result = cli(*run_args(source, output, server.url, "--dedupe"))
    assert result.code == 0, result.err
    assert "warning: rows 2 and 5 are identical requests; only the first is sent (--dedupe)" in result.err
    assert sorted(entry["body"]["title"] for entry in server.simulator.accepted) == ["A", "B"]
    assert read_sheet(output, "failed") == [
        {"row": 4, "title": "A", "state": "duplicate", "error": "same request as row 2; not sent (--dedupe)"},
        {"row": 5, "title": "A", "state": "duplicate", "error": "same request as row 2; not sent (--dedupe)"},
    ]
    plain = cli(*run_args(source, tmp_path / "all.xlsx", server.url))
    assert plain.code == 0 and len(server.simulator.accepted) == 6  # without --dedupe each row is its own request


def test_large_files_cap_the_console_report(tmp_path, cli) -> None:
    rows = "".join(f"S{i},pop,la,0.5\n" for i in range(120))
    source = write_csv(tmp_path, "title,tag,lyrics,normalized_weirdness\n" + rows)
    result = cli("validate", source)
    assert result.code == 2
    lines = result.out.splitlines()
    assert len(lines) == 51
    assert lines[-1] == "... and 70 more problems (transform 70); `batchgen validate --report errors.xlsx` lists them all"
