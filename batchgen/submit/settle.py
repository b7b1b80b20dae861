"""What happens after each attempt: the journal first, then the early-stop checks, the log and the progress.

The order matters: job ids are committed before anything that can fail (a log line, the progress bar), so
a full disk or a killed process never costs an id the provider returned.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tqdm import tqdm

from ..errors import BatchgenError, FatalAPIError, JournalError, NoAnswerError, UnreachableError, UnsavedIds
from ..journal import Journal, Record
from ..settings import Settings
from .attempts import AttemptLog
from .outcome import Accepted, Ambiguous, Fatal, Outcome, Rejected, Retryable, redact
from .tripwire import Trip, Tripwire

if TYPE_CHECKING:
    from .gate import Waiting


@dataclass(slots=True)
class Report:
    """What a submission did: requests sent, rows per outcome, why it stopped early, if it did, and the last
    time the provider asked the whole run to wait (a quota), if it did."""

    requests: int = 0
    retries: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None
    error: BatchgenError | None = None
    unsaved: list[UnsavedIds] = field(default_factory=list)
    interrupted: bool = False
    waiting: Waiting | None = None


class Settler:
    """Journals each outcome and decides whether the run must stop; ``stop`` is called with the reason."""

    def __init__(
        self, journal: Journal, settings: Settings, stop: Callable[[str], None], total: int, report: Report
    ) -> None:
        self.journal = journal
        self.settings = settings
        self.stop = stop
        self.report = report
        self.tripwire = Tripwire(settings.concurrency)
        self.answered = False
        self._held: list[tuple[Record, Rejected]] = []
        self._log = AttemptLog(settings.log_file) if settings.log_file else None
        self._bar = tqdm(total=total, unit="row", file=sys.stderr, disable=not settings.progress, dynamic_ncols=True)

    def close(self) -> None:
        self._bar.close()
        if self._log:
            self._log.close()

    def fail(self, error: BatchgenError) -> None:
        """Stop the run for good with ``error`` (the first one wins; a journal error always shows)."""
        if self.report.error is None or isinstance(error, JournalError):
            self.report.error = error
        self.stop(str(error))

    def done(self, record: Record, accepted: Accepted, attempt: int, latency: float) -> None:
        try:
            self.journal.mark_done(record.key, accepted.job_ids, accepted.status)
        except JournalError as exc:  # the ids exist and are billed: the user must see them
            self.report.unsaved.append(UnsavedIds(record.label, record.title, record.key, tuple(accepted.job_ids)))
            self.fail(exc)
            return
        self.answered = True
        self.tripwire.answered()
        self._release_held()
        self._finish(record, "done", "accepted", attempt, latency, accepted.status, None)

    def settle(self, record: Record, outcome: Outcome, attempt: int, latency: float) -> None:
        """Journal a non-accepted attempt; re-raise retryable ones so that tenacity tries again."""
        outcome.message = redact(outcome.message, self.settings.api_key.get_secret_value())
        key, status, message = record.key, outcome.status, outcome.message
        kind = type(outcome).__name__.lower()
        if status is not None and not isinstance(outcome, (Rejected, Ambiguous)):
            self.answered = True
            self.tripwire.answered()
            self._release_held()
        if isinstance(outcome, Retryable):
            self.journal.mark_pending(key, status, message)
            self.report.retries += 1
            self._note(record, kind, attempt, latency, status, message)
            raise outcome
        if isinstance(outcome, Fatal):
            self.journal.mark_pending(key, status, message)
            self.fail(FatalAPIError(message, status))
            self._finish(record, "pending", kind, attempt, latency, status, message)
        elif isinstance(outcome, Rejected):
            self._rejected(record, outcome, attempt, latency)
        elif isinstance(outcome, Ambiguous):
            self.journal.mark_unknown(key, status, message)
            self.tripwire.ambiguous(outcome.timed_out, status is not None, message)
            self._finish(record, "unknown", kind, attempt, latency, status, message)
        self._check_trip()

    def exhausted(self, record: Record, error: Retryable) -> None:
        """Out of attempts. If nothing in this run was ever answered, the host is unreachable: stop."""
        if not error.answered and not self.answered:
            host = self.settings.host
            self.fail(UnreachableError(f"cannot reach {host.split('://')[-1]} ({error.message})", host))
            return
        self.journal.mark_failed(
            record.key, error.status, f"{error.message} (after {self.settings.max_attempts} attempts)", retryable=True
        )
        self._progress("failed")

    def cancelled(self, record: Record, body_sent: bool) -> None:
        """A request cut short by a hard interrupt: unknown if its body had left, else still pending."""
        if body_sent:
            self.journal.mark_unknown(
                record.key, None, "interrupted after the request was sent: the provider may have created jobs"
            )
        else:
            self.journal.mark_pending(record.key, None, "interrupted before the request was sent")

    def _rejected(self, record: Record, outcome: Rejected, attempt: int, latency: float) -> None:
        if self.tripwire.holding:  # may be a wrong base URL on every row: keep it pending until that is known
            self.journal.mark_pending(record.key, outcome.status, outcome.message)
            self._held.append((record, outcome))
        else:
            self.journal.mark_failed(record.key, outcome.status, outcome.message, retryable=False)
        self.tripwire.rejected(outcome.status or 0, outcome.message)
        if not self.tripwire.holding and self.tripwire.trip is None:
            self._release_held()
        self._finish(record, "failed", "rejected", attempt, latency, outcome.status, outcome.message)

    def _release_held(self) -> None:
        """The first answers were not all one rejection: the rejected rows held back are failed after all."""
        held, self._held = self._held, []
        for record, outcome in held:
            self.journal.mark_failed(record.key, outcome.status, outcome.message, retryable=False)

    def _check_trip(self) -> None:
        trip = self.tripwire.trip
        if trip is not None and self.report.error is None:
            self.fail(_trip_error(trip, self.settings))

    def _finish(
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
        self._note(record, kind, attempt, latency, status, message)
        self._progress(state)

    def _note(
        self, record: Record, outcome: str, attempt: int, latency: float, status: int | None, message: str | None
    ) -> None:
        if self._log is None:
            return
        try:
            self._log.write(record, attempt, latency, outcome, status, message)
        except BatchgenError as exc:
            self.fail(exc)

    def show(self, state: str | None) -> None:
        """A state of the whole run on the progress bar (``waiting until 05:42``), or none."""
        self._bar.set_description_str(state or "", refresh=True)

    def _progress(self, state: str) -> None:
        self.report.outcomes[state] += 1
        if self._bar.disable:
            return
        self._bar.update(1)
        counts = self.report.outcomes
        self._bar.set_postfix(
            done=counts["done"],
            failed=counts["failed"],
            unknown=counts["unknown"],
            retries=self.report.retries,
            refresh=False,
        )


def _trip_error(trip: Trip, settings: Settings) -> BatchgenError:
    if trip.kind == "rejection":
        return FatalAPIError(
            f"stopped: the first {trip.count} answers were all the same rejection ({trip.message}); nothing was "
            f"created for them and those rows stay pending. Check the base URL ({settings.url}) and the rows, then "
            "run again",
            trip.status,
        )
    if trip.kind == "timeouts":
        return NoAnswerError(
            f"no answer within --timeout {settings.timeout:g} s; the provider may still be creating jobs for these "
            f"{trip.count} rows (now unknown). Raise --timeout or check the provider, then run again "
            "(--retry-unknown sends those rows again)",
            trip.count,
        )
    return NoAnswerError(
        f"stopped: {trip.count} requests in a row got no clear answer ({trip.message}); the provider may have "
        "created jobs for those rows (now unknown). Check the provider, then run again",
        trip.count,
    )
