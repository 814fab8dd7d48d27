"""One email's send: checked and composed right before it goes (`prepare`), claimed
(`claim`: `sending`, its exact bytes, committed before the provider call), handed to the
provider (`Wire`), and its answer retried within the tick's budget and recorded (`land`).
The dispatch phase (`dispatch`) runs these for each inbox's batch, within the caps.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from seqctl import clock, settings
from seqctl.clock import from_iso, iso
from seqctl.db import transaction
from seqctl.engine import accounts, events, exits, outcomes, plan
from seqctl.engine.counts import TickCounts
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

if TYPE_CHECKING:
    from sqlite_utils import Database

log = logging.getLogger("seqctl")

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



def load(db: Database, outbox_id: int) -> dict[str, Any] | None:
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



@dataclass
class Ready:
    """An email checked and composed, with the exact bytes it goes out with."""

    row: dict[str, Any]
    raw: bytes
    subject: str | None
    bcc: list[str]
    thread_id: str | None
    the_plan: plan.Plan | None
    step: dict[str, Any] | None


@dataclass
class Flight:
    """A claimed email whose send has started: `answer()` waits for the provider's answer
    (its SendResult, or the exception it raised)."""

    ready: Ready
    index: int
    answer: Callable[[], SendResult]
    landed: bool = False        # `land` has taken its answer


class Wire:
    """Starts the sends of a batch. Overlapped, each send runs on one sender thread while the
    dispatcher (which alone touches the database) prepares and records the others; the
    provider is only ever used by one thread at a time. Otherwise a send runs when its
    answer is asked for."""

    def __init__(self, provider: Provider, *, overlap: bool):
        self.provider = provider
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="seqctl-send") if overlap else None
        self.last: Flight | None = None

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def start(self, db: Database, ready: Ready, index: int) -> Flight | None:
        """Claim `ready` and start its send; None when it is no longer wanted."""
        if not claim(db, ready):
            return None
        send = _again(self.provider, ready)
        answer = send if self.pool is None else self.pool.submit(send).result
        self.last = Flight(ready, index, answer)
        return self.last

    def unanswered(self) -> Flight | None:
        """The flight started whose answer nobody has taken (the batch stopped on an error)."""
        return self.last if self.last is not None and not self.last.landed else None


def land_stranded(db: Database, inbox: dict[str, Any], provider: Provider, wire: Wire,
                  counts: TickCounts) -> None:
    """The batch stopped on an error while an email was on the wire: take and record its
    answer (no retries), so an email that went out is not left `sending`. If even that fails,
    the next tick reconciles it."""
    flight = wire.unanswered()
    if flight is None:
        return
    try:
        land(db, inbox, provider, flight, counts, budget=0.0)
    except Exception as exc:
        _log(f"outbox {flight.ready.row['id']}: its send could not be recorded ({exc}); the "
             "next tick checks the sent mail")


def send_one(
    db: Database,
    inbox: dict[str, Any],
    provider: Provider,
    outbox_id: int,
    plans: plan.Plans,
    counts: TickCounts,
    key: bytes,
) -> str:
    budget = retry_budget()
    ready = prepare(db, outbox_id, plans, counts, key)
    if isinstance(ready, str):
        return ready
    with Wire(provider, overlap=False) as wire:
        flight = wire.start(db, ready, 0)
        return land(db, inbox, provider, flight, counts, budget=budget) if flight else "gone"


def prepare(
    db: Database,
    outbox_id: int,
    plans: plan.Plans,
    counts: TickCounts,
    key: bytes,
) -> Ready | str:
    """Check a queued email right before its send and compose it; or settle it (its outcome
    as a word) when it is gone, held, exited, suppressed or cannot be composed."""
    row = load(db, outbox_id)
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
    if row["enrollment_id"] is None:
        return Ready(row, row["raw"], row["subject"], [], None, None, None)
    the_plan = plans[row["sequence_id"]]
    step = step_row(db, row["step_id"])
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
    built = composed.built
    return Ready(row, built.raw, built.subject, built.bcc, composed.thread_id, the_plan, step)


def claim(db: Database, ready: Ready) -> bool:
    """Mark the email `sending` with its exact bytes, committed before the provider call, if it
    is still wanted (its enrollment active, its address not suppressed)."""
    with transaction(db):
        return bool(db.execute(
            "UPDATE outbox SET status = 'sending', raw = ?, subject = ?, thread_id = ?, "
            "claimed_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'queued' "
            "AND " + _STILL_WANTED,
            [ready.raw, ready.subject, ready.thread_id, iso(clock.now()), ready.row["id"]],
        ).rowcount)


def land(
    db: Database,
    inbox: dict[str, Any],
    provider: Provider,
    flight: Flight,
    counts: TickCounts,
    *,
    budget: float,
    then: Callable[[], Any] | None = None,
) -> str:
    """Wait for `flight`'s answer, retry while the waits fit in `budget` seconds, and record
    what happened; returns the outcome. `then()` runs as soon as the email is known to have
    gone out, before it is recorded: the batch starts the next send there, so the recording
    overlaps it. When the contact's own address was refused, `then()` waits for the bounce to
    be recorded: the next email may be to the same address."""
    flight.landed = True
    ready, row = flight.ready, flight.ready.row
    now = clock.now()
    attempts = row["attempts"] + 1
    waited = 0.0
    attempt = flight.answer
    while True:
        try:
            result = attempt()
        except SenderLimitError as exc:
            until = throttle_end(exc, clock.now())
            delay = (until - clock.now()).total_seconds()
            if (exc.until or exc.retry_after is not None) and waited + delay <= budget \
                    and attempts < MAX_ATTEMPTS:
                time.sleep(max(0.0, delay))         # a short wait the provider asked for
                waited += delay
                attempts += 1
                if _withdrawn(db, row["id"]):
                    return "withdrawn"
                attempt = _again(provider, ready)
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
                if _withdrawn(db, row["id"]):     # an exit or an unsubscribe meanwhile
                    return "withdrawn"
                attempt = _again(provider, ready)
                continue
            with transaction(db):
                db.execute(
                    "UPDATE outbox SET status = 'queued', attempts = ?, next_attempt_at = ?, "
                    "error = ? WHERE id = ?",
                    [
                        attempts,
                        iso(clock.now() + timedelta(seconds=delay)),
                        f"will retry: {exc}",
                        row["id"],
                    ],
                )
            counts.deferred += 1
            _log(f"inbox {inbox['address']}: {exc}; retrying in {delay:.0f}s")
            return "retry"
        except UndecidableError as exc:
            # it may have gone out: the row stays `sending`, and the next tick reconciles it
            # with the provider's sent mail before anything is resent
            _note(db, row["id"], f"the send may have gone through ({exc}); checking the sent "
                                 "mail on the next tick")
            _log(f"outbox {row['id']}: {exc}; the next tick checks the sent mail")
            return "unknown"
        except AuthRevokedError as exc:
            with transaction(db):
                db.execute("UPDATE outbox SET status = 'queued' WHERE id = ?", [row["id"]])
            revoke(db, inbox, str(exc), counts)
            return "revoked"
        except ProviderError as exc:
            with transaction(db):
                db.execute(
                    "UPDATE outbox SET status = 'failed', error = ? WHERE id = ?",
                    [str(exc), row["id"]],
                )
                if row["enrollment_id"] is not None:
                    fail_enrollment(db, row["enrollment_id"], f"send failed: {exc}", now)
            counts.failed += 1
            return "failed"
        except Exception as exc:  # a provider bug: whether it went out is unknown
            _note(db, row["id"], f"unexpected {type(exc).__name__} during the send; checking "
                                 "the sent mail on the next tick")
            _log(f"outbox {row['id']}: unexpected {type(exc).__name__}: {exc}")
            return "unknown"
        break
    dead = row["to_email"].lower() in {r.lower() for r in result.refused}
    if then is not None and not dead:
        then()
    if attempts != row["attempts"] + 1:
        with transaction(db):
            db.execute("UPDATE outbox SET attempts = ? WHERE id = ?", [attempts, row["id"]])
    mark_sent(db, row, result, clock.now(), ready.the_plan, ready.step, counts)
    if dead:
        # the others (Cc, Bcc) got it; the contact's own address does not exist
        _hard_bounce(db, row, f"{row['to_email']} was refused: the address does not exist",
                     clock.now(), counts)
        if then is not None:
            then()      # the claim now sees the address suppressed
    return "sent"


def _again(provider: Provider, ready: Ready) -> Callable[[], SendResult]:
    """`ready`'s send, to run (a retry runs it on this thread: nothing else is on the wire
    meanwhile)."""
    return functools.partial(provider.send, ready.raw, message_id=ready.row["message_id"],
                             thread_id=ready.thread_id, bcc=ready.bcc)


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
            _after(db, row, plans[row["sequence_id"]], step_row(db, row["step_id"]), now, counts)
    counts.skipped_suppressed += 1


def step_row(db: Database, step_id: int) -> dict[str, Any]:
    cursor = db.execute("SELECT * FROM steps WHERE id = ?", [step_id])
    return dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))


def revoke(db: Database, inbox: dict[str, Any], reason: str, counts: TickCounts) -> None:
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



def _log(message: str) -> None:
    log.warning(message)
