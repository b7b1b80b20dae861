"""The per-row retry policy alone: when a row is sent again and after how long, on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from batchgen.submit.outcome import Retryable, TryAgain
from batchgen.submit.retry import AttemptBudget, Backoff, RetryPolicy

from ..support.clock import FakeClock

NO_JITTER = Backoff(draw=lambda: 0.0)


def attempt_until(policy: RetryPolicy, outcomes: list[Retryable | None]) -> tuple[int, FakeClock, list[float]]:
    """Attempts answered by ``outcomes`` in turn (None: accepted); how many were made, the clock, what was held."""
    clock, held, made = FakeClock(), [], 0

    async def main() -> None:
        nonlocal made
        async for attempt in policy.attempts(clock.sleep, lambda seconds, _message: held.append(seconds)):
            with attempt:
                made += 1
                outcome = outcomes[made - 1]
                if outcome is not None:
                    raise TryAgain(outcome)

    with contextlib.suppress(TryAgain):
        asyncio.run(main())
    return made, clock, held


def test_the_backoff_doubles_up_to_its_cap_plus_jitter() -> None:
    assert [NO_JITTER.seconds(n) for n in (1, 2, 3, 7, 20)] == [0.5, 1.0, 2.0, 30.0, 30.0]
    assert Backoff(draw=lambda: 1.0).seconds(1) == 1.0


def test_a_row_is_sent_at_most_max_attempts_times() -> None:
    policy = RetryPolicy(AttemptBudget(3), down=lambda: False, backoff=NO_JITTER)
    made, clock, _ = attempt_until(policy, [Retryable(status=503)] * 5)
    assert made == 3 and clock.slept == [0.5, 1.0]


@pytest.mark.parametrize(
    ("outcome", "waited"),
    [
        (Retryable(status=429, retry_after=7.0), 7.0),  # never before its Retry-After
        (Retryable(status=429), 1.0),  # a 429 without one: at least a second
        (Retryable(status=503), 0.5),  # a 5xx: the backoff
        (Retryable(status=503, retry_after=0.1), 0.5),  # a Retry-After shorter than the backoff
        (Retryable(message="not sent (connection refused)"), 0.5),
    ],
)
def test_the_wait_is_the_backoff_but_never_shorter_than_the_retry_after(outcome: Retryable, waited: float) -> None:
    policy = RetryPolicy(AttemptBudget(5), down=lambda: False, backoff=NO_JITTER)
    made, clock, held = attempt_until(policy, [outcome, None])
    assert made == 2 and clock.slept == [waited] and held == []


def test_attempts_while_the_provider_is_down_cost_nothing_and_wait_at_the_gate() -> None:
    down = [True, True, True, False, False]
    policy = RetryPolicy(AttemptBudget(2), down=lambda: down[0], backoff=NO_JITTER)

    async def main() -> int:
        made = 0
        with contextlib.suppress(TryAgain):
            async for attempt in policy.attempts(FakeClock().sleep, lambda *_: None):
                with attempt:
                    made += 1
                    if made > 1:
                        down.pop(0)
                    raise TryAgain(Retryable(status=503))
        return made

    assert asyncio.run(main()) == 5  # 3 forgiven while down, then the 2 the row may cost
    always_down = RetryPolicy(AttemptBudget(2), down=lambda: True, backoff=NO_JITTER)
    assert always_down.wait(Retryable(status=429, retry_after=30.0), 1) == 0.0


def test_a_quota_long_retry_after_holds_the_whole_run_with_the_providers_message() -> None:
    policy = RetryPolicy(AttemptBudget(5), down=lambda: False, backoff=NO_JITTER)
    messages: list[str] = []

    async def main() -> None:
        async for attempt in policy.attempts(FakeClock().sleep, lambda seconds, message: messages.append(message)):
            with attempt:
                if attempt.retry_state.attempt_number == 1:
                    raise TryAgain(Retryable(status=429, retry_after=3600.0, message="HTTP 429: quota exceeded"))

    asyncio.run(main())
    assert messages == ["quota exceeded"]
