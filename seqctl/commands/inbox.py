"""`seqctl inbox add|connect|import|list|set|remove|test`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seqctl import output
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.db import transaction
from seqctl.engine import accounts
from seqctl.errors import SeqctlError

app = group("The mailboxes seqctl sends from and watches for replies.")
add_app = typer.Typer(help="Add an inbox: maildir (local, no account) or smtp.",
                      no_args_is_help=True)
app.add_typer(add_app, name="add")

DailyCap = Annotated[int | None, typer.Option("--daily-cap", min=1,
                                               help="Most emails in any 24 hours.")]
DefaultOpt = Annotated[bool, typer.Option("--default", help="Make it its owner's default inbox.")]


def _done(row: dict, json_out: bool) -> None:
    if json_out:
        output.emit_json(_public(row))
    else:
        output.info(f"inbox {row['address']} ({row['kind']}) ready, owner {row['owner_email']}"
                    + (", default" if row["default"] else ""))


def _public(row: dict) -> dict:
    return {
        "address": row["address"], "kind": row["kind"], "owner": row["owner_email"],
        "default": row["default"], "status": row["status"],
        "status_message": row["status_message"], "daily_cap": row["effective_daily_cap"],
        "last_sync_at": row["last_sync_at"], "config": row["config"],
    }


@add_app.command("maildir")
def add_maildir(
    address: str,
    directory: Annotated[Path, typer.Option("--dir", help="Maildir root: sent/ and inbox/ inside.")],
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Add a local Maildir inbox: sent mail is written to DIR/sent, replies read from DIR/inbox."""
    from seqctl.providers.maildir import create_maildir

    directory = directory.expanduser().resolve()
    try:
        create_maildir(directory)
    except OSError as exc:
        raise SeqctlError(f"cannot create maildir {directory}: {exc.strerror}") from None
    row = accounts.add_inbox(db(), "maildir", address, {"dir": str(directory)},
                             daily_cap=daily_cap, make_default=make_default)
    _done(row, json_out)


@add_app.command("smtp")
def add_smtp(
    address: str,
    smtp_host: Annotated[str, typer.Option("--smtp-host")],
    smtp_port: Annotated[int | None, typer.Option("--smtp-port")] = None,
    security: Annotated[str, typer.Option("--security", help="ssl | starttls | none")] = "starttls",
    imap_host: Annotated[str | None, typer.Option("--imap-host")] = None,
    imap_port: Annotated[int | None, typer.Option("--imap-port")] = None,
    username: Annotated[str | None, typer.Option("--username")] = None,
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="Name of the environment variable holding the password.")] = None,
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Add an SMTP (send) + IMAP (replies, Sent copy) inbox. The password is never stored:
    --password-env names a variable read at send time."""
    if security not in ("ssl", "starttls", "none"):
        raise SeqctlError(f"--security must be ssl, starttls or none, not '{security}'")
    port = smtp_port or {"ssl": 465, "starttls": 587, "none": 25}[security]
    settings = {
        "smtp_host": smtp_host, "smtp_port": port, "security": security,
        "imap_host": imap_host, "imap_port": imap_port or (993 if imap_host else None),
        "username": username or address, "password_env": password_env,
    }
    row = accounts.add_inbox(db(), "smtp", address, settings, daily_cap=daily_cap,
                             make_default=make_default)
    _done(row, json_out)


@default(app)
@app.command("list")
def list_inboxes(json_out: JsonOpt = False) -> None:
    """List inboxes with owner, status, daily cap, sends in the last 24 hours and last sync."""
    from seqctl.engine.dispatch import sent_last_24h

    database = db()
    rows = []
    for row in accounts.list_inboxes(database):
        public = _public(row)
        public["sent_24h"] = sent_last_24h(database, row["id"])
        rows.append(public)
    if json_out:
        output.emit_json(rows)
        return
    for r in rows:
        r["cap"] = f"{r['sent_24h']}/{r['daily_cap']}"
        if r["status_message"]:
            r["status"] = f"{r['status']}: {r['status_message']}"
    output.table(rows, ["address", "kind", "owner", "default", "status", "cap", "last_sync_at"],
                 empty="no inboxes yet: seqctl inbox add maildir you@example.com --dir ~/Mail/seqctl")


@app.command("set")
def set_inbox(
    address: str,
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Change an inbox's daily cap or make it its owner's default."""
    database = db()
    row = accounts.inbox(database, address)
    with transaction(database):
        if daily_cap is not None:
            database.execute("UPDATE inboxes SET daily_cap = ? WHERE id = ?", [daily_cap, row["id"]])
        if make_default:
            database.execute("UPDATE inboxes SET is_default = (id = ?) WHERE user_id = ?",
                             [row["id"], row["user_id"]])
    _done(accounts.inbox(database, address), json_out)


@app.command("remove")
def remove(address: str) -> None:
    """Remove an inbox. Enrollments that send from it fail when their next step fires, and can
    be moved with `seqctl resume --failed --inbox NEW`."""
    database = db()
    row = accounts.inbox(database, address)
    with transaction(database):
        database.execute("UPDATE enrollments SET inbox_id = NULL WHERE inbox_id = ?", [row["id"]])
        database.execute(
            "UPDATE outbox SET status = 'failed', error = 'inbox removed' "
            "WHERE inbox_id = ? AND status = 'queued'", [row["id"]])
        database.execute("UPDATE inboxes SET address = ?, status = 'removed', is_default = 0 "
                         "WHERE id = ?", [f"removed-{row['id']}:{row['address']}", row["id"]])
    output.info(f"inbox {address} removed")
