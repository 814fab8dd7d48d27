"""`seqctl outbox list|retry`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, display_zone, group, install_key
from seqctl.engine import outbox

app = group(
    "Emails waiting to go out, in flight, failed, or of unknown fate.",
    examples=["seqctl outbox", "seqctl outbox retry 42"],
)


@default(app)
@app.command("list")
def list_outbox(
    status: Annotated[str | None, typer.Option(
        "--status", help="queued | sending | failed | unknown | sent | all "
                         "(default: everything not sent)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List outgoing emails (default: queued, sending, failed and unknown).

    \b
    Examples:
      seqctl outbox
      seqctl outbox list --status failed
    """
    database = db()
    rows = outbox.list_outbox(database, clock.now(), key=install_key(), status=status)
    if json_out:
        output.emit_json(rows)
    else:
        zone, now = display_zone(database), clock.now()
        for row in rows:
            row["next"] = output.local_time(row["next_attempt_at"], zone, now) \
                if row["status"] == "queued" else ""
        output.table(rows, ["id", "status", "to", "inbox", "next", "attempts"], below="error",
                     fold=["inbox", "next", "attempts"], empty="outbox empty")


@app.command("retry")
def retry(outbox_id: Annotated[int, typer.Argument(help="The id shown by `seqctl outbox list`.")]) -> None:
    """Queue a failed or `unknown` email again (for unknown: only after checking the Sent
    folder that it did not go out).

    \b
    Example:
      seqctl outbox retry 42
    """
    outbox.retry(db(), outbox_id, clock.now())
    output.info(f"outbox email {outbox_id} queued; the next tick sends it")
