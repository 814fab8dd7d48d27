"""Users (reps) and their inboxes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from seqctl import clock
from seqctl.clock import iso
from seqctl.db import transaction
from seqctl.engine import contacts
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database

INBOX_KINDS = ("maildir", "gmail", "outlook", "smtp")

# Published sending limits: Gmail (Workspace) 2,000/day, consumer Gmail 500/day; Exchange
# Online 10,000 recipients/day. Defaults stay well below them, as cold outreach should.
DEFAULT_DAILY_CAP = {"gmail": 500, "outlook": 1000, "smtp": 500, "maildir": 10_000}


def normalise_email(value: str, *, what: str = "email") -> str:
    """Lower-cased, stripped address; SeqctlError (naming `what`) when it is not one."""
    text = (value or "").strip()
    if not text:
        raise SeqctlError(f"{what} is empty")
    try:
        return contacts.normalise_email(text)
    except ValueError as exc:
        raise SeqctlError(f"{what} '{text}' is not a valid email address: {exc}") from None


def add_user(
    db: Database, email: str, first_name: str, last_name: str = "", make_default: bool = False
) -> dict[str, Any]:
    email = normalise_email(email, what="user email")
    now = clock.iso(clock.now())
    with transaction(db):
        existing = db.execute("SELECT id FROM users WHERE email = ?", [email]).fetchone()
        first = db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
        if existing:
            db.execute(
                "UPDATE users SET first_name = ?, last_name = ? WHERE id = ?",
                [first_name, last_name, existing[0]],
            )
            user_id = existing[0]
        else:
            user_id = db.execute(
                "INSERT INTO users (email, first_name, last_name, created_at) VALUES (?,?,?,?)",
                [email, first_name, last_name, now],
            ).lastrowid
        if make_default or first:
            db.execute("UPDATE users SET is_default = (id = ?)", [user_id])
    return user(db, email)


def user(db: Database, email: str) -> dict[str, Any]:
    row = db.execute(
        "SELECT id, email, first_name, last_name, is_default FROM users WHERE email = ?",
        [email.strip().lower()],
    ).fetchone()
    if row is None:
        raise SeqctlError(
            f"no user {email}: add one with `seqctl users add {email} --first-name NAME`"
        )
    return {
        "id": row[0],
        "email": row[1],
        "first_name": row[2],
        "last_name": row[3],
        "default": bool(row[4]),
    }


def list_users(db: Database) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT id, email, first_name, last_name, is_default FROM users ORDER BY id"
    ).fetchall()
    return [
        {"id": r[0], "email": r[1], "first_name": r[2], "last_name": r[3], "default": bool(r[4])}
        for r in rows
    ]


def add_inbox(
    db: Database,
    kind: str,
    address: str,
    inbox_config: dict[str, Any],
    *,
    daily_cap: int | None = None,
    make_default: bool = False,
    spacing: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Create (or reconnect) an inbox. Its owner is the user with the inbox's address, else the
    default user; with no users at all, a user is created for the address. Reconnecting
    clears `needs_reauth` and a throttle, never a bounce pause."""
    if kind not in INBOX_KINDS:
        raise SeqctlError(f"unknown inbox kind '{kind}' (one of {', '.join(INBOX_KINDS)})")
    address = normalise_email(address, what="inbox address")
    now = clock.iso(clock.now())
    with transaction(db):
        owner = db.execute("SELECT id FROM users WHERE email = ?", [address]).fetchone()
        if owner is None:
            owner = db.execute("SELECT id FROM users WHERE is_default = 1").fetchone()
        if owner is None:
            local = address.split("@")[0].split("+")[0]
            owner_id = db.execute(
                "INSERT INTO users (email, first_name, is_default, created_at) VALUES (?,?,1,?)",
                [address, local.replace(".", " ").title().split(" ")[0], now],
            ).lastrowid
        else:
            owner_id = owner[0]
        existing = db.execute("SELECT id FROM inboxes WHERE address = ?", [address]).fetchone()
        if existing:
            db.execute(
                "UPDATE inboxes SET kind = ?, config_json = ?, "
                "status_message = CASE WHEN status = 'paused_bounces' THEN status_message END, "
                "status = CASE WHEN status = 'paused_bounces' THEN status ELSE 'active' END, "
                "status_until = NULL WHERE id = ?",
                [kind, json.dumps(inbox_config), existing[0]],
            )
            inbox_id = existing[0]
        else:
            inbox_id = db.execute(
                "INSERT INTO inboxes (address, kind, user_id, config_json, daily_cap, created_at)"
                " VALUES (?,?,?,?,?,?)",
                [address, kind, owner_id, json.dumps(inbox_config), daily_cap, now],
            ).lastrowid
        if spacing is not None:
            set_spacing(db, inbox_id, spacing)
        has_default = db.execute(
            "SELECT 1 FROM inboxes WHERE user_id = ? AND is_default = 1", [owner_id]
        ).fetchone()
        if make_default or not has_default:
            db.execute(
                "UPDATE inboxes SET is_default = (id = ?) WHERE user_id = ?", [inbox_id, owner_id]
            )
    return inbox(db, address)


def _inbox_row(row: Any) -> dict[str, Any]:
    keys = (
        "id",
        "address",
        "kind",
        "user_id",
        "is_default",
        "config_json",
        "daily_cap",
        "status",
        "status_message",
        "sync_cursor",
        "last_sync_at",
        "owner_email",
        "status_until",
        "spacing_min",
        "spacing_max",
        "next_send_at",
    )
    data = dict(zip(keys, row, strict=True))
    data["config"] = json.loads(data.pop("config_json") or "{}")
    data["default"] = bool(data.pop("is_default"))
    data["effective_daily_cap"] = data["daily_cap"] or DEFAULT_DAILY_CAP[data["kind"]]
    data["spacing"] = format_spacing((data["spacing_min"], data["spacing_max"]))
    return data


_INBOX_SELECT = (
    "SELECT i.id, i.address, i.kind, i.user_id, i.is_default, i.config_json, i.daily_cap, "
    "i.status, i.status_message, i.sync_cursor, i.last_sync_at, u.email, "
    "i.status_until, i.spacing_min, i.spacing_max, i.next_send_at "
    "FROM inboxes i JOIN users u ON u.id = i.user_id"
)


# -- pacing and throttling -----------------------------------------------------------------

MAX_SPACING = 86_400    # a gap of a day between two sends is the most that makes sense


def parse_spacing(text: str) -> tuple[int, int]:
    """`--spacing MIN-MAX` in seconds (`60-180`; `90` is 90-90; `0` is off)."""
    value = (text or "").strip()
    low, sep, high = value.partition("-")
    try:
        spacing = (int(low), int(high) if sep else int(low))
    except ValueError:
        raise SeqctlError(f"--spacing must be MIN-MAX in seconds (e.g. 60-180) or 0, "
                          f"not '{text}'") from None
    if spacing[0] < 0 or spacing[1] < spacing[0] or spacing[1] > MAX_SPACING:
        raise SeqctlError(f"--spacing '{text}': need 0 <= MIN <= MAX <= {MAX_SPACING} seconds")
    return spacing


def format_spacing(spacing: tuple[int, int]) -> str:
    low, high = spacing
    return "0" if high == 0 else (f"{low}" if low == high else f"{low}-{high}")


def set_spacing(db: Database, inbox_id: int, spacing: tuple[int, int]) -> None:
    """Pacing for an inbox: after each send its next send waits a random MIN-MAX seconds."""
    with transaction(db):
        db.execute("UPDATE inboxes SET spacing_min = ?, spacing_max = ? WHERE id = ?",
                   [spacing[0], spacing[1], inbox_id])
        if spacing[1] == 0:
            db.execute("UPDATE inboxes SET next_send_at = NULL WHERE id = ?", [inbox_id])


def pace_after_send(db: Database, inbox: dict[str, Any], sent_at: datetime,
                    gap: float) -> datetime | None:
    """Hold the inbox's next send `gap` seconds after `sent_at` (no-op without spacing)."""
    if not inbox.get("spacing_max"):
        return None
    next_at = sent_at + timedelta(seconds=gap)
    with transaction(db):
        db.execute("UPDATE inboxes SET next_send_at = ? WHERE id = ?", [iso(next_at), inbox["id"]])
    inbox["next_send_at"] = iso(next_at)
    return next_at


def throttle_inbox(db: Database, inbox_id: int, until: datetime, reason: str) -> None:
    """The provider refused the inbox's own sending (quota, rate): it sends nothing until
    `until`, then resumes by itself. Its queued emails and its enrollments are untouched.
    A longer throttle already in place is kept."""
    with transaction(db):
        db.execute(
            "UPDATE inboxes SET status = 'throttled', status_message = ?, "
            "status_until = MAX(COALESCE(status_until, ''), ?) "
            "WHERE id = ? AND status IN ('active', 'throttled')",
            [reason[:300], iso(until), inbox_id])


def lift_expired_throttles(db: Database, now: datetime) -> int:
    """Throttled inboxes whose time is up send again; returns how many."""
    with transaction(db):
        return db.execute(
            "UPDATE inboxes SET status = 'active', status_message = NULL, status_until = NULL "
            "WHERE status = 'throttled' AND (status_until IS NULL OR status_until <= ?)",
            [iso(now)]).rowcount


def sending_status(row: dict[str, Any], now: datetime) -> str:
    """The inbox's status as of `now`: a throttle whose time is up reads `active`."""
    if row["status"] == "throttled" and (row["status_until"] or "") <= (iso(now) or ""):
        return "active"
    return row["status"]


def held_inboxes(db: Database, now: datetime) -> list[dict[str, Any]]:
    """Inboxes that cannot send now (throttled, paused for bounces, needing reauth), for the
    end-of-tick notice."""
    return [row for row in list_inboxes(db)
            if sending_status(row, now) in ("throttled", "paused_bounces", "needs_reauth")]


def inbox(db: Database, address: str, *, include_removed: bool = False) -> dict[str, Any]:
    """The inbox with this address; SeqctlError when there is none (or it was removed)."""
    row = db.execute(_INBOX_SELECT + " WHERE i.address = ?", [address.strip().lower()]).fetchone()
    if row is None or (row[7] == "removed" and not include_removed):
        raise SeqctlError(f"no inbox {address}: see `seqctl inbox list`")
    return _inbox_row(row)


def remove_inbox(db: Database, address: str, now: datetime) -> int:
    """Remove an inbox. Its row stays (history points at it, and adding the address again
    brings it back, with its enrollments); emails queued on it fail, and so do their
    enrollments, with a message saying how to go on. Returns how many enrollments failed."""
    row = inbox(db, address)
    message = inbox_failure_message(None)
    with transaction(db):
        db.execute("UPDATE inboxes SET status = 'removed', is_default = 0 WHERE id = ?",
                   [row["id"]])
        db.execute(
            "UPDATE inboxes SET is_default = 1 WHERE id = (SELECT id FROM inboxes WHERE "
            "user_id = ? AND status != 'removed' ORDER BY id LIMIT 1) AND NOT EXISTS "
            "(SELECT 1 FROM inboxes WHERE user_id = ? AND is_default = 1)",
            [row["user_id"], row["user_id"]])
        waiting = db.execute(
            "SELECT enrollment_id FROM outbox WHERE inbox_id = ? AND status = 'queued' "
            "AND enrollment_id IS NOT NULL", [row["id"]]).fetchall()
        db.execute("UPDATE outbox SET status = 'failed', error = 'inbox removed' "
                   "WHERE inbox_id = ? AND status = 'queued'", [row["id"]])
        db.conn.executemany(
            "UPDATE enrollments SET status = 'failed', failure_message = ?, updated_at = ? "
            "WHERE id = ? AND status = 'active'",
            [(message, iso(now), enrollment_id) for (enrollment_id,) in waiting])
    return len(waiting)


def inbox_by_id(db: Database, inbox_id: int) -> dict[str, Any] | None:
    row = db.execute(_INBOX_SELECT + " WHERE i.id = ?", [inbox_id]).fetchone()
    return _inbox_row(row) if row else None


def list_inboxes(db: Database) -> list[dict[str, Any]]:
    rows = db.execute(_INBOX_SELECT + " WHERE i.status != 'removed' ORDER BY i.id").fetchall()
    return [_inbox_row(r) for r in rows]


def default_inbox_for(db: Database, owner_email: str | None) -> int | None:
    """The sending inbox of a contact: its owner's default inbox; a contact without an owner
    belongs to the default user."""
    if owner_email:
        row = db.execute(
            "SELECT i.id FROM inboxes i JOIN users u ON u.id = i.user_id "
            "WHERE u.email = ? AND i.is_default = 1",
            [owner_email],
        ).fetchone()
        return row[0] if row else None
    row = db.execute(
        "SELECT i.id FROM inboxes i JOIN users u ON u.id = i.user_id "
        "WHERE u.is_default = 1 AND i.is_default = 1"
    ).fetchone()
    return row[0] if row else None


def reconnect_command(inbox: dict[str, Any]) -> str:
    """The command that gives an inbox a fresh grant."""
    kind, address, inbox_config = inbox["kind"], inbox["address"], inbox.get("config") or {}
    if kind == "gmail":
        return (f"`seqctl inbox connect gmail --client-secrets FILE` (or `seqctl inbox import "
                f"gmail {address} --credentials FILE`)")
    if kind == "outlook":
        tenant = inbox_config.get("tenant") or "common"
        client_id = inbox_config.get("client_id") or "ID"
        return (f"`seqctl inbox connect outlook --client-id {client_id}"
                + ("" if tenant == "common" else f" --tenant {tenant}") + "`")
    if kind == "smtp":
        return f"`seqctl inbox add smtp {address} ...` (check the password or token)"
    return f"`seqctl inbox add {kind} {address} ...`"


def inbox_failure_message(inbox: dict[str, Any] | None) -> str:
    """The plain-English failure message of an enrollment whose inbox cannot send."""
    if inbox is None or inbox["status"] == "removed":
        return ("its inbox is gone: add one with `seqctl inbox add` or `seqctl inbox connect`, "
                "then `seqctl resume --failed --inbox ADDRESS`")
    return (f"inbox {inbox['address']} needs reconnecting (authorization revoked or expired): "
            f"run {reconnect_command(inbox)}, then "
            f"`seqctl resume --failed --inbox {inbox['address']}`")
