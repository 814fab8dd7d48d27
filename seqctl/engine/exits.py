"""Ending enrollments: exits, suppressions, and the triggers that fire them at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine import events

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
    exclude: int | None = None,
    detail: dict[str, Any] | None = None,
) -> list[int]:
    """Exit the contact's live enrollments whose sequence lets `reason` exit them.
    Returns the exited enrollment ids."""
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
    if exclude is not None:
        sql += " AND e.id != ?"
        params.append(exclude)
    exited = []
    with transaction(db):
        for (enrollment_id,) in db.execute(sql, params).fetchall():
            if exit_enrollment(db, enrollment_id, reason, at, detail):
                exited.append(enrollment_id)
    return exited


def on_stage_change(db: Database, contact_id: int, at: datetime) -> list[int]:
    """A contact's lifecycle stage changed: exit sequences with `exit_on_stage_change`."""
    return exit_contact(db, contact_id, "stage_changed", at)


def is_suppressed(db: Database, email: str) -> bool:
    return (
        db.execute("SELECT 1 FROM suppressions WHERE email = ?", [email.strip().lower()]).fetchone()
        is not None
    )


def suppress(db: Database, email: str, reason: str, at: datetime) -> bool:
    """Add a suppression (first reason wins). Returns True when it is new."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)",
        [email.strip().lower(), reason, iso(at)],
    )
    return cursor.rowcount > 0


def backstop_reason(db: Database, enrollment: dict[str, Any]) -> str | None:
    """Re-check every exit condition for an enrollment about to fire a step (the tick's
    backstop): outcomes recorded since enrollment that should have exited it."""
    row = db.execute(
        "SELECT s.exit_on_reply, s.exit_on_booking, c.email FROM sequences s, contacts c "
        "WHERE s.id = ? AND c.id = ?",
        [enrollment["sequence_id"], enrollment["contact_id"]],
    ).fetchone()
    if row is None:
        return None
    exit_on_reply, exit_on_booking, email = row
    suppression = db.execute("SELECT reason FROM suppressions WHERE email = ?", [email]).fetchone()
    if suppression and suppression[0] in ("unsubscribed", "bounced"):
        return suppression[0]
    kinds = {"unsubscribe": "unsubscribed", "bounce": "bounced"}
    if exit_on_reply:
        kinds["reply"] = "reply_received"
    if exit_on_booking:
        kinds["meeting"] = "booking"
    placeholders = ",".join("?" * len(kinds))
    found = db.execute(
        f"SELECT kind FROM events WHERE contact_id = ? AND kind IN ({placeholders}) "
        "AND at >= ? ORDER BY at LIMIT 1",
        [enrollment["contact_id"], *kinds, enrollment["enrolled_at"]],
    ).fetchone()
    return kinds[found[0]] if found else None
