"""Each default is written once: the command line's flags and ``arun``'s keywords read the settings' defaults."""

from __future__ import annotations

import ast
import inspect
from dataclasses import fields

from batchgen import arun
from batchgen.batch import Choices
from batchgen.cli import cli
from batchgen.faults import NO_FAULTS, SERVING
from batchgen.settings import DEFAULTS, Limits, Provider

from ..support.runs import ROOT

PACKAGE = ROOT / "batchgen"


def flag_defaults(command: str, *args: str) -> dict[str, object]:
    """What ``command`` passes on when no flag is given."""
    with cli.commands[command].make_context(command, list(args)) as context:
        return dict(context.params)


def test_the_run_flags_default_to_the_library_defaults() -> None:
    keywords = inspect.signature(arun).parameters
    flags = flag_defaults("run", "in.csv", "-o", "out.csv")
    shared = [name for name in flags if name in keywords and keywords[name].default is not inspect.Parameter.empty]
    assert {"concurrency", "max_attempts", "timeout", "transport", "skip_invalid", "rate"} <= set(shared)
    assert {name: flags[name] for name in shared} == {name: keywords[name].default for name in shared}
    assert {name: getattr(DEFAULTS, name) for name in ("concurrency", "max_attempts", "timeout", "transport")} == {
        name: flags[name] for name in ("concurrency", "max_attempts", "timeout", "transport")
    }


def test_the_settings_objects_default_to_the_defaults() -> None:
    limits = Limits()
    assert (limits.concurrency, limits.max_attempts, limits.grace) == (
        DEFAULTS.concurrency,
        DEFAULTS.max_attempts,
        DEFAULTS.grace,
    )


def test_the_simulate_flags_default_to_the_simulator_defaults() -> None:
    flags = flag_defaults("simulate")
    expected = {field.name: getattr(NO_FAULTS, field.name) for field in fields(NO_FAULTS)} | {
        field.name: getattr(SERVING, field.name) for field in fields(SERVING)
    }
    shared = set(flags) & set(expected) - {"script", "seed"}
    assert {"port", "latency_ms", "retry_after", "rate_429", "rate_hang"} <= shared
    assert {name: flags[name] for name in shared} == {name: expected[name] for name in shared}


def test_no_numeric_literal_is_a_default_in_the_doors() -> None:
    """A number written as a default in ``cli.py`` or ``api.py`` would be a second copy of one in the settings."""
    literals = []
    for name in ("cli.py", "api.py"):
        for node in ast.walk(ast.parse((PACKAGE / name).read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            elif isinstance(node, ast.Call):
                defaults = [keyword.value for keyword in node.keywords if keyword.arg == "default"]
            else:
                continue
            literals += [
                f"{name}:{value.lineno}"
                for value in defaults
                if isinstance(value, ast.Constant)
                and isinstance(value.value, (int, float))
                and not isinstance(value.value, bool)
            ]
    assert literals == []


def test_every_setting_is_a_keyword_of_arun() -> None:
    """arun hands its keywords to the settings objects by name: a field no keyword names would keep its default."""
    keywords = set(inspect.signature(arun).parameters)
    assert [(kind.__name__, field.name) for kind in (Provider, Limits, Choices) for field in fields(kind)
            if field.name not in keywords] == []  # fmt: skip
