"""`seqctl suppress add|remove|list`: addresses that are never emailed."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, display_zone, group
from seqctl.engine import accounts, exits
from seqctl.errors import SeqctlError

app = group(
    "Addresses seqctl never emails. A suppressed contact's email steps are skipped "
    "(reason `suppressed`) while its call, LinkedIn and task steps still fire; "
    "unsubscribes and hard bounces are added here by themselves.",
    examples=["seqctl suppress add ava@acme.test", "seqctl suppress"],
)


@app.command("add")
def add(
    emails: Annotated[list[str], typer.Argument(help="Addresses to suppress.")],
    reason: Annotated[str, typer.Option(
        "--reason", help="Why (shown in `suppress list`). `unsubscribed` or `bounced` also exit "
                         "the contact's enrollments at once, like the real event.")] = "manual",
    json_out: JsonOpt = False,
) -> None:
    """Suppress addresses. Enrollments stay, minus their emails, unless the reason is
    `unsubscribed` or `bounced`: then they exit with that reason.

    \b
    Examples:
      seqctl suppress add ava@acme.test ben@acme.test
      seqctl suppress add ava@acme.test --reason unsubscribed
    """
    database = db()
    reason = reason.strip() or "manual"
    # all or nothing: a typo stops the command before any change
    normalised = [accounts.normalise_email(raw) for raw in emails]
    now = clock.now()
    added, already, exited = [], [], []
    for email in dict.fromkeys(normalised):
        new, gone = exits.add_suppression(database, email, reason, now)
        (added if new else already).append(email)
        exited += gone
    if json_out:
        output.emit_json({"added": added, "already_suppressed": already, "exited": exited})
        return
    if added:
        output.info(f"suppressed {len(added)} address{'es' if len(added) != 1 else ''}"
                    f" ({reason})")
    for email in already:
        output.info(f"{email} was already suppressed")
    if exited:
        output.info(f"{len(exited)} enrollment{'s' if len(exited) != 1 else ''} exited: {reason}")


@app.command("remove")
def remove(email: Annotated[str, typer.Argument(help="The suppressed address.")]) -> None:
    """Allow emails to EMAIL again. Enrollments that exited stay exited.

    \b
    Example:
      seqctl suppress remove ava@acme.test
    """
    if not exits.unsuppress(db(), email):
        raise SeqctlError(f"{email.strip()} is not suppressed: see `seqctl suppress list`")
    output.info(f"{email.strip().lower()} is no longer suppressed")


@default(app)
@app.command("list")
def list_suppressions(
    reason: Annotated[str | None, typer.Option("--reason", help="Only this reason.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List suppressed addresses, newest first.

    \b
    Examples:
      seqctl suppress
      seqctl suppress list --reason bounced
    """
    rows = exits.list_suppressions(db(), reason)
    if json_out:
        output.emit_json(rows)
    else:
        zone, now = display_zone(db()), clock.now()
        output.table([{**row, "since": output.local_time(row["created_at"], zone, now)}
                      for row in rows], ["email", "reason", "since"],
                     empty="no suppressed addresses")
