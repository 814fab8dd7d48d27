"""Tasks (calls, LinkedIn touches, generic to-dos) that steps create, and their state machine:
a task is `open` until it is `done` or `skipped`, and a closed task stays closed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine.sequence_spec import TASK_TYPES
from seqctl.errors import SeqctlError

STATUSES = ("open", "done", "skipped")
CLOSED = ("done", "skipped")
FILTERS = (*STATUSES, "all")
KINDS = TASK_TYPES

_SELECT = (
    "SELECT t.id, t.kind, t.title, t.notes, c.email, s.name, t.due_at, t.status, s.timezone "
    "FROM tasks t JOIN contacts c ON c.id = t.contact_id LEFT JOIN sequences s ON s.id = t.sequence_id"
)
_KEYS = ("id", "kind", "title", "notes", "email", "sequence", "due_at", "status", "timezone")


def _row(values: tuple) -> dict[str, Any]:
    return dict(zip(_KEYS, values, strict=True))


def list_tasks(
    db: Database, *, status: str = "open", kind: str | None = None, due_by: datetime | None = None
) -> list[dict[str, Any]]:
    """Tasks, oldest due first: of one status (or "all"), of one kind, due by `due_by`."""
    if status not in FILTERS:
        raise SeqctlError(f"unknown task status '{status}' (one of {', '.join(FILTERS)})")
    sql, params = _SELECT + " WHERE 1 = 1", []
    if status != "all":
        sql += " AND t.status = ?"
        params.append(status)
    if kind:
        sql += " AND t.kind = ?"
        params.append(kind)
    if due_by is not None:
        sql += " AND t.due_at <= ?"
        params.append(iso(due_by))
    return [_row(r) for r in db.execute(sql + " ORDER BY t.due_at, t.id", params)]


def close(db: Database, task_ids: list[int], status: str, now: datetime) -> list[dict[str, Any]]:
    """Close every task (`done` or `skipped`), or none of them when one is missing or already
    closed: the check and the change are one transaction. Returns the closed tasks."""
    if status not in CLOSED:
        raise SeqctlError(f"a task can be closed as {' or '.join(CLOSED)}, not '{status}'")
    with transaction(db):
        for task_id in task_ids:
            row = db.execute("SELECT status FROM tasks WHERE id = ?", [task_id]).fetchone()
            if row is None:
                raise SeqctlError(f"no task {task_id}: see `seqctl tasks list`")
            if row[0] != "open":
                raise SeqctlError(f"task {task_id} is already {row[0]}")
        for task_id in task_ids:
            db.execute("UPDATE tasks SET status = ?, completed_at = ? WHERE id = ?",
                       [status, iso(now), task_id])
    marks = ",".join("?" * len(task_ids))
    return [_row(r) for r in db.execute(_SELECT + f" WHERE t.id IN ({marks})", task_ids)]
