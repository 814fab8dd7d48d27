"""One tick: sync → engine → dispatch, under the tick lock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from croniter import croniter

from seqctl import settings
from seqctl.clock import iso
from seqctl.engine import activity, dispatch, tick
from seqctl.engine.counts import TickCounts
from seqctl.providers.registry import ProviderFactory, default_factory

if TYPE_CHECKING:
    from sqlite_utils import Database

    from seqctl.providers.base import Provider

PHASES = ("all", "sync", "engine", "dispatch")
PHASE_WAIT = 50.0       # seconds: less than cron's minute, so phase runs never pile up
# The tick's sync phase reads a backlog for about this long, then leaves the rest (counted in
# the log) to the next sync, so the engine and dispatch phases of a busy minute still run.
# `seqctl sync` reads to the end.
TICK_SYNC_BUDGET = 30.0


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


def _exits_since(db: Database, event_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM events WHERE id > ? AND kind = 'exit'",
                      [event_id]).fetchone()[0]


def _last_event(db: Database) -> int:
    return db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]


def reply_guard(*, synced_at: datetime | None, every_send: bool = True) -> dispatch.SendingHook:
    """What runs before an inbox's first send of a tick: read its new mail (an incremental
    sync), so a reply already in the mailbox stops the follow-up whatever `sync_schedule`
    says. Skipped for an inbox that the sync phase of this tick (at `synced_at`) has just
    read. Without `every_send` (benchmarks) only a new inbox is read, to fix where its sync
    starts before any reply to it can exist. Returns False when the mailbox could not be read
    (dispatch then holds that inbox's follow-ups). Sync and the classifier load here, on the
    minutes that send or sync, not on every idle tick."""

    def guard(db: Database, inbox: dict[str, Any], provider: Provider, now: datetime,
              counts: TickCounts) -> bool:
        just_read = synced_at is not None and inbox["last_sync_at"] == iso(synced_at)
        if inbox["sync_cursor"] is not None and (just_read or not every_send):
            return True
        from seqctl.engine import sync

        before = _last_event(db)
        counts.synced += sync.sync_inbox(db, inbox, provider, now)
        counts.exited += _exits_since(db, before)
        return inbox["last_sync_at"] == iso(now)     # False: the mailbox could not be read

    return guard


def run(
    db: Database,
    now: datetime,
    *,
    key: bytes,
    phase: str = "all",
    dry_run: bool = False,
    factory: ProviderFactory = default_factory,
    progress: Callable[[int, int], None] | None = None,
    guard_replies: bool = True,
    waiting: Callable[[], None] | None = None,
    would_do: list[dict[str, Any]] | None = None,
) -> TickCounts:
    """Run one tick of `db` at `now` under its tick lock. `key` is the install secret;
    `factory` opens each inbox's provider; `guard_replies=False` (benchmarks only) leaves out
    the reply guard. A whole tick finding another one running gives up at once (TickBusy); a
    single phase (`cron --split`) waits up to PHASE_WAIT seconds for its turn, so the phases
    started in the same minute never skip each other. A dry run fills `would_do` (when given)
    with what it would send and create (`activity.would`)."""
    lock = tick.TickLock.beside(db)
    if not lock.acquire(wait=0.0 if phase == "all" else PHASE_WAIT, waiting=waiting):
        raise TickBusy()
    try:
        counts = TickCounts()
        synced = phase == "sync" or (phase == "all" and not dry_run and sync_due(db, now))
        if synced:
            from seqctl.engine import sync

            before = _last_event(db)
            counts.synced += sync.run_sync(db, now, factory=factory, budget=TICK_SYNC_BUDGET)
            counts.exited += _exits_since(db, before)
        if phase in ("all", "engine"):
            if dry_run:
                before = activity.marks(db)
                db.execute("BEGIN IMMEDIATE")
                try:
                    tick.run_engine(db, now, counts, key=key)
                    planned: list[int] = []
                    dispatch.run_dispatch(db, now, counts, dry_run=True, key=key,
                                          planned=planned)
                    if would_do is not None:
                        would_do.extend(activity.would(db, before, planned))
                finally:
                    db.execute("ROLLBACK")
                return counts
            tick.run_engine(db, now, counts, progress, key=key)
        if phase in ("all", "dispatch"):
            guard = reply_guard(synced_at=now if synced else None, every_send=guard_replies)
            dispatch.run_dispatch(db, now, counts, dry_run=dry_run, key=key, factory=factory,
                                  before_sending=guard)
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
