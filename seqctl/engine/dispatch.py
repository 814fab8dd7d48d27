"""The dispatch phase: send queued emails whose time has come, within the caps.

Exactly-once intent: a row is claimed (`sending`, with its exact bytes) and committed before
the provider call, and marked `sent` after. Only the tick-lock holder dispatches, so a
`sending` row found at the start of a tick is stale: it is reconciled with the provider's sent
mail by Message-ID before anything is retried; if the provider cannot tell, the row becomes
`unknown` and waits for `seqctl outbox retry`.

Inboxes dispatch concurrently (one thread and one connection each), each inbox sequentially,
so a slow or throttled inbox never holds up the others.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqctl import clock, settings
from seqctl import db as database
from seqctl.clock import from_iso, iso
from seqctl.db import database_file, transaction
from seqctl.engine import accounts, events, exits, outcomes, plan
from seqctl.engine.counts import TickCounts
from seqctl.engine.schedule import into_window
from seqctl.engine.tick import advance, fail_enrollment
from seqctl.errors import SeqctlError
from seqctl.providers.base import (
    AuthRevokedError,
    Provider,
    ProviderError,
    RecipientDeferredError,
    RecipientRejectedError,
    SenderLimitError,
    SendResult,
    TransientError,
    UndecidableError,
)
from seqctl.providers.registry import ProviderFactory, default_factory

if TYPE_CHECKING:
    from sqlite_utils import Database

# Notices for the person running seqctl; the CLI shows them on stderr (SPEC: the engine
# never prints).
log = logging.getLogger("seqctl")

# (db, inbox row, its open provider, now, the counts to add to): see `run_dispatch`
SendingHook = Callable[["Database", dict[str, Any], Provider, datetime, TickCounts], Any]

# Retries inside one tick wait at most this long in all for one message; longer waits are left
# to a later tick through next_attempt_at. SEQCTL_RETRY_BUDGET (seconds) overrides it.
IN_TICK_RETRY_BUDGET = 8.0
MAX_ATTEMPTS = 8
# A sender limit without a time of its own: a rate limit lasts an hour, a daily quota a day.
RATE_LIMIT_PAUSE = timedelta(hours=1)
DAILY_QUOTA_PAUSE = timedelta(hours=24)
# A recipient's temporary refusal (mailbox full, greylisting) is retried like an MTA queue
# does: 5 min, 10, 20 ... at most 6 h apart; after `max_send_attempts` or this long since the
# first refusal it is a soft bounce.
RECIPIENT_RETRY_FIRST = 300.0
RECIPIENT_RETRY_MAX = 6 * 3600.0
RECIPIENT_GIVE_UP = timedelta(hours=72)


def retry_budget() -> float:
    """Seconds one message may spend waiting on retries inside a tick."""
    value = os.environ.get("SEQCTL_RETRY_BUDGET")
    if not value:
        return IN_TICK_RETRY_BUDGET
    try:
        return max(0.0, float(value))
    except ValueError:
        raise SeqctlError(f"SEQCTL_RETRY_BUDGET must be a number of seconds, not '{value}'") from None


def backoff(attempts: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt `attempts + 1`: Retry-After when the server says, else
    exponential (2, 4, 8 ... capped at 15 min) with jitter."""
    if retry_after is not None:
        return max(0.0, retry_after)
    base = min(900.0, 2.0 ** max(1, attempts))
    return base * (0.5 + random.random() / 2)


def recipient_backoff(attempts: int) -> float:
    """Seconds before retrying a recipient that refused for now, after `attempts` tries."""
    return min(RECIPIENT_RETRY_MAX, RECIPIENT_RETRY_FIRST * 2.0 ** max(0, attempts - 1))


def throttle_end(exc: SenderLimitError, now: datetime) -> datetime:
    """Until when a sender limit holds the inbox: the time the provider named, else its
    Retry-After, else an hour (rate) or a day (daily quota)."""
    if exc.until is not None and exc.until > now:
        return exc.until
    if exc.retry_after is not None:
        return now + timedelta(seconds=exc.retry_after)
    return now + (DAILY_QUOTA_PAUSE if exc.daily else RATE_LIMIT_PAUSE)


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
) -> None:
    """Send the due queued emails within the caps. `before_sending(db, inbox, provider, now,
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
        counts.emails_sent += sum(1 if inboxes[i]["spacing_max"] else len(b)
                                  for i, b in batches.items())
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
        _revoke(db, inbox, str(exc), counts)
    except (ProviderError, SeqctlError) as exc:
        with transaction(db):
            db.execute("UPDATE outbox SET status = 'failed', error = ? WHERE id = ?",
                       [f"cannot open the inbox: {exc}", outbox_id])
    else:
        _send_one(db, inbox, provider, outbox_id, plan.Plans(db), counts, key)
    row = _load(db, outbox_id)
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


def _load(db: Database, outbox_id: int) -> dict[str, Any] | None:
    cursor = db.execute(
        "SELECT o.*, e.status AS enrollment_status, e.sequence_id, e.waiting_outbox_id, "
        "e.enrolled_at, "
        "c.timezone AS contact_timezone, "
        "(SELECT 1 FROM suppressions s WHERE s.email = o.to_email) AS suppressed "
        "FROM outbox o LEFT JOIN enrollments e ON e.id = o.enrollment_id "
        "LEFT JOIN contacts c ON c.id = o.contact_id WHERE o.id = ?",
        [outbox_id],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([c[0] for c in cursor.description], row, strict=True))


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
        _revoke(db, inbox, str(exc), counts)
        return
    except (ProviderError, SeqctlError) as exc:
        _log(f"inbox {inbox['address']}: cannot open: {exc}")
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
    """Send an inbox's batch, in order, on one open provider."""
    if before_sending is not None and before_sending(db, inbox, provider, clock.now(),
                                                     counts) is False:
        held = _follow_ups(db, ids)
        if held:
            # its new mail could not be read: a reply may be waiting, so no follow-up goes
            ids = [i for i in ids if i not in held]
            counts.deferred += len(held)
            _log(f"inbox {inbox['address']}: its new mail could not be read; {len(held)} "
                 "follow-ups wait for a tick that can read it")
    plans = plan.Plans(db)
    for index, outbox_id in enumerate(ids):
        if index and (inbox["next_send_at"] or "") > (iso(clock.now()) or ""):
            return      # --spacing: the rest waits, queued in order, for a later tick
        outcome = _send_one(db, inbox, provider, outbox_id, plans, counts, key)
        if outcome == "revoked":
            return      # an authorization problem: nothing more is tried on this inbox
        if outcome == "throttled":
            counts.deferred += len(ids) - index - 1
            return      # the inbox's own limit: the rest stays queued, untouched
        if outcome == "retry":
            _defer_rest(db, outbox_id, ids[index + 1 :], counts)
            return
        if outcome == "sent":
            accounts.pace_after_send(db, inbox, clock.now(), spacing_gap(inbox))


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


def _send_one(
    db: Database,
    inbox: dict[str, Any],
    provider: Provider,
    outbox_id: int,
    plans: plan.Plans,
    counts: TickCounts,
    key: bytes,
) -> str:
    row = _load(db, outbox_id)
    if row is None or row["status"] != "queued":
        return "gone"
    now = clock.now()
    # re-check suppression and exits right before the send
    if row["enrollment_id"] is not None and row["enrollment_status"] != "active":
        return "held"
    if row["enrollment_id"] is not None:
        reason = exits.backstop_reason(db, row)
        if reason:
            exits.exit_enrollment(db, row["enrollment_id"], reason, now, {"by": "backstop"})
            counts.exited += 1
            return "exited"
    if row["suppressed"]:
        _skip_suppressed(db, row, plans, now, counts)
        return "skipped"
    if row["enrollment_id"] is not None:
        the_plan = plans[row["sequence_id"]]
        step = _step(db, row["step_id"])
        # compose (and Jinja2 with it) loads only when an email goes out
        from seqctl.engine import compose

        try:
            composed = compose.compose(db, row["enrollment_id"], step, date=now, key=key,
                                       message_id=row["message_id"])
        except SeqctlError as exc:
            with transaction(db):
                db.execute(
                    "UPDATE outbox SET status = 'failed', error = ? WHERE id = ?",
                    [str(exc), outbox_id],
                )
                fail_enrollment(db, row["enrollment_id"], str(exc), now)
            counts.failed += 1
            return "failed"
        raw, subject, bcc = composed.built.raw, composed.built.subject, composed.built.bcc
        thread_id = composed.thread_id
    else:
        the_plan, step = None, None
        raw, subject, bcc, thread_id = row["raw"], row["subject"], [], None
    with transaction(db):
        claimed = db.execute(
            "UPDATE outbox SET status = 'sending', raw = ?, subject = ?, thread_id = ?, "
            "claimed_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'queued' "
            "AND " + _STILL_WANTED,
            [raw, subject, thread_id, iso(now), outbox_id],
        ).rowcount
    if not claimed:
        return "gone"
    attempts = row["attempts"] + 1
    waited = 0.0
    budget = retry_budget()
    while True:
        try:
            result = provider.send(raw, message_id=row["message_id"], thread_id=thread_id, bcc=bcc)
        except SenderLimitError as exc:
            until = throttle_end(exc, clock.now())
            delay = (until - clock.now()).total_seconds()
            if (exc.until or exc.retry_after is not None) and waited + delay <= budget \
                    and attempts < MAX_ATTEMPTS:
                time.sleep(max(0.0, delay))         # a short wait the provider asked for
                waited += delay
                attempts += 1
                if _withdrawn(db, outbox_id):
                    return "withdrawn"
                continue
            _throttled(db, inbox, row, exc, until)
            counts.deferred += 1
            return "throttled"
        except RecipientDeferredError as exc:
            return _recipient_deferred(db, row, attempts, exc, now, counts)
        except RecipientRejectedError as exc:
            _recipient_rejected(db, row, exc, now, counts)
            return "bounced"
        except TransientError as exc:
            delay = backoff(attempts, exc.retry_after)
            if waited + delay <= budget and attempts < MAX_ATTEMPTS:
                time.sleep(delay)
                waited += delay
                attempts += 1
                if _withdrawn(db, outbox_id):     # an exit or an unsubscribe meanwhile
                    return "withdrawn"
                continue
            with transaction(db):
                db.execute(
                    "UPDATE outbox SET status = 'queued', attempts = ?, next_attempt_at = ?, "
                    "error = ? WHERE id = ?",
                    [
                        attempts,
                        iso(clock.now() + timedelta(seconds=delay)),
                        f"will retry: {exc}",
                        outbox_id,
                    ],
                )
            counts.deferred += 1
            _log(f"inbox {inbox['address']}: {exc}; retrying in {delay:.0f}s")
            return "retry"
        except UndecidableError as exc:
            # it may have gone out: the row stays `sending`, and the next tick reconciles it
            # with the provider's sent mail before anything is resent
            _note(db, outbox_id, f"the send may have gone through ({exc}); checking the sent "
                                 "mail on the next tick")
            _log(f"outbox {outbox_id}: {exc}; the next tick checks the sent mail")
            return "unknown"
        except AuthRevokedError as exc:
            with transaction(db):
                db.execute("UPDATE outbox SET status = 'queued' WHERE id = ?", [outbox_id])
            _revoke(db, inbox, str(exc), counts)
            return "revoked"
        except ProviderError as exc:
            with transaction(db):
                db.execute(
                    "UPDATE outbox SET status = 'failed', error = ? WHERE id = ?",
                    [str(exc), outbox_id],
                )
                if row["enrollment_id"] is not None:
                    fail_enrollment(db, row["enrollment_id"], f"send failed: {exc}", now)
            counts.failed += 1
            return "failed"
        except Exception as exc:  # a provider bug: whether it went out is unknown
            _note(db, outbox_id, f"unexpected {type(exc).__name__} during the send; checking "
                                 "the sent mail on the next tick")
            _log(f"outbox {outbox_id}: unexpected {type(exc).__name__}: {exc}")
            return "unknown"
        break
    if attempts != row["attempts"] + 1:
        with transaction(db):
            db.execute("UPDATE outbox SET attempts = ? WHERE id = ?", [attempts, outbox_id])
    mark_sent(db, row, result, clock.now(), the_plan, step, counts)
    if row["to_email"].lower() in {r.lower() for r in result.refused}:
        # the others (Cc, Bcc) got it; the contact's own address does not exist
        _hard_bounce(db, row, f"{row['to_email']} was refused: the address does not exist",
                     clock.now(), counts)
    return "sent"


def _throttled(db: Database, inbox: dict[str, Any], row: dict[str, Any],
               exc: SenderLimitError, until: datetime) -> None:
    """The inbox's own limit: the email goes back to the queue as it was (the attempt is not
    its fault), and the inbox waits until `until`."""
    with transaction(db):
        db.execute("UPDATE outbox SET status = 'queued', attempts = ?, error = ? WHERE id = ?",
                   [row["attempts"], f"inbox throttled until {iso(until)}: {exc}", row["id"]])
        accounts.throttle_inbox(db, inbox["id"], until, str(exc))
    inbox["status"], inbox["status_until"] = "throttled", iso(until)
    _log(f"inbox {inbox['address']}: throttled until {iso(until)}: {exc}")


def _recipient_deferred(db: Database, row: dict[str, Any], attempts: int,
                        exc: RecipientDeferredError, now: datetime, counts: TickCounts) -> str:
    """Only this email waits; the inbox's others go on. Too many tries, or 72 hours of them,
    make it a soft bounce: the email and its enrollment fail with the server's words."""
    since = from_iso(row["deferred_since"]) or now
    if attempts >= settings.get_int(db, "max_send_attempts") or now - since >= RECIPIENT_GIVE_UP:
        message = (f"soft bounce after {attempts} attempts over "
                   f"{_hours(now - since)}: {exc}")
        with transaction(db):
            db.execute("UPDATE outbox SET status = 'failed', error = ? WHERE id = ?",
                       [message, row["id"]])
            if row["enrollment_id"] is not None:
                fail_enrollment(db, row["enrollment_id"], message, now)
            if row["contact_id"] is not None:
                outcomes.on_bounce(db, row["contact_id"], now, hard=False,
                                   enrollment_id=row["enrollment_id"], outbox_id=row["id"],
                                   detail={"reason": str(exc)[:300], "at": "send"})
        counts.failed += 1
        return "failed"
    next_at = now + timedelta(seconds=recipient_backoff(attempts))
    with transaction(db):
        db.execute(
            "UPDATE outbox SET status = 'queued', next_attempt_at = ?, error = ?, "
            "deferred_since = COALESCE(deferred_since, ?) WHERE id = ?",
            [iso(next_at), f"will retry: {exc}", iso(since), row["id"]])
    counts.deferred += 1
    return "waiting"


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 1 else f"{delta.total_seconds() / 60:.0f} min"


def _recipient_rejected(db: Database, row: dict[str, Any], exc: RecipientRejectedError,
                        now: datetime, counts: TickCounts) -> None:
    """The address does not exist: a hard bounce, exactly as a bounce notice would be."""
    with transaction(db):
        db.execute("UPDATE outbox SET status = 'failed', error = ? WHERE id = ?",
                   [f"hard bounce: {exc}", row["id"]])
        _hard_bounce(db, row, str(exc), now, counts)


def _hard_bounce(db: Database, row: dict[str, Any], reason: str, now: datetime,
                 counts: TickCounts) -> None:
    if row["contact_id"] is None:
        return
    exited = outcomes.on_bounce(db, row["contact_id"], now, hard=True,
                                enrollment_id=row["enrollment_id"], outbox_id=row["id"],
                                detail={"reason": reason[:300], "at": "send"})
    counts.exited += len(exited)


# An email may still go out: its enrollment (if any) is active and its address not suppressed.
_STILL_WANTED = (
    "(outbox.enrollment_id IS NULL OR EXISTS (SELECT 1 FROM enrollments e "
    "WHERE e.id = outbox.enrollment_id AND e.status = 'active')) "
    "AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = outbox.to_email)"
)


def _withdrawn(db: Database, outbox_id: int) -> bool:
    """Between two attempts of one send, the contact exited or was suppressed: the claimed row
    goes back (cancelled, or queued for the suppression skip) and is not sent."""
    if db.execute(f"SELECT 1 FROM outbox WHERE id = ? AND {_STILL_WANTED}",
                  [outbox_id]).fetchone():
        return False
    with transaction(db):
        db.execute(
            "UPDATE outbox SET status = CASE WHEN enrollment_id IS NOT NULL AND EXISTS "
            "(SELECT 1 FROM enrollments e WHERE e.id = outbox.enrollment_id "
            "AND e.status = 'exited') THEN 'cancelled' ELSE 'queued' END WHERE id = ?",
            [outbox_id])
    return True


def _note(db: Database, outbox_id: int, message: str) -> None:
    with transaction(db):
        db.execute("UPDATE outbox SET error = ? WHERE id = ?", [message, outbox_id])


def mark_sent(
    db: Database,
    row: dict[str, Any],
    result: SendResult,
    sent_at: datetime,
    the_plan: plan.Plan | None,
    step: dict[str, Any] | None,
    counts: TickCounts,
) -> None:
    """Record a send and start the clock of the enrollment's next step from it."""
    with transaction(db):
        db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, provider_message_id = ?, "
            "thread_id = COALESCE(?, thread_id), error = NULL WHERE id = ?",
            [iso(sent_at), result.provider_message_id, result.thread_id, row["id"]],
        )
        events.record(
            db,
            "sent",
            sent_at,
            enrollment_id=row["enrollment_id"],
            outbox_id=row["id"],
            step_id=row["step_id"],
            contact_id=row["contact_id"],
            inbox_id=row["inbox_id"],
        )
        counts.emails_sent += 1
        if the_plan is not None and step is not None:
            _after(db, row, the_plan, step, sent_at, counts)


def _after(
    db: Database,
    row: dict[str, Any],
    the_plan: plan.Plan,
    step: dict[str, Any],
    at: datetime,
    counts: TickCounts,
) -> None:
    """The email of `step` is done (sent or skipped): the next step counts from `at`."""
    current = db.execute(
        "SELECT waiting_outbox_id, status FROM enrollments WHERE id = ?", [row["enrollment_id"]]
    ).fetchone()
    if current is None or current[0] != row["id"] or current[1] == "exited":
        return
    advance(db, row["enrollment_id"], the_plan, step, at, row["contact_timezone"], counts)


def _skip_suppressed(
    db: Database, row: dict[str, Any], plans: plan.Plans, now: datetime, counts: TickCounts
) -> None:
    with transaction(db):
        db.execute(
            "UPDATE outbox SET status = 'skipped', error = 'suppressed' WHERE id = ?", [row["id"]]
        )
        if row["enrollment_id"] is not None:
            events.record(
                db,
                "skipped",
                now,
                enrollment_id=row["enrollment_id"],
                step_id=row["step_id"],
                detail={"reason": "suppressed"},
            )
            _after(db, row, plans[row["sequence_id"]], _step(db, row["step_id"]), now, counts)
    counts.skipped_suppressed += 1


def _step(db: Database, step_id: int) -> dict[str, Any]:
    cursor = db.execute("SELECT * FROM steps WHERE id = ?", [step_id])
    return dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))


def _revoke(db: Database, inbox: dict[str, Any], reason: str, counts: TickCounts) -> None:
    """The grant is gone: the inbox needs reconnecting and its due enrollments fail with a
    message that says how."""
    now = clock.now()
    message = accounts.inbox_failure_message(inbox)
    with transaction(db):
        db.execute(
            "UPDATE inboxes SET status = 'needs_reauth', status_message = ? WHERE id = ?",
            [f"authorization revoked: {reason}"[:300], inbox["id"]],
        )
        waiting = db.execute(
            "SELECT DISTINCT enrollment_id FROM outbox WHERE inbox_id = ? AND "
            "status IN ('queued', 'sending') AND enrollment_id IS NOT NULL "
            "AND next_attempt_at <= ?",
            [inbox["id"], iso(now)],
        ).fetchall()
        for (enrollment_id,) in waiting:
            fail_enrollment(db, enrollment_id, message, now)
            counts.failed += 1
        db.execute(
            "UPDATE outbox SET status = 'failed', error = ? WHERE inbox_id = ? AND "
            "status = 'queued' AND next_attempt_at <= ?",
            [message, inbox["id"], iso(now)],
        )
    _log(f"inbox {inbox['address']}: {message}")


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
        row = _load(db, outbox_id)
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
            step = _step(db, row["step_id"]) if row["step_id"] else None
            the_plan = plans[row["sequence_id"]] if row["sequence_id"] else None
            mark_sent(
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
    _log(f"outbox {outbox_id}: send state unknown; see `seqctl outbox list`")


def _log(message: str) -> None:
    log.warning(message)
