"""Who the ledger says sent a row: a machine is who it is, not what it is called, and one provider is one
provider however its address is spelt.

Two machines with one host name writing one output path on their own disks are given faithfully: each run is a
real process in mount and UTS namespaces of its own (``unshare``), with that host name and its own folder bound
over one path, against one PostgreSQL ledger and one simulator, whose request log counts what was billed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from batchgen.errors import UsageError
from batchgen.paths import machine_id, machine_name, real
from batchgen.settings import account_of, provider_host
from batchgen.simulator import BackgroundSimulator

from ..support.helpers import songs, write_xlsx
from ..support.pgserver import PASSWORD
from ..support.runs import API_KEY, accepted_ids, accepted_keys, read_sheet
from ..support.systems import layer_env

TWIN_NAME = "studio-laptop"  # the host name both twins have
OTHER_KEY = "sk-test-0a9b8c7d6e5f4a3b2c1d"


@pytest.mark.parametrize(
    "spelling",
    [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "HTTP://LocalHost:8080/",
        "http://localhost.:8080",
        "http://127.0.0.2:8080",
        "http://127.255.0.9:8080/",
        "http://[::1]:8080",
        "http://[0:0:0:0:0:0:0:1]:8080",
        "http://[::ffff:127.0.0.1]:8080",
    ],
)
def test_every_spelling_of_the_loopback_host_is_one_host(spelling: str) -> None:
    assert provider_host(spelling) == "http://localhost:8080"


@pytest.mark.parametrize(
    "spellings",
    [
        (
            "https://api.example.com",
            "HTTPS://API.Example.COM/",
            "https://api.example.com:443",
            "https://api.example.com.",
        ),
        ("http://api.example.com", "http://api.example.com:80/", "http://API.example.com"),
        ("https://api.example.com:8443", "https://api.example.com:8443/v1/", "https://Api.Example.com:8443"),
        ("https://[2001:db8::1]", "https://[2001:DB8:0::1]:443/"),
    ],
)
def test_spellings_of_one_host_are_one_host(spellings: tuple[str, ...]) -> None:
    assert len({provider_host(spelling) for spelling in spellings}) == 1


@pytest.mark.parametrize(
    "a, b",
    [
        ("https://api.example.com", "https://api2.example.com"),  # an alias is matched by the account, not here
        ("https://api.example.com", "https://api.example.com:8443"),
        ("http://localhost:8080", "http://localhost:8081"),
        ("http://localhost:80", "https://localhost:80"),  # port 80 is https's non-default port
        ("http://10.0.0.1:8080", "http://localhost:8080"),  # a private address is not this machine
    ],
)
def test_other_hosts_stay_other_hosts(a: str, b: str) -> None:
    assert provider_host(a) != provider_host(b)


def test_the_account_is_a_keyed_fingerprint_that_never_shows_the_key() -> None:
    fingerprint = account_of(SecretStr(API_KEY))
    assert fingerprint == account_of(SecretStr(API_KEY))
    assert len(fingerprint) == 32 and int(fingerprint, 16) >= 0
    assert fingerprint != account_of(SecretStr(OTHER_KEY))
    assert fingerprint != account_of(SecretStr(API_KEY + "x"))
    for part in (API_KEY, API_KEY[-8:], API_KEY.encode().hex()[:16]):
        assert part not in fingerprint
    import hashlib

    assert fingerprint not in hashlib.sha256(API_KEY.encode()).hexdigest()  # keyed: not the plain hash


def test_a_machine_id_is_made_once_and_batchgen_machine_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BATCHGEN_MACHINE", raising=False)
    made = machine_id(tmp_path / "state")
    assert len(made) == 32 and machine_id(tmp_path / "state") == made != machine_id(tmp_path / "other")
    assert [path.name for path in (tmp_path / "state").iterdir()] == ["machine-id"]
    monkeypatch.setenv("BATCHGEN_MACHINE", " render-01 ")
    assert machine_id(tmp_path / "state") == machine_name() == "render-01"
    monkeypatch.setenv("BATCHGEN_MACHINE", "render\n01")
    with pytest.raises(UsageError, match="BATCHGEN_MACHINE has a control character"):
        machine_name()


@pytest.mark.slow
def test_one_provider_spelt_another_way_bills_nothing_twice(tmp_path: Path, start_simulator, cli, state_dir) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(10))
    port = server.url.rsplit(":", 1)[1]
    first = tmp_path / "first.xlsx"
    assert cli("run", source, "-o", first, "--base-url", f"http://127.0.0.1:{port}", "--quiet").code == 0
    assert len(server.simulator.accepted) == 10
    spellings = [
        f"http://localhost:{port}",
        f"http://LOCALHOST:{port}/",
        f"http://127.0.0.2:{port}",
        f"http://[::1]:{port}",
    ]
    for number, spelling in enumerate(spellings):
        output = tmp_path / f"again-{number}.xlsx"
        result = cli("run", source, "-o", output, "--base-url", spelling, "--quiet")
        assert result.code == 1, result.err
        assert f"10 row(s) were already sent to {real(first)} and are skipped" in result.err
        assert "--allow-resend" in result.err
        failed = read_sheet(output, "failed")
        assert [line["state"] for line in failed] == ["skipped"] * 10
        assert all(str(real(first)) in str(line["error"]) for line in failed)
    assert len(server.simulator.received) == 10  # not one request more

    same_account = start_simulator()  # another host (another port): the same key is the same account
    result = cli("run", source, "-o", tmp_path / "alias.xlsx", "--base-url", same_account.url, "--quiet")
    assert result.code == 1 and "already sent to" in result.err, result.err
    assert same_account.simulator.received == []

    same_host = cli("run", source, "-o", tmp_path / "key-2.xlsx", "--base-url", server.url, "--quiet", key=OTHER_KEY)
    assert same_host.code == 1 and "already sent to" in same_host.err, same_host.err  # the host alone is enough
    assert len(server.simulator.received) == 10

    other = start_simulator(api_key=OTHER_KEY)  # another host and another account: another bill, sent
    result = cli("run", source, "-o", tmp_path / "other.xlsx", "--base-url", other.url, "--quiet", key=OTHER_KEY)
    assert result.code == 0, result.err
    assert len(other.simulator.accepted) == 10

    stored = b"".join(path.read_bytes() for path in state_dir.glob("ledger.sqlite*"))
    assert account_of(SecretStr(API_KEY)).encode() in stored  # the fingerprint is what the ledger keeps
    for key in (API_KEY, OTHER_KEY):
        assert key.encode() not in stored and key.encode("utf-16-le") not in stored


@dataclass
class Twin:
    """A machine called ``name`` whose own disk (``disk``) is at ``place``, the path every twin writes to.

    Each run is ``unshare --uts --mount``: its own host name, and ``disk`` bound over ``place`` in its own mount
    namespace, so twins see one path and never each other's files. Home and state folder are on that disk.
    """

    disk: Path
    place: Path
    ledger: str
    name: str = TWIN_NAME

    @property
    def output(self) -> Path:
        return self.place / "out.xlsx"

    def start(self, source: Path, server: BackgroundSimulator, **env: str) -> subprocess.Popen[str]:
        for folder in (self.disk / "home", self.disk / "state"):
            folder.mkdir(parents=True, exist_ok=True)
        self.place.mkdir(exist_ok=True)
        environment = {k: v for k, v in os.environ.items() if k != "BATCHGEN_MACHINE"}
        environment |= {"BATCHGEN_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1", **layer_env()}
        environment |= {"HOME": str(self.place / "home"), "BATCHGEN_STATE_DIR": str(self.place / "state")}
        environment |= {"BATCHGEN_LEDGER": self.ledger, **env}
        enter = 'hostname "$1" && mount --bind "$2" "$3" && shift 3 && exec "$@"'
        run = ["-m", "batchgen", "run", source, "-o", self.output, "--base-url", server.url, "--quiet"]
        command = ["unshare", "--uts", "--mount", "sh", "-c", enter, "twin", self.name, self.disk, self.place]
        return subprocess.Popen(
            [*map(str, command), sys.executable, *map(str, run)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def sheet(self, name: str) -> list[dict[str, object]]:
        """A sheet of this twin's output, read from its own disk."""
        return read_sheet(self.disk / "out.xlsx", name)

    def machine_id(self) -> str:
        return (self.disk / "state" / "machine-id").read_text()


def twins(tmp_path: Path, ledger: str, count: int = 2) -> list[Twin]:
    return [Twin(tmp_path / f"disk-{number}", tmp_path / "work", ledger) for number in range(count)]


def ended(*children: subprocess.Popen[str]) -> list[tuple[int, str]]:
    """Each child's exit code and stderr; none shows a traceback or the ledger's password."""
    results = []
    for child in children:
        out, err = child.communicate(timeout=180)
        assert "Traceback" not in err and "unshare:" not in err and "mount:" not in err, err
        assert PASSWORD not in out + err
        results.append((child.returncode, err))
    return results


needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="two host names need root and unshare"
)


@pytest.mark.parametrize("rows", [200])
@needs_namespaces
@pytest.mark.slow
@pytest.mark.postgres
def test_two_machines_with_one_host_name_and_one_path_bill_every_row_once(
    tmp_path: Path, start_simulator, ledger_url: str, rows: int
) -> None:
    server = start_simulator(latency_ms=400)  # runs long enough to overlap, however fast each starts
    source = write_xlsx(tmp_path, songs(rows))
    team = twins(tmp_path, ledger_url)
    results = ended(*[twin.start(source, server) for twin in team])
    assert all(code in (0, 1) for code, _ in results), results
    keys = Counter(accepted_keys(server))
    assert len(keys) == rows and max(keys.values()) == 1, "a row was accepted twice"
    assert sum(bool(twin.sheet("jobs")) for twin in team) == 2  # they did share the sheet
    name = f"{TWIN_NAME}:{real(team[0].output)}"
    for twin, (code, err) in zip(team, results, strict=True):
        other = next(other for other in team if other is not twin)
        named = f"{name} on another machine of that name ({other.machine_id()[:12]})"
        skipped = [line for line in twin.sheet("failed") if line["state"] == "skipped"]
        assert (code == 1) == bool(skipped), err
        assert all(named in str(line["error"]) for line in skipped), skipped[:1]
        if skipped:
            assert f"row(s) were already sent to {named} and are skipped" in err, err
    ids = [line["job_id"] for twin in team for line in twin.sheet("jobs")]
    assert set(ids) == accepted_ids(server)  # every id reached a twin's output
    with psycopg.connect(ledger_url) as db:
        holders = db.execute("SELECT output, machine, count(DISTINCT journal) FROM batchgen_sent GROUP BY 1, 2")
        assert sorted(holders.fetchall()) == sorted((name, twin.machine_id(), 1) for twin in team)


@needs_namespaces
@pytest.mark.slow
@pytest.mark.postgres
def test_a_replaced_machine_of_that_name_gets_every_id_back_and_sends_nothing(
    tmp_path: Path, start_simulator, ledger_url: str
) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(20))
    (laptop,) = twins(tmp_path, ledger_url, 1)
    ((code, err),) = ended(laptop.start(source, server))
    assert code == 0, err
    before = {line["job_id"] for line in laptop.sheet("jobs")}
    shutil.rmtree(laptop.disk)  # a new laptop of the same name: empty disk, no journal, no state folder
    ((code, err),) = ended(laptop.start(source, server))
    assert code == 0, err
    assert "warning: 20 row(s) restored to the journal" in err
    assert len(server.simulator.received) == 20  # not one request more
    assert {line["job_id"] for line in laptop.sheet("jobs")} == before == accepted_ids(server)


@pytest.mark.slow
@pytest.mark.postgres
def test_batchgen_machine_names_a_machine_whatever_its_host_name(
    tmp_path: Path, start_simulator, ledger_url: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_simulator()
    source = write_xlsx(tmp_path, songs(20))
    output = tmp_path / "machine" / "out.xlsx"
    monkeypatch.setenv("BATCHGEN_LEDGER", ledger_url)

    def run(machine: str) -> tuple[int, str]:
        """A run on a machine called ``machine``, with an empty disk (a new state folder and output folder)."""
        shutil.rmtree(output.parent, ignore_errors=True)
        output.parent.mkdir()
        monkeypatch.setenv("BATCHGEN_STATE_DIR", str(output.parent / "state"))
        monkeypatch.setenv("BATCHGEN_MACHINE", machine)
        result = cli("run", source, "-o", output, "--base-url", server.url, "--quiet", "--rows", "2-11")
        return result.code, result.err

    assert run("render-01")[0] == 0
    with psycopg.connect(ledger_url) as db:
        outputs = db.execute("SELECT DISTINCT output, machine FROM batchgen_sent").fetchall()
        (everything,) = db.execute("SELECT string_agg(entry::text, ' ') FROM batchgen_sent AS entry").fetchone() or (
            "",
        )
    assert outputs == [(f"render-01:{real(output)}", "render-01")]
    assert account_of(SecretStr(API_KEY)) in everything and API_KEY not in everything  # the fingerprint, never the key
    code, err = run("render-01")  # replaced, and named as the machine it replaces
    assert code == 0 and "warning: 10 row(s) restored to the journal" in err, err
    assert len(server.simulator.received) == 10
    code, err = run("render-02")  # another machine, named otherwise: another output, which sends nothing twice
    assert code == 1 and f"10 row(s) were already sent to render-01:{real(output)} and are skipped" in err, err
    assert len(server.simulator.received) == 10
