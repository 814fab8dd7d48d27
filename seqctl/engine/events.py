"""The event log that analytics reads.

Event kinds: sent | skipped | open | click | reply | auto_reply | bounce | soft_bounce |
unsubscribe | meeting | exit | paused | resumed | failed | stage_changed | inbox_paused |
inbox_resumed.

Outcome events (reply, bounce, meeting, ...) are attributed to the last email the enrollment
was sent before the event: its outbox row, step and variant.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl.clock import iso

if TYPE_CHECKING:
    from sqlite_utils import Database


def last_sent_email(db: Database, enrollment_id: int,
                    before: datetime | None = None) -> dict[str, Any] | None:
    """The enrollment's latest sent email, of those sent by `before` when given (an outcome
    is credited to an email that had gone out when it happened); else its latest."""
    row = None
    if before is not None:
        row = db.execute(
            "SELECT id, step_id, variant FROM outbox WHERE enrollment_id = ? AND status = 'sent' "
            "AND sent_at <= ? ORDER BY sent_at DESC, id DESC LIMIT 1",
            [enrollment_id, iso(before)],
        ).fetchone()
    if row is None:
        row = db.execute(
            "SELECT id, step_id, variant FROM outbox WHERE enrollment_id = ? AND status = 'sent' "
            "ORDER BY sent_at DESC, id DESC LIMIT 1",
            [enrollment_id],
        ).fetchone()
    if row is None:
        return None
    return {"outbox_id": row[0], "step_id": row[1], "variant": row[2]}


def record(
    db: Database,
    kind: str,
    at: datetime,
    *,
    enrollment_id: int | None = None,
    contact_id: int | None = None,
    outbox_id: int | None = None,
    step_id: int | None = None,
    inbox_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Insert one event; fills sequence, contact, variant and (for outcomes) the attributed
    email from the enrollment when not given."""
    sequence_id = None
    variant = None
    if enrollment_id is not None:
        row = db.execute(
            "SELECT sequence_id, contact_id, variant, inbox_id FROM enrollments WHERE id = ?",
            [enrollment_id],
        ).fetchone()
        if row:
            sequence_id, contact_id = row[0], contact_id or row[1]
            variant, inbox_id = row[2], inbox_id or row[3]
        if outbox_id is None and kind not in ("exit", "paused", "resumed", "failed"):
            last = last_sent_email(db, enrollment_id, before=at)
            if last:
                outbox_id = last["outbox_id"]
                step_id = step_id or last["step_id"]
                variant = last["variant"] or variant
    if outbox_id is not None and step_id is None:
        row = db.execute("SELECT step_id, variant FROM outbox WHERE id = ?", [outbox_id]).fetchone()
        if row:
            step_id, variant = row[0], row[1] or variant
    cursor = db.execute(
        "INSERT INTO events (kind, at, enrollment_id, sequence_id, step_id, contact_id, outbox_id,"
        " inbox_id, variant, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            kind,
            iso(at),
            enrollment_id,
            sequence_id,
            step_id,
            contact_id,
            outbox_id,
            inbox_id,
            variant,
            json.dumps(detail or {}),
        ],
    )
    return cursor.lastrowid
