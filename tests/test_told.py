"""What the user is told is true: a small batch the provider rejects, hosts that never answer, rows whose
answer never came. Real subprocesses against the simulator and its request log."""

from __future__ import annotations

import pytest

from batchgen.simulator import Faults

from .conftest import read_sheet
from .helpers import songs, write_xlsx
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
