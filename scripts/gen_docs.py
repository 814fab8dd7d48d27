"""Print docs/commands.md: every command's --help under its own heading, so the reference
cannot drift (tests/test_docs.py fails when the file differs from what this prints).

    .venv/bin/python scripts/gen_docs.py > docs/commands.md
"""

from __future__ import annotations

import typer

from seqctl.cli import app

WIDTH = 100     # fixed, so the file does not depend on the terminal that ran `make docs`


def walk(command, path: list[str], parent=None):
    settings = {"terminal_width": WIDTH, "max_content_width": WIDTH}
    if parent is None:
        settings.update(command.context_settings)
    ctx = typer.Context(command, info_name=path[-1], parent=parent, **settings)
    yield path, command, ctx
    if hasattr(command, "list_commands"):     # the root loads its commands only when asked
        for name in sorted(command.list_commands(ctx)):
            yield from walk(command.get_command(ctx, name), [*path, name], ctx)


def render() -> str:
    """The whole reference as one string."""
    root = typer.main.get_command(app)
    parts = ["# Command reference\n",
             "Generated from `--help` by `scripts/gen_docs.py` (`make docs`); do not edit.\n"]
    for path, command, ctx in walk(root, ["seqctl"]):
        with ctx:
            text = command.get_help(ctx)
        parts.append(f"## {' '.join(path)}\n\n```\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
