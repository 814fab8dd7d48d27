"""The root command. Each command group lives in its own module under seqctl/commands/."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from seqctl import config
from seqctl.errors import SeqctlError

app = typer.Typer(
    name="seqctl",
    help="Personal sales outreach cadences: sequences of emails, calls and tasks, "
    "sent from your own mailbox, that stop when people answer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Modules with a Typer `app` become groups named after NAME; modules with `register(root)` add
# top-level commands.
GROUPS = {
    "users": "seqctl.commands.users",
    "inbox": "seqctl.commands.inbox",
    "settings": "seqctl.commands.settings",
    "sequence": "seqctl.commands.sequence",
    "contacts": "seqctl.commands.contacts",
    "deals": "seqctl.commands.deals",
    "enrollments": "seqctl.commands.enrollments",
    "tasks": "seqctl.commands.tasks",
    "log": "seqctl.commands.log",
    "suppress": "seqctl.commands.suppress",
    "templates": "seqctl.commands.templates",
    "outbox": "seqctl.commands.outbox",
    "export": "seqctl.commands.export",
}
TOP_LEVEL = [
    "seqctl.commands.init",
    "seqctl.commands.enroll",
    "seqctl.commands.tick",
    "seqctl.commands.preview",
    "seqctl.commands.stats",
    "seqctl.commands.serve",
    "seqctl.commands.demo",
]


@app.callback()
def root(
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Database file (default: $SEQCTL_DB or $SEQCTL_HOME/seqctl.db).",
                     envvar=None),
    ] = None,
) -> None:
    """seqctl: outreach sequences from your own mailbox."""
    if db is not None:
        config.set_db_path(db)


def _load() -> None:
    for name, module_name in GROUPS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        app.add_typer(module.app, name=name)
    for module_name in TOP_LEVEL:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(app)


_load()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit 1, never a traceback."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="seqctl", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: click's message, exit 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"error: {exc}\n")
        sys.exit(getattr(exc, "exit_code", 2))
    except SeqctlError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: still one line, with a way to see more
        if os.environ.get("SEQCTL_DEBUG"):
            raise
        sys.stderr.write(
            f"error: internal error: {type(exc).__name__}: {exc} "
            "(set SEQCTL_DEBUG=1 to see the traceback, and please report it)\n"
        )
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
