"""`seqctl deals add|link|set-stage|list`: deals, their contacts and their stage."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.clock import iso
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.db import transaction
from seqctl.engine import exits
from seqctl.engine.contacts import get_contact
from seqctl.errors import SeqctlError

app = group(
    "Deals and the contacts on them. Moving a deal to another stage exits its contacts from "
    "sequences with exit_on_stage_change (`stage_changed`)."
)


def _deal_id(name: str) -> int:
    row = db().execute("SELECT id FROM deals WHERE name = ?", [name.strip()]).fetchone()
    if row is None:
        raise SeqctlError(f"no deal '{name.strip()}': see `seqctl deals list`")
    return row[0]


def _contact_ids(emails: list[str]) -> list[int]:
    """Every address must be a known contact (or alias): all are checked before any change."""
    return list(dict.fromkeys(get_contact(db(), email)["id"] for email in emails))


def _link(deal_id: int, contact_ids: list[int]) -> int:
    database = db()
    linked = 0
    for contact_id in contact_ids:
        linked += database.execute(
            "INSERT OR IGNORE INTO deal_contacts (deal_id, contact_id) VALUES (?, ?)",
            [deal_id, contact_id],
        ).rowcount
    return linked


@app.command("add")
def add(
    name: str,
    stage: Annotated[str, typer.Option("--stage", help="Its stage now.")] = "",
    contacts: Annotated[list[str] | None, typer.Option(
        "--contact", help="A contact on the deal (repeat the option for more).")] = None,
) -> None:
    """Create a deal, optionally with its stage and contacts."""
    database = db()
    name = name.strip()
    if not name:
        raise SeqctlError("a deal needs a name")
    contact_ids = _contact_ids(contacts or [])
    now = iso(clock.now())
    with transaction(database):
        if database.execute("SELECT 1 FROM deals WHERE name = ?", [name]).fetchone():
            raise SeqctlError(f"deal '{name}' exists: `seqctl deals link` or "
                              "`seqctl deals set-stage`")
        deal_id = database.execute(
            "INSERT INTO deals (name, stage, created_at, updated_at) VALUES (?, ?, ?, ?)",
            [name, stage.strip(), now, now],
        ).lastrowid
        _link(deal_id, contact_ids)
    output.info(f"deal '{name}' added" + (f" at stage {stage.strip()}" if stage.strip() else "")
                + (f" with {len(contact_ids)} contact{'s' if len(contact_ids) != 1 else ''}"
                   if contact_ids else ""))


@app.command("link")
def link(name: str, emails: list[str]) -> None:
    """Put contacts on a deal."""
    deal_id = _deal_id(name)
    contact_ids = _contact_ids(emails)
    with transaction(db()):
        linked = _link(deal_id, contact_ids)
    output.info(f"{linked} contact{'s' if linked != 1 else ''} linked to '{name.strip()}'")


@app.command("set-stage")
def set_stage(name: str, stage: str, json_out: JsonOpt = False) -> None:
    """Move a deal to STAGE. When the stage really changes, its contacts exit sequences with
    exit_on_stage_change at once."""
    database = db()
    deal_id = _deal_id(name)
    stage = stage.strip()
    now = clock.now()
    with transaction(database):
        before = database.execute("SELECT stage FROM deals WHERE id = ?", [deal_id]).fetchone()[0]
        database.execute("UPDATE deals SET stage = ?, updated_at = ? WHERE id = ?",
                         [stage, iso(now), deal_id])
        exited = exits.on_deal_stage_change(database, deal_id, now) if stage != before else []
    if json_out:
        output.emit_json({"name": name.strip(), "stage": stage, "previous_stage": before,
                          "exited": exited})
        return
    output.info(f"deal '{name.strip()}': stage {before or '(none)'} -> {stage}"
                + (f" ({len(exited)} enrollment{'s' if len(exited) != 1 else ''} exited: "
                   "stage_changed)" if exited else ""))


@default(app)
@app.command("list")
def list_deals(json_out: JsonOpt = False) -> None:
    """List deals with their stage and contacts."""
    database = db()
    rows = []
    for deal_id, name, stage, created_at, updated_at in database.execute(
            "SELECT id, name, stage, created_at, updated_at FROM deals ORDER BY name"):
        emails = [r[0] for r in database.execute(
            "SELECT c.email FROM deal_contacts d JOIN contacts c ON c.id = d.contact_id "
            "WHERE d.deal_id = ? ORDER BY c.email", [deal_id])]
        rows.append({"name": name, "stage": stage, "contacts": emails,
                     "created_at": created_at, "updated_at": updated_at})
    if json_out:
        output.emit_json(rows)
        return
    output.table([{**r, "contacts": ", ".join(r["contacts"])} for r in rows],
                 ["name", "stage", "contacts", "updated_at"],
                 empty="no deals yet: seqctl deals add NAME --stage S --contact EMAIL")
