"""Every command has help text and is in the generated reference, and the README starts with
the two commands that work on a fresh machine."""

from __future__ import annotations

from pathlib import Path

import typer

from seqctl.cli import app

ROOT = Path(__file__).resolve().parent.parent


def commands():
    def walk(command, path):
        yield path, command
        if hasattr(command, "list_commands"):
            ctx = typer.Context(command, info_name=" ".join(path))
            for name in command.list_commands(ctx):
                yield from walk(command.get_command(ctx, name), [*path, name])

    return list(walk(typer.main.get_command(app), ["seqctl"]))


def test_every_command_has_help_text():
    missing = [" ".join(path) for path, command in commands()
               if not (command.help or "").strip()]
    assert missing == []


def _help(path, command):
    ctx = typer.Context(command, info_name=" ".join(path))
    with ctx:
        return command.get_help(ctx)


def test_every_help_has_an_example():
    missing = [" ".join(path) for path, command in commands()
               if "Example" not in _help(path, command)]
    assert missing == []


def test_every_argument_and_option_is_described():
    missing = [f"{' '.join(path)} {param.name}" for path, command in commands()
               for param in command.params if not (getattr(param, "help", None) or "").strip()]
    assert missing == []


def test_reference_is_what_the_generator_prints():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    gen_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_docs)
    assert (ROOT / "docs" / "commands.md").read_text() == gen_docs.render(), \
        "run `make docs` to regenerate docs/commands.md"


def test_each_command_has_its_help_under_its_own_heading():
    reference = (ROOT / "docs" / "commands.md").read_text()
    for path, _ in commands():
        name = " ".join(path)
        section = reference.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        block = section.split("```\n", 2)[1]
        assert block.startswith(f"Usage: {name} "), name       # not empty, and its own help


def test_every_command_is_in_the_generated_reference():
    reference = (ROOT / "docs" / "commands.md").read_text()
    missing = [" ".join(path) for path, _ in commands()
               if f"## {' '.join(path)}\n" not in reference]
    assert missing == [], "run `make docs` to regenerate docs/commands.md"


def test_spec_commands_exist():
    names = {" ".join(path[1:]) for path, _ in commands()}
    for required in ("init", "users add", "users list", "inbox add maildir", "inbox add smtp",
                     "inbox list", "inbox set", "inbox remove", "inbox test",
                     "inbox connect gmail", "inbox connect outlook", "inbox import gmail",
                     "sequence apply", "sequence validate", "sequence list", "sequence show",
                     "sequence export", "sequence duplicate", "sequence activate",
                     "sequence deactivate", "sequence delete", "contacts import",
                     "contacts list", "contacts show", "contacts set", "contacts set-stage",
                     "deals add", "deals link", "deals set-stage", "enroll", "enrollments list",
                     "pause", "resume", "unenroll", "tick", "sync", "tasks list", "tasks done",
                     "tasks skip", "log reply", "log meeting", "log bounce", "suppress add",
                     "suppress remove", "suppress list", "templates save", "templates list",
                     "templates show", "templates delete", "preview", "spam-score", "stats",
                     "compare", "serve", "settings get", "settings set", "settings list",
                     "schedule", "cron", "outbox list", "outbox retry", "export events",
                     "export enrollments", "demo"):
        assert required in names, required


def test_readme_opens_with_make_demo_and_make_test():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:10])
    assert "make demo" in head and "make test" in head


def test_every_image_and_file_the_readme_links_to_is_in_the_repository():
    import re

    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?:docs|examples|benchmarks)/[^)#\s]+)\)", readme)
    assert "docs/report-desktop.png" in targets          # the report's screenshot is shown
    missing = [t for t in targets if not (ROOT / t).is_file()]
    assert missing == []
    for png in (t for t in targets if t.endswith(".png")):
        data = (ROOT / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
