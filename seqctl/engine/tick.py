"""The engine phase of a tick: exits backstop, fire due steps, queue emails, create tasks,
advance pointers. Work is batched and indexed by due time, so cost follows the due work."""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqctl.clock import iso
from seqctl.db import database_file, transaction
from seqctl.engine import accounts, events, exits, plan
from seqctl.engine.counts import TickCounts

if TYPE_CHECKING:
    from sqlite_utils import Database

BATCH = 2000


class TickLock:
    """An OS file lock (flock) beside the database: it dies with its process, so a killed
    tick never blocks the next one. `TickLock.beside(db)` is the lock of that database; an
    in-memory database (private to its connection) has none to share, and always acquires."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.handle: Any = None

    @classmethod
    def beside(cls, db: Database) -> TickLock:
        file = database_file(db)
        return cls(file.with_name(file.name + ".tick.lock") if file else None)

    def acquire(self, wait: float = 0.0, waiting: Callable[[], None] | None = None) -> bool:
        """Take the lock; with `wait`, keep trying for that many seconds (calling `waiting`
        once when it has to) before giving up."""
        import time

        if self.path is None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.handle.close()
                    self.handle = None
                    return False
                if waiting is not None:
                    waiting()
                    waiting = None
                time.sleep(0.1)

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def fail_enrollment(db: Database, enrollment_id: int, message: str, at: datetime) -> None:
    db.execute(
        "UPDATE enrollments SET status = 'failed', failure_message = ?, updated_at = ? "
        "WHERE id = ? AND status = 'active'",
        [message, iso(at), enrollment_id],
    )
    events.record(db, "failed", at, enrollment_id=enrollment_id, detail={"message": message})


def advance(
    db: Database,
    enrollment_id: int,
    the_plan: plan.Plan,
    step: dict[str, Any],
    fired_at: datetime,
    contact_timezone: str | None,
    counts: TickCounts,
) -> None:
    """Move the pointer past `step`, which fired (or was sent) at `fired_at`."""
    following = the_plan.next_step(step["id"])
    if following is None:
        db.execute(
            "UPDATE enrollments SET step_id = NULL, anchor_at = ?, waiting_outbox_id = NULL "
            "WHERE id = ?",
            [iso(fired_at), enrollment_id],
        )
        exits.exit_enrollment(db, enrollment_id, "completed", fired_at)
        counts.exited += 1
        return
    due = plan.due(fired_at, following, the_plan.window_for(contact_timezone))
    db.execute(
        "UPDATE enrollments SET step_id = ?, anchor_at = ?, next_run_at = ?, "
        "waiting_outbox_id = NULL, updated_at = ? WHERE id = ?",
        [following["id"], iso(fired_at), iso(due), iso(fired_at), enrollment_id],
    )


_DUE_SQL = (
    "SELECT e.id, e.sequence_id, e.contact_id, e.inbox_id, e.step_id, e.enrolled_at, "
    "c.email, c.timezone, i.status, i.address, i.kind, (s.email IS NOT NULL) "
    "FROM enrollments e JOIN contacts c ON c.id = e.contact_id "
    "LEFT JOIN inboxes i ON i.id = e.inbox_id "
    "LEFT JOIN suppressions s ON s.email = c.email "
    "WHERE e.status = 'active' AND e.next_run_at <= ? AND e.waiting_outbox_id IS NULL "
    "ORDER BY e.next_run_at, e.id LIMIT ?"
)


def resume_due_pauses(db: Database, now: datetime, counts: TickCounts) -> None:
    """Out-of-office pauses end by themselves at their return time."""
    rows = db.execute(
        "SELECT id FROM enrollments WHERE status = 'paused' AND paused_until IS NOT NULL "
        "AND paused_until <= ?",
        [iso(now)],
    ).fetchall()
    if not rows:
        return
    from seqctl.engine import enroll  # (and the template engine with it) only when needed

    for (enrollment_id,) in rows:
        enroll.resume(db, enrollment_id, now)


def run_engine(db: Database, now: datetime, counts: TickCounts,
               progress: Callable[[int, int], None] | None = None, *, key: bytes) -> None:
    """Fire every step due by `now`; `key` is the install secret (Message-IDs)."""
    resume_due_pauses(db, now, counts)
    plans = plan.Plans(db)
    total = done = 0
    if progress:
        total = db.execute(
            "SELECT COUNT(*) FROM enrollments WHERE status = 'active' AND next_run_at <= ? "
            "AND waiting_outbox_id IS NULL", [iso(now)]).fetchone()[0]
    while True:
        rows = db.execute(_DUE_SQL, [iso(now), BATCH]).fetchall()
        if not rows:
            return
        with transaction(db):
            for row in rows:
                _fire(db, row, plans, now, counts, key)
        if progress:
            done += len(rows)
            progress(min(done, total), max(done, total))


def _fire(
    db: Database, row: tuple, plans: plan.Plans, now: datetime, counts: TickCounts, key: bytes
) -> None:
    # compose (and Jinja2 with it) loads when a step fires, not on a tick with nothing due
    from seqctl.engine import compose

    (
        enrollment_id,
        sequence_id,
        contact_id,
        inbox_id,
        step_id,
        enrolled_at,
        email,
        tz,
        inbox_status,
        inbox_address,
        inbox_kind,
        suppressed,
    ) = row
    the_plan = plans[sequence_id]
    step = the_plan.by_id.get(step_id) if step_id is not None else None
    if step is None:
        exits.exit_enrollment(db, enrollment_id, "completed", now)
        counts.exited += 1
        return
    reason = exits.backstop_reason(
        db, {"enrollment_id": enrollment_id, "sequence_id": sequence_id,
             "contact_id": contact_id, "enrolled_at": enrolled_at},
    )
    if reason:
        exits.exit_enrollment(db, enrollment_id, reason, now, {"by": "backstop"})
        counts.exited += 1
        return
    kind = step["step_type"]
    if kind == "email":
        if inbox_id is None or inbox_status not in ("active", "paused_bounces"):
            fail_enrollment(
                db, enrollment_id, accounts.inbox_failure_message(accounts.inbox_by_id(db, inbox_id) if inbox_id else None), now
            )
            counts.failed += 1
            return
        counts.steps_fired += 1
        if suppressed:
            events.record(
                db,
                "skipped",
                now,
                enrollment_id=enrollment_id,
                step_id=step["id"],
                detail={"reason": "suppressed"},
            )
            db.execute(
                "INSERT OR IGNORE INTO outbox (enrollment_id, step_id, inbox_id, contact_id, "
                "to_email, status, scheduled_at, next_attempt_at, message_id, error, created_at) "
                "VALUES (?,?,?,?,?,'skipped',?,?,?,'suppressed',?)",
                [
                    enrollment_id,
                    step["id"],
                    inbox_id,
                    contact_id,
                    email,
                    iso(now),
                    iso(now),
                    compose.message_id_for(db, enrollment_id, step["id"], inbox_address, key=key),
                    iso(now),
                ],
            )
            counts.skipped_suppressed += 1
            advance(db, enrollment_id, the_plan, step, now, tz, counts)
            return
        first_email = next(s for s in the_plan.steps if s["step_type"] == "email")
        cursor = db.execute(
            "INSERT OR IGNORE INTO outbox (enrollment_id, step_id, inbox_id, contact_id, to_email,"
            " status, is_follow_up, variant, scheduled_at, next_attempt_at, message_id,"
            " created_at) VALUES (?,?,?,?,?,'queued',?,"
            " (SELECT variant FROM enrollments WHERE id = ?),?,?,?,?)",
            [
                enrollment_id,
                step["id"],
                inbox_id,
                contact_id,
                email,
                int(step["id"] != first_email["id"]),
                enrollment_id,
                iso(now),
                iso(now),
                compose.message_id_for(db, enrollment_id, step["id"], inbox_address, key=key),
                iso(now),
            ],
        )
        outbox_id = db.execute(
            "SELECT id FROM outbox WHERE enrollment_id = ? AND step_id = ?",
            [enrollment_id, step["id"]],
        ).fetchone()[0]
        if cursor.rowcount:
            counts.emails_queued += 1
        following = the_plan.next_step(step["id"])
        db.execute(
            "UPDATE enrollments SET step_id = ?, next_run_at = NULL, waiting_outbox_id = ?, "
            "updated_at = ? WHERE id = ?",
            [following["id"] if following else None, outbox_id, iso(now), enrollment_id],
        )
        return
    counts.steps_fired += 1
    if kind in ("call", "linkedin", "task"):
        title, notes = compose.task_text(
            db, contact_id, inbox_id, step["title"] or kind, step["notes"] or ""
        )
        cursor = db.execute(
            "INSERT OR IGNORE INTO tasks (enrollment_id, step_id, sequence_id, contact_id, kind, "
            "title, notes, due_at, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                enrollment_id,
                step["id"],
                sequence_id,
                contact_id,
                kind,
                title,
                notes,
                iso(now),
                iso(now),
            ],
        )
        counts.tasks_created += cursor.rowcount
    advance(db, enrollment_id, the_plan, step, now, tz, counts)
