"""`seqctl enrollments list`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, display_zone, group
from seqctl.engine import enroll as engine

app = group(
    "Who is in which sequence, and where they are in it.",
    examples=["seqctl enrollments --status paused"],
)


@default(app)
@app.command("list")
def list_enrollments(
    sequence: Annotated[str | None, typer.Option("--sequence", "-s", help="Only this sequence.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="active | paused | exited | failed")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Only this contact.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List every matching enrollment (no limit).

    \b
    Examples:
      seqctl enrollments
      seqctl enrollments list --sequence cold-saas-intro --status failed
    """
    if status is not None and status not in ("active", "paused", "exited", "failed"):
        raise typer.BadParameter("active, paused, exited or failed", param_hint="--status")
    database = db()
    if sequence is not None:
        engine.sequence_by_name(database, sequence)      # a one-line error when there is none
    rows = engine.enrollment_rows(database, sequence=sequence, status=status, email=email)
    if json_out:
        output.emit_json([{k: r[k] for k in (
            "id", "sequence", "email", "status", "exit_reason", "failure_message", "variant",
            "step", "next_run_at", "inbox", "paused_until", "enrolled_at", "exited_at")}
            for r in rows])
        return
    zone = display_zone(database)
    now = clock.now()
    for r in rows:
        when = r["paused_until"] if r["status"] == "paused" else r["next_run_at"]
        r["next"] = output.local_time(when, r["timezone"] or zone, now)
        r["why"] = r["exit_reason"] or r["failure_message"] or ""
        if r["status"] == "paused":
            r["why"] = ("out-of-office: resumes by itself" if r["paused_until"]
                        else "paused by hand: `seqctl resume` to continue")
    output.table(rows, ["id", "sequence", "email", "status", "step", "next"], below="why",
                 fold=["next", "sequence", "step"], empty="no enrollments")
