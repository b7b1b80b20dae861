"""What the journal of an output lacks, restored before anything is sent; rows sent elsewhere, left out.

A journal can miss what was sent: job ids saved to a rescue file after a failed write, rows the ledger says were
sent to this output (the journal was deleted, or restored from an older backup), and, when the journal is new,
rows whose job ids the existing output shows. Each is marked done (or ``unknown`` when no id came back) so it
is never sent again. Rows the ledger says were sent to another output are left out as ``skipped``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .journal import EarlierLine, Journal, LeftOut, NewRow, now
from .journal.view import EarlierRow
from .ledger import RELEASED, Batch, Entry, Ledger, Sent, Song
from .rescue import clear_rescued, load_rescued
from .results import State
from .writer import read_jobs

OUTPUT_FIELDS = ("row", "title", "job_id", "key", "tag", "model", "submitted_at")
LEGACY_IDENTITY = ("row", "title", "tag", "model")

log = logging.getLogger("batchgen")


@dataclass(slots=True)
class History:
    """The earlier runs of ``rows`` as the rescue file, the ledger and the output at ``output`` know them."""

    journal: Journal
    rows: Sequence[NewRow]
    output: Path
    ledger: Ledger | None

    def restore(self, existed: bool) -> int:
        """Job ids the journal lacks: from a rescue file, the ledger (this output), and the output itself."""
        journal = self.journal
        states = journal.states()
        restored = 0
        entries = load_rescued(self.output)
        for entry in entries:
            if states.get(entry["key"], State.DONE) != State.DONE:
                journal.mark_done(entry["key"], list(entry["job_ids"]), None, "rescued after a failed journal write")
                states[entry["key"]] = State.DONE
                restored += 1
        if entries and all(states.get(entry["key"]) == State.DONE for entry in entries):
            clear_rescued(self.output)
        if self.ledger is not None:
            restored += self._from_ledger(states)
        if not existed:
            restored += self._from_output(states)
        if restored:
            log.warning(
                "%d row(s) restored to the journal from earlier runs (rescue file, ledger or output); "
                "they are not sent again",
                restored,
            )
        return restored

    def _from_ledger(self, states: dict[str, str]) -> int:
        """Make the journal and this output's ledger entries agree, before anything is claimed.

        The ledger is written first (a claim precedes ``in_flight``), the journal second, and the ledger
        follows the answers lazily. So: ids the ledger has for this output and the journal lacks are restored,
        whichever journal wrote them (a replaced machine, a deleted journal); outcomes the ledger lacks are
        brought up to date from the journal; and a claim of this journal whose row it has as not sent is
        released when the journal is not older than the claim (a crash between the two writes), else the row is
        ``unknown`` (the journal was restored from a backup). A claim of another journal at this output is never
        this run's own: another machine's (a twin of the same name, live or not) is left out as ``skipped`` with
        the rows other outputs hold; one of this machine's earlier journal (deleted since: the output's lock
        rules out a live one) is taken over, its row ``unknown``.
        """
        assert self.ledger is not None
        journal, output = self.journal, self.ledger.output
        identity, sequence = journal.identity(), journal.sequence()
        billed = journal.billed()
        restored = 0
        fixes: list[Entry] = []
        taken: set[str] = set()
        stamp = now()
        here = [sent for sent in self.ledger.lookup(states) if sent.output == output]
        for sent in here:
            state = states.get(sent.key)
            if state is None:
                continue
            if sent.state == State.DONE and sent.job_ids:
                if state != State.DONE:
                    journal.mark_done(sent.key, list(sent.job_ids), None, "restored from the ledger of sent rows")
                    states[sent.key] = State.DONE
                    restored += 1
            elif not sent.owned(output, identity):
                if sent.machine not in (None, self.ledger.machine):
                    continue  # another machine's: never this run's own (skipped below)
                taken.add(sent.key)  # this machine's journal, deleted since: its claim may have left
                if state != State.DONE:
                    self._unknown(sent, states)
                    restored += 1
                fixes.append(
                    Entry(sent.key, states[sent.key], stamp, tuple(billed.get(sent.key, ())), sent.journal or "")
                )
            elif state in (State.DONE, State.UNKNOWN):
                fixes.append(Entry(sent.key, state, stamp, tuple(billed.get(sent.key, ()))))
            elif sent.seq is not None and sent.seq <= sequence + 1:
                fixes.append(Entry(sent.key, RELEASED, stamp))
            else:
                self._unknown(sent, states)
                restored += 1
        known = taken | {sent.key for sent in here if sent.owned(output, identity)}
        missing = {key: ids for key, ids in billed.items() if key not in known}  # the ledger was out of reach
        fixes += [Entry(key, states[key], stamp, tuple(ids)) for key, ids in missing.items()]
        new = taken | set(missing)  # entries written here for the first time: with the rows they are of
        songs = {
            record.key: Song.of(record.title, record.body.decode(), record.row)
            for record in (journal.records() if new else ())
            if record.key in new
        }
        if fixes:
            self.ledger.write(Batch(entries=fixes, journal=identity, songs=songs))
        return restored

    def _unknown(self, sent: Sent, states: dict[str, str]) -> None:
        """A claim the ledger holds for this output and the journal cannot account for: it may have left."""
        self.journal.mark_unknown(
            sent.key,
            None,
            f"sent on {sent.sent_at} (per the ledger) without a stored job id: the provider may have created jobs",
        )
        states[sent.key] = State.UNKNOWN

    def _from_output(self, states: dict[str, str]) -> int:
        """A new journal beside an existing output: rows whose job ids the output shows are done already.

        A line belongs to a row by the row's key (the output's ``key`` column), never by title or place alone,
        so an edited row never gets the ids of its earlier version; lines of rows no longer in the input are
        recorded as sent earlier (an edited row at their place is then ``changed``). An output written before
        keys were recorded is matched by place, title, tag and model together.
        """
        header, lines = read_jobs(self.output)
        if not lines:
            return 0
        known = {job_id for done in self.journal.done() for job_id in done.job_ids}
        column = {name: header.index(name) for name in OUTPUT_FIELDS if name in header}
        groups: dict[str, _Line] = {}
        for line in lines:
            values = {name: _text(line[index]) if index < len(line) else "" for name, index in column.items()}
            if values.get("job_id") and values["job_id"] not in known:
                identity = values.get("key") or "\0".join(values.get(name, "") for name in LEGACY_IDENTITY)
                groups.setdefault(identity, _Line(values)).ids.append(values["job_id"])
        by_key = {row.key: row for row in self.rows}
        by_place = {"\0".join((str(row.label), row.title, *_tag_model(row.payload))): row for row in self.rows}
        restored = 0
        earlier: list[EarlierLine] = []
        for identity, found in groups.items():
            keyed = bool(found.values.get("key"))  # a line written before keys were: by place, title, tag, model
            row = by_key.get(identity) if keyed else by_place.get(identity)
            if row is not None and states.get(row.key) != State.DONE:
                self.journal.mark_done(row.key, found.ids, None, "restored from the existing output")
                states[row.key] = State.DONE
                restored += 1
            elif row is None and keyed:
                earlier.append(found.earlier(identity))
        self.journal.add_earlier(earlier)
        return restored

    def skip_sent_elsewhere(self) -> int:
        """Rows the ledger says were sent to another output, or by another journal of this one, are left out
        (``allow_resend`` skips this)."""
        if self.ledger is None:
            return 0
        journal, output, machine = self.journal, self.ledger.output, self.ledger.machine
        identity = journal.identity()
        states = journal.states()
        by_key = {row.key: row for row in self.rows}
        skipped: dict[str, LeftOut] = {}
        holders: list[str] = []
        for sent in self.ledger.lookup(by_key):
            row = by_key.get(sent.key)
            if row is None or sent.owned(output, identity) or states.get(sent.key) == State.DONE or sent.key in skipped:
                continue
            holder = sent.holder(output, machine)
            skipped[sent.key] = LeftOut(
                row.row,
                row.label,
                row.title,
                f"{sent.went(holder)}; not sent again (`allow_resend` sends it anyway)",
                row.extras,
                State.SKIPPED,
                row.key,
            )
            holders.append(holder)
        if skipped:
            journal.leave_out(list(skipped.values()))
            report_skipped(Counter(holders))
        return len(skipped)

    def sent_elsewhere(self, rows: Sequence[EarlierRow], in_file: Collection[str]) -> list[EarlierRow]:
        """Those of ``rows`` (never sent by this output) that the ledger says another output (or another journal
        of this one) sent, as sent then; and the rows the ledger has of the titles of the rows still to send,
        known to no journal of this output and no longer in the input (keys not ``in_file``): an edit of one of
        them is an edit of a paid song.

        A row of another output counts only when that output also sent rows still in the input (a shard of this
        sheet, another machine's run of it): a song of another album that shares a title is another song. Rows
        of this output count whichever journal sent them (one deleted since).
        """
        if self.ledger is None:
            return []
        output, identity = self.ledger.output, self.journal.identity()
        sent = {
            entry.key: entry
            for entry in self.ledger.lookup(row.key for row in rows)
            if not entry.owned(output, identity)
        }
        found = [
            replace(row, state=sent[row.key].state, sent_at=sent[row.key].sent_at) for row in rows if row.key in sent
        ]
        states = self.journal.states()
        titles = {
            Song.of(row.title, row.payload, row.row).title
            for row in self.rows
            if states.get(row.key) in (State.PENDING, State.FAILED)
        }
        known = set(states) | set(in_file)
        earlier = [
            (entry, entry.song)
            for entry in (self.ledger.lookup_titles(titles) if titles else ())
            if entry.song is not None and entry.key not in known and not entry.owned(output, identity)
        ]
        if earlier:
            siblings = {output} | {entry.output for entry in self.ledger.lookup(in_file)}
            for entry, song in earlier:  # oldest first: of one row sent to several outputs, the first is named
                if entry.output in siblings and entry.key not in known:
                    known.add(entry.key)
                    found.append(EarlierRow(entry.key, song.row, "", "{}", entry.state, entry.sent_at, song))
        return found


def report_skipped(holders: Mapping[str, int]) -> None:
    """Rows left out because another output has them: the user learns which output, on the console too."""
    for output, count in holders.items():
        log.warning(
            "%d row(s) were already sent to %s and are skipped (`allow_resend` sends them anyway)", count, output
        )


@dataclass(slots=True)
class _Line:
    """The lines of one row in an existing output: its values (from the first line) and every job id."""

    values: dict[str, str]
    ids: list[str] = field(default_factory=list)

    def earlier(self, key: str) -> EarlierLine:
        values = self.values
        number = values.get("row", "")
        request = {name: values[name] for name in ("title", "tag", "model") if values.get(name)}
        return EarlierLine(
            key,
            int(number) if number.isdigit() else 0,
            values.get("title", ""),
            json.dumps(request, ensure_ascii=False),
            self.ids,
            values.get("submitted_at", ""),
        )


def _text(value: object) -> str:
    """A cell as text; Excel's whole numbers (row numbers read back as 6.0) without their decimals."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _tag_model(payload: str) -> tuple[str, str]:
    request = json.loads(payload)
    return str(request.get("tag", "")), str(request.get("model", ""))
