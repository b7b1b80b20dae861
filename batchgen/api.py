"""The library's front door: :func:`validate`, :func:`run` and :func:`arun`.

A source is a path (``.csv``, ``.xlsx``, ``.xlsm``), a pandas DataFrame or a list of dicts. Nothing here
prints, exits or installs a signal handler: warnings go to the ``batchgen`` logger, failures are exceptions
that carry the :class:`RunResult` of what was done, and :func:`run` works inside a running event loop
(Jupyter) by running the batch on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    BatchgenError,
    InputError,
    InvalidInputError,
    JournalError,
    OutputError,
    UsageError,
)
from .loader import Source, Table, in_range, load
from .paths import real, refuse_same
from .schema import DEFAULT_MODEL
from .settings import Settings, check_api_key, check_base_url, check_transport, env_key, env_url, parse_rate
from .validate import CellError, Validation, validate_table

if TYPE_CHECKING:
    import pandas as pd

    from .submit.gate import Waiting

log = logging.getLogger("batchgen")
log.addHandler(logging.NullHandler())

SIMULATED_KEY = "simulated-key"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Every problem of a source, and what a person should know before sending it."""

    source: str
    rows: int
    errors: list[CellError]
    hidden: list[int] = field(default_factory=list)
    passthrough: list[str] = field(default_factory=list)
    duplicates: list[tuple[int | str, int | str]] = field(default_factory=list)
    invalid_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(slots=True)
class RunResult:
    """What a run did. ``counts`` maps a state (``done``, ``failed``, ``unknown``, ``pending``, ``invalid``,
    ``skipped``, ...) to its number of rows; ``jobs`` and ``failed`` are the output's tables as DataFrames.
    ``waiting``: the provider asked the whole run to wait (a quota): its message and until when."""

    output: Path
    journal: Path
    counts: dict[str, int]
    requests: int = 0
    retries: int = 0
    interrupted: bool = False
    stopped: str | None = None
    restored: int = 0
    invalid: list[CellError] = field(default_factory=list)
    hidden: list[int] = field(default_factory=list)
    passthrough: list[str] = field(default_factory=list)
    duplicates: list[tuple[int | str, int | str]] = field(default_factory=list)
    waiting: Waiting | None = None

    @property
    def ok(self) -> bool:
        """Every row of the input is done."""
        return all(state == "done" for state, count in self.counts.items() if count)

    @property
    def jobs(self) -> pd.DataFrame:
        """One line per job id, as in the output's ``jobs`` sheet (read from the journal, the source of truth)."""
        from .journal import Journal
        from .writer import build_jobs, read_jobs

        with Journal.open(self.journal) as journal:
            header, lines = build_jobs([journal], read_jobs(self.output))
        return _frame(header, lines)

    @property
    def failed(self) -> pd.DataFrame:
        """One line per row without job ids: ``row``, ``title``, ``state``, ``error``."""
        from .journal import Journal
        from .writer import build_failed

        with Journal.open(self.journal) as journal:
            header, lines = build_failed([journal])
        return _frame(header, lines)


def _frame(header: list[str], lines: list[list[Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(lines, columns=header)


def validate(
    source: Source,
    *,
    sheet: str | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    model: str | None = None,
    skip_hidden: bool = False,
    report: str | os.PathLike[str] | None = None,
) -> ValidationReport:
    """Check every cell of ``source``; nothing is sent. ``report`` writes a highlighted copy (.xlsx)."""
    table, validation = _check(source, sheet, header_row, encoding, model, skip_hidden)
    if report is not None:
        from .annotate import write_report

        write_report(table, validation, Path(report), encoding)
    checked = _report(table, validation)
    _warn(checked, skip_hidden)
    return checked


def _check(
    source: Source,
    sheet: str | None,
    header_row: int | None,
    encoding: str | None,
    model: str | None,
    skip_hidden: bool,
    rows: tuple[int, int | None] | None = None,
) -> tuple[Table, Validation]:
    if model is not None:
        from .cells import BadValue, parse_model

        try:
            model = parse_model(model)
        except BadValue as exc:
            raise UsageError(str(exc), setting="model") from None
    table = load(source, sheet=sheet, header_row=header_row, encoding=encoding)
    outside = {row.label for row in table.rows if not in_range(row.number, rows)}
    if len(outside) == len(table.rows):
        assert rows is not None
        raise InputError(f"{table.name} has no data rows between {rows[0]} and {rows[1] or 'the end'}")
    if skip_hidden:  # still validated and keyed (keys count identical rows over the whole file), never sent
        outside |= {row.label for row in table.rows if row.hidden}
    validation = validate_table(table, model or DEFAULT_MODEL)
    if outside:
        validation.errors = [error for error in validation.errors if error.row not in outside]
        validation.invalid_rows = [row for row in validation.invalid_rows if row.label not in outside]
    return table, validation


def _report(table: Table, validation: Validation) -> ValidationReport:
    return ValidationReport(
        table.name,
        len(table.rows),
        validation.errors,
        table.hidden,
        table.extra_columns,
        validation.duplicates,
        len(validation.invalid_rows),
    )


def _warn(report: ValidationReport, skip_hidden: bool) -> None:
    """What a person should know before anything is sent, through the ``batchgen`` logger."""
    if report.passthrough:
        log.warning("passed through, not sent: %s", ", ".join(report.passthrough))
    if report.hidden and not skip_hidden:
        log.warning(
            "%d row%s hidden in Excel: %s; %s sent. --skip-hidden leaves them out",
            len(report.hidden),
            "s are" if len(report.hidden) > 1 else " is",
            ranges(report.hidden),
            "they are" if len(report.hidden) > 1 else "it is",
        )
    for first, later in report.duplicates:
        log.warning("rows %s and %s are identical requests", first, later)


def ranges(numbers: Sequence[int]) -> str:
    """``[4, 5, 6, 9]`` -> ``4-6, 9``: row numbers as a person writes them."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


async def arun(
    source: Source,
    output: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    simulate: bool = False,
    concurrency: int = 8,
    rate: float | str | None = None,
    max_attempts: int = 5,
    timeout: float = 120.0,
    model: str | None = None,
    skip_invalid: bool = False,
    retry_unknown: bool = False,
    retry_failed: bool = False,
    max_requests: int | None = None,
    progress: bool = False,
    transport: str = "httpx",
    sheet: str | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    rows: tuple[int, int | None] | None = None,
    skip_hidden: bool = False,
    allow_resend: bool = False,
    dedupe: bool = False,
    force: bool = False,
    stop_after: float | None = None,
    log_file: str | os.PathLike[str] | None = None,
    annotate: str | os.PathLike[str] | None = None,
    allow_insecure: bool = False,
    connect_timeout: float = 10.0,
    grace: float = 15.0,
    stop: asyncio.Event | None = None,
) -> RunResult:
    """Send every row of ``source`` not yet done and write ``output``; see :func:`run`.

    ``stop``, when set, stops dispatching gracefully (requests in flight get ``grace`` seconds); cancelling
    the task stops at once. Either way the output is written and every stored job id kept.
    """
    settings = _settings(
        base_url,
        api_key,
        simulate,
        concurrency,
        rate,
        max_attempts,
        timeout,
        max_requests,
        progress,
        transport,
        stop_after,
        log_file,
        allow_insecure,
        connect_timeout,
        grace,
    )
    target = real(output)
    from .writer import check_output

    check_output(target)
    source_path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    refuse_same(target, "output", input=source_path)
    if settings.log_file is not None:
        refuse_same(settings.log_file, "log_file", input=source_path, output=target)
    table, validation = await asyncio.to_thread(_check, source, sheet, header_row, encoding, model, skip_hidden, rows)
    copy = Path(annotate) if annotate is not None else None
    if copy is not None:
        from .annotate import check_target

        check_target(copy, "annotate", table, target)
    report = _report(table, validation)
    _warn(report, skip_hidden)
    if validation.errors and not skip_invalid:
        raise InvalidInputError(validation.errors, table.name)
    from . import batch

    plan = batch.plan(table, validation, rows=rows, skip_hidden=skip_hidden, dedupe=dedupe)
    with _provider(settings, simulate) as settings:
        outcome = await batch.Batch(
            plan,
            target,
            settings,
            simulate=simulate,
            retry_unknown=retry_unknown,
            retry_failed=retry_failed,
            allow_resend=allow_resend,
            force=force,
            annotate=copy,
            encoding=encoding,
        ).run(stop)
    result = RunResult(
        target,
        outcome.journal,
        outcome.counts,
        outcome.report.requests,
        outcome.report.retries,
        outcome.report.interrupted,
        outcome.report.stopped,
        outcome.restored,
        validation.errors if skip_invalid else [],
        report.hidden,
        report.passthrough,
        report.duplicates,
        outcome.report.waiting,
    )
    errors = sorted(outcome.errors, key=_severity)
    if errors:
        for error in errors:
            error.result = result
        raise errors[0]
    return result


def _severity(error: BatchgenError) -> int:
    """A local write that failed comes first: job ids may be at stake."""
    return 0 if isinstance(error, JournalError) else 1 if isinstance(error, OutputError) else 2


def _settings(
    base_url: str | None,
    api_key: str | None,
    simulate: bool,
    concurrency: int,
    rate: float | str | None,
    max_attempts: int,
    timeout: float,
    max_requests: int | None,
    progress: bool,
    transport: str,
    stop_after: float | None,
    log_file: str | os.PathLike[str] | None,
    allow_insecure: bool,
    connect_timeout: float,
    grace: float,
) -> Settings:
    """Every setting checked before anything is read, journaled or sent."""
    for name, value, low in (("concurrency", concurrency, 1), ("max_attempts", max_attempts, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise UsageError(f"{value!r} is not a whole number of at least {low}", setting=name)
    if max_requests is not None and (not isinstance(max_requests, int) or max_requests < 1):
        raise UsageError(f"{max_requests!r} is not a whole number of at least 1", setting="max_requests")
    for name, number in (("timeout", timeout), ("connect_timeout", connect_timeout), ("stop_after", stop_after)):
        if number is not None and not (isinstance(number, (int, float)) and 0 < number < float("inf")):
            raise UsageError(f"{number!r} is not a positive number of seconds", setting=name)
    if simulate:
        url, key = "http://127.0.0.1", check_api_key(SIMULATED_KEY)
    else:
        url = check_base_url(base_url if base_url is not None else env_url(), allow_insecure)
        key = check_api_key(api_key if api_key is not None else env_key())
    log_path = Path(log_file) if log_file is not None else None
    if log_path is not None and not log_path.parent.is_dir():
        raise UsageError(f"cannot open {log_path} (the folder {log_path.parent} does not exist)", setting="log_file")
    return Settings(
        url,
        key,
        concurrency,
        parse_rate(rate),
        max_attempts,
        float(timeout),
        float(connect_timeout),
        max_requests,
        stop_after,
        check_transport(transport),
        log_path,
        progress,
        grace,
    )


@contextlib.contextmanager
def _provider(settings: Settings, simulate: bool) -> Iterator[Settings]:
    """The settings to use: as given, or pointed at an in-process simulator on a free loopback port."""
    if not simulate:
        yield settings
        return
    from dataclasses import replace

    from .simulator import BackgroundSimulator, Simulator

    with BackgroundSimulator(Simulator(SIMULATED_KEY)) as server:
        yield replace(settings, base_url=server.url)


def run(source: Source, output: str | os.PathLike[str], **options: Any) -> RunResult:
    """Send every row of ``source`` (a path, a DataFrame or a list of dicts) not yet done; write ``output``.

    Same options as :func:`arun`. Works from a plain script and from inside a running event loop
    (Jupyter): the batch runs on a thread of its own, so no signal handler is ever installed, and Ctrl-C
    (KeyboardInterrupt) cancels it cleanly: requests in flight are journaled, the output written.
    """
    box: dict[str, Any] = {}
    started, finished = threading.Event(), threading.Event()

    def target() -> None:
        async def main() -> RunResult:
            box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
            started.set()
            return await arun(source, output, **options)

        try:
            box["result"] = asyncio.run(main())
        except BaseException as exc:  # handed to the calling thread, which raises it
            box["error"] = exc
        finally:
            started.set()
            finished.set()

    threading.Thread(target=target, name="batchgen-run", daemon=True).start()
    try:  # an Event, not Thread.join: an interrupted join marks a running thread as stopped (CPython 3.11)
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        started.wait()
        if "loop" in box:
            box["loop"].call_soon_threadsafe(box["task"].cancel)
        finished.wait()
        raise
    if "error" in box:
        raise box["error"]
    result: RunResult = box["result"]
    return result
