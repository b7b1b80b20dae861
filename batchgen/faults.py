"""What the simulator does unless told otherwise: its faults and where it listens, written once.

Kept apart from :mod:`batchgen.simulator` (which imports aiohttp) so that the command line's flags read these
defaults without importing aiohttp, and the command starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UsageError

REJECTIONS = {
    "400": "The provider rejected this request",
    "404": "Not found",
    "409": "Conflict",
    "413": "Request too large",
    "422": "Unprocessable request",
}
FAULTS = (
    "ok",
    "307",
    *REJECTIONS,
    "401",
    "402",
    "403",
    "429",
    "500",
    "502",
    "503",
    "504",
    "drop",
    "accept_drop",
    "hang",
    "malformed",
)


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. ``script`` names the fault of each of the first requests, in order."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_500: float = 0.0
    rate_drop: float = 0.0
    rate_accept_drop: float = 0.0
    rate_hang: float = 0.0
    rate_malformed: float = 0.0
    retry_after: float = 1.0
    hang_seconds: float = 3600.0
    script: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.script if name not in FAULTS]
        if unknown:
            raise UsageError(f"unknown fault {unknown[0]!r}; use one of {', '.join(FAULTS)}", setting="script")


@dataclass(frozen=True, slots=True)
class Serving:
    """Where the ``simulate`` command listens and how long it takes to answer."""

    host: str = "127.0.0.1"
    port: int = 8787
    latency_ms: float = 0.0


NO_FAULTS = Faults()
SERVING = Serving()
