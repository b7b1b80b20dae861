"""Writing a file all at once: a hidden temporary beside it, flushed, renamed over the old one, the folder flushed
(where the system can: :mod:`batchgen.system`).

A crash never leaves a half-written file or a stray temporary (an unnamed one where Linux allows); a new file
gets the user's umask, a replaced one keeps its mode. The output, the annotated copy, the report and the
template are all written this way.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from .system import set_mode, sync_file, sync_folder


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` all at once: temporary file beside it, flush, rename, flush the folder.

    The content is made in memory first, so a full disk fails in this function's own write, cleanly, and
    never inside a library's zip writer (which would leave it half-closed).
    """
    content = io.BytesIO()
    write(content)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    with _temporary(path) as (handle, commit):
        handle.write(content.getbuffer())
        handle.flush()
        set_mode(handle.fileno(), mode)
        sync_file(handle.fileno())
        commit()
    sync_folder(path.parent)


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[tuple[IO[bytes], Callable[[], None]]]:
    """A file to write, and the call that puts it in place of ``path``.

    Where the file system allows it (Linux, ``O_TMPFILE``) the file has no name until it is complete, so a
    crash leaves nothing behind; elsewhere it is a hidden ``.name.XXXX.tmp`` beside ``path``, removed on any
    failure, and by the next run after a crash.
    """
    folder = path.parent
    if not _unnamed_files(folder.stat().st_dev, str(folder)):
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle, lambda: os.replace(temp, path)
        finally:
            Path(temp).unlink(missing_ok=True)
        return
    with os.fdopen(os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600), "wb") as handle:
        yield handle, lambda: _name(handle.fileno(), path)


def _name(fd: int, path: Path) -> None:
    """Give the unnamed file ``fd`` a hidden name beside ``path``, then rename it over ``path``."""
    while True:
        temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        with contextlib.suppress(FileExistsError):
            os.link(f"/proc/self/fd/{fd}", temp)
            break
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=16)
def _unnamed_files(device: int, folder: str) -> bool:
    """Whether files in ``folder`` can be made without a name and named later (not on every file system)."""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return False
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError:
        return False
    try:
        probe = Path(folder) / f".batchgen.{secrets.token_hex(6)}.probe"
        os.link(f"/proc/self/fd/{fd}", probe)
        probe.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def remove_stale_temporaries(paths: Iterable[Path]) -> None:
    """Temporary files a killed run left beside ``paths`` (the caller holds their lock)."""
    for path in paths:
        for stray in path.parent.glob(f".{path.name}.*.tmp"):
            stray.unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask, read without setting it (``os.umask`` would change it for every thread a moment)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc (not Linux): the only portable way
    os.umask(mask)
    return mask
