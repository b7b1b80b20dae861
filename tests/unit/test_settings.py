"""Settings are checked before anything is journaled or sent; the key is never shown."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import batchgen
from batchgen.errors import UsageError
from batchgen.settings import (
    Limits,
    Provider,
    Settings,
    check_api_key,
    check_base_url,
    check_keywords,
    parse_rate,
)


@pytest.mark.parametrize(
    "url, message",
    [
        ("https://exa..mple.com", "base_url: 'https://exa..mple.com' has no valid host name"),
        ("http://[::1", "base_url: 'http://[::1' is not a valid URL (Invalid IPv6 URL)"),
        ("https://api.example .com", "base_url: 'https://api.example .com' has a space or control character in it"),
        ("https://api.example.com\n", None),
        (
            "https://api.example.com:99999",
            "base_url: 'https://api.example.com:99999' is not a valid URL (Port out of range 0-65535)",
        ),
        ("https://api.example.com:0", "base_url: 'https://api.example.com:0' has no valid port"),
        ("https://-api.example.com", "base_url: 'https://-api.example.com' has no valid host name"),
        ("https://", "base_url: 'https://' has no valid host name"),
        ("ftp://api.example.com", "base_url: 'ftp://api.example.com' is not an http(s) URL"),
        ("api.example.com", "base_url: 'api.example.com' is not an http(s) URL"),
        (
            "https://me:secret@api.example.com",
            "base_url: 'https://***@api.example.com' has credentials in it; the key goes in BATCHGEN_API_KEY",
        ),
        (
            "https://api.example.com/?v=2",
            "base_url: 'https://api.example.com/?***' has a query or fragment; give the API's base URL only",
        ),
        (
            "http://api.example.com",
            "base_url: http://api.example.com is not HTTPS; the API key would travel in clear "
            "text (`allow_insecure` to insist)",
        ),
        ("", "base_url: no provider URL: pass `base_url` or set BATCHGEN_BASE_URL"),
    ],
)
def test_bad_base_urls_are_usage_errors(url: str, message: str | None) -> None:
    if message is None:  # surrounding white space is stripped
        assert check_base_url(url) == "https://api.example.com"
        return
    with pytest.raises(UsageError) as refused:
        check_base_url(url)
    assert str(refused.value) == message
    assert refused.value.setting == "base_url"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://api.example.com/", "https://api.example.com"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ("http://localhost:1", "http://localhost:1"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        ("https://bücher.example", "https://bücher.example"),
    ],
)
def test_good_base_urls(url: str, expected: str) -> None:
    assert check_base_url(url) == expected
    assert check_base_url("http://api.example.com", allow_insecure=True) == "http://api.example.com"


@pytest.mark.parametrize(
    "key, message",
    [
        ("sk abc", "api_key: the API key has white space inside it; check BATCHGEN_API_KEY"),
        ("sk-abc\nsk-def", "api_key: the API key has a line break inside it; check BATCHGEN_API_KEY"),
        ("sk\x00abc", "api_key: the API key has a control character inside it; check BATCHGEN_API_KEY"),
        (
            "sk-ключ",
            "api_key: the API key has a character that cannot travel in an HTTP header; check BATCHGEN_API_KEY",
        ),
        ("   ", "api_key: BATCHGEN_API_KEY is not set: export your provider's API key"),
    ],
)
def test_bad_keys_are_usage_errors_that_do_not_show_the_key(key: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_api_key(key)
    assert str(refused.value) == message


def test_a_key_is_stripped_and_never_shown() -> None:
    key = check_api_key("  sk-live-123456789  \n")
    assert key.get_secret_value() == "sk-live-123456789"
    settings = Settings(provider=Provider(base_url="https://api.example.com", api_key=key))
    assert "sk-live" not in repr(settings) and "sk-live" not in str(settings)
    provider = settings.provider
    assert provider.headers("k1")["Authorization"] == "Bearer sk-live-123456789"
    assert provider.host == "https://api.example.com" and provider.url == "https://api.example.com/riffusion/generate"


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"concurrency": 0}, "concurrency: 0 is not a whole number from 1 to 1024"),
        ({"concurrency": 2000}, "concurrency: 2000 is not a whole number from 1 to 1024"),
        ({"concurrency": 2.5}, "concurrency: 2.5 is not a whole number from 1 to 1024"),
        ({"concurrency": None}, "concurrency: None is not a whole number from 1 to 1024"),
        ({"grace": None}, "grace: None is not a number of seconds from 0 to 3600"),
        ({"max_attempts": 0}, "max_attempts: 0 is not a whole number from 1 to 100"),
        ({"max_requests": 0}, "max_requests: 0 is not a whole number of at least 1"),
        ({"stop_after": -1}, "stop_after: -1 is not a number of seconds from 0 to 604800"),
    ],
)
def test_limits_are_checked_in_one_place(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as refused:
        Limits(**limits)
    assert str(refused.value) == message


def test_a_timeout_out_of_range_is_refused() -> None:
    with pytest.raises(UsageError, match=r"^timeout: 0\.01 is not a number of seconds from 0\.1 to 3600$"):
        Provider(base_url="https://api.example.com", api_key=check_api_key("k"), timeout=0.01)


@pytest.mark.parametrize("value, rate", [("10/s", 10.0), ("300/min", 5.0), ("2.5", 2.5), (4, 4.0), (None, None)])
def test_rates(value: str | float | None, rate: float | None) -> None:
    assert parse_rate(value) == rate


@pytest.mark.parametrize("value", ["5/h", "0", "fast", -1, float("inf")])
def test_bad_rates(value: str | float) -> None:
    with pytest.raises(UsageError, match="rate: "):
        parse_rate(value)


FLAGS = [name for name, p in inspect.signature(batchgen.arun).parameters.items() if p.annotation == "bool"]


@pytest.mark.parametrize("name", FLAGS)
def test_every_yes_or_no_of_the_library_takes_only_a_bool(name: str) -> None:
    assert len(FLAGS) >= 10
    for said in ("no", "False", 1, 0.0, None):
        with pytest.raises(UsageError, match=rf"^{name}: .* is not True or False$"):
            check_keywords(batchgen.arun, {name: said})
    check_keywords(batchgen.arun, {name: True})
    check_keywords(batchgen.arun, {name: False})


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"api_key": 12345}, "api_key: 12345 is not a string or None"),
        ({"output": None}, "output: None is not a string or a path"),
        ({"rows": (2, "5")}, "rows: (2, '5') is not a (first, last) pair of row numbers or None"),
        ({"progress": "yes"}, "progress: 'yes' is not True or False or a function"),
        ({"sheet": "x" * 41}, None),
        ({"base_url": b"http://x"}, "base_url: b'http://x' is not a string or None"),
        ({"model": "sk-live-0123456789abcdef"}, None),
        ({"sheet": 3}, "sheet: 3 is not a string or None"),
        ({"header_row": "2"}, "header_row: '2' is not a whole number or None"),
    ],
)
def test_keywords_of_the_wrong_kind_are_usage_errors_naming_them(given: dict[str, Any], message: str | None) -> None:
    if message is None:  # of the right kind: nothing to say
        check_keywords(batchgen.arun, given)
        return
    with pytest.raises(UsageError) as refused:
        check_keywords(batchgen.arun, given)
    assert str(refused.value) == message


def test_a_long_string_in_the_wrong_place_is_never_shown() -> None:
    with pytest.raises(UsageError) as refused:
        check_keywords(batchgen.arun, {"allow_resend": "sk-live-0123456789abcdef"})
    assert "sk-live" not in str(refused.value) and "a string of 24 characters" in str(refused.value)
