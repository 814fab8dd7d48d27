"""`seqctl settings get|set|list`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import output
from seqctl import settings as store
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.config import SETTINGS_DEFAULTS
from seqctl.engine import settings_admin

app = group(
    "Account-wide settings (caps, tracking URL, footer address, sync schedule).",
    examples=["seqctl settings", "seqctl settings set display_timezone America/Chicago"],
)


@default(app)
@app.command("list")
def list_settings(json_out: JsonOpt = False) -> None:
    """List every setting with its current value.

    \b
    Examples:
      seqctl settings
      seqctl settings list --json
    """
    values = store.all_settings(db())
    if json_out:
        output.emit_json(values)
        return
    output.table(
        [{"key": k, "value": v} for k, v in values.items()], ["key", "value"]
    )


@app.command("get")
def get(key: Annotated[str, typer.Argument(help="A setting's name (see `seqctl settings list`).")], json_out: JsonOpt = False) -> None:
    """Print one setting's value.

    \b
    Example:
      seqctl settings get sequence_hourly_send_cap
    """
    value = store.get(db(), key)
    if json_out:
        output.emit_json({"key": key, "value": value})
    else:
        output.line(value)


@app.command("set")
def set_(key: Annotated[str, typer.Argument(help="A setting's name (see `seqctl settings list`).")], value: str = typer.Argument(..., help="New value; '' resets to default.")) -> None:
    """Set one setting (an empty value resets it to the default).

    \b
    Examples:
      seqctl settings set display_timezone America/Chicago
      seqctl settings set tracking_base_url ''
    """
    stored = settings_admin.set_setting(db(), key, value)
    if stored is None:
        output.info(f"{key} reset to its default ({SETTINGS_DEFAULTS[key] or 'empty'})")
    else:
        output.info(f"{key} = {stored}")
