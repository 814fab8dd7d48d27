"""`seqctl tasks list|done|skip`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.clock import iso
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.db import transaction
from seqctl.errors import SeqctlError

app = group("Calls, LinkedIn touches and other tasks that steps create for you.")

_SELECT = (
    "SELECT t.id, t.kind, t.title, t.notes, c.email, s.name, t.due_at, t.status "
    "FROM tasks t JOIN contacts c ON c.id = t.contact_id LEFT JOIN sequences s ON s.id = t.sequence_id"
)


def _row(r: tuple) -> dict:
    keys = ("id", "kind", "title", "notes", "email", "sequence", "due_at", "status")
    return dict(zip(keys, r, strict=True))


@default(app)
@app.command("list")
def list_tasks(
    status: Annotated[str | None, typer.Option(
        "--status", help="open (default) | done | skipped | all")] = "open",
    kind: Annotated[str | None, typer.Option("--kind", help="call | linkedin | task")] = None,
    due: Annotated[bool, typer.Option("--due", help="Only tasks due by now.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List tasks, oldest due first."""
    sql, params = _SELECT + " WHERE 1 = 1", []
    if status and status != "all":
        if status not in ("open", "done", "skipped"):
            raise typer.BadParameter("open, done, skipped or all", param_hint="--status")
        sql += " AND t.status = ?"
        params.append(status)
    if kind:
        sql += " AND t.kind = ?"
        params.append(kind)
    if due:
        sql += " AND t.due_at <= ?"
        params.append(iso(clock.now()))
    rows = [_row(r) for r in db().execute(sql + " ORDER BY t.due_at, t.id", params)]
    if json_out:
        output.emit_json(rows)
    else:
        output.table(rows, ["id", "kind", "title", "email", "sequence", "due_at", "status"],
                     empty="no tasks")


def _finish_all(task_ids: list[int], status: str, json_out: bool) -> None:
    """Close every task, or none of them when one is missing or already closed."""
    database = db()
    for task_id in task_ids:
        row = database.execute("SELECT status FROM tasks WHERE id = ?", [task_id]).fetchone()
        if row is None:
            raise SeqctlError(f"no task {task_id}: see `seqctl tasks list`")
        if row[0] != "open":
            raise SeqctlError(f"task {task_id} is already {row[0]}")
    with transaction(database):
        for task_id in task_ids:
            database.execute("UPDATE tasks SET status = ?, completed_at = ? WHERE id = ?",
                             [status, iso(clock.now()), task_id])
    marks = ",".join("?" * len(task_ids))
    done = [_row(r) for r in database.execute(_SELECT + f" WHERE t.id IN ({marks})", task_ids)]
    if json_out:
        output.emit_json(done)
    else:
        for task in done:
            output.info(f"task {task['id']} {status}: {task['title']} ({task['email']})")


@app.command("done")
def done(task_ids: list[int], json_out: JsonOpt = False) -> None:
    """Mark tasks done."""
    _finish_all(task_ids, "done", json_out)


@app.command("skip")
def skip(task_ids: list[int], json_out: JsonOpt = False) -> None:
    """Skip tasks."""
    _finish_all(task_ids, "skipped", json_out)
