"""What the user is told is true: a small batch the provider rejects, hosts that never answer, rows whose
answer never came. Real subprocesses against the simulator and its request log."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections import Counter

import openpyxl
import pytest

from batchgen.simulator import Faults

from ..support.helpers import songs, write_csv, write_xlsx
from ..support.runs import finish, read_sheet, run_args, spawn, wait_for


def test_a_small_batch_the_provider_rejects_stops_with_its_message(tmp_path, start_simulator, transport) -> None:
    server = start_simulator(Faults(script=["400"] * 4))
    source, output = write_xlsx(tmp_path, songs(4)), tmp_path / "out.xlsx"
    code, err = finish(*run_args(source, output, server.url, "--transport", transport))
    assert code == 3, err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "the first 4 answers were all the same rejection (HTTP 400: The provider rejected this request)" in line
    assert "Check the base URL" in line
    assert {row["state"] for row in read_sheet(output, "failed")} == {"pending"}
    assert finish(*run_args(source, output, server.url, "--transport", transport))[0] == 0
    assert len(server.simulator.accepted) == 4


def test_a_host_that_cannot_be_reached_is_not_counted_as_requests_sent(tmp_path, transport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source, output = write_xlsx(tmp_path, songs(5)), tmp_path / "out.xlsx"
    # two attempts a row, not five: what is counted does not depend on how many, and five cost 7.5 s of backoff
    unreachable = f"http://127.0.0.1:{port}"
    code, err = finish(*run_args(source, output, unreachable, "--transport", transport, "--max-attempts", "2"))
    assert code == 3, err
    summary = next(line for line in err.splitlines() if line.startswith("5 rows:"))
    assert re.fullmatch(r"5 rows: 5 pending; 0 requests sent \(0 retried\); \d+ attempts could not connect", summary)
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: cannot reach 127.0.0.1:{port}: could not connect (")
    assert "not sent (" not in line


def test_retried_counts_the_requests_sent_again_not_the_refusals(tmp_path, start_simulator, transport) -> None:
    """A row's last refusal is not sent again: "72 requests sent (57 retried)" was told where 32 were."""
    server = start_simulator(Faults(script=["429"] * 4 + ["503"] * 4, retry_after=0.05))  # 2 rows refused twice
    source, output = write_xlsx(tmp_path, songs(6)), tmp_path / "out.xlsx"
    code, err = finish(*run_args(source, output, server.url, "--transport", transport, "--max-attempts", "2"))
    keys = Counter(entry["idempotency_key"] for entry in server.simulator.received)
    again = sum(count - 1 for count in keys.values())
    summary = next(line for line in err.splitlines() if line.startswith("6 rows:"))
    assert summary.endswith(f"; {sum(keys.values())} requests sent ({again} retried)"), summary
    refused = [line for line in read_sheet(output, "failed") if "(after 2 attempts)" in line["error"]]
    assert code == 1 and len(refused) >= 2 and again >= 2, err


def test_status_after_kill_9_says_in_flight_rows_were_sent(tmp_path, start_simulator) -> None:
    server = start_simulator(latency_ms=5000)
    output = tmp_path / "out.xlsx"
    child = spawn(*run_args(write_xlsx(tmp_path, songs(10)), output, server.url, "--concurrency", "4"))
    try:
        wait_for(lambda: len(server.simulator.received) >= 4)
        time.sleep(0.3)  # the first row's answer takes seconds: every request in flight has left
    finally:
        child.kill()
        child.communicate()
    status = subprocess.run(["batchgen", "status", output], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    flying = [line for line in status.stdout.splitlines() if "  in_flight  " in line]
    assert len(flying) == len(server.simulator.received) >= 4
    assert all(
        line.endswith(
            "in_flight  sent, answer not received (the provider may have created jobs; the next run marks it unknown)"
        )
        for line in flying
    )
    assert "not sent yet" not in "".join(flying)


def _one_error(err: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    return line


def test_a_csv_renamed_xlsx_is_told_it_looks_like_a_csv(tmp_path, start_simulator) -> None:
    server = start_simulator()
    source = tmp_path / "catalog.xlsx"
    source.write_text("title,tag,lyrics\nA,pop,la\n")
    code, err = finish(*run_args(source, tmp_path / "out.xlsx", server.url))
    assert code == 2 and server.simulator.received == []
    assert _one_error(err) == (
        f"error: {source}: is not a readable Excel workbook (File is not a zip file); it looks like a CSV file: "
        "rename it to catalog.csv"
    )


def test_a_misspelt_header_is_an_error_and_not_also_passed_through(tmp_path, start_simulator) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, [["Titel", "tag", "lyrics", "Notes"], ["A", "pop", "la", "x"]])
    code, err = finish(*run_args(source, tmp_path / "out.xlsx", server.url))
    assert code == 2 and server.simulator.received == []
    assert "Sheet1!A1 Titel: looks like title" in err
    assert "warning: passed through, not sent: Notes" in err.splitlines()


def test_merged_cells_are_named_as_merged_not_missing(tmp_path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["title", "tag", "lyrics"], ["A", "pop", "la"], [None, "pop", "lb"]):
        sheet.append(row)
    sheet.title = "Songs"
    sheet.merge_cells("A2:A3")
    book.save(tmp_path / "merged.xlsx")
    code, err = finish("validate", tmp_path / "merged.xlsx")
    assert code == 2, err
    child = subprocess.run(
        [sys.executable, "-m", "batchgen", "validate", tmp_path / "merged.xlsx"], capture_output=True, text=True
    )
    assert child.stdout.splitlines() == [
        "Songs!A3 title: is part of the merged cells A2:A3, whose value only its first cell holds; unmerge them "
        "and fill each row's own cell"
    ]
    assert "is required" not in child.stdout


def test_a_workbook_opening_on_a_notes_sheet_points_to_the_sheet_with_a_header(tmp_path) -> None:
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Notes"
    notes.append(["The spring catalog; ask Anna before sending"])
    for name in ("Catalog", "Extra"):
        book.create_sheet(name).append(["title", "tag", "lyrics"])
        book[name].append(["A", "pop", "la"])
    book.create_sheet("Empty")
    book.save(tmp_path / "book.xlsx")
    code, err = finish("validate", tmp_path / "book.xlsx")
    assert code == 2
    assert _one_error(err) == (
        f"error: {tmp_path / 'book.xlsx'} (sheet Notes): no header row found in the first 20 rows (it needs at "
        "least two known columns, such as title and tag); sheets 'Catalog', 'Extra' have one: choose it with "
        "--sheet (or use --header-row)"
    )


def test_a_whole_row_is_placed_by_its_sheet_and_row(tmp_path) -> None:
    source = write_xlsx(tmp_path, [["title", "tag"], ["A", "pop"]])
    child = subprocess.run([sys.executable, "-m", "batchgen", "validate", source], capture_output=True, text=True)
    assert child.returncode == 2
    assert child.stdout.splitlines()[0].startswith("Sheet1, row 2, lyrics: is required")
    assert "!row" not in child.stdout


def test_rows_the_provider_rejects_in_several_ways_are_said_with_its_messages(
    tmp_path, start_simulator, transport
) -> None:
    """Not the same rejection every time, so the run goes on (exit 1): the user is still told why each row
    failed, by how many, and what sends them again, without opening the failed sheet."""
    server = start_simulator(Faults(script=["400", "422", "400", "422", "400"]))
    source, output = write_xlsx(tmp_path, songs(6)), tmp_path / "out.xlsx"
    code, err = finish(*run_args(source, output, server.url, "--transport", transport, "--concurrency", "1"))
    assert code == 1, err
    assert "6 rows: 1 done, 5 failed; 6 requests sent" in err
    assert (
        "warning: 5 row(s) rejected by the provider: HTTP 400: The provider rejected this request (3), "
        "HTTP 422: Unprocessable request (2); see the failed sheet, then --retry-failed sends them again"
    ) in err.splitlines()
    code, again = finish(*run_args(source, output, server.url, "--transport", transport))
    assert code == 1 and "5 row(s) rejected by the provider" in again  # said again while they stay failed
    assert len(server.simulator.accepted) == 1


@pytest.mark.parametrize(
    "header, misnamed",
    [
        ("Titel,Tags,Lyrcs", "Titel looks like title, Lyrcs looks like lyrics: rename them"),
        ("Song Title,Genre,Lyrics", "Song Title looks like title: rename it"),
    ],
)
def test_a_header_with_misnamed_columns_is_named_not_sent_to_header_row(tmp_path, header, misnamed) -> None:
    """A header whose names are misspelled has too few known columns to be found: --header-row would not
    help, renaming the columns does, so the message says which row and which names."""
    source = write_csv(tmp_path, f"{header}\nA,pop,la\n")
    code, err = finish("validate", source)
    assert code == 2
    assert _one_error(err) == (
        f"error: {source}: no header row found in the first 20 rows (it needs at least two known columns, such "
        f"as title and tag); row 1 may be it, but {misnamed}"
    )
