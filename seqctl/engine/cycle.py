"""One tick: sync → engine → dispatch, under the tick lock."""

from __future__ import annotations

from datetime import datetime

from croniter import croniter
from sqlite_utils import Database

from seqctl import settings
from seqctl.engine import dispatch, tick
from seqctl.engine.tick import TickCounts

PHASES = ("all", "sync", "engine", "dispatch")


class TickBusy(Exception):
    """Another tick holds the lock."""


def sync_due(db: Database, now: datetime) -> bool:
    """Whether this minute matches the `sync_schedule` cron expression."""
    return croniter.match(settings.get(db, "sync_schedule"), now.replace(second=0, microsecond=0))


def run(db: Database, now: datetime, *, phase: str = "all", dry_run: bool = False,
        factory: dispatch.ProviderFactory = dispatch.default_factory) -> TickCounts:
    lock = tick.TickLock()
    if not lock.acquire():
        raise TickBusy()
    try:
        counts = TickCounts()
        if phase == "sync" or (phase == "all" and not dry_run and sync_due(db, now)):
            from seqctl.engine import sync

            counts.synced += sync.run_sync(db, now, factory=factory)
        if phase in ("all", "engine"):
            if dry_run:
                db.execute("BEGIN IMMEDIATE")
                try:
                    tick.run_engine(db, now, counts)
                    dispatch.run_dispatch(db, now, counts, dry_run=True)
                finally:
                    db.execute("ROLLBACK")
                return counts
            tick.run_engine(db, now, counts)
        if phase in ("all", "dispatch"):
            dispatch.run_dispatch(db, now, counts, dry_run=dry_run, factory=factory)
        return counts
    finally:
        lock.release()
