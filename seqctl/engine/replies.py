"""What a reply's intent does, and the reply inbox (SPEC section 18).

`outcomes.on_reply` calls `apply_intent` inside its transaction, before the `reply_received`
exits: a not-now reply with a date pauses the enrollments of sequences with
`pause_on_not_now` (they are "kept": that reply never exits them, not even through the
tick's backstop); a named address (referral, and a wrong_person or left_company reply that
names someone) is imported as a contact owned by the rep, not enrolled, with a task to reach
out; a wrong_person or left_company reply that names nobody gets a task to find the right
contact at the company.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from seqctl.clock import iso
from seqctl.engine import events, exits, plan
from seqctl.engine.analytics import find_sequence
from seqctl.engine.contacts import normalise_email
from seqctl.engine.intent import INTENTS, ReplyIntent
from seqctl.engine.schedule import into_window
from seqctl.errors import SeqctlError

REFERRING = ("referral", "wrong_person", "left_company")
_WHY = {"wrong_person": "not the right person", "left_company": "left the company"}


def reply_detail(found: ReplyIntent | None) -> dict[str, Any]:
    """What a reply event keeps of its intent (`replies`, `log list --json`, `stats`)."""
    if found is None:
        return {"intent": "unknown"}
    return {
        "intent": found.intent,
        "snippet": found.snippet,
        "referral_email": found.referral_email,
        "referral_name": found.referral_name,
        "not_before": found.not_before.isoformat() if found.not_before else None,
        "cue": found.cue,
    }


def manual_intent(
    intent: str | None, referral_email: str | None = None, not_before: date | None = None
) -> ReplyIntent | None:
    """The intent of a reply logged by hand (`seqctl log reply --intent`)."""
    if intent is None:
        if referral_email or not_before:
            raise SeqctlError("--referral and --not-before need --intent")
        return None
    if intent not in INTENTS:
        raise SeqctlError(f"--intent: '{intent}' is not one of {', '.join(INTENTS)}")
    if referral_email and intent not in REFERRING:
        raise SeqctlError(f"--referral goes with --intent {', '.join(REFERRING)}")
    if not_before and intent != "not_now":
        raise SeqctlError("--not-before goes with --intent not_now")
    if referral_email:
        try:
            referral_email = normalise_email(referral_email)
        except ValueError as exc:
            raise SeqctlError(f"--referral: '{referral_email}' is not valid: {exc}") from None
    return ReplyIntent(
        intent=intent,
        language="",
        text="",
        referral_email=referral_email,
        not_before=not_before,
        cue="logged by hand",
    )


def keep_for_not_now(
    db: Database, contact_id: int, found: ReplyIntent | None, at: datetime
) -> list[int]:
    """A not-now reply with a date pauses the contact's live enrollments in sequences with
    `pause_on_not_now` until that date (the next open slot of their window), instead of
    exiting them; one the rep paused stays paused as it is. Returns the kept ids."""
    if found is None or found.intent != "not_now" or found.not_before is None:
        return []
    rows = db.execute(
        "SELECT e.id, e.sequence_id, e.status, e.paused_until, c.timezone FROM enrollments e "
        "JOIN sequences s ON s.id = e.sequence_id JOIN contacts c ON c.id = e.contact_id "
        "WHERE e.contact_id = ? AND e.status IN ('active', 'paused') "
        "AND s.pause_on_not_now = 1 AND s.exit_on_reply = 1",
        [contact_id],
    ).fetchall()
    kept = []
    for enrollment_id, sequence_id, status, paused_until, timezone in rows:
        kept.append(enrollment_id)
        if status == "paused" and paused_until is None:
            continue  # the rep's pause: the rep resumes it
        until = not_now_resume_at(found.not_before, at, plan.load(db, sequence_id), timezone)
        db.execute(
            "UPDATE enrollments SET status = 'paused', paused_until = ?, updated_at = ? "
            "WHERE id = ?",
            [iso(until), iso(at), enrollment_id],
        )
        events.record(
            db,
            "paused",
            at,
            enrollment_id=enrollment_id,
            detail={"until": iso(until), "by": "not_now"},
        )
    return kept


def not_now_resume_at(
    not_before: date, received: datetime, the_plan: plan.Plan, contact_timezone: str | None
) -> datetime:
    """The first open slot of the send window on or after the start of `not_before`."""
    window = the_plan.window_for(contact_timezone)
    start = datetime.combine(not_before, time(0, 0), ZoneInfo(window.timezone)).astimezone(UTC)
    return into_window(max(start, received), window)


def act_on_intent(
    db: Database,
    contact_id: int,
    found: ReplyIntent | None,
    at: datetime,
    *,
    enrollment_id: int | None = None,
) -> list[int]:
    """The tasks (and the referred contact) a reply's intent asks for. Returns task ids."""
    if found is None or found.intent not in REFERRING:
        return []
    replier = db.execute(
        "SELECT email, first_name, last_name, company_name, owner_email FROM contacts "
        "WHERE id = ?",
        [contact_id],
    ).fetchone()
    email, first, last, company, owner = replier
    who = " ".join(p for p in (first, last) if p) or email
    sequence_id = _sequence_of(db, enrollment_id)
    owner = owner or _rep_of(db, enrollment_id)
    referred = found.referral_email
    if referred and exits.is_suppressed(db, referred):
        return []  # never a task to write to an address that asked not to be written to
    if referred and referred.lower() != email.lower():
        referred_id = _import_referred(db, referred, found.referral_name, company, owner, at)
        name = found.referral_name or ""
        title = f"Reach out to {name + ' ' if name else ''}{referred} (referred by {who})"
        notes = f"{who} <{email}> replied: {found.snippet}" if found.snippet else f"{who} <{email}>"
        return [_task(db, referred_id, sequence_id, title, notes, at)]
    if found.intent == "referral":
        name = found.referral_name or "the person they named"
        title = f"Reach out to {name} (referred by {who})"
    else:
        title = f"Find the right contact at {company or email.split('@', 1)[1]} ({who}: " \
                f"{_WHY[found.intent]})"
    return [_task(db, contact_id, sequence_id, title, found.snippet, at)]


def _sequence_of(db: Database, enrollment_id: int | None) -> int | None:
    if enrollment_id is None:
        return None
    row = db.execute("SELECT sequence_id FROM enrollments WHERE id = ?", [enrollment_id]).fetchone()
    return row[0] if row else None


def _rep_of(db: Database, enrollment_id: int | None) -> str | None:
    """The rep: the user of the enrollment's inbox, else the default user."""
    row = None
    if enrollment_id is not None:
        row = db.execute(
            "SELECT u.email FROM enrollments e JOIN inboxes i ON i.id = e.inbox_id "
            "JOIN users u ON u.id = i.user_id WHERE e.id = ?",
            [enrollment_id],
        ).fetchone()
    row = row or db.execute(
        "SELECT email FROM users ORDER BY is_default DESC, id LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def _import_referred(
    db: Database, email: str, name: str | None, company: str, owner: str | None, at: datetime
) -> int:
    """The referred person as a contact (created when new, never enrolled)."""
    email = email.strip().lower()
    first, _, last = (name or "").partition(" ")
    db.execute(
        "INSERT INTO contacts (email, first_name, last_name, company_name, owner_email, "
        "custom_fields_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(email) DO NOTHING",
        [email, first, last, company or "", owner, json.dumps({"source": "referral"}), iso(at),
         iso(at)],
    )
    return db.execute("SELECT id FROM contacts WHERE email = ?", [email]).fetchone()[0]


def _task(db: Database, contact_id: int, sequence_id: int | None, title: str, notes: str,
          at: datetime) -> int:
    cursor = db.execute(
        "INSERT INTO tasks (contact_id, sequence_id, kind, title, notes, due_at, status, "
        "created_at) VALUES (?, ?, 'task', ?, ?, ?, 'open', ?)",
        [contact_id, sequence_id, title[:300], notes or "", iso(at), iso(at)],
    )
    return cursor.lastrowid


# -- the reply inbox -------------------------------------------------------------------------


def list_replies(
    db: Database,
    *,
    intent: str | None = None,
    sequence: str | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """`seqctl replies`: every reply, newest first, with its intent (SPEC 18 JSON shape)."""
    if intent is not None and intent not in INTENTS:
        raise SeqctlError(f"--intent: '{intent}' is not one of {', '.join(INTENTS)}")
    sql = (
        "SELECT ev.at, c.email, s.name, st.position, ev.detail_json, ev.enrollment_id "
        "FROM events ev LEFT JOIN contacts c ON c.id = ev.contact_id "
        "LEFT JOIN sequences s ON s.id = ev.sequence_id LEFT JOIN steps st ON st.id = ev.step_id "
        "WHERE ev.kind = 'reply'"
    )
    params: list[Any] = []
    if sequence is not None:
        sql += " AND ev.sequence_id = ?"
        params.append(find_sequence(db, sequence))
    if since is not None:
        sql += " AND ev.at >= ?"
        params.append(iso(since))
    if intent is not None:
        sql += " AND COALESCE(json_extract(ev.detail_json, '$.intent'), 'unknown') = ?"
        params.append(intent)
    rows = []
    for at, email, name, step, detail_json, enrollment_id in db.execute(
        sql + " ORDER BY ev.at DESC, ev.id DESC", params
    ):
        detail = json.loads(detail_json or "{}")
        rows.append(
            {
                "email": email,
                "sequence": name,
                "step": step,
                "intent": detail.get("intent") or "unknown",
                "received_at": at,
                "snippet": detail.get("snippet") or "",
                "referral_email": detail.get("referral_email"),
                "not_before": detail.get("not_before"),
                "subject": detail.get("subject"),
                "via": detail.get("via", "sync"),
                "enrollment_id": enrollment_id,
            }
        )
    return rows
