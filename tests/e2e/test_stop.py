"""A Ctrl-C before the first request leaves sends nothing: SIGINT while a large sheet is read, while its rows
are checked, while the journal is written, and the instant the dispatcher starts; exit 130, output written.

The moments inside the process are hit exactly by the shim (tests/support/shims, ``BATCHGEN_TEST_SIGNAL_AT``); the
journal's is a real SIGINT to the process group from outside, as a terminal sends it.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from ..support.runs import run_args, spawn, wait_for
from ..support.systems import layer_env

# The shim hits each moment exactly, whatever the size: 3,000 rows each. A signal from outside has to land while
# the journal is written, which takes the sheet: 30,000 rows of 300-character lyrics.
ROWS = {"csv": 3_000, "xlsx": 3_000, "large csv": 30_000}
LYRICS = ("la " * 100)[:296]


@pytest.fixture(scope="session")
def big_sheets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CSVs and a workbook of distinct valid rows, made once per session."""
    import xlsxwriter

    folder = tmp_path_factory.mktemp("big")
    rows = [(f"Song {n}", "pop", f"{LYRICS}{n:04d}"[-300:]) for n in range(ROWS["large csv"])]
    sheets = {}
    for kind in ("csv", "large csv"):
        sheets[kind] = folder / f"{kind.replace(' ', '_')}.csv"
        text = "".join(f"{t},{g},{lyr}\n" for t, g, lyr in rows[: ROWS[kind]])
        sheets[kind].write_text("title,tag,lyrics\n" + text, encoding="utf-8")
    xlsx = folder / "big.xlsx"
    book = xlsxwriter.Workbook(str(xlsx), {"constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["title", "tag", "lyrics"])
    for number, row in enumerate(rows[: ROWS["xlsx"]], start=1):
        sheet.write_row(number, 0, row)
    book.close()
    return {**sheets, "xlsx": xlsx}


def stopped_before_dispatch(child, server, output: Path) -> None:
    """What a user sees after a Ctrl-C that came before the first request: nothing sent, exit 130, output."""
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "Traceback" not in err, err
    assert "0 requests sent" in err and "interrupted: run the same command again to resume" in err, err
    assert server.simulator.received == [] and server.simulator.accepted == []
    assert output.exists()


@pytest.mark.parametrize("moment", ["read", "check", "dispatch"])
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_sigint_at_a_moment_before_dispatch_sends_nothing(tmp_path, start_simulator, big_sheets, kind, moment):
    server = start_simulator()
    source, output = big_sheets[kind], tmp_path / "out.csv"
    at = f"check:{ROWS[kind] // 2}" if moment == "check" else moment  # check: halfway through the rows
    child = spawn(*run_args(source, output, server.url), env=layer_env(BATCHGEN_TEST_SIGNAL_AT=at))
    stopped_before_dispatch(child, server, output)


@pytest.mark.skipif(sys.platform == "win32", reason="a process group signal is POSIX")
def test_sigint_to_the_process_group_while_the_journal_is_written_sends_nothing(tmp_path, start_simulator, big_sheets):
    server = start_simulator()
    source, output = big_sheets["large csv"], tmp_path / "out.csv"
    child = spawn(*run_args(source, output, server.url), start_new_session=True)
    wait_for(lambda: Path(f"{output}.journal").exists(), timeout=60)
    os.killpg(child.pid, signal.SIGINT)
    stopped_before_dispatch(child, server, output)  # exit 130, the output written...
    assert server.simulator.received == []  # ...and not one request reached the provider
