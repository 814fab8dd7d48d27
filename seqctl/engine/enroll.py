"""Enrolling contacts in a sequence, and pausing, resuming and unenrolling them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl import settings
from seqctl.clock import from_iso, iso
from seqctl.db import transaction
from seqctl.engine import accounts, erasure, events, exits, plan
from seqctl.engine.schedule import into_window
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database

CHUNK = 500


def sequence_by_name(db: Database, name: str) -> dict[str, Any]:
    """The sequence row; SeqctlError when there is none."""
    return _sequence(db, name)


def _sequence(db: Database, name: str) -> dict[str, Any]:
    row = db.execute("SELECT * FROM sequences WHERE name = ?", [name]).fetchone()
    if row is None:
        raise SeqctlError(f"no sequence '{name}': see `seqctl sequence list`")
    columns = [c[0] for c in db.execute("SELECT * FROM sequences LIMIT 0").description]
    return dict(zip(columns, row, strict=True))


def _no_inbox_message(owner_email: str | None) -> str:
    who = f"its owner {owner_email}" if owner_email else "the default user"
    return (
        f"no inbox to send from: {who} has no inbox; add one with "
        "`seqctl inbox add maildir|smtp ...` or `seqctl inbox connect gmail|outlook`, "
        "then `seqctl resume SEQUENCE EMAIL`"
    )


def check_enrollable(
    db: Database, sequence_name: str, inbox_address: str | None = None
) -> tuple[dict[str, Any], Any, int | None]:
    """The sequence, its steps and the forced inbox's id, or SeqctlError when nothing can be
    enrolled (unknown or inactive sequence, no steps, unknown inbox). Writes nothing, so a
    command checks it before importing anything."""
    sequence = _sequence(db, sequence_name)
    if not sequence["active"]:
        raise SeqctlError(
            f"sequence '{sequence_name}' is inactive: "
            f"`seqctl sequence activate {sequence_name}` first"
        )
    steps = plan.load(db, sequence["id"])
    if not steps.steps:
        raise SeqctlError(f"sequence '{sequence_name}' has no steps")
    forced_inbox = accounts.inbox(db, inbox_address)["id"] if inbox_address else None
    return sequence, steps, forced_inbox


def enroll(
    db: Database,
    sequence_name: str,
    emails: Iterable[str],
    now: datetime,
    *,
    inbox_address: str | None = None,
    reenroll: bool = False,
    progress: Callable[[int, int], None] | None = None,
    normalised: bool = False,
) -> dict[str, Any]:
    """Enroll each email (created as a bare contact when unknown). Returns the SPEC 16 summary.
    `normalised`: the emails come from `import_contacts` (`ImportResult.emails`), which has
    normalised them already, so each is not normalised a second time."""
    sequence, steps, forced_inbox = check_enrollable(db, sequence_name, inbox_address)
    cap = settings.get_int(db, "max_active_sequences_per_contact")
    first_step = steps.steps[0]

    results: list[dict[str, Any]] = []
    wanted: list[str] = []
    seen: set[str] = set()
    for raw in emails:
        try:
            email = raw if normalised else accounts.normalise_email(raw)
        except SeqctlError as exc:
            results.append({"email": raw, "status": "failed", "enrollment_id": None,
                            "message": str(exc), "missing_fields": []})
            continue
        if email in seen:
            results.append(
                {
                    "email": email,
                    "status": "skipped_duplicate",
                    "enrollment_id": None,
                    "message": "listed twice",
                    "missing_fields": [],
                }
            )
            continue
        seen.add(email)
        wanted.append(email)

    # render (and Jinja2 with it) loads when someone is enrolled, not on every tick that
    # imports this module for `find_enrollment` or `resume`
    from seqctl.engine.render import variant_for

    inbox_of_owner: dict[str | None, int | None] = {}
    first_due: dict[Any, str] = {}      # step 1's due time, by send window
    unset = _MissingFields(db, steps.steps)
    now_iso = iso(now)
    with transaction(db):
        contacts = _contacts(db, wanted, now)
        erasure.suppress_erased(db, wanted, now)
        next_id = (db.execute("SELECT MAX(id) FROM enrollments").fetchone()[0] or 0) + 1
        existing = _existing(db, sequence["id"], [c["id"] for c in contacts.values()])
        active_counts = _active_counts(db, [c["id"] for c in contacts.values()])
        rows = []
        for done, email in enumerate(wanted):
            if progress and done % 1000 == 0:
                progress(done, len(wanted))
            contact = contacts[email]
            previous = existing.get(contact["id"])
            if previous is not None and (previous[1] != "exited" or not reenroll):
                results.append(
                    {
                        "email": email,
                        "status": "skipped_duplicate",
                        "enrollment_id": previous[0],
                        "message": f"already enrolled ({previous[1]})",
                        "missing_fields": [],
                    }
                )
                continue
            if active_counts.get(contact["id"], 0) >= cap:
                results.append(
                    {
                        "email": email,
                        "status": "failed",
                        "enrollment_id": None,
                        "message": f"already in {cap} active sequences "
                        "(max_active_sequences_per_contact)",
                        "missing_fields": [],
                    }
                )
                continue
            inbox_id = forced_inbox
            if inbox_id is None:
                owner = contact["owner_email"]
                if owner not in inbox_of_owner:
                    inbox_of_owner[owner] = accounts.default_inbox_for(db, owner)
                inbox_id = inbox_of_owner[owner]
            enrollment_id = next_id
            next_id += 1
            status, failure, next_run = "active", None, None
            if inbox_id is None:
                status, failure = "failed", _no_inbox_message(contact["owner_email"])
            else:
                window = steps.window_for(contact["timezone"])
                next_run = first_due.get(window)
                if next_run is None:
                    next_run = first_due[window] = iso(plan.due(now, first_step, window))
            rows.append(
                (
                    enrollment_id,
                    sequence["id"],
                    contact["id"],
                    inbox_id,
                    status,
                    failure,
                    variant_for(enrollment_id),
                    first_step["id"],
                    now_iso,
                    next_run,
                    now_iso,
                    now_iso,
                )
            )
            active_counts[contact["id"]] = active_counts.get(contact["id"], 0) + 1
            results.append(
                {
                    "email": email,
                    "status": "failed" if failure else "enrolled",
                    "enrollment_id": enrollment_id,
                    "message": failure or "",
                    "missing_fields": unset.of(contact, inbox_id, variant_for(enrollment_id)),
                }
            )
        db.conn.executemany(
            "INSERT INTO enrollments (id, sequence_id, contact_id, inbox_id, status, "
            "failure_message, variant, step_id, anchor_at, next_run_at, enrolled_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    return {
        "enrolled": sum(r["status"] == "enrolled" for r in results),
        "skipped_duplicates": sum(r["status"] == "skipped_duplicate" for r in results),
        "failed": sum(r["status"] == "failed" for r in results),
        "results": results,
    }


# render.BUILTIN_VARIABLES, without loading render (and Jinja2) on every tick
_BUILTIN_COLUMNS = frozenset({"first_name", "last_name", "company_name", "email",
                              "owner_first_name", "owner_email"})


class _MissingFields:
    """Per contact, the merge variables the sequence's emails print without a default and
    that the contact lacks (SPEC 8: `enroll` warns about them)."""

    def __init__(self, db: Database, steps: list[dict[str, Any]]):
        from seqctl.engine import compose  # loads render and Jinja2: only when enrolling

        self.db = db
        self.used = {variant: compose.fields_without_default(db, steps, variant)
                     for variant in ("A", "B")}
        self.owners: dict[int | None, dict[str, str]] = {}

    def of(self, contact: dict[str, Any], inbox_id: int | None, variant: str) -> list[str]:
        used = self.used[variant]
        if not used:
            return []
        values = self._owner(inbox_id) | {
            "first_name": contact["first_name"], "last_name": contact["last_name"],
            "company_name": contact["company_name"], "email": contact["email"]}
        if contact["owner_email"]:
            values["owner_email"] = contact["owner_email"]
        if any(name not in _BUILTIN_COLUMNS for name in used):
            custom = json.loads(contact["custom_fields_json"] or "{}")
            values = {**{k: "" if v is None else str(v) for k, v in custom.items()}, **values}
        return sorted(name for name in used if not str(values.get(name) or "").strip())

    def _owner(self, inbox_id: int | None) -> dict[str, str]:
        if inbox_id not in self.owners:
            row = self.db.execute(
                "SELECT u.first_name, u.email FROM inboxes i JOIN users u ON u.id = i.user_id "
                "WHERE i.id = ?", [inbox_id]).fetchone()
            self.owners[inbox_id] = ({"owner_first_name": row[0] or "", "owner_email": row[1]}
                                     if row else {})
        return self.owners[inbox_id]


def _contacts(db: Database, emails: list[str], now: datetime) -> dict[str, dict[str, Any]]:
    """Contacts by email, creating bare ones for unknown addresses."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(emails), CHUNK):
        chunk = emails[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(
            "SELECT id, email, owner_email, timezone, first_name, last_name, company_name, "
            f"custom_fields_json FROM contacts WHERE email IN ({marks})", chunk
        ).fetchall():
            found[row[1]] = {"id": row[0], "email": row[1], "owner_email": row[2],
                             "timezone": row[3], "first_name": row[4], "last_name": row[5],
                             "company_name": row[6], "custom_fields_json": row[7]}
    missing = [e for e in emails if e not in found]
    if missing:
        db.conn.executemany(
            "INSERT INTO contacts (email, created_at, updated_at) VALUES (?, ?, ?)",
            [(e, iso(now), iso(now)) for e in missing],
        )
        return _contacts(db, emails, now)
    return found


def _existing(db: Database, sequence_id: int, contact_ids: list[int]) -> dict[int, tuple[int, str]]:
    """The newest enrollment of each contact in the sequence: contact_id -> (id, status)."""
    result: dict[int, tuple[int, str]] = {}
    if len(contact_ids) > 5000:
        rows = db.execute(
            "SELECT contact_id, id, status FROM enrollments WHERE sequence_id = ? ORDER BY id",
            [sequence_id],
        ).fetchall()
    else:
        rows = []
        for start in range(0, len(contact_ids), CHUNK):
            chunk = contact_ids[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += db.execute(
                f"SELECT contact_id, id, status FROM enrollments WHERE sequence_id = ? "
                f"AND contact_id IN ({marks}) ORDER BY id",
                [sequence_id, *chunk],
            ).fetchall()
    for contact_id, enrollment_id, status in rows:
        result[contact_id] = (enrollment_id, status)
    return result


def _active_counts(db: Database, contact_ids: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for start in range(0, len(contact_ids), CHUNK):
        chunk = contact_ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        for contact_id, count in db.execute(
            f"SELECT contact_id, COUNT(*) FROM enrollments WHERE status IN ('active', 'paused') "
            f"AND contact_id IN ({marks}) GROUP BY contact_id",
            chunk,
        ).fetchall():
            counts[contact_id] = count
    return counts


def find_enrollment(db: Database, sequence_name: str, email: str) -> dict[str, Any]:
    """The newest enrollment of EMAIL in SEQUENCE."""
    sequence = _sequence(db, sequence_name)
    row = db.execute(
        "SELECT e.id, e.status, e.next_run_at, e.step_id, e.waiting_outbox_id, e.contact_id "
        "FROM enrollments e JOIN contacts c ON c.id = e.contact_id "
        "WHERE e.sequence_id = ? AND c.email = ? ORDER BY e.id DESC LIMIT 1",
        [sequence["id"], email.strip().lower()],
    ).fetchone()
    if row is None:
        raise SeqctlError(f"{email} is not enrolled in '{sequence_name}'")
    return {
        "id": row[0],
        "status": row[1],
        "next_run_at": row[2],
        "step_id": row[3],
        "waiting_outbox_id": row[4],
        "contact_id": row[5],
        "sequence": sequence,
    }


def pause(
    db: Database, enrollment: dict[str, Any], now: datetime, until: datetime | None = None
) -> None:
    if enrollment["status"] == "paused":
        raise SeqctlError("is already paused: `seqctl resume` it to continue")
    if enrollment["status"] != "active":
        raise SeqctlError(f"cannot be paused: it has {enrollment['status']}"
                          if enrollment["status"] == "exited" else
                          f"cannot be paused: it is {enrollment['status']}")
    with transaction(db):
        db.execute(
            "UPDATE enrollments SET status = 'paused', paused_until = ?, updated_at = ? "
            "WHERE id = ?",
            [iso(until), iso(now), enrollment["id"]],
        )
        events.record(
            db, "paused", now, enrollment_id=enrollment["id"], detail={"until": iso(until)}
        )


def resume(db: Database, enrollment_id: int, now: datetime) -> str:
    """Resume a paused or failed enrollment: next_run_at = max(stored due time, now), moved into
    the window. A failed one gets its inbox re-resolved and its failed email re-queued.
    Returns the new status."""
    row = db.execute(
        "SELECT e.status, e.next_run_at, e.step_id, e.waiting_outbox_id, e.inbox_id, "
        "e.sequence_id, c.timezone, c.owner_email FROM enrollments e "
        "JOIN contacts c ON c.id = e.contact_id WHERE e.id = ?",
        [enrollment_id],
    ).fetchone()
    status, next_run_at, step_id, waiting, inbox_id, sequence_id, tz, owner = row
    if status not in ("paused", "failed"):
        raise SeqctlError("is already active: nothing to resume" if status == "active"
                          else f"cannot be resumed: it has {status} for good")
    steps = plan.load(db, sequence_id)
    window = steps.window_for(tz)
    with transaction(db):
        if status == "failed":
            inbox_ok = (
                inbox_id is not None
                and db.execute(
                    "SELECT 1 FROM inboxes WHERE id = ? AND status IN ('active', 'paused_bounces')",
                    [inbox_id],
                ).fetchone()
            )
            if not inbox_ok:
                inbox_id = accounts.default_inbox_for(db, owner)
                if inbox_id is None:
                    db.execute(
                        "UPDATE enrollments SET failure_message = ? WHERE id = ?",
                        [_no_inbox_message(owner), enrollment_id],
                    )
                    return "failed"
            if waiting is not None:
                db.execute(
                    "UPDATE outbox SET status = 'queued', inbox_id = ?, next_attempt_at = ?, "
                    "error = NULL WHERE id = ? AND status IN ('failed', 'queued')",
                    [inbox_id, iso(now), waiting],
                )
        due = max(from_iso(next_run_at) or now, now) if (waiting is None) else None
        if due is not None:
            due = into_window(due, window)
        db.execute(
            "UPDATE enrollments SET status = 'active', failure_message = NULL, paused_until = NULL,"
            " inbox_id = ?, next_run_at = ?, updated_at = ? WHERE id = ?",
            [inbox_id, iso(due), iso(now), enrollment_id],
        )
        events.record(db, "resumed", now, enrollment_id=enrollment_id)
    return "active"


def unenroll(db: Database, enrollment_id: int, now: datetime) -> bool:
    return exits.exit_enrollment(db, enrollment_id, "manual", now)


def enrollment_rows(
    db: Database,
    *,
    sequence: str | None = None,
    status: str | None = None,
    email: str | None = None,
) -> list[dict[str, Any]]:
    """Every matching enrollment in the SPEC 16 `enrollments list` shape."""
    sql = (
        "SELECT e.id, s.name, c.email, e.status, e.exit_reason, e.failure_message, e.variant, "
        "st.position, e.next_run_at, i.address, e.enrolled_at, e.exited_at, e.paused_until, "
        "ws.position, wo.status, wo.next_attempt_at, s.timezone "
        "FROM enrollments e JOIN sequences s ON s.id = e.sequence_id "
        "JOIN contacts c ON c.id = e.contact_id LEFT JOIN steps st ON st.id = e.step_id "
        "LEFT JOIN inboxes i ON i.id = e.inbox_id "
        "LEFT JOIN outbox wo ON wo.id = e.waiting_outbox_id "
        "LEFT JOIN steps ws ON ws.id = wo.step_id WHERE 1 = 1"
    )
    params: list[Any] = []
    if sequence:
        sql += " AND s.name = ?"
        params.append(sequence)
    if status:
        sql += " AND e.status = ?"
        params.append(status)
    if email:
        sql += " AND c.email = ?"
        params.append(email.strip().lower())
    sql += " ORDER BY e.id"
    rows = []
    for r in db.execute(sql, params):
        step, next_run_at = r[7], r[8]
        if r[13] is not None and r[14] in ("queued", "sending", "unknown", "failed"):
            # the step's email has not gone out yet: that step is still the next thing, due
            # when the dispatcher will try it
            step = r[13]
            next_run_at = r[15] if r[14] == "queued" and r[3] == "active" else None
        rows.append(
            {
                "id": r[0],
                "sequence": r[1],
                "email": r[2],
                "status": r[3],
                "exit_reason": r[4],
                "failure_message": r[5],
                "variant": r[6],
                "step": None if r[3] == "exited" else step,
                "next_run_at": None if r[3] == "exited" else next_run_at,
                "inbox": r[9],
                "enrolled_at": r[10],
                "exited_at": r[11],
                "paused_until": r[12],
                "timezone": r[16],
            }
        )
    return rows


def custom_field_names(db: Database) -> set[str]:
    names: set[str] = set()
    for (value,) in db.execute("SELECT DISTINCT custom_fields_json FROM contacts"):
        names.update(json.loads(value or "{}"))
    return names


def failed_enrollment_ids(db: Database, inbox_address: str | None) -> list[int]:
    """Failed enrollments, optionally only those that failed on `inbox_address`."""
    if inbox_address is None:
        rows = db.execute("SELECT id FROM enrollments WHERE status = 'failed' ORDER BY id")
        return [r[0] for r in rows]
    inbox = accounts.inbox(db, inbox_address)
    # also those that failed for want of any inbox, when this inbox's user owns the contact
    # (a contact with no owner belongs to the default user)
    rows = db.execute(
        "SELECT e.id FROM enrollments e JOIN contacts c ON c.id = e.contact_id "
        "JOIN inboxes i ON i.id = ? JOIN users u ON u.id = i.user_id "
        "WHERE e.status = 'failed' AND (e.inbox_id = i.id OR (e.inbox_id IS NULL AND "
        "(lower(c.owner_email) = lower(u.email) OR "
        "(COALESCE(c.owner_email, '') = '' AND u.is_default = 1)))) ORDER BY e.id",
        [inbox["id"]],
    )
    return [r[0] for r in rows]


def failure_message(db: Database, enrollment_id: int) -> str:
    row = db.execute(
        "SELECT failure_message FROM enrollments WHERE id = ?", [enrollment_id]
    ).fetchone()
    return (row[0] if row else None) or "unknown reason"
