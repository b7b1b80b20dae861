"""Helpers of the tests that run batchgen as a user does: as a child process, against the simulator, reading
what it wrote. Paths of the repository's sample and fixture files."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import python_calamine

from batchgen.environment import KEY_ENV
from batchgen.simulator import BackgroundSimulator

from .systems import layer_env

API_KEY = "sk-test-5f1c9b7e2a6d4e80b3c1"
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLES = ROOT / "samples"


def spawn(*args: str | Path, key: str = API_KEY, **options: Any) -> subprocess.Popen[str]:
    """``python -m batchgen ARGS`` as a real child process (for kill -9 and Ctrl-C tests), in the layer of the system
    ``.ci/run`` names, if any (tests/support/systems.py)."""
    env = {**os.environ, "BATCHGEN_API_KEY": key, "PYTHONUNBUFFERED": "1", **layer_env(), **options.pop("env", {})}
    return subprocess.Popen(
        [sys.executable, "-m", "batchgen", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def run_args(source: Path, output: Path, url: str, *extra: str | Path) -> list[str | Path]:
    return ["run", source, "-o", output, "--base-url", url, "--quiet", *extra]


def finish(*args: str | Path, key: str = API_KEY, **options: Any) -> tuple[int, str]:
    """Run ``batchgen ARGS`` to its end: its exit code and stderr (never a traceback). In this process, as a user's
    shell would run it but without a Python start-up of its own, unless a child process is asked for: process
    ``options`` (``cwd``, ``env``, ``preexec_fn``), or a system's layer (.ci/run's platform step)."""
    if options or layer_env():
        child = spawn(*args, key=key, **options)
        _, err = child.communicate(timeout=120)
        code = child.returncode
    else:
        code, _, err = run_here(*args, key=key)
    assert "Traceback" not in err, err
    return code, err


def run_here(*args: str | Path, key: str | None = API_KEY) -> tuple[int, str, str]:
    """``batchgen ARGS`` in this process with ``key`` in the environment (None: no key): exit code, stdout, stderr."""
    from batchgen.cli import main

    saved, stdout, stderr = os.environ.pop(KEY_ENV, None), io.StringIO(), io.StringIO()
    if key is not None:
        os.environ[KEY_ENV] = key
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main([str(arg) for arg in args])
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 0
    finally:
        os.environ.pop(KEY_ENV, None)
        if saved is not None:
            os.environ[KEY_ENV] = saved
    return code, stdout.getvalue(), stderr.getvalue()


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


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


def no_duplicates(server: BackgroundSimulator) -> None:
    keys = accepted_keys(server)
    assert max(Counter(keys).values(), default=1) == 1, "a row was accepted twice"
