"""The sync phase: read new incoming mail per inbox, classify each message, apply the outcome.

Each inbound message is stored once (`inbound`, unique per inbox and provider id) in the same
transaction as its outcome, so a crash between fetching and storing the cursor re-reads
messages harmlessly and loses none.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from seqctl import settings
from seqctl.clock import from_iso, iso
from seqctl.db import transaction
from seqctl.engine import accounts, bookings, outcomes
from seqctl.engine.inbox_health import check_bounce_rate
from seqctl.errors import SeqctlError
from seqctl.providers.base import AuthRevokedError, InboundMessage, ProviderError, TransientError
from seqctl.providers.registry import ProviderFactory, default_factory

if TYPE_CHECKING:
    from sqlite_utils import Database

    from seqctl.engine.classify import ClassifyContext, Verdict

# Notices for the person running seqctl; the CLI shows them on stderr (SPEC: the engine
# never prints).
log = logging.getLogger("seqctl")


def _context(db: Database, received_at: datetime) -> ClassifyContext:
    # the classifier (and flufl.bounce, calendars...) loads when there is mail to classify
    from seqctl.engine.classify import ClassifyContext

    # a removed inbox's address is still the rep's: mail from it is never a reply
    ours = {r[0].lower() for r in db.execute("SELECT address FROM inboxes")}
    ours |= {r[0].lower() for r in db.execute("SELECT email FROM users")}
    # the mailto that compose puts in List-Unsubscribe (address+unsubscribe@domain)
    unsubscribe = {a.replace("@", "+unsubscribe@", 1) for a in ours}
    configured = settings.get(db, "unsubscribe_mailto")
    if configured:
        unsubscribe.add(configured.lower())
    return ClassifyContext(
        our_addresses=frozenset(ours),
        unsubscribe_addresses=frozenset(unsubscribe),
        received_at=received_at,
    )


def run_sync(
    db: Database, now: datetime, *, only: str | None = None, factory: ProviderFactory | None = None,
    budget: float | None = None,
) -> int:
    """Sync every inbox (or only `only`); returns the number of new messages processed. Each
    inbox's backlog is read to the end, or for about `budget` seconds (the tick's sync
    phase), after which what is still waiting is logged and the next sync reads on."""
    factory = factory or default_factory
    if only:
        inbox = accounts.inbox(db, only)
        inboxes = [inbox]
    else:
        inboxes = accounts.list_inboxes(db)
    total = 0
    for inbox in inboxes:
        if inbox["status"] == "needs_reauth":
            continue
        try:
            provider = factory(inbox)
        except AuthRevokedError as exc:
            _mark_needs_reauth(db, inbox, exc)
            continue
        except (ProviderError, SeqctlError) as exc:
            _log(f"inbox {inbox['address']}: sync failed: {exc}")
            continue
        try:
            total += sync_inbox(db, inbox, provider, now, budget=budget)
        finally:
            close = getattr(provider, "close", None)    # a kept IMAP session (smtp inboxes)
            if close is not None:
                close()
    return total


def sync_inbox(db: Database, inbox: dict[str, Any], provider: Any, now: datetime,
               context: ClassifyContext | None = None, *, budget: float | None = None) -> int:
    """Fetch and apply one inbox's new messages and store its cursor; returns how many were
    new. A backlog is read batch after batch (the cursor stored after each) until none is
    waiting, or until `budget` seconds have gone by. The dispatcher calls it before an
    inbox's first send, so the starting point of its sync is set before any reply to our
    mail can exist."""
    started = time.monotonic()
    since = _noticed_since(db, inbox)
    total = 0
    while True:
        try:
            result = provider.fetch_new(inbox["sync_cursor"])
        except TransientError as exc:
            _log(f"inbox {inbox['address']}: sync will retry: {exc}")
            return total
        except AuthRevokedError as exc:
            _mark_needs_reauth(db, inbox, exc)
            return total
        except (ProviderError, SeqctlError) as exc:
            _log(f"inbox {inbox['address']}: sync failed: {exc}")
            return total
        if result.messages and context is None:
            context = _context(db, now)     # (the classifier loads only when mail came)
        # one transaction per batch: its messages, their outcomes and the cursor after them
        # commit together (a crash re-reads the batch; `inbound` makes that harmless)
        with transaction(db):
            for message in result.messages:
                assert context is not None
                total += process(db, inbox, message, context, now, since=since)
            db.execute(
                "UPDATE inboxes SET sync_cursor = ?, last_sync_at = ? WHERE id = ?",
                [result.cursor, iso(now), inbox["id"]],
            )
        inbox["sync_cursor"], inbox["last_sync_at"] = result.cursor, iso(now)
        if not result.waiting or not result.messages:
            break
        if budget is not None and time.monotonic() - started >= budget:
            _log(f"inbox {inbox['address']}: {result.waiting} more new messages are waiting; "
                 "the next sync reads on")
            break
    check_bounce_rate(db, inbox["id"], now)
    _check_calendar(db, inbox, now)
    return total


def _mark_needs_reauth(db: Database, inbox: dict[str, Any], exc: Exception) -> None:
    db.execute(
        "UPDATE inboxes SET status = 'needs_reauth', status_message = ? WHERE id = ?",
        [f"authorization revoked: {exc}"[:300], inbox["id"]],
    )
    _log(f"inbox {inbox['address']} needs reconnecting: {exc}")


def _check_calendar(db: Database, inbox: dict[str, Any], now: datetime) -> None:
    """Bookings made straight on the rep's calendar (inboxes connected with a calendar)."""
    if not inbox["config"].get("calendar"):
        return
    bookings.check_bookings(db, inbox, now)


def _noticed_since(db: Database, inbox: dict[str, Any]) -> datetime | None:
    """The earliest time a message found now can have arrived: the previous sync (it was not
    there then), else when the inbox was added."""
    if inbox.get("last_sync_at"):
        return from_iso(inbox["last_sync_at"])
    row = db.execute("SELECT created_at FROM inboxes WHERE id = ?", [inbox["id"]]).fetchone()
    return from_iso(row[0]) if row else None


def arrival_time(received_at: datetime | None, now: datetime, since: datetime | None) -> datetime:
    """When an outcome happened: the provider's receive time, kept between the previous sync
    and now. A clock that disagrees (a file's mtime under a simulated clock, a skewed server)
    can then never date a reply before the email it answers or after the tick that read it."""
    at = received_at or now
    if at > now:
        at = now
    if since is not None and at < since <= now:
        at = since
    return at


def process(
    db: Database,
    inbox: dict[str, Any],
    message: InboundMessage,
    context: ClassifyContext,
    now: datetime,
    *,
    since: datetime | None = None,
) -> int:
    """Classify one message and apply it; 0 when it was seen before."""
    seen = db.execute(
        "SELECT 1 FROM inbound WHERE inbox_id = ? AND provider_id = ?",
        [inbox["id"], message.provider_id],
    ).fetchone()
    if seen:
        return 0
    at = arrival_time(message.received_at, now, since)
    from seqctl.engine.classify import classify

    verdict = classify(message.raw, replace(context, received_at=at))
    with transaction(db):
        contact_id, enrollment_id = apply_verdict(db, verdict, message, at, context=context)
        db.execute(
            "INSERT OR IGNORE INTO inbound (inbox_id, provider_id, message_id, from_email, "
            "subject, verdict, contact_id, enrollment_id, detail_json, received_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                inbox["id"],
                message.provider_id,
                verdict.message_id,
                verdict.sender,
                verdict.subject[:500],
                verdict.kind if contact_id else "ignored",
                contact_id,
                enrollment_id,
                json.dumps({"reason": verdict.reason, "classified": verdict.kind}),
                iso(at),
            ],
        )
    return 1


def _contact_by_address(db: Database, address: str | None) -> int | None:
    if not address:
        return None
    address = address.strip().lower()
    row = db.execute("SELECT id FROM contacts WHERE email = ?", [address]).fetchone()
    if row:
        return row[0]
    row = db.execute("SELECT contact_id FROM contact_aliases WHERE email = ?", [address]).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class _Thread:
    """The email of ours that an inbound message answers."""

    contact_id: int
    enrollment_id: int
    outbox_id: int


def _by_thread(db: Database, verdict: Verdict, message: InboundMessage) -> _Thread | None:
    """The email this message answers (or, for a bounce, returns): by the original's
    Message-ID, then In-Reply-To, then References (newest first), then the provider's thread
    id."""
    refs = verdict.references  # In-Reply-To first, then References oldest to newest
    ids = [*verdict.original_message_ids, *refs[:1], *reversed(refs[1:])]
    for message_id in dict.fromkeys(ids):
        row = db.execute(
            "SELECT contact_id, enrollment_id, id FROM outbox WHERE message_id = ? "
            "AND enrollment_id IS NOT NULL",
            [message_id],
        ).fetchone()
        if row:
            return _Thread(*row)
    if message.thread_id:
        row = db.execute(
            "SELECT contact_id, enrollment_id, id FROM outbox WHERE thread_id = ? "
            "AND enrollment_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            [message.thread_id],
        ).fetchone()
        if row:
            return _Thread(*row)
    return None


def _is_our_own_copy(db: Database, verdict: Verdict) -> bool:
    """A copy of an email we sent (a Sent folder echoed into the inbox, a Bcc to self)."""
    return bool(verdict.message_id) and (
        db.execute("SELECT 1 FROM outbox WHERE message_id = ?", [verdict.message_id]).fetchone()
        is not None
    )


def apply_verdict(
    db: Database,
    verdict: Verdict,
    message: InboundMessage,
    at: datetime,
    *,
    context: ClassifyContext | None = None,
) -> tuple[int | None, int | None]:
    """Apply a classified message. Returns (contact_id, enrollment_id) it was attributed to;
    (None, None) when it concerns nobody we write to."""
    if verdict.kind == "ignored" or _is_our_own_copy(db, verdict):
        return None, None
    ours = {a.lower() for a in context.our_addresses} if context else set()
    detail = {"message_id": verdict.message_id, "subject": verdict.subject[:200], "via": "sync"}
    thread = _by_thread(db, verdict, message)
    if verdict.kind == "bounce":
        return _apply_bounce(db, verdict, thread, at, detail, ours)
    if verdict.kind == "spam_complaint":
        return _apply_complaint(db, verdict, thread, at, detail, ours)
    if verdict.kind == "meeting":
        # the attendees include us (the rep is organizer or guest): only other people count
        people = [a for a in [*verdict.attendees, verdict.sender] if a and a.lower() not in ours]
        contacts = list(
            dict.fromkeys(c for c in map(partial(_contact_by_address, db), people) if c)
        )
        if not contacts and thread:
            contacts = [thread.contact_id]
        for contact_id in contacts:
            on_thread = thread is not None and thread.contact_id == contact_id
            outcomes.on_meeting(
                db,
                contact_id,
                at,
                enrollment_id=thread.enrollment_id if on_thread else None,
                detail=detail,
            )
        if not contacts:
            return None, None
        return contacts[0], (thread.enrollment_id if thread else None)
    contact_id = _contact_by_address(db, verdict.sender)
    enrollment_id = None
    answered = None     # the email it answers (In-Reply-To, References, thread)
    if thread and contact_id in (None, thread.contact_id):
        answered = thread.outbox_id
        if contact_id is None and verdict.sender:
            # someone else answered in our thread: the contact's other address
            db.execute(
                "INSERT OR IGNORE INTO contact_aliases (email, contact_id) VALUES (?, ?)",
                [verdict.sender, thread.contact_id],
            )
        contact_id, enrollment_id = thread.contact_id, thread.enrollment_id
    if contact_id is None:
        return None, None
    if verdict.kind == "auto_reply":
        outcomes.on_auto_reply(
            db,
            contact_id,
            at,
            return_date=verdict.return_date,
            enrollment_id=enrollment_id,
            detail=detail,
        )
    elif verdict.kind == "unsubscribe":
        outcomes.on_unsubscribe(db, contact_id, at, enrollment_id=enrollment_id, detail=detail)
    else:
        outcomes.on_reply(db, contact_id, at, enrollment_id=enrollment_id, detail=detail,
                          intent=verdict.intent, outbox_id=answered)
    return contact_id, enrollment_id


def _apply_bounce(
    db: Database,
    verdict: Verdict,
    thread: _Thread | None,
    at: datetime,
    detail: dict[str, Any],
    ours: set[str],
) -> tuple[int | None, int | None]:
    """A bounce concerns the failed recipients the notice names, else the email it returns."""
    contacts = _named_contacts(db, verdict.bounced_recipients, ours)
    if not contacts and thread:
        contacts = [thread.contact_id]

    def bounce(contact_id: int, on_thread: bool) -> None:
        outcomes.on_bounce(db, contact_id, at, hard=verdict.hard,
                           enrollment_id=thread.enrollment_id if on_thread else None,
                           outbox_id=thread.outbox_id if on_thread else None, detail=detail)

    return _for_each(contacts, thread, bounce)


def _apply_complaint(
    db: Database,
    verdict: Verdict,
    thread: _Thread | None,
    at: datetime,
    detail: dict[str, Any],
    ours: set[str],
) -> tuple[int | None, int | None]:
    """A spam complaint concerns the recipient of the email it reports (found by its
    Message-ID), else the complainer it names."""
    contacts = ([thread.contact_id] if thread is not None
                else _named_contacts(db, verdict.complained_recipients, ours))

    def complain(contact_id: int, on_thread: bool) -> None:
        outcomes.on_spam_complaint(db, contact_id, at,
                                   enrollment_id=thread.enrollment_id if on_thread else None,
                                   detail=detail)

    return _for_each(contacts, thread, complain)


def _named_contacts(db: Database, addresses: list[str], ours: set[str]) -> list[int]:
    named = [a for a in addresses if a.lower() not in ours]
    return list(dict.fromkeys(c for c in map(partial(_contact_by_address, db), named) if c))


def _for_each(contacts: list[int], thread: _Thread | None,
              apply: Callable[[int, bool], None]) -> tuple[int | None, int | None]:
    """Apply an outcome to each contact (whether it is the thread's), and say whom the
    message was attributed to."""
    for contact_id in contacts:
        apply(contact_id, thread is not None and thread.contact_id == contact_id)
    if not contacts:
        return None, None
    return contacts[0], (thread.enrollment_id if thread else None)


def _log(message: str) -> None:
    log.warning(message)
