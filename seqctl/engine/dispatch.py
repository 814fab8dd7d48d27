"""The dispatch phase: send queued emails whose time has come, within the caps.

Exactly-once intent: a row is claimed (`sending`, with its exact bytes) and committed before
the provider call, and marked `sent` after. Only the tick-lock holder dispatches, so a
`sending` row found at the start of a tick is stale: it is reconciled with the provider's sent
mail by Message-ID before anything is retried; if the provider cannot tell, the row becomes
`unknown` and waits for `seqctl outbox retry`.

Inboxes dispatch concurrently (one thread and one connection each), each inbox in order, so
a slow or throttled inbox never holds up the others. Within an inbox's batch the bookkeeping
of one email overlaps the send of the next (`_send_batch_on`); one email's send lives in
`sending`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqctl import clock, settings
from seqctl import db as database
from seqctl.clock import from_iso, iso
from seqctl.db import database_file, transaction
from seqctl.engine import accounts, plan, sending
from seqctl.engine.counts import TickCounts
from seqctl.engine.schedule import into_window
from seqctl.errors import SeqctlError
from seqctl.providers.base import (
    AuthRevokedError,
    Provider,
    ProviderError,
    TransientError,
)
from seqctl.providers.registry import ProviderFactory, default_factory

if TYPE_CHECKING:
    from sqlite_utils import Database

# Notices for the person running seqctl; the CLI shows them on stderr (SPEC: the engine
# never prints).
log = logging.getLogger("seqctl")

# (db, inbox row, its open provider, now, the counts to add to): see `run_dispatch`
SendingHook = Callable[["Database", dict[str, Any], Provider, datetime, TickCounts], Any]

def spacing_gap(inbox: dict[str, Any]) -> float:
    """A random gap (seconds) in the inbox's `--spacing MIN-MAX` range."""
    return random.uniform(inbox.get("spacing_min") or 0, inbox.get("spacing_max") or 0)


def sent_last_24h(db: Database, inbox_id: int, now: datetime | None = None) -> int:
    now = now or clock.now()
    return db.execute(
        "SELECT COUNT(*) FROM outbox WHERE inbox_id = ? AND status = 'sent' AND sent_at > ?",
        [inbox_id, iso(now - timedelta(hours=24))],
    ).fetchone()[0]


def sent_this_hour(db: Database, now: datetime) -> int:
    """Emails sent since the clock hour began, across all inboxes (the hourly cap). It reads
    a range of the (status, sent_at) index: the cost follows this hour's sends, not history."""
    hour_start = now.replace(minute=0, second=0, microsecond=0)
    return db.execute(
        "SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND sent_at >= ?", [iso(hour_start)]
    ).fetchone()[0]


def run_dispatch(
    db: Database,
    now: datetime,
    counts: TickCounts,
    *,
    dry_run: bool = False,
    key: bytes,
    factory: ProviderFactory = default_factory,
    before_sending: SendingHook | None = None,
    planned: list[int] | None = None,
) -> None:
    """Send the due queued emails within the caps. A dry run sends nothing and adds the ids of
    the emails it would send to `planned`. `before_sending(db, inbox, provider, now,
    counts)` runs once for each inbox that is about to send, before its first send of the
    tick: the tick passes its reply guard (an incremental sync of that inbox, which also fixes
    where a new inbox's sync starts); when it returns False (the mailbox could not be read),
    that inbox's follow-ups wait for a later tick. An inbox with nothing to send is never
    opened."""
    if not dry_run:
        accounts.lift_expired_throttles(db, now)
    inboxes = {row["id"]: row for row in accounts.list_inboxes(db)}
    if not dry_run:
        reconcile_stale(db, inboxes, factory, counts)
    due = db.execute(
        "SELECT o.id, o.inbox_id, o.enrollment_id, e.sequence_id, c.timezone "
        "FROM outbox o LEFT JOIN enrollments e ON e.id = o.enrollment_id "
        "LEFT JOIN contacts c ON c.id = o.contact_id "
        "WHERE o.status = 'queued' AND o.next_attempt_at <= ? "
        "AND (e.id IS NULL OR e.status = 'active') "
        "ORDER BY o.is_follow_up DESC, o.scheduled_at, o.id",
        [iso(now)],
    ).fetchall()
    if not due:
        return
    hour_start = now.replace(minute=0, second=0, microsecond=0)
    hourly_left = settings.get_int(db, "sequence_hourly_send_cap") - sent_this_hour(db, now)
    daily_left = {
        i: row["effective_daily_cap"] - sent_last_24h(db, i, now) for i, row in inboxes.items()
    }
    plans = plan.Plans(db)
    batches: dict[int, list[int]] = {}
    deferrals: list[tuple[str, int]] = []
    for outbox_id, inbox_id, _enrollment_id, sequence_id, tz in due:
        inbox = inboxes.get(inbox_id)
        if inbox is None or accounts.sending_status(inbox, now) != "active":
            continue  # needs_reauth / paused by bounces / throttled: wait, untouched
        if (inbox["next_send_at"] or "") > (iso(now) or ""):
            continue  # --spacing: the inbox's next send is not due yet; stays queued in order
        if hourly_left <= 0:
            later = hour_start + timedelta(hours=1)
        elif daily_left[inbox_id] <= 0:
            later = _daily_cap_frees_at(db, inbox_id, now, inbox["effective_daily_cap"],
                                        planned=len(batches.get(inbox_id, ())))
        else:
            hourly_left -= 1
            daily_left[inbox_id] -= 1
            batches.setdefault(inbox_id, []).append(outbox_id)
            continue
        if sequence_id is not None:
            later = into_window(later, plans[sequence_id].window_for(tz))
        deferrals.append((iso(later), outbox_id))
    counts.deferred += len(deferrals)
    if dry_run:
        would = [outbox_id for i, b in batches.items()
                 for outbox_id in (b[:1] if inboxes[i]["spacing_max"] else b)]
        counts.emails_sent += len(would)
        if planned is not None:
            planned.extend(would)
        return
    if deferrals:
        with transaction(db):
            db.conn.executemany("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", deferrals)
    if not batches:
        return
    path = database_file(db)
    if len(batches) == 1 or path is None:   # an in-memory database has one connection
        for inbox_id, ids in batches.items():
            _send_batch(db, inboxes[inbox_id], ids, factory, counts, before_sending, key)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(batches))) as pool:
        results = pool.map(
            lambda item: _inbox_worker(path, inboxes[item[0]], item[1], factory,
                                       before_sending, key),
            batches.items(),
        )
        for result in results:
            counts.synced += result.synced
            counts.emails_sent += result.emails_sent
            counts.failed += result.failed
            counts.deferred += result.deferred
            counts.exited += result.exited
            counts.skipped_suppressed += result.skipped_suppressed


def _inbox_worker(
    path: Path,
    inbox: dict[str, Any],
    ids: list[int],
    factory: ProviderFactory,
    before_sending: SendingHook | None,
    key: bytes,
) -> TickCounts:
    """One inbox's batch on its own connection to the database file at `path` (the one the
    tick was given, never the configured one)."""
    counts = TickCounts()
    own = database.connect(path)
    try:
        _send_batch(own, inbox, ids, factory, counts, before_sending, key)
    finally:
        own.close()
    return counts


def send_now(
    db: Database,
    inbox: dict[str, Any],
    outbox_id: int,
    *,
    key: bytes,
    factory: ProviderFactory = default_factory,
) -> dict[str, Any]:
    """Send one queued row at once, outside a tick's caps (`inbox test`); the caller holds the
    tick lock. Returns the row as it ends up: sent, queued (a retry is due), failed, unknown."""
    counts = TickCounts()
    try:
        provider = factory(inbox)
    except AuthRevokedError as exc:
        sending.revoke(db, inbox, str(exc), counts)
    except (ProviderError, SeqctlError) as exc:
        with transaction(db):
            db.execute("UPDATE outbox SET status = 'failed', error = ? WHERE id = ?",
                       [f"cannot open the inbox: {exc}", outbox_id])
    else:
        sending.send_one(db, inbox, provider, outbox_id, plan.Plans(db), counts, key)
    row = sending.load(db, outbox_id)
    assert row is not None
    return row


def _daily_cap_frees_at(
    db: Database, inbox_id: int, now: datetime, cap: int, *, planned: int = 0
) -> datetime:
    """With a rolling 24 h cap, the next send is allowed when the oldest send counted against
    the cap is 24 h old. `planned` sends of this tick count as made now."""
    if planned >= cap:
        return now + timedelta(hours=24, seconds=1)
    rows = db.execute(
        "SELECT sent_at FROM outbox WHERE inbox_id = ? AND status = 'sent' AND sent_at > ? "
        "ORDER BY sent_at DESC LIMIT 1 OFFSET ?",
        [inbox_id, iso(now - timedelta(hours=24)), max(0, cap - 1 - planned)],
    ).fetchone()
    if rows is None:
        return now + timedelta(minutes=1)
    return from_iso(rows[0]) + timedelta(hours=24, seconds=1)


def _send_batch(
    db: Database,
    inbox: dict[str, Any],
    ids: list[int],
    factory: ProviderFactory,
    counts: TickCounts,
    before_sending: SendingHook | None,
    key: bytes,
) -> None:
    try:
        provider = factory(inbox)
    except AuthRevokedError as exc:
        sending.revoke(db, inbox, str(exc), counts)
        return
    except (ProviderError, SeqctlError) as exc:
        log.warning(f"inbox {inbox['address']}: cannot open: {exc}")
        return
    try:
        _send_batch_on(db, inbox, provider, ids, counts, before_sending, key)
    finally:
        # a provider that keeps its connections for the batch (SMTP + IMAP) closes them now
        close = getattr(provider, "close", None)
        if close is not None:
            close()


def _send_batch_on(
    db: Database,
    inbox: dict[str, Any],
    provider: Provider,
    ids: list[int],
    counts: TickCounts,
    before_sending: SendingHook | None,
    key: bytes,
) -> None:
    """Send an inbox's batch, in order, on one open provider.

    While one email is on the wire, the next one is checked and composed, and the one before
    is recorded: the bookkeeping overlaps the server's answers instead of adding to them. The
    claim rule is unchanged: an email is claimed (`sending`, committed, its enrollment and
    address checked again in the same statement) only once the email before it has its
    answer, right before its own send. So a stop (throttled, revoked, retry) leaves the rest
    queued and unclaimed. Besides sends whose outcome was already unclear (they stay `sending`
    for the next tick's reconcile, as before), at most two rows are `sending` at once: the one
    on the wire and the one before it while its answer is recorded; a crash leaves both to the
    reconcile, and an error in the batch first records the answer of the one on the wire.
    With `--spacing` nothing overlaps: each email waits for the one before it to be
    recorded."""
    budget = sending.retry_budget()     # a bad SEQCTL_RETRY_BUDGET stops before any claim
    if before_sending is not None and before_sending(db, inbox, provider, clock.now(),
                                                     counts) is False:
        held = _follow_ups(db, ids)
        if held:
            # its new mail could not be read: a reply may be waiting, so no follow-up goes
            ids = [i for i in ids if i not in held]
            counts.deferred += len(held)
            log.warning(f"inbox {inbox['address']}: its new mail could not be read; {len(held)} "
                 "follow-ups wait for a tick that can read it")
    plans = plan.Plans(db)
    overlap = len(ids) > 1 and not inbox.get("spacing_max")
    with sending.Wire(provider, overlap=overlap) as wire:
        try:
            _send_in_order(db, inbox, provider, wire, ids, plans, counts, key, budget)
        except BaseException:
            # an email may be on the wire: its answer is recorded before the error goes on
            sending.land_stranded(db, inbox, provider, wire, counts)
            raise


def _send_in_order(db: Database, inbox: dict[str, Any], provider: Provider,
                   wire: sending.Wire, ids: list[int], plans: plan.Plans, counts: TickCounts,
                   key: bytes, budget: float) -> None:
    overlap = wire.pool is not None
    flight: sending.Flight | None = None       # on the wire, its answer not yet recorded
    for index, outbox_id in enumerate(ids):
        if not overlap and index and (inbox["next_send_at"] or "") > (iso(clock.now()) or ""):
            return      # --spacing: the rest waits, queued in order, for a later tick
        ready = sending.prepare(db, outbox_id, plans, counts, key)
        if isinstance(ready, str):
            continue    # gone, held, exited, skipped or failed while being prepared
        if flight is not None:
            started: list[sending.Flight | None] = []
            outcome = sending.land(db, inbox, provider, flight, counts, budget=budget,
                                   then=lambda r=ready, i=index, into=started: into.append(
                                       wire.start(db, r, i)))
            if not _go_on(db, inbox, flight, outcome, ids, index, counts):
                return
            flight = started[0] if started else None
            if outcome == "sent":
                continue    # `then` already claimed and started `ready`, or it was gone
        flight = wire.start(db, ready, index)
        if flight is not None and not overlap:
            outcome = sending.land(db, inbox, provider, flight, counts, budget=budget)
            if not _go_on(db, inbox, flight, outcome, ids, index + 1, counts):
                return
            flight = None
    if flight is not None:
        outcome = sending.land(db, inbox, provider, flight, counts, budget=budget)
        _go_on(db, inbox, flight, outcome, ids, len(ids), counts)


def _go_on(db: Database, inbox: dict[str, Any], flight: sending.Flight, outcome: str, ids: list[int],
           rest_from: int, counts: TickCounts) -> bool:
    """After `flight`'s outcome: whether the batch goes on. `ids[rest_from:]` are the emails
    not yet claimed (the ones before were sent or settled while being prepared)."""
    if outcome == "revoked":
        return False    # an authorization problem: nothing more is tried on this inbox
    if outcome == "throttled":
        counts.deferred += len(ids) - rest_from
        return False    # the inbox's own limit: the rest stays queued, untouched
    if outcome == "retry":
        _defer_rest(db, flight.ready.row["id"], ids[rest_from:], counts)
        return False
    if outcome == "sent":
        accounts.pace_after_send(db, inbox, clock.now(), spacing_gap(inbox))
    return True


def _follow_ups(db: Database, ids: list[int]) -> set[int]:
    marks = ",".join("?" * len(ids))
    return {r[0] for r in db.execute(
        f"SELECT id FROM outbox WHERE id IN ({marks}) AND is_follow_up = 1", ids)}


def _defer_rest(db: Database, deferred_id: int, rest: list[int], counts: TickCounts) -> None:
    """A throttled or failing inbox: the rest of its batch waits as long as the row just
    deferred, instead of hammering the server (other inboxes are unaffected)."""
    if not rest:
        return
    (next_at,) = db.execute(
        "SELECT next_attempt_at FROM outbox WHERE id = ?", [deferred_id]
    ).fetchone()
    marks = ",".join("?" * len(rest))
    with transaction(db):
        moved = db.execute(
            f"UPDATE outbox SET next_attempt_at = MAX(next_attempt_at, ?) "
            f"WHERE id IN ({marks}) AND status = 'queued'",
            [next_at, *rest],
        ).rowcount
    counts.deferred += moved


def reconcile_stale(
    db: Database, inboxes: dict[int, dict[str, Any]], factory: ProviderFactory, counts: TickCounts
) -> None:
    """`sending` rows (a crashed tick, or a send whose outcome was unclear): ask the provider
    whether each went out. Found: sent. Certainly not: queued again. A provider whose lookup
    can lag (`sent_lookup_lag`) gets that long before "not found" counts as "not sent". A
    lookup that cannot tell makes the row `unknown`, for `seqctl outbox retry`."""
    stale = db.execute("SELECT id FROM outbox WHERE status = 'sending'").fetchall()
    plans = plan.Plans(db)
    providers: dict[int, Provider | None] = {}
    for (outbox_id,) in stale:
        row = sending.load(db, outbox_id)
        inbox = inboxes.get(row["inbox_id"])
        if inbox is None:
            _unknown(db, outbox_id, "its inbox was removed")
            continue
        if row["inbox_id"] not in providers:
            try:
                providers[row["inbox_id"]] = factory(inbox)
            except (AuthRevokedError, TransientError):
                providers[row["inbox_id"]] = None       # ask again on a later tick
            except (ProviderError, SeqctlError) as exc:
                _unknown(db, outbox_id, str(exc))
                continue
        provider = providers[row["inbox_id"]]
        if provider is None:
            continue
        try:
            found = provider.find_sent(row["message_id"])
        except (TransientError, AuthRevokedError):
            continue
        except Exception as exc:  # UndecidableError, ProviderError, or a provider bug
            _unknown(db, outbox_id, str(exc) or type(exc).__name__)
            continue
        if found is not None:
            step = sending.step_row(db, row["step_id"]) if row["step_id"] else None
            the_plan = plans[row["sequence_id"]] if row["sequence_id"] else None
            sending.mark_sent(
                db, row, found, from_iso(row["claimed_at"]) or clock.now(), the_plan, step, counts
            )
            continue
        lag = float(getattr(provider, "sent_lookup_lag", 0) or 0)
        claimed = from_iso(row["claimed_at"])
        if lag and claimed is not None and clock.now() - claimed < timedelta(seconds=lag):
            continue        # the provider may not show it yet: look again next tick
        with transaction(db):
            db.execute("UPDATE outbox SET status = 'queued' WHERE id = ?", [outbox_id])


def _unknown(db: Database, outbox_id: int, why: str) -> None:
    with transaction(db):
        db.execute(
            "UPDATE outbox SET status = 'unknown', error = ? WHERE id = ?",
            [f"a send was interrupted and the provider cannot tell whether it went out ({why});"
             f" check the Sent folder, then `seqctl outbox retry {outbox_id}` if it did not",
             outbox_id])
    log.warning(f"outbox {outbox_id}: send state unknown; see `seqctl outbox list`")


