"""The ``batchgen`` command: a thin layer of flags and messages over :mod:`batchgen.pipeline`."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from . import pipeline
from .annotate import write_report
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    BatchgenError,
    InvalidInputError,
)
from .schema import DEFAULT_MODEL
from .simulator import FAULTS, Faults, Simulator, serve
from .submit import Settings, check_base_url
from .template import write_template
from .validate import CellError, Problem, parse_model

KEY_ENV = "BATCHGEN_API_KEY"
URL_ENV = "BATCHGEN_BASE_URL"
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


CONSOLE_LIMIT = 50


def echo_error(message: str) -> None:
    click.echo(f"error: {message}", err=True)


def echo_problems(problems: list[Problem], err: bool) -> None:
    """Every problem of a small file; for a large one the first 50 and a count of the rest per column."""
    for problem in problems[:CONSOLE_LIMIT]:
        click.echo(str(problem), err=err)
    rest = Counter(problem.field for problem in problems[CONSOLE_LIMIT:])
    if rest:
        counts = ", ".join(f"{name} {count}" for name, count in rest.most_common())
        click.echo(f"... and {sum(rest.values())} more problems ({counts}); "
                   "`batchgen validate --report errors.xlsx` lists them all", err=err)


def echo_duplicates(pairs: list[tuple[int, int]], dedupe: bool) -> None:
    """Identical requests cost twice: name both rows of each pair, and say what happens to them."""
    fate = "only the first is sent (--dedupe)" if dedupe else "each is sent (use --dedupe to send one)"
    for first, later in pairs[:CONSOLE_LIMIT]:
        click.echo(f"warning: rows {first} and {later} are identical requests; {fate}", err=True)
    if len(pairs) > CONSOLE_LIMIT:
        click.echo(f"warning: ... and {len(pairs) - CONSOLE_LIMIT} more identical pairs", err=True)


def parse_rate(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    """``20/s`` or ``600/min`` -> (count, period in seconds)."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|min|m)\s*", value)
    if not match or float(match[1]) <= 0:
        raise click.BadParameter(f"{value!r} is not a rate such as 10/s or 300/min")
    return float(match[1]), 1.0 if match[2] in ("s", "sec") else 60.0


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


def parse_rows(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int | None] | None:
    """``2-5000`` or ``5001-``: the Excel row numbers of one shard."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d*)\s*", value)
    if not match or (match[2] and int(match[2]) < int(match[1])):
        raise click.BadParameter(f"{value!r} is not a row range such as 2-5000 or 5001-")
    return int(match[1]), int(match[2]) if match[2] else None


def parse_model_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return parse_model(value)
    except CellError as exc:
        raise click.BadParameter(str(exc)) from None


def source_options(command: Any) -> Any:
    """The flags that say how to read the input, shared by ``validate`` and ``run``."""
    for option in reversed(
        [
            click.argument("input", type=click.Path(path_type=Path)),
            click.option("--sheet", help="Sheet to read (default: the first visible sheet)."),
            click.option("--header-row", type=click.IntRange(min=1), help="Row number of the header (default: found)."),
            click.option("--encoding", help="Encoding of a CSV file that is not UTF-8, e.g. cp1252."),
            click.option("--model", default=DEFAULT_MODEL, show_default=True, callback=parse_model_option,
                         help="Model for rows that leave it blank."),
            click.option("--rows", callback=parse_rows, help="Only these rows (Excel numbers), e.g. 2-5000: one shard."),
        ]
    ):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batchgen")
def cli() -> None:
    """Turn a spreadsheet of songs into music-generation jobs, one request per row."""


@cli.command()
@source_options
@click.option("--report", type=click.Path(path_type=Path),
              help="Write a copy of INPUT (.xlsx) with each invalid cell highlighted and commented, and an errors sheet.")
def validate(input: Path, sheet: str | None, header_row: int | None, encoding: str | None, model: str,
             rows: tuple[int, int | None] | None, report: Path | None) -> int:
    """Check every cell of INPUT and list all problems; sends nothing."""
    table, validation = pipeline.validate_file(pipeline.Source(input, sheet, header_row, encoding, model, rows))
    echo_problems(validation.problems, err=False)
    echo_duplicates(validation.duplicates, dedupe=False)
    if report:
        write_report(table, validation, report, encoding)
        click.echo(f"report: {report}", err=True)
    if validation.problems:
        echo_error(f"{input}: {len(validation.problems)} problem(s) in {len(validation.invalid_rows)} of {len(table.rows)} rows")
        return EXIT_USAGE
    click.echo(f"{input}: {len(table.rows)} rows, all valid")
    return EXIT_OK


@cli.command()
@source_options
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output .xlsx or .csv.")
@click.option("--base-url", envvar=URL_ENV, help=f"Provider base URL (or ${URL_ENV}).")
@click.option("--simulate", is_flag=True, help="Send to a built-in simulator instead of the provider.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=8, show_default=True, help="Requests in flight at once.")
@click.option("--rate", callback=parse_rate, help="Hard cap on requests, e.g. 10/s or 300/min.")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=5, show_default=True, help="Attempts per row for retryable errors.")
@click.option("--timeout", type=click.FloatRange(0.1, 3600), default=120.0, show_default=True, help="Seconds for a whole request.")
@click.option("--skip-invalid", is_flag=True, help="Send the valid rows and list the invalid ones as failed.")
@click.option("--retry-unknown", is_flag=True, help="Send again rows whose earlier request got no clear answer.")
@click.option("--max-requests", type=click.IntRange(min=1), help="Stop dispatching after this many requests.")
@click.option("--stop-after", callback=parse_duration, help="Stop dispatching after this long, e.g. 30m or 7h.")
@click.option("--stop-at", callback=parse_clock, help="Stop dispatching at this local time, HH:MM.")
@click.option("--log-file", type=click.Path(path_type=Path), help="Append one JSON line per attempt to this file.")
@click.option("--allow-insecure", is_flag=True, help="Allow a plain-http base URL that is not this machine.")
@click.option("--force", is_flag=True, help="Use the output's journal even if it was made from another input.")
@click.option("--dedupe", is_flag=True, help="Send only the first of identical rows; list the others as duplicates.")
@click.option("--annotate", type=click.Path(path_type=Path),
              help="Also write a copy of INPUT (.xlsx) with job_id_1, job_id_2, status and error on each row.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(
    input: Path, sheet: str | None, header_row: int | None, encoding: str | None, model: str,
    rows: tuple[int, int | None] | None, output: Path,
    base_url: str | None, simulate: bool, concurrency: int, rate: tuple[float, float] | None, max_attempts: int,
    timeout: float, skip_invalid: bool, retry_unknown: bool, max_requests: int | None, stop_after: float | None,
    stop_at: float | None, log_file: Path | None, allow_insecure: bool, force: bool, dedupe: bool,
    annotate: Path | None, quiet: bool,
) -> int:
    """Send one request per row of INPUT and write the job ids to OUTPUT. Run it again to resume."""
    key = os.environ.get(KEY_ENV, "").strip()
    if not simulate:
        if not base_url:
            raise click.UsageError(f"no provider: pass --base-url URL or set {URL_ENV} (or use --simulate)")
        check_base_url(base_url, allow_insecure)
        if not key:
            raise click.UsageError(f"{KEY_ENV} is not set: export your provider's API key")
    settings = Settings(
        base_url=base_url or "", api_key="" if simulate else key, concurrency=concurrency, rate=rate, max_attempts=max_attempts,
        timeout=timeout, max_requests=max_requests, progress=not quiet, log_file=log_file, allow_insecure=allow_insecure,
        stop_after=min((limit for limit in (stop_after, stop_at) if limit is not None), default=None),
    )
    source = pipeline.Source(input, sheet, header_row, encoding, model, rows)
    try:
        result = pipeline.run_batch(
            source, output, settings, simulate=simulate, skip_invalid=skip_invalid, retry_unknown=retry_unknown, force=force,
            dedupe=dedupe, annotate=annotate,
        )
    except InvalidInputError as exc:
        echo_problems(exc.problems, err=True)
        raise BatchgenError(f"{input}: {len(exc.problems)} problem(s); nothing was sent (fix them, or pass --skip-invalid)") from None
    echo_duplicates(result.duplicates, dedupe)
    _summary(result)
    return result.exit_code


def _summary(result: pipeline.RunResult) -> None:
    """The closing lines: what happened, where it is, and what to do next."""
    states, report = result.states, result.report
    parts = [f"{states[state]} {state}" for state in ("done", "failed", "unknown", "pending") if states[state]]
    click.echo(f"{result.rows} rows: {', '.join(parts) or 'nothing to do'}; {report.requests} requests sent ({report.retries} retried)", err=True)
    if result.skipped:
        click.echo(f"{len({p.row for p in result.skipped})} invalid rows skipped (listed as failed)", err=True)
    click.echo(f"output: {result.output} (journal: {result.journal})", err=True)
    if states["unknown"]:
        click.echo(
            f"{states['unknown']} rows are unknown: the provider may have created (and billed) jobs for them. "
            "Check with the provider, then run again with --retry-unknown to send them again.",
            err=True,
        )
    if result.error is None and report.interrupted:
        click.echo("interrupted: run the same command again to resume", err=True)
    elif result.error is None and report.stopped:
        click.echo(f"stopped: {report.stopped}; run the same command again to continue", err=True)
    for error in (result.output_error, result.error):
        if error is not None:
            echo_error(str(error))


@cli.command()
@click.argument("output", type=click.Path(path_type=Path))
def template(output: Path) -> int:
    """Write an empty catalog to fill in: drop-downs, number ranges, help on every column, examples."""
    write_template(output)
    click.echo(f"{output}: template written; fill the Catalog sheet, then: batchgen validate {output}", err=True)
    return EXIT_OK


@cli.command()
@click.argument("output", type=click.Path(path_type=Path))
def status(output: Path) -> int:
    """Show where the batch of OUTPUT stands: rows per state, throughput, and the rows without job ids."""
    with pipeline.open_journal(output) as journal:
        run = journal.latest_run()
        source, started = journal.run_info(run)
        states, invalid, problems = journal.counts(run), journal.invalid(), journal.unfinished(run)
        done, first, last = journal.done_span()
    click.echo(f"{output}: last run of {source} started {started}")
    click.echo("  ".join(f"{state} {states[state]}" for state in ("done", "failed", "unknown", "pending", "in_flight")) + f"  invalid {len(invalid)}")
    if done and first and last:
        seconds = (dt.datetime.fromisoformat(last) - dt.datetime.fromisoformat(first)).total_seconds()
        rate = f"{done / seconds:.1f} rows/s" if seconds > 0 else "all within one second"
        click.echo(f"throughput: {done} rows done between {first} and {last} ({rate})")
    for record in problems:
        click.echo(f"row {record.row}  {record.state}  {record.message or 'not sent yet'}")
    for bad in invalid:
        click.echo(f"row {bad.row}  {bad.state}  {bad.message}")
    return EXIT_OK


@cli.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--merge", "shards", multiple=True, type=click.Path(path_type=Path),
              help="Merge the output of a shard (a run with --rows) into OUTPUT; repeat for each shard.")
def export(output: Path, shards: tuple[Path, ...]) -> int:
    """Rebuild OUTPUT from its journal (after it was deleted or damaged), or merge shards' outputs into it."""
    pipeline.export(output, list(shards))
    click.echo(f"{output}: {'merged from ' + ', '.join(map(str, shards)) if shards else 'rebuilt from its journal'}", err=True)
    return EXIT_OK


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True, help="Port (0: a free one).")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Delay before each answer.")
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), help="Requests per second beyond which to answer 429.")
@click.option("--rate-429", type=click.FloatRange(0, 1), default=0.0, help="Share of requests answered 429.")
@click.option("--rate-5xx", type=click.FloatRange(0, 1), default=0.0, help="Share answered 503.")
@click.option("--rate-drop", type=click.FloatRange(0, 1), default=0.0, help="Share whose connection is dropped unprocessed.")
@click.option("--rate-accept-drop", type=click.FloatRange(0, 1), default=0.0, help="Share processed, then dropped.")
@click.option("--rate-hang", type=click.FloatRange(0, 1), default=0.0, help="Share that hang before answering.")
@click.option("--rate-malformed", type=click.FloatRange(0, 1), default=0.0, help="Share processed, answered with a bad body.")
@click.option("--retry-after", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Retry-After of a 429, seconds.")
@click.option("--script", default="", help=f"Faults of the first requests, in order, comma-separated ({', '.join(FAULTS)}).")
@click.option("--seed", type=int, help="Seed for the fault dice.")
@click.option("--log", "log_path", type=click.Path(path_type=Path), help="Append every accepted request to this JSON-lines file.")
def simulate(host: str, port: int, latency_ms: float, rate_limit: float | None, rate_429: float, rate_5xx: float,
             rate_drop: float, rate_accept_drop: float, rate_hang: float, rate_malformed: float, retry_after: float,
             script: str, seed: int | None, log_path: Path | None) -> int:
    """Serve the provider's endpoint locally, with latency and faults, until Ctrl-C.

    With $BATCHGEN_API_KEY set, only that bearer key is accepted; otherwise any.
    """
    faults = Faults(rate_429, rate_5xx, rate_drop, rate_accept_drop, rate_hang, rate_malformed, retry_after,
                    script=[name.strip() for name in script.split(",") if name.strip()], seed=seed)
    simulator = Simulator(os.environ.get(KEY_ENV) or None, latency_ms, faults, rate_limit, log_path)

    async def main() -> None:
        runner, bound = await serve(simulator, host, port)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        click.echo(f"simulator listening on http://{host}:{bound}/riffusion/generate (Ctrl-C to stop)", err=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except OSError as exc:
        raise BatchgenError(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    finally:
        simulator.close()
    click.echo(f"simulator stopped: {len(simulator.accepted)} requests accepted", err=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point: every user error ends as one ``error: ...`` line and the contract's exit code."""
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
        echo_error(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        echo_error("interrupted")
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
