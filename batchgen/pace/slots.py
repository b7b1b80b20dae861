"""When requests may start: the pace's even grid, the `rate` setting's hard cap, and the run's pause."""

from __future__ import annotations

from dataclasses import dataclass

SLACK = 0.002  # a pause or cap slot less than this away is taken now: a timer cannot wait much less
EVEN = 0.98  # two requests of the pace never leave closer than this share of its interval
TOLERANCE = 0.02  # a cap's slot taken this late keeps its grid: over any second, at most 2% + 1 over the cap


@dataclass(frozen=True, slots=True)
class Ticket:
    """Handed out with each send and given back with its answer: when it left, in which phase of the pace
    (``phase``), how many requests were in flight with it, whether it filled the window, the pace's rate, and its
    place in the order of sends (``serial``: two sends of one clock tick have one time, never one serial)."""

    sent_at: float
    phase: int
    flight: int = 1
    filled: bool = False
    rate: float = 1.0
    serial: int = 0


class SlotGrid:
    """Start times on a grid of ``1 / rate``: a slot taken late moves the next one only as far as keeps the
    interval from shrinking below ``floor`` of itself, so timer lateness does not erode the rate while no two
    requests leave closer than the grid allows (a strict leaky bucket refuses any burst). After an idle spell the
    grid restarts from now: no burst."""

    def __init__(self, floor: float) -> None:
        self.floor = floor
        self.next = float("-inf")
        self.interval = 0.0
        self.taken = float("-inf")  # when the last slot was taken

    def wait(self, now: float) -> float:
        """Seconds until the next slot; 0 for one at most :data:`SLACK` away when the interval is shorter than
        a timer can wait (above 250 requests per second the grid is kept on average, not request by request)."""
        wait = self.next - now
        return 0.0 if wait <= SLACK and self.interval < 2 * SLACK else wait

    def take(self, now: float, rate: float) -> None:
        self.interval = 1 / rate
        self.next = max(self.next + self.interval, now + self.floor * self.interval)
        self.taken = now


class Slots:
    """The pace's even grid, ``cap`` as GCRA on absolute times (a wake-up up to :data:`TOLERANCE` late keeps
    the cap's grid), and the run's pause."""

    def __init__(self, cap: float | None) -> None:
        self.cap = cap
        self.even = SlotGrid(EVEN)
        self.capped = SlotGrid(1.0)
        self.paused_until = float("-inf")

    def wait(self, now: float) -> float:
        """Seconds until the next request may start (0: now). A pause or the cap's slot less than :data:`SLACK`
        away is taken now; the even grid's never early (a strict bucket refuses a request a millisecond early)."""
        loose = max(self.paused_until - now, self.capped.wait(now))
        return max(loose if loose > SLACK else 0.0, self.even.wait(now), 0.0)

    def take(self, now: float, rate: float) -> None:
        self.even.take(now, rate)
        if self.cap:
            grid = self.capped
            grid.next = (grid.next if now - grid.next <= TOLERANCE else now) + 1 / self.cap

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def give_back(self, at: float) -> None:
        """The slot taken at ``at`` went unused: if no later one was taken since, the pace's next one is there
        again (the cap's stays taken); a later one taken keeps its interval after it."""
        if at >= self.even.taken:
            self.even.next = min(self.even.next, at)
