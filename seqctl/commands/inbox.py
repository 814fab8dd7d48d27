"""`seqctl inbox add|connect|import|list|set|remove|test`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import (
    InboxArg,
    JsonOpt,
    db,
    default,
    group,
    install_key,
    subgroup,
)
from seqctl.engine import accounts, inbox_admin
from seqctl.errors import SeqctlError

app = group("The mailboxes seqctl sends from and watches for replies.",
            examples=["seqctl inbox add maildir riley@acme.test --dir ~/Mail/seqctl",
                      "seqctl inbox"])
add_app = subgroup("Add an inbox: maildir (local, no account) or smtp.",
                   ["seqctl inbox add maildir riley@acme.test --dir ~/Mail/seqctl"])
app.add_typer(add_app, name="add")
connect_app = subgroup("Connect a Gmail or Outlook mailbox through its own sign-in.",
                       ["seqctl inbox connect gmail --client-secrets client_secret.json"])
app.add_typer(connect_app, name="connect")
import_app = subgroup("Store an authorization made elsewhere (headless hosts).",
                      ["seqctl inbox import gmail riley@acme.test --credentials token.json"])
app.add_typer(import_app, name="import")

DailyCap = Annotated[int | None, typer.Option("--daily-cap", min=1,
                                               help="Most emails in any 24 hours.")]
DefaultOpt = Annotated[bool, typer.Option("--default", help="Make it its owner's default inbox.")]


def _parse_spacing(value: str | None) -> str | None:
    """Checked while the options are parsed, so a bad value stops before anything runs."""
    if value is not None:
        try:
            accounts.parse_spacing(value)
        except SeqctlError as exc:
            raise typer.BadParameter(str(exc).removeprefix("--spacing "),
                                     param_hint="--spacing") from None
    return value


SpacingOpt = Annotated[str | None, typer.Option(
    "--spacing", metavar="MIN-MAX", callback=_parse_spacing,
    help="Seconds between two sends, picked at random in the range (e.g. 60-180; 0: off).")]


def _spacing(value: str | None) -> tuple[int, int] | None:
    return None if value is None else accounts.parse_spacing(value)


CalendarOpt = Annotated[bool, typer.Option(
    "--calendar", help="Also read the calendar, so a booked meeting ends the contact's sequences.")]


def _done(row: dict, json_out: bool) -> None:
    if json_out:
        output.emit_json(_public(row))
    else:
        output.info(f"inbox {row['address']} ({row['kind']}) ready, owner {row['owner_email']}"
                    + (", default" if row["default"] else ""))


def _public(row: dict) -> dict:
    status = accounts.sending_status(row, clock.now())
    held = status != "active"
    return {
        "address": row["address"], "kind": row["kind"], "owner": row["owner_email"],
        "default": row["default"], "status": status,
        "status_until": row["status_until"] if status == "throttled" else None,
        "status_reason": row["status_message"] if held else None,
        "status_message": row["status_message"] if held else None,
        "daily_cap": row["effective_daily_cap"], "spacing": row["spacing"],
        "last_sync_at": row["last_sync_at"], "config": row["config"],
    }


@add_app.command("maildir")
def add_maildir(
    address: InboxArg,
    directory: Annotated[Path, typer.Option("--dir", help="Maildir root: sent/ and inbox/ inside.")],
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    spacing: SpacingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add a local Maildir inbox: sent mail is written to DIR/sent, replies read from DIR/inbox.

    \b
    Example:
      seqctl inbox add maildir riley@acme.test --dir ~/Mail/seqctl
    """
    from seqctl.providers.maildir import create_maildir

    directory = directory.expanduser().resolve()
    try:
        create_maildir(directory)
    except OSError as exc:
        raise SeqctlError(f"cannot create maildir {directory}: {exc.strerror}") from None
    row = accounts.add_inbox(db(), "maildir", address, {"dir": str(directory)},
                             daily_cap=daily_cap, make_default=make_default,
                             spacing=_spacing(spacing))
    _done(row, json_out)


@add_app.command("smtp")
def add_smtp(
    address: InboxArg,
    smtp_host: Annotated[str, typer.Option("--smtp-host", help="The SMTP server (e.g. smtp.fastmail.com).")],
    smtp_port: Annotated[int | None, typer.Option("--smtp-port", help="Default: 465 with ssl, else 587.")] = None,
    security: Annotated[str, typer.Option("--security", help="ssl | starttls | none")] = "starttls",
    imap_host: Annotated[str | None, typer.Option("--imap-host", help="The IMAP server for replies and the Sent copy (default: none).")] = None,
    imap_port: Annotated[int | None, typer.Option("--imap-port", help="Default: 993.")] = None,
    username: Annotated[str | None, typer.Option("--username", help="Login name (default: the address).")] = None,
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="Name of the environment variable holding the password.")] = None,
    oauth: Annotated[str | None, typer.Option(
        "--oauth", help="Log in with XOAUTH2 using this address's gmail or outlook "
                        "authorization (instead of a password).")] = None,
    client_id: Annotated[str | None, typer.Option(
        "--client-id", help="With --oauth outlook: the app's client id.")] = None,
    tenant: Annotated[str, typer.Option("--tenant", help="With --oauth outlook.")] = "common",
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    spacing: SpacingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add an SMTP (send) + IMAP (replies, Sent copy) inbox. The password is never stored:
    --password-env names a variable read at send time. With --oauth gmail|outlook the login is
    XOAUTH2 with the token of that address's authorization (`inbox connect` or `inbox import`
    first).

    \b
    Example:
      MAIL_PW=... seqctl inbox add smtp riley@acme.test --smtp-host smtp.fastmail.com --imap-host imap.fastmail.com --password-env MAIL_PW
    """
    if security not in ("ssl", "starttls", "none"):
        raise typer.BadParameter("ssl, starttls or none", param_hint="--security")
    if oauth not in (None, "gmail", "outlook"):
        raise typer.BadParameter("gmail or outlook", param_hint="--oauth")
    if oauth == "outlook" and not client_id:
        raise typer.BadParameter("--oauth outlook needs --client-id", param_hint="--client-id")
    if oauth and password_env:
        raise typer.BadParameter("use --oauth or --password-env, not both", param_hint="--oauth")
    port = smtp_port or {"ssl": 465, "starttls": 587, "none": 25}[security]
    settings = {
        "smtp_host": smtp_host, "smtp_port": port, "security": security,
        "imap_host": imap_host, "imap_port": imap_port or (993 if imap_host else None),
        "username": username or address, "password_env": password_env,
    }
    if oauth:
        settings.update({"auth": "xoauth2", "oauth": oauth})
        if oauth == "outlook":
            settings.update({"client_id": client_id, "tenant": tenant})
    row = accounts.add_inbox(db(), "smtp", address, settings, daily_cap=daily_cap,
                             make_default=make_default, spacing=_spacing(spacing))
    _done(row, json_out)


@default(app)
@app.command("list")
def list_inboxes(json_out: JsonOpt = False) -> None:
    """List inboxes with owner, status, daily cap, sends in the last 24 hours and last sync.

    \b
    Examples:
      seqctl inbox
      seqctl inbox list --json
    """
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
        if r["status_until"]:
            r["status"] = f"{r['status']} until {r['status_until']}"
        if r["status_reason"]:
            r["status"] = f"{r['status']}: {r['status_reason']}"
    output.table(rows, ["address", "kind", "owner", "default", "status", "cap", "spacing",
                        "last_sync_at"],
                 empty="no inboxes yet: seqctl inbox add maildir you@example.com --dir ~/Mail/seqctl")


@app.command("set")
def set_inbox(
    address: InboxArg,
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    spacing: SpacingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change an inbox's daily cap or pacing, or make it its owner's default.
    `--spacing 60-180` waits a random 60 to 180 seconds after each send before the next.

    \b
    Example:
      seqctl inbox set riley@acme.test --daily-cap 40 --spacing 60-180
    """
    row = inbox_admin.set_inbox(db(), address, daily_cap=daily_cap, make_default=make_default,
                                spacing=_spacing(spacing))
    _done(row, json_out)


@app.command("remove")
def remove(address: InboxArg) -> None:
    """Remove an inbox. Its queued emails and the enrollments that send from it fail with a
    message; add the inbox again (or another) and `seqctl resume --failed --inbox ADDRESS`.

    \b
    Example:
      seqctl inbox remove old@acme.test
    """
    failed = accounts.remove_inbox(db(), address, clock.now())
    output.info(f"inbox {address} removed" + (f"; {output.plural(failed, 'enrollment')} failed" if failed
                                              else ""))


# -- connecting ---------------------------------------------------------------------------------


def _store_connected(kind: str, address: str, inbox_config: dict, daily_cap: int | None,
                     make_default: bool, json_out: bool, spacing: str | None = None) -> None:
    """Save the (re)connected inbox and say what to do next. A fresh grant clears
    `needs_reauth`; a bounce pause is about the list, not the grant, so it stays."""
    row = accounts.add_inbox(db(), kind, address, inbox_config, daily_cap=daily_cap,
                             make_default=make_default, spacing=_spacing(spacing))
    _done(row, json_out)
    _next_steps(row)


def _next_steps(row: dict) -> None:
    from seqctl.engine.enroll import failed_enrollment_ids

    address = row["address"]
    failed = failed_enrollment_ids(db(), address)
    if failed:
        output.info(f"{output.plural(len(failed), 'enrollment')} failed on this inbox; send them again with:\n"
                    f"    seqctl resume --failed --inbox {address}")
    if row["status"] == "paused_bounces":
        output.info(f"it is still paused for bounces ({row['status_message']}); "
                    f"`seqctl inbox resume {address}` when the list is clean")
    output.info(f"next: `seqctl inbox test {address} --to YOU@EXAMPLE.COM` sends a test message;"
                f" then `seqctl enroll SEQUENCE --inbox {address} ...`")


@connect_app.command("gmail")
def connect_gmail(
    client_secrets: Annotated[Path, typer.Option(
        "--client-secrets", help="OAuth client JSON (type Desktop app) from Google Cloud Console.")],
    no_browser: Annotated[bool, typer.Option(
        "--no-browser", help="Print the URL instead of opening a browser (SSH, servers).")] = False,
    calendar: CalendarOpt = False,
    port: Annotated[int, typer.Option(
        "--port", help="Local port Google redirects the browser to (0: any free port).")] = 0,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds to wait for the browser to come back.")] = 600,
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    spacing: SpacingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Connect a Gmail / Google Workspace mailbox: Google's sign-in runs in the browser and
    redirects back to a local port; the grant is stored in $SEQCTL_HOME/tokens (0600).

    \b
    Example:
      seqctl inbox connect gmail --client-secrets ~/Downloads/client_secret.json
    """
    from seqctl import config
    from seqctl.providers import gmail

    address, path = gmail.connect_gmail(
        client_secrets.expanduser(), config.home(), open_browser=not no_browser,
        calendar=calendar, port=port, printer=output.info, timeout_seconds=timeout,
    )
    output.info(f"authorized {address}; token saved to {path}")
    _store_connected("gmail", address, {"calendar": calendar}, daily_cap, make_default, json_out,
                     spacing)


@connect_app.command("outlook")
def connect_outlook(
    client_id: Annotated[str, typer.Option(
        "--client-id", help="Application (client) ID of your Entra app registration.")],
    tenant: Annotated[str, typer.Option(
        "--tenant", help="Directory (tenant) ID or domain; common for any account.")] = "common",
    calendar: CalendarOpt = False,
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    spacing: SpacingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Connect an Outlook / Microsoft 365 mailbox with a device code: open the printed URL on
    any device and enter the code. The MSAL token cache is stored in $SEQCTL_HOME/tokens.

    \b
    Example:
      seqctl inbox connect outlook --client-id 00000000-0000-0000-0000-000000000000
    """
    from seqctl import config
    from seqctl.providers import outlook

    address, path = outlook.connect_outlook(client_id, tenant, config.home(),
                                            printer=output.info, calendar=calendar)
    output.info(f"authorized {address}; token cache saved to {path}")
    _store_connected("outlook", address,
                     {"client_id": client_id, "tenant": tenant, "calendar": calendar},
                     daily_cap, make_default, json_out, spacing)


@import_app.command("gmail")
def import_gmail(
    address: InboxArg,
    credentials: Annotated[Path, typer.Option(
        "--credentials", help="Authorized-user JSON (client_id, client_secret, refresh_token).")],
    calendar: CalendarOpt = False,
    daily_cap: DailyCap = None,
    make_default: DefaultOpt = False,
    spacing: SpacingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Use a Gmail authorization made on another machine (e.g. `inbox connect gmail` on a
    laptop, then copy its token file): for servers without a browser.

    \b
    Example:
      seqctl inbox import gmail riley@acme.test --credentials token.json
    """
    import json

    from seqctl import config
    from seqctl.providers import gmail

    address = accounts.normalise_email(address, what="inbox address")
    path = gmail.import_gmail_credentials(address, credentials.expanduser(), config.home())
    scopes = json.loads(path.read_text()).get("scopes") or []
    if calendar and gmail.CALENDAR_READONLY not in scopes:
        output.warn(f"these credentials do not grant {gmail.CALENDAR_READONLY}: "
                    "bookings will not be detected")
    output.info(f"stored the Gmail authorization of {address} in {path}")
    _store_connected("gmail", address, {"calendar": calendar}, daily_cap, make_default, json_out,
                     spacing)


# -- resume, test -------------------------------------------------------------------------------


@app.command("resume")
def resume(address: InboxArg, json_out: JsonOpt = False) -> None:
    """Let a paused inbox send again. A bounce pause (`paused_bounces`) ends at once; an inbox
    that `needs_reauth` is first checked with its provider, and stays paused (with the command
    to reconnect) unless its authorization works again. Failed enrollments are resumed
    separately: `seqctl resume --failed --inbox ADDRESS`.

    \b
    Example:
      seqctl inbox resume riley@acme.test
    """
    database = db()
    was = inbox_admin.resume(database, address, clock.now())
    row = accounts.inbox(database, address)
    if was is None:
        output.info(f"inbox {row['address']} is {row['status']}; nothing to resume")
    else:
        output.info(f"inbox {row['address']} is active again (was {was})")
    if json_out:
        output.emit_json(_public(row))
    _next_steps(row)


@app.command("test")
def test_inbox(
    address: InboxArg,
    to: Annotated[str, typer.Option("--to", help="Where to send the test message.")],
    json_out: JsonOpt = False,
) -> None:
    """Send one test message from ADDRESS to EMAIL now, through the same outbox and provider
    path as sequence emails, and print what the provider answered.

    \b
    Example:
      seqctl inbox test riley@acme.test --to me@example.com
    """
    result = inbox_admin.send_test(db(), address, to, clock.now(), key=install_key())
    outbox_id, message_id = result["outbox_id"], result["message_id"]
    if result["tick_running"]:
        output.info(f"a tick is running; it sends the test message (outbox {outbox_id})")
        if json_out:
            output.emit_json({"outbox_id": outbox_id, "status": "queued",
                              "message_id": message_id})
        return
    if json_out:
        output.emit_json({k: v for k, v in result.items() if k != "tick_running"})
    if result["status"] == "sent":
        if not json_out:
            output.line(f"sent a test message from {result['from']} to {result['to']} "
                        f"(Message-ID {message_id}, provider id "
                        f"{result['provider_message_id'] or '-'})")
        return
    if result["status"] == "queued":
        message = (f"not sent yet: {result['error']}; the next tick retries "
                   f"(outbox {outbox_id})")
    else:
        message = f"the test message was not sent ({result['status']}): {result['error']}"
    if json_out:
        output.info(message)
        raise typer.Exit(1)
    raise SeqctlError(message)
