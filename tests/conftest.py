"""Shared fixtures: a real simulator on a free loopback port, the CLI run as a user runs it, and a private
state folder (ledger, rescue files, locks) for every test, so the suite never touches the user's own."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batchgen.simulator import BackgroundSimulator, Faults, Simulator

from .support.pgserver import PostgresServer, binaries
from .support.runs import API_KEY, run_here

TRANSPORTS = ["httpx", "aiohttp"]
_PYCACHE_ENV = "BATCHGEN_TEST_PYCACHE"  # the bytecode cache the test processes give their children


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C is Python's KeyboardInterrupt here and in every child process, even when the suite was started in
    the background of a shell, which starts it with SIGINT ignored (and ignored is inherited; a handler is not)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _share_bytecode(config)


def _share_bytecode(config: pytest.Config) -> None:
    """With bytecode writing off (``PYTHONDONTWRITEBYTECODE``), every Python child process (a ``batchgen run``
    to kill, a library script) would compile batchgen's modules again: about 0.15 s of CPU each, over a hundred
    times a suite. Children get a bytecode cache of the suite's own instead (``PYTHONPYCACHEPREFIX``), in a
    temporary folder that the first process (the controller of the workers, or the only one) makes and removes at
    the end: the same source runs, nothing is written beside it, and the environment is put back as it was."""
    if not sys.flags.dont_write_bytecode or sys.pycache_prefix or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    patch = pytest.MonkeyPatch()
    worker = hasattr(config, "workerinput")
    folder = os.environ.get(_PYCACHE_ENV) if worker else None
    if folder is None:
        folder = tempfile.mkdtemp(prefix="batchgen-pycache-")
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    config.add_cleanup(patch.undo)  # (cleanups run last first: the environment, then the folder)
    patch.setenv(_PYCACHE_ENV, folder)
    if worker or not config.getoption("numprocesses", None):  # a process that runs tests
        patch.setenv("PYTHONPYCACHEPREFIX", folder)
        patch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)


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
def cli() -> Callable[..., Result]:
    """Run ``batchgen ARGS`` in this process, with the test key in the environment unless ``key`` says otherwise."""

    def invoke(*args: str | Path, key: str | None = API_KEY) -> Result:
        return Result(*run_here(*args, key=key))

    return invoke
