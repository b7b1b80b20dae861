"""What the pace learns from answers: the requests of one phase of its cycle and what came of them, and the
share of 429s that comes whatever the pace (the background)."""

from __future__ import annotations

import math
from dataclasses import dataclass

PRIOR_REFUSED, PRIOR_ANSWERS = 0.5, 10.0  # the background presumed until answers show it: 5%, worth ten answers
SURE_ANSWERS = 200  # answers that show the background well enough for one refusal beyond it to count
HORIZON = 400  # answers over which the background is averaged
MOST_BACKGROUND = 0.25  # a larger share of 429s is about the pace, whatever else is said of it


@dataclass(slots=True)
class Phase:
    """The requests sent in one phase of the cycle (``start``, ``cruise`` or ``probe``) at ``rate``."""

    serial: int
    kind: str
    rate: float
    sent: int = 0
    answers: int = 0
    accepted: int = 0
    refused: int = 0
    first: float = math.inf
    last: float = -math.inf
    top_accepted: int = 0  # the most in flight with any of its accepted requests...
    low_refused: int = 1 << 30  # ...and the fewest with any of its refused ones
    cut: bool = False  # its refusals were acted on: later ones are not again
    after_probe: bool = False  # a cruise right after a probe that found the limit: its 429s may be the probe's
    judges: Phase | None = None  # a slower cruise judges the refusals of an earlier one...
    before: float = 0.0  # ...which had this estimate

    def count(self, verdict: str, flight: int) -> None:
        self.answers += 1
        if verdict == "accepted":
            self.accepted += 1
            self.top_accepted = max(self.top_accepted, flight)
        elif verdict == "refused":
            self.refused += 1
            self.low_refused = min(self.low_refused, flight)

    @property
    def answered(self) -> bool:
        return self.answers >= self.sent

    @property
    def beyond(self) -> bool:
        """Every refused request went with more in flight than any accepted one: a cap on requests in flight."""
        return self.low_refused > self.top_accepted > 0

    def delivered(self) -> float:
        """What this phase's sends deliver per second: the share of its answers accepted, of those accepted or
        refused (a 5xx or no answer is no one's pace, and says nothing of the limit), times its rate of sends.
        Its requests still in flight count at that share too: many are, at a long latency, when a cut is judged."""
        judged = self.accepted + self.refused
        share = self.accepted / judged if judged else 0.0
        return share * self.sent / (max(self.last - self.first, 0.0) + 1 / self.rate)


class Background:
    """The share of 429s that is not about the pace, learned from phases that showed it (a cruise that held,
    a probe that got more through); refusals well beyond it are a sign."""

    def __init__(self) -> None:
        self.heard, self.refused = 0.0, 0.0

    @property
    def share(self) -> float:
        return (self.refused + PRIOR_REFUSED) / (self.heard + PRIOR_ANSWERS)

    def learn(self, phase: Phase, sigmas: float = 0.0) -> None:
        """Learn from a phase whose 429s were not the pace's, unless more than :data:`MOST_BACKGROUND` of its
        answers were (by ``sigmas`` standard deviations: a few answers are a third refused by chance)."""
        most = MOST_BACKGROUND * phase.answers
        if phase.refused <= most + sigmas * math.sqrt(most * (1 - MOST_BACKGROUND)):
            keep = (1 - 1 / HORIZON) ** phase.answers
            self.heard = keep * self.heard + phase.answers
            self.refused = keep * self.refused + phase.refused

    def exceeded(self, phase: Phase, sigmas: float, slack: bool = False) -> bool:
        """Whether ``phase`` had more refusals than the background explains, by ``sigmas`` standard deviations
        (and one more, with ``slack``, until the background is well known: a scattered 429 is no sign)."""
        expected = self.share * phase.answers
        spare = 1 if slack and self.heard < SURE_ANSWERS else 0
        return phase.refused > expected + sigmas * math.sqrt(expected) + spare
