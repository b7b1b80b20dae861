"""Another system's features, for every Python process started with this folder first on PYTHONPATH.

Python imports ``sitecustomize`` before anything else, so batchgen is imported into the system chosen by
``BATCHGEN_TEST_SYSTEM`` (see tests/systems.py):

- ``windows``: batchgen's modules see an ``os`` without ``fchmod`` and ``O_TMPFILE``, whose ``open`` refuses a
  folder as Windows does, and whose ``name`` is ``"nt"``; a ``signal`` without ``SIGHUP`` but with a
  ``SIGBREAK`` (Ctrl-Break; ``SIGUSR1`` underneath, so a test can send it); no ``fcntl``; and no event loop
  has signal handlers (``NotImplementedError``, as on Windows' loops).
- ``macos``: batchgen's ``fcntl`` offers ``F_FULLFSYNC`` and logs each use (path of the file) to
  ``BATCHGEN_TEST_SYSTEM_LOG``; its SQLite connections log the ``fullfsync`` pragmas they run there; its
  ``os`` has no ``O_TMPFILE``.

Only batchgen's own imports are changed: the libraries under it keep the real modules (on a real Windows
they take their own Windows paths). ``BATCHGEN_TEST_SIGNAL_AT`` raises SIGINT at one moment of a run:
``read`` (the sheet starts being read), ``check:N`` (the Nth row is checked) or ``dispatch`` (the dispatcher
starts, the stop check before it passed).
"""

from __future__ import annotations

import builtins
import errno
import importlib.abc
import os
import signal
import sqlite3
import stat
import sys
import types
from typing import Any

SYSTEM = os.environ.get("BATCHGEN_TEST_SYSTEM", "")
LOG = os.environ.get("BATCHGEN_TEST_SYSTEM_LOG", "")
SIGNAL_AT = os.environ.get("BATCHGEN_TEST_SIGNAL_AT", "")
F_FULLFSYNC = 51  # macOS's value


class _Seen(types.ModuleType):
    """A module as batchgen sees it: the real one, minus ``hidden``, plus ``extra``."""

    def __init__(self, real: types.ModuleType, hidden: set[str], extra: dict[str, Any]) -> None:
        super().__init__(real.__name__)
        self._real, self._hidden = real, hidden
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        return getattr(self._real, name)


def _log(line: str) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def _open_no_folder(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
    """Windows' ``os.open``: a folder cannot be opened (so it cannot be synced)."""
    if dir_fd is None and os.path.isdir(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    return os.open(path, flags, mode, dir_fd=dir_fd)


def _no_loop_signals(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def _full_fcntl(fd: int, cmd: int, arg: Any = 0) -> Any:
    import fcntl

    if cmd != F_FULLFSYNC:
        return fcntl.fcntl(fd, cmd, arg)
    if not stat.S_ISREG(os.fstat(fd).st_mode) and not stat.S_ISDIR(os.fstat(fd).st_mode):
        raise OSError(errno.ENOTSUP, "Operation not supported")
    os.fsync(fd)
    _log(f"F_FULLFSYNC {os.readlink(f'/proc/self/fd/{fd}')}")
    return 0


def _traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    db = sqlite3.connect(*args, **kwargs)
    name = os.path.basename(str(args[0] if args else kwargs["database"]))
    db.set_trace_callback(lambda statement: _log(f"{name}: {statement}") if "fullfsync" in statement else None)
    return db


def _seen_modules() -> dict[str, types.ModuleType | None]:
    """What batchgen imports instead of the real module (``None``: an import that fails)."""
    if SYSTEM == "windows":
        import asyncio.unix_events

        loop = asyncio.unix_events._UnixSelectorEventLoop
        loop.add_signal_handler = loop.remove_signal_handler = _no_loop_signals  # type: ignore[method-assign]
        seen_os = _Seen(os, {"fchmod", "O_TMPFILE"}, {"name": "nt", "open": _open_no_folder})
        seen_signal = _Seen(signal, {"SIGHUP"}, {"SIGBREAK": signal.SIGUSR1})
        return {"os": seen_os, "signal": seen_signal, "fcntl": None}
    if SYSTEM == "macos":
        import fcntl

        seen_fcntl = _Seen(fcntl, set(), {"F_FULLFSYNC": F_FULLFSYNC, "fcntl": _full_fcntl})
        seen_sqlite3 = _Seen(sqlite3, set(), {"connect": _traced_connect})
        return {"os": _Seen(os, {"O_TMPFILE"}, {}), "fcntl": seen_fcntl, "sqlite3": seen_sqlite3}
    return {}


SEEN = _seen_modules()
_import = builtins.__import__


def _batchgen_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    if level == 0 and name in SEEN and str((globals or {}).get("__name__", "")).startswith("batchgen"):
        seen = SEEN[name]
        if seen is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return seen
    return _import(name, globals, locals, fromlist, level)


if SEEN:
    builtins.__import__ = _batchgen_import


def _raise_sigint() -> None:
    signal.raise_signal(signal.SIGINT)


def _patch(module: types.ModuleType) -> None:
    """Raise SIGINT at ``SIGNAL_AT`` in the module just imported."""
    moment, _, count = SIGNAL_AT.partition(":")
    if moment == "read" and module.__name__ == "batchgen.loader":
        read_grid = module.read_grid

        def reading(*args: Any, **kwargs: Any) -> Any:
            _raise_sigint()
            return read_grid(*args, **kwargs)

        module.read_grid = reading
    elif moment == "check" and module.__name__ == "batchgen.validate":
        check, calls = module._RowCheck.run, [0]

        def checking(self: Any, *args: Any) -> Any:
            calls[0] += 1
            if calls[0] == int(count):
                _raise_sigint()
            return check(self, *args)

        module._RowCheck.run = checking
    elif moment == "dispatch" and module.__name__ == "batchgen.submit.dispatch":
        run = module.Dispatcher.run

        async def dispatching(self: Any, records: Any) -> Any:
            _raise_sigint()
            return await run(self, records)

        module.Dispatcher.run = dispatching


class _Moments(importlib.abc.MetaPathFinder):
    """Patches a batchgen module right after it runs, before anything binds its names."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if not name.startswith("batchgen"):
            return None
        finders = (finder for finder in sys.meta_path if finder is not self and hasattr(finder, "find_spec"))
        spec = next((found for finder in finders if (found := finder.find_spec(name, path, target))), None)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            run(module)
            _patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if SIGNAL_AT:
    sys.meta_path.insert(0, _Moments())
