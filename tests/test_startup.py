"""Short commands load only what they use: `--version` and `--help` import no command module and
no heavy library, and an idle tick touches neither Jinja2, YAML, Rich nor email-validator.

Each command runs in a fresh interpreter, which then reports the modules it imported. How long
start-up takes is measured in benchmarks/bench_startup.py, never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer

from seqctl import cli
from tests.conftest import ROOT

PROBE = """
import json, sys
from seqctl.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""

# Libraries no short command needs. pydantic: Typer 0.29 and later import it to coerce every
# option value, which is why pyproject keeps typer below 0.26 (README, "Start-up").
HEAVY = ("pydantic", "rich", "jinja2", "yaml", "email_validator", "numpy", "pandas", "scipy",
         "requests", "msal", "google", "flufl", "holidays", "llm", "dns", "pygal", "dateparser",
         "starlette", "uvicorn")


def imported(home, *args: str, now: str | None = None) -> tuple[str, set[str]]:
    env = {**os.environ, "SEQCTL_HOME": str(home)}
    env.pop("SEQCTL_DB", None)
    if now:
        env["SEQCTL_NOW"] = now
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    report = proc.stderr.rsplit("\nMODULES ", 1)
    assert len(report) == 2, proc.stderr
    return proc.stdout, set(json.loads(report[1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in names)


def test_version_prints_the_version_and_loads_no_command(home):
    from seqctl import __version__

    out, modules = imported(home, "--version")
    assert out == f"seqctl {__version__}\n"
    assert loaded(modules, HEAVY + ("sqlite_utils",)) == []
    assert sorted(m for m in modules if m.startswith(("seqctl.commands", "seqctl.engine",
                                                      "seqctl.providers"))) == []


def test_help_lists_every_command_without_importing_one(home):
    out, modules = imported(home, "--help")
    for name in cli.COMMANDS:
        assert f"\n  {name} " in out, name
    assert loaded(modules, HEAVY + ("sqlite_utils",)) == []
    assert sorted(m for m in modules if m.startswith(("seqctl.commands", "seqctl.engine",
                                                      "seqctl.providers"))) == []


def test_one_command_loads_only_its_own_module(home):
    out, modules = imported(home, "path")
    assert str(home) in out
    commands = sorted(m for m in modules if m.startswith("seqctl.commands."))
    assert commands == ["seqctl.commands._common", "seqctl.commands.init"]


@pytest.mark.parametrize("now", ["2026-03-02T10:01:00Z", "2026-03-02T10:05:00Z"],
                         ids=["engine-and-dispatch", "with-sync-phase"])
def test_an_idle_tick_loads_no_template_yaml_rich_or_validator_library(home, run, now):
    (home / "mail").mkdir()
    assert run("users", "add", "rep@acme.test", "--first-name", "Riley").code == 0
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", str(home / "mail")).code == 0
    out, modules = imported(home, "tick", "--json", now=now)
    assert json.loads(out)["emails_sent"] == 0
    assert loaded(modules, HEAVY) == []


def test_the_root_help_summaries_are_each_commands_own_first_words():
    root = typer.main.get_command(cli.app)
    ctx = typer.Context(root, info_name="seqctl")
    assert root.list_commands(ctx) == list(cli.COMMANDS)
    for name, (_, summary) in cli.COMMANDS.items():
        command = root.get_command(ctx, name)
        assert command is not None, f"{name}: its module does not define it"
        words = " ".join((command.help or "").split())
        assert words.startswith(summary), (
            f"{name}: COMMANDS in seqctl/cli.py says {summary!r}; its help begins {words[:80]!r}")


def test_an_unknown_command_is_a_usage_error(run):
    code, _, err = run("no-such-command")
    assert code == 2
    assert "no-such-command" in err
