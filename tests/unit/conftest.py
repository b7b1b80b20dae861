"""The fast layer: milliseconds a test, no socket, no child process, no sleeping. A test that needs one of them
belongs in tests/e2e; here it fails at once, saying so."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import NoReturn

import pytest


def _refuse(what: str) -> object:
    def refused(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError(f"a unit test {what}: it belongs in tests/e2e")

    return refused


@pytest.fixture(autouse=True)
def fast_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse("opened a connection"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("listened on a socket"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("started a child process"))
    monkeypatch.setattr(time, "sleep", _refuse("slept"))
