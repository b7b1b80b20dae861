"""What the user is told is true: a small batch the provider rejects, hosts that never answer, rows whose
answer never came. Real subprocesses against the simulator and its request log."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest

from batchgen.simulator import Faults

from .conftest import read_sheet, spawn
from .helpers import songs, write_xlsx
from .test_crash import wait_for
from .test_misuse import finish, run_args

pytestmark = pytest.mark.slow


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
    code, err = finish(*run_args(source, output, f"http://127.0.0.1:{port}", "--transport", transport))
    assert code == 3, err
    summary = next(line for line in err.splitlines() if line.startswith("5 rows:"))
    assert re.fullmatch(r"5 rows: 5 pending; 0 requests sent \(0 retried\); \d+ attempts could not connect", summary)
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: cannot reach 127.0.0.1:{port}: could not connect (")
    assert "not sent (" not in line


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
