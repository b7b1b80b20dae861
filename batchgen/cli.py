"""The ``batchgen`` command: flags to library calls, exceptions to exit codes and messages, signals.

Nothing else lives here: every behaviour is the library's (:mod:`batchgen.api`). Heavy modules are imported
inside the commands, so ``batchgen --help`` starts fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__, errors
from .environment import KEY_ENV, LEDGER_ENV, URL_ENV
from .errors import BatchgenError, InvalidInputError, JournalError, UsageError
from .faults import NO_FAULTS, SERVING
from .redact import redact
from .results import State
from .settings import DEFAULTS
from .system import is_hangup, on_signals, stop_signals
from .transport import TRANSPORTS

if TYPE_CHECKING:
    from .results import CellError, RunResult

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_STOPPED, EXIT_LOCAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES: tuple[tuple[type[BatchgenError], int], ...] = (
    (errors.UsageError, EXIT_USAGE),
    (errors.InputError, EXIT_USAGE),
    (errors.FatalAPIError, EXIT_STOPPED),
    (errors.UnreachableError, EXIT_STOPPED),
    (errors.NoAnswerError, EXIT_STOPPED),
    (errors.JournalError, EXIT_LOCAL),
    (errors.OutputError, EXIT_LOCAL),
)
FLAGS = {"output": "-o"}  # a setting's flag, where it is not --the-setting-name
UNFLAGGED = {"api_key", "port"}  # settings whose errors say where they come from themselves
SETTING = re.compile(r"`([a-z][a-z_]*)`")  # how library messages name a setting: `allow_resend`
CONSOLE_LIMIT = 50
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def flag(setting: str) -> str:
    """The command-line flag of a library setting: ``allow_resend`` -> ``--allow-resend``."""
    return FLAGS.get(setting, "--" + setting.replace("_", "-"))


def flagged(text: str) -> str:
    """The library's setting names in ``text`` (```allow_resend```) as the flags a user types."""
    return SETTING.sub(lambda found: flag(found[1]), text)


def say(message: str) -> None:
    """A line on stderr, the key masked: a user may have put it where a message quotes (a URL, a file name)."""
    click.echo(redact(flagged(message), (os.environ.get(KEY_ENV) or "").strip()), err=True)


def echo_error(message: str) -> None:
    say(f"error: {message}")


def echo_errors(errors: Sequence[CellError], err: bool) -> None:
    """Every problem of a small file; for a large one the first 50 and a count of the rest per column."""
    for error in errors[:CONSOLE_LIMIT]:
        click.echo(str(error), err=err)
    rest = Counter(error.field for error in errors[CONSOLE_LIMIT:])
    if rest:
        counts = ", ".join(f"{name} {count}" for name, count in rest.most_common())
        click.echo(
            f"... and {sum(rest.values())} more problems ({counts}); "
            "`batchgen validate --report errors.xlsx` lists them all",
            err=err,
        )


class _Warnings(logging.Handler):
    """The library's warnings, as ``warning: ...`` lines on stderr; a wait of the whole run says how to end it."""

    def emit(self, record: logging.LogRecord) -> None:
        hint = "; Ctrl-C stops, progress is kept" if hasattr(record, "waiting") else ""
        say(f"warning: {record.getMessage()}{hint}")


def parse_rate(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``20/s`` or ``600/min`` -> requests per second (the library's own parser, for click's message)."""
    from .settings import parse_rate as to_rate

    try:
        return to_rate(value)
    except UsageError as exc:
        raise click.BadParameter(exc.detail) from None


def parse_duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``90``, ``90s``, ``30m``, ``2h``, ``1h30m`` -> seconds."""
    if value is None:
        return None
    match = _DURATION.fullmatch(value.strip().lower())
    if not value.strip() or not match or not any(match.groups()):
        raise click.BadParameter(f"{value!r} is not a duration such as 90s, 30m or 2h")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_clock(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``HH:MM`` local time -> seconds from now until its next occurrence (today or tomorrow)."""
    if value is None:
        return None
    try:
        moment = dt.datetime.strptime(value.strip(), "%H:%M").time()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time such as 06:30") from None
    current = dt.datetime.now()
    target = dt.datetime.combine(current.date(), moment)
    if target <= current:
        target += dt.timedelta(days=1)
    return (target - current).total_seconds()


def parse_schedule(ctx: click.Context, param: click.Parameter, value: str | None) -> list[tuple[float, float]]:
    """``20,5@20,40@40`` -> [(0, 20), (20, 5), (40, 40)]: requests per second from each second on."""
    if not value:
        return []
    schedule: list[tuple[float, float]] = []
    for part in value.split(","):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)(?:/s)?\s*(?:@\s*(\d+(?:\.\d+)?)s?)?\s*", part)
        if not match or float(match[1]) <= 0:
            raise click.BadParameter(f"{value!r} is not a schedule such as 20,5@20,40@40")
        schedule.append((float(match[2] or 0), float(match[1])))
    return schedule


def parse_pair(separator: str, example: str) -> Callable[[click.Context, click.Parameter, str | None], Any]:
    """A callback reading two non-negative numbers, the second above the first where a range: ``100/10``."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
        if value is None:
            return None
        match = re.fullmatch(rf"\s*(\d+(?:\.\d+)?)\s*{re.escape(separator)}\s*(\d+(?:\.\d+)?)\s*", value)
        if not match or float(match[2]) <= (float(match[1]) if separator == "-" else 0):
            raise click.BadParameter(f"{value!r} is not such as {example}")
        return float(match[1]), float(match[2])

    return parse


def parse_rows(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int | None] | None:
    """``2-5000``, ``5001-`` or ``7`` (one row): the Excel row numbers of one shard."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*(?:(-)\s*(\d*)\s*)?", value)
    if not match or (match[3] and int(match[3]) < int(match[1])):
        raise click.BadParameter(f"{value!r} is not a row range such as 2-5000, 5001- or 7")
    first = int(match[1])
    return first, (int(match[3]) if match[3] else None) if match[2] else first


def parse_model_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from .cells import BadValue, parse_model

    try:
        return str(parse_model(value))
    except BadValue as exc:
        raise click.BadParameter(str(exc)) from None


def source_options(command: F) -> F:
    """The flags that say how to read the input, shared by ``validate`` and ``run``."""
    for option in reversed(
        [
            click.argument("input", type=click.Path(path_type=Path)),
            click.option("--sheet", help="Sheet to read (default: the first visible sheet)."),
            click.option("--header-row", type=click.IntRange(min=1), help="Row number of the header (default: found)."),
            click.option("--encoding", help="Encoding of a CSV file that is not UTF-8, e.g. cp1252."),
            click.option("--model", callback=parse_model_option, help="Model for rows that leave it blank [FUZZ-1.0]."),
            click.option(
                "--rows", callback=parse_rows, help="Only these rows (Excel numbers), e.g. 2-5000 or 7: one shard."
            ),
            click.option("--skip-hidden", is_flag=True, help="Leave out rows hidden in Excel (by hand or a filter)."),
        ]
    ):
        command = option(command)
    return command


FAULT_SHARES = {
    "rate_429": "Share of requests answered 429.",
    "rate_5xx": "Share answered 503.",
    "rate_500": "Share answered 500.",
    "rate_drop": "Share whose connection is dropped.",
    "rate_accept_drop": "Share processed, then dropped.",
    "rate_hang": "Share that hang before answering.",
    "rate_malformed": "Share answered with a bad body.",
}


def fault_options(command: F) -> F:
    """The simulator's fault shares (``--rate-429 0.05``), each defaulting to the simulator's own."""
    for name, text in reversed(FAULT_SHARES.items()):
        command = click.option(flag(name), type=click.FloatRange(0, 1), default=getattr(NO_FAULTS, name), help=text)(
            command
        )
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, package_name="batchgen")
def cli() -> None:
    """Turn a spreadsheet of songs into music-generation jobs, one request per row."""


@cli.command()
@source_options
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    help="Write a copy of INPUT (.xlsx) with each invalid cell highlighted and commented, and an errors sheet.",
)
def validate(input: Path, report: Path | None, rows: tuple[int, int | None] | None, **options: Any) -> int:
    """Check every cell of INPUT and list all problems; sends nothing."""
    from . import api

    del rows  # every row is checked: a shard (the row keys count over the whole file) is a run's business
    checked = api.validate(input, report=report, **options)
    echo_errors(checked.errors, err=False)
    if report:
        say(f"report: {report}")
    if checked.errors:
        echo_error(f"{input}: {len(checked.errors)} problem(s) in {checked.invalid_rows} of {checked.rows} rows")
        return EXIT_USAGE
    click.echo(f"{input}: {checked.rows} rows, all valid")
    return EXIT_OK


@cli.command()
@source_options
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output .xlsx or .csv.")
@click.option("--base-url", envvar=URL_ENV, help=f"Provider base URL (or ${URL_ENV}).")
@click.option("--simulate", is_flag=True, help="Send to a built-in simulator instead of the provider.")
@click.option(
    "--transport",
    type=click.Choice(TRANSPORTS),
    default=DEFAULTS.transport,
    show_default=True,
    help="HTTP client; aiohttp costs about a third less CPU per request.",
)
@click.option(
    "--concurrency", type=int, default=DEFAULTS.concurrency, show_default=True, help="Requests in flight (1-1024)."
)
@click.option("--rate", callback=parse_rate, help="Hard cap on requests, e.g. 10/s or 300/min.")
@click.option(
    "--max-attempts",
    type=int,
    default=DEFAULTS.max_attempts,
    show_default=True,
    help="Attempts per row for retryable errors.",
)
@click.option("--timeout", type=float, default=DEFAULTS.timeout, show_default=True, help="Seconds for a whole request.")
@click.option("--skip-invalid", is_flag=True, help="Send the valid rows and list the invalid ones as failed.")
@click.option("--retry-unknown", is_flag=True, help="Send again rows whose earlier request got no clear answer.")
@click.option("--retry-failed", is_flag=True, help="Send again rows the provider rejected (4xx) in an earlier run.")
@click.option("--allow-resend", is_flag=True, help="Send rows the ledger says were already sent to another output.")
@click.option(
    "--resend-changed", is_flag=True, help="Send rows edited since they were sent, as new requests (billed again)."
)
@click.option(
    "--ledger",
    envvar=LEDGER_ENV,
    help=f"Team ledger shared by several machines, postgresql://user@host/db (or ${LEDGER_ENV}) [per-user file].",
)
@click.option("--max-requests", type=int, help="Stop dispatching after this many requests.")
@click.option("--stop-after", callback=parse_duration, help="Stop dispatching after this long, e.g. 30m or 7h.")
@click.option("--stop-at", callback=parse_clock, help="Stop dispatching at this local time, HH:MM.")
@click.option("--log-file", type=click.Path(path_type=Path), help="Append one JSON line per attempt to this file.")
@click.option("--allow-insecure", is_flag=True, help="Allow a plain-http base URL that is not this machine.")
@click.option("--force", is_flag=True, help="Use the output's journal even if it was made from another input.")
@click.option(
    "--send-duplicates", is_flag=True, help="Send identical rows each once (default: the first; the others listed)."
)
@click.option(
    "--annotate",
    type=click.Path(path_type=Path),
    help="Also write a copy of INPUT (.xlsx) with job_id_1, job_id_2, status and error on each row.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(
    input: Path,
    output: Path,
    simulate: bool,
    stop_at: float | None,
    stop_after: float | None,
    quiet: bool,
    **options: Any,
) -> int:
    """Send one request per row of INPUT and write the job ids to OUTPUT. Run it again to resume."""
    stopper = _Stopper()
    with on_signals(stop_signals(), stopper):  # from the start: a signal while the sheet is read sends nothing
        from . import api
        from .progress import Bar

        options["stop_after"] = min((t for t in (stop_after, stop_at) if t is not None), default=None)
        bar = Bar()
        try:
            result = asyncio.run(
                stopper.guard(
                    api.arun(
                        input, output, simulate=simulate, progress=False if quiet else bar, stop=stopper.stop, **options
                    )
                )
            )
        except InvalidInputError as exc:
            echo_errors(exc.errors, err=True)
            raise BatchgenError(f"{exc.message} (fix them, or pass --skip-invalid)") from None
        except asyncio.CancelledError:
            echo_error(
                "interrupted at once: requests in flight were cut short (their rows are unknown or pending); "
                "run the same command again to resume"
            )
            return EXIT_INTERRUPTED
        finally:
            bar.close()
    _summary(result, None)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_PARTIAL


class _Stopper:
    """Ctrl-C, SIGTERM, SIGHUP (a closed terminal) or Ctrl-Break: the first stops the batch gracefully, a second
    at once. The stop is set in the signal handler itself, so the check before dispatch sees it; what touches
    the terminal or the task waits for the loop (a handler may run in the middle of a write to stderr)."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    async def guard(self, batch: Coroutine[Any, Any, T]) -> T:
        """Run ``batch`` as the task a second signal cancels."""
        self._loop = asyncio.get_running_loop()
        task: asyncio.Task[T] = asyncio.ensure_future(batch)
        self._task = task
        try:
            return await task
        finally:
            self._loop = self._task = None

    def __call__(self, signum: int) -> None:
        if is_hangup(signum):
            _leave_terminal()
        loop, first = self._loop, not self.stop.is_set()
        self.stop.set()
        if loop is None and not first:
            raise KeyboardInterrupt  # a second signal before the batch started: nothing to let finish
        action = self._stopping if first else self._cancel
        if loop is None:
            action()
        else:
            loop.call_soon_threadsafe(action)

    def _stopping(self) -> None:
        say("stopping: waiting for the requests in flight (Ctrl-C again to stop at once)")

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _leave_terminal() -> None:
    """After a hangup, writing to the closed terminal fails: what was going there goes nowhere instead, so the
    run still finishes, writes its output and exits. Pipes and files (nohup, cron) are kept."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            if os.isatty(fd):
                os.dup2(null, fd)
    finally:
        os.close(null)


def _summary(result: RunResult, error: BatchgenError | None) -> None:
    """The closing lines: what happened, where it is, and what to do next."""
    counts = result.counts
    parts = [f"{counts[state]} {state}" for state in State if counts.get(state)]
    unconnected = f"; {result.unconnected} attempts could not connect" if result.unconnected else ""
    say(
        f"{_rows(sum(counts.values()))}: {', '.join(parts) or 'nothing to do'}; "
        f"{result.requests} request{'s' * (result.requests != 1)} sent ({result.retries} retried){unconnected}"
    )
    if error is not None and not result.output.exists():  # a full disk: the lines below say where the ids are
        say(f"output: not written ({result.output}; journal: {result.journal})")
    else:
        say(f"output: {result.output} (journal: {result.journal})")
    if counts.get(State.SKIPPED):
        say(
            f"{_rows(counts['skipped'], 'was', 'were')} already sent to another output (see the failed sheet); "
            "--allow-resend sends them anyway"
        )
    if counts.get(State.CHANGED):
        say(
            f"{_rows(counts['changed'], 'was', 'were')} edited since sent, so not sent again (see the failed "
            "sheet); --resend-changed sends each as a new request, billed again"
        )
    if counts.get(State.DUPLICATE):
        say(
            f"not sent, the same request as an earlier row: {_rows(counts['duplicate'])} (see the failed sheet); "
            "--send-duplicates sends each, billed again"
        )
    if counts.get(State.UNKNOWN):
        say(
            f"{_rows(counts['unknown'], 'is', 'are')} unknown: the provider may have created (and billed) jobs for "
            "them. Check with the provider, then run again with --retry-unknown to send them again."
        )
    say(f"the night, drawn: batchgen report {shlex.quote(str(result.output))}")
    if error is None and result.interrupted:
        say("interrupted: run the same command again to resume")
    elif error is None and result.stopped:
        say(f"stopped: {result.stopped}; run the same command again to continue")


def _rows(count: int, one: str = "", many: str = "") -> str:
    """``1 row was``, ``2 rows were``: a count of rows, with the verb that agrees."""
    return f"{count} row {one}".rstrip() if count == 1 else f"{count} rows {many}".rstrip()


@cli.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
def template(output: Path, force: bool) -> int:
    """Write an empty catalog to fill in: drop-downs, number ranges, help on every column, examples."""
    from .template import write_template

    write_template(output, force)
    say(f"{output}: template written; fill the Catalog sheet, then: batchgen validate {output}")
    return EXIT_OK


@cli.command()
@click.argument("output", type=click.Path(path_type=Path))
def status(output: Path) -> int:
    """Where the batch of OUTPUT stands: rows per state, throughput, rows without job ids, restored rows."""
    from .status import status as read_status

    with _naming(output="OUTPUT"):
        found = read_status(output)
    click.echo(f"{output}: last run of {found.source} started {found.started}")
    always = (State.DONE, State.FAILED, State.UNKNOWN, State.PENDING, State.IN_FLIGHT, State.SKIPPED, State.INVALID)
    shown = [state for state in State if state in always or found.counts.get(state)]
    click.echo("  ".join(f"{state} {found.counts.get(state, 0)}" for state in shown))
    if found.throughput:
        click.echo(f"throughput: {found.throughput}")
    for label, state, message in found.lines:
        click.echo(flagged(f"row {label}  {state}  {message}"))
    return EXIT_OK


@cli.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "-o", "page", type=click.Path(path_type=Path), help="Where to write the page (default: OUTPUT.night.html)."
)
def report(output: Path, page: Path | None) -> int:
    """Draw the night of OUTPUT as one HTML page that opens offline: answers, the pace, latency, what to decide."""
    from .page import write_report

    with _naming(output="OUTPUT", path="-o"):
        written = write_report(output, page)
    say(f"{output}: the night drawn in {written}")
    return EXIT_OK


@cli.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "--merge",
    "shards",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Merge the output of a shard (a run with --rows) or of another machine into OUTPUT; repeat for each.",
)
def export(output: Path, shards: tuple[Path, ...]) -> int:
    """Rebuild OUTPUT from its journal (after it was deleted or damaged), or merge shards' outputs into it."""
    from .status import export as rebuild

    with _naming(output="OUTPUT", shards="--merge"):
        rebuild(output, list(shards))
    say(f"{output}: {'merged from ' + ', '.join(map(str, shards)) if shards else 'rebuilt from its journal'}")
    return EXIT_OK


@cli.command()
@click.option("--host", default=SERVING.host, show_default=True, help="Loopback address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=SERVING.port, show_default=True, help="Port (0: a free one)."
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=SERVING.latency_ms,
    show_default=True,
    help="Delay before answers.",
)
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), help="Requests per second beyond which 429.")
@click.option(
    "--limit-schedule",
    callback=parse_schedule,
    help="A rate limit that changes: RATE,RATE@SECOND,... e.g. 20,5@20,40@40 (seconds from the first request).",
)
@click.option("--in-flight-limit", type=click.IntRange(min=1), help="429 when more than N are being processed.")
@click.option("--quota", type=click.IntRange(min=0), help="After N accepted, 429 'quota exceeded', Retry-After 3600.")
@click.option(
    "--fixed-window",
    callback=parse_pair("/", "100/10"),
    help="N requests per S seconds, e.g. 100/10; beyond, 429 with Retry-After to the reset and X-RateLimit-*.",
)
@click.option(
    "--generation-cap", type=click.IntRange(min=1), help="429 (no Retry-After) while N generations still run."
)
@click.option("--generation-hold", type=click.FloatRange(min=0), help="Seconds a generation runs on after its answer.")
@click.option(
    "--outage", callback=parse_pair("-", "30-60"), help="Down from second T1 to T2 after the first request: T1-T2."
)
@click.option("--outage-refuse", is_flag=True, help="During the outage refuse connections instead of answering 503.")
@click.option(
    "--latency-jitter", type=click.Choice(["uniform", "lognormal"]), help="Jitter around --latency-ms, same mean."
)
@fault_options
@click.option(
    "--retry-after",
    type=click.FloatRange(min=0),
    default=NO_FAULTS.retry_after,
    show_default=True,
    help="Retry-After of a 429.",
)
@click.option("--script", default="", help="Faults of the first requests, in order, comma-separated.")
@click.option("--seed", type=int, help="Seed for the fault dice.")
@click.option(
    "--log", "log_path", type=click.Path(path_type=Path), help="Append accepted requests to this JSON-lines file."
)
def simulate(
    host: str,
    port: int,
    latency_ms: float,
    rate_limit: float | None,
    limit_schedule: list[tuple[float, float]],
    in_flight_limit: int | None,
    quota: int | None,
    fixed_window: tuple[float, float] | None,
    generation_cap: int | None,
    generation_hold: float | None,
    outage: tuple[float, float] | None,
    outage_refuse: bool,
    latency_jitter: str | None,
    log_path: Path | None,
    script: str,
    **rates: Any,
) -> int:
    """Serve the provider's endpoint locally, with latency, limits and faults, until Ctrl-C.

    With $BATCHGEN_API_KEY set, only that bearer key is accepted; otherwise any.
    """
    from .faults import Faults
    from .simulator import Downtime, FixedWindow, Generations, ProviderLimits, Simulator, origin, serve

    seed = rates.pop("seed")
    faults = Faults(**rates, script=[name.strip() for name in script.split(",") if name.strip()], seed=seed)
    limits = ProviderLimits(rate_limit, limit_schedule, in_flight_limit, quota)
    if fixed_window:
        limits.window = FixedWindow(int(fixed_window[0]), fixed_window[1])
    if generation_cap:
        hold = {} if generation_hold is None else {"hold": generation_hold}
        limits.generations = Generations(generation_cap, **hold)
    if outage:
        limits.outage = Downtime(*outage, refuse=outage_refuse)
    simulator = Simulator(
        os.environ.get(KEY_ENV) or None, latency_ms, faults, log_path=log_path, limits=limits, jitter=latency_jitter
    )

    async def main() -> None:
        runner, bound = await serve(simulator, host, port)
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        with on_signals(stop_signals(), lambda _signum: loop.call_soon_threadsafe(stop.set)):
            say(f"simulator listening on {origin(host, bound)}/riffusion/generate (Ctrl-C to stop)")
            try:
                await stop.wait()
            finally:
                await runner.cleanup()

    try:
        asyncio.run(main())
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc})", setting="port") from None
    finally:
        simulator.close()
    say(f"simulator stopped: {len(simulator.accepted)} requests accepted")
    return EXIT_OK


@contextlib.contextmanager
def _naming(**names: str) -> Iterator[None]:
    """A command whose settings have other names (an argument, not ``-o``) says them in its errors."""
    try:
        yield
    except UsageError as exc:
        if exc.setting not in names:
            raise
        raise click.ClickException(f"{names[exc.setting]}: {exc.detail}") from None


def _message(error: BatchgenError) -> str:
    """The error's line; a setting at fault is named by its flag."""
    if isinstance(error, UsageError) and error.setting:
        return error.detail if error.setting in UNFLAGGED else f"{flag(error.setting)}: {error.detail}"
    return error.message


def _explain(error: BatchgenError) -> int:
    """Print what the user needs from an error (the ids the journal lost, the summary) and its exit code."""
    if isinstance(error, JournalError):
        for item in error.unsaved:
            say(f"job ids not stored: row {item.row}  {item.title!r}  {', '.join(item.job_ids)}")
    if error.result is not None:
        _summary(error.result, error)
    echo_error(_message(error))
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), EXIT_USAGE)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error ends as one ``error: ...`` line and the contract's exit code."""
    logger = logging.getLogger("batchgen")
    handler = _Warnings(logging.WARNING)
    logger.addHandler(handler)
    try:
        code = cli.main(args=argv, prog_name="batchgen", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:
        echo_error(exc.format_message())
        code = EXIT_USAGE
    except BatchgenError as exc:
        code = _explain(exc)
    except KeyboardInterrupt:
        echo_error("interrupted")
        code = EXIT_INTERRUPTED
    finally:
        logger.removeHandler(handler)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
