"""`seqctl tasks list|done|skip`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, display_zone, group
from seqctl.engine import tasks

app = group(
    "Calls, LinkedIn touches and other tasks that steps create for you.",
    examples=["seqctl tasks", "seqctl tasks done 12"],
)


@default(app)
@app.command("list")
def list_tasks(
    status: Annotated[str | None, typer.Option(
        "--status", help="open (default) | done | skipped | all")] = "open",
    kind: Annotated[str | None, typer.Option("--kind", help="call | linkedin | task")] = None,
    due: Annotated[bool, typer.Option("--due", help="Only tasks due by now.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List tasks, oldest due first.

    \b
    Examples:
      seqctl tasks
      seqctl tasks --status all --kind call
      seqctl tasks list --due --json
    """
    status = status or "all"
    if status not in tasks.FILTERS:
        raise typer.BadParameter(", ".join(tasks.FILTERS), param_hint="--status")
    if kind is not None and kind not in tasks.KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(tasks.KINDS)}", param_hint="--kind")
    database = db()
    rows = tasks.list_tasks(database, status=status, kind=kind,
                            due_by=clock.now() if due else None)
    zones = [row.pop("timezone") for row in rows]
    if json_out:
        output.emit_json(rows)
        return
    zone, now = display_zone(database), clock.now()
    for row, sequence_zone in zip(rows, zones, strict=True):
        row["due"] = output.local_time(row["due_at"], sequence_zone or zone, now)
    output.table(rows, ["id", "kind", "title", "email", "sequence", "due", "status"],
                 empty="no tasks")


def _close(task_ids: list[int], status: str, json_out: bool) -> None:
    closed = tasks.close(db(), task_ids, status, clock.now())
    if json_out:
        output.emit_json(closed)
    else:
        for task in closed:
            output.info(f"task {task['id']} {status}: {task['title']} ({task['email']})")


@app.command("done")
def done(task_ids: Annotated[list[int], typer.Argument(help="Task ids, as `seqctl tasks list` shows them.")], json_out: JsonOpt = False) -> None:
    """Mark tasks done.

    \b
    Example:
      seqctl tasks done 12 13
    """
    _close(task_ids, "done", json_out)


@app.command("skip")
def skip(task_ids: Annotated[list[int], typer.Argument(help="Task ids, as `seqctl tasks list` shows them.")], json_out: JsonOpt = False) -> None:
    """Skip tasks.

    \b
    Example:
      seqctl tasks skip 14
    """
    _close(task_ids, "skipped", json_out)
