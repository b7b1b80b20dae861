"""The public surface kept honest (as httpx's test_exported_members and sqlite-utils' test_docs): what
``batchgen`` exports exists and is listed, and every keyword, command and flag is documented."""

from __future__ import annotations

import inspect
import re
import types

import click
import pytest

import batchgen
from batchgen.cli import cli

from ..support.runs import ROOT

DOCS = "\n".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
API_DOC = (ROOT / "docs" / "api.md").read_text()


def test_every_exported_name_exists() -> None:
    assert [name for name in batchgen.__all__ if not hasattr(batchgen, name)] == []


def test_every_public_name_is_exported() -> None:
    public = [
        name
        for name, value in vars(batchgen).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    ]
    assert sorted(set(public) - set(batchgen.__all__)) == []


@pytest.mark.parametrize("function", [batchgen.run, batchgen.arun, batchgen.validate], ids=["run", "arun", "validate"])
def test_every_keyword_is_in_the_api_docs(function: object) -> None:
    assert callable(function)
    keywords = inspect.signature(function).parameters
    assert [name for name in keywords if f"`{name}`" not in API_DOC] == []


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_and_flag_is_documented(name: str) -> None:
    command = cli.commands[name]
    assert f"batchgen {name}" in DOCS
    undocumented = [
        param.opts
        for param in command.params
        if isinstance(param, click.Option)
        and not any(re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", DOCS) for opt in param.opts)
    ]
    assert undocumented == []
