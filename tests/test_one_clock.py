"""One clock (SPEC 9): nothing outside seqctl/clock.py reads the machine's clock, so a
`SEQCTL_NOW` simulation behaves like real time everywhere (sync cursors, resync windows,
delta filters, retry times, stored times). Durations and waits (`time.monotonic`,
`time.sleep`) are not readings of "now" and stay allowed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "seqctl"
CLOCK = PACKAGE / "clock.py"

# Fully qualified callables that read "now" whatever their arguments...
ALWAYS = {
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today", "time.time", "time.time_ns", "uuid.uuid1",
    "email.utils.make_msgid",
}
# ...and those that read it only when called without a time argument.
WITHOUT_ARGUMENT = {
    "time.localtime", "time.gmtime", "time.ctime", "time.asctime", "email.utils.formatdate",
    "email.utils.localtime",
}
SQL_NOW = re.compile(r"'now'|\bcurrent_(?:timestamp|date|time)\b", re.IGNORECASE)


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it is bound to by the module's imports (`dt` -> `datetime`)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _qualified(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def clock_reads(source: str) -> list[tuple[int, str]]:
    """Where `source` reads the machine's clock: (line, what)."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    calls = {id(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            name = _qualified(node, aliases)
            call = calls.get(id(node))
            if name in ALWAYS or (name in WITHOUT_ARGUMENT and call is not None
                                  and not call.args and not call.keywords):
                found.append((node.lineno, name))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL_NOW.search(node.value)
            if match and re.search(r"\b(select|insert|update|delete|default)\b", node.value,
                                   re.IGNORECASE):
                found.append((node.lineno, f"SQL {match.group()}"))
    return sorted(set(found))


MODULES = sorted(path for path in PACKAGE.rglob("*.py") if path != CLOCK)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_outside_the_clock_reads_the_machine_clock(path):
    reads = clock_reads(path.read_text("utf-8"))
    assert reads == [], (
        f"{path.relative_to(PACKAGE.parent)} reads the machine clock at "
        + ", ".join(f"line {line} ({what})" for line, what in reads)
        + ": use seqctl.clock.now()")


@pytest.mark.parametrize("source", [
    "from datetime import UTC, datetime\nx = datetime.now(UTC)",
    "import datetime as dt\nx = dt.datetime.utcnow()",
    "import datetime\nx = datetime.date.today()",
    "from datetime import date as d\nx = d.today()",
    "import time\nx = time.time()",
    "from time import time as t\nx = t()",
    "from time import time_ns\nx = time_ns()",
    "import time\nx = time.strftime('%Y', time.gmtime())",
    "from email.utils import formatdate\nx = formatdate()",
    "import email.utils\nx = email.utils.make_msgid()",
    "from datetime import datetime\nclock = datetime.now\n",
    "db.execute(\"UPDATE t SET at = datetime('now')\")",
    "db.execute('INSERT INTO t (at) VALUES (CURRENT_TIMESTAMP)')",
])
def test_the_check_finds_every_way_of_reading_the_clock(source):
    assert clock_reads(source) != []


@pytest.mark.parametrize("source", [
    "from seqctl import clock\nx = clock.now()",
    "import time\ntime.sleep(1)\nstarted = time.monotonic()",
    "from datetime import UTC, datetime\nx = datetime.fromtimestamp(0, UTC)",
    "import time\nx = time.gmtime(0)",
    "from email.utils import formatdate\nx = formatdate(0)",
    "note = 'reply now'",
])
def test_durations_and_conversions_are_not_clock_reads(source):
    assert clock_reads(source) == []
