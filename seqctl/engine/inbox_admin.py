"""Administering inboxes beyond adding them: caps and the default inbox, resuming a paused
inbox (checking a revoked grant first), and the test message of `seqctl inbox test`."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine import accounts, dispatch
from seqctl.engine.inbox_health import resume_inbox
from seqctl.engine.message import OutgoingEmail, build_message
from seqctl.engine.tick import TickLock
from seqctl.errors import SeqctlError
from seqctl.providers.base import AuthRevokedError, ProviderError
from seqctl.providers.registry import ProviderFactory, default_factory

PAUSED = ("needs_reauth", "paused_bounces", "throttled")


def set_inbox(
    db: Database, address: str, *, daily_cap: int | None = None, make_default: bool = False,
    spacing: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Change an inbox's daily cap or pacing (`accounts.parse_spacing`), or make it its
    owner's default. Returns the inbox."""
    row = accounts.inbox(db, address)
    with transaction(db):
        if spacing is not None:
            accounts.set_spacing(db, row["id"], spacing)
        if daily_cap is not None:
            if daily_cap < 1:
                raise SeqctlError(f"a daily cap is at least 1, not {daily_cap}")
            db.execute("UPDATE inboxes SET daily_cap = ? WHERE id = ?", [daily_cap, row["id"]])
        if make_default:
            db.execute("UPDATE inboxes SET is_default = (id = ?) WHERE user_id = ?",
                       [row["id"], row["user_id"]])
    return accounts.inbox(db, address)


def resume(
    db: Database, address: str, now: datetime, *, factory: ProviderFactory = default_factory
) -> str | None:
    """Let a paused inbox send again; returns the status it had, None when it was not paused.
    A throttle ends at once (the provider may refuse again); a bounce pause ends at once (judged afresh from now); an inbox that `needs_reauth` is first
    checked with its provider and stays paused unless its authorization works again."""
    row = accounts.inbox(db, address)
    if row["status"] not in PAUSED:
        return None
    if row["status"] == "needs_reauth":
        try:
            factory(row).fetch_new(None)
        except AuthRevokedError as exc:
            raise SeqctlError(f"{row['address']} is still not authorized ({exc}); reconnect it "
                              f"with {accounts.reconnect_command(row)}") from None
        except ProviderError as exc:
            raise SeqctlError(f"could not check {row['address']}: {exc}; try again") from None
        with transaction(db):
            db.execute("UPDATE inboxes SET status = 'active', status_message = NULL "
                       "WHERE id = ? AND status = 'needs_reauth'", [row["id"]])
    elif row["status"] == "throttled":       # ends the provider's limit early
        with transaction(db):
            db.execute("UPDATE inboxes SET status = 'active', status_message = NULL, "
                       "status_until = NULL WHERE id = ? AND status = 'throttled'", [row["id"]])
    else:
        resume_inbox(db, row["address"], now)
    return row["status"]


def send_test(
    db: Database, address: str, to: str, now: datetime, *, key: bytes,
    factory: ProviderFactory = default_factory,
) -> dict[str, Any]:
    """Send one test message from `address` to `to` now, through the outbox and the provider
    like a sequence email. Returns {"outbox_id", "status", "to", "from", "message_id",
    "provider_message_id", "thread_id", "error"}; status "queued" with "tick_running" true
    when a tick holds the lock (that tick sends it)."""
    row = accounts.inbox(db, address)
    if row["status"] != "active":
        hint = row["status_message"] or f"see `seqctl inbox resume {row['address']}`"
        raise SeqctlError(f"inbox {row['address']} is {row['status']}: {hint}")
    recipient = accounts.normalise_email(to, what="--to")
    owner = accounts.user(db, row["owner_email"])
    domain = row["address"].rsplit("@", 1)[-1]
    message_id = f"<sq.test.{secrets.token_hex(8)}@{domain}>"
    subject = f"seqctl test from {row['address']}"
    try:
        built = build_message(OutgoingEmail(
            from_address=row["address"],
            from_name=" ".join(x for x in (owner["first_name"], owner["last_name"]) if x),
            to_address=recipient, to_name="", subject=subject,
            text=(f"This is a test message from seqctl.\n\nIf it reached you, the inbox "
                  f"{row['address']} ({row['kind']}) can send.\n"),
            cc=[], bcc=[], message_id=message_id, date=now,
        ))
    except ValueError as exc:
        raise SeqctlError(f"cannot build the test message: {exc}") from None
    with transaction(db):
        outbox_id = db.execute(
            "INSERT INTO outbox (enrollment_id, inbox_id, to_email, status, scheduled_at, "
            "next_attempt_at, message_id, subject, raw, created_at) "
            "VALUES (NULL, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
            [row["id"], recipient, iso(now), iso(now), message_id, subject, built.raw, iso(now)],
        ).lastrowid
    document: dict[str, Any] = {
        "outbox_id": outbox_id, "status": "queued", "to": recipient, "from": row["address"],
        "message_id": message_id, "provider_message_id": None, "thread_id": None,
        "error": None, "tick_running": False,
    }
    lock = TickLock.beside(db)
    if not lock.acquire():
        return {**document, "tick_running": True}
    try:
        result = dispatch.send_now(db, row, outbox_id, key=key, factory=factory)
    finally:
        lock.release()
    return {**document, "status": result["status"],
            "provider_message_id": result["provider_message_id"],
            "thread_id": result["thread_id"], "error": result["error"]}
