"""What happens when a contact replies, bounces, unsubscribes, books or is away.

Sync (a classified inbound message) and manual logging (`seqctl log ...`) both call these, so
an exit fires the same way whichever noticed it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine import events, exits, plan, replies
from seqctl.engine.contacts import get_contact
from seqctl.engine.enroll import find_enrollment
from seqctl.engine.inbox_health import check_bounce_rate
from seqctl.engine.intent import ReplyIntent
from seqctl.engine.schedule import into_window
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database

FREE_MAIL = exits.FREE_MAIL

AUTO_REPLY_DEFAULT_PAUSE = timedelta(days=7)
AUTO_REPLY_MAX_AHEAD = timedelta(days=60)


def _live_enrollments(db: Database, contact_id: int) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT e.id, e.sequence_id, e.status, e.paused_until, s.pause_on_auto_reply, "
        "s.exit_on_company_reply, c.timezone FROM enrollments e "
        "JOIN sequences s ON s.id = e.sequence_id JOIN contacts c ON c.id = e.contact_id "
        "WHERE e.contact_id = ? AND e.status IN ('active', 'paused')",
        [contact_id],
    )
    keys = [c[0] for c in cursor.description]
    return [dict(zip(keys, r, strict=True)) for r in cursor.fetchall()]


def on_reply(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    enrollment_id: int | None = None,
    detail: dict[str, Any] | None = None,
    intent: ReplyIntent | None = None,
    outbox_id: int | None = None,
) -> list[int]:
    """A reply from the contact: recorded once (on the enrollment it answered, else the newest
    live one) with its intent, and every live enrollment of the contact in a sequence with
    `exit_on_reply` exits `reply_received`, except those a dated not-now reply pauses
    (`pause_on_not_now`); `exit_on_company_reply` sequences also exit the replier's
    colleagues (same non-free-mail domain) with `company_replied`. The intent's tasks and
    referred contact are created with it (`replies.act_on_intent`). The reply is credited to
    `outbox_id` (the email it answers, by In-Reply-To or References), else to the latest email
    sent before it arrived."""
    with transaction(db):
        kept = replies.keep_for_not_now(db, contact_id, intent, at)
        target = enrollment_id or _newest_enrollment(db, contact_id)
        full = {**(detail or {}), **replies.reply_detail(intent), "kept": kept}
        _record(db, "reply", contact_id, at, target, full, outbox_id=outbox_id)
        exited = exits.exit_contact(db, contact_id, "reply_received", at, exclude=kept,
                                    detail=detail)
        exited += _company_exits(db, contact_id, at)
        replies.act_on_intent(db, contact_id, intent, at, enrollment_id=target)
    return exited


def _company_exits(db: Database, contact_id: int, at: datetime) -> list[int]:
    """Colleagues of the replier (same non-free-mail domain) in the sequences the replier is
    enrolled in that have `exit_on_company_reply` exit with `company_replied`."""
    email = db.execute("SELECT email FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]
    domain = exits.company_domain(email)
    if domain is None:
        return []
    sequences = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT e.sequence_id FROM enrollments e JOIN sequences s ON s.id = e.sequence_id"
            " WHERE e.contact_id = ? AND s.exit_on_company_reply = 1",
            [contact_id],
        )
    ]
    exited: list[int] = []
    for sequence_id in sequences:
        colleagues = db.execute(
            "SELECT e.id FROM enrollments e JOIN contacts c ON c.id = e.contact_id "
            "WHERE e.sequence_id = ? AND e.contact_id != ? AND c.email LIKE ? ESCAPE '\\' "
            "AND e.status IN ('active', 'paused', 'failed')",
            [sequence_id, contact_id, exits.domain_pattern(domain)],
        ).fetchall()
        for (enrollment_id,) in colleagues:
            if exits.exit_enrollment(db, enrollment_id, "company_replied", at, {"replier": email}):
                exited.append(enrollment_id)
    return exited


def _newest_enrollment(db: Database, contact_id: int) -> int | None:
    row = db.execute(
        "SELECT e.id FROM enrollments e LEFT JOIN outbox o ON o.enrollment_id = e.id "
        "AND o.status = 'sent' WHERE e.contact_id = ? "
        "ORDER BY (e.status IN ('active', 'paused')) DESC, o.sent_at DESC, e.id DESC LIMIT 1",
        [contact_id],
    ).fetchone()
    return row[0] if row else None


def _record(db: Database, kind: str, contact_id: int, at: datetime, enrollment_id: int | None,
            detail: dict[str, Any] | None, *, outbox_id: int | None = None) -> None:
    """Record an outcome once: on the enrollment it answered, else the contact's newest."""
    events.record(db, kind, at, enrollment_id=enrollment_id or _newest_enrollment(db, contact_id),
                  contact_id=contact_id, outbox_id=outbox_id, detail=detail)


def _suppress_and_exit(db: Database, contact_id: int, reason: str, at: datetime,
                       detail: dict[str, Any] | None, *,
                       suppress_reason: str | None = None) -> list[int]:
    """Suppress the contact's address (with `suppress_reason`, default `reason`) and exit all
    its live enrollments with `reason`."""
    email = db.execute("SELECT email FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]
    exits.suppress(db, email, suppress_reason or reason, at)
    return exits.exit_contact(db, contact_id, reason, at, detail=detail)


def on_bounce(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    hard: bool = True,
    enrollment_id: int | None = None,
    outbox_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """A hard bounce suppresses the address and exits everything `bounced`; a soft bounce is
    recorded only. `outbox_id`: the email that bounced, when known (else the enrollment's last
    sent one), which the inbox's bounce rate counts against."""
    with transaction(db):
        _record(db, "bounce" if hard else "soft_bounce", contact_id, at, enrollment_id, detail,
                outbox_id=outbox_id)
        if not hard:
            return []
        return _suppress_and_exit(db, contact_id, "bounced", at, detail)


def on_unsubscribe(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    enrollment_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """Suppress the address and exit every live enrollment of the contact `unsubscribed`,
    whatever the sequences' flags."""
    with transaction(db):
        _record(db, "unsubscribe", contact_id, at, enrollment_id, detail)
        return _suppress_and_exit(db, contact_id, "unsubscribed", at, detail)


def on_spam_complaint(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    enrollment_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """A spam complaint (an ARF report): suppress the address (reason `spam_complaint`) and
    exit every live enrollment `unsubscribed`; stats count it as an unsubscribe."""
    with transaction(db):
        _record(db, "unsubscribe", contact_id, at, enrollment_id,
                {**(detail or {}), "via": "spam_complaint"})
        return _suppress_and_exit(db, contact_id, "unsubscribed", at, detail,
                                  suppress_reason="spam_complaint")


def on_meeting(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    enrollment_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """A meeting booked: exit `booking` where the sequence has `exit_on_booking`."""
    with transaction(db):
        _record(db, "meeting", contact_id, at, enrollment_id, detail)
        return exits.exit_contact(db, contact_id, "booking", at, detail=detail)


def auto_reply_resume_at(
    return_date: date | None, received: datetime, the_plan: plan.Plan, contact_timezone: str | None
) -> datetime:
    """When an out-of-office pause ends: the first open slot of the send window on or after
    the start of the return date (a date of today: the next open slot from now). No date, a
    date already past, or one more than 60 days away pauses 7 days (then the next open slot)."""
    window = the_plan.window_for(contact_timezone)
    if return_date is not None:
        zone = ZoneInfo(window.timezone)
        back = datetime.combine(return_date, time(0, 0), zone).astimezone(UTC)
        received_day = received.astimezone(zone).date()
        if return_date >= received_day and back <= received + AUTO_REPLY_MAX_AHEAD:
            return into_window(max(back, received), window)
    return into_window(received + AUTO_REPLY_DEFAULT_PAUSE, window)


def on_auto_reply(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    return_date: date | None = None,
    enrollment_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """Recorded, never a reply, never an exit. Active enrollments in sequences with
    `pause_on_auto_reply` pause until the return date and resume by themselves; one already
    paused by an earlier auto-reply gets the new date; one the rep paused stays as it is.
    Returns the paused enrollment ids."""
    paused: list[int] = []
    with transaction(db):
        live = _live_enrollments(db, contact_id)
        target = enrollment_id or (live[0]["id"] if live else _newest_enrollment(db, contact_id))
        events.record(
            db,
            "auto_reply",
            at,
            enrollment_id=target,
            contact_id=contact_id,
            detail={
                **(detail or {}),
                "return_date": return_date.isoformat() if return_date else None,
            },
        )
        for enrollment in live:
            by_rep = enrollment["status"] == "paused" and enrollment["paused_until"] is None
            if not enrollment["pause_on_auto_reply"] or by_rep:
                continue
            until = auto_reply_resume_at(
                return_date, at, plan.load(db, enrollment["sequence_id"]), enrollment["timezone"]
            )
            db.execute(
                "UPDATE enrollments SET status = 'paused', paused_until = ?, updated_at = ? "
                "WHERE id = ?",
                [iso(until), iso(at), enrollment["id"]],
            )
            events.record(
                db,
                "paused",
                at,
                enrollment_id=enrollment["id"],
                detail={"until": iso(until), "by": "auto_reply"},
            )
            paused.append(enrollment["id"])
    return paused


# -- manual logging (`seqctl log ...`) ------------------------------------------------------

LOGGABLE = ("reply", "meeting", "bounce", "unsubscribe")


def log_outcome(
    db: Database,
    email: str,
    event: str,
    at: datetime,
    *,
    sequence: str | None = None,
    hard: bool = True,
    intent: ReplyIntent | None = None,
) -> dict[str, Any]:
    """Fire an outcome by hand, exactly as if sync had read it. `sequence` names the
    enrollment the event is credited to in stats (default: the contact's latest); the exits
    are the same as for a synced message; a reply's `intent` acts as a synced one's does.
    Returns {"email", "event", "exited": [ids]} (and "intent" for a reply)."""
    if event not in LOGGABLE:
        raise SeqctlError(f"cannot log '{event}': one of {', '.join(LOGGABLE)}")
    contact = get_contact(db, email)
    enrollment_id = None
    if sequence is not None:
        enrollment_id = find_enrollment(db, sequence, contact["email"])["id"]
    detail = {"via": "manual"}
    if intent is not None and event != "reply":
        raise SeqctlError("an intent goes with a reply only")
    if event == "reply":
        exited = on_reply(db, contact["id"], at, enrollment_id=enrollment_id, detail=detail,
                          intent=intent)
    elif event == "meeting":
        exited = on_meeting(db, contact["id"], at, enrollment_id=enrollment_id, detail=detail)
    elif event == "unsubscribe":
        exited = on_unsubscribe(db, contact["id"], at, enrollment_id=enrollment_id, detail=detail)
    else:
        exited = on_bounce(
            db, contact["id"], at, hard=hard, enrollment_id=enrollment_id, detail=detail
        )
        if hard:
            for (inbox_id,) in db.execute(
                "SELECT DISTINCT inbox_id FROM enrollments WHERE contact_id = ? "
                "AND inbox_id IS NOT NULL",
                [contact["id"]],
            ).fetchall():
                check_bounce_rate(db, inbox_id, at)
    name = event if event != "bounce" or hard else "soft_bounce"
    result: dict[str, Any] = {"email": contact["email"], "event": name, "exited": exited}
    if event == "reply":
        result["intent"] = intent.intent if intent else "unknown"
    return result


OUTCOME_KINDS = ("reply", "meeting", "bounce", "soft_bounce", "unsubscribe", "auto_reply")


def list_outcomes(db: Database, *, email: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent outcomes (of one contact), newest first, whether sync read them or they were
    logged by hand: {"id", "event", "at", "email", "sequence", "via", "subject"}, and
    "intent" for a reply."""
    marks = ",".join("?" * len(OUTCOME_KINDS))
    sql = (f"SELECT e.id, e.kind, e.at, c.email, s.name, e.detail_json FROM events e "
           f"LEFT JOIN contacts c ON c.id = e.contact_id "
           f"LEFT JOIN sequences s ON s.id = e.sequence_id WHERE e.kind IN ({marks})")
    params: list[Any] = list(OUTCOME_KINDS)
    if email:
        sql += " AND c.email = ?"
        params.append(email.strip().lower())
    rows = []
    for event_id, kind, at, address, sequence, detail_json in db.execute(
            sql + " ORDER BY e.at DESC, e.id DESC LIMIT ?", [*params, limit]).fetchall():
        detail = json.loads(detail_json or "{}")
        rows.append({"id": event_id, "event": kind, "at": at, "email": address,
                     "sequence": sequence, "via": detail.get("via", "sync"),
                     "subject": detail.get("subject"),
                     **({"intent": detail.get("intent") or "unknown"} if kind == "reply" else {})})
    return rows
