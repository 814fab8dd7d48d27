"""Listing and showing sequences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seqctl.engine.sequence_export import plain_number
from seqctl.engine.sequence_spec import DELETED_MARK, SEQUENCE_DEFAULTS, required_fields
from seqctl.engine.sequence_store import dict_rows, get_sequence, live_steps

if TYPE_CHECKING:
    from sqlite_utils import Database

# --- listing, showing and managing ------------------------------------------------------------


def list_sequences(db: Database) -> list[dict[str, Any]]:
    """Every (not deleted) sequence with its step count and enrollment counts by status."""
    rows = dict_rows(
        db.execute(
            "SELECT s.id, s.name, s.description, s.active, "
            "(SELECT COUNT(*) FROM steps WHERE sequence_id = s.id AND removed = 0) AS steps, "
            "(SELECT COUNT(*) FROM enrollments WHERE sequence_id = s.id AND status = 'active') "
            "  AS active_enrollments, "
            "(SELECT COUNT(*) FROM enrollments WHERE sequence_id = s.id AND status = 'paused') "
            "  AS paused_enrollments, "
            "(SELECT COUNT(*) FROM enrollments WHERE sequence_id = s.id AND status = 'exited') "
            "  AS exited_enrollments, "
            "(SELECT COUNT(*) FROM enrollments WHERE sequence_id = s.id AND status = 'failed') "
            "  AS failed_enrollments "
            "FROM sequences s WHERE instr(s.name, ?) = 0 ORDER BY s.name",
            [DELETED_MARK],
        )
    )
    for row in rows:
        row["active"] = bool(row["active"])
        del row["id"]
    return rows


def show(db: Database, name: str) -> dict[str, Any]:
    """The sequence's settings, enrollment counts and live steps (SPEC 16-style document)."""
    sequence = get_sequence(db, name)
    document: dict[str, Any] = {"name": sequence["name"]}
    for key, default in SEQUENCE_DEFAULTS.items():
        value = sequence[key]
        document[key] = bool(value) if isinstance(default, bool) else value
    document["require_fields"] = required_fields(sequence["require_fields"])
    document["created_at"] = sequence["created_at"]
    document["updated_at"] = sequence["updated_at"]
    counts = dict(
        db.execute(
            "SELECT status, COUNT(*) FROM enrollments WHERE sequence_id = ? GROUP BY status",
            [sequence["id"]],
        ).fetchall()
    )
    document["enrollments"] = {
        status: counts.get(status, 0) for status in ("active", "paused", "exited", "failed")
    }
    document["steps"] = [
        {
            "position": step["position"],
            "id": step["step_key"],
            "step_type": step["step_type"],
            "delay_business_days": step["delay_business_days"],
            "delay_calendar_days": step["delay_calendar_days"],
            "delay_hours": plain_number(step["delay_hours"]),
            "subject": step["subject"],
            "body": step["body"],
            "cc": step["cc"],
            "bcc": step["bcc"],
            "title": step["title"],
            "notes": step["notes"],
            "template": step["template"],
            "variant_b": step["variant_b"],
        }
        for step in live_steps(db, sequence["id"])
    ]
    return document
