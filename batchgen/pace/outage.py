"""A provider that is down: a state of the run, like a quota. Dispatching pauses, one request at a time probes
at a growing interval, and the run resumes at its pace when one is answered."""

from __future__ import annotations

import math

DOWN_AFTER = 8  # failures in a row (5xx or refused connections), and...
DOWN_SECONDS = 1.0  # ...for this long, with no answer between: the provider is down
FIRST_TRY = 2.0  # then one request after this long, doubled after each that fails...
LONGEST_TRY = 120.0  # ...up to this


class Outage:
    """``down`` since ``since`` (with the last failing ``status``); ``next_try`` is when the next probe may go."""

    def __init__(self) -> None:
        self.failures = 0
        self.streak_began = math.inf
        self.since: float | None = None
        self.interval = FIRST_TRY
        self.next_try = -math.inf
        self.probing = False
        self.reached = False  # the provider has answered once: before that, failures mean unreachable
        self.status: int | None = None  # the last failure's status (None: no answer)

    @property
    def down(self) -> bool:
        return self.since is not None

    @property
    def failing(self) -> bool:
        """Down, or failures enough in a row that it may be (not yet for long enough to say so): a row's attempt
        that fails now is the outage's, not the row's (answers late under load can put the row's last attempt
        before the outage is told)."""
        return self.down or self.failures >= DOWN_AFTER

    def sent(self) -> None:
        if self.down:
            self.probing, self.next_try = True, math.inf  # one probe at a time

    def answered(self, now: float, status: int | None) -> None:
        """An outcome: an HTTP answer's status, or None for none (a refused connection, a timeout)."""
        failed = status is None or status >= 500
        self.reached = self.reached or status is not None
        if not self.reached:
            return
        if not failed:
            self.failures, self.streak_began, self.since = 0, math.inf, None
            self.interval, self.next_try, self.probing = FIRST_TRY, -math.inf, False
            return
        self.failures, self.status = self.failures + 1, status
        self.streak_began = min(self.streak_began, now)
        if self.since is None and self.failures >= DOWN_AFTER and now - self.streak_began >= DOWN_SECONDS:
            self.since, self.next_try = now, now + self.interval
        elif self.since is not None and self.probing:
            self.interval = min(2 * self.interval, LONGEST_TRY)
            self.probing, self.next_try = False, now + self.interval
