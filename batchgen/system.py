"""What differs between Linux, macOS and Windows, in one place: stop signals, syncing to disk, file modes.

Each rule follows what the running system offers (``hasattr`` on ``signal``, ``os`` and ``fcntl``), not its
name, so the same promise is kept wherever a feature is missing: see docs/platforms.md for what each system
promises and what it does not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
"""Ctrl-C, a polite kill, a closed terminal (POSIX), and Ctrl-Break or a closed console window (Windows)."""


def stop_signals() -> tuple[signal.Signals, ...]:
    """The stop signals this system has: Windows has no ``SIGHUP``, only Windows has ``SIGBREAK``."""
    return tuple(getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name))


def is_hangup(signum: int) -> bool:
    """Whether ``signum`` says the terminal is gone (``SIGHUP``; Windows has none)."""
    return signum == getattr(signal, "SIGHUP", None)


@contextlib.contextmanager
def on_signals(signums: tuple[signal.Signals, ...], handler: Callable[[int], object]) -> Iterator[None]:
    """``handler(signum)`` runs for each of ``signums`` until the block ends; then the earlier handlers are back.

    ``signal.signal``, not the event loop's handlers: Windows' loops have none, and a Python handler runs as
    soon as the main thread runs bytecode again, even inside a long synchronous step of the loop, so a stop is
    seen by the next check, not one loop turn later (when a request may already have left).
    """
    earlier: dict[signal.Signals, Callable[[int, FrameType | None], object] | int] = {}
    try:
        for signum in signums:
            before = signal.signal(signum, lambda number, _frame: handler(number))
            earlier[signum] = signal.SIG_DFL if before is None else before
        yield
    finally:
        for signum, before in earlier.items():
            signal.signal(signum, before)


def sync_file(fd: int) -> None:
    """Put what was written to ``fd`` on the disk itself.

    On macOS ``fsync`` leaves it in the drive's cache, which a power cut loses; ``F_FULLFSYNC`` flushes that
    cache too. A file system that refuses it (some network shares) gets the plain ``fsync``.
    """
    full = getattr(fcntl, "F_FULLFSYNC", None)
    if full is not None:
        try:
            fcntl.fcntl(fd, full)
            return
        except OSError:
            pass
    os.fsync(fd)


def sync_folder(folder: Path) -> None:
    """Put a rename in ``folder`` on disk (POSIX: an ``fsync`` of the folder).

    Windows cannot open a folder to sync it (``os.open`` is refused): there NTFS journals the rename itself, but
    without write-through it reaches the disk within seconds, not before this returns (docs/platforms.md).
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except PermissionError:  # Windows (and a folder one may write to but not read): no folder sync to ask for
        return
    try:
        sync_file(fd)
    finally:
        os.close(fd)


def set_mode(fd: int, mode: int) -> None:
    """Give the open file ``fd`` the permission bits ``mode``; Windows before Python 3.13 has no ``fchmod``
    (its files take the folder's access rules instead)."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def sqlite_durable(db: sqlite3.Connection) -> None:
    """A commit of ``db`` on the disk itself: SQLite's ``fullfsync`` (and for checkpoints) where the system has
    ``F_FULLFSYNC`` (macOS), which plain ``synchronous=FULL`` does not use."""
    if hasattr(fcntl, "F_FULLFSYNC"):
        db.execute("PRAGMA fullfsync=ON")
        db.execute("PRAGMA checkpoint_fullfsync=ON")
