"""The same promises with Windows' and macOS's features (the layers of tests/support/shims), end to end: the CLI and the
library as child processes against the simulator. ``.ci/run`` also runs the crash and signal tests there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from batchgen.journal import Journal, journal_path
from batchgen.paths import real

from ..support.helpers import songs, write_xlsx
from ..support.runs import API_KEY, accepted_ids, accepted_keys, finish, read_sheet, run_args, spawn, wait_for
from ..support.systems import layer_env

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the layers fake the other systems on Linux"),
]

WINDOWS = layer_env("windows")
CTRL_BREAK = getattr(signal, "SIGUSR1", signal.SIGINT)  # the Windows layer's SIGBREAK (Linux only)


def python(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *map(str, args)]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_import_and_help_work_without_posix_features() -> None:
    imported = python("-c", "import batchgen, batchgen.cli, batchgen.system as s; print(s.stop_signals())", env=WINDOWS)
    assert imported.returncode == 0, imported.stderr
    assert "SIGINT" in imported.stdout and "SIGHUP" not in imported.stdout
    for command in (["--help"], ["run", "--help"]):
        helped = python("-m", "batchgen", *command, env=WINDOWS)
        assert helped.returncode == 0, helped.stderr
        assert "Usage: batchgen" in helped.stdout and not helped.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, CTRL_BREAK], ids=["ctrl-c", "ctrl-break"])
def test_a_stop_without_loop_signal_handlers_is_clean_and_a_rerun_finishes(
    tmp_path: Path, start_simulator, transport: str, stop: signal.Signals
) -> None:
    server = start_simulator(latency_ms=150)
    source, output = write_xlsx(tmp_path, songs(60)), tmp_path / "out.xlsx"
    args = run_args(source, output, server.url, "--concurrency", "4", "--transport", transport)
    child = spawn(*args, env=WINDOWS)
    wait_for(lambda: len(server.simulator.accepted) >= 8)
    child.send_signal(stop)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "Traceback" not in err and "interrupted: run the same command again to resume" in err
    assert {line["job_id"] for line in read_sheet(output, "jobs")} == accepted_ids(server)  # nothing lost
    with Journal.open(journal_path(real(output))) as journal:
        assert "unknown" not in {record.state for record in journal.records()}  # in flight were let finish
    code, err = finish(*args, "--concurrency", "16", env=WINDOWS)
    assert code == 0, err
    keys = accepted_keys(server)
    assert len(keys) == len(set(keys)) == 60
    assert {line["job_id"] for line in read_sheet(output, "jobs")} == accepted_ids(server)


def test_the_library_end_to_end_without_posix_features(tmp_path: Path, start_simulator, transport: str) -> None:
    server = start_simulator(latency_ms=5)
    folder = tmp_path / "Zoë's Música 東京"  # a non-ASCII user folder
    folder.mkdir()
    source, output = write_xlsx(folder, songs(40)), folder / "résultats.xlsx"
    script = (
        "import sys, batchgen\n"
        "result = batchgen.run(sys.argv[1], sys.argv[2], base_url=sys.argv[3], api_key=sys.argv[4], "
        "transport=sys.argv[5])\n"
        "print(result.counts['done'], result.requests)\n"
    )
    for expected in ("40 40", "40 0"):  # the second run finds every row done and sends nothing
        done = python("-c", script, source, output, server.url, API_KEY, transport, env=WINDOWS)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == expected.split()
    assert max(Counter(accepted_keys(server)).values()) == 1
    assert {line["job_id"] for line in read_sheet(output, "jobs")} == accepted_ids(server)
    assert sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp")) == []


def test_on_macos_every_sync_is_a_full_one(tmp_path: Path, start_simulator) -> None:
    server = start_simulator()
    log = tmp_path / "syncs.log"
    source, output = write_xlsx(tmp_path, songs(10)), tmp_path / "out.xlsx"
    code, err = finish(*run_args(source, output, server.url), env=layer_env("macos", BATCHGEN_TEST_SYSTEM_LOG=str(log)))
    assert code == 0, err
    assert len(read_sheet(output, "jobs")) == 20
    lines = log.read_text(encoding="utf-8").splitlines()
    synced = {line.removeprefix("F_FULLFSYNC ") for line in lines if line.startswith("F_FULLFSYNC ")}
    assert any(Path(path).name.startswith(".out.xlsx.") for path in synced), lines  # the output, before its rename
    assert str(tmp_path) in synced, lines  # the folder, after it
    for database in ("out.xlsx.journal", "ledger.sqlite"):
        assert f"{database}: PRAGMA fullfsync=ON" in lines, lines
        assert f"{database}: PRAGMA checkpoint_fullfsync=ON" in lines, lines
