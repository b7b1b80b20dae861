"""The judgement of cuts: each cut is judged by the answers to the requests sent after it (an epoch of their own),
and undone when 429s (or 5xx) did not become rarer: then they were not about the pace, and their share may be
learned as background."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .knobs import Cubic, Flight, Rate
from .meter import Meter

PROBATION_SECONDS = 0.5  # a cut is judged by the requests sent this long after it, at least...
PROBATION_ANSWERS = 16  # ...and by at least this many answers...
MAX_PROBATION_SECONDS = 3.0  # ...but not longer
SCATTERED = 0.2  # a larger share of 429s is about the pace, whatever a cut did to it
LEARN_ANSWERS = 50  # a background share is learned from at least this many answers
QUIET_AFTER_5XX = 10.0  # after 5xx turned out not to be about the pace, how long they are left to the rows


@dataclass(slots=True)
class Tally:
    """The answers to requests sent in one epoch (between two changes of the pace)."""

    answers: int = 0
    throttled: int = 0
    failed: int = 0

    def count(self, status: int) -> None:
        self.answers += 1
        self.throttled += status == 429
        self.failed += status >= 500

    @property
    def share(self) -> float:
        return self.throttled / self.answers if self.answers else 0.0

    @property
    def cause_share(self) -> float:
        """The share of 429s with the 429 that caused a cut left out."""
        return max(self.throttled - 1, 0) / max(self.answers - 1, 1)

    def needed(self, long_share: float) -> int:
        """Answers after a cut that judge it, for this tally before it: enough to expect three 429s at its share
        or the long one, if higher. (This tally ends at the 429 that caused the cut, so it rarely holds another:
        a judgement on 16 answers, where a scattered 5% shows none 44% of the time, let the cut stand, and at
        40 requests/s the rate spiralled down to half.)"""
        share = max(self.cause_share, long_share)
        return max(PROBATION_ANSWERS, min(int(3 / share) if share else 0, 200))


@dataclass(frozen=True, slots=True)
class Cut:
    """A cut under judgement: what it changed (to undo it), its cause, and the epochs before and after it."""

    before: int
    after: int
    at: float
    rate: tuple[float, Cubic, bool]
    window: tuple[float, Cubic | None]
    let_through: float
    cause: int
    closed: bool = False
    hard: bool = False  # the rate was cut again to what got through (:meth:`Judge.press`)
    deep: bool = False  # cut again once, before it was judged (:meth:`Judge.deepen`)


class Judge:
    """The epochs, the cut under judgement, and what the judgements taught: the share of 429s that is background.

    It moves the knobs only back: an undone cut restores both as they were (:meth:`Rate.restore`).
    """

    def __init__(self, meter: Meter, speed: Rate, flight: Flight) -> None:
        self.meter, self.speed, self.flight = meter, speed, flight
        self.epoch = 0
        self.cut: Cut | None = None
        self.background = 0.0  # share of 429s learned not to be about the pace
        self.pressed = float("-inf")  # when most answers of a round-trip were last 429s
        self.quiet_5xx = float("-inf")  # 5xx do not slow the run before then
        self._tallies: dict[int, Tally] = {0: Tally()}
        self._suspect = False  # the last cut judged was undone: one more like it, and the 429s may be background

    def count(self, epoch: int, status: int) -> None:
        self._tallies.setdefault(epoch, Tally()).count(status)

    def opened(self, now: float, cause: int) -> None:
        """A knob is about to be cut (then :meth:`new_epoch`): remember both as they are, to undo it."""
        knobs = (self.speed.snapshot(), self.flight.snapshot())
        self.cut = Cut(self.epoch, self.epoch + 1, now, *knobs, self.meter.last_second(now), cause)

    def deepen(self, now: float) -> None:
        """The cut under judgement is about to be cut again (then :meth:`new_epoch`), keeping what it changed,
        to undo both, and the epoch before it: its judgement starts again from the deeper cut."""
        assert self.cut is not None
        self.cut = replace(
            self.cut, after=self.epoch + 1, at=now, let_through=self.meter.last_second(now), closed=False, deep=True
        )

    def explains(self, now: float) -> bool:
        """Whether the 429s of the last second are no more than twice what the background share explains."""
        answers, throttled = self.meter.throttled_last_second(now)
        return bool(self.background) and throttled <= 2 * answers * self.background + 1

    def press(self, now: float) -> None:
        """Most answers are 429s, to requests sent before the last cut: that cut did not go far enough (or cut
        the window, which is not what a rate limit refuses). Once per cut, the rate comes down to 0.7 of what got
        through in the last second, so that the run does not resume at the rate that was refused when its
        pause is over (two runs starting together on one key refused half as much)."""
        cut, let_through = self.cut, self.meter.last_second(now)
        if cut is not None and not cut.hard and 0 < let_through < self.speed.value:
            self.speed.cut(now, let_through)
            self.cut = replace(cut, hard=True)

    def close_probation(self, now: float) -> None:
        """Requests sent after the probation say nothing about the cut: they go in an epoch of their own."""
        cut = self.cut
        if cut is None or cut.closed or self.epoch != cut.after:
            return
        elapsed, answers = now - cut.at, self._tallies[cut.after].answers
        needed = self._tallies[cut.before].needed(self.meter.long_share())
        if elapsed >= MAX_PROBATION_SECONDS or (elapsed >= PROBATION_SECONDS and answers >= needed):
            self.cut = replace(cut, closed=True)
            self.new_epoch(now)

    def review(self, now: float) -> None:
        """Judge the last cut: undo it if what caused it turns out not to be about the pace."""
        cut = self.cut
        if cut is None:
            return
        pressed = self.pressed > cut.at - PROBATION_SECONDS  # a round of mostly 429s is about the pace
        if cut.cause == 429 and not pressed and self.meter.last_second(now) > 1.2 * cut.let_through + 2:
            self._undo(cut, now)  # more gets through per second than when the 429 came: it was no limit
            return
        after, before = self._tallies[cut.after], self._tallies[cut.before]
        if not cut.closed or (
            now - cut.at < MAX_PROBATION_SECONDS and after.answers < before.needed(self.meter.long_share())
        ):
            return
        self.cut = None
        if cut.cause != 429:
            if after.failed * max(before.answers, 1) >= 0.75 * before.failed * after.answers:
                self._undo(cut, now)  # the errors did not come with the pace: they are the rows' business
                self.quiet_5xx = now + QUIET_AFTER_5XX
        elif not pressed and after.share < SCATTERED and not rarer(after, before):
            self._learn(after, before)
            self._undo(cut, now)
        else:
            self._suspect = False

    def _learn(self, after: Tally, before: Tally) -> None:
        """A second cut in a row undone: the share of 429s around the two is background, if it rests on at least
        :data:`LEARN_ANSWERS` answers. Twice in a row: one judgement can be fooled by another run on the key
        probing its limit. Enough answers: two runs on one key undo each other's cuts, and 3 429s in 19 answers
        around them passed for a background of 16% (the run then ignored its 429s and took the other's share).
        Learned is the smaller of that share and the long one, the 429s of the last few hundred answers."""
        share = self.meter.long_share()
        pooled = (after.throttled + before.throttled) / (after.answers + before.answers)
        if self._suspect and after.answers + before.answers >= LEARN_ANSWERS:
            self.background = min(max(self.background, min(pooled, share)), SCATTERED)
        self._suspect = True

    def _undo(self, cut: Cut, now: float) -> None:
        """Back to the pace before ``cut``, growing as it was: a burst of slow start would only find a limit
        shared with other runs by hitting it."""
        self.cut = None
        self.speed.restore(cut.rate, now, now - cut.at)
        self.flight.restore(cut.window, now - cut.at)
        self.new_epoch(now)

    def new_epoch(self, now: float) -> None:
        self.epoch += 1
        keep = {self.epoch - 1, self.epoch - 2, *((self.cut.before, self.cut.after) if self.cut else ())}
        self._tallies = {e: t for e, t in self._tallies.items() if e in keep}
        self._tallies[self.epoch] = Tally()
        self.speed.slots.reset(now, self.speed.value)


def rarer(after: Tally, before: Tally) -> bool:
    """Whether 429s became rarer after a cut than before it (the 429 that caused the cut left out).

    With enough answers to expect three or more 429s at the earlier share, "rarer" means significantly so
    (two standard deviations); with fewer, none at all after the cut counts as rarer (a laxer rule lets cuts
    stand on little evidence, and under scattered 429s and 5xx each standing cut lowers the next one's base:
    the rate spirals down). None at all is rarer also when three or more were expected.
    """
    share = before.cause_share
    expected = after.answers * share
    if expected < 3:
        return after.throttled == 0 or after.share < 0.75 * share
    return after.throttled == 0 or after.throttled <= expected - 2 * math.sqrt(expected * (1 - share))
