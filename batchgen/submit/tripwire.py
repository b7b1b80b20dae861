"""Stopping a run that cannot succeed, before a misconfigured night bills the whole sheet.

* The first ``min(rows, max(concurrency, 4))`` answers are all the same rejection (every request answered 404:
  a wrong base URL) and none succeeded: stop, and leave those rows ``pending`` (they were never processed). A
  sheet smaller than that window counts all its rows, so four rows all rejected say so too. Until that is
  decided, rejected rows are held as ``pending`` rather than ``failed``.
* The first ``max(concurrency, 4)`` requests all time out, or ``2 x concurrency`` requests in a row end
  ambiguous: stop dispatching; those rows are ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Trip:
    """Why the run must stop: ``kind`` is ``rejection``, ``timeouts`` or ``ambiguous``."""

    kind: str
    count: int
    status: int | None = None
    message: str = ""


class Tripwire:
    """Fed every outcome in the order they end; :meth:`trip` says when to stop."""

    def __init__(self, concurrency: int, rows: int) -> None:
        self.window = max(concurrency, 4)
        self.first = min(rows, self.window)
        self.streak_limit = 2 * concurrency
        self.trip: Trip | None = None
        self._rejections: list[tuple[int, str]] = []
        self._answered_otherwise = False
        self._requests = 0
        self._timeouts = 0
        self._streak = 0

    @property
    def holding(self) -> bool:
        """Whether a rejection is still held as ``pending``: it may yet be the same on every first answer."""
        return not self._answered_otherwise and self.trip is None and len(self._rejections) < self.first

    def explains(self, status: int) -> bool:
        """Whether the run stopped on this rejection: more of it (requests that were in flight) are the same
        misconfiguration, not rows the provider looked at."""
        return self.trip is not None and self.trip.kind == "rejection" and self.trip.status == status

    def rejected(self, status: int, message: str) -> None:
        self._ended(ambiguous=False, timed_out=False)
        if self.holding:
            self._rejections.append((status, message))
            statuses = {status for status, _ in self._rejections}
            if len(self._rejections) == self.first and len(statuses) == 1:
                self.trip = Trip("rejection", self.first, status, message)
            elif len(statuses) > 1:
                self._answered_otherwise = True

    def answered(self) -> None:
        """Any other HTTP answer (accepted, refused, fatal): the first answers are not all one rejection."""
        self._answered_otherwise = True
        self._ended(ambiguous=False, timed_out=False)

    def ambiguous(self, timed_out: bool, answered: bool, message: str) -> None:
        """A request that may have created jobs; ``answered`` if an HTTP status came back (a bad body)."""
        self._answered_otherwise = self._answered_otherwise or answered
        self._ended(ambiguous=True, timed_out=timed_out)
        if self.trip is not None:
            return
        if timed_out and self._timeouts == self.window == self._requests:
            self.trip = Trip("timeouts", self.window, message=message)
        elif self._streak >= self.streak_limit:
            self.trip = Trip("ambiguous", self._streak, message=message)

    def _ended(self, ambiguous: bool, timed_out: bool) -> None:
        self._requests += 1
        if timed_out and self._requests == self._timeouts + 1:
            self._timeouts += 1
        self._streak = self._streak + 1 if ambiguous else 0
