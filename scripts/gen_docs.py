"""Print docs/commands.md: every command's --help, so the reference cannot drift.

    .venv/bin/python scripts/gen_docs.py > docs/commands.md
"""

from __future__ import annotations

import os

import typer

os.environ.setdefault("COLUMNS", "100")
os.environ["TERM"] = "dumb"

from seqctl.cli import app  # noqa: E402


def walk(command, path: list[str]):
    yield path, command
    if hasattr(command, "list_commands"):     # the root loads its commands only when asked
        ctx = typer.Context(command, info_name=" ".join(path))
        for name in sorted(command.list_commands(ctx)):
            yield from walk(command.get_command(ctx, name), [*path, name])


def main() -> None:
    root = typer.main.get_command(app)
    print("# Command reference\n")
    print("Generated from `--help` by `scripts/gen_docs.py` (`make docs`); do not edit.\n")
    for path, command in walk(root, ["seqctl"]):
        ctx = typer.Context(command, info_name=" ".join(path))
        with ctx:
            text = command.get_help(ctx)
        print(f"## {' '.join(path)}\n")
        print("```")
        print(text.rstrip())
        print("```\n")


if __name__ == "__main__":
    main()
