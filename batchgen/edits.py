"""Rows edited after they were sent: a paid row is never paid again without the user's word.

A row of the input whose request is new to this output (its key is not in the journal), with the same title as a
row already sent that is no longer in the input, is the same song edited: a lyrics typo fixed, a strength changed,
another default model. Sent for this output or, per the ledger, for another (a shard by row number the edited row
has moved out of, a journal deleted since): the ledger keeps fingerprints of each row's title and fields, so rows
are matched on those, wherever they are known from. Its place does not matter (rows inserted, deleted or
reordered around it change nothing); where titles repeat, the rows of one title are paired by how many fields
they share, then by their order among themselves. It is ``changed``: not sent, listed with
what changed and when the earlier request was sent. When the user asks to send such rows again, each is sent as
a new request, and the earlier row is marked as replaced: its ids stay in the jobs sheet, marked superseded.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Sequence

from .journal import Journal, LeftOut, NewRow
from .journal.view import EarlierRow
from .ledger import Song
from .results import State

log = logging.getLogger("batchgen")
SHOWN = 20  # changed rows listed one by one in the log; the failed sheet lists them all


def find_changed(
    journal: Journal,
    rows: Sequence[NewRow],
    run: int,
    resend: bool,
    in_file: Collection[str] = (),
    elsewhere: Sequence[EarlierRow] = (),
) -> int:
    """Leave out (or, with ``resend``, link to the row they replace) the rows of ``run`` edited since they were
    sent, here or (``elsewhere``: rows this output left to another output that sent them) by another output; the
    number of such rows. A row sent earlier whose key is ``in_file`` (outside a ``rows`` shard) is still in the
    input: nothing there was edited."""
    earlier = [row for row in [*journal.sent_before(run), *elsewhere] if row.key not in in_file]
    if not earlier:
        return 0
    states = journal.states()
    unsent = [row for row in rows if states.get(row.key) in (State.PENDING, State.FAILED)]
    changed: list[LeftOut] = []
    places: list[tuple[str, NewRow]] = []
    for row, old in pair_edits(earlier, unsent):
        what = describe(old.fingerprints(), _song(row))
        when = old.sent_at[:10]
        if resend:
            journal.replace(old.key, row.key)
            log.warning("row %s: %s since it was sent on %s; sent again as asked", row.label, what, when)
            continue
        message = f"{what} since it was sent on {when}; not sent again (`resend_changed` sends it as a new request)"
        changed.append(LeftOut(row.row, row.label, row.title, message, row.extras, State.CHANGED, row.key))
        places.append((old.key, row))
    if changed:
        journal.moved(places, run)
        journal.leave_out(changed)
        for item in changed[:SHOWN]:
            log.warning("row %s: %s", item.label, item.message.split("; ")[0])
        if len(changed) > SHOWN:
            log.warning("... and %d more changed rows (see the failed sheet)", len(changed) - SHOWN)
    return len(changed)


def pair_edits(earlier: Sequence[EarlierRow], rows: Sequence[NewRow]) -> list[tuple[NewRow, EarlierRow]]:
    """Each row of ``rows`` that is an edit of a row of ``earlier``, with it, in input order.

    Rows pair by title alone. Where a title repeats, the pairs that differ in the fewest fields go first, then
    those whose places among the rows of that title are closest, so two takes of one title keep their own.
    """
    sent: dict[str, list[tuple[Song, EarlierRow]]] = defaultdict(list)
    for before in earlier:
        song = before.fingerprints()
        sent[song.title].append((song, before))
    fresh: dict[str, list[tuple[Song, NewRow]]] = defaultdict(list)
    for row in rows:
        song = _song(row)
        if song.title in sent:
            fresh[song.title].append((song, row))
    pairs: list[tuple[NewRow, EarlierRow]] = []
    for title, new in fresh.items():
        old = sorted(sent[title], key=lambda item: item[0].row)  # their order among themselves, wherever sent
        ranked = sorted(
            (len(_differences(b, a)), abs(i - j), i, j) for i, (a, _) in enumerate(new) for j, (b, _) in enumerate(old)
        )
        taken_new: set[int] = set()
        taken_old: set[int] = set()
        for *_, i, j in ranked:
            if i not in taken_new and j not in taken_old:
                taken_new.add(i)
                taken_old.add(j)
                pairs.append((new[i][1], old[j][1]))
    return sorted(pairs, key=lambda pair: pair[0].row)


def describe(old: Song, new: Song) -> str:
    """``lyrics changed``, ``model and normalized_weirdness changed``: the fields whose value differs.

    An earlier request known only from an output line has only the fields the output shows (title, tag, model);
    when those agree, the rest of the request is what changed.
    """
    fields = _differences(old, new)
    if not fields:
        return "the request changed"
    return f"{', '.join(fields[:-1])} and {fields[-1]} changed" if len(fields) > 1 else f"{fields[0]} changed"


def _differences(old: Song, new: Song) -> list[str]:
    """The names of the fields whose value differs (only those an output line shows, when it is all we know)."""
    before, after = old.fields, new.fields
    names = list(dict.fromkeys([*after, *before])) if "lyrics" in before else list(before)
    return [name for name in names if before.get(name) != after.get(name)]


def _song(row: NewRow) -> Song:
    return Song.of(row.title, row.payload, row.row)
