"""What a tick did, one line a thing (`tick -v`), what a dry run would do (`tick -v --dry-run`), and
what is due next (an idle tick)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from seqctl.clock import from_iso, iso

# Steps due within this much of the earliest one are announced together ("22 emails ...").
_BUNDLE = timedelta(hours=1)


@dataclass(frozen=True)
class Marks:
    """The newest event and task before a tick; what is newer, the tick did."""

    event_id: int
    task_id: int


def marks(db: Database) -> Marks:
    event = db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
    task = db.execute("SELECT COALESCE(MAX(id), 0) FROM tasks").fetchone()[0]
    return Marks(event, task)


def since(db: Database, before: Marks) -> list[dict[str, Any]]:
    """Each email sent and task created after `before`, oldest first:
    {"what": "email"|"task", "kind", "email", "sequence", "step", "title", "at"}."""
    done: list[dict[str, Any]] = []
    for at, email, subject, sequence, position in db.execute(
        "SELECT e.at, o.to_email, o.subject, s.name, st.position FROM events e "
        "JOIN outbox o ON o.id = e.outbox_id LEFT JOIN sequences s ON s.id = e.sequence_id "
        "LEFT JOIN steps st ON st.id = e.step_id WHERE e.id > ? AND e.kind = 'sent' "
        "ORDER BY e.id", [before.event_id]):
        done.append({"what": "email", "kind": "email", "email": email, "sequence": sequence,
                     "step": position, "title": subject or "", "at": at})
    for at, kind, title, email, sequence, position in db.execute(
        "SELECT t.due_at, t.kind, t.title, c.email, s.name, st.position FROM tasks t "
        "JOIN contacts c ON c.id = t.contact_id LEFT JOIN sequences s ON s.id = t.sequence_id "
        "LEFT JOIN steps st ON st.id = t.step_id WHERE t.id > ? ORDER BY t.id",
        [before.task_id]):
        done.append({"what": "task", "kind": kind, "email": email, "sequence": sequence,
                     "step": position, "title": title, "at": at})
    return done


def would(db: Database, before: Marks, outbox_ids: list[int]) -> list[dict[str, Any]]:
    """What a dry run would do, read inside its transaction before the rollback: the emails
    it would send (`outbox_ids`, in order) and the tasks it created; the shape of `since`,
    with "at" the email's due time."""
    emails: list[dict[str, Any]] = []
    for start in range(0, len(outbox_ids), 500):
        chunk = outbox_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found = {row[0]: row[1:] for row in db.execute(
            "SELECT o.id, o.next_attempt_at, o.to_email, o.subject, s.name, st.position "
            "FROM outbox o LEFT JOIN enrollments e ON e.id = o.enrollment_id "
            "LEFT JOIN sequences s ON s.id = e.sequence_id "
            f"LEFT JOIN steps st ON st.id = o.step_id WHERE o.id IN ({marks})", chunk)}
        for outbox_id in chunk:
            at, email, subject, sequence, position = found[outbox_id]
            emails.append({"what": "email", "kind": "email", "email": email,
                           "sequence": sequence, "step": position, "title": subject or "",
                           "at": at})
    return emails + [item for item in since(db, before) if item["what"] == "task"]


def next_due(db: Database, now: datetime) -> dict[str, Any] | None:
    """The next thing a tick will do after `now`: {"count", "step_type", "sequence", "step",
    "timezone", "at"} for the earliest due step (with the others of that step due within an
    hour of it), or the earliest queued email; None when nothing is scheduled."""
    first = db.execute(
        "SELECT e.next_run_at, e.sequence_id, e.step_id FROM enrollments e "
        "WHERE e.status = 'active' AND e.next_run_at IS NOT NULL "
        "ORDER BY e.next_run_at LIMIT 1").fetchone()
    queued = db.execute(
        "SELECT next_attempt_at FROM outbox WHERE status = 'queued' "
        "ORDER BY next_attempt_at LIMIT 1").fetchone()
    if queued is not None and (first is None or queued[0] < first[0]):
        until = iso(max(from_iso(queued[0]), now) + _BUNDLE)
        count = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'queued' AND "
                           "next_attempt_at <= ?", [until]).fetchone()[0]
        return {"count": count, "step_type": "email", "sequence": None, "step": None,
                "timezone": None, "at": queued[0], "queued": True}
    if first is None:
        return None
    at, sequence_id, step_id = first
    until = iso(max(from_iso(at), now) + _BUNDLE)
    count = db.execute(
        "SELECT COUNT(*) FROM enrollments WHERE status = 'active' AND next_run_at <= ? "
        "AND sequence_id = ? AND step_id IS ?", [until, sequence_id, step_id]).fetchone()[0]
    name, zone, step_type, position = db.execute(
        "SELECT s.name, s.timezone, st.step_type, st.position FROM sequences s "
        "LEFT JOIN steps st ON st.id = ? WHERE s.id = ?", [step_id, sequence_id]).fetchone()
    return {"count": count, "step_type": step_type or "step", "sequence": name,
            "step": position, "timezone": zone, "at": at, "queued": False}
