"""Where seqctl keeps its files, and the settings with their defaults."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

SETTINGS_DEFAULTS: dict[str, str] = {
    "max_active_sequences_per_contact": "3",
    "sequence_hourly_send_cap": "100",
    "tracking_base_url": "",
    "physical_address": "",
    "unsubscribe_mailto": "",
    "sync_schedule": "*/5 * * * *",
    "bounce_pause_threshold": "0.05",
    "max_send_attempts": "8",
    "display_timezone": "",
}

_db_override: Path | None = None


def home() -> Path:
    """The data folder: `SEQCTL_HOME`, else the platform's user data dir."""
    env = os.environ.get("SEQCTL_HOME")
    path = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("seqctl"))
    return path


def set_db_path(path: Path | None) -> None:
    """`--db` on the root command."""
    global _db_override
    _db_override = path


def db_path() -> Path:
    """`--db`, else `SEQCTL_DB`, else `$SEQCTL_HOME/seqctl.db`."""
    if _db_override is not None:
        return _db_override
    env = os.environ.get("SEQCTL_DB")
    if env:
        return Path(env).expanduser()
    return home() / "seqctl.db"


def db_path_is_chosen() -> bool:
    """True when `--db` or `SEQCTL_DB` names the database: then its folder must exist (seqctl
    creates only its own data folder, never one named by a typo)."""
    return _db_override is not None or bool(os.environ.get("SEQCTL_DB"))


def tokens_dir() -> Path:
    return home() / "tokens"


def dns_server() -> str | None:
    """`SEQCTL_DNS_SERVER` (HOST[:PORT]) for `seqctl doctor`; None means the system's."""
    return os.environ.get("SEQCTL_DNS_SERVER") or None


def lock_path() -> Path:
    """The tick lock lives beside the database so two databases never share one."""
    db = db_path()
    return db.with_name(db.name + ".tick.lock")
