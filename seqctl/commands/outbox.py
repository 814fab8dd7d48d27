"""`seqctl outbox list|retry`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, group, install_key
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
    rows = outbox.list_outbox(db(), clock.now(), key=install_key(), status=status)
    if json_out:
        output.emit_json(rows)
    else:
        output.table(rows, ["id", "status", "to", "inbox", "next_attempt_at", "attempts", "error"],
                     empty="outbox empty")


@app.command("retry")
def retry(outbox_id: Annotated[int, typer.Argument(help="The id shown by `seqctl outbox list`.")]) -> None:
    """Queue a failed or `unknown` email again (for unknown: only after checking the Sent
    """
    outbox.retry(db(), outbox_id, clock.now())
    output.info(f"outbox email {outbox_id} queued; the next tick sends it")
