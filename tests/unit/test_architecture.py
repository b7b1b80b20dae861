"""The shape the code keeps: no import cycle among batchgen's modules (imports under TYPE_CHECKING and inside
functions count too), and no string outside the command line names a command-line flag."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from ..support.runs import ROOT

PACKAGE = ROOT / "batchgen"


@functools.cache
def parsed(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once for every test here."""
    return ast.parse(path.read_text())


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every batchgen module ``name`` imports, anywhere in it (``from . import x`` imports the package too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            stem = ".".join([*base, *([node.module] if node.module else [])])
            names = [stem, *(f"{stem}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for target in names:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
    return targets


def test_no_import_cycle() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == [], cycles[:3]


# The floors (docs/architecture.md): the lower floor, and the stages above it that it never imports.
LOWER = ("ledger", "transport", "pace", "clock", "environment", "errors", "faults", "files", "paths", "progress",
         "redact", "results", "schema", "settings", "system")  # fmt: skip
UPPER = ("submit", "journal", "batch", "api", "cli", "writer", "annotate", "template", "page", "night", "nightsheet",
         "status")  # fmt: skip


def within(name: str, parts: tuple[str, ...]) -> bool:
    return any(name == f"batchgen.{part}" or name.startswith(f"batchgen.{part}.") for part in parts)


def test_no_arrow_runs_back_up() -> None:
    """The ledger, the transports, the pace and the small leaf modules never import a stage above them."""
    known = modules()
    upward = [
        f"{name} -> {target}"
        for name, path in known.items()
        if within(name, LOWER)
        for target in sorted(imports(name, path, known))
        if within(target, UPPER)
    ]
    assert upward == []


def test_no_string_outside_the_command_line_names_a_flag() -> None:
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    named = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value[:60]!r}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "cli.py"
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and flag.search(node.value)
    ]
    assert named == []


def test_no_public_class_name_is_defined_in_two_modules() -> None:
    """A reader who greps a class name lands in the one room that defines it."""
    defined: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in parsed(path).body:
            public = isinstance(node, ast.ClassDef) and not node.name.startswith("_")
            if public:
                defined.setdefault(node.name, []).append(name)
    assert {name: where for name, where in defined.items() if len(where) > 1} == {}


def test_each_environment_variable_is_named_in_one_module() -> None:
    """``BATCHGEN_*`` names are written in ``environment.py`` only (docstrings may mention them)."""
    elsewhere = []
    for name, path in modules().items():
        tree = parsed(path)
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        elsewhere += [
            f"{name}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "BATCHGEN_" in node.value
            and id(node) not in docstrings
            and name != "batchgen.environment"
        ]
    assert elsewhere == []
