"""The platform module's rules, each with the feature a system lacks or has taken away or given (fast)."""

from __future__ import annotations

import os
import signal
import sqlite3
import types
from pathlib import Path, PureWindowsPath

import pytest

from batchgen import files, system
from batchgen.journal import Journal, journal_path
from batchgen.ledger.sqlite import SqliteLedger
from batchgen.loader import load

F_FULLFSYNC = 51
posix = pytest.mark.skipif(os.name == "nt", reason="stands in for Windows' signals with POSIX ones")


@pytest.fixture
def full_fsync(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """``fcntl`` as on macOS: ``F_FULLFSYNC`` offered; its calls recorded, ``os.fsync`` refused."""
    calls: list[tuple[int, int]] = []
    fake = types.SimpleNamespace(F_FULLFSYNC=F_FULLFSYNC, fcntl=lambda fd, cmd: calls.append((fd, cmd)))
    monkeypatch.setattr(system, "fcntl", fake)
    monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("plain fsync where F_FULLFSYNC is offered"))
    return calls


@posix
def test_stop_signals_are_those_the_system_has(monkeypatch: pytest.MonkeyPatch) -> None:
    assert system.stop_signals()[:2] == (signal.SIGINT, signal.SIGTERM)
    monkeypatch.delattr(signal, "SIGHUP", raising=False)
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    assert system.stop_signals() == (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    assert not system.is_hangup(signal.SIGUSR1)


@posix
def test_a_hangup_is_only_sighup() -> None:
    assert system.is_hangup(signal.SIGHUP) and not system.is_hangup(signal.SIGINT)


@posix
def test_on_signals_calls_the_handler_then_puts_the_earlier_ones_back() -> None:
    before = signal.getsignal(signal.SIGUSR2)
    seen: list[int] = []
    with system.on_signals((signal.SIGUSR2,), seen.append):
        signal.raise_signal(signal.SIGUSR2)
    assert seen == [signal.SIGUSR2]
    assert signal.getsignal(signal.SIGUSR2) == before


def test_a_file_sync_uses_f_fullfsync_where_fcntl_offers_it(tmp_path: Path, full_fsync) -> None:
    with open(tmp_path / "f", "wb") as handle:
        system.sync_file(handle.fileno())
        assert full_fsync == [(handle.fileno(), F_FULLFSYNC)]


def test_a_file_system_that_refuses_f_fullfsync_gets_a_plain_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fd: int, cmd: int) -> None:
        raise OSError(45, "Operation not supported")

    synced: list[int] = []
    monkeypatch.setattr(system, "fcntl", types.SimpleNamespace(F_FULLFSYNC=F_FULLFSYNC, fcntl=refuse))
    monkeypatch.setattr(os, "fsync", synced.append)
    system.sync_file(7)
    assert synced == [7]


def test_without_f_fullfsync_a_file_sync_is_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(system, "fcntl", None)  # Windows: no fcntl at all
    monkeypatch.setattr(os, "fsync", synced.append)
    system.sync_file(7)
    assert synced == [7]


@pytest.mark.parametrize("offered", [True, False])
def test_sqlite_asks_for_fullfsync_where_fcntl_offers_it(monkeypatch: pytest.MonkeyPatch, offered: bool) -> None:
    fake = types.SimpleNamespace(F_FULLFSYNC=F_FULLFSYNC) if offered else types.SimpleNamespace()
    monkeypatch.setattr(system, "fcntl", fake)
    db = sqlite3.connect(":memory:")
    system.sqlite_durable(db)
    assert db.execute("PRAGMA fullfsync").fetchone() == (int(offered),)
    assert db.execute("PRAGMA checkpoint_fullfsync").fetchone() == (int(offered),)


def test_the_journal_and_the_ledger_ask_for_fullfsync_on_macos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "fcntl", types.SimpleNamespace(F_FULLFSYNC=F_FULLFSYNC))
    with Journal.open(tmp_path / "out.xlsx.journal") as journal:
        assert journal.db.execute("PRAGMA fullfsync").fetchone() == (1,)
        assert journal.db.execute("PRAGMA checkpoint_fullfsync").fetchone() == (1,)
    ledger = SqliteLedger(tmp_path / "state", "api.example.com", str(tmp_path / "out.xlsx"))
    try:
        assert ledger.db.execute("PRAGMA fullfsync").fetchone() == (1,)
        assert ledger.db.execute("PRAGMA checkpoint_fullfsync").fetchone() == (1,)
    finally:
        ledger.close()


def test_an_atomic_write_without_windows_missing_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``fchmod``, no ``O_TMPFILE``, a folder that cannot be opened: the file is still replaced whole."""
    real_open = os.open

    def no_folder(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.path.isdir(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.delattr(os, "fchmod")
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    monkeypatch.setattr(os, "open", no_folder)
    target = tmp_path / "results.csv"
    target.write_text("old")
    files.atomic_write(target, lambda handle: handle.write(b"new"))
    assert target.read_text() == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.csv"]


def test_a_folder_that_can_be_opened_is_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(system, "sync_file", synced.append)
    system.sync_folder(tmp_path)
    assert len(synced) == 1


@pytest.mark.parametrize(
    ("typed", "journal"),
    [
        (r"C:\Users\Zoë\Music\results.xlsx", r"C:\Users\Zoë\Music\results.xlsx.journal"),
        (r"\\studio\share\東京\results.xlsx", r"\\studio\share\東京\results.xlsx.journal"),
    ],
)
def test_the_journal_sits_beside_an_output_as_windows_spells_it(typed: str, journal: str) -> None:
    assert str(journal_path(PureWindowsPath(typed))) == journal  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("saved", "encoding"),
    [
        ('\ufefftitle,tag,lyrics\r\nCafé,pop,"one\r\ntwo"\r\nB,rock,x\r\n'.encode(), None),  # Excel for Windows
        ('title,tag,lyrics\rCafé,pop,"one\rtwo"\rB,rock,x\r'.encode("mac_roman"), "mac_roman"),  # Excel for Mac
    ],
    ids=["crlf-utf8-bom", "cr-mac-roman"],
)
def test_csvs_saved_by_excel_keep_their_rows_and_cells(tmp_path: Path, saved: bytes, encoding: str | None) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes(saved)
    table = load(path, encoding=encoding)
    assert [(row.number, row.fields["title"]) for row in table.rows] == [(2, "Café"), (3, "B")]
    assert table.rows[0].fields["lyrics"].splitlines() == ["one", "two"]
