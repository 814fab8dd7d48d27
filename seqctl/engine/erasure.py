"""`seqctl contacts delete`: erase a contact for a data-protection request, keeping only a
hashed suppression so the address is never emailed again."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.errors import SeqctlError

ERASED = "erased"


def erased_entry(email: str) -> str:
    """The suppression kept for an erased address: a SHA-256 of it, not the address."""
    return "sha256:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _children(db: Database, table: str) -> list[tuple[str, str]]:
    """(table, column) pairs whose foreign key points at `table`.id, read from the schema so
    tables added by later migrations are covered too."""
    found = []
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for key in db.execute(f"PRAGMA foreign_key_list('{name}')"):
            if key[2] == table and key[4] in (None, "id"):
                found.append((name, key[3]))
    return found


def _delete(db: Database, table: str, where: str, params: list[Any], depth: int = 0) -> int:
    """Delete rows of `table` matching `where`, and first every row that refers to them."""
    if depth > 8:
        raise SeqctlError("the schema's foreign keys nest too deeply to erase safely")
    for child, column in _children(db, table):
        if child == table:
            continue
        _delete(db, child, f"{column} IN (SELECT id FROM {table} WHERE {where})", params,
                depth + 1)
    return db.execute(f"DELETE FROM {table} WHERE {where}", params).rowcount


def erase_contact(db: Database, email: str, now: datetime) -> dict[str, Any]:
    """Erase the contact with `email` (or that alias): the contact, its enrollments, tasks,
    stored messages (outbox and inbound), deal links and aliases are deleted, and its events
    keep only their counts (no detail). Returns what was erased."""
    address = email.strip().lower()
    with transaction(db):
        row = db.execute("SELECT id, email FROM contacts WHERE email = ?", [address]).fetchone()
        if row is None:
            row = db.execute(
                "SELECT c.id, c.email FROM contact_aliases a JOIN contacts c "
                "ON c.id = a.contact_id WHERE a.email = ?", [address]).fetchone()
        if row is None:
            raise SeqctlError(f"no contact {address}: see `seqctl contacts list`")
        contact_id, primary = row
        addresses = [primary] + [a for (a,) in db.execute(
            "SELECT email FROM contact_aliases WHERE contact_id = ?", [contact_id])]
        enrollments = [i for (i,) in db.execute(
            "SELECT id FROM enrollments WHERE contact_id = ?", [contact_id])]
        marks = ",".join("?" * len(addresses))
        db.execute("UPDATE events SET detail_json = '{}' WHERE contact_id = ? OR enrollment_id "
                   "IN (SELECT id FROM enrollments WHERE contact_id = ?)",
                   [contact_id, contact_id])
        messages = _delete(db, "outbox", "contact_id = ? OR enrollment_id IN (SELECT id FROM "
                           "enrollments WHERE contact_id = ?)", [contact_id, contact_id])
        messages += _delete(db, "inbound", f"contact_id = ? OR from_email IN ({marks})",
                            [contact_id, *addresses])
        tasks = db.execute("SELECT COUNT(*) FROM tasks WHERE contact_id = ?",
                           [contact_id]).fetchone()[0]
        _delete(db, "contacts", "id = ?", [contact_id])
        db.execute(f"DELETE FROM suppressions WHERE email IN ({marks})", addresses)
        db.conn.executemany(
            "INSERT OR IGNORE INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)",
            [(erased_entry(a), ERASED, iso(now)) for a in addresses])
    return {"email": primary, "addresses": len(addresses), "enrollments": len(enrollments),
            "tasks": tasks, "messages": messages}


def suppress_erased(db: Database, emails: list[str], now: datetime) -> None:
    """An erased address that comes back (imported or enrolled again) is suppressed by name,
    so it is never emailed; cheap when nothing was ever erased."""
    if db.execute("SELECT 1 FROM suppressions WHERE reason = ? LIMIT 1",
                  [ERASED]).fetchone() is None:
        return
    for email in emails:
        if db.execute("SELECT 1 FROM suppressions WHERE email = ?",
                      [erased_entry(email)]).fetchone():
            db.execute("INSERT OR IGNORE INTO suppressions (email, reason, created_at) "
                       "VALUES (?, ?, ?)", [email, ERASED, iso(now)])
