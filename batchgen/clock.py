"""Time as a run sees it: a monotonic ``now`` and an awaitable ``sleep``, injected where time is read or waited.

The pace, the gate and the retries read this one clock (botocore's ``bucket.py`` does the same), so the fast
test layer drives every rule of a run on a fake clock: no sleeping, no sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    """``now()`` in seconds (monotonic), and ``sleep(seconds)``."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


SYSTEM = Clock()
