"""`seqctl templates save|list|show|delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.clock import iso
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.errors import SeqctlError

app = group("Saved email templates (subject + body) that steps can use with `template: NAME`.")

UserOpt = Annotated[str | None, typer.Option(
    "--user", help="Owner of the template (default: the default user).")]


def _user_id(database, email: str | None) -> int:
    if email:
        row = database.execute("SELECT id FROM users WHERE email = ?",
                               [email.strip().lower()]).fetchone()
        if row is None:
            raise SeqctlError(f"no user {email}: see `seqctl users list`")
        return row[0]
    row = database.execute("SELECT id FROM users WHERE is_default = 1").fetchone()
    if row is None:
        raise SeqctlError("no users yet: seqctl users add EMAIL --first-name NAME")
    return row[0]


def _find(database, name: str, user: str | None) -> tuple:
    row = database.execute(
        "SELECT t.id, t.name, t.subject, t.body, u.email, t.created_at FROM templates t "
        "JOIN users u ON u.id = t.user_id WHERE t.name = ? AND t.user_id = ?",
        [name, _user_id(database, user)]).fetchone()
    if row is None:
        raise SeqctlError(f"no template '{name}': see `seqctl templates list`")
    return row


@app.command("save")
def save(
    name: str,
    sequence: Annotated[str, typer.Option("--sequence", help="Copy from this sequence...")],
    step: Annotated[int, typer.Option("--step", min=1, help="...and this email step.")],
    user: UserOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Save an email step's subject and body as template NAME (replacing one of that name)."""
    database = db()
    row = database.execute(
        "SELECT st.step_type, st.subject, st.body, st.template FROM steps st "
        "JOIN sequences s ON s.id = st.sequence_id "
        "WHERE s.name = ? AND st.position = ? AND st.removed = 0", [sequence, step]).fetchone()
    if row is None:
        raise SeqctlError(f"'{sequence}' has no step {step}: see `seqctl sequence show {sequence}`")
    if row[0] != "email":
        raise SeqctlError(f"step {step} of '{sequence}' is a {row[0]} step, not an email")
    subject, body = row[1], row[2]
    if row[3]:
        subject, body = _find(database, row[3], user)[2:4]
    user_id = _user_id(database, user)
    database.execute(
        "INSERT INTO templates (user_id, name, subject, body, created_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT(user_id, name) DO UPDATE SET subject = excluded.subject, "
        "body = excluded.body", [user_id, name, subject, body or "", iso(clock.now())])
    if json_out:
        output.emit_json({"name": name, "subject": subject, "body": body})
    else:
        output.info(f"template '{name}' saved")


@default(app)
@app.command("list")
def list_templates(user: UserOpt = None, json_out: JsonOpt = False) -> None:
    """List a user's templates."""
    database = db()
    rows = [
        {"name": r[0], "subject": r[1], "created_at": r[2]}
        for r in database.execute(
            "SELECT name, subject, created_at FROM templates WHERE user_id = ? ORDER BY name",
            [_user_id(database, user)])
    ]
    if json_out:
        output.emit_json(rows)
    else:
        output.table(rows, ["name", "subject", "created_at"], empty="no templates yet")


@app.command("show")
def show(name: str, user: UserOpt = None, json_out: JsonOpt = False) -> None:
    """Show a template's subject and body."""
    row = _find(db(), name, user)
    document = {"name": row[1], "subject": row[2], "body": row[3], "user": row[4],
                "created_at": row[5]}
    if json_out:
        output.emit_json(document)
        return
    output.line(f"Subject: {row[2] or '(none: replies in the thread)'}\n")
    output.line(row[3])


@app.command("delete")
def delete(
    name: str,
    user: UserOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Delete even if steps use it.")] = False,
) -> None:
    """Delete a template. Refuses while a live step uses it, unless --force."""
    database = db()
    row = _find(database, name, user)
    users = database.execute(
        "SELECT s.name, st.position FROM steps st JOIN sequences s ON s.id = st.sequence_id "
        "WHERE st.template = ? AND st.removed = 0", [name]).fetchall()
    if users and not force:
        where = ", ".join(f"{s} step {p}" for s, p in users)
        raise SeqctlError(f"template '{name}' is used by {where}; change those steps first "
                          "or pass --force")
    database.execute("DELETE FROM templates WHERE id = ?", [row[0]])
    output.info(f"template '{name}' deleted")
