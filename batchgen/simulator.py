"""A local stand-in for the provider: same endpoint, same schema, configurable latency and faults.

It keeps a log of every request it accepted (each one would have been billed), so tests and benchmarks can
check that no row was accepted twice and that every job id it handed out reached the output.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from .errors import UsageError
from .schema import GenerateRequest

ENDPOINT = "/riffusion/generate"
LOG_ENDPOINT = "/_simulator/log"
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


QUOTA_MESSAGE = "quota exceeded: no credits left"
QUOTA_RETRY_AFTER = 3600.0


@dataclass
class Limits:
    """The shapes a provider's limit takes (the contract's "Limits have shapes"), any of them at once.

    ``rate``: requests per second, a sliding one-second window of accepted requests. ``schedule``: the rate
    changing during the run, as ``(from second, requests per second)`` counted from the first request.
    ``in_flight``: a 429 (Retry-After 1, at once) whenever more than this many are being processed. ``quota``:
    after this many accepted, every request is answered 429 "quota exceeded" with Retry-After 3600.
    """

    rate: float | None = None
    schedule: list[tuple[float, float]] = field(default_factory=list)
    in_flight: int | None = None
    quota: int | None = None
    first: float | None = None  # when the first request came: the schedule counts from it
    _window: deque[float] = field(default_factory=deque, init=False, repr=False)

    def rate_at(self, elapsed: float) -> float | None:
        """The per-second limit ``elapsed`` seconds after the first request."""
        current = self.rate
        for start, rate in sorted(self.schedule):
            if elapsed >= start:
                current = rate
        return current

    def over_rate(self, moment: float) -> bool:
        """A sliding one-second window: requests beyond the limit of the moment per second get a 429."""
        limit = self.rate_at(moment - (self.first or moment))
        if not limit:
            return False
        while self._window and moment - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= limit:
            return True
        self._window.append(moment)
        return False


@dataclass
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


def check_loopback(host: str) -> None:
    """The simulator never listens beyond this machine."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"{host} is not a loopback address; the simulator listens on loopback only", setting="host")


class Simulator:
    """The provider's endpoint as an aiohttp application, with its accepted-request log."""

    def __init__(
        self,
        api_key: str | None = None,
        latency_ms: float = 0.0,
        faults: Faults | None = None,
        rate_limit: float | None = None,
        log_path: Path | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency = latency_ms / 1000
        self.faults = faults or Faults()
        self.limits = limits or Limits()
        if rate_limit is not None:
            self.limits.rate = rate_limit
        self.log_path = log_path
        self.accepted: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.peers: set[tuple[str, int]] = set()  # client connections seen (keep-alive reuses them)
        self._script = deque(self.faults.script)
        self._random = random.Random(self.faults.seed)
        self.processing = 0  # requests being processed now (the in-flight cap counts them)
        self._log_file = log_path.open("a", encoding="utf-8") if log_path else None
        self.app = web.Application()
        self.rejected_paths = 0  # requests to any other path (a wrong base URL): answered 404
        self.app.router.add_post(ENDPOINT, self.generate)
        self.app.router.add_get(LOG_ENDPOINT, self.log)
        self.app.router.add_route("*", "/{path:.*}", self.elsewhere)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        self.processing += 1
        self.limits.first = time.monotonic() if self.limits.first is None else self.limits.first
        try:
            return await self._generate(request)
        finally:
            self.processing -= 1

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        fault = self._pick_fault()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.add((str(peer[0]), int(peer[1])))
        entry = {"at": time.time(), "idempotency_key": request.headers.get("Idempotency-Key"), "fault": fault}
        self.received.append(entry)
        try:
            data = await request.read()
        except ConnectionResetError:  # the client went away before its body arrived: nothing to process
            return web.Response(status=499)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        authorized = bool(token) and (self.api_key is None or token == self.api_key) and fault != "401"
        refusal = self._refuse_at_once() if authorized else None
        if refusal is not None:  # answered at once, as a provider's gateway does
            entry["fault"] = refusal[0]
            return refusal[1]
        if self.latency:
            await asyncio.sleep(self.latency)
        if not authorized:
            return _error(401, "Invalid API key")
        if fault in ("402", "403"):
            return _error(int(fault), "Payment required" if fault == "402" else "Forbidden")
        if self.limits.over_rate(time.monotonic()):
            fault = entry["fault"] = "429"
        if fault == "429":
            return _error(429, "Too many requests", {"Retry-After": f"{self.faults.retry_after:g}"})
        if fault == "307":  # a client that follows this would hand its key to another place
            return web.Response(status=307, headers={"Location": "http://127.0.0.1:9/steal"})
        if fault in ("500", "502", "503", "504"):
            return _error(int(fault), "Upstream error, try again")
        if fault == "drop":
            return _drop(request)
        if fault == "hang":  # then processed all the same, as a slow provider would
            await asyncio.sleep(self.faults.hang_seconds)
        try:
            raw = json.loads(data)
            GenerateRequest.model_validate(raw, strict=True)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "Body is not valid JSON")
        except ValidationError as exc:
            first = exc.errors()[0]
            return _error(400, f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}")
        if fault in REJECTIONS:
            return _error(int(fault), REJECTIONS[fault])
        ids = [str(uuid.uuid4()), str(uuid.uuid4())]
        self._accept(request.headers.get("Idempotency-Key"), raw, ids)
        if fault == "accept_drop":
            return _drop(request)
        if fault == "malformed":
            return web.Response(status=200, text="<html>502 Bad Gateway</html>", content_type="text/html")
        return web.json_response({"jobs": [{"id": job_id} for job_id in ids]})

    async def elsewhere(self, request: web.Request) -> web.Response:
        """Any other path: what a provider answers to a wrong base URL."""
        self.rejected_paths += 1
        await request.read()
        return _error(404, f"Not found: {request.path}")

    async def log(self, request: web.Request) -> web.Response:
        """The accepted requests, for tests and benchmarks that run the simulator in another process."""
        return web.json_response({"accepted": self.accepted, "received": self.received})

    def _pick_fault(self) -> str:
        if self._script:
            return self._script.popleft()
        roll = self._random.random()
        f = self.faults
        for name, rate in (
            ("429", f.rate_429),
            ("503", f.rate_5xx),
            ("500", f.rate_500),
            ("drop", f.rate_drop),
            ("accept_drop", f.rate_accept_drop),
            ("hang", f.rate_hang),
            ("malformed", f.rate_malformed),
        ):
            if roll < rate:
                return name
            roll -= rate
        return "ok"

    def _refuse_at_once(self) -> tuple[str, web.Response] | None:
        """The quota, then the in-flight cap: (fault logged, answer), or None to go on."""
        limits = self.limits
        if limits.quota is not None and len(self.accepted) >= limits.quota:
            return "quota", _error(429, QUOTA_MESSAGE, {"Retry-After": f"{QUOTA_RETRY_AFTER:g}"})
        if limits.in_flight is not None and self.processing > limits.in_flight:
            return "429", _error(429, "Too many requests in flight", {"Retry-After": "1"})
        return None

    def _accept(self, key: str | None, payload: dict[str, Any], ids: list[str]) -> None:
        entry = {"idempotency_key": key, "body": payload, "job_ids": ids, "at": time.time()}
        self.accepted.append(entry)
        if self._log_file:
            self._log_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._log_file.flush()

    def close(self) -> None:
        if self._log_file:
            self._log_file.close()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status, headers=headers)


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer, as a crashed proxy or a network fault would."""
    assert request.transport is not None
    request.transport.abort()
    raise asyncio.CancelledError


async def serve(simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start listening; return the runner (to clean up) and the port actually bound."""
    check_loopback(host)
    runner = web.AppRunner(simulator.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    address = runner.addresses[0]
    return runner, int(address[1])


class BackgroundSimulator:
    """A simulator on a free loopback port in its own thread: ``with BackgroundSimulator(sim) as s: s.url``."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batchgen-simulator", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundSimulator:
        self._thread.start()
        self._ready.wait()
        if self._error:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self.simulator.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        pending = asyncio.all_tasks(self._loop)  # hanging handlers: end them so the loop closes cleanly
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            runner, self.port = await serve(self.simulator, self.host, self.port)
        except BaseException as exc:  # reported to the starting thread, which raises it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
