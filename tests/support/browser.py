"""A real headless Chromium (Debian's ``chromium``) driven over the DevTools protocol on a pipe: no port, and the
network off (every host name unresolvable, every request sent to a proxy nobody runs). It opens one page and
tells what a reader's browser saw: console errors, requests made, the time to the first painted frame, what a
script finds in the page, and a screenshot."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--no-first-run",
    "--remote-debugging-pipe",
    "--proxy-server=127.0.0.1:9",  # the network off: no host name resolves, every request goes nowhere
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-background-networking",
]
# Runs the browser with the pipe's ends on fds 3 and 4, where it looks for them (moved out of the way first: the
# ends may be 3 and 4 the other way round).
ON_FDS_3_AND_4 = """import fcntl, os, sys
ends = [fcntl.fcntl(int(end), fcntl.F_DUPFD, 10) for end in sys.argv[1:3]]
os.dup2(ends[0], 3)
os.dup2(ends[1], 4)
os.execv(sys.argv[3], sys.argv[3:])
"""
# Resolves when the page's first frames are painted: the time from navigation to a page a reader sees.
PAINTED = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now()))))"


def chromium() -> str:
    """The browser's program; the test is skipped where it is missing, except in CI (``.ci/run`` installs it)."""
    found = shutil.which("chromium")
    if found is None:
        reason = "Debian's chromium is not installed: apt-get install chromium (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


class Browser:
    """One headless browser, one tab. Commands and answers are JSON, each ended by a NUL byte, on fds 3 and 4."""

    def __init__(self, profile: Path, width: int = 1200, height: int = 900) -> None:
        profile.mkdir(parents=True, exist_ok=True)  # a profile it cannot make stops it at once
        self.profile = profile
        commands, self._to = os.pipe()
        self._from, answers = os.pipe()
        log = (profile / "chromium.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                ON_FDS_3_AND_4,
                str(commands),
                str(answers),
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
            ],
            pass_fds=(commands, answers),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        os.close(commands)
        os.close(answers)
        log.close()
        self._buffer, self._next = b"", 0
        self.events: list[dict[str, Any]] = []
        try:
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable", session=True)
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
            self.send("Emulation.setDeviceMetricsOverride", session=True, **metrics)
        except BaseException:
            self.close()
            raise

    def open(self, page: Path, timeout: float = 30.0) -> float:
        """Open ``page``; return the seconds from the navigation to its first painted frame."""
        self.events.clear()
        self.send("Page.navigate", session=True, url=page.resolve().as_uri())
        self.wait("Page.loadEventFired", timeout)
        return float(self.evaluate(PAINTED)) / 1000

    def evaluate(self, script: str) -> Any:
        """The value of ``script`` (a promise is awaited) in the page."""
        found = self.send("Runtime.evaluate", session=True, expression=script, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in found, found["exceptionDetails"]
        return found["result"].get("value")

    def screenshot(self) -> bytes:
        """The whole page as a PNG."""
        shot = self.send("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])

    def errors(self) -> list[str]:
        """What the page put in the console as an error, and any exception it threw."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"]))
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(json.dumps(params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
        return found

    def requests(self) -> list[str]:
        """The address of every request the page made (its own file included)."""
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def send(self, method: str, session: bool = False, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        """Send a command (to the tab with ``session``) and return its result; events that come first are kept."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read(timeout)
            if answer.get("id") == self._next:
                assert "error" not in answer, (method, answer["error"])
                return dict(answer["result"])
            self.events.append(answer)

    def wait(self, method: str, timeout: float) -> None:
        """Wait for the event ``method``."""
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._read(timeout))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10.0)
        except (AssertionError, OSError):
            pass  # it closes its end of the pipe as it goes
        finally:
            os.close(self._to)
            os.close(self._from)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        """The end of what the browser wrote to its stderr (why it stopped)."""
        return (self.profile / "chromium.log").read_text(errors="replace")[-3000:]

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self._from], [], [], left)[0], "the browser did not answer"
            chunk = os.read(self._from, 1 << 20)
            assert chunk, f"the browser closed its pipe: {self.log()}"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))
