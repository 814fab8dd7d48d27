"""One tick: sync → engine → dispatch, under the tick lock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from croniter import croniter

from seqctl import settings
from seqctl.engine import dispatch, tick
from seqctl.engine.counts import TickCounts
from seqctl.providers.registry import ProviderFactory, default_factory

if TYPE_CHECKING:
    from sqlite_utils import Database

PHASES = ("all", "sync", "engine", "dispatch")


class TickBusy(Exception):
    """Another tick holds the lock."""


@lru_cache(maxsize=8)
def _cron_fields(expression: str) -> list[list]:
    return croniter.expand(expression)[0]


def cron_matches(expression: str, when: datetime) -> bool:
    """Whether the minute `when` (UTC) is one the cron expression fires on (croniter parses;
    this only compares, since a tick asks every minute)."""
    minute, hour, day, month, weekday = _cron_fields(expression)[:5]

    def has(values: list, value: int) -> bool:
        return values == ["*"] or value in values

    if not (has(minute, when.minute) and has(hour, when.hour) and has(month, when.month)):
        return False
    cron_weekday = (when.weekday() + 1) % 7          # cron: 0 = Sunday
    day_ok, weekday_ok = has(day, when.day), has(weekday, cron_weekday)
    if day != ["*"] and weekday != ["*"]:
        return day_ok or weekday_ok                   # cron's rule when both are restricted
    return day_ok and weekday_ok


def sync_due(db: Database, now: datetime) -> bool:
    """Whether this minute matches the `sync_schedule` cron expression."""
    return cron_matches(settings.get(db, "sync_schedule"), now)


def _reply_guard(db: Database, inbox: dict[str, Any], provider: Any, now: datetime) -> Any:
    """Dispatch's `before_first_send`: read the inbox's new mail before it sends. Sync and the
    classifier load here, on the minutes that send or sync, not on every idle tick."""
    from seqctl.engine import sync

    return sync.sync_inbox(db, inbox, provider, now)


def run(
    db: Database,
    now: datetime,
    *,
    key: bytes,
    phase: str = "all",
    dry_run: bool = False,
    factory: ProviderFactory = default_factory,
    progress: Callable[[int, int], None] | None = None,
) -> TickCounts:
    """Run one tick of `db` at `now` under its tick lock (TickBusy when another holds it).
    `key` is the install secret; `factory` opens each inbox's provider."""
    lock = tick.TickLock.beside(db)
    if not lock.acquire():
        raise TickBusy()
    try:
        counts = TickCounts()
        if phase == "sync" or (phase == "all" and not dry_run and sync_due(db, now)):
            from seqctl.engine import sync

            before = db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            counts.synced += sync.run_sync(db, now, factory=factory)
            counts.exited += db.execute(
                "SELECT COUNT(*) FROM events WHERE id > ? AND kind = 'exit'", [before]
            ).fetchone()[0]
        if phase in ("all", "engine"):
            if dry_run:
                db.execute("BEGIN IMMEDIATE")
                try:
                    tick.run_engine(db, now, counts, key=key)
                    dispatch.run_dispatch(db, now, counts, dry_run=True, key=key)
                finally:
                    db.execute("ROLLBACK")
                return counts
            tick.run_engine(db, now, counts, progress, key=key)
        if phase in ("all", "dispatch"):
            dispatch.run_dispatch(
                db, now, counts, dry_run=dry_run, key=key, factory=factory,
                before_first_send=_reply_guard,
            )
        return counts
    finally:
        lock.release()


def sync_now(
    db: Database, now: datetime, *, only: str | None = None,
    factory: ProviderFactory = default_factory,
) -> int:
    """`seqctl sync`: the sync phase alone (of every inbox, or only `only`), under the tick
    lock (TickBusy when a tick holds it: that tick syncs). Returns the messages processed."""
    lock = tick.TickLock.beside(db)
    if not lock.acquire():
        raise TickBusy()
    from seqctl.engine import sync

    try:
        return sync.run_sync(db, now, only=only, factory=factory)
    finally:
        lock.release()
