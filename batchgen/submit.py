"""Send journal rows to the provider: bounded concurrency, a pace, retries by outcome class.

HTTP goes through aiohttp's client: at 64 connections httpx's async pool cost 3-9 ms of CPU per request here
(encode/httpx#3215) and became the speed limit of a batch; aiohttp costs about 0.25 ms. Its trace hooks also
tell exactly whether a request body left this machine, which decides between "retry" and "unknown".

Each attempt is classed by what the provider may have done with it (see the contract's outcome table):
retried only when the request was refused or never reached the provider, ``unknown`` when it may have been
processed, ``failed`` when it was rejected, and the whole run stops on an answer that no retry can fix.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tqdm import tqdm

from .errors import JournalError, UsageError
from .journal import Journal, Record, now
from .outcome import (
    Answer,
    Fatal,
    Outcome,
    Rejected,
    Retryable,
    classify,
    classify_error,
)
from .throttle import Throttle

ENDPOINT = "/riffusion/generate"
USER_AGENT = "batchgen/0.1"


@dataclass(frozen=True, slots=True)
class Settings:
    """How to reach the provider and how hard to push it."""

    base_url: str
    api_key: str
    concurrency: int = 8
    rate: tuple[float, float] | None = None
    max_attempts: int = 5
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_requests: int | None = None
    stop_after: float | None = None
    grace: float = 15.0
    progress: bool = True
    log_file: Path | None = None
    allow_insecure: bool = False


@dataclass(slots=True)
class Report:
    """What a submission did: requests sent, rows per outcome, and why it stopped early, if it did."""

    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    stopped: str | None = None
    fatal: str | None = None
    unreachable: str | None = None
    journal_error: str | None = None
    interrupted: bool = False


def check_base_url(url: str, allow_insecure: bool = False) -> None:
    """An http(s) URL; plain http only to this machine (or with ``allow_insecure``): the key is in every request."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url: {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname):
        raise UsageError(f"--base-url: {url} is not HTTPS; the API key would travel in clear text (--allow-insecure to insist)")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class AttemptLog:
    """``--log-file``: one JSON line per attempt. Never the key, never the lyrics: only what explains a run."""

    def __init__(self, path: Path) -> None:
        try:
            self._file = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--log-file: cannot open {path} ({exc.strerror or exc})") from None

    def write(self, record: Record, attempt: int, started: float, outcome: str, status: int | None, message: str | None) -> None:
        entry = {
            "at": now(), "row": record.row, "row_key": record.key, "attempt": attempt, "status": status,
            "latency_ms": round((time.monotonic() - started) * 1000, 1), "outcome": outcome, "message": message,
        }
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _Sending:
    """Per-request state the trace hook fills in: has the body left this machine?"""

    body_sent = False


async def _body_left(session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestChunkSentParams) -> None:
    if isinstance(context.trace_request_ctx, _Sending):
        context.trace_request_ctx.body_sent = True


class _Stopped(Exception):
    """Raised inside the retry loop when the run stops dispatching."""


class Submitter:
    """Sends the rows it is given, writing every state change to the journal before going on."""

    def __init__(self, journal: Journal, settings: Settings) -> None:
        check_base_url(settings.base_url, settings.allow_insecure)
        self.journal = journal
        self.settings = settings
        self.report = Report()
        self.url = settings.base_url.rstrip("/") + ENDPOINT
        self.host = urlsplit(settings.base_url).hostname or settings.base_url
        self.throttle = Throttle(settings.rate[0] / settings.rate[1] if settings.rate else None)
        self._stop = asyncio.Event()
        self._answered = False
        self._in_flight: set[asyncio.Task] = set()
        self._bar: tqdm | None = None
        self._log: AttemptLog | None = None

    def redact(self, text: str) -> str:
        """Messages come from the server and from exceptions: never let the key through."""
        return text.replace(self.settings.api_key, "***") if self.settings.api_key else text

    def stop(self, reason: str) -> None:
        """Stop dispatching: rows not yet sent stay as they are; requests in flight may finish."""
        if not self._stop.is_set():
            self.report.stopped = reason
            self._stop.set()

    def interrupt(self) -> None:
        """First Ctrl-C: stop dispatching, give requests in flight ``grace`` seconds. Second: cancel them now."""
        if self.report.interrupted:
            self._cancel_in_flight()
            return
        self.report.interrupted = True
        self.stop("interrupted")
        asyncio.get_running_loop().call_later(self.settings.grace, self._cancel_in_flight)

    def _cancel_in_flight(self) -> None:
        for task in self._in_flight:
            task.cancel()

    async def run(self, records: list[Record]) -> Report:
        settings = self.settings
        connector = aiohttp.TCPConnector(limit=settings.concurrency, limit_per_host=settings.concurrency)
        timeout = aiohttp.ClientTimeout(total=settings.timeout, sock_connect=settings.connect_timeout)
        headers = {"Authorization": f"Bearer {settings.api_key}", "User-Agent": USER_AGENT, "Content-Type": "application/json"}
        tracing = aiohttp.TraceConfig()
        tracing.on_request_chunk_sent.append(_body_left)
        queue: asyncio.Queue[Record] = asyncio.Queue()
        for record in records:
            queue.put_nowait(record)
        self._log = AttemptLog(settings.log_file) if settings.log_file else None
        self._bar = tqdm(total=len(records), unit="row", file=sys.stderr, disable=not settings.progress or None, dynamic_ncols=True)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(settings.stop_after, self.stop, "the time limit was reached") if settings.stop_after is not None else None
        try:
            async with aiohttp.ClientSession(
                connector=connector, timeout=timeout, headers=headers, trace_configs=[tracing], auto_decompress=True
            ) as client:
                workers = [asyncio.create_task(self._worker(client, queue)) for _ in range(min(settings.concurrency, len(records)) or 1)]
                await asyncio.gather(*workers)
        finally:
            if timer:
                timer.cancel()
            self._bar.close()
            if self._log:
                self._log.close()
        return self.report

    async def _worker(self, client: aiohttp.ClientSession, queue: asyncio.Queue[Record]) -> None:
        while not self._stop.is_set():
            try:
                record = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                outcome = await self._submit(client, record)
            except asyncio.CancelledError:
                return  # interrupted in flight: _send journaled the row
            except JournalError as exc:
                self.report.journal_error = str(exc)
                self.stop(str(exc))
                return
            if outcome:
                self._progress(outcome)

    async def _submit(self, client: aiohttp.ClientSession, record: Record) -> str | None:
        """One row through its attempts; returns the state it ended in, or None if the run stopped first."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._gate()
                    return await self._attempt(client, record, attempt.retry_state.attempt_number)
        except _Stopped:
            return None
        except Retryable as exc:
            return self._exhausted(record, exc)
        return None

    async def _attempt(self, client: aiohttp.ClientSession, record: Record, number: int) -> str:
        """Send once and journal the outcome; retryable outcomes are raised for tenacity."""
        started = time.monotonic()
        try:
            ids, status = await self._send(client, record)
        except Outcome as outcome:
            outcome.message = self.redact(outcome.message)
            if self._log:
                self._log.write(record, number, started, type(outcome).__name__.lower(), outcome.status, outcome.message)
            return self._settle(record, outcome)
        if self._log:
            self._log.write(record, number, started, "done", status, None)
        try:
            self.journal.mark_done(record.key, ids, status)
        except JournalError as exc:  # the ids exist and are billed: the user must see them
            raise JournalError(f"{exc}; job ids of row {record.row} not stored: {', '.join(ids)}") from None
        return "done"

    async def _send(self, client: aiohttp.ClientSession, record: Record) -> tuple[list[str], int]:
        """One request: ``in_flight`` is committed before it leaves; any failure comes back as an :class:`Outcome`."""
        progress = _Sending()
        self.journal.mark_in_flight(record.key)
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            async with client.post(
                self.url, data=record.body, headers={"Idempotency-Key": record.key}, allow_redirects=False,
                trace_request_ctx=progress,
            ) as response:
                answer = Answer(response.status, response.reason or "", response.headers.get("Retry-After"), await response.read())
            self._answered = True
            if answer.status != 429:
                self.throttle.answered()
            return classify(answer), answer.status
        except asyncio.CancelledError:
            outcome = classify_error(asyncio.CancelledError("interrupted"), progress.body_sent)
            if isinstance(outcome, Retryable):
                self.journal.mark_pending(record.key, None, outcome.message)
            else:
                self.journal.mark_unknown(record.key, None, outcome.message)
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify_error(exc, progress.body_sent) from None
        finally:
            self._in_flight.discard(task)

    def _settle(self, record: Record, outcome: Outcome) -> str:
        """Journal a non-accepted attempt; re-raise retryable ones so tenacity tries again."""
        if isinstance(outcome, Retryable):
            self.journal.mark_pending(record.key, outcome.status, outcome.message)
            if outcome.status == 429:
                self.throttle.throttled(outcome.retry_after)
            self.report.retries += 1
            self._progress(None)
            raise outcome
        if isinstance(outcome, Fatal):
            self.journal.mark_pending(record.key, outcome.status, outcome.message)
            self.report.fatal = outcome.message
            self.stop(f"the provider refused the run: {outcome.message}")
            return "pending"
        if isinstance(outcome, Rejected):
            self.journal.mark_failed(record.key, outcome.status, outcome.message, retryable=False)
            return "failed"
        self.journal.mark_unknown(record.key, outcome.status, outcome.message)
        return "unknown"

    def _exhausted(self, record: Record, exc: Retryable) -> str:
        """Out of attempts. If nothing in this run was ever answered, the host is unreachable: stop."""
        if not exc.answered and not self._answered:
            self.report.unreachable = f"cannot reach {self.host} ({exc.message})"
            self.stop(self.report.unreachable)
            return "pending"
        self.journal.mark_failed(record.key, exc.status, f"{exc.message} (after {self.settings.max_attempts} attempts)", retryable=True)
        return "failed"

    async def _gate(self) -> None:
        """Before each attempt: honour a stop, the throttle (429 pause and pace) and --max-requests."""
        while True:
            if self._stop.is_set():
                raise _Stopped
            delay = self.throttle.reserve()
            if delay <= 0:
                break
            await self._sleep(delay)
        limit = self.settings.max_requests
        if limit is not None and self.report.requests >= limit:
            self.stop(f"--max-requests {limit} reached")
            raise _Stopped
        self.report.requests += 1

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, but never shorter than the server's Retry-After."""
        backoff = _BACKOFF(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, Outcome) and exc.retry_after is not None else 0.0
        return max(backoff, retry_after)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the run stops."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def _progress(self, finished: str | None) -> None:
        """Count a finished row (or only a retry, for ``None``) and refresh the bar's figures."""
        if finished:
            self.report.outcomes[finished] += 1
        if self._bar is None:
            return
        if finished:
            self._bar.update(1)
        counts = self.report.outcomes
        self._bar.set_postfix(
            done=counts["done"], failed=counts["failed"], unknown=counts["unknown"], retries=self.report.retries, refresh=False
        )


_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=30, jitter=0.5)
