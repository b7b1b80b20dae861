"""The library's front door: load -> validate -> journal -> submit -> write, for one input and one output.

Everything the command line does is here, importable without it: ``validate_file`` and ``run_batch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from .annotate import check_target, write_annotated
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    BatchgenError,
    FatalAPIError,
    InputError,
    InvalidInputError,
    JournalError,
    OutputError,
    UnreachableError,
    UsageError,
)
from .journal import InvalidRow, Journal, journal_path
from .loader import Table, load
from .schema import DEFAULT_MODEL
from .simulator import BackgroundSimulator, Simulator
from .submit import Report, Settings, Submitter
from .validate import Problem, Validation, parse_text, validate_table
from .writer import check_output, merge_outputs, write_output

SIMULATED_KEY = "simulated-key"


@dataclass(frozen=True, slots=True)
class Source:
    """Which file to read and how."""

    path: Path
    sheet: str | None = None
    header_row: int | None = None
    encoding: str | None = None
    model: str = DEFAULT_MODEL
    rows: tuple[int, int | None] | None = None


@dataclass(slots=True)
class RunResult:
    """What a run did, for the summary and the exit code."""

    output: Path
    journal: Path
    rows: int
    skipped: list[Problem]
    report: Report
    states: Counter[str] = field(default_factory=Counter)
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    error: BatchgenError | None = None
    output_error: OutputError | None = None

    @property
    def exit_code(self) -> int:
        if self.report.interrupted:
            return EXIT_INTERRUPTED
        for error in (self.error, self.output_error):
            if error is not None:
                return error.exit_code
        if self.skipped or self.states["done"] < self.rows:
            return EXIT_PARTIAL
        return EXIT_OK


def validate_file(source: Source) -> tuple[Table, Validation]:
    """Load and check a file; the problems of every row, nothing sent."""
    table = load(source.path, sheet=source.sheet, header_row=source.header_row, encoding=source.encoding)
    if source.rows:
        first, last = source.rows
        table.rows = [row for row in table.rows if first <= row.number and (last is None or row.number <= last)]
        if not table.rows:
            raise InputError(f"--rows: {source.path} has no data rows between {first} and {last or 'the end'}")
    return table, validate_table(table, source.model)


def run_batch(
    source: Source,
    output: str | Path,
    settings: Settings | None = None,
    *,
    simulate: bool = False,
    skip_invalid: bool = False,
    retry_unknown: bool = False,
    force: bool = False,
    dedupe: bool = False,
    annotate: Path | None = None,
) -> RunResult:
    """Send every row of ``source`` not yet done and write ``output``. Invalid input sends nothing.

    ``settings`` may be None only with ``simulate``, which serves a simulator on a free loopback port.
    """
    table, validation = validate_file(source)
    if validation.problems and not skip_invalid:
        raise InvalidInputError(validation.problems)
    output = check_output(output)
    if annotate:
        check_target(annotate, "--annotate")
    invalid = _invalid_rows(validation)
    if dedupe:
        invalid += _drop_duplicates(validation)
    journal_file = journal_path(output)
    with _locked(journal_file, output), _provider(settings, simulate) as settings, Journal.open(journal_file) as journal:
        journal.recover()
        run = journal.start_run(str(source.path), validation.valid, invalid, table.extra_columns, force)
        submitter = Submitter(journal, settings)
        report = asyncio.run(_submit(submitter, journal.to_send(run, retry_unknown)))
        result = RunResult(output, journal.path, len(validation.valid), validation.problems if skip_invalid else [], report,
                           duplicates=validation.duplicates)
        if report.fatal:
            result.error = FatalAPIError(report.fatal)
        elif report.unreachable:
            result.error = UnreachableError(report.unreachable)
        elif report.journal_error:
            result.error = JournalError(report.journal_error)
        try:
            write_output(journal, output)
            if annotate:
                write_annotated(table, journal, annotate, source.encoding)
        except OutputError as exc:
            result.output_error = exc
        except OSError as exc:
            result.output_error = OutputError(f"cannot write {annotate}: {exc.strerror or exc}")
        result.states = journal.counts(run)
    return result


async def _submit(submitter: Submitter, records: list) -> Report:
    """Run the submitter with SIGINT/SIGTERM turned into a graceful stop."""
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, submitter.interrupt)
            handled.append(signum)
    try:
        return await submitter.run(records)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


@contextlib.contextmanager
def _locked(journal_file: Path, output: Path) -> Iterator[None]:
    """One run per output at a time: a second one would send the same pending rows again."""
    lock = FileLock(journal_file.with_name(journal_file.name + ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"-o: another batchgen run is using {output}; wait for it to finish") from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _provider(settings: Settings | None, simulate: bool) -> Iterator[Settings]:
    """The settings to use: as given, or pointed at an in-process simulator for ``--simulate``."""
    if not simulate:
        if settings is None:
            raise ValueError("settings are required unless simulate is set")
        yield settings
        return
    base = settings or Settings(base_url="", api_key=SIMULATED_KEY)
    with BackgroundSimulator(Simulator()) as server:
        yield dataclasses.replace(base, base_url=server.url, api_key=base.api_key or SIMULATED_KEY)


def _drop_duplicates(validation: Validation) -> list[InvalidRow]:
    """``--dedupe``: keep the first of identical requests; the others are listed, not sent."""
    first_of = {later: first for first, later in validation.duplicates}
    skipped = [item for item in validation.valid if item.source.number in first_of]
    validation.valid = [item for item in validation.valid if item.source.number not in first_of]
    return [
        InvalidRow(item.source.number, item.payload["title"], f"same request as row {first_of[item.source.number]}; not sent (--dedupe)",
                   item.source.extras, "duplicate")
        for item in skipped
    ]


def _invalid_rows(validation: Validation) -> list[InvalidRow]:
    """The rows ``--skip-invalid`` leaves out, each with all its problems, for the ``failed`` sheet."""
    messages: dict[int, list[str]] = {}
    for problem in validation.problems:
        messages.setdefault(problem.row, []).append(f"{problem.field}: {problem.message}")
    return [
        InvalidRow(row.number, parse_text(row.fields.get("title", "")), "; ".join(messages[row.number]), row.extras)
        for row in validation.invalid_rows
    ]


def open_journal(output: str | Path) -> Journal:
    """The journal of an existing output, for ``status`` and ``export``; a clear error if there is none."""
    journal_file = journal_path(output)
    if not journal_file.is_file():
        raise UsageError(f"{output}: no journal found ({journal_file}); was it written by batchgen run?")
    return Journal.open(journal_file)


def export(output: str | Path, shards: list[Path] | None = None) -> None:
    """Rebuild ``output`` from its journal, or merge the outputs of ``shards`` (runs with ``rows``) into it."""
    output = check_output(output)
    if not shards:
        with open_journal(output) as journal, _locked(journal.path, output):
            write_output(journal, output)
        return
    with contextlib.ExitStack() as stack:
        journals = [stack.enter_context(open_journal(shard)) for shard in shards]
        for journal, shard in zip(journals, shards, strict=True):
            stack.enter_context(_locked(journal.path, shard))
        stack.enter_context(_locked(journal_path(output), output))
        merge_outputs(journals, output)
