"""How to reach the provider and how hard to push it, checked before anything is journaled or sent.

A base URL that does not parse, or a key with a space or a line break inside, is refused here with a
:class:`UsageError` naming the setting, instead of failing later inside a request (where the journal would
already say ``in_flight``). The key is held as a pydantic ``SecretStr``: no repr or message shows it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from .environment import KEY_ENV, URL_ENV
from .errors import UsageError
from .progress import Progress
from .transport import TRANSPORTS, TransportName

ENDPOINT = "/riffusion/generate"
USER_AGENT = "batchgen/0.2"
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*")
DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK = "localhost"  # what every name of this machine's loopback interface is, for the ledger
# The fingerprint's own key: a fingerprint names an account only to batchgen, and is of no use elsewhere.
ACCOUNT_KEY = b"batchgen ledger account fingerprint v1"
ACCOUNT_HEX = 32  # 128 bits: no two keys of one team meet by chance


# The ranges the library and the command line accept, checked in one place: whole numbers, then seconds.
WHOLE: dict[str, tuple[int, int | None]] = {
    "concurrency": (1, 1024),
    "max_attempts": (1, 100),
    "max_requests": (1, None),
}
SECONDS: dict[str, tuple[float, float]] = {
    "timeout": (0.1, 3600.0),  # below a tenth of a second no answer can come; above an hour is a typo
    "connect_timeout": (0.1, 3600.0),
    "stop_after": (0.0, 7 * 86_400.0),
    "grace": (0.0, 3600.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    """Each default of a run, written once (as httpx's ``_config.py`` does): :class:`Provider`, :class:`Limits`,
    :func:`batchgen.arun`'s keywords and the command line's flags all read :data:`DEFAULTS`, so they cannot
    disagree."""

    transport: TransportName = "httpx"
    timeout: float = 120.0
    connect_timeout: float = 10.0
    concurrency: int = 8
    max_attempts: int = 5
    grace: float = 15.0


DEFAULTS = Defaults()


def check_seconds(name: str, value: float | None, optional: bool = True) -> None:
    """``value`` seconds (or None, when ``optional``) within the range :data:`SECONDS` gives ``name``."""
    if value is None and optional:
        return
    low, high = SECONDS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UsageError(f"{value!r} is not a number of seconds from {low:g} to {high:g}", setting=name)


def _whole(value: object, *also: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or any(value is other for other in also)


# What each part of a keyword's annotation accepts, and how a message names it: a part not here (a source, a
# transport, a rate) is checked where it is read.
KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "bool": (lambda value: type(value) is bool, "True or False"),
    "int": (_whole, "a whole number"),
    "float": (lambda value: isinstance(value, (int, float)) and not isinstance(value, bool), "a number"),
    "str": (lambda value: isinstance(value, str), "a string"),
    "None": (lambda value: value is None, "None"),
    "os.PathLike[str]": (lambda value: isinstance(value, os.PathLike), "a path"),
    "Callable[[Progress], None]": (callable, "a function"),
    "asyncio.Event": (lambda value: isinstance(value, asyncio.Event), "an asyncio.Event"),
    "tuple[int, int | None]": (
        lambda value: isinstance(value, tuple) and len(value) == 2 and _whole(value[0]) and _whole(value[1], None),
        "a (first, last) pair of row numbers",
    ),
}


def check_keywords(function: Callable[..., object], given: Mapping[str, object]) -> None:
    """Each keyword of the library's door of the kind ``function``'s signature gives it, before anything is read
    or sent: Python would take ``allow_resend="no"`` as yes, and bill again what the user meant to keep."""
    for name, parameter in inspect.signature(function).parameters.items():
        parts = _parts(str(parameter.annotation))
        if name not in given or name in WHOLE or name in SECONDS or not all(part in KINDS for part in parts):
            continue  # (a number of requests or seconds is checked with its range)
        value = given[name]
        if not any(KINDS[part][0](value) for part in parts):
            kinds = " or ".join(KINDS[part][1] for part in parts)
            raise UsageError(f"{_shown(value)} is not {kinds}", setting=name)


def _parts(annotation: str) -> list[str]:
    """``"str | os.PathLike[str] | None"`` as its parts, a ``|`` within brackets kept in its part."""
    parts, depth, part = [], 0, ""
    for char in annotation:
        depth += (char == "[") - (char == "]")
        if char == "|" and depth == 0:
            parts.append(part.strip())
            part = ""
        else:
            part += char
    return [*parts, part.strip()]


def _shown(value: object) -> str:
    """A wrong value as a message shows it: short, and never a key (a string may be one, given in the wrong place)."""
    if isinstance(value, str) and len(value) > 12:
        return f"a string of {len(value)} characters"
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


def _between(low: int, high: int | None) -> str:
    return f"from {low} to {high}" if high is not None else f"of at least {low}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """How to reach the provider: its base URL, the key (a ``SecretStr``: no repr shows it), the HTTP client,
    and how long a request may take."""

    base_url: str
    api_key: SecretStr
    transport: TransportName = DEFAULTS.transport
    timeout: float = DEFAULTS.timeout
    connect_timeout: float = DEFAULTS.connect_timeout

    def __post_init__(self) -> None:
        check_seconds("timeout", self.timeout, optional=False)
        check_seconds("connect_timeout", self.connect_timeout, optional=False)

    @property
    def url(self) -> str:
        return self.base_url + ENDPOINT

    @property
    def host(self) -> str:
        """The provider's origin (``https://api.example.com:8443``), as messages show it."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc.lower()}"

    @property
    def ledger_host(self) -> str:
        """The provider's host as the ledger knows it: one spelling for every spelling (:func:`provider_host`)."""
        return provider_host(self.base_url)

    @property
    def account(self) -> str:
        """The account the key bills, as the ledger knows it: a keyed fingerprint (:func:`account_of`)."""
        return account_of(self.api_key)

    def headers(self, key: str) -> dict[str, str]:
        """The headers of the request for the row with ``key``."""
        return {
            "Authorization": f"Bearer {self.api_key.get_secret_value()}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "User-Agent": USER_AGENT,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """How hard a run pushes and when it stops: requests in flight, a rate cap, attempts per row, budgets, and
    the grace a stop gives the requests in flight. Each is checked here, the one place (the command line's
    flags pass through it too)."""

    concurrency: int = DEFAULTS.concurrency
    rate: float | None = None
    max_attempts: int = DEFAULTS.max_attempts
    max_requests: int | None = None
    stop_after: float | None = None
    grace: float = DEFAULTS.grace

    def __post_init__(self) -> None:
        for name, (low, high) in WHOLE.items():
            value = getattr(self, name)
            whole = isinstance(value, int) and not isinstance(value, bool)
            if (value is not None or name != "max_requests") and not (
                whole and low <= value and (high is None or value <= high)
            ):
                raise UsageError(f"{value!r} is not a whole number {_between(low, high)}", setting=name)
        check_seconds("stop_after", self.stop_after)
        check_seconds("grace", self.grace, optional=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the dispatcher needs: the provider, the limits, and what the run reports (a log file of every
    attempt, and ``progress``, called with a :class:`~batchgen.progress.Progress` as rows finish)."""

    provider: Provider
    limits: Limits = Limits()
    log_file: Path | None = None
    progress: Callable[[Progress], None] | None = None


def check_base_url(url: str | None, allow_insecure: bool = False) -> str:
    """An http(s) URL with a valid host and port, without spaces, credentials, query or fragment.

    Plain http only to this machine (or with ``allow_insecure``): the key is in every request.
    """
    if url is None or not url.strip():
        raise UsageError(f"no provider URL: pass `base_url` or set {URL_ENV}", setting="base_url")
    url = url.strip()
    shown = repr(_masked(url)[:120])
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        raise UsageError(f"{shown} has a space or control character in it", setting="base_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{shown} is not a valid URL ({exc})", setting="base_url") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"{shown} is not an http(s) URL", setting="base_url")
    host = parts.hostname or ""
    if not host or not _valid_host(host):
        raise UsageError(f"{shown} has no valid host name", setting="base_url")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{shown} has credentials in it; the key goes in {KEY_ENV}", setting="base_url")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UsageError(f"{shown} has a query or fragment; give the API's base URL only", setting="base_url")
    if port == 0:
        raise UsageError(f"{shown} has no valid port", setting="base_url")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(host):
        raise UsageError(
            f"{url} is not HTTPS; the API key would travel in clear text (`allow_insecure` to insist)",
            setting="base_url",
        )
    return url.rstrip("/")


def _masked(url: str) -> str:
    """``url`` as a message may quote it: credentials and a query, where a key may have been put, masked."""
    url = re.sub(r"^([^/?#]*//)[^/?#]*@", r"\1***@", url)
    return re.sub(r"([?#]).*$", r"\1***", url, flags=re.DOTALL)


def check_api_key(key: str | None) -> SecretStr:
    """The key with surrounding white space stripped; white space or control characters inside are refused."""
    if key is None or not key.strip():
        raise UsageError(f"{KEY_ENV} is not set: export your provider's API key", setting="api_key")
    key = key.strip()
    bad = next((char for char in key if char.isspace() or ord(char) < 32 or ord(char) == 127), None)
    if bad is not None:
        what = "a line break" if bad in "\r\n" else "white space" if bad.isspace() else "a control character"
        raise UsageError(f"the API key has {what} inside it; check {KEY_ENV}", setting="api_key")
    if not key.isascii():
        raise UsageError(
            f"the API key has a character that cannot travel in an HTTP header; check {KEY_ENV}", setting="api_key"
        )
    return SecretStr(key)


def parse_rate(value: float | str | None) -> float | None:
    """Requests per second from a number or ``"10/s"``, ``"300/min"``."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        rate = float(value)
    else:
        match = _RATE.fullmatch(str(value))
        if not match:
            raise UsageError(f"{value!r} is not a rate such as 10/s or 300/min", setting="rate")
        rate = float(match[1]) / (60.0 if (match[2] or "s").startswith("m") else 1.0)
    if not rate > 0 or rate == float("inf"):
        raise UsageError(f"{value!r} is not a positive rate", setting="rate")
    return rate


def check_transport(name: str) -> TransportName:
    for known in TRANSPORTS:
        if name == known:
            return known
    raise UsageError(f"{name!r} is not a transport; use one of {', '.join(TRANSPORTS)}", setting="transport")


def provider_host(url: str) -> str:
    """One spelling of a provider's origin, whatever the user typed: scheme and host in lower case, no default
    port, no trailing dot or slash, and every name of the loopback interface (``localhost``, ``127.x.y.z``,
    ``::1``) as ``localhost``. Two spellings of one host bill one account, so the ledger must see one host.

    A provider known by two different names (a DNS alias, its IP address) stays two hosts: the account
    fingerprint is what matches those.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if _is_loopback(host):
        host = LOOPBACK
    elif ":" in host:
        host = f"[{ipaddress.ip_address(host).compressed}]"
    port = parts.port
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS.get(scheme) else "")


def account_of(key: SecretStr) -> str:
    """A keyed fingerprint of the API key (HMAC-SHA256 under batchgen's own key, 128 bits): one account, one
    fingerprint, so the ledger can tell two spellings of one provider apart from two providers without ever
    holding the key. It cannot be turned back into the key; a key short enough to guess is guessable anyway."""
    digest = hmac.new(ACCOUNT_KEY, key.get_secret_value().encode(), hashlib.sha256).hexdigest()
    return digest[:ACCOUNT_HEX]


def env_key() -> str | None:
    return os.environ.get(KEY_ENV)


def env_url() -> str | None:
    return os.environ.get(URL_ENV)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return all(_LABEL.fullmatch(label) for label in labels)


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower().rstrip(".") == LOOPBACK
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))
