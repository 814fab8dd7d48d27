"""`seqctl init`."""

from __future__ import annotations

import typer

from seqctl import config, output
from seqctl.commands._common import JsonOpt, db


def register(root: typer.Typer) -> None:
    root.command("init")(init)


def init(json_out: JsonOpt = False) -> None:
    """Create the data folder and database (safe to run again)."""
    database = db()
    config.home().mkdir(parents=True, exist_ok=True)
    path = config.db_path()
    tables = len(database.table_names())
    if json_out:
        output.emit_json({"home": str(config.home()), "db": str(path), "tables": tables})
    else:
        output.line(f"seqctl ready: database {path}")
        output.info("next: seqctl users add you@example.com --first-name You")
