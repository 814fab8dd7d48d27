"""`seqctl replies`: the reply inbox, with each reply's intent (SPEC section 18)."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import output
from seqctl.commands._common import JsonOpt, db, instant_option
from seqctl.engine import replies as engine_replies
from seqctl.engine.intent import INTENTS


def register(root: typer.Typer) -> None:
    root.command("replies")(replies)


def replies(
    intent: Annotated[str | None, typer.Option(
        "--intent", help=f"Only replies with this intent: {' | '.join(INTENTS)}.")] = None,
    sequence: Annotated[str | None, typer.Option(
        "--sequence", help="Only replies to this sequence.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only replies received at or after this time (ISO 8601).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Every reply, newest first, with what it says: positive, not_interested, referral,
    not_now, wrong_person, left_company or unknown, the referred address and the not-now
    date. Example: `seqctl replies --intent positive --since 2026-03-01`."""
    rows = engine_replies.list_replies(
        db(), intent=intent, sequence=sequence, since=instant_option(since, "--since")
    )
    if json_out:
        output.emit_json(rows)
        return
    shown = []
    for row in rows:
        facts = row["referral_email"] or (f"from {row['not_before']}" if row["not_before"] else "")
        shown.append({**row, "facts": facts, "snippet": row["snippet"][:60]})
    output.table(shown, ["received_at", "intent", "email", "sequence", "step", "facts", "snippet"],
                 empty="no replies yet")
