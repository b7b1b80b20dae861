"""The ledger's vocabulary and contract: what an entry is, what a claim writes, what a backend must do.

Both backends (:mod:`.sqlite`, :mod:`.postgres`) import this module only, never the package, so the package can
pick one lazily without an import cycle.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..environment import LEDGER_ENV
from ..errors import JournalError, UnreachableError, UsageError
from ..settings import provider_host

SCHEMES = ("postgresql", "postgres")
BILLED = frozenset({"in_flight", "done", "unknown"})  # states whose request may have created jobs
RELEASED = "released"  # an entry state meaning "this output no longer holds the row" (it was not sent)
SENT_COLUMNS = "key, output, state, sent_at, job_ids, journal, seq, machine, title, song"  # a Sent's, as both read
SONG_KEY = b"batchgen ledger song fingerprint v1"
SONG_BYTES = 16  # 128 bits: two titles of one team never meet by chance
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")  # a title a spreadsheet reads as a number


@dataclass(frozen=True, slots=True)
class Song:
    """What the ledger keeps of a sent row to know an edit of it, sent by any output: keyed fingerprints of its
    title and of each field of its request (never the lyrics themselves), and its row number then.

    Edits are matched as within one output (:mod:`batchgen.edits`): by title, and where titles repeat by how
    many fields differ and by order; a field whose fingerprint differs is a field that changed.
    """

    title: str
    fields: Mapping[str, str]
    row: int

    @classmethod
    def of(cls, title: str, payload: str, row: int) -> Song:
        """The song of a row: its title, its request (JSON, morph options among its fields), its row number."""
        request = json.loads(payload)
        flat = {**{name: value for name, value in request.items() if name != "morph"}, **request.get("morph", {})}
        return cls(fingerprint(title_read(title)), {name: fingerprint(value) for name, value in flat.items()}, row)

    def dumps(self) -> str:
        """The song as an entry's ``song`` column keeps it (its title has a column of its own, to be looked up)."""
        return json.dumps({"fields": dict(self.fields), "row": self.row}, sort_keys=True)

    @classmethod
    def loads(cls, title: str, text: str) -> Song:
        stored = json.loads(text)
        return cls(title, dict(stored["fields"]), int(stored["row"]))


def title_read(title: str) -> object:
    """A title as edits know it: a number whichever way it is written (``007``, ``7``, ``7.0``; ``1e3``, ``1000``:
    a CSV re-saved by Excel or LibreOffice reads back so), any other title as it is. A number is kept apart from
    every text (:func:`fingerprint` tells them apart), and exactly (``Decimal``: long numbers never meet)."""
    text = title.strip()
    if not NUMBER.fullmatch(text):
        return title
    exact = Context(prec=len(text), Emax=MAX_EMAX, Emin=MIN_EMIN)  # every digit kept: no two numbers meet
    return {"number": str(Decimal(text).normalize(exact))}


def fingerprint(value: object) -> str:
    """A keyed fingerprint of a title or a field's value (BLAKE2b keyed with batchgen's own key, 128 bits): equal
    values, equal fingerprints; the value itself is never kept. Cheap, as each claim computes a row's."""
    if isinstance(value, str):
        text = f"s{value}"
    elif value is None or isinstance(value, int | float):  # bool among them: repr tells True from 1
        text = f"n{value!r}"
    else:
        text = f"j{json.dumps(value, sort_keys=True)}"
    return hashlib.blake2b(text.encode(), key=SONG_KEY, digest_size=SONG_BYTES).hexdigest()


@dataclass(frozen=True, slots=True)
class Sent:
    """What the ledger knows of one row key sent to one output: when, in which state, with which job ids.

    ``journal`` and ``seq`` name the journal write that claimed it, ``machine`` the machine that wrote it
    (:func:`batchgen.paths.machine_id`), ``song`` the row it was (:class:`Song`); each is empty or None for
    entries of older versions.
    """

    key: str
    output: str
    state: str
    sent_at: str
    job_ids: tuple[str, ...] = ()
    journal: str | None = None
    seq: int | None = None
    machine: str | None = None
    song: Song | None = None

    def owned(self, output: str, journal: str) -> bool:
        """Whether this entry is the claim of ``journal`` at ``output``: only then is it a run's own.

        The output's name is not enough: two machines with one host name writing one path are two outputs, and
        a live claim of the other journal must stop this one as any other output's would.
        """
        return self.output == output and self.journal == journal

    def went(self, where: str) -> str:
        """What became of the row, as far as the ledger knows: a claim is a request sent or about to be (its run
        may still fail to connect, and then gives it back), not one known to be sent."""
        if self.state == "in_flight":
            return f"taken by a run for {where} on {self.sent_at} (sent, or about to be)"
        if self.state == "unknown":
            return f"sent to {where} on {self.sent_at} (its answer never came)"
        return f"already sent to {where} on {self.sent_at}"

    def holder(self, output: str, machine: str) -> str:
        """Where this entry's row went, as a message to a run at ``output`` on ``machine`` names it."""
        if self.output != output:
            return self.output
        if self.machine and self.machine != machine:
            return f"{self.output} on another machine of that name ({self.machine[:12]})"
        return f"{self.output} by another journal of that output (a copy of it elsewhere, or one deleted since)"


@dataclass(frozen=True, slots=True)
class Entry:
    """A change of this output's entry for ``key``: ``done`` (with ids), ``unknown``, or :data:`RELEASED`.

    ``taken_from`` names an earlier journal of this output on this machine (deleted since) whose entry this
    journal takes over: that entry goes, this one stands in its place.
    """

    key: str
    state: str
    at: str
    job_ids: tuple[str, ...] = ()
    taken_from: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """One ledger transaction: rows to claim (about to be sent) and entries to bring up to date.

    ``blocking`` are the states of another output's entry that make a claim fail; ``songs`` the rows that claims
    and new entries are of, by key (an entry without one is never taken for an earlier version of an edited row).
    """

    claims: Sequence[str] = ()
    entries: Sequence[Entry] = ()
    at: str = ""
    journal: str | None = None
    seq: int | None = None
    blocking: frozenset[str] = field(default=BILLED)
    songs: Mapping[str, Song] = field(default_factory=dict)


class LedgerError(JournalError):
    """The ledger's file could not be read or written: no row can be claimed, so dispatching stops."""


class LedgerDown(UnreachableError):
    """The team ledger's server cannot be reached: no row can be claimed, so dispatching stops.

    ``host`` is where the ledger is, without its password.
    """


LEDGER_FAILURES = (LedgerError, LedgerDown)


class Ledger(Protocol):
    """A ledger bound to one provider and one output on one machine; every method commits (and syncs) before it
    returns.

    The provider is its ``host`` (one spelling: :func:`batchgen.settings.provider_host`) and its ``account`` (a
    fingerprint of the key: :func:`batchgen.settings.account_of`); another output's entry of the same row
    key is the same provider's when either matches.
    """

    host: str
    account: str | None
    output: str
    machine: str
    where: str  # what messages call it: a file, or a database URL without its password

    def write(self, batch: Batch) -> dict[str, Sent]:
        """Apply ``batch.entries``, then claim ``batch.claims`` for this output and ``batch.journal``, atomically
        across processes.

        Returns the claims that failed: key -> the entry of another output, or of another journal at this
        output (:meth:`Sent.owned`), that holds it. The check and the claim are one step, so two runs that
        claim one row at the same instant never both get it.
        """
        ...

    def lookup(self, keys: Iterable[str]) -> list[Sent]:
        """Every billed entry of this provider (host or account) for ``keys``, whatever output it went to, oldest
        first."""
        ...

    def lookup_titles(self, titles: Iterable[str]) -> list[Sent]:
        """Every billed entry of this provider whose row had one of ``titles`` (:attr:`Song.title`), whatever
        output it went to, oldest first: the rows an edited row may be a new version of."""
        ...

    def close(self) -> None: ...


def blocking_states(allow_resend: bool, retry_unknown: bool) -> frozenset[str]:
    """Which states of another output's entry keep a row from being sent here.

    A row another output has done or has in flight is never sent again unless resending is allowed; one it
    left ``unknown`` (the provider may have created jobs) also when unknown rows are to be retried.
    """
    if allow_resend:
        return frozenset()
    return BILLED - {"unknown"} if retry_unknown else BILLED


def ledger_url(url: str | None) -> str | None:
    """The team ledger's URL (``url``, else ``$BATCHGEN_LEDGER``), checked before anything is read or sent.

    None means the per-user SQLite ledger. psycopg is an optional extra: its absence is said here, at once,
    rather than after the sheet was read.
    """
    value = (os.environ.get(LEDGER_ENV, "") if url is None else url).strip()
    if not value:
        return None
    try:
        scheme, shown = urlsplit(value).scheme, without_password(value)
    except ValueError:  # (an unclosed IPv6 bracket)
        scheme = ""
    if "://" not in value or not scheme:  # a key=value string may hold its password anywhere: never shown
        shown = "the value (not shown: it may hold a password)"
    if scheme not in SCHEMES:
        raise UsageError(f"{shown} is not a PostgreSQL URL such as postgresql://user@host/db", setting="ledger")
    if importlib.util.find_spec("psycopg") is None:
        raise UsageError("a team ledger needs psycopg: pip install 'batchgen[postgres]'", setting="ledger")
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(value)
    except Exception:  # psycopg's reason quotes the part it could not read, the password among them
        raise UsageError(
            f"{without_password(value)} cannot be read as a PostgreSQL URL; a password with a space, % or @ in it "
            "must be percent-encoded (%20, %25, %40)",
            setting="ledger",
        ) from None
    return value


def sent_from(values: Sequence[object], sent_at: str, job_ids: tuple[str, ...]) -> Sent:
    """A :class:`Sent` from a row of :data:`SENT_COLUMNS` whose time and ids each backend has read its way."""
    key, output, state, _, _, journal, seq, machine, title, song = values
    return Sent(
        str(key),
        str(output),
        str(state),
        sent_at,
        job_ids,
        str(journal) if journal else None,
        None if seq is None else int(str(seq)),
        None if machine is None else str(machine),
        Song.loads(str(title), str(song)) if title and song else None,
    )


def song_columns(song: Song | None) -> tuple[str | None, str | None]:
    """An entry's ``title`` and ``song`` columns, in either backend."""
    return (song.title, song.dumps()) if song is not None else (None, None)


def respell(host: str) -> str:
    """An entry's host as this version spells hosts (an older version wrote ``http://127.0.0.1:8080`` where
    this one writes ``http://localhost:8080``); one that does not parse stays as it was."""
    try:
        return provider_host(host)
    except ValueError:
        return host


def without_password(url: str) -> str:
    """``url`` as messages show it: no password, neither in its user part nor among its parameters."""
    parts = urlsplit(url)
    user, at, place = parts.netloc.rpartition("@")
    netloc = f"{user.partition(':')[0]}{at}{place}"
    query = urlencode([(name, value) for name, value in parse_qsl(parts.query) if name != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
