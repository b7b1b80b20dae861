"""Every error a user can cause gives one ``error:`` line, the contract's exit code and no traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from batchgen import __version__

from ..support.helpers import songs, write_csv, write_xlsx


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--rate", "5/h"],
            "error: Invalid value for '--rate': '5/h' is not a rate such as 10/s or 300/min",
        ),
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--stop-after", "soon"],
            "error: Invalid value for '--stop-after': 'soon' is not a duration",
        ),
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--model", "FUZZ-9"],
            "error: Invalid value for '--model': 'FUZZ-9' is not a model",
        ),
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--concurrency", "0"],
            "error: --concurrency: 0 is not a whole number from 1 to 1024",
        ),
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--timeout", "0.01"],
            "error: --timeout: 0.01 is not a number of seconds from 0.1 to 3600",
        ),
        (["run", "IN", "-o", "OUT", "--simulate", "--transport", "curl"], "error: Invalid value for '--transport'"),
        (["run", "IN", "-o", "OUT", "--bogus"], "error: No such option"),
        (["run", "IN", "-o", "OUT"], "error: --base-url: no provider URL: pass --base-url or set BATCHGEN_BASE_URL"),
        (["run", "IN", "-o", "OUT", "--base-url", "ftp://x"], "error: --base-url: 'ftp://x' is not an http(s) URL"),
        (
            ["run", "IN", "-o", "OUT", "--base-url", "https://exa..mple.com"],
            "error: --base-url: 'https://exa..mple.com' has no valid host name",
        ),
        (
            ["run", "IN", "-o", "OUT", "--base-url", "http://[::1"],
            "error: --base-url: 'http://[::1' is not a valid URL (Invalid IPv6 URL)",
        ),
        (
            ["run", "IN", "-o", "OUT", "--base-url", "https://api.example.com/v 1"],
            "error: --base-url: 'https://api.example.com/v 1' has a space or control character in it",
        ),
        (
            ["run", "IN", "-o", "OUT", "--base-url", "http://api.example.com"],
            "error: --base-url: http://api.example.com is not HTTPS",
        ),
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--annotate", "copy.csv"],
            "error: --annotate: copy.csv must end in .xlsx",
        ),
        (["run", "IN", "-o", "OUT", "--simulate", "--annotate", "IN"], "error: --annotate: "),
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--rows", "9-3"],
            "error: Invalid value for '--rows': '9-3' is not a row range",
        ),
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--stop-at", "25:00"],
            "error: Invalid value for '--stop-at': '25:00' is not a time",
        ),
        (
            ["run", "IN", "-o", "OUT", "--simulate", "--log-file", "nodir/log.jsonl"],
            "error: --log-file: cannot open nodir/log.jsonl (the folder nodir does not exist)",
        ),
        (["run", "IN", "-o", "out.txt", "--simulate"], "error: -o: "),
        (["run", "IN", "-o", "missing/out.xlsx", "--simulate"], "error: -o: the folder "),
        (["run", "IN", "-o", "IN", "--simulate"], "error: -o: "),
        (["validate", "nope.csv"], "error: nope.csv: no such file"),
        (["validate", "IN", "--report", "IN"], "error: --report: "),
        (["status", "OUT"], "error: OUTPUT: OUT.xlsx: no journal found"),
        (["export", "OUT"], "error: OUTPUT: OUT.xlsx: no journal found"),
        (["export", "OUT", "--merge", "typo.xlsx"], "error: --merge: typo.xlsx: no journal found"),
        (["run", "IN", "-o", "sub/../IN.csv", "--simulate"], "error: -o: "),
    ],
)
def test_user_errors_give_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\n", name="IN.csv")
    result = cli(*[("IN.csv" if arg == "IN" else "OUT.xlsx" if arg == "OUT" else arg) for arg in args])
    assert result.code == 2
    assert result.err.strip().splitlines()[-1].startswith(message), result.err
    assert "Traceback" not in result.err
    assert (tmp_path / "IN.csv").read_text() == "title,tag,lyrics\nA,pop,la\n"  # the input is never written


@pytest.mark.parametrize(
    "key, message",
    [
        (None, "error: BATCHGEN_API_KEY is not set: export your provider's API key"),
        ("sk-abc def", "error: the API key has white space inside it; check BATCHGEN_API_KEY"),
        ("sk-abc\ndef", "error: the API key has a line break inside it; check BATCHGEN_API_KEY"),
    ],
)
def test_a_missing_or_malformed_key_is_a_usage_error(tmp_path: Path, cli, key: str | None, message: str) -> None:
    source = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\n")
    result = cli("run", source, "-o", tmp_path / "o.xlsx", "--base-url", "https://api.example.com", key=key)
    assert result.code == 2 and result.err.strip() == message
    assert list(tmp_path.iterdir()) == [source]  # nothing journaled


@pytest.mark.parametrize(
    "ledger",
    [
        "host=db.example.com user=alice password=Hunter2Secret dbname=bg",  # a key=value string, not a URL
        "postgresql://alice:Hunter2 Secret@127.0.0.1:55432/bg",  # a space, not percent-encoded
        "postgresql://alice:Hunter2%zzSecret@127.0.0.1:55432/bg",  # a % that is no escape
        "postgresql://alice:Hunter2Secret@[::1:55432/bg",  # an unclosed bracket
    ],
)
def test_a_team_ledger_url_that_cannot_be_read_never_shows_its_password(tmp_path: Path, cli, ledger: str) -> None:
    """Each was a traceback quoting the password (psycopg's reason), or the whole value in the message."""
    pytest.importorskip("psycopg")
    source = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\n")
    result = cli("run", source, "-o", tmp_path / "o.xlsx", "--base-url", "https://api.example.com", "--ledger", ledger)
    assert len(result.err.strip().splitlines()) == 1 and "Hunter2" not in result.err + result.out, result.err
    if result.code == 3:  # an older psycopg reads it, and the server is not there: said without the password
        assert result.err.startswith("error: the team ledger postgresql://alice@127.0.0.1:55432/bg cannot be used")
    else:  # refused as it is read, before anything else
        assert result.code == 2 and result.err.startswith("error: --ledger: "), result.err
        assert list(tmp_path.iterdir()) == [source]


def test_a_team_ledger_needs_a_postgresql_url_and_psycopg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    source = write_csv(tmp_path, "title,tag,lyrics\nA,pop,la\n")
    args = ("run", source, "-o", tmp_path / "o.xlsx", "--base-url", "https://api.example.com")
    result = cli(*args, "--ledger", "mysql://team:hunter2@db/x")
    assert result.code == 2
    assert (
        result.err.strip()
        == "error: --ledger: mysql://team@db/x is not a PostgreSQL URL such as postgresql://user@host/db"
    )
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    monkeypatch.setenv("BATCHGEN_LEDGER", "postgresql://team:hunter2@db/x")
    result = cli(*args)
    assert result.code == 2
    assert result.err.strip() == "error: --ledger: a team ledger needs psycopg: pip install 'batchgen[postgres]'"
    assert list(tmp_path.iterdir()) == [source]  # nothing read, journaled or sent


def test_version_and_help(cli) -> None:
    assert cli("--version").out.strip() == f"batchgen, version {__version__}"
    result = cli("--help")
    assert result.code == 0 and "validate" in result.out and "simulate" in result.out


def test_an_xlsx_output_that_is_the_input_by_another_name_says_so(tmp_path: Path, monkeypatch, cli) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    write_xlsx(tmp_path, songs(2), name="songs.xlsx")
    result = cli("run", "songs.xlsx", "-o", "sub/../songs.xlsx", "--simulate")
    assert result.code == 2
    assert (
        result.err.strip().splitlines()[-1]
        == f"error: -o: {tmp_path / 'songs.xlsx'} is the input (songs.xlsx); choose another file"
    )
