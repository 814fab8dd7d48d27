"""`seqctl init`, `path`, `backup`: housekeeping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seqctl import config, output
from seqctl import db as database
from seqctl.commands._common import JsonOpt, db


def register(root: typer.Typer) -> None:
    root.command("init")(init)
    root.command("path")(path)
    root.command("backup")(backup)


def init(json_out: JsonOpt = False) -> None:
    """Create the data folder and database (safe to run again).

    \b
    Examples:
      seqctl init
      SEQCTL_HOME=~/work/seqctl seqctl init --json
    """
    database = db()
    config.home().mkdir(parents=True, exist_ok=True)
    db_file = config.db_path()
    tables = len(database.table_names())
    if json_out:
        output.emit_json({"home": str(config.home()), "db": str(db_file), "tables": tables})
    else:
        output.line(f"seqctl ready: database {db_file}")
        output.info("next: seqctl users add you@example.com --first-name You")


def path(json_out: JsonOpt = False) -> None:
    """Print where seqctl keeps its database and tokens.

    \b
    Examples:
      seqctl path
      seqctl path --json
    """
    document = {"home": str(config.home()), "db": str(config.db_path()),
                "tokens": str(config.tokens_dir())}
    if json_out:
        output.emit_json(document)
    else:
        output.line(document["db"])


def backup(
    target: Annotated[Path, typer.Argument(help="The new backup file (must not exist).")],
) -> None:
    """Copy the database to TARGET while seqctl keeps running (SQLite VACUUM INTO): a
    consistent snapshot even during a tick. Tokens are not included.

    \b
    Example:
      seqctl backup ~/backups/seqctl-$(date +%F).db
    """
    database.backup(db(), target)
    output.info(f"backup written to {target}")
