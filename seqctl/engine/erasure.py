"""`seqctl contacts delete`: erase a contact for a data-protection request, keeping only a
hashed suppression so the address is never emailed again."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.errors import SeqctlError

ERASED = "erased"
# What stands in for an erased person's address or name inside someone else's record.
REDACTED = "[erased]"


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
        _scrub_mentions(db, addresses, _names(db, contact_id), contact_id)
        _delete(db, "contacts", "id = ?", [contact_id])
        db.execute(f"DELETE FROM suppressions WHERE email IN ({marks})", addresses)
        db.conn.executemany(
            "INSERT OR IGNORE INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)",
            [(erased_entry(a), ERASED, iso(now)) for a in addresses])
    return {"email": primary, "addresses": len(addresses), "enrollments": len(enrollments),
            "tasks": tasks, "messages": messages}


def _names(db: Database, contact_id: int) -> list[str]:
    """The contact's full name, as a referral would have named them (empty when unknown)."""
    first, last = db.execute("SELECT first_name, last_name FROM contacts WHERE id = ?",
                             [contact_id]).fetchone()
    full = " ".join(p for p in (first, last) if p)
    return [full] if full else []


def _scrub_mentions(db: Database, addresses: list[str], names: list[str],
                    contact_id: int) -> None:
    """The erased person named in other people's records (a referral in someone's reply, the
    task to reach them, the reply's snippet): their address and name become `[erased]`; the
    records themselves, which are the other person's, stay."""
    pattern = re.compile("|".join(re.escape(t) for t in [*addresses, *names]), re.IGNORECASE)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(REDACTED, value)
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    mentions = " OR ".join(["instr(lower({column}), ?)"] * len(addresses))
    for table, columns in (("events", ("detail_json",)), ("inbound", ("detail_json", "subject")),
                           ("tasks", ("title", "notes"))):
        where = " OR ".join(mentions.format(column=c) for c in columns)
        params = [a for _ in columns for a in addresses]
        others = "contact_id IS NOT ?"      # the contact's own rows are deleted or emptied
        rows = db.execute(f"SELECT id, {', '.join(columns)} FROM {table} "
                          f"WHERE {others} AND ({where})", [contact_id, *params]).fetchall()
        for row_id, *values in rows:
            cleaned = [json.dumps(scrub(json.loads(v or "{}")), ensure_ascii=False)
                       if c == "detail_json" else (scrub(v) if v is not None else None)
                       for c, v in zip(columns, values, strict=True)]
            db.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} "
                       "WHERE id = ?", [*cleaned, row_id])


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
