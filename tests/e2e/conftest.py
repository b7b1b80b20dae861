"""The slow layer: loopback HTTP on both transports, real child processes, PostgreSQL. Every test in this folder
is marked ``slow`` here, so ``-m "not slow"`` (or ``tests/unit``) is the fast layer."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.slow)
