"""What each account-wide setting accepts, and changing one (`seqctl settings set`)."""

from __future__ import annotations

from croniter import croniter
from sqlite_utils import Database

from seqctl.engine import links
from seqctl.errors import SeqctlError
from seqctl.settings import SETTINGS_DEFAULTS


def check_key(key: str) -> None:
    if key not in SETTINGS_DEFAULTS:
        raise SeqctlError(f"unknown setting '{key}' (known: {', '.join(SETTINGS_DEFAULTS)})")


def validate(key: str, value: str) -> str:
    """The value to store for `key`, or SeqctlError saying what it accepts."""
    check_key(key)
    if key in ("max_active_sequences_per_contact", "sequence_hourly_send_cap",
               "max_send_attempts"):
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
        value = links.check_base_url(value)
    elif key == "display_timezone":
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise SeqctlError(f"{key} must be an IANA zone such as America/Chicago, "
                              f"not '{value}'") from None
    elif key == "unsubscribe_mailto" and value and "@" not in value:
        raise SeqctlError(f"{key} must be an email address, not '{value}'")
    return value


def set_setting(db: Database, key: str, value: str) -> str | None:
    """Store a setting after checking it; an empty value resets it to the default. Returns the
    stored value, None after a reset."""
    check_key(key)
    if value == "":
        db.execute("DELETE FROM settings WHERE key = ?", [key])
        return None
    value = validate(key, value)
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    return value
