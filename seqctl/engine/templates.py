"""Saved email templates (subject + body) that steps use with `template: NAME`, one set per
user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.errors import SeqctlError


def user_id(db: Database, email: str | None) -> int:
    """The id of user `email`, or of the default user when None."""
    if email:
        row = db.execute("SELECT id FROM users WHERE email = ?",
                         [email.strip().lower()]).fetchone()
        if row is None:
            raise SeqctlError(f"no user {email}: see `seqctl users list`")
        return row[0]
    row = db.execute("SELECT id FROM users WHERE is_default = 1").fetchone()
    if row is None:
        raise SeqctlError("no users yet: seqctl users add EMAIL --first-name NAME")
    return row[0]


def get_template(db: Database, name: str, user: str | None = None) -> dict[str, Any]:
    """{"id", "name", "subject", "body", "user", "created_at"} of a user's template."""
    row = db.execute(
        "SELECT t.id, t.name, t.subject, t.body, u.email, t.created_at FROM templates t "
        "JOIN users u ON u.id = t.user_id WHERE t.name = ? AND t.user_id = ?",
        [name, user_id(db, user)]).fetchone()
    if row is None:
        raise SeqctlError(f"no template '{name}': see `seqctl templates list`")
    return dict(zip(("id", "name", "subject", "body", "user", "created_at"), row, strict=True))


def save_from_step(
    db: Database, name: str, sequence: str, position: int, now: datetime, *,
    user: str | None = None,
) -> dict[str, Any]:
    """Save an email step's subject and body as template `name` (replacing one of that name);
    a step that itself uses a template copies that template. Returns {"name", "subject",
    "body"}."""
    row = db.execute(
        "SELECT st.step_type, st.subject, st.body, st.template FROM steps st "
        "JOIN sequences s ON s.id = st.sequence_id "
        "WHERE s.name = ? AND st.position = ? AND st.removed = 0", [sequence, position]).fetchone()
    if row is None:
        raise SeqctlError(
            f"'{sequence}' has no step {position}: see `seqctl sequence show {sequence}`")
    if row[0] != "email":
        raise SeqctlError(f"step {position} of '{sequence}' is a {row[0]} step, not an email")
    subject, body = row[1], row[2]
    if row[3]:
        saved = get_template(db, row[3], user)
        subject, body = saved["subject"], saved["body"]
    owner = user_id(db, user)
    db.execute(
        "INSERT INTO templates (user_id, name, subject, body, created_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT(user_id, name) DO UPDATE SET subject = excluded.subject, "
        "body = excluded.body", [owner, name, subject, body or "", iso(now)])
    return {"name": name, "subject": subject, "body": body}


def list_templates(db: Database, user: str | None = None) -> list[dict[str, Any]]:
    """A user's templates by name: {"name", "subject", "created_at"}."""
    return [
        {"name": r[0], "subject": r[1], "created_at": r[2]}
        for r in db.execute(
            "SELECT name, subject, created_at FROM templates WHERE user_id = ? ORDER BY name",
            [user_id(db, user)])
    ]


def delete_template(db: Database, name: str, *, user: str | None = None,
                    force: bool = False) -> None:
    """Delete a template. Refused while a live step uses it, unless `force`."""
    template = get_template(db, name, user)
    users = db.execute(
        "SELECT s.name, st.position FROM steps st JOIN sequences s ON s.id = st.sequence_id "
        "WHERE st.template = ? AND st.removed = 0", [name]).fetchall()
    if users and not force:
        where = ", ".join(f"{s} step {p}" for s, p in users)
        raise SeqctlError(f"template '{name}' is used by {where}; change those steps first "
                          "or pass --force")
    db.execute("DELETE FROM templates WHERE id = ?", [template["id"]])
