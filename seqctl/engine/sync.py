"""The sync phase: read new incoming mail per inbox, classify each message, apply the outcome.

Each inbound message is stored once (`inbound`, unique per inbox and provider id) in the same
transaction as its outcome, so a crash between fetching and storing the cursor re-reads
messages harmlessly and loses none.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl import settings
from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine import accounts, outcomes
from seqctl.engine.classify import ClassifyContext, Verdict, classify
from seqctl.providers.base import AuthRevokedError, InboundMessage, ProviderError, TransientError


def _context(db: Database, received_at: datetime) -> ClassifyContext:
    ours = {r[0] for r in db.execute("SELECT address FROM inboxes WHERE status != 'removed'")}
    ours |= {r[0] for r in db.execute("SELECT email FROM users")}
    unsubscribe = {a.replace("@", "+unsubscribe@", 1) for a in ours}
    configured = settings.get(db, "unsubscribe_mailto")
    if configured:
        unsubscribe.add(configured.lower())
    return ClassifyContext(
        our_addresses=frozenset(ours),
        unsubscribe_addresses=frozenset(unsubscribe),
        received_at=received_at,
    )


def run_sync(db: Database, now: datetime, *, only: str | None = None, factory=None) -> int:
    """Sync every inbox (or only `only`); returns the number of new messages processed."""
    from seqctl.engine.dispatch import default_factory

    factory = factory or default_factory
    inboxes = accounts.list_inboxes(db)
    if only:
        inboxes = [accounts.inbox(db, only)]
    context = _context(db, now)
    total = 0
    for inbox in inboxes:
        if inbox["status"] == "needs_reauth":
            continue
        try:
            provider = factory(inbox)
            result = provider.fetch_new(inbox["sync_cursor"])
        except TransientError as exc:
            _log(f"inbox {inbox['address']}: sync will retry: {exc}")
            continue
        except AuthRevokedError as exc:
            db.execute(
                "UPDATE inboxes SET status = 'needs_reauth', status_message = ? WHERE id = ?",
                [f"authorization revoked: {exc}"[:300], inbox["id"]],
            )
            _log(f"inbox {inbox['address']} needs reconnecting: {exc}")
            continue
        except ProviderError as exc:
            _log(f"inbox {inbox['address']}: sync failed: {exc}")
            continue
        for message in result.messages:
            total += process(db, inbox, message, context, now)
        db.execute(
            "UPDATE inboxes SET sync_cursor = ?, last_sync_at = ? WHERE id = ?",
            [result.cursor, iso(now), inbox["id"]],
        )
        check_bounce_rate(db, inbox["id"], now)
    return total


def process(
    db: Database,
    inbox: dict[str, Any],
    message: InboundMessage,
    context: ClassifyContext,
    now: datetime,
) -> int:
    """Classify one message and apply it; 0 when it was seen before."""
    seen = db.execute(
        "SELECT 1 FROM inbound WHERE inbox_id = ? AND provider_id = ?",
        [inbox["id"], message.provider_id],
    ).fetchone()
    if seen:
        return 0
    verdict = classify(message.raw, context)
    at = message.received_at or now
    with transaction(db):
        contact_id, enrollment_id = apply_verdict(db, verdict, message, at)
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
    row = db.execute("SELECT id FROM contacts WHERE email = ?", [address]).fetchone()
    if row:
        return row[0]
    row = db.execute("SELECT contact_id FROM contact_aliases WHERE email = ?", [address]).fetchone()
    return row[0] if row else None


def _by_thread(db: Database, verdict: Verdict, message: InboundMessage) -> tuple[int, int] | None:
    """(contact_id, enrollment_id) of the email this message answers, by In-Reply-To /
    References, then by the provider's thread id."""
    ids = list(reversed(verdict.references)) + list(verdict.original_message_ids)
    for message_id in ids:
        row = db.execute(
            "SELECT contact_id, enrollment_id FROM outbox WHERE message_id = ?", [message_id]
        ).fetchone()
        if row and row[1] is not None:
            return row[0], row[1]
    if message.thread_id:
        row = db.execute(
            "SELECT contact_id, enrollment_id FROM outbox WHERE thread_id = ? "
            "AND enrollment_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            [message.thread_id],
        ).fetchone()
        if row:
            return row[0], row[1]
    return None


def apply_verdict(
    db: Database, verdict: Verdict, message: InboundMessage, at: datetime
) -> tuple[int | None, int | None]:
    """Apply a classified message. Returns (contact_id, enrollment_id) it was attributed to."""
    detail = {"message_id": verdict.message_id, "subject": verdict.subject[:200], "via": "sync"}
    threaded = _by_thread(db, verdict, message)
    if verdict.kind == "bounce":
        contacts = [
            c for c in (_contact_by_address(db, r) for r in verdict.bounced_recipients) if c
        ]
        if not contacts and threaded:
            contacts = [threaded[0]]
        for contact_id in dict.fromkeys(contacts):
            outcomes.on_bounce(
                db,
                contact_id,
                at,
                hard=verdict.hard,
                enrollment_id=threaded[1] if threaded and threaded[0] == contact_id else None,
                detail=detail,
            )
        return (contacts[0] if contacts else None), (threaded[1] if threaded else None)
    if verdict.kind == "meeting":
        contacts = [c for c in (_contact_by_address(db, a) for a in verdict.attendees) if c]
        for contact_id in dict.fromkeys(contacts):
            outcomes.on_meeting(db, contact_id, at, detail=detail)
        return (contacts[0] if contacts else None), None
    if verdict.kind == "ignored":
        return None, None
    contact_id = _contact_by_address(db, verdict.sender)
    enrollment_id = None
    if threaded and (contact_id is None or contact_id == threaded[0]):
        contact_id, enrollment_id = threaded
        if verdict.sender and _contact_by_address(db, verdict.sender) is None:
            db.execute(
                "INSERT OR IGNORE INTO contact_aliases (email, contact_id) VALUES (?, ?)",
                [verdict.sender, contact_id],
            )
    if contact_id is None:
        return None, None
    if verdict.kind == "auto_reply":
        outcomes.on_auto_reply(db, contact_id, at, return_date=verdict.return_date, detail=detail)
    elif verdict.kind == "unsubscribe":
        outcomes.on_unsubscribe(db, contact_id, at, enrollment_id=enrollment_id, detail=detail)
    else:
        outcomes.on_reply(db, contact_id, at, enrollment_id=enrollment_id, detail=detail)
    return contact_id, enrollment_id


def check_bounce_rate(db: Database, inbox_id: int, now: datetime) -> bool:
    """Pause an inbox whose hard bounces exceed `bounce_pause_threshold` of its last 100 sends
    (judged once it has at least 20). Returns True when it is (now) paused."""
    threshold = settings.get_float(db, "bounce_pause_threshold")
    recent = [
        r[0]
        for r in db.execute(
            "SELECT id FROM outbox WHERE inbox_id = ? AND status = 'sent' "
            "ORDER BY sent_at DESC LIMIT 100",
            [inbox_id],
        )
    ]
    if len(recent) < 20:
        return False
    marks = ",".join("?" * len(recent))
    bounces = db.execute(
        f"SELECT COUNT(DISTINCT outbox_id) FROM events WHERE kind = 'bounce' "
        f"AND outbox_id IN ({marks})",
        recent,
    ).fetchone()[0]
    rate = bounces / len(recent)
    if rate <= threshold:
        return False
    db.execute(
        "UPDATE inboxes SET status = 'paused_bounces', status_message = ? "
        "WHERE id = ? AND status = 'active'",
        [
            f"{bounces} hard bounces in the last {len(recent)} sends ({rate:.0%} > "
            f"{threshold:.0%}); clean the list, then `seqctl inbox resume ADDRESS`",
            inbox_id,
        ],
    )
    return True


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
