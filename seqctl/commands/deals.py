"""`seqctl deals add|link|set-stage|list`: deals, their contacts and their stage."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.engine import deals

app = group(
    "Deals and the contacts on them. Moving a deal to another stage exits its contacts "
    "from sequences with exit_on_stage_change (`stage_changed`).",
    examples=["seqctl deals add 'Acme renewal' --contact ava@acme.test", "seqctl deals"],
)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The deal's name.")],
    stage: Annotated[str, typer.Option("--stage", help="Its stage now.")] = "",
    contacts: Annotated[list[str] | None, typer.Option(
        "--contact", help="A contact on the deal (repeat the option for more).")] = None,
) -> None:
    """Create a deal, optionally with its stage and contacts.

    \b
    Example:
      seqctl deals add 'Acme renewal' --stage discovery --contact ava@acme.test
    """
    deal = deals.add_deal(db(), name, clock.now(), stage=stage, emails=contacts or [])
    output.info(f"deal '{deal['name']}' added"
                + (f" at stage {deal['stage']}" if deal["stage"] else "")
                + (f" with {_plural(deal['contacts'], 'contact')}" if deal["contacts"] else ""))


@app.command("link")
def link(name: Annotated[str, typer.Argument(help="The deal's name.")], emails: Annotated[list[str], typer.Argument(help="Contact email addresses.")]) -> None:
    """Put contacts on a deal.

    \b
    Example:
      seqctl deals link 'Acme renewal' ben@acme.test cy@acme.test
    """
    linked = deals.link(db(), name, emails)
    output.info(f"{_plural(linked, 'contact')} linked to '{name.strip()}'")


@app.command("set-stage")
def set_stage(name: Annotated[str, typer.Argument(help="The deal's name.")], stage: Annotated[str, typer.Argument(help="The deal's new stage.")], json_out: JsonOpt = False) -> None:
    """Move a deal to STAGE. When the stage really changes, its contacts exit sequences with
    exit_on_stage_change at once.

    \b
    Example:
      seqctl deals set-stage 'Acme renewal' closed-won
    """
    result = deals.set_stage(db(), name, stage, clock.now())
    if json_out:
        output.emit_json(result)
        return
    exited = result["exited"]
    output.info(f"deal '{result['name']}': stage {result['previous_stage'] or '(none)'} -> "
                f"{result['stage']}"
                + (f" ({_plural(len(exited), 'enrollment')} exited: stage_changed)"
                   if exited else ""))


@default(app)
@app.command("list")
def list_deals(json_out: JsonOpt = False) -> None:
    """List deals with their stage and contacts.

    \b
    Examples:
      seqctl deals
      seqctl deals list --json
    """
    rows = deals.list_deals(db())
    if json_out:
        output.emit_json(rows)
        return
    output.table([{**r, "contacts": ", ".join(r["contacts"])} for r in rows],
                 ["name", "stage", "contacts", "updated_at"],
                 empty="no deals yet: seqctl deals add NAME --stage S --contact EMAIL")
