"""What happens when a contact replies, bounces, unsubscribes, books or is away.

Sync (a classified inbound message) and manual logging (`seqctl log ...`) both call these, so
an exit fires the same way whichever noticed it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine import events, exits, plan
from seqctl.engine.schedule import into_window

FREE_MAIL = frozenset(
    """
gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.fr yahoo.de hotmail.com hotmail.co.uk
hotmail.fr hotmail.de outlook.com live.com msn.com icloud.com me.com mac.com aol.com gmx.de
gmx.net gmx.com web.de t-online.de proton.me protonmail.com pm.me yandex.ru yandex.com mail.ru
qq.com 163.com 126.com zoho.com fastmail.com hey.com orange.fr free.fr laposte.net wanadoo.fr
libero.it btinternet.com comcast.net verizon.net att.net
""".split()
)

AUTO_REPLY_DEFAULT_PAUSE = timedelta(days=7)
AUTO_REPLY_MAX_AHEAD = timedelta(days=60)


def _live_enrollments(db: Database, contact_id: int) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT e.id, e.sequence_id, s.pause_on_auto_reply, s.exit_on_company_reply, "
        "c.timezone FROM enrollments e JOIN sequences s ON s.id = e.sequence_id "
        "JOIN contacts c ON c.id = e.contact_id "
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
) -> list[int]:
    """A reply from the contact: recorded once (on the enrollment it answered, else the newest
    live one), and every live enrollment of the contact in a sequence with `exit_on_reply`
    exits `reply_received`; `exit_on_company_reply` sequences also exit the replier's
    colleagues (same non-free-mail domain) with `company_replied`."""
    with transaction(db):
        target = enrollment_id or _newest_enrollment(db, contact_id)
        events.record(db, "reply", at, enrollment_id=target, contact_id=contact_id, detail=detail)
        exited = exits.exit_contact(db, contact_id, "reply_received", at, detail=detail)
        exited += _company_exits(db, contact_id, at)
    return exited


def _company_exits(db: Database, contact_id: int, at: datetime) -> list[int]:
    email = db.execute("SELECT email FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]
    domain = email.rsplit("@", 1)[-1]
    if domain in FREE_MAIL:
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
            [sequence_id, contact_id, "%@" + domain.replace("%", "\\%").replace("_", "\\_")],
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


def on_bounce(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    hard: bool = True,
    enrollment_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """A hard bounce suppresses the address and exits everything `bounced`; a soft bounce is
    recorded only."""
    with transaction(db):
        target = enrollment_id or _newest_enrollment(db, contact_id)
        events.record(
            db,
            "bounce" if hard else "soft_bounce",
            at,
            enrollment_id=target,
            contact_id=contact_id,
            detail=detail,
        )
        if not hard:
            return []
        email = db.execute("SELECT email FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]
        exits.suppress(db, email, "bounced", at)
        return exits.exit_contact(db, contact_id, "bounced", at, detail=detail)


def on_unsubscribe(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    enrollment_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """Suppress the address and exit every live enrollment of the contact `unsubscribed`."""
    with transaction(db):
        target = enrollment_id or _newest_enrollment(db, contact_id)
        events.record(
            db, "unsubscribe", at, enrollment_id=target, contact_id=contact_id, detail=detail
        )
        email = db.execute("SELECT email FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]
        exits.suppress(db, email, "unsubscribed", at)
        return exits.exit_contact(db, contact_id, "unsubscribed", at, detail=detail)


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
        target = enrollment_id or _newest_enrollment(db, contact_id)
        events.record(db, "meeting", at, enrollment_id=target, contact_id=contact_id, detail=detail)
        return exits.exit_contact(db, contact_id, "booking", at, detail=detail)


def auto_reply_resume_at(
    return_date: date | None, received: datetime, the_plan: plan.Plan, contact_timezone: str | None
) -> datetime:
    """The next open slot on or after the return date; no date, or one over 60 days away
    (or in the past), pauses 7 days."""
    window = the_plan.window_for(contact_timezone)
    if return_date is not None:
        from zoneinfo import ZoneInfo

        local = datetime.combine(return_date, time(0, 0), ZoneInfo(window.timezone))
        if received < local <= received + AUTO_REPLY_MAX_AHEAD:
            return into_window(local, window)
    return into_window(received + AUTO_REPLY_DEFAULT_PAUSE, window)


def on_auto_reply(
    db: Database,
    contact_id: int,
    at: datetime,
    *,
    return_date: date | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """Recorded, never a reply. Sequences with `pause_on_auto_reply` pause until the return
    date and resume by themselves. Returns the paused enrollment ids."""
    paused: list[int] = []
    with transaction(db):
        live = _live_enrollments(db, contact_id)
        target = live[0]["id"] if live else _newest_enrollment(db, contact_id)
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
            if not enrollment["pause_on_auto_reply"]:
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
