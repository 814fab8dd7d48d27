"""The layers rule (SPEC section 1, docs/architecture.md), checked on the source with `ast`.

Every import counts, also one inside a function: shell (cli, commands, server, output) →
engine workflows → pure core and providers → base (db, clock, config, errors, files,
settings). No cycle, nothing upward, the pure core imports only the pure core, providers never
import the engine's workflows. Commands hold no SQL; nothing under engine/ prints or builds
Rich objects; no engine module reads global configuration (paths, the install secret, the
process's own connection): workflows get the database, `now` and the key as parameters.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "seqctl"

BASE = {"seqctl", "seqctl.db", "seqctl.clock", "seqctl.config", "seqctl.errors", "seqctl.files",
        "seqctl.settings"}
SHELL = {"seqctl.cli", "seqctl.__main__", "seqctl.server", "seqctl.output"}
# The pure core: plain values in, plain values out. A new pure module is added here.
PURE = {
    "seqctl.engine.schedule",
    "seqctl.engine.render",
    "seqctl.engine.message",
    "seqctl.engine.links",
    "seqctl.engine.spam",
    "seqctl.engine.counts",
    "seqctl.engine.sequence_spec",
    "seqctl.engine.sequence_reader",
    "seqctl.engine.classify",
    "seqctl.engine.draft",
    "seqctl.engine.intent",
    "seqctl.engine.deliverability",
    "seqctl.engine.pages",
}
# What the pure core may import besides itself.
PURE_MAY_IMPORT = {"seqctl.errors"}
MAX_LINES = 800


@dataclass(frozen=True)
class Import:
    source: str      # importing module
    target: str      # imported seqctl module
    line: int
    in_function: bool


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import of a seqctl module in the file, at any depth (functions, methods, `if`)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef |
                                                      ast.Lambda)
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    head = package[: len(package) - child.level + 1]
                    base = ".".join([*head, base] if base else head)
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in known else base)
            for target in targets:
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in known and target != name and target.startswith("seqctl"):
                    found.append(Import(name, target, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def graph(root: Path = PACKAGE) -> list[Import]:
    found = modules(root)
    return [imp for name, path in found.items() for imp in imports_of(name, path, set(found))]


def is_pure(name: str) -> bool:
    return any(name == pure or name.startswith(pure + ".") for pure in PURE)


def layer(name: str) -> str:
    if name in BASE:
        return "base"
    if name in SHELL or name.startswith("seqctl.commands"):
        return "shell"
    if name.startswith("seqctl.providers"):
        return "providers"
    if name.startswith("seqctl.engine"):
        return "pure" if is_pure(name) else "workflow"
    raise AssertionError(f"{name}: which layer? add it to tests/test_layers.py and "
                         "docs/architecture.md")


# What each layer may import (besides itself, for all but the pure core: see below).
ALLOWED = {
    "shell": {"shell", "workflow", "pure", "providers", "base"},
    "workflow": {"workflow", "pure", "providers", "base"},
    "providers": {"providers", "pure", "base"},
    "pure": {"pure"},
    "base": {"base"},
}


def violations(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        source, target = layer(imp.source), layer(imp.target)
        where = f"{imp.source}:{imp.line}{' (inside a function)' if imp.in_function else ''}"
        if target not in ALLOWED[source] and not (source == "pure" and imp.target in
                                                  PURE_MAY_IMPORT):
            problems.append(f"{where} imports {imp.target}: {source} may not import {target}")
    return problems


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges: dict[str, set[str]] = {}
    for imp in imports:
        edges.setdefault(imp.source, set()).add(imp.target)
        edges.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_the_engine_has_no_import_cycle_not_even_inside_a_function():
    assert cycles(graph()) == []


def test_imports_only_go_down_the_layers():
    assert violations(graph()) == []


def test_every_module_has_a_layer():
    for name in modules():
        layer(name)


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_exceeds_800_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by job"


# --- what commands and the engine may not do ------------------------------------------------

SQL = re.compile(r"\b(SELECT\b.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
                 r"|CREATE\s+(TABLE|INDEX)|VACUUM|PRAGMA|BEGIN|SAVEPOINT|ROLLBACK|COMMIT)\b",
                 re.DOTALL)
DATABASE_CALLS = {"execute", "executemany", "executescript", "query", "conn"}


def sql_in(path: Path) -> list[str]:
    """SQL text, database calls and `transaction` in a module (docstrings may name SQL)."""
    found = []
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(
                node.value) and id(node) not in docstrings:
            found.append(f"{path.name}:{node.lineno}: SQL {node.value[:40]!r}")
        elif isinstance(node, ast.Attribute) and node.attr in DATABASE_CALLS:
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "seqctl.db" and any(
                alias.name == "transaction" for alias in node.names):
            found.append(f"{path.name}:{node.lineno}: imports transaction")
    return found


def shell_only(path: Path) -> list[str]:
    """Printing, Rich and global configuration in a module (all for the shell alone)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{alias.name}" for alias in node.names])
            for name in names:
                if name.split(".")[0] == "rich":
                    found.append(f"{where}: imports {name} (Rich is for the shell)")
                if name in ("seqctl.config", "seqctl.files.install_secret") or name.startswith(
                        "seqctl.config."):
                    found.append(f"{where}: imports {name} (take it as a parameter)")
                if name in ("seqctl.db.get", "seqctl.db.reset"):
                    found.append(f"{where}: imports {name} (take the database as a parameter)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in ("print", "input")):
            found.append(f"{where}: {node.func.id}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                node.value.id == "sys" and node.attr in ("stdout", "stderr")):
            found.append(f"{where}: sys.{node.attr} (log instead: the CLI shows notices)")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                node.value.id in ("database", "db") and node.attr in ("get", "reset")
                and path.name != "db.py"):
            found.append(f"{where}: {node.value.id}.{node.attr}() (the process's connection)")
    return found


def command_modules() -> list[Path]:
    return sorted((PACKAGE / "commands").glob("*.py"))


def engine_modules() -> list[Path]:
    return sorted((PACKAGE / "engine").rglob("*.py"))


@pytest.mark.parametrize("path", command_modules(), ids=lambda p: p.name)
def test_commands_hold_no_sql(path):
    assert sql_in(path) == []


@pytest.mark.parametrize("path", engine_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_under_engine_prints_builds_rich_or_reads_global_configuration(path):
    assert shell_only(path) == []


# --- the checker itself catches what it should ----------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "seqctl" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in (root / "seqctl").rglob("*"):
        if folder.is_dir() and not (folder / "__init__.py").exists():
            (folder / "__init__.py").write_text("")
    (root / "seqctl" / "__init__.py").touch()
    return root / "seqctl"


def test_a_cycle_hidden_inside_a_function_is_found(tmp_path):
    root = write(tmp_path, {
        "engine/dispatch.py": "from seqctl.engine import sync\n",
        "engine/sync.py": "def run():\n    from seqctl.engine.dispatch import factory\n",
    })
    imports = graph(root)
    assert [i.in_function for i in imports if i.source == "seqctl.engine.sync"] == [True]
    assert cycles(imports) == [["seqctl.engine.dispatch", "seqctl.engine.sync"]]


def test_a_relative_import_and_a_submodule_import_are_followed(tmp_path):
    root = write(tmp_path, {
        "engine/classify/__init__.py": "from .bounces import read\n",
        "engine/classify/bounces.py": "def read():\n    import seqctl.engine.tick\n",
        "engine/tick.py": "",
    })
    targets = {(i.source, i.target) for i in graph(root)}
    assert ("seqctl.engine.classify", "seqctl.engine.classify.bounces") in targets
    assert ("seqctl.engine.classify.bounces", "seqctl.engine.tick") in targets


def test_upward_and_impure_imports_are_reported():
    imports = [
        Import("seqctl.engine.tick", "seqctl.commands.tick", 3, False),
        Import("seqctl.engine.schedule", "seqctl.db", 4, True),
        Import("seqctl.engine.draft", "seqctl.engine.dispatch", 5, False),
        Import("seqctl.providers.smtp", "seqctl.engine.sync", 6, False),
        Import("seqctl.db", "seqctl.engine.events", 7, False),
        Import("seqctl.engine.intent", "seqctl.errors", 8, False),
        Import("seqctl.providers.smtp", "seqctl.engine.message", 9, False),
    ]
    assert violations(imports) == [
        "seqctl.engine.tick:3 imports seqctl.commands.tick: workflow may not import shell",
        "seqctl.engine.schedule:4 (inside a function) imports seqctl.db: pure may not import base",
        "seqctl.engine.draft:5 imports seqctl.engine.dispatch: pure may not import workflow",
        "seqctl.providers.smtp:6 imports seqctl.engine.sync: providers may not import workflow",
        "seqctl.db:7 imports seqctl.engine.events: base may not import workflow",
    ]


def test_sql_rich_printing_and_configuration_are_found(tmp_path):
    command = tmp_path / "command.py"
    command.write_text(
        "from seqctl.db import transaction\n"
        "def f(db):\n"
        "    \"\"\"Copy it (SQLite VACUUM INTO).\"\"\"\n"
        "    db.execute('SELECT id FROM deals WHERE name = ?', ['x'])\n"
        "    text = 'Create or update sequences; select a file from the list'\n"
    )
    assert [problem.split(": ", 1)[1] for problem in sql_in(command)] == [
        "imports transaction", ".execute", "SQL 'SELECT id FROM deals WHERE name = ?'"]
    engine = tmp_path / "engine.py"
    engine.write_text(
        "import sys\n"
        "from seqctl import config, db as database\n"
        "from seqctl.files import install_secret, write_private\n"
        "def f():\n"
        "    from rich.table import Table\n"
        "    print('x')\n"
        "    sys.stderr.write('y')\n"
        "    return database.get()\n"
    )
    assert [problem.split(": ", 1)[1] for problem in shell_only(engine)] == [
        "imports seqctl.config (take it as a parameter)",
        "imports seqctl.files.install_secret (take it as a parameter)",
        "imports rich.table.Table (Rich is for the shell)",
        "print()",
        "database.get() (the process's connection)",
        "sys.stderr (log instead: the CLI shows notices)",
    ]
