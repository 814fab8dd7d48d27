"""The one clock. Every piece of logic that needs "now" asks here.

`SEQCTL_NOW` (ISO 8601; no offset means UTC) fixes the time for simulation and tests;
`tick --now` sets an override for the running process.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from seqctl.errors import SeqctlError

_override: datetime | None = None


def parse_instant(text: str, *, what: str = "time") -> datetime:
    """Parse an ISO 8601 instant; a naive value is taken as UTC. Returns an aware UTC datetime."""
    raw = text.strip()
    if raw.endswith("Z") or raw.endswith("z"):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise SeqctlError(
            f"{what}: '{text}' is not an ISO 8601 time (e.g. 2026-03-02T09:00:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:       # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise SeqctlError(f"{what}: '{text}' is outside the years 1 to 9999 in UTC "
                          "(give a time such as 2026-03-02T09:00:00Z)") from None


def set_now(value: datetime | None) -> None:
    """Fix "now" for this process (used by `--now`); None returns to the environment/real clock."""
    global _override
    _override = value.astimezone(UTC) if value is not None else None


def now() -> datetime:
    """The current instant as an aware UTC datetime."""
    if _override is not None:
        return _override
    fixed = os.environ.get("SEQCTL_NOW")
    if fixed:
        return parse_instant(fixed, what="SEQCTL_NOW")
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """Format an instant the way every stored and printed time is: UTC with a `Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(text: str | None) -> datetime | None:
    """Read back a stored time (always UTC)."""
    if not text:
        return None
    return parse_instant(text)
