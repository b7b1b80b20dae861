"""Real rate limiters in front of the simulator: nginx ``limit_req`` (strict, or with a burst), nginx
``limit_conn`` and HAProxy's stick table, each keyed on the Authorization header (runs sharing one key share
one limit). Each runs as a foreground child in a temporary folder on a free loopback port and is stopped at
the end; its access log is every answer a client got, the limiter's own 429s included (those never reach the
simulator).

Needs Debian's ``nginx-light`` (or ``nginx``) and ``haproxy``; a missing one is named with its apt package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROGRAMS = {"nginx": "nginx-light", "haproxy": "haproxy"}
NGINX_LOG = "$msec $request_time $status"
HAPROXY_LOG = "%Ts.%ms %Th %Ti %Ta %ST"


@dataclass(frozen=True)
class Answer:
    """One answer a client got: when its request began, when it was answered (epoch seconds), its status."""

    start: float
    end: float
    status: int


@dataclass(frozen=True)
class Shape:
    """A limiter: which program, and the limit's directive (``limit`` per second or in flight, ``burst``)."""

    name: str
    program: str
    kind: str  # "req", "conn" or "rate"
    burst: int = 0


SHAPES = {
    "nginx-strict": Shape("nginx-strict", "nginx", "req"),
    "nginx-burst": Shape("nginx-burst", "nginx", "req", burst=5),
    "nginx-conn": Shape("nginx-conn", "nginx", "conn"),
    "haproxy": Shape("haproxy", "haproxy", "rate"),
}


def missing(program: str) -> str | None:
    """Why a limiter cannot run here (its apt package to install), or None."""
    if shutil.which(program) or Path(f"/usr/sbin/{program}").exists():
        return None
    return f"{program} is not installed (apt-get install {PROGRAMS[program]}); skipped"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nginx_conf(folder: Path, shape: Shape, limit: float, port: int, upstream: int) -> str:
    """Strict leaky bucket (``limit_req`` without a burst), with ``burst=B nodelay``, or ``limit_conn N``."""
    user = "user root root;" if os.geteuid() == 0 else ""
    if shape.kind == "req":
        rate = f"{limit:g}r/s" if float(limit).is_integer() else f"{limit * 60:g}r/m"
        zone = f"limit_req_zone $http_authorization zone=key:1m rate={rate}; limit_req_status 429;"
        rule = f"limit_req zone=key{f' burst={shape.burst} nodelay' if shape.burst else ''};"
    else:
        zone = "limit_conn_zone $http_authorization zone=key:1m; limit_conn_status 429;"
        rule = f"limit_conn key {int(limit)};"
    temp = " ".join(
        f"{name}_temp_path {folder / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    log_format bench '{NGINX_LOG}';
    access_log {folder / "access.log"} bench;
    {temp}
    {zone}
    keepalive_requests 100000;
    upstream simulator {{ server 127.0.0.1:{upstream}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            {rule}
            proxy_pass http://simulator;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


def haproxy_conf(limit: float, port: int, upstream: int) -> str:
    """More than ``limit`` requests in the last second on one key: 429 (refused requests count too)."""
    return f"""global
    log stdout format raw local0
    maxconn 4096
defaults
    mode http
    log global
    option http-keep-alive
    option dontlognull
    timeout connect 5s
    timeout client 3600s
    timeout server 3600s
    timeout http-keep-alive 60s
frontend limiter
    bind 127.0.0.1:{port}
    log-format "{HAPROXY_LOG}"
    stick-table type string len 256 size 10k expire 30s store http_req_rate(1s)
    http-request track-sc0 req.hdr(Authorization)
    http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt {int(limit)} }}
    default_backend simulator
backend simulator
    http-reuse always
    server simulator 127.0.0.1:{upstream}
"""


class Limiter:
    """A started limiter: its base URL and, when asked, every answer it gave."""

    def __init__(self, shape: Shape, folder: Path, port: int) -> None:
        self.shape = shape
        self.folder = folder
        self.url = f"http://127.0.0.1:{port}"

    def answers(self) -> list[Answer]:
        """Every answer in the access log, ordered by the start of its request."""
        found = []
        for line in self._log().read_text().splitlines():
            fields = line.split()
            if len(fields) != (3 if self.shape.program == "nginx" else 5) or not fields[-1].isdigit():
                continue  # the program's own messages
            if self.shape.program == "nginx":
                end, took, status = float(fields[0]), float(fields[1]), int(fields[2])
                found.append(Answer(end - took, end, status))
            else:  # accepted at, handshake, idle (keep-alive), active (ms), status
                start = float(fields[0]) + (int(fields[1]) + int(fields[2])) / 1000
                found.append(Answer(start, start + int(fields[3]) / 1000, int(fields[4])))
        return sorted(found, key=lambda answer: answer.start)

    def _log(self) -> Path:
        return self.folder / ("access.log" if self.shape.program == "nginx" else "stdout.log")


@contextmanager
def limiter(shape: Shape, limit: float, upstream: str) -> Iterator[Limiter]:
    """Start ``shape`` with ``limit`` in front of the simulator at ``upstream``; stop it on leaving."""
    upstream_port = int(upstream.rsplit(":", 1)[1])
    with tempfile.TemporaryDirectory(prefix=f"batchgen-{shape.name}-") as name:
        folder, port = Path(name), free_port()
        conf = folder / f"{shape.program}.conf"
        if shape.program == "nginx":
            conf.write_text(nginx_conf(folder, shape, limit, port, upstream_port))
            command = ["nginx", "-p", str(folder), "-c", str(conf), "-g", "daemon off;"]
        else:
            conf.write_text(haproxy_conf(limit, port, upstream_port))
            command = ["haproxy", "-f", str(conf), "-db"]
        with (folder / "stdout.log").open("w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
            try:
                wait_listening(port, process, folder)
                yield Limiter(shape, folder, port)
            finally:
                process.terminate()
                process.wait(timeout=30)


def wait_listening(port: int, process: subprocess.Popen[bytes], folder: Path) -> None:
    """Until the limiter accepts connections (or says why it cannot)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"limiter did not start: {(folder / 'stdout.log').read_text()[-500:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"limiter not listening on {port} after 10 s")
