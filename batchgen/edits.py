"""Rows edited after they were sent: a paid row is never paid again without the user's word.

A row of the input whose request is new to this output (its key is not in the journal), at the same place and
with the same title as a row already sent for this output that is no longer in the input, is the same song
edited: a lyrics typo fixed, a strength changed, another default model. It is ``changed``: not sent, listed with
what changed and when the earlier request was sent. When the user asks to send such rows again, each is sent as
a new request, and the earlier row is marked as replaced: its ids stay in the jobs sheet, marked superseded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from .journal import Journal, LeftOut, NewRow
from .results import State

log = logging.getLogger("batchgen")
SHOWN = 20  # changed rows listed one by one in the log; the failed sheet lists them all


def find_changed(journal: Journal, rows: Sequence[NewRow], run: int, resend: bool) -> int:
    """Leave out (or, with ``resend``, link to the row they replace) the rows of ``run`` edited since they were
    sent; the number of such rows."""
    earlier = {(row.row, row.title): row for row in journal.sent_before(run)}
    if not earlier:
        return 0
    states = journal.states()
    changed: list[LeftOut] = []
    for row in rows:
        old = earlier.get((row.row, row.title))
        if old is None or states.get(row.key) not in (State.PENDING, State.FAILED):
            continue
        what = describe(json.loads(old.payload), json.loads(row.payload))
        when = old.sent_at[:10]
        if resend:
            journal.replace(old.key, row.key)
            log.warning("row %s: %s since it was sent on %s; sent again as asked", row.label, what, when)
            continue
        message = f"{what} since it was sent on {when}; not sent again (`resend_changed` sends it as a new request)"
        changed.append(LeftOut(row.row, row.label, row.title, message, row.extras, State.CHANGED, row.key))
    if changed:
        journal.leave_out(changed)
        for item in changed[:SHOWN]:
            log.warning("row %s: %s", item.label, item.message.split("; ")[0])
        if len(changed) > SHOWN:
            log.warning("... and %d more changed rows (see the failed sheet)", len(changed) - SHOWN)
    return len(changed)


def describe(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``lyrics changed``, ``model and normalized_weirdness changed``: the fields whose value differs.

    An earlier request known only from an output line has only the fields the output shows (title, tag, model);
    when those agree, the rest of the request is what changed.
    """
    before, after = _flat(old), _flat(new)
    names = list(dict.fromkeys([*after, *before])) if "lyrics" in before else list(before)
    fields = [name for name in names if before.get(name) != after.get(name)]
    if not fields:
        return "the request changed"
    return f"{', '.join(fields[:-1])} and {fields[-1]} changed" if len(fields) > 1 else f"{fields[0]} changed"


def _flat(payload: dict[str, Any]) -> dict[str, Any]:
    """The request's fields and its morph options in one mapping (their names never collide)."""
    return {**{name: value for name, value in payload.items() if name != "morph"}, **payload.get("morph", {})}
