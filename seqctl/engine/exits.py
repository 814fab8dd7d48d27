"""Ending enrollments: exits, suppressions, and the triggers that fire them at once."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine import events

if TYPE_CHECKING:
    from sqlite_utils import Database

FREE_MAIL = frozenset(
    """
gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.fr yahoo.de hotmail.com hotmail.co.uk
hotmail.fr hotmail.de outlook.com live.com msn.com icloud.com me.com mac.com aol.com gmx.de
gmx.net gmx.com web.de t-online.de proton.me protonmail.com pm.me yandex.ru yandex.com mail.ru
qq.com 163.com 126.com zoho.com fastmail.com hey.com orange.fr free.fr laposte.net wanadoo.fr
libero.it btinternet.com comcast.net verizon.net att.net
""".split()
)

EXIT_REASONS = (
    "reply_received",
    "stage_changed",
    "booking",
    "unsubscribed",
    "bounced",
    "manual",
    "completed",
    "company_replied",
)

# Which sequence flag must be on for a trigger to exit an enrollment (None: always).
REASON_FLAG = {
    "reply_received": "exit_on_reply",
    "stage_changed": "exit_on_stage_change",
    "booking": "exit_on_booking",
    "company_replied": "exit_on_company_reply",
    "unsubscribed": None,
    "bounced": None,
    "manual": None,
}


def exit_enrollment(
    db: Database,
    enrollment_id: int,
    reason: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Exit one enrollment (active, paused or failed) and cancel its queued emails.
    Returns False when it had already exited."""
    with transaction(db):
        changed = db.execute(
            "UPDATE enrollments SET status = 'exited', exit_reason = ?, exited_at = ?, "
            "next_run_at = NULL, paused_until = NULL, updated_at = ? "
            "WHERE id = ? AND status != 'exited'",
            [reason, iso(at), iso(at), enrollment_id],
        ).rowcount
        if not changed:
            return False
        db.execute(
            "UPDATE outbox SET status = 'cancelled', error = ? "
            "WHERE enrollment_id = ? AND status = 'queued'",
            [f"enrollment exited: {reason}", enrollment_id],
        )
        events.record(
            db, "exit", at, enrollment_id=enrollment_id, detail={"reason": reason, **(detail or {})}
        )
    return True


def exit_contact(
    db: Database,
    contact_id: int,
    reason: str,
    at: datetime,
    *,
    sequence_id: int | None = None,
    exclude: int | Collection[int] | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """Exit the contact's live enrollments whose sequence lets `reason` exit them, except
    `exclude` (one id or several). Returns the exited enrollment ids."""
    flag = REASON_FLAG.get(reason)
    sql = (
        "SELECT e.id FROM enrollments e JOIN sequences s ON s.id = e.sequence_id "
        "WHERE e.contact_id = ? AND e.status IN ('active', 'paused', 'failed')"
    )
    params: list[Any] = [contact_id]
    if flag:
        sql += f" AND s.{flag} = 1"
    if sequence_id is not None:
        sql += " AND e.sequence_id = ?"
        params.append(sequence_id)
    excluded = [exclude] if isinstance(exclude, int) else list(exclude or ())
    if excluded:
        sql += f" AND e.id NOT IN ({','.join('?' * len(excluded))})"
        params.extend(excluded)
    exited = []
    with transaction(db):
        for (enrollment_id,) in db.execute(sql + " ORDER BY e.id", params).fetchall():
            if exit_enrollment(db, enrollment_id, reason, at, detail):
                exited.append(enrollment_id)
    return exited


def on_stage_change(
    db: Database, contact_id: int, at: datetime, *, detail: dict[str, Any] | None = None
) -> list[int]:
    """A contact's lifecycle stage (or a deal of theirs) changed: exit sequences with
    `exit_on_stage_change` at once. The change is recorded as an event, so the tick's backstop
    sees it too."""
    with transaction(db):
        events.record(db, "stage_changed", at, contact_id=contact_id, detail=detail)
        return exit_contact(db, contact_id, "stage_changed", at, detail=detail)


def on_deal_stage_change(db: Database, deal_id: int, at: datetime) -> list[int]:
    """A deal moved stage: every contact linked to it counts as having changed stage."""
    row = db.execute("SELECT name, stage FROM deals WHERE id = ?", [deal_id]).fetchone()
    detail = {"deal": row[0], "stage": row[1]} if row else {}
    contact_ids = [
        r[0]
        for r in db.execute("SELECT contact_id FROM deal_contacts WHERE deal_id = ?", [deal_id])
    ]
    exited: list[int] = []
    with transaction(db):
        for contact_id in contact_ids:
            exited += on_stage_change(db, contact_id, at, detail=detail)
    return exited


# Suppression reasons that mean the contact must not stay in any sequence: adding one exits
# every live enrollment, like the real event does (and the backstop agrees).
EXITING_SUPPRESSIONS = ("unsubscribed", "bounced", "spam_complaint")
_STRONG = "('unsubscribed', 'bounced', 'spam_complaint')"
# The exit reason of each: a spam complaint exits `unsubscribed` (SPEC 10).
_EXIT_FOR_SUPPRESSION = {"spam_complaint": "unsubscribed"}


def is_suppressed(db: Database, email: str) -> bool:
    return (
        db.execute("SELECT 1 FROM suppressions WHERE email = ?", [email.strip().lower()]).fetchone()
        is not None
    )


def suppress(db: Database, email: str, reason: str, at: datetime) -> bool:
    """Add a suppression. Returns True when it is new. An existing one keeps its reason and
    time, except that `unsubscribed` or `bounced` replaces a weaker reason (such as `manual`):
    the stronger fact is the one worth keeping."""
    email = email.strip().lower()
    cursor = db.execute(
        "INSERT OR IGNORE INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)",
        [email, reason, iso(at)],
    )
    if cursor.rowcount > 0:
        return True
    if reason in EXITING_SUPPRESSIONS:
        db.execute(
            f"UPDATE suppressions SET reason = ? WHERE email = ? AND reason NOT IN {_STRONG}",
            [reason, email],
        )
    return False


def unsuppress(db: Database, email: str) -> bool:
    """Remove a suppression; False when there was none. Exited enrollments stay exited."""
    cursor = db.execute("DELETE FROM suppressions WHERE email = ?", [email.strip().lower()])
    return cursor.rowcount > 0


def list_suppressions(db: Database, reason: str | None = None) -> list[dict[str, Any]]:
    """Suppressed addresses (of one reason), newest first: {"email", "reason", "created_at"}."""
    sql, params = "SELECT email, reason, created_at FROM suppressions", []
    if reason:
        sql += " WHERE reason = ?"
        params.append(reason)
    return [{"email": e, "reason": r, "created_at": c}
            for e, r, c in db.execute(sql + " ORDER BY created_at DESC, email", params)]


def add_suppression(db: Database, email: str, reason: str, at: datetime) -> tuple[bool, list[int]]:
    """`seqctl suppress add`: suppress the address. With reason `unsubscribed` or `bounced` the
    contact's live enrollments exit with that reason at once (as the backstop would before
    their next step); any other reason only stops emails, and call and task steps still fire.
    Returns (new, exited enrollment ids)."""
    with transaction(db):
        new = suppress(db, email, reason, at)
        if reason not in EXITING_SUPPRESSIONS:
            return new, []
        exited: list[int] = []
        for (contact_id,) in db.execute(
            "SELECT id FROM contacts WHERE email = ? "
            "UNION SELECT contact_id FROM contact_aliases WHERE email = ?",
            [email.strip().lower()] * 2,
        ).fetchall():
            exited += exit_contact(db, contact_id, _EXIT_FOR_SUPPRESSION.get(reason, reason), at,
                                   detail={"by": "suppress"})
        return new, exited


def backstop_reason(db: Database, enrollment: dict[str, Any]) -> str | None:
    """Re-check every exit condition for an enrollment about to fire a step (the tick's
    backstop): a strong suppression, or an outcome recorded since enrollment that should have
    exited it (an event whose exit was lost, e.g. to a crash). `enrollment` has
    enrollment_id, sequence_id, contact_id and enrolled_at."""
    row = db.execute(
        "SELECT s.exit_on_reply, s.exit_on_booking, s.exit_on_stage_change, "
        "s.exit_on_company_reply, c.email FROM sequences s, contacts c "
        "WHERE s.id = ? AND c.id = ?",
        [enrollment["sequence_id"], enrollment["contact_id"]],
    ).fetchone()
    if row is None:
        return None
    exit_on_reply, exit_on_booking, exit_on_stage_change, exit_on_company_reply, email = row
    suppression = db.execute("SELECT reason FROM suppressions WHERE email = ?", [email]).fetchone()
    if suppression and suppression[0] in EXITING_SUPPRESSIONS:
        return _EXIT_FOR_SUPPRESSION.get(suppression[0], suppression[0])
    kinds = {"unsubscribe": "unsubscribed", "bounce": "bounced"}
    if exit_on_reply:
        kinds["reply"] = "reply_received"
    if exit_on_booking:
        kinds["meeting"] = "booking"
    if exit_on_stage_change:
        kinds["stage_changed"] = "stage_changed"
    placeholders = ",".join("?" * len(kinds))
    # a not-now reply that paused this enrollment instead of exiting it ("kept") is no exit
    found = db.execute(
        f"SELECT kind FROM events WHERE contact_id = ? AND kind IN ({placeholders}) "
        "AND at >= ? AND NOT (kind = 'reply' AND EXISTS (SELECT 1 FROM "
        "json_each(events.detail_json, '$.kept') WHERE value = ?)) ORDER BY at LIMIT 1",
        [enrollment["contact_id"], *kinds, enrollment["enrolled_at"],
         enrollment["enrollment_id"]],
    ).fetchone()
    if found:
        return kinds[found[0]]
    if exit_on_company_reply and _colleague_replied(db, enrollment, email):
        return "company_replied"
    return None


def company_domain(email: str) -> str | None:
    """The domain that makes people colleagues: None for free-mail addresses."""
    domain = email.rsplit("@", 1)[-1].lower()
    return None if domain in FREE_MAIL or not domain else domain


def domain_pattern(domain: str) -> str:
    """A LIKE pattern (ESCAPE '\\') for addresses at exactly `domain`."""
    return "%@" + domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _colleague_replied(db: Database, enrollment: dict[str, Any], email: str) -> bool:
    """A colleague (same non-free-mail domain) replied in the same sequence since this
    enrollment began. Reads the sequence's reply events (indexed), not its enrollments."""
    domain = company_domain(email)
    if domain is None:
        return False
    return (
        db.execute(
            "SELECT 1 FROM events ev JOIN contacts c ON c.id = ev.contact_id "
            "WHERE ev.sequence_id = ? AND ev.kind = 'reply' AND ev.at >= ? "
            "AND ev.contact_id != ? AND c.email LIKE ? ESCAPE '\\' LIMIT 1",
            [
                enrollment["sequence_id"],
                enrollment["enrolled_at"],
                enrollment["contact_id"],
                domain_pattern(domain),
            ],
        ).fetchone()
        is not None
    )
