"""Deals, the contacts on them, and their stage. Moving a deal to another stage exits its
contacts from sequences with `exit_on_stage_change` (`stage_changed`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine import exits
from seqctl.engine.contacts import get_contact
from seqctl.errors import SeqctlError


def deal_id(db: Database, name: str) -> int:
    row = db.execute("SELECT id FROM deals WHERE name = ?", [name.strip()]).fetchone()
    if row is None:
        raise SeqctlError(f"no deal '{name.strip()}': see `seqctl deals list`")
    return row[0]


def _contact_ids(db: Database, emails: list[str]) -> list[int]:
    """Every address must be a known contact (or alias): all are checked before any change."""
    return list(dict.fromkeys(get_contact(db, email)["id"] for email in emails))


def _link(db: Database, deal: int, contact_ids: list[int]) -> int:
    linked = 0
    for contact_id in contact_ids:
        linked += db.execute(
            "INSERT OR IGNORE INTO deal_contacts (deal_id, contact_id) VALUES (?, ?)",
            [deal, contact_id],
        ).rowcount
    return linked


def add_deal(
    db: Database, name: str, now: datetime, *, stage: str = "", emails: list[str] | None = None
) -> dict[str, Any]:
    """Create a deal, optionally with its stage and contacts. Returns {"name", "stage",
    "contacts": how many}."""
    name, stage = name.strip(), stage.strip()
    if not name:
        raise SeqctlError("a deal needs a name")
    contact_ids = _contact_ids(db, emails or [])
    with transaction(db):
        if db.execute("SELECT 1 FROM deals WHERE name = ?", [name]).fetchone():
            raise SeqctlError(f"deal '{name}' exists: `seqctl deals link` or "
                              "`seqctl deals set-stage`")
        new_id = db.execute(
            "INSERT INTO deals (name, stage, created_at, updated_at) VALUES (?, ?, ?, ?)",
            [name, stage, iso(now), iso(now)],
        ).lastrowid
        _link(db, new_id, contact_ids)
    return {"name": name, "stage": stage, "contacts": len(contact_ids)}


def link(db: Database, name: str, emails: list[str]) -> int:
    """Put contacts on a deal; returns how many were not on it yet."""
    deal = deal_id(db, name)
    contact_ids = _contact_ids(db, emails)
    with transaction(db):
        return _link(db, deal, contact_ids)


def set_stage(db: Database, name: str, stage: str, now: datetime) -> dict[str, Any]:
    """Move a deal to `stage`. When the stage really changes, its contacts exit sequences with
    exit_on_stage_change at once. Returns {"name", "stage", "previous_stage", "exited"}."""
    deal = deal_id(db, name)
    stage = stage.strip()
    with transaction(db):
        before = db.execute("SELECT stage FROM deals WHERE id = ?", [deal]).fetchone()[0]
        db.execute("UPDATE deals SET stage = ?, updated_at = ? WHERE id = ?",
                   [stage, iso(now), deal])
        exited = exits.on_deal_stage_change(db, deal, now) if stage != before else []
    return {"name": name.strip(), "stage": stage, "previous_stage": before, "exited": exited}


def list_deals(db: Database) -> list[dict[str, Any]]:
    """Every deal with its stage and its contacts' addresses, by name."""
    rows = []
    for deal, name, stage, created_at, updated_at in db.execute(
            "SELECT id, name, stage, created_at, updated_at FROM deals ORDER BY name").fetchall():
        emails = [r[0] for r in db.execute(
            "SELECT c.email FROM deal_contacts d JOIN contacts c ON c.id = d.contact_id "
            "WHERE d.deal_id = ? ORDER BY c.email", [deal])]
        rows.append({"name": name, "stage": stage, "contacts": emails,
                     "created_at": created_at, "updated_at": updated_at})
    return rows
