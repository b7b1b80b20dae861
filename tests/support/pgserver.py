"""A throwaway PostgreSQL server for the team-ledger tests: its own folder, a free loopback port, a password.

PostgreSQL refuses to run as root, so under root (CI) its programs run as the ``postgres`` user that Debian's
package creates. The server listens on 127.0.0.1 only and on a unix socket in its folder; TCP logins need the
password (so the tests can check it is never shown), and each test gets a database of its own.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

USER = "batchgen"
PASSWORD = "pg-secret-7Qx2vL9w"


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's versioned folder (the newest)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    return Path(folders[-1]).parent if folders else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """``initdb`` once, then ``start``/``stop`` at will (``stop("immediate")`` is a crash); ``database()`` per test."""

    def __init__(self, bin: Path) -> None:
        self.bin = bin
        root = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="batchgen-pg-", dir="/tmp" if root else None))  # postgres enters it
        self.data = self.folder / "data"
        self.port = free_port()
        self._as: dict[str, Any] = {}
        self._names = itertools.count(1)
        if root:
            account = pwd.getpwnam("postgres")
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        secret = self.folder / "password"
        secret.write_text(PASSWORD)
        if self._as:
            os.chown(secret, self._as["user"], self._as["group"])
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256"]
        self._call("initdb", "-D", self.data, "-U", USER, f"--pwfile={secret}", *auth, "-E", "UTF8", "--no-locale")
        self.start()

    def url(self, database: str = "postgres", password: str | None = PASSWORD) -> str:
        login = f"{USER}:{password}" if password else USER
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database: the URL of a ledger no other test writes to."""
        import psycopg

        name = f"ledger_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c max_connections=60"
        self._call("pg_ctl", "-D", self.data, "-l", self.folder / "log", "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._call("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def processes(self) -> list[int]:
        """The server's processes: the postmaster and its children (to freeze them with SIGSTOP)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                if int(stat.read_text().rpartition(")")[2].split()[1]) == postmaster:  # the parent's pid
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _call(self, program: str, *args: str | Path) -> None:
        try:
            subprocess.run(
                [str(self.bin / program), *map(str, args)], check=True, capture_output=True, text=True, **self._as
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"{program} failed: {exc.stderr or exc.stdout}\n{self.log()}") from None
