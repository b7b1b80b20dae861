"""A model of what the provider lets through, after TCP BBR: an estimate of the rate that gets through, paced
evenly a little below it (a cruise), and a cycle that probes above it; what a probe shows decides.

A probe sends at ``estimate x (1 + step)`` for a second of requests (a limit per second shows itself within
one) and is judged by the answers to its own requests. More got through: the estimate is what it delivered
(at most its rate) and the next probe, at once, goes twice as far (a run starts, and finds a raised limit, by
doubling), never past a probe refused since the limit last moved. Refusals beyond the background: the limit is
in between; the next probe goes half as far after a cruise twice as long (a probe at the limit costs a refusal
or two: rarer ones keep them few). Refusals beyond the background while cruising: the limit fell, or a probe's
success did not last; the estimate comes down, once per phase.
"""

from __future__ import annotations

import math
from collections import deque

from .phase import MOST_BACKGROUND, Background, Phase

CRUISE = 0.985  # the cruise's share of the estimate
FIRST_STEP, LEAST_STEP, MOST_STEP = 0.25, 0.03, 1.0  # how far a probe goes above the estimate
PROBE_SECONDS, PROBE_REQUESTS = 1.0, 4  # a probe lasts a second of requests, and at least this many
CRUISE_SECONDS, CRUISE_REQUESTS = 1.0, 8  # a cruise at least this long and this many, times ``patience``...
MOST_PATIENCE, LONGEST_CRUISE = 8.0, 8.0  # ...up to 8, and never longer than 8 s: a raised limit is found
START_ROUND = 0.25  # seconds: the start doubles at most this often
DOWN = 0.95  # a cruise with refusals is followed by one this much slower: they stop there if they were a limit's
UNDO = 0.85  # a cut after which less than this share got through, and 429s no rarer, is undone...
NOT_DEEP = 0.3  # ...unless more than this share is refused after it: no background, the cut was not deep enough
JUDGE_LEAST = 4  # answers a cruise needs to judge the one before it...
JUDGE_MORE = 2  # ...and, judging a cut, twice the requests of another (a few say little when 429s are common)
UNDONE_SIGMAS = 1.5  # a cut undone teaches the background from phases this far beyond its most, by chance
IN_A_ROW = 0.01  # refusals with nothing accepted cut when the background brings that many this rarely
LEAST_CUT = 0.9  # a cut in cruise takes at least this much off (two runs on one key both yield)
MIN_RATE = 0.5


class Model:
    """The estimate, the phase of the cycle, the round-trip and what got through in the last second."""

    def __init__(self, start: float) -> None:
        self.estimate, self.step, self.patience = start / 2, MOST_STEP, 1.0
        self.background = Background()
        self.srtt: float | None = None
        self.accepted: deque[float] = deque()  # accepted answers, and sends, of the last second
        self.sends: deque[float] = deque()
        self.drain_until = -math.inf  # nothing is sent until then
        self.start_top = 0  # the most in flight with an accepted request of the start
        self.good: float | None = None  # the highest estimate a whole cruise held at since the last cut
        self.pending: tuple[Phase, float] | None = None  # a cruise with refusals, and the estimate it had
        self.capped = 0  # a cap on requests in flight was found at this many: the window's business
        self.phase = Phase(0, "start", start)
        self._phases = {0: self.phase}
        self._cruise_began = 0.0
        self.refused_at = math.inf  # the slowest probe refused since the limit was last found to move
        self.base: Phase | None = None  # the cruise before the last probe

    @property
    def starting(self) -> bool:
        return self.phase.kind == "start"

    def round_trip(self) -> float:
        return 0.1 if self.srtt is None else max(self.srtt, 0.001)

    def got_through(self) -> float:
        return float(len(self.accepted))

    def growth(self) -> float:
        """What each accepted answer multiplies the start's rate (and a full window) by: doubling per round-trip,
        or per :data:`START_ROUND` if longer (what is sent faster is refused before the first refusal is back)."""
        if not self.starting:
            return 1.0
        return float(2 ** (1 / max(1.0, self.phase.rate * max(self.round_trip(), START_ROUND))))

    def sent(self, now: float) -> int:
        """Count a request in the phase it belongs to (moving on when one has sent enough); its serial."""
        phase, cruised = self.phase, now - self._cruise_began
        if phase.kind == "start" and now - phase.first >= max(self.round_trip(), START_ROUND) and not phase.refused:
            self._begin("start", now, phase.rate)  # the start is judged round by round, a round with refusals on
        elif phase.kind == "cruise" and (
            cruised >= LONGEST_CRUISE
            or (
                phase.sent >= CRUISE_REQUESTS * self.patience * self._more(phase)
                and cruised >= CRUISE_SECONDS * self.patience
            )
        ):
            if cruised >= LONGEST_CRUISE:
                self.step = max(self.step, FIRST_STEP)  # long since the limit was found: it may have moved
                self.refused_at = math.inf
            self.base = phase
            self._begin("probe", now, self._probe_rate())
        self.sends.append(now)
        while self.sends[0] <= now - 1.0:
            self.sends.popleft()
        phase = self.phase
        phase.sent += 1
        phase.first, phase.last = min(phase.first, now), now
        if phase.kind == "probe" and phase.sent >= max(PROBE_REQUESTS, PROBE_SECONDS * phase.rate):
            self._begin("cruise", now, self.estimate * CRUISE)  # the probe is sent: cruise while it is judged
        return phase.serial

    def unsent(self, serial: int, at: float) -> None:
        """A request counted by :meth:`sent` at ``at`` never left."""
        phase = self._phases.get(serial)
        if phase is not None:
            phase.sent = max(phase.sent - 1, 0)
        if at in self.sends:
            self.sends.remove(at)

    def answered(self, now: float, serial: int, latency: float, verdict: str, rate: float, flight: int) -> None:
        """An answer to a request of phase ``serial``, sent at ``rate`` with ``flight`` in flight: ``accepted``,
        ``refused`` (a 429 about the pace), ``bounded`` (a 429 beyond a cap on requests in flight already
        found) or ``other`` (a 5xx, a 429 of a window the provider announced, no answer)."""
        if verdict == "accepted":
            self.srtt = latency if self.srtt is None else 0.875 * self.srtt + 0.125 * latency
            self.accepted.append(now)
            if self.starting:
                self.start_top = max(self.start_top, flight)
        while self.accepted and self.accepted[0] <= now - 1.0:
            self.accepted.popleft()
        phase = self._phases.get(serial)
        if phase is None:
            return
        phase.count(verdict, flight)
        if phase.kind == "probe":
            self._judge(now, phase, verdict == "bounded")
        elif (
            phase.refused
            and not phase.cut
            and (
                (not phase.accepted and phase.refused >= self._in_a_row())  # nothing got through: far too fast
                or (
                    (phase.judges is None or self._not_deep(phase))
                    and self.background.exceeded(phase, *((2, False) if self._above_good() else (3, True)))
                )
            )
        ):
            if not phase.accepted and not phase.answered:
                # refused at once, the accepted answers still on their way: wait for them (they tell a cap on
                # requests in flight, refused only beyond what was accepted, from a rate)
                self.drain_until = max(self.drain_until, now + self.round_trip())
            elif (phase.beyond and min(phase.accepted, phase.refused) >= 2) or (
                phase.kind == "start" and phase.low_refused > self.start_top > 0
            ):
                # (the start is judged round by round: a cap shows across its rounds, not within the last)
                self._capped(now, phase, max(phase.top_accepted, self.start_top if phase.kind == "start" else 0))
            else:
                self._cut(now, phase, rate)
        elif phase is not self.phase and phase.answered:
            self._done(phase)

    def resumed(self, now: float) -> None:
        """After a pause of the whole run (a window the provider announced, a burst refused with a Retry-After),
        what got through in the last second is the estimate."""
        if self.accepted:
            self.estimate, self.step = self.got_through(), FIRST_STEP
            self._begin("cruise", now, self.estimate * CRUISE)

    def _judge(self, now: float, probe: Phase, bounded: bool) -> None:
        """A probe that found the limit is over at its first refusal beyond the background (or beyond a cap on
        requests in flight); one that got more through, when its last answer comes."""
        if bounded or (probe.refused and self.background.exceeded(probe, 2)):
            self.capped = probe.top_accepted if probe.beyond else 0
            if not bounded and not probe.beyond:  # refused for its rate, not for one more in flight
                self.refused_at = min(self.refused_at, probe.rate)
            self._found(now, probe)
        elif probe.answered and self.phase is not probe:
            self._forget(probe)
            through = 1 - self._refused_share()
            if probe.delivered() < self.estimate * through * (1 + probe.rate / self.estimate) / 2:
                self.step = max(self.step / 2, LEAST_STEP)  # held back by something else (the window, rows)
                return
            if self.pending is not None:  # more got through above it: its refusals were not the pace's
                self.background.learn(self.pending[0])
                self.pending = None
            # what got through, not what was sent: two runs on one key that each took their probe's rate would
            # together stay above the limit, each refused a little, too little to cut on
            self.estimate = max(min(probe.rate, probe.delivered() / through), self.estimate)
            self.step, self.patience = min(2 * self.step, MOST_STEP), 1.0
            if probe.rate >= self.refused_at:
                self.refused_at = math.inf  # the limit rose
            self._begin("probe", now, self._probe_rate())

    def _refused_share(self) -> float:
        """The share of 429s a probe is judged net of: the background's, or the cruise's before it if more (up to
        :data:`MOST_BACKGROUND`): a probe refused as often as that cruise, at its higher rate, got more through,
        whether or not the background is learned yet (it was held "back by something else" at a fifth of 429s)."""
        share, base = self.background.share, self.base
        if base is not None and base.accepted + base.refused >= 2 * JUDGE_LEAST:
            share = max(share, min(base.refused / (base.accepted + base.refused), MOST_BACKGROUND))
        return share

    def _in_a_row(self) -> int:
        """Refusals with nothing accepted that the background would bring less than 1% of the time: two at the
        prior (5%), three at a fifth of 429s learned (two in a row came every few phases, each a halving)."""
        share = min(self.background.share, MOST_BACKGROUND)
        return max(2, math.ceil(math.log(IN_A_ROW) / math.log(share)))

    @staticmethod
    def _more(phase: Phase) -> float:
        """How many times the requests of another cruise this one sends: twice, when it judges a cut."""
        judged = phase.judges
        return JUDGE_MORE if judged is not None and judged.cut else 1.0

    def _probe_rate(self) -> float:
        """The estimate plus the step, but no further than halfway (in ratio) to a probe's rate refused before:
        the limit is below it, and a probe beyond it would cost refusals to learn nothing."""
        rate = self.estimate * (1 + self.step)
        if rate < self.refused_at:
            return rate
        return max(math.sqrt(self.estimate * self.refused_at), self.estimate * (1 + LEAST_STEP))

    @staticmethod
    def _not_deep(phase: Phase) -> bool:
        """More than :data:`NOT_DEEP` of a cruise after a cut refused, by one and a half standard deviations: a
        scattered 429 or two among few answers is no sign that the cut was too shallow."""
        answers = max(phase.answers, JUDGE_LEAST)
        return phase.refused > NOT_DEEP * answers + 1.5 * math.sqrt(NOT_DEEP * (1 - NOT_DEEP) * answers)

    def _above_good(self) -> bool:
        """The estimate is a probe's, above one a whole cruise held at: a cut to that costs little."""
        return self.good is not None and self.good < self.estimate

    def _capped(self, now: float, phase: Phase, top: int) -> None:
        """A cap on requests in flight (``top``, the most that were accepted): the window takes it, the estimate
        is the rate it allows (a probe tries one more in flight, at a rate that would need it), and refusals
        within the cap are a rate's."""
        phase.cut, self.capped = True, top
        self.estimate, self.step = max(self.capped / self.round_trip(), MIN_RATE), FIRST_STEP
        self._begin("cruise", now, self.estimate * CRUISE)

    def _found(self, now: float, probe: Phase) -> None:
        """The limit is between the estimate and the probe: the next goes half as far, after a longer cruise that
        starts once what the probe sent beyond it is behind."""
        self._narrow()
        self._forget(probe)
        if self.phase is probe:
            self._begin("cruise", now, self.estimate * CRUISE)
        self.phase.after_probe = True
        excess = probe.sent - (probe.last - probe.first) * self.phase.rate
        self.drain_until = max(self.drain_until, now + min(max(excess, 0.0) / self.phase.rate, 1.0))

    def _cut(self, now: float, phase: Phase, rate: float) -> None:
        """Refusals beyond the background. After a probe's success that did not last (a burst allowance let it
        through), back to the estimate a cruise held at; else down to what got through while refused (a sliding
        window's limit, a strict bucket's at worst half), by at least :data:`LEAST_CUT`, by half when nothing
        got through or in the start. Then nothing is sent until the excess of the last second is behind."""
        phase.cut, self.pending = True, None
        if self.good is not None and self.good < self.estimate:
            self.estimate = self.good
            self._narrow()
            self._begin("cruise", now, self.estimate * CRUISE)
        else:
            before, through = self.estimate, min(self.got_through(), rate)
            if phase.kind != "start" and phase.accepted:
                through = min(max(phase.delivered(), through), LEAST_CUT * rate)
            self.estimate, self.step, self.patience = max(through, 0.5 * rate, MIN_RATE), FIRST_STEP, 1.0
            self._begin("cruise", now, self.estimate * CRUISE)
            if phase.kind == "cruise" and phase.accepted:  # the cruise after it judges the cut
                self.phase.judges, self.phase.before = phase, before
        self.good = None
        excess = sum(1 for at in self.sends if at > now - 1.0) - self.estimate
        self.drain_until = max(self.drain_until, now + min(max(excess, 0.0) / self.estimate, 1.0))

    def _narrow(self) -> None:
        self.step = max(self.step / 2, LEAST_STEP)
        self.patience = min(2 * self.patience, MOST_PATIENCE)

    def _done(self, phase: Phase) -> None:
        """Every request of a cruise that is over was answered and no cut came of it: its estimate held. Its
        refusals, if any, may be the background or a limit just below: a slower cruise says which."""
        self._forget(phase)
        if phase.kind != "cruise" or phase.cut:
            return
        judged = phase.judges
        if judged is not None and phase.answers < JUDGE_LEAST:  # too few answers to judge: no one does
            return
        if judged is not None:
            rarer = phase.refused * judged.answers * 2 < judged.refused * phase.answers
            less = phase.delivered() < UNDO * judged.delivered()  # a cut: did it cost what got through?
            if not rarer and (less or not judged.cut):
                self.estimate = max(self.estimate, phase.before)  # no rarer when slower: not the pace's
                # a cut undone is the surest sign of a background: both phases teach it even when chance made a
                # third of their few answers 429s (a fifth of 429s was never learned, and the pace sank by halves)
                sigmas = UNDONE_SIGMAS if judged.cut else 0.0
                self.background.learn(judged, sigmas)
                self.background.learn(phase, sigmas)
            else:
                self.background.learn(phase)
        elif phase.refused and not phase.after_probe and self.pending is None:
            self.pending = (phase, self.estimate)
            self.estimate *= DOWN
        elif not phase.after_probe:
            self.background.learn(phase)
        self.good = max(self.good or 0.0, phase.rate / CRUISE)

    def _begin(self, kind: str, now: float, rate: float) -> None:
        ended = self.phase
        if ended.kind != "probe" and ended.answered and ended.serial in self._phases:
            self._done(ended)
        self.phase = Phase(ended.serial + 1, kind, max(rate, MIN_RATE))
        self._phases[self.phase.serial] = self.phase
        if kind == "cruise":
            self._cruise_began = now
            if self.pending is not None:
                self.phase.judges, self.phase.before = self.pending
                self.pending = None

    def _forget(self, phase: Phase) -> None:
        self._phases.pop(phase.serial, None)
