"""Which file is which, whatever its spelling: resolved real paths and inodes, and the per-output lock.

``results.xlsx``, ``./sub/../results.xlsx``, a symlink to it and a hard link to it are one output: one
journal, one lock. A command never writes over its input or its output by another name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

from .environment import MACHINE_ENV, STATE_ENV
from .errors import OutputError, UsageError

MACHINE_FILE = "machine-id"
LEDGER_FILE = "ledger.sqlite"
# batchgen's own files in the state folder, which no target may be: a report or log written over the ledger
# lost the record of every row sent (and the advice to use another folder would bill them all again)
STATE_FILES = {
    LEDGER_FILE: "ledger of sent rows",
    **{LEDGER_FILE + suffix: "ledger of sent rows" for suffix in ("-wal", "-shm", "-journal")},
    MACHINE_FILE: "machine identity",
}


def state_dir() -> Path:
    """``$BATCHGEN_STATE_DIR``, else the platform's per-user state folder (platformdirs): ledger, rescue, locks."""
    configured = os.environ.get(STATE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return platformdirs.user_state_path("batchgen", appauthor=False)


def machine_name() -> str:
    """What this machine is called in the ledger and its messages: ``$BATCHGEN_MACHINE``, else its host name."""
    return _named() or socket.gethostname()


def _named() -> str:
    named = os.environ.get(MACHINE_ENV, "").strip()
    if any(ord(char) < 32 or ord(char) == 127 for char in named):
        raise UsageError(f"{MACHINE_ENV} has a control character in it; give the machine a plain name")
    return named


def machine_id(folder: Path) -> str:
    """Who this machine is, whatever it is called: ``$BATCHGEN_MACHINE`` when set (the user vouches for it), else
    a random id made once in the state folder ``folder``.

    Host names repeat (laptops named alike, cloned VMs, containers); a fresh id does not. A machine replaced
    with an empty disk gets a new one, unless ``$BATCHGEN_MACHINE`` names it as the one it replaces.
    """
    named = _named()
    if named:
        return named
    path = folder / MACHINE_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="ascii").strip()
    folder.mkdir(parents=True, exist_ok=True)
    draft = folder / f"{MACHINE_FILE}.{uuid.uuid4().hex}"
    draft.write_text(uuid.uuid4().hex, encoding="ascii")
    try:
        os.link(draft, path)  # whole or not at all; of two runs starting at once, the first one's id wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text(encoding="ascii").strip()


def real(path: str | os.PathLike[str]) -> Path:
    """The resolved real path: symlinks followed, ``..`` removed, whether or not the file exists yet."""
    return Path(path).expanduser().resolve()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two spellings name one file (same real path, or same device and inode)."""
    if real(a) == real(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_same(target: str | os.PathLike[str], flag: str, **others: str | os.PathLike[str] | None) -> None:
    """Refuse a target that is one of ``others`` (``input=...``, ``output=...``) by another name, or one of
    batchgen's own files in the state folder (:data:`STATE_FILES`)."""
    for name, other in others.items():
        if other is not None and same_file(target, other):
            raise UsageError(f"{target} is the {name} ({other}); choose another file", setting=flag)
    folder = state_dir()
    for name, what in STATE_FILES.items():
        if same_file(target, folder / name):
            raise UsageError(f"{target} is batchgen's {what} ({folder / name}); choose another file", setting=flag)


def journal_path(output: Path) -> Path:
    """The journal lives beside the output's real file: ``results.xlsx`` -> ``results.xlsx.journal``."""
    return output.with_name(output.name + ".journal")


@contextlib.contextmanager
def output_lock(output: Path, lock_dir: Path | None) -> Iterator[None]:
    """One run per output at a time, keyed by its real path and, when it exists, its inode.

    The real-path lock sits beside the output's journal; the inode lock (which catches hard links) in the
    state folder. A second run on the same output by any name is refused at once.
    """
    from filelock import FileLock, Timeout

    locks = [FileLock(f"{journal_path(output)}.lock")]
    if lock_dir is not None and output.exists():
        stat = output.stat()
        name = hashlib.sha256(f"{stat.st_dev}:{stat.st_ino}".encode()).hexdigest()[:24]
        lock_dir.mkdir(parents=True, exist_ok=True)
        locks.append(FileLock(str(lock_dir / f"{name}.lock")))
    taken: list[FileLock] = []
    try:
        for lock in locks:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                if not os.path.exists(lock.lock_file):  # none holds it: it could not be made (/proc, a full disk)
                    made = Path(lock.lock_file)
                    message = f"cannot write {output} (cannot make {made.name}); nothing was sent"
                    raise OutputError(message, made) from None
                raise UsageError(
                    f"another batchgen run is using {output}; wait for it to finish", setting="output"
                ) from None
            except OSError as exc:
                raise UsageError(f"cannot lock {output} ({exc.strerror or exc})", setting="output") from None
            taken.append(lock)
        yield
    finally:
        for lock in reversed(taken):
            lock.release()
