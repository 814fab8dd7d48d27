"""`seqctl settings get|set|list`."""

from __future__ import annotations

import typer
from croniter import croniter

from seqctl import output
from seqctl import settings as store
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.config import SETTINGS_DEFAULTS
from seqctl.errors import SeqctlError

app = group("Account-wide settings (caps, tracking URL, footer address, sync schedule).")


def _validate(key: str, value: str) -> str:
    if key not in SETTINGS_DEFAULTS:
        raise SeqctlError(f"unknown setting '{key}' (known: {', '.join(SETTINGS_DEFAULTS)})")
    if key in ("max_active_sequences_per_contact", "sequence_hourly_send_cap"):
        if not value.isdigit() or int(value) < 1:
            raise SeqctlError(f"{key} must be a whole number of at least 1, not '{value}'")
    elif key == "bounce_pause_threshold":
        try:
            number = float(value)
        except ValueError:
            number = -1
        if not 0 < number <= 1:
            raise SeqctlError(f"{key} must be a fraction between 0 and 1 (e.g. 0.05), not '{value}'")
    elif key == "sync_schedule":
        if not croniter.is_valid(value):
            raise SeqctlError(f"{key} must be a cron expression such as '*/5 * * * *', not '{value}'")
    elif key == "tracking_base_url" and value:
        if not value.startswith(("https://", "http://")):
            raise SeqctlError(f"{key} must start with https:// (e.g. https://t.example.com)")
        value = value.rstrip("/")
    elif key == "unsubscribe_mailto" and value and "@" not in value:
        raise SeqctlError(f"{key} must be an email address, not '{value}'")
    return value


@default(app)
@app.command("list")
def list_settings(json_out: JsonOpt = False) -> None:
    """List every setting with its current value."""
    values = store.all_settings(db())
    if json_out:
        output.emit_json(values)
        return
    output.table(
        [{"key": k, "value": v} for k, v in values.items()], ["key", "value"]
    )


@app.command("get")
def get(key: str, json_out: JsonOpt = False) -> None:
    """Print one setting's value."""
    value = store.get(db(), key)
    if json_out:
        output.emit_json({"key": key, "value": value})
    else:
        output.line(value)


@app.command("set")
def set_(key: str, value: str = typer.Argument(..., help="New value; '' resets to default.")) -> None:
    """Set one setting (an empty value resets it to the default)."""
    database = db()
    if key not in SETTINGS_DEFAULTS:
        raise SeqctlError(f"unknown setting '{key}' (known: {', '.join(SETTINGS_DEFAULTS)})")
    if value == "":
        database.execute("DELETE FROM settings WHERE key = ?", [key])
        output.info(f"{key} reset to its default ({SETTINGS_DEFAULTS[key] or 'empty'})")
        return
    value = _validate(key, value)
    database.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    output.info(f"{key} = {value}")
