"""The per-row retry policy, apart from the sending loop (as botocore's ``retries/standard.py``): a checker says
whether a row may be sent again, a backoff how long it waits first, and the policy combines them with the
Retry-After floor. The dispatcher only asks it; the pace (how fast the whole run goes) is not its business.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from ..pace import LONG_RETRY_AFTER
from .outcome import Retryable, TryAgain

RATE_LIMITED_FLOOR = 1.0  # a 429 without Retry-After: the provider said "too fast" without saying how long


@dataclass(frozen=True, slots=True)
class AttemptBudget:
    """Whether a row may be sent again: fewer than ``max_attempts`` attempts that cost it. An attempt that failed
    while the provider was down costs nothing: an outage must not use up a row's attempts."""

    max_attempts: int

    def allows(self, attempts: int, forgiven: int) -> bool:
        return attempts - forgiven < self.max_attempts


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential with jitter: ``base`` seconds doubling per attempt up to ``cap``, plus up to ``jitter``
    (0.5 s, 1 s, 2 s... plus jitter), so rows refused together do not come back together."""

    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    draw: Callable[[], float] = field(default=random.random)

    def seconds(self, attempt: int) -> float:
        return min(self.base * 2.0 ** (attempt - 1), self.cap) + self.jitter * self.draw()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a row is sent again and after how long. ``down`` says whether the provider is down now (the pace's
    call): then the row waits at the gate instead of backing off. ``failing`` (``down`` if not given) whether it
    is down or failing every request: then an attempt costs the row nothing."""

    budget: AttemptBudget
    down: Callable[[], bool]
    backoff: Backoff = Backoff()
    failing: Callable[[], bool] | None = None

    def wait(self, outcome: Retryable | None, attempt: int) -> float:
        """The backoff, never shorter than the Retry-After (1 s for a 429 without); none while the provider is
        down (the gate holds every row behind the one request that probes it)."""
        backoff = self.backoff.seconds(attempt)
        if self.down():
            return 0.0
        if outcome is None:
            return backoff
        if outcome.retry_after is not None:
            return max(backoff, outcome.retry_after)
        return max(backoff, RATE_LIMITED_FLOOR if outcome.status == 429 else 0.0)

    def attempts(self, sleep: Callable[[float], Awaitable[None]], hold: Callable[[float, str], None]) -> AsyncRetrying:
        """The attempts of one row: tenacity retries each :class:`TryAgain`, waiting with ``sleep`` (outside any
        slot). A Retry-After far beyond the pace's own waits (a quota) is the whole run's: ``hold`` is told
        how long, with the provider's message, before the row waits."""
        forgiven = 0

        def stop(state: RetryCallState) -> bool:
            nonlocal forgiven
            forgiven += (self.failing or self.down)()
            return not self.budget.allows(state.attempt_number, forgiven)

        def before_sleep(state: RetryCallState) -> None:
            outcome = retried(state)
            if outcome is not None and outcome.retry_after is not None and outcome.retry_after >= LONG_RETRY_AFTER:
                hold(outcome.retry_after, outcome.message.removeprefix(f"HTTP {outcome.status}: "))

        return AsyncRetrying(
            stop=stop,
            wait=lambda state: self.wait(retried(state), state.attempt_number),
            retry=retry_if_exception_type(TryAgain),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


def retried(state: RetryCallState) -> Retryable | None:
    """The outcome of the attempt tenacity is about to retry."""
    error = state.outcome.exception() if state.outcome else None
    return error.outcome if isinstance(error, TryAgain) else None
