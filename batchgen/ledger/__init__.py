"""The ledger of sent rows: what every output of a user (or a team) has sent, so no row is billed twice.

The journal lives beside one output; the ledger spans outputs, runs and, with PostgreSQL, machines. Each row
key sent to a provider host is recorded with the output it went to, when, its job ids, and fingerprints of
the row it was (its title and fields: an edit of it is known whichever output sent it). Before a request
leaves, its row is *claimed* for this output: one atomic step that fails when another output holds the row.

Two backends implement :class:`Ledger`: a per-user SQLite file (:mod:`.sqlite`, the default) and a team's
PostgreSQL database (:mod:`.postgres`, for ``BATCHGEN_LEDGER=postgresql://...``). The claim precedes the
journal's ``in_flight``; a claim carries the journal's identity and write sequence, so a run that finds a claim
its journal never followed (a crash between the two) can tell it from a claim whose request left (see
:mod:`batchgen.history`). A claim is a run's own only when its journal is this run's journal: a machine is who
it is, not what it is called, so two machines of one name writing one path never take each other's claims.
"""

from __future__ import annotations

from pathlib import Path

from ..paths import machine_id, machine_name
from .base import (
    BILLED,
    LEDGER_FAILURES,
    RELEASED,
    SENT_COLUMNS,
    Batch,
    Entry,
    Ledger,
    LedgerDown,
    LedgerError,
    Sent,
    Song,
    blocking_states,
    ledger_url,
    without_password,
)


def open_ledger(host: str, output: str, folder: Path, url: str | None = None, account: str | None = None) -> Ledger:
    """The team ledger at ``url`` (PostgreSQL: :func:`ledger_url`), else the per-user SQLite file in ``folder``,
    bound to the provider (``host``, ``account``), ``output`` and this machine (its id kept in ``folder``)."""
    machine = machine_id(folder)
    if url:
        from .postgres import PostgresLedger  # psycopg only when a team ledger is asked for

        return PostgresLedger(url, host, f"{machine_name()}:{output}", account, machine)
    from .sqlite import SqliteLedger

    return SqliteLedger(folder, host, output, account, machine)


__all__ = [
    "BILLED",
    "LEDGER_FAILURES",
    "RELEASED",
    "SENT_COLUMNS",
    "Batch",
    "Entry",
    "Ledger",
    "LedgerDown",
    "LedgerError",
    "Sent",
    "Song",
    "blocking_states",
    "ledger_url",
    "open_ledger",
    "without_password",
]
