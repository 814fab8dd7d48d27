"""Account-wide settings, stored in the `settings` table, with the spec's defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqctl.config import SETTINGS_DEFAULTS
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database


def get(db: Database, key: str) -> str:
    if key not in SETTINGS_DEFAULTS:
        raise SeqctlError(f"unknown setting '{key}' (known: {', '.join(SETTINGS_DEFAULTS)})")
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return row[0] if row else SETTINGS_DEFAULTS[key]


def get_int(db: Database, key: str) -> int:
    return int(get(db, key))


def get_float(db: Database, key: str) -> float:
    return float(get(db, key))


def all_settings(db: Database) -> dict[str, str]:
    stored = dict(db.execute("SELECT key, value FROM settings").fetchall())
    return {key: stored.get(key, default) for key, default in SETTINGS_DEFAULTS.items()}
