"""Shared fixtures: a real simulator on a free loopback port, the CLI run as a user runs it, and a private
state folder (ledger, rescue files, locks) for every test, so the suite never touches the user's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import python_calamine

from batchgen.cli import main
from batchgen.simulator import BackgroundSimulator, Faults, Simulator

from .pgserver import PostgresServer, binaries
from .systems import layer_env

API_KEY = "sk-test-5f1c9b7e2a6d4e80b3c1"
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLES = ROOT / "samples"
TRANSPORTS = ["httpx", "aiohttp"]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``BATCHGEN_STATE_DIR`` points at a fresh folder: the ledger of one test is never another's."""
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("BATCHGEN_STATE_DIR", str(folder))
    monkeypatch.delenv("BATCHGEN_BASE_URL", raising=False)
    monkeypatch.delenv("BATCHGEN_LEDGER", raising=False)  # a developer's team ledger is never a test's
    return folder


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Every outcome test runs on both transports."""
    return str(request.param)


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., BackgroundSimulator]]:
    """Start simulators (``start_simulator(latency_ms=.., faults=Faults(..))``); all stopped at teardown."""
    running: list[BackgroundSimulator] = []

    def start(faults: Faults | None = None, **options: Any) -> BackgroundSimulator:
        options.setdefault("api_key", API_KEY)
        server = BackgroundSimulator(Simulator(faults=faults, **options)).__enter__()
        running.append(server)
        return server

    yield start
    for server in running:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server per test worker. Skipped only where no server is installed, never in CI
    (``.ci/run`` installs one there)."""
    found = binaries()
    if found is None:
        reason = "PostgreSQL server programs (initdb, pg_ctl) are not installed: apt-get install postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    server = PostgresServer(found)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def ledger_url(postgres: PostgresServer) -> str:
    """The URL (password included) of a new, empty team ledger database."""
    return postgres.database()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run ``batchgen ARGS`` in this process, with the test key in the environment unless ``key`` says otherwise."""

    def invoke(*args: str | Path, key: str | None = API_KEY) -> Result:
        if key is None:
            monkeypatch.delenv("BATCHGEN_API_KEY", raising=False)
        else:
            monkeypatch.setenv("BATCHGEN_API_KEY", key)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main([str(arg) for arg in args])
        captured = capsys.readouterr()
        code = exited.value.code
        return Result(code if isinstance(code, int) else 0, captured.out, captured.err)

    return invoke


def spawn(*args: str | Path, key: str = API_KEY, **options: Any) -> subprocess.Popen[str]:
    """``python -m batchgen ARGS`` as a real child process (for kill -9 and Ctrl-C tests), in the layer of the system
    ``.ci/run`` names, if any (tests/systems.py)."""
    env = {**os.environ, "BATCHGEN_API_KEY": key, "PYTHONUNBUFFERED": "1", **layer_env(), **options.pop("env", {})}
    return subprocess.Popen(
        [sys.executable, "-m", "batchgen", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def read_sheet(path: Path, sheet: str) -> list[dict[str, Any]]:
    """A sheet of an output workbook as a list of dicts keyed by its header."""
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        rows = book.get_sheet_by_name(sheet).to_python()
    finally:
        book.close()
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def accepted_keys(server: BackgroundSimulator) -> list[str | None]:
    return [entry["idempotency_key"] for entry in server.simulator.accepted]


def accepted_ids(server: BackgroundSimulator) -> set[str]:
    return {job_id for entry in server.simulator.accepted for job_id in entry["job_ids"]}
