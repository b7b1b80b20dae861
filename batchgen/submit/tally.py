"""What a run shows of each attempt once it is journaled: a line in the attempt log, a count, the progress.

Kept apart from the decisions (:mod:`.settle`): nothing here changes what happens to a row.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import BatchgenError
from ..journal import Record
from ..progress import Progress
from ..results import State
from ..settings import Settings
from .attempts import AttemptLog
from .report import Report


class Tally:
    """Logs each attempt (``log_file``), counts each row's last one in ``report``, and hands the progress to the
    caller's callback; a log that cannot be written is reported to ``fail``."""

    def __init__(self, settings: Settings, total: int, report: Report, fail: Callable[[BatchgenError], None]) -> None:
        self.report = report
        self.fail = fail
        self._log = AttemptLog(settings.log_file) if settings.log_file else None
        self._total = total
        self._shown: str | None = None  # a state of the whole run, on the progress
        self._draw = settings.progress

    def close(self) -> None:
        if self._log:
            self._log.close()

    def finish(
        self,
        record: Record,
        state: str,
        kind: str,
        attempt: int,
        latency: float,
        status: int | None,
        message: str | None,
    ) -> None:
        """A row's last attempt of this run: logged with its outcome class, counted in its state."""
        self.note(record, kind, attempt, latency, status, message)
        self.count(state)

    def note(
        self, record: Record, outcome: str, attempt: int, latency: float, status: int | None, message: str | None
    ) -> None:
        if self._log is None:
            return
        try:
            self._log.write(record, attempt, latency, outcome, status, message)
        except BatchgenError as exc:
            self.fail(exc)

    def show(self, state: str | None) -> None:
        """A state of the whole run on the progress (``waiting until 05:42``), or none."""
        self._shown = state
        self._draw_progress()

    def count(self, state: str) -> None:
        self.report.outcomes[state] += 1
        self._draw_progress()

    def _draw_progress(self) -> None:
        if self._draw is None:
            return
        counts = self.report.outcomes
        self._draw(
            Progress(
                self._total,
                sum(counts.values()),
                counts[State.DONE],
                counts[State.FAILED],
                counts[State.UNKNOWN],
                self.report.retries,
                self._shown,
            )
        )
