"""How fast requests may start and how many may be in flight: two knobs, a rate (:class:`Rate`) and a window
(:class:`Flight`), that find the provider's limit whatever its shape and hold it with few 429s.

The model is the contract's ("Pace (429s)", "Limits have shapes"), after the AWS SDKs' adaptive retry mode
(botocore's token bucket and ``CubicCalculator``) for the rate, Netflix's concurrency-limits (AIMD) and TCP's
congestion window for the window:

* slow start: the rate doubles each round-trip until the first 429, so a hidden limit is found quickly;
* a 429 cuts the rate to 0.7 of what was being sent (or let through, if less), at most once per round-trip:
  only a 429 to a request sent after the last cut counts. CUBIC then grows it back while answers come
  without 429s: to just below the rate of the cut within :data:`RECOVERY` seconds, a plateau there, then a
  probe beyond it. (K is a fixed time rather than botocore's ``C``-derived one, so recovery takes as long at
  300 requests/s as at 3.)
* scattered 429s are told apart by evidence. A cut is judged by the answers to requests sent in the half
  second after it: if 429s did not become rarer, or if more got through per second than when the 429 came,
  they were not about the pace. The cut is undone (growth resumes where it stood, but a probe beyond the last
  cut first holds a plateau), and when two judgements in a row say so (one can be fooled by another run on
  the same key probing the limit at that moment), their share is learned as background, so that later 429s
  at that share cost nothing; unless the 429s around those cuts were over twice as frequent as over the last
  few hundred answers: scattered 429s come at any moment, a limit's (shared with another run) around the cuts;
* the whole run pauses (for the Retry-After) only when most answers of the last round-trip were 429s, and
  then the rate comes down to 0.7 of what got through, if the last cut left it above that;
* 5xx answers slow the run like a 429 only when most recent answers are 5xx;
* ``cap`` (``rate``) is a hard ceiling on top: a token bucket on absolute times (GCRA), so timer lateness
  never accumulates;
* a window bounds the requests in flight (at most ``ceiling``, the ``concurrency``): it starts small, doubles per
  round-trip while it is full, and a 429 cuts it instead of the rate when its request went with the window
  nearly full and more in flight than any accepted request (what a cap on requests in flight refuses); CUBIC
  regrows it like the rate. A rate limit's 429s come at any number in flight: they cut the rate;
* a Retry-After beyond :data:`LONG_RETRY_AFTER` (a quota) pauses the whole run for that long at once, and is no
  reason to cut: it says nothing about the pace.

The clock is injected, so the control law is tested in milliseconds on a fake one (``tests/pace_sim.py``).
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

BETA = 0.7  # the multiplicative cut
RECOVERY = 1.5  # CUBIC's K: seconds to grow back to the rate of the last cut
PLATEAU = 3.0  # then hold just below it this many times as long before probing beyond it
HOLD = 0.98  # the plateau's height: the rate of a cut was at the limit
PROBE = 2.0  # then probe beyond it this many times as long, before slow start takes over
MIN_RATE = 0.5
ROUND_MIN = 4  # answers that make a round-trip's evidence, when a round-trip holds fewer
ROUND_MIN_5XX = 8  # ...and for a storm of 5xx, which the rows' own backoff handles until it is clear
PROBATION_SECONDS = 0.5  # a cut is judged by the requests sent this long after it, at least...
PROBATION_ANSWERS = 16  # ...and by at least this many answers...
MAX_PROBATION_SECONDS = 3.0  # ...but not longer
SCATTERED = 0.2  # a larger share of 429s is about the pace, whatever a cut did to it
SHARE_HORIZON = 500  # answers over which the share of 429s is averaged
DEFAULT_PAUSE = 1.0
SLACK = 0.002
QUIET_AFTER_5XX = 10.0  # after 5xx turned out not to be about the pace, how long they are left to the rows
TOLERANCE = 0.02  # a slot taken this late keeps the grid: over any second, at most 2% + 1 more than the rate
START_WINDOW = 4  # requests in flight before the first answers (TCP's initial window, in requests)
HORIZON = 4.0  # seconds of sends and accepted answers kept to measure rates over
RECENT_ACCEPTED = 64  # accepted answers whose numbers in flight tell a cap on requests in flight
LONG_RETRY_AFTER = 60.0  # a Retry-After this long is a state of the run (a quota), not a pace


@dataclass(frozen=True, slots=True)
class Ticket:
    """Handed out with each send; given back with the answer to tell which pace it was sent at, how many were
    in flight with it, and whether it filled the window (only then does an answer say the window is used)."""

    sent_at: float
    epoch: int
    flight: int = 1
    filled: bool = False


@dataclass(slots=True)
class _Tally:
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

    def needed(self) -> int:
        """Answers after a cut that judge it, for this tally before it: enough to expect three 429s."""
        share = self.cause_share
        return max(PROBATION_ANSWERS, min(int(3 / share) if share else 0, 200))


@dataclass(frozen=True, slots=True)
class _Cut:
    """A cut under judgement: what it changed (to undo it), its cause, and the epochs before and after it."""

    before: int
    after: int
    at: float
    rate: tuple[float, Cubic, bool]
    window: tuple[float, Cubic | None]
    let_through: float
    cause: int
    closed: bool = False
    hard: bool = False  # the rate was cut again to what got through (:meth:`Pace._press`)


@dataclass(frozen=True, slots=True)
class Cubic:
    """Growth after the cut at ``last_cut`` from ``w_max``: botocore's ``CubicCalculator`` with a fixed K
    (:data:`RECOVERY`), then a plateau just below ``w_max`` and a probe beyond it."""

    w_max: float
    last_cut: float

    def later(self, seconds: float) -> Cubic:
        """The same growth, ``seconds`` later: time stands still while an undone cut was judged."""
        return Cubic(self.w_max, self.last_cut + seconds)

    def probing(self, now: float) -> bool:
        """Whether growth is past the plateau: probing beyond ``w_max``, or over (slow start)."""
        return now - self.last_cut >= RECOVERY * (1 + PLATEAU)

    def target(self, now: float) -> float | None:
        """The rate CUBIC allows at ``now``; None once the probe found no 429 (slow start takes over)."""
        since = now - self.last_cut
        if since >= RECOVERY * (1 + PLATEAU + PROBE):
            return None
        if RECOVERY <= since < RECOVERY * (1 + PLATEAU):
            return self.w_max * HOLD
        since = since if since < RECOVERY else since - RECOVERY * PLATEAU
        return self.w_max * (HOLD + (HOLD - BETA) * ((since - RECOVERY) / RECOVERY) ** 3)


class Slots:
    """Start times on a grid of ``1 / rate`` in absolute time (a token bucket as GCRA), and the run's pause."""

    def __init__(self) -> None:
        self.next = 0.0
        self.paused_until = 0.0

    def wait(self, now: float) -> float:
        """Seconds until the next slot (0: now). One less than :data:`SLACK` away is taken at once: a timer
        cannot wait less than about a millisecond, and the grid keeps the rate exact over any longer span."""
        wait = max(self.paused_until - now, self.next - now)
        return wait if wait > SLACK else 0.0

    def take(self, now: float, rate: float) -> None:
        """The next slot is one interval after this one, not after now: a wake-up up to :data:`TOLERANCE` late
        costs nothing (the slot after it comes that much sooner), so timer lateness never erodes the rate. Later
        than that the grid restarts from now: after an idle spell, no burst."""
        self.next = (self.next if now - self.next <= TOLERANCE else now) + 1 / rate

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def reset(self, now: float, rate: float) -> None:
        """A new rate applies from now: a slot set far off by a slower one is brought forward."""
        self.next = min(self.next, now + 1 / rate)


class Flight:
    """The window of requests in flight: TCP's congestion window counted in requests (Netflix's AIMD limit).

    It grows only while it is used (slow start: one more for each accepted answer to a request that filled it,
    so it doubles per round-trip while every request fills it). A 429 is about the window when its request went
    with more in flight than any accepted one of late (a cap on requests in flight refuses exactly those); a cut
    sets it to 0.7 of that, and CUBIC regrows it like the rate, at most one beyond the most in flight since.
    A request that went with more in flight than before but the window far from full was sent by the rate (a
    rate in slow start overshooting a rate limit does that): a 429 to it is the rate's. ``ceiling``
    (the ``concurrency``) is never exceeded.
    """

    def __init__(self, ceiling: int | None) -> None:
        self.ceiling = ceiling
        self.window = float(min(START_WINDOW, ceiling or START_WINDOW))
        self.count = 0
        self.fine: deque[int] = deque(maxlen=RECENT_ACCEPTED)  # in flight with each recently accepted request
        self.peak = 0  # the most in flight since the last cut: CUBIC grows the window at most one beyond it
        self.cubic: Cubic | None = None  # None: slow start

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now (a window of 4.9, CUBIC's plateau below a cut at 5, allows 4)."""
        allowed = max(1, int(self.window + 0.05))
        return min(allowed, self.ceiling) if self.ceiling else allowed

    def room(self) -> bool:
        return self.count < self.allowed

    def sent(self, now: float) -> tuple[int, bool]:
        """Count a request; (requests in flight with it, whether it filled the window)."""
        if self.cubic is not None:
            target = self.cubic.target(now)
            self.cubic = None if target is None else self.cubic
            self.window = self._bounded(min(target, self.peak + 1) if target is not None else self.window)
        self.count += 1
        self.peak = max(self.peak, self.count)
        return self.count, self.count >= self.allowed

    def released(self) -> None:
        self.count = max(self.count - 1, 0)

    def accepted(self, ticket: Ticket) -> None:
        self.fine.append(ticket.flight)
        if self.cubic is None and ticket.filled:
            self.window = self._bounded(self.window + 1)

    def too_many(self, ticket: Ticket) -> bool:
        """Whether a 429 to ``ticket`` is about the number in flight: it went with more in flight than any
        accepted request, and with the window nearly full (were it far from full, the rate sent it)."""
        return ticket.flight > max(self.fine, default=0) and ticket.flight >= BETA * self.allowed

    def cut(self, now: float, flight: int) -> None:
        self.cubic, self.peak = Cubic(float(flight), now), 0
        self.window = self._bounded(BETA * flight)

    def snapshot(self) -> tuple[float, Cubic | None]:
        return self.window, self.cubic

    def restore(self, snapshot: tuple[float, Cubic | None], paused: float) -> None:
        """Back to a window from before a cut, growing as it was ``paused`` seconds ago."""
        self.window, cubic = snapshot
        self.cubic = None if cubic is None else cubic.later(paused)

    def _bounded(self, window: float) -> float:
        window = max(window, 1.0)
        return min(window, float(self.ceiling)) if self.ceiling else window


class Moments:
    """Moments of the last :data:`HORIZON` seconds, counted since any moment in O(log n): the pace asks on every
    request."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._start = 0

    def add(self, moment: float) -> None:
        self._times.append(moment)

    def count_since(self, moment: float, now: float) -> int:
        self._trim(now)
        return len(self._times) - bisect.bisect_left(self._times, moment, self._start)

    def _trim(self, now: float) -> None:
        self._start = bisect.bisect_left(self._times, now - HORIZON, self._start)
        if self._start > 1024 and self._start * 2 > len(self._times):
            del self._times[: self._start]
            self._start = 0


class Meter:
    """What the pace sees: round-trip time, sends and answers per second, the last round-trip's answers."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.srtt: float | None = None
        self.share = 0.0  # share of 429s over the last few hundred answers (an average that starts at 0...)
        self.weight = 0.0  # (...so it is read divided by its weight so far: Adam's bias correction)
        self.began: float | None = None
        self.sends = Moments()
        self.accepted = Moments()
        self.recent: deque[tuple[float, int]] = deque(maxlen=256)

    def sent(self, now: float) -> None:
        self.began = now if self.began is None else self.began
        self.sends.add(now)

    def answered(self, now: float, latency: float, status: int) -> None:
        self.srtt = latency if self.srtt is None else 0.875 * self.srtt + 0.125 * latency
        self.recent.append((now, status))
        if status != 429 and status < 500:
            self.accepted.add(now)

    def sample(self, throttled: bool) -> None:
        """Count an answer in the long share of 429s (:meth:`long_share`)."""
        self.share += (throttled - self.share) / SHARE_HORIZON
        self.weight += (1 - self.weight) / SHARE_HORIZON

    def long_share(self) -> float:
        """The share of 429s over the last few hundred answers."""
        return self.share / self.weight if self.weight else 0.0

    def round_trip(self) -> float:
        return self.srtt if self.srtt is not None else 0.1

    def per_second(self, moments: Moments, now: float, span: float = 1.0) -> float:
        """Events per second over the last ``span`` (at most a second), or since sending began if shorter."""
        if self.began is None:
            return 0.0
        span = max(min(now - self.began, span, HORIZON), self.round_trip(), 0.05)
        return moments.count_since(now - span, now) / span

    def last_second(self, now: float) -> float:
        """Answers other than 429 and 5xx in the last second: what a per-second limit let through."""
        return float(self.accepted.count_since(now - 1.0, now))

    def most_recent(self, test: Callable[[int], bool], now: float, least: int = ROUND_MIN) -> bool:
        """Whether most answers of the last round-trip (at least ``least`` of them) pass ``test``."""
        window = [status for at, status in self.recent if now - at <= self.round_trip()]
        if len(window) < least:
            window = [status for _, status in list(self.recent)[-least:]]
        return len(window) >= least and sum(map(test, window)) * 2 > len(window)

    def throttled_last_second(self, now: float) -> tuple[int, int]:
        """(answers, 429s) in the last second."""
        window = [status for at, status in self.recent if now - at <= 1.0]
        return len(window), window.count(429)


class Rate:
    """The send rate: slow start, CUBIC after a cut, ``cap`` (``rate``) on top, and the slots it hands out.

    Growth must be earned: never above twice what is actually being sent, or a run held back by its window
    would accumulate a meaningless rate.
    """

    def __init__(self, start: float, cap: float | None, now: float) -> None:
        self.cap = cap
        self.value = min(start, cap) if cap else start
        self.slow_start = True
        self.cubic = Cubic(self.value, now)
        self.slots = Slots()

    def grow(self, now: float, sending: float) -> None:
        """CUBIC after a cut; slow start again once it probed well beyond the last cut without a 429."""
        if self.slow_start:
            return
        target = self.cubic.target(now)
        if target is None:
            self.slow_start = True
            return
        self.value = self._ceiling(max(target, MIN_RATE), sending)

    def accepted(self, round_trip: float, sending: float) -> None:
        """In slow start, each accepted answer multiplies the rate by ``2 ** (1 / answers in a round-trip)``."""
        if self.slow_start:
            answers_per_round = max(1.0, self.value * round_trip)
            self.value = self._ceiling(self.value * 2 ** (1 / answers_per_round), sending)

    def cut(self, now: float, base: float) -> None:
        self.cubic, self.value, self.slow_start = Cubic(base, now), max(MIN_RATE, base * BETA), False

    def snapshot(self) -> tuple[float, Cubic, bool]:
        return self.value, self.cubic, self.slow_start

    def restore(self, snapshot: tuple[float, Cubic, bool], now: float, paused: float) -> None:
        """Back to a rate from before a cut, growing as it was ``paused`` seconds ago, except that a probe
        beyond the last cut does not go on at once: it first holds a plateau at the rate it had reached. (Two
        runs on one key undo each other's cuts, the other's probe making the 429s "not rarer"; resumed probes
        then climbed together, run after run, into a train of 429s.)"""
        self.value, cubic, self.slow_start = snapshot
        cubic = cubic.later(paused)
        self.cubic = cubic if self.slow_start or not cubic.probing(now) else Cubic(self.value / HOLD, now - RECOVERY)

    def _ceiling(self, rate: float, sending: float) -> float:
        rate = min(rate, max(2 * sending, self.cubic.w_max, MIN_RATE))
        return min(rate, self.cap) if self.cap else rate


class Pace:
    """Hands out start times and places in flight: ``room()`` and ``wait()`` say whether and when a request
    may go, ``send()`` takes its slot and place, ``answered()`` hears what came of it and moves the knobs."""

    def __init__(
        self,
        cap: float | None = None,
        *,
        start: float = 64.0,
        ceiling: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.clock = clock
        self.meter = Meter(clock)
        self.speed = Rate(start, cap, clock())
        self.flight = Flight(ceiling)
        self.background = 0.0  # share of 429s learned not to be about the pace
        self.epoch = 0
        self._tallies: dict[int, _Tally] = {0: _Tally()}
        self._cut: _Cut | None = None
        self._pressed = float("-inf")  # when most answers of a round-trip were last 429s
        self._quiet_5xx = float("-inf")  # 5xx do not slow the run before then
        self._suspect = False  # the last cut judged was undone: one more like it, and the 429s are background

    @property
    def rate(self) -> float:
        return self.speed.value

    @property
    def slow_start(self) -> bool:
        return self.speed.slow_start

    def room(self) -> bool:
        """Whether the window lets one more request be in flight (if not, wait for a :meth:`release`)."""
        return self.flight.room()

    def wait(self) -> float:
        """Seconds until the next request may start (0: now), once there is :meth:`room`."""
        return self.speed.slots.wait(self.clock())

    def send(self) -> Ticket:
        """Take the next slot and a place in the window; call when :meth:`wait` says 0."""
        now = self.clock()
        self.meter.sent(now)
        self._close_probation(now)
        self.speed.grow(now, self._sending(now))
        self.speed.slots.take(now, self.rate)
        return Ticket(now, self.epoch, *self.flight.sent(now))

    def release(self) -> None:
        """A request sent with :meth:`send` is over (answered or not): its place in the window is free."""
        self.flight.released()

    def answered(self, ticket: Ticket, status: int, retry_after: float | None = None) -> None:
        """An HTTP answer (any status) to a request sent with ``ticket``."""
        now = self.clock()
        if retry_after is not None and retry_after >= LONG_RETRY_AFTER:
            self.speed.slots.pause(now + retry_after)  # a quota: the run waits; it says nothing about the pace
            return
        self.meter.answered(now, max(now - ticket.sent_at, 0.0), status)
        self._tallies.setdefault(ticket.epoch, _Tally()).count(status)
        current = ticket.epoch == self.epoch
        pressed = status == 429 and self.meter.most_recent(_throttled, now)
        # the long share leaves out 429s plainly about the pace: slow start's overshoot, rounds of mostly 429s
        self.meter.sample(status == 429 and not pressed and ticket.epoch > 0)
        if status == 429:
            if pressed:
                self.speed.slots.pause(now + (DEFAULT_PAUSE if retry_after is None else retry_after))
                self._pressed = now
                if not current:
                    self._press(now)
            if current:
                self._on_429(now, ticket)
        elif status >= 500:
            if current and self._cut is None and now >= self._quiet_5xx and self._failing(now):
                self._cut_now(now, ticket, cause=500)
        else:
            self.flight.accepted(ticket)
            if current:
                self.speed.accepted(self.meter.round_trip(), self._sending(now))
        self._review(now)

    def _failing(self, now: float) -> bool:
        """Most recent answers are 5xx, out of at least :data:`ROUND_MIN_5XX`: with fewer (the first round-trip
        of a window that starts small), a few scattered ones would pass for a storm, and the cut they caused
        would stand, judged against a share that they inflated."""
        return self.meter.most_recent(_failed, now, ROUND_MIN_5XX)

    def _sending(self, now: float) -> float:
        """Requests sent per second over the last round-trip."""
        return self.meter.per_second(self.meter.sends, now, self.meter.round_trip())

    # -- cuts and their judgement ---------------------------------------------------------------------

    def _on_429(self, now: float, ticket: Ticket) -> None:
        if self._cut is not None:
            let_through = self.meter.last_second(now)
            if self.meter.most_recent(_throttled, now) and 0 < let_through < self.rate:  # faster than what gets
                self._cut_now(now, ticket, hard=True)  # through: no need to wait for judgement
            return  # (when nothing gets through, the pause is the answer, not a rate of nothing)
        if self.background:
            answers, throttled = self.meter.throttled_last_second(now)
            if throttled <= 2 * answers * self.background + 1:
                return  # no more than twice what the background share explains: not about the pace
        self._cut_now(now, ticket)

    def _press(self, now: float) -> None:
        """Most answers are 429s, to requests sent before the last cut: that cut did not go far enough (or cut
        the window, which is not what a rate limit refuses). Once per cut, the rate comes down to 0.7 of what got
        through in the last second, so that the run does not resume at the rate that was refused when its
        pause is over (two runs starting together on one key refused half as much)."""
        cut, let_through = self._cut, self.meter.last_second(now)
        if cut is not None and not cut.hard and 0 < let_through < self.rate:
            self.speed.cut(now, let_through)
            self._cut = replace(cut, hard=True)

    def _cut_now(self, now: float, ticket: Ticket, hard: bool = False, cause: int = 429) -> None:
        """Cut the knob that went too far and judge the cut in a new epoch: the window if it is what the refused
        request went too far by (:meth:`Flight.too_many`: a cap on requests in flight), else the rate, to 0.7 of
        what was being sent (or let through, if less).

        ``hard``: most answers are 429s, a limit is hit; what got through in the last second estimates it.
        """
        meter = self.meter
        knobs = (self.speed.snapshot(), self.flight.snapshot())
        self._cut = _Cut(self.epoch, self.epoch + 1, now, *knobs, meter.last_second(now), cause)
        if self.flight.too_many(ticket):
            self.flight.cut(now, ticket.flight)
        else:
            span = max(2 * meter.round_trip(), 8 / self.rate)  # long enough to count a handful of sends
            sending = meter.per_second(meter.sends, now, span) or self.rate
            accepted = (meter.last_second(now) if hard else meter.per_second(meter.accepted, now)) or self.rate
            self.speed.cut(now, max(min(self.rate, sending, accepted), MIN_RATE))
        self._new_epoch(now)

    def _close_probation(self, now: float) -> None:
        """Requests sent after the probation say nothing about the cut: they go in an epoch of their own."""
        cut = self._cut
        if cut is None or cut.closed or self.epoch != cut.after:
            return
        elapsed, answers = now - cut.at, self._tallies[cut.after].answers
        if elapsed >= MAX_PROBATION_SECONDS or (
            elapsed >= PROBATION_SECONDS and answers >= self._tallies[cut.before].needed()
        ):
            self._cut = replace(cut, closed=True)
            self._new_epoch(now)

    def _review(self, now: float) -> None:
        """Judge the last cut: undo it if what caused it turns out not to be about the pace."""
        cut = self._cut
        if cut is None:
            return
        pressed = self._pressed > cut.at - PROBATION_SECONDS  # a round of mostly 429s is about the pace
        if cut.cause == 429 and not pressed and self.meter.last_second(now) > 1.2 * cut.let_through + 2:
            self._undo(cut, now)  # more gets through per second than when the 429 came: it was no limit
            return
        after, before = self._tallies[cut.after], self._tallies[cut.before]
        if not cut.closed or (
            now - cut.at < MAX_PROBATION_SECONDS and after.answers < self._tallies[cut.before].needed()
        ):
            return
        self._cut = None
        if cut.cause != 429:
            if after.failed * max(before.answers, 1) >= 0.75 * before.failed * after.answers:
                self._undo(cut, now)  # the errors did not come with the pace: they are the rows' business
                self._quiet_5xx = now + QUIET_AFTER_5XX
        elif not pressed and after.share < SCATTERED and not _rarer(after, before):
            share = self.meter.long_share()
            pooled = (after.throttled + before.throttled) / (after.answers + before.answers)
            if self._suspect and pooled <= 2 * share:  # twice: one judgement can be fooled by another run on the
                # key probing its limit. And scattered 429s are as frequent around a cut as anywhere: a limit's
                # (two runs on one key undo each other's cuts) cluster around the cuts, as often as 3 in 19
                # answers where the last few hundred had 2%.
                self.background = min(max(self.background, min(pooled, share)), SCATTERED)
            self._suspect = True
            self._undo(cut, now)
        else:
            self._suspect = False

    def _undo(self, cut: _Cut, now: float) -> None:
        """Back to the pace before ``cut``, growing as it was: a burst of slow start would only find a limit
        shared with other runs by hitting it."""
        self._cut = None
        self.speed.restore(cut.rate, now, now - cut.at)
        self.flight.restore(cut.window, now - cut.at)
        self._new_epoch(now)

    def _new_epoch(self, now: float) -> None:
        self.epoch += 1
        keep = {self.epoch - 1, self.epoch - 2, *((self._cut.before, self._cut.after) if self._cut else ())}
        self._tallies = {e: t for e, t in self._tallies.items() if e in keep}
        self._tallies[self.epoch] = _Tally()
        self.speed.slots.reset(now, self.rate)


def _rarer(after: _Tally, before: _Tally) -> bool:
    """Whether 429s became rarer after a cut than before it (the 429 that caused the cut left out).

    With enough answers to expect three or more 429s at the earlier share, "rarer" means significantly so
    (two standard deviations); with fewer, none at all after the cut counts as rarer (a laxer rule lets cuts
    stand on little evidence, and under scattered 429s and 5xx each standing cut lowers the next one's base:
    the rate spirals down).
    """
    share = before.cause_share
    expected = after.answers * share
    if expected < 3:
        return after.throttled == 0 or after.share < 0.75 * share
    return after.throttled == 0 or after.throttled <= expected - 2 * math.sqrt(expected * (1 - share))


def _throttled(status: int) -> bool:
    return status == 429


def _failed(status: int) -> bool:
    return status >= 500
