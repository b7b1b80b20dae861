"""The library's front door: :func:`validate`, :func:`run` and :func:`arun`.

A source is a path (``.csv``, ``.xlsx``, ``.xlsm``), a pandas DataFrame or a list of dicts. Nothing here
prints, exits or installs a signal handler: warnings go to the ``batchgen`` logger, failures are exceptions
that carry the :class:`RunResult` of what was done, and :func:`run` works inside a running event loop
(Jupyter) by running the batch on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

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
from .progress import Bar, Progress
from .redact import redact
from .results import RunResult, State, ValidationReport
from .schema import DEFAULT_MODEL
from .settings import (
    DEFAULTS,
    Limits,
    Provider,
    Settings,
    check_api_key,
    check_base_url,
    check_keywords,
    check_transport,
    env_key,
    env_url,
    parse_rate,
)
from .transport.base import TransportName
from .validate import Validation, validate_table

if TYPE_CHECKING:
    import pandas as pd
    from _typeshed import DataclassInstance

log = logging.getLogger("batchgen")
log.addHandler(logging.NullHandler())

SIMULATED_KEY = "simulated-key"
SHOWN = 10  # identical rows named one by one in a warning
P = ParamSpec("P")
D = TypeVar("D", bound="DataclassInstance")


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
    check_keywords(validate, locals())
    table, validation = _check(source, sheet, header_row, encoding, model, skip_hidden)
    if report is not None:
        from .annotate import write_report

        write_report(table, validation, Path(report), encoding)
    checked = _validation_report(table, validation)
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
        first, last = rows
        where = f"row {first}" if first == last else f"rows between {first} and {'the end' if last is None else last}"
        raise InputError(f"{table.name} has no data {where}")
    if skip_hidden:  # still validated and keyed (keys count identical rows over the whole file), never sent
        outside |= {row.label for row in table.rows if row.hidden}
    validation = validate_table(table, model or DEFAULT_MODEL)
    if outside:
        validation.errors = [error for error in validation.errors if error.row not in outside]
        validation.invalid_rows = [row for row in validation.invalid_rows if row.label not in outside]
    return table, validation


def _validation_report(table: Table, validation: Validation) -> ValidationReport:
    """What a person is told of ``table``; a column reported as an error is not also listed as passed through."""
    wrong = {problem.header for problem in table.header_problems}
    return ValidationReport(
        table.name,
        len(table.rows),
        validation.errors,
        table.hidden,
        [column for column in table.extra_columns if column not in wrong],
        validation.duplicates,
        len(validation.invalid_rows),
    )


def _warn(report: ValidationReport, skip_hidden: bool, send_duplicates: bool = False) -> None:
    """What a person should know before anything is sent, through the ``batchgen`` logger."""
    if report.passthrough:
        log.warning("passed through, not sent: %s", ", ".join(report.passthrough))
    if report.hidden and not skip_hidden:
        log.warning(
            "%d row%s hidden in Excel: %s; %s sent. `skip_hidden` leaves them out",
            len(report.hidden),
            "s are" if len(report.hidden) > 1 else " is",
            ranges(report.hidden),
            "they are" if len(report.hidden) > 1 else "it is",
        )
    copies: dict[int | str, list[int | str]] = {}
    for first, copy in report.duplicates:
        copies.setdefault(first, []).append(copy)
    for first, later in list(copies.items())[:SHOWN]:  # 20,000 identical rows were 19,999 lines
        what = (
            "each is sent (`send_duplicates`)"
            if send_duplicates
            else f"only row {first} is sent (`send_duplicates` sends each)"
        )
        rows = [str(first), *map(str, later[:SHOWN])] + ([f"{len(later) - SHOWN} more"] if len(later) > SHOWN else [])
        log.warning("rows %s and %s are identical requests: %s", ", ".join(rows[:-1]), rows[-1], what)
    if len(copies) > SHOWN:
        rest = sum(len(later) for later in list(copies.values())[SHOWN:])
        log.warning("... and %d more rows identical to an earlier one", rest)


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
    concurrency: int = DEFAULTS.concurrency,
    rate: float | str | None = None,
    max_attempts: int = DEFAULTS.max_attempts,
    timeout: float = DEFAULTS.timeout,
    model: str | None = None,
    skip_invalid: bool = False,
    retry_unknown: bool = False,
    retry_failed: bool = False,
    max_requests: int | None = None,
    progress: bool | Callable[[Progress], None] = False,
    transport: TransportName = DEFAULTS.transport,
    sheet: str | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    rows: tuple[int, int | None] | None = None,
    skip_hidden: bool = False,
    allow_resend: bool = False,
    resend_changed: bool = False,
    send_duplicates: bool = False,
    force: bool = False,
    stop_after: float | None = None,
    log_file: str | os.PathLike[str] | None = None,
    annotate: str | os.PathLike[str] | None = None,
    allow_insecure: bool = False,
    connect_timeout: float = DEFAULTS.connect_timeout,
    grace: float = DEFAULTS.grace,
    stop: asyncio.Event | None = None,
    ledger: str | None = None,
) -> RunResult:
    """Send every row of ``source`` not yet done and write ``output``; see :func:`run`.

    ``stop``, when set, stops dispatching gracefully (requests in flight get ``grace`` seconds); so does
    cancelling the task (``asyncio.run``'s answer to Ctrl-C), which then goes on as a cancellation; a cancellation
    after ``stop`` was set, or a second one, stops at once. Either way the output is written and every stored job
    id kept. ``ledger`` is a team ledger's URL (``postgresql://user@host/db``, default ``$BATCHGEN_LEDGER``) that
    several machines share.
    """
    given = dict(locals())  # the keywords as passed: each settings object takes those it names
    check_keywords(arun, given)
    settings = _settings(given)
    from .ledger import ledger_url

    team_ledger = None if simulate else ledger_url(ledger)
    target = real(output)
    from .targets import check_targets
    from .writer import check_output

    source_path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    refuse_same(target, "output", input=source_path)
    copy = Path(annotate) if annotate is not None else None
    check_targets(target, source=source_path, log_file=settings.log_file, annotate=copy)
    check_output(target)
    table, validation = await asyncio.to_thread(_check, source, sheet, header_row, encoding, model, skip_hidden, rows)
    if copy is not None:
        from .annotate import check_target

        check_target(copy, "annotate", table, target)
    report = _validation_report(table, validation)
    _warn(report, skip_hidden, send_duplicates)
    if validation.errors and not skip_invalid:
        raise InvalidInputError(validation.errors, table.name)
    from .batch import BatchRun, Choices, plan

    planned = plan(table, validation, rows=rows, skip_hidden=skip_hidden, send_duplicates=send_duplicates)
    with _provider(settings, simulate) as settings, _drawn(settings.progress):
        choices = _pick(Choices, given, annotate=copy, ledger=team_ledger)
        finished = await BatchRun(planned, target, settings, choices).run(stop)
    result = RunResult(
        output=target,
        journal=finished.journal,
        counts={**dict.fromkeys(State, 0), **finished.counts},
        requests=finished.report.requests - finished.report.unconnected,
        retries=finished.report.retries,
        unconnected=finished.report.unconnected,
        interrupted=finished.report.interrupted,
        stopped=finished.report.stopped,
        restored=finished.restored,
        invalid=validation.errors if skip_invalid else [],
        hidden=report.hidden,
        passthrough=report.passthrough,
        duplicates=report.duplicates,
        waiting=finished.report.waiting,
        tables=functools.partial(_table, finished.journal, target),
    )
    errors = sorted(finished.errors, key=_severity)
    if errors:
        for error in errors:
            error.result = result
        raise errors[0]
    return result


def report(output: str | Path, path: str | Path | None = None) -> Path:
    """Write the night of ``output`` (every run on it) as one self-contained HTML page at ``path`` (by default
    beside it: ``results.night.html``); return where it went. Nothing in the page is fetched from the network."""
    from .page import write_report

    return write_report(output, path)


def attempts(output: str | Path) -> pd.DataFrame:
    """Every request sent for ``output``, one line each, from its journal: see ``docs/api.md``."""
    from .night import attempts_frame
    from .status import open_journal

    with open_journal(output) as journal:
        return attempts_frame(journal)


def _table(journal_file: Path, output: Path, name: str) -> pd.DataFrame:
    """A table of the output (``jobs`` or ``failed``), rebuilt from the journal, as a DataFrame."""
    import pandas as pd

    from .journal import Journal
    from .writer import build_failed, build_jobs, read_jobs

    with Journal.open(journal_file) as journal:
        header, lines = build_jobs([journal], read_jobs(output)) if name == "jobs" else build_failed([journal])
    return pd.DataFrame(lines, columns=header)


def _severity(error: BatchgenError) -> int:
    """A local write that failed comes first: job ids may be at stake."""
    return 0 if isinstance(error, JournalError) else 1 if isinstance(error, OutputError) else 2


def _settings(given: Mapping[str, Any]) -> Settings:
    """Every setting of ``given`` (:func:`arun`'s keywords) checked before anything is read, journaled or sent
    (the ranges by :class:`Limits` and :class:`Provider` themselves)."""
    if given["simulate"]:
        url, key = "http://127.0.0.1", check_api_key(SIMULATED_KEY)
    else:
        base_url, api_key = given["base_url"], given["api_key"]
        raw_key = api_key if api_key is not None else env_key()
        try:
            url = check_base_url(base_url if base_url is not None else env_url(), given["allow_insecure"])
        except UsageError as exc:  # a URL with the key in it (a path): the message never shows it
            raise UsageError(redact(exc.detail, (raw_key or "").strip()), setting=exc.setting) from None
        key = check_api_key(raw_key)
    log_path = Path(given["log_file"]) if given["log_file"] is not None else None
    if log_path is not None and not log_path.parent.is_dir():
        raise UsageError(f"cannot open {log_path} (the folder {log_path.parent} does not exist)", setting="log_file")
    provider = _pick(Provider, given, base_url=url, api_key=key, transport=check_transport(given["transport"]))
    limits = _pick(Limits, given, rate=parse_rate(given["rate"]))
    progress = given["progress"]
    drawn = Bar() if progress is True else progress or None
    return Settings(provider=provider, limits=limits, log_file=log_path, progress=drawn)


def _pick(kind: type[D], given: Mapping[str, Any], **checked: Any) -> D:
    """A ``kind`` (a settings dataclass) from the keywords of ``given`` it has a field for, ``checked`` on top."""
    names = {field.name for field in dataclasses.fields(kind)}
    return kind(**{name: value for name, value in given.items() if name in names} | checked)


@contextlib.contextmanager
def _drawn(progress: Callable[[Progress], None] | None) -> Iterator[None]:
    """A bar this run made (``progress=True``) is closed with it; a caller's own callback is the caller's."""
    try:
        yield
    finally:
        if isinstance(progress, Bar):
            progress.close()


@contextlib.contextmanager
def _provider(settings: Settings, simulate: bool) -> Iterator[Settings]:
    """The settings to use: as given, or pointed at an in-process simulator on a free loopback port."""
    if not simulate:
        yield settings
        return
    from dataclasses import replace

    from .simulator import BackgroundSimulator, Simulator

    with BackgroundSimulator(Simulator(SIMULATED_KEY)) as server:
        yield replace(settings, provider=replace(settings.provider, base_url=server.url))


def _blocking(start: Callable[P, Coroutine[Any, Any, RunResult]]) -> Callable[P, RunResult]:
    """``start`` (:func:`arun`) as a plain call with the very same typed keywords, run on a thread of its own."""

    @functools.wraps(start)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> RunResult:
        if kwargs.get("stop") is not None:
            raise UsageError("a stop event works with arun; run stops on KeyboardInterrupt", setting="stop")
        box: dict[str, Any] = {}
        started, finished = threading.Event(), threading.Event()

        def target() -> None:
            async def main() -> RunResult:
                box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
                started.set()
                return await start(*args, **kwargs)

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
            _cancel_until_finished(box, started, finished)
            raise
        if "error" in box:
            raise box["error"]
        result: RunResult = box["result"]
        return result

    blocking.__doc__ = """Send every row of ``source`` (a path, a DataFrame or a list of dicts) not yet done.

    Writes ``output``; the same keywords as :func:`arun`. Works from a plain script and from inside a running event loop
    (Jupyter): the batch runs on a thread of its own, so no signal handler is ever installed. Ctrl-C
    (KeyboardInterrupt, a notebook's stop button) stops it gracefully: requests in flight get ``grace`` seconds and
    their job ids are stored, the output written, then the KeyboardInterrupt is raised; a second one cuts them short.
    """
    return blocking


def _cancel_until_finished(box: dict[str, Any], started: threading.Event, finished: threading.Event) -> None:
    """Cancel the run's task (a graceful stop, see :meth:`~batchgen.batch.BatchRun.run`) and wait for it to end;
    each further KeyboardInterrupt cancels it again (the second cuts requests in flight short)."""
    started.wait()
    while True:
        if "loop" in box:
            with contextlib.suppress(RuntimeError):  # the run ended meanwhile: its loop is closed
                box["loop"].call_soon_threadsafe(box["task"].cancel)
        try:
            finished.wait()
            return
        except KeyboardInterrupt:
            continue


run = _blocking(arun)
