"""`seqctl schedule`: when each step of a sequence fires for one contact."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl.clock import from_iso, iso
from seqctl.engine import plan
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database


def timeline(db: Database, sequence_name: str, email: str, now: datetime) -> list[dict[str, Any]]:
    """Every live step with `fires_at`: the actual time for steps already done, the planned
    time for the rest (chained from the step before, as the engine does). A contact who is not
    enrolled is planned as if enrolled now."""
    row = db.execute("SELECT id FROM sequences WHERE name = ?", [sequence_name]).fetchone()
    if row is None:
        raise SeqctlError(f"no sequence '{sequence_name}': see `seqctl sequence list`")
    the_plan = plan.load(db, row[0])
    contact = db.execute(
        "SELECT id, timezone FROM contacts WHERE email = ?", [email.strip().lower()]
    ).fetchone()
    window = the_plan.window_for(contact[1] if contact else None)
    enrollment = None
    if contact:
        enrollment = db.execute(
            "SELECT id, status, step_id, next_run_at, waiting_outbox_id, anchor_at, enrolled_at "
            "FROM enrollments WHERE sequence_id = ? AND contact_id = ? ORDER BY id DESC LIMIT 1",
            [row[0], contact[0]],
        ).fetchone()
    rows: list[dict[str, Any]] = []
    if enrollment is None:
        anchor = now
        for step in the_plan.steps:
            anchor = plan.due(anchor, step, window)
            rows.append(_row(step, anchor, "planned"))
        return rows
    enrollment_id, status, step_id, next_run_at, waiting, anchor_at, _ = enrollment
    done = _done_times(db, enrollment_id)
    pointer = (
        the_plan.by_id.get(step_id)["_index"] if step_id in the_plan.by_id else len(the_plan.steps)
    )
    anchor: datetime | None = None
    for index, step in enumerate(the_plan.steps):
        if step["id"] in done:
            fired, state = done[step["id"]]
            rows.append(_row(step, fired, state))
            anchor = fired
            continue
        if status in ("exited",) or index < pointer:
            rows.append(_row(step, None, "not fired"))
            continue
        if index == pointer and next_run_at:
            anchor = from_iso(next_run_at)
        else:
            anchor = plan.due(anchor or from_iso(anchor_at) or now, step, window)
        rows.append(_row(step, anchor, "paused" if status == "paused" else "planned"))
    return rows


def _done_times(db: Database, enrollment_id: int) -> dict[int, tuple[datetime | None, str]]:
    done: dict[int, tuple[datetime | None, str]] = {}
    for step_id, status, sent_at, created_at, next_attempt in db.execute(
        "SELECT step_id, status, sent_at, created_at, next_attempt_at FROM outbox "
        "WHERE enrollment_id = ?",
        [enrollment_id],
    ):
        when = sent_at or (next_attempt if status == "queued" else created_at)
        done[step_id] = (from_iso(when), status)
    for step_id, created_at in db.execute(
        "SELECT step_id, created_at FROM tasks WHERE enrollment_id = ?", [enrollment_id]
    ):
        done[step_id] = (from_iso(created_at), "task created")
    return done


def _row(step: dict[str, Any], at: datetime | None, state: str) -> dict[str, Any]:
    return {
        "step": step["position"],
        "step_type": step["step_type"],
        "fires_at": iso(at),
        "state": state,
    }
