"""Contacts: importing (upserting) a contacts CSV, and looking contacts up and editing them.

Reading the CSV is `contacts_csv` (pure, streaming); `import_contacts` upserts its good rows in
batches inside one transaction, so memory stays flat and a database error writes nothing.
- The same email twice in one file: rows are applied in file order, so the later row's
  non-empty values win.
- Upsert: an existing contact (same email, case-insensitive) gets the row's non-empty values;
  an empty cell never erases a stored value. Custom fields are merged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring as _quote
from typing import IO, TYPE_CHECKING, Any

from seqctl import clock
from seqctl.db import transaction
from seqctl.engine.contacts_csv import (
    KNOWN_COLUMNS,
    canonical_timezone,
    column_name,
    normalise_email,
    open_csv,
)
from seqctl.engine.exits import on_stage_change
from seqctl.errors import SeqctlError, environment_problem

if TYPE_CHECKING:
    from sqlite_utils import Database

CONTACT_FIELDS = (*KNOWN_COLUMNS, "custom_fields", "suppressed")

_CHUNK = 5000


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    invalid: list[dict] = field(default_factory=list)  # {"line", "email", "reason"}
    emails: list[str] = field(default_factory=list)  # with keep_emails: unique, file order
    warnings: list[str] = field(default_factory=list)
    # (after, last): when every good row created a contact, their ids, in file order, are
    # after < id <= last and the emails table is left empty (see `copy_new_contacts`)
    new_ids: tuple[int, int] | None = None


def fresh_emails_table(db: Database, name: str) -> None:
    """(Re)create the temporary table `name` (pos, email): unique normalised addresses in the
    order they were first given, kept by SQLite (on disk) instead of in a Python list."""
    db.execute(f"DROP TABLE IF EXISTS temp.{name}")
    db.execute(f"CREATE TEMP TABLE {name} (pos INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")


def copy_new_contacts(db: Database, table: str, new_ids: tuple[int, int]) -> None:
    """Put the addresses of the contacts with ids in `new_ids` (ImportResult.new_ids) into the
    emails table, in id order, which is the file's."""
    db.execute(f"INSERT INTO temp.{table} (email) SELECT email FROM contacts "
               "WHERE id > ? AND id <= ? ORDER BY id", list(new_ids))


class _Addresses:
    """The unique addresses of an import, in file order, without holding them. While every row
    creates a contact (a file of new leads), the new ids, consecutive in file order, say it
    all; at the first row that updates a contact or repeats an address, those are copied to
    the emails table, which from then on gets the address of every row (`OR IGNORE`: the
    first occurrence keeps its place)."""

    def __init__(self, db: Database, table: str):
        self.db = db
        self.table = table
        self.first = self.last = db.execute("SELECT MAX(id) FROM contacts").fetchone()[0] or 0
        self.copied = False
        self.remember = f"INSERT OR IGNORE INTO temp.{table} (email) VALUES (?)"

    def write(self, batch: list[tuple]) -> None:
        """Upsert a batch of rows and note their addresses (each row's first parameter)."""
        if not batch:
            return
        self.db.conn.executemany(_UPSERT, batch)
        if not self.copied:
            last = self.db.execute("SELECT MAX(id) FROM contacts").fetchone()[0] or 0
            if last - self.last == len(batch):      # every row of the batch was an INSERT
                self.last = last
                batch.clear()
                return
            self.copy()
        self.db.conn.executemany(self.remember, [(params[0],) for params in batch])
        batch.clear()

    def copy(self) -> None:
        if not self.copied:
            copy_new_contacts(self.db, self.table, (self.first, self.last))
            self.copied = True

    def count(self) -> int:
        if self.copied:
            return self.db.execute(f"SELECT COUNT(*) FROM temp.{self.table}").fetchone()[0]
        return self.last - self.first

    def new_ids(self) -> tuple[int, int] | None:
        return None if self.copied else (self.first, self.last)


_IMPORTED = "seqctl_imported"


# --- importing ----------------------------------------------------------------------------

_UPSERT = """
INSERT INTO contacts (email, first_name, last_name, company_name, owner_email, lifecycle_stage,
                      timezone, custom_fields_json, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(email) DO UPDATE SET
    first_name = CASE WHEN excluded.first_name != '' THEN excluded.first_name ELSE first_name END,
    last_name = CASE WHEN excluded.last_name != '' THEN excluded.last_name ELSE last_name END,
    company_name = CASE WHEN excluded.company_name != '' THEN excluded.company_name
                        ELSE company_name END,
    owner_email = COALESCE(excluded.owner_email, owner_email),
    lifecycle_stage = CASE WHEN excluded.lifecycle_stage != '' THEN excluded.lifecycle_stage
                           ELSE lifecycle_stage END,
    timezone = COALESCE(excluded.timezone, timezone),
    custom_fields_json = json_patch(json_patch(excluded.custom_fields_json, custom_fields_json), ?),
    updated_at = excluded.updated_at
"""


@lru_cache(maxsize=4096)
def _json_key(name: str) -> str:
    return _quote(name) + ":"


def _to_json(fields: dict[str, str]) -> str:
    """`json.dumps` of a flat str -> str dict, several times faster (it runs for every row)."""
    return "{" + ",".join([_json_key(k) + _quote(v) for k, v in fields.items()]) + "}"


def _params(row: dict, stamp: str) -> tuple:
    custom = row["custom_fields"]
    full = _to_json(custom)
    return (
        row["email"],
        row.get("first_name", ""),
        row.get("last_name", ""),
        row.get("company_name", ""),
        row.get("owner_email") or None,
        row.get("lifecycle_stage", ""),
        row.get("timezone") or None,
        full,
        stamp,
        stamp,
        full if all(custom.values()) else _to_json({k: v for k, v in custom.items() if v}),
    )


def _unknown_owner(row: dict, owner: str) -> dict:
    return {
        "line": row["line"],
        "email": row["email"],
        "reason": f"unknown owner {owner} (add the rep with `seqctl users add "
        f"{owner} --first-name NAME`, or leave owner_email empty)",
    }


def import_contacts(
    db: Database,
    source: bytes | IO[bytes],
    *,
    filename: str,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_invalid: Callable[[dict], None] | None = None,
    keep_emails: bool = False,
    emails_table: str | None = None,
) -> ImportResult:
    """Read a contacts CSV (bytes or a binary stream) and upsert its good rows.

    The file is streamed: rows are upserted in batches, all inside one transaction, so a
    database error (or a file that turns out unreadable) writes nothing. Later rows of the same
    email win with their non-empty values, exactly as the upsert of each row in file order.
    Bad rows are reported in `invalid` (by line) and skipped, or given to `on_invalid` as they
    come (in file order) and not kept. A contact whose lifecycle stage changes exits the
    sequences that exit on stage change. `progress(done, total)` is called after each batch,
    in bytes of the file.

    The unique addresses of the good rows, in file order, are kept by SQLite, not in memory:
    as `new_ids` when every row created a contact, else in a temporary table (`_Addresses`).
    With `emails_table` that table is left for the caller (`enroll` reads it); `keep_emails`
    also lists the addresses in `emails`.
    """
    opened = open_csv(source, filename=filename)
    now = now or clock.now()
    stamp = clock.iso(now)
    users = {email for (email,) in db.execute("SELECT email FROM users").fetchall()}
    invalid: list[dict] = []
    report = on_invalid or invalid.append
    table = emails_table or _IMPORTED
    fresh_emails_table(db, table)
    try:
        with transaction(db):
            before = db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0]
            addresses = _Addresses(db, table)
            enrolled = _enrolled_stages(db)
            stages: dict[str, str] = {}     # the last stage the file gives an enrolled contact
            batch: list[tuple] = []
            for row, bad in opened.rows():
                if row is None:
                    report(bad)
                    continue
                owner = row.get("owner_email")
                if owner and owner not in users:
                    report(_unknown_owner(row, owner))
                    continue
                if enrolled and row["email"] in enrolled and row.get("lifecycle_stage"):
                    stages[row["email"]] = row["lifecycle_stage"]
                batch.append(_params(row, stamp))
                if len(batch) >= _CHUNK:
                    addresses.write(batch)
                    if progress:
                        progress(opened.position(), opened.size)
            addresses.write(batch)
            if progress:
                progress(opened.size, opened.size)
            after = db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0]
            unique = addresses.count()
            if keep_emails:
                addresses.copy()
            for email, (contact_id, stage) in enrolled.items():
                if stages.get(email, stage) != stage:
                    on_stage_change(db, contact_id, now)
        emails = ([e for (e,) in db.execute(f"SELECT email FROM temp.{table} ORDER BY pos")]
                  if keep_emails else [])
    except sqlite3.Error as exc:
        if environment_problem(exc, "") is not None:
            raise       # a full disk, a busy database...: the CLI says what to do
        raise SeqctlError(f"import of {filename} failed, nothing was written: {exc}") from None
    finally:
        if emails_table is None:
            db.execute(f"DROP TABLE IF EXISTS temp.{table}")
    invalid.sort(key=lambda problem: problem["line"])
    created = after - before
    return ImportResult(
        created=created,
        updated=unique - created,
        invalid=invalid,
        emails=emails,
        warnings=opened.warnings,
        new_ids=addresses.new_ids(),
    )


def _enrolled_stages(db: Database) -> dict[str, tuple[int, str]]:
    """email -> (contact id, stage) of contacts in a live enrollment (few, next to all contacts)."""
    rows = db.execute(
        "SELECT DISTINCT c.email, c.id, c.lifecycle_stage FROM enrollments e "
        "JOIN contacts c ON c.id = e.contact_id WHERE e.status IN ('active', 'paused', 'failed')"
    ).fetchall()
    return {email: (contact_id, stage) for email, contact_id, stage in rows}


# --- lookups and edits --------------------------------------------------------------------

_SELECT = (
    "SELECT c.id, c.email, c.first_name, c.last_name, c.company_name, c.owner_email, "
    "c.lifecycle_stage, c.timezone, c.custom_fields_json, s.email IS NOT NULL "
    "FROM contacts c LEFT JOIN suppressions s ON s.email = c.email"
)


def _contact(row: Any) -> dict[str, Any]:
    return {
        "id": row[0],
        "email": row[1],
        "first_name": row[2],
        "last_name": row[3],
        "company_name": row[4],
        "owner_email": row[5],
        "lifecycle_stage": row[6],
        "timezone": row[7],
        "custom_fields": json.loads(row[8] or "{}"),
        "suppressed": bool(row[9]),
    }


def public(contact: dict[str, Any]) -> dict[str, Any]:
    """The `contacts show` JSON shape."""
    return {key: contact[key] for key in CONTACT_FIELDS}


def _lookup_key(email: str) -> str:
    try:
        return normalise_email(email)
    except ValueError:
        return email.strip().lower()


def contact_by_id(db: Database, contact_id: int) -> dict[str, Any] | None:
    row = db.execute(_SELECT + " WHERE c.id = ?", [contact_id]).fetchone()
    return _contact(row) if row else None


def contact_by_email(db: Database, email: str) -> dict[str, Any] | None:
    """The contact with this address (or with it as an alias), or None."""
    key = _lookup_key(email)
    row = db.execute(_SELECT + " WHERE c.email = ?", [key]).fetchone()
    if row is None:
        row = db.execute(
            _SELECT + " WHERE c.id = (SELECT contact_id FROM contact_aliases WHERE email = ?)",
            [key],
        ).fetchone()
    return _contact(row) if row else None


def get_contact(db: Database, email: str) -> dict[str, Any]:
    """Like `contact_by_email`, but a missing contact is a SeqctlError."""
    contact = contact_by_email(db, email)
    if contact is None:
        raise SeqctlError(
            f"no contact {email.strip()}: import it with `seqctl contacts import FILE`"
        )
    return contact


def ensure_contact(db: Database, email: str) -> int:
    """The id of the contact with this address, created bare when missing.
    SeqctlError when the address is invalid."""
    try:
        key = normalise_email(email)
    except ValueError as exc:
        raise SeqctlError(f"'{email.strip()}' is not a valid email address: {exc}") from None
    existing = contact_by_email(db, key)
    if existing:
        return existing["id"]
    stamp = clock.iso(clock.now())
    with transaction(db):
        db.execute(
            "INSERT INTO contacts (email, created_at, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(email) DO NOTHING",
            [key, stamp, stamp],
        )
        return db.execute("SELECT id FROM contacts WHERE email = ?", [key]).fetchone()[0]


def list_contacts(
    db: Database, *, stage: str | None = None, search: str | None = None
) -> list[dict[str, Any]]:
    """Contacts by email; `stage` matches exactly (case-insensitive), `search` is a substring
    of email, name or company."""
    sql, params = _SELECT + " WHERE 1", []
    if stage is not None:
        sql += " AND lower(c.lifecycle_stage) = lower(?)"
        params.append(stage.strip())
    if search:
        sql += (
            " AND (c.email LIKE ? OR c.first_name || ' ' || c.last_name LIKE ? "
            "OR c.company_name LIKE ?)"
        )
        params += [f"%{search.strip()}%"] * 3
    return [_contact(row) for row in db.execute(sql + " ORDER BY c.email", params).fetchall()]


def set_field(db: Database, email: str, field_name: str, value: str) -> dict[str, Any]:
    """Set one known or custom field, validated like import. An empty value clears it (a custom
    field is removed; an empty owner means the default user)."""
    contact = get_contact(db, email)
    name = column_name(field_name)
    if not name:
        raise SeqctlError(f"'{field_name}' is not a field name")
    value = value.strip()
    column: str
    stored: Any
    if name == "email":
        try:
            stored = normalise_email(value)
        except ValueError as exc:
            raise SeqctlError(f"'{value}' is not a valid email address: {exc}") from None
        other = db.execute(
            "SELECT 1 FROM contacts WHERE email = ? AND id != ?", [stored, contact["id"]]
        ).fetchone()
        if other:
            raise SeqctlError(f"another contact already has the address {stored}")
        column = "email"
    elif name == "owner_email":
        stored = value.lower() or None
        if (
            stored
            and db.execute("SELECT 1 FROM users WHERE email = ?", [stored]).fetchone() is None
        ):
            raise SeqctlError(
                f"unknown owner {stored}: add the rep with "
                f"`seqctl users add {stored} --first-name NAME`"
            )
        column = "owner_email"
    elif name == "timezone":
        stored = canonical_timezone(value) if value else None
        if value and stored is None:
            raise SeqctlError(
                f"unknown timezone '{value}': use an IANA name such as America/New_York"
            )
        column = "timezone"
    elif name == "lifecycle_stage":
        return set_stage(db, contact["email"], value)
    elif name in KNOWN_COLUMNS:
        column, stored = name, value
    elif name in ("custom_fields", "suppressed", "id"):
        raise SeqctlError(f"'{name}' cannot be set (suppressions: `seqctl suppress`)")
    else:
        custom = dict(contact["custom_fields"])
        if value:
            custom[name] = value
        else:
            custom.pop(name, None)
        column, stored = "custom_fields_json", json.dumps(custom, ensure_ascii=False)
    db.execute(
        f"UPDATE contacts SET {column} = ?, updated_at = ? WHERE id = ?",
        [stored, clock.iso(clock.now()), contact["id"]],
    )
    return get_contact(db, stored if column == "email" else contact["email"])


def set_stage(db: Database, email: str, stage: str) -> dict[str, Any]:
    """Change the lifecycle stage; when it really changes, sequences that exit on a stage
    change are exited for this contact."""
    contact = get_contact(db, email)
    stage = stage.strip()
    now = clock.now()
    with transaction(db):
        db.execute(
            "UPDATE contacts SET lifecycle_stage = ?, updated_at = ? WHERE id = ?",
            [stage, clock.iso(now), contact["id"]],
        )
        exited = (
            on_stage_change(db, contact["id"], now) if stage != contact["lifecycle_stage"] else []
        )
    result = get_contact(db, contact["email"])
    result["exited_enrollments"] = list(exited or [])
    return result
