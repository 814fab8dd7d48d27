"""The outbox as people see it: listing emails waiting, in flight, failed or of unknown fate,
and queueing a failed or unknown one again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine.previews import pending_subject
from seqctl.errors import SeqctlError

NOT_SENT = ("queued", "sending", "failed", "unknown")
# What `outbox retry` may queue again: a clear failure, or an unknown fate the user checked.
RETRYABLE = ("failed", "unknown")

_KEYS = ("id", "status", "to", "subject", "inbox", "next_attempt_at", "attempts", "error",
         "message_id", "sent_at")


def list_outbox(
    db: Database, now: datetime, *, key: bytes, status: str | None = None
) -> list[dict[str, Any]]:
    """Outgoing emails by id: of one status, "all", or (None) everything not sent. A queued
    follow-up shows the subject it will have."""
    sql = ("SELECT o.id, o.status, o.to_email, o.subject, i.address, o.next_attempt_at, "
           "o.attempts, o.error, o.message_id, o.sent_at FROM outbox o "
           "JOIN inboxes i ON i.id = o.inbox_id")
    params: list[Any] = []
    if status is None:
        sql += f" WHERE o.status IN ({','.join('?' * len(NOT_SENT))})"
        params += NOT_SENT
    elif status != "all":
        sql += " WHERE o.status = ?"
        params.append(status)
    rows = [dict(zip(_KEYS, r, strict=True))
            for r in db.execute(sql + " ORDER BY o.id", params).fetchall()]
    for row in rows:
        if row["subject"] is None and row["status"] == "queued":
            row["subject"] = pending_subject(db, row["id"], now, key=key)
    return rows


def retry(db: Database, outbox_id: int, now: datetime) -> None:
    """Queue a failed or unknown email again (its failed enrollment becomes active). Refused
    for any other status, and for an email whose enrollment exited."""
    with transaction(db):
        row = db.execute(
            "SELECT o.status, o.enrollment_id, e.status, e.exit_reason FROM outbox o "
            "LEFT JOIN enrollments e ON e.id = o.enrollment_id WHERE o.id = ?", [outbox_id]
        ).fetchone()
        if row is None:
            raise SeqctlError(f"no outbox email {outbox_id}: see `seqctl outbox list`")
        if row[0] not in RETRYABLE:
            raise SeqctlError(f"outbox email {outbox_id} is {row[0]}; only failed or unknown "
                              "ones can be retried")
        if row[2] == "exited":
            raise SeqctlError(f"outbox email {outbox_id} belongs to an enrollment that exited "
                              f"({row[3]}); it will not be sent")
        db.execute("UPDATE outbox SET status = 'queued', next_attempt_at = ?, error = NULL "
                   "WHERE id = ?", [iso(now), outbox_id])
        if row[1] is not None:
            db.execute(
                "UPDATE enrollments SET status = 'active', failure_message = NULL "
                "WHERE id = ? AND status = 'failed'", [row[1]])


def first_sent(db: Database, to_email: str) -> dict[str, Any] | None:
    """{"message_id", "subject"} of the first email sent to `to_email`, None before any."""
    row = db.execute("SELECT message_id, subject FROM outbox WHERE to_email = ? AND "
                     "status = 'sent' ORDER BY id LIMIT 1", [to_email]).fetchone()
    return {"message_id": row[0], "subject": row[1]} if row else None


def sent_since(db: Database, to_email: str, since: datetime) -> int:
    """How many emails were sent to `to_email` after `since`."""
    return db.execute(
        "SELECT COUNT(*) FROM outbox WHERE to_email = ? AND status = 'sent' AND sent_at > ?",
        [to_email, iso(since)]).fetchone()[0]
