"""`seqctl outbox list|retry`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.clock import iso
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.db import transaction
from seqctl.errors import SeqctlError

app = group("Emails waiting to go out, in flight, failed, or of unknown fate.")


@default(app)
@app.command("list")
def list_outbox(
    status: Annotated[str | None, typer.Option(
        "--status", help="queued | sending | failed | unknown | sent | all "
                         "(default: everything not sent)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List outgoing emails (default: queued, sending, failed and unknown)."""
    sql = ("SELECT o.id, o.status, o.to_email, o.subject, i.address, o.next_attempt_at, "
           "o.attempts, o.error, o.message_id, o.sent_at FROM outbox o "
           "JOIN inboxes i ON i.id = o.inbox_id")
    params: list = []
    if status is None:
        sql += " WHERE o.status IN ('queued', 'sending', 'failed', 'unknown')"
    elif status != "all":
        sql += " WHERE o.status = ?"
        params.append(status)
    keys = ("id", "status", "to", "subject", "inbox", "next_attempt_at", "attempts", "error",
            "message_id", "sent_at")
    from seqctl.engine.previews import pending_subject

    database = db()
    rows = [dict(zip(keys, r, strict=True)) for r in database.execute(sql + " ORDER BY o.id",
                                                                       params)]
    for row in rows:
        if row["subject"] is None and row["status"] == "queued":
            row["subject"] = pending_subject(database, row["id"], clock.now())
    if json_out:
        output.emit_json(rows)
    else:
        output.table(rows, ["id", "status", "to", "inbox", "next_attempt_at", "attempts", "error"],
                     empty="outbox empty")


@app.command("retry")
def retry(outbox_id: int) -> None:
    """Queue a failed or `unknown` email again (for unknown: only after checking the Sent
    folder that it did not go out)."""
    database = db()
    row = database.execute(
        "SELECT o.status, o.enrollment_id, e.status, e.exit_reason FROM outbox o "
        "LEFT JOIN enrollments e ON e.id = o.enrollment_id WHERE o.id = ?", [outbox_id]
    ).fetchone()
    if row is None:
        raise SeqctlError(f"no outbox email {outbox_id}: see `seqctl outbox list`")
    if row[0] not in ("failed", "unknown"):
        raise SeqctlError(f"outbox email {outbox_id} is {row[0]}; only failed or unknown ones "
                          "can be retried")
    if row[2] == "exited":
        raise SeqctlError(f"outbox email {outbox_id} belongs to an enrollment that exited "
                          f"({row[3]}); it will not be sent")
    now = iso(clock.now())
    with transaction(database):
        database.execute("UPDATE outbox SET status = 'queued', next_attempt_at = ?, error = NULL "
                         "WHERE id = ?", [now, outbox_id])
        if row[1] is not None:
            database.execute(
                "UPDATE enrollments SET status = 'active', failure_message = NULL "
                "WHERE id = ? AND status = 'failed'", [row[1]])
    output.info(f"outbox email {outbox_id} queued; the next tick sends it")
