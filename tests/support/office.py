"""A headless LibreOffice for the tests that open a workbook as a person would: started on a pipe with its own
profile, driven by scripts in tests/support/libreoffice/ that Debian's python3 runs (it has LibreOffice's ``uno``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPTS = Path(__file__).resolve().parent / "libreoffice"


def libreoffice_with_uno() -> bool:
    if not shutil.which("soffice") or not os.path.exists(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import uno"], capture_output=True).returncode == 0


@contextmanager
def office(profile: Path) -> Iterator[str]:
    """LibreOffice listening on a pipe; yields its name, for :func:`script`."""
    pipe = f"batchgen{uuid.uuid4().hex}"
    started = subprocess.Popen(
        [
            "soffice",
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            f"--accept=pipe,name={pipe};urp;",
            f"-env:UserInstallation={profile.as_uri()}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield pipe
    finally:
        started.terminate()
        started.wait(timeout=30)


def script(name: str, pipe: str, *args: str | Path) -> None:
    """Run ``tests/support/libreoffice/NAME`` against the LibreOffice on ``pipe``."""
    subprocess.run([SYSTEM_PYTHON, SCRIPTS / name, pipe, *map(str, args)], check=True, timeout=120)
