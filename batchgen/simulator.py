"""A local stand-in for the provider: same endpoint, same schema, configurable latency and faults.

It keeps a log of every request it accepted (each one would have been billed), so tests and benchmarks can
check that no row was accepted twice and that every job id it handed out reached the output.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
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
from .faults import NO_FAULTS, REJECTIONS, SERVING, Faults
from .schema import GenerateRequest

ENDPOINT = "/riffusion/generate"
LOG_ENDPOINT = "/_simulator/log"
QUOTA_MESSAGE = "quota exceeded: no credits left"
QUOTA_RETRY_AFTER = 3600.0
JITTERS = (None, "uniform", "lognormal")
SIGMA = 0.5  # of the lognormal latency


@dataclass
class FixedWindow:
    """``count`` requests per ``seconds``, windows counted from the first request, as an API gateway counts:
    beyond, a 429 at once whose ``Retry-After`` is the seconds to the reset (rounded up). Every answer carries
    ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (the reset as epoch seconds,
    rounded up, as GitHub's API sends it)."""

    count: int
    seconds: float
    _index: int = field(default=-1, init=False, repr=False)
    _used: int = field(default=0, init=False, repr=False)

    def admit(self, elapsed: float, now: float) -> tuple[bool, dict[str, str]]:
        """Whether a request ``elapsed`` seconds after the first one fits its window, and the headers to send."""
        index = math.floor(elapsed / self.seconds)
        if index != self._index:
            self._index, self._used = index, 0
        to_reset = (index + 1) * self.seconds - elapsed
        admitted = self._used < self.count
        self._used += admitted
        headers = {
            "X-RateLimit-Limit": str(self.count),
            "X-RateLimit-Remaining": str(self.count - self._used),
            "X-RateLimit-Reset": str(math.ceil(now + to_reset)),
        }
        if not admitted:
            headers["Retry-After"] = str(max(1, math.ceil(to_reset)))
        return admitted, headers


@dataclass
class Generations:
    """A cap on generations still running: each accepted request holds a slot from its arrival until ``hold``
    seconds after its answer (the job runs on after the id is handed out). Full: a 429 at once, with no
    Retry-After (the provider cannot know when a job ends)."""

    cap: int
    hold: float = 1.0
    running: int = field(default=0, init=False)
    _releases: deque[float] = field(default_factory=deque, init=False, repr=False)

    def take(self, moment: float) -> bool:
        """A slot for a request arriving at ``moment``, if one is free."""
        while self._releases and self._releases[0] <= moment:
            self._releases.popleft()
        if self.running + len(self._releases) >= self.cap:
            return False
        self.running += 1
        return True

    def release(self, moment: float, accepted: bool) -> None:
        """The request was answered: an accepted one keeps its slot ``hold`` seconds more."""
        self.running -= 1
        if accepted:
            self._releases.append(moment + self.hold)


@dataclass
class Downtime:
    """The provider down from ``start`` to ``end`` seconds after the first request: every request answered 503
    at once, or (``refuse``) no one listening, so connections are refused."""

    start: float
    end: float
    refuse: bool = False

    def down(self, elapsed: float) -> bool:
        return self.start <= elapsed < self.end


@dataclass
class Latency:
    """Seconds before an answer: ``mean``, or jittered around it with the same mean (``uniform``: within
    +-50%; ``lognormal``: sigma 0.5, a long tail of slow answers as real providers have)."""

    mean: float = 0.0
    jitter: str | None = None
    seed: int | None = None
    _dice: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.jitter not in JITTERS:
            raise UsageError(f"unknown jitter {self.jitter!r}; use one of {', '.join(JITTERS[1:])}", setting="jitter")
        self._dice = random.Random(self.seed)

    def draw(self) -> float:
        if self.jitter == "uniform":
            return self._dice.uniform(0.5 * self.mean, 1.5 * self.mean)
        if self.jitter == "lognormal" and self.mean:
            return self._dice.lognormvariate(math.log(self.mean) - SIGMA**2 / 2, SIGMA)
        return self.mean


@dataclass
class ProviderLimits:
    """The shapes a provider's limit takes (the contract's "Limits have shapes"), any of them at once.

    ``rate``: requests per second, a sliding one-second window of accepted requests. ``schedule``: the rate
    changing during the run, as ``(from second, requests per second)`` counted from the first request.
    ``in_flight``: a 429 (Retry-After 1, at once) whenever more than this many are being processed. ``quota``:
    after this many accepted, every request is answered 429 "quota exceeded" with Retry-After 3600. ``window``,
    ``generations``, ``outage``: see their classes.
    """

    rate: float | None = None
    schedule: list[tuple[float, float]] = field(default_factory=list)
    in_flight: int | None = None
    quota: int | None = None
    window: FixedWindow | None = None
    generations: Generations | None = None
    outage: Downtime | None = None
    first: float | None = None  # when the first request came: the schedule, windows and outage count from it
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
        latency_ms: float = SERVING.latency_ms,
        faults: Faults | None = None,
        rate_limit: float | None = None,
        log_path: Path | None = None,
        limits: ProviderLimits | None = None,
        jitter: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.faults = faults or NO_FAULTS
        self.latency = Latency(latency_ms / 1000, jitter, self.faults.seed)
        self.limits = limits or ProviderLimits()
        if rate_limit is not None:
            self.limits.rate = rate_limit
        self.log_path = log_path
        self.accepted: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.peers: set[tuple[str, int]] = set()  # client connections seen (keep-alive reuses them)
        self._script = deque(self.faults.script)
        self._random = random.Random(self.faults.seed)
        self.processing = 0  # requests being processed now (the in-flight cap counts them)
        self.tasks: set[asyncio.Task[None]] = set()  # what serve() runs beside the handlers
        self._log_file = log_path.open("a", encoding="utf-8") if log_path else None
        self.app = web.Application()
        self.rejected_paths = 0  # requests to any other path (a wrong base URL): answered 404
        self.app.router.add_post(ENDPOINT, self.generate)
        self.app.router.add_get(LOG_ENDPOINT, self.log)
        self.app.router.add_route("*", "/{path:.*}", self.elsewhere)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """Log the request as received, with when it was answered and how (``done``, ``status``)."""
        self.processing += 1
        self.limits.first = time.monotonic() if self.limits.first is None else self.limits.first
        entry: dict[str, Any] = {"at": time.time(), "idempotency_key": request.headers.get("Idempotency-Key")}
        self.received.append(entry)
        try:
            response = await self._generate(request, entry)
            response.headers.update(entry.pop("headers", {}))
            entry["status"] = response.status
            return response
        finally:
            entry["done"] = time.time()
            self.processing -= 1
            if entry.pop("slot", False):
                assert self.limits.generations is not None
                self.limits.generations.release(time.monotonic(), entry.get("accepted", False))

    async def _generate(self, request: web.Request, entry: dict[str, Any]) -> web.StreamResponse:
        fault = entry["fault"] = self._pick_fault()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.add((str(peer[0]), int(peer[1])))
        try:
            data = await request.read()
        except ConnectionResetError:  # the client went away before its body arrived: nothing to process
            return web.Response(status=499)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        authorized = bool(token) and (self.api_key is None or token == self.api_key) and fault != "401"
        refusal = self._refuse_at_once(entry) if authorized else None
        if refusal is not None:  # answered at once, as a provider's gateway does
            entry["fault"] = refusal[0]
            return refusal[1]
        latency = self.latency.draw()
        if latency:
            await asyncio.sleep(latency)
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
        entry["accepted"] = True
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

    def _refuse_at_once(self, entry: dict[str, Any]) -> tuple[str, web.Response] | None:
        """An outage, the quota, the in-flight cap, the fixed window, the generation cap: (fault logged,
        answer), or None to go on (the window's headers and the generation slot noted in ``entry``)."""
        limits = self.limits
        moment = time.monotonic()
        elapsed = moment - (limits.first or moment)
        if limits.outage is not None and limits.outage.down(elapsed):
            return "outage", _error(503, "Service unavailable")
        if limits.quota is not None and len(self.accepted) >= limits.quota:
            return "quota", _error(429, QUOTA_MESSAGE, {"Retry-After": f"{QUOTA_RETRY_AFTER:g}"})
        if limits.in_flight is not None and self.processing > limits.in_flight:
            return "429", _error(429, "Too many requests in flight", {"Retry-After": "1"})
        if limits.window is not None:
            admitted, entry["headers"] = limits.window.admit(elapsed, time.time())
            if not admitted:
                return "429", _error(429, "Rate limit exceeded", entry.pop("headers"))
        if limits.generations is not None:
            if not limits.generations.take(moment):
                return "429", _error(429, "Too many generations running")
            entry["slot"] = True
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
    bound = int(runner.addresses[0][1])
    outage = simulator.limits.outage
    if outage is not None and outage.refuse:
        simulator.tasks.add(asyncio.create_task(_refuse_connections(simulator, runner, site, host, bound)))
    return runner, bound


async def _refuse_connections(
    simulator: Simulator, runner: web.AppRunner, site: web.TCPSite, host: str, port: int
) -> None:
    """The outage that refuses connections: stop listening at its start and close the open connections (each
    once its request is answered, as a provider going down for maintenance does), listen again at its end."""
    outage = simulator.limits.outage
    assert outage is not None
    while simulator.limits.first is None:
        await asyncio.sleep(0.01)
    await asyncio.sleep(max(0.0, simulator.limits.first + outage.start - time.monotonic()))
    await site.stop()
    handlers = runner.server.connections if runner.server else []
    closing = asyncio.gather(*(handler.shutdown(outage.end - outage.start) for handler in handlers))
    await asyncio.sleep(max(0.0, simulator.limits.first + outage.end - time.monotonic()))
    await closing
    await web.TCPSite(runner, host, port, reuse_address=True).start()


def origin(host: str, port: int) -> str:
    """The simulator's base URL: an IPv6 address in brackets (``http://[::1]:8787``), as a URL must have it."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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
        return origin(self.host, self.port)

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
