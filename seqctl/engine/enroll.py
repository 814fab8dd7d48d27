"""Enrolling contacts in a sequence, and pausing, resuming and unenrolling them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from seqctl import settings
from seqctl.clock import from_iso, iso
from seqctl.db import transaction
from seqctl.engine import accounts, erasure, events, exits, plan
from seqctl.engine.schedule import into_window
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database



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
    `normalised`: the emails are stored addresses already (e.g. `ImportResult.emails`), so
    each is not normalised a second time."""
    results: list[dict[str, Any]] = []
    counts = enroll_stream(db, sequence_name, now, emails=emails, inbox_address=inbox_address,
                           reenroll=reenroll, progress=progress, normalised=normalised,
                           on_result=results.append)
    return {**counts, "results": results}


def enroll_stream(
    db: Database,
    sequence_name: str,
    now: datetime,
    *,
    emails: Iterable[str] = (),
    csv: tuple[bytes | IO[bytes], str] | None = None,
    inbox_address: str | None = None,
    reenroll: bool = False,
    normalised: bool = False,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    on_invalid: Callable[[dict[str, Any]], None] | None = None,
    import_progress: Callable[[int, int], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Enroll `emails`, then the rows of `csv` (stream, filename), imported as contacts first
    (`contacts.import_contacts`). Returns the counts of the SPEC 16 summary (`enrolled`,
    `skipped_duplicates`, `failed`) and `invalid_rows`, the number of bad CSV rows.

    Memory stays flat for any number of contacts: each per-contact result goes to
    `on_result` as it is decided, and each bad CSV row to `on_invalid`, none kept; the wanted
    addresses wait in a temporary table and are enrolled in batches of BATCH. Results come in
    the order of the unbatched design: first the addresses that are invalid or listed twice,
    then the others in the order given (`emails`, then the file's first occurrences).
    Everything is one transaction: a database error imports and enrolls nothing.
    """
    from seqctl.engine.contacts import copy_new_contacts, fresh_emails_table, import_contacts

    context = check_enrollable(db, sequence_name, inbox_address)
    emit = on_result or (lambda result: None)
    counts = {"enrolled": 0, "skipped_duplicates": 0, "failed": 0, "invalid_rows": 0}

    def result(email: str, status: str, enrollment_id: int | None, message: str,
               missing: list[str]) -> None:
        counts[_COUNTED[status]] += 1
        emit({"email": email, "status": status, "enrollment_id": enrollment_id,
              "message": message, "missing_fields": missing})

    def invalid(row: dict[str, Any]) -> None:
        counts["invalid_rows"] += 1
        if on_invalid:
            on_invalid(row)

    listed: dict[str, None] = {}        # the given addresses, normalised (a command line's)
    early: list[tuple[str, str, str]] = []
    for raw in emails:
        try:
            email = raw if normalised else accounts.normalise_email(raw)
        except SeqctlError as exc:
            early.append((raw, "failed", str(exc)))
            continue
        if email in listed:
            early.append((email, "skipped_duplicate", "listed twice"))
            continue
        listed[email] = None
    try:
        with transaction(db):
            new_ids = None      # the wanted are these new contacts, not the table's
            if csv is not None:
                source, filename = csv
                new_ids = import_contacts(
                    db, source, filename=filename, now=now, progress=import_progress,
                    on_invalid=invalid, emails_table=_WANTED).new_ids
                if new_ids and listed:
                    copy_new_contacts(db, _WANTED, new_ids)
                    new_ids = None
            else:
                fresh_emails_table(db, _WANTED)
            twice = _place_listed(db, list(listed), now)
            for email, status, message in early:
                result(email, status, None, message, [])
            for email in twice:
                result(email, "skipped_duplicate", None, "listed twice", [])
            _Enroller(db, context, now, reenroll, result).run(progress, new_ids)
    finally:
        db.execute(f"DROP TABLE IF EXISTS temp.{_WANTED}")
    return counts


BATCH = 5000        # contacts enrolled per batch (one executemany)
_WANTED = "seqctl_wanted"
_COUNTED = {"enrolled": "enrolled", "skipped_duplicate": "skipped_duplicates", "failed": "failed"}


def _place_listed(db: Database, listed: list[str], now: datetime) -> list[str]:
    """Put the given addresses before the file's (negative positions) and create bare contacts
    for the unknown ones. Returns the file's addresses that were also given, in file order:
    each is enrolled once, where it was given, and reported as listed twice."""
    twice: list[tuple[int, str]] = []
    for position, email in zip(range(-len(listed), 0), listed, strict=True):
        row = db.execute(f"SELECT pos FROM temp.{_WANTED} WHERE email = ?", [email]).fetchone()
        if row is None:
            db.execute(f"INSERT INTO temp.{_WANTED} (pos, email) VALUES (?, ?)", [position, email])
        else:
            twice.append((row[0], email))
            db.execute(f"UPDATE temp.{_WANTED} SET pos = ? WHERE pos = ?", [position, row[0]])
    if listed:
        stamp = iso(now)
        db.execute(
            "INSERT INTO contacts (email, created_at, updated_at) "
            f"SELECT w.email, ?, ? FROM temp.{_WANTED} w WHERE w.pos < 0 "
            "AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.email = w.email) ORDER BY w.pos",
            [stamp, stamp],
        )
    return [email for _, email in sorted(twice)]


# One batch of the wanted contacts, in order, with what enrolling them depends on: the newest
# enrollment in this sequence (a duplicate?) and the count of live ones (the cap). Both are
# looked up by contact (`+sequence_id`: never by walking the sequence's enrollments).
_BATCH_SQL = """
SELECT {position}, c.id, c.email, c.owner_email, c.timezone, c.first_name, c.last_name,
       c.company_name, c.custom_fields_json, p.id, p.status,
       (SELECT COUNT(*) FROM enrollments a
        WHERE a.contact_id = c.id AND a.status IN ('active', 'paused'))
FROM {source}
LEFT JOIN enrollments p ON p.id = (SELECT MAX(id) FROM enrollments
                                   WHERE contact_id = c.id AND +sequence_id = ?)
WHERE {position} > ? AND {position} <= ? ORDER BY {position} LIMIT ?
"""
_FROM_TABLE = _BATCH_SQL.format(
    position="w.pos", source=f"temp.{_WANTED} w CROSS JOIN contacts c ON c.email = w.email")
_FROM_NEW_CONTACTS = _BATCH_SQL.format(position="c.id", source="contacts c")

_INSERT = (
    "INSERT INTO enrollments (id, sequence_id, contact_id, inbox_id, status, failure_message, "
    "variant, step_id, anchor_at, next_run_at, enrolled_at, updated_at) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


class _Enroller:
    """Enrolls the wanted contacts batch by batch; what it keeps is per owner, inbox and send
    window, never per contact."""

    def __init__(self, db: Database, context: tuple[dict[str, Any], Any, int | None],
                 now: datetime, reenroll: bool,
                 result: Callable[[str, str, int | None, str, list[str]], None]):
        # render (and Jinja2 with it) loads when someone is enrolled, not on every tick that
        # imports this module for `find_enrollment` or `resume`
        from seqctl.engine.render import variant_for

        self.variant_for = variant_for
        self.db = db
        self.sequence, self.steps, self.forced_inbox = context
        self.now = now
        self.reenroll = reenroll
        self.result = result
        self.cap = settings.get_int(db, "max_active_sequences_per_contact")
        self.unset = _MissingFields(db, self.steps.steps)
        self.inbox_of_owner: dict[str | None, int | None] = {}
        self.first_due: dict[Any, str] = {}      # step 1's due time, by send window

    def run(self, progress: Callable[[int, int], None] | None,
            new_ids: tuple[int, int] | None = None) -> None:
        """Enroll the wanted contacts: those of the emails table, or when `new_ids` is given
        (`ImportResult.new_ids`) the contacts the import created, in id order."""
        db = self.db
        if new_ids is None:
            total = db.execute(f"SELECT COUNT(*) FROM temp.{_WANTED}").fetchone()[0]
            sql, after, upto = _FROM_TABLE, -total - 1, 1 << 62
        else:
            sql, (after, upto) = _FROM_NEW_CONTACTS, new_ids
            total = upto - after
        self.next_id = (db.execute("SELECT MAX(id) FROM enrollments").fetchone()[0] or 0) + 1
        done = 0
        if progress:
            progress(0, total)
        while rows := db.execute(sql, [self.sequence["id"], after, upto, BATCH]).fetchall():
            after = rows[-1][0]
            self._batch(rows)
            done += len(rows)
            if progress:
                progress(done, total)

    def _batch(self, rows: list[tuple]) -> None:
        db, now, result, steps = self.db, self.now, self.result, self.steps
        erasure.suppress_erased(db, [row[2] for row in rows], now)
        sequence_id = self.sequence["id"]
        first_step = steps.steps[0]
        step_id = first_step["id"]
        now_iso = iso(now)
        cap, reenroll, forced_inbox = self.cap, self.reenroll, self.forced_inbox
        inbox_of_owner, first_due, variant_for = self.inbox_of_owner, self.first_due, self.variant_for
        missing_of = self.unset.of
        next_id = self.next_id
        inserts = []
        for (_, contact_id, email, owner, zone, first_name, last_name, company, custom,
             previous_id, previous_status, active) in rows:
            if previous_id is not None and (previous_status != "exited" or not reenroll):
                result(email, "skipped_duplicate", previous_id,
                       f"already enrolled ({previous_status})", [])
                continue
            if active >= cap:
                result(email, "failed", None,
                       f"already in {cap} active sequences (max_active_sequences_per_contact)",
                       [])
                continue
            inbox_id = forced_inbox
            if inbox_id is None:
                if owner not in inbox_of_owner:
                    inbox_of_owner[owner] = accounts.default_inbox_for(db, owner)
                inbox_id = inbox_of_owner[owner]
            enrollment_id = next_id
            next_id += 1
            variant = variant_for(enrollment_id)
            if inbox_id is None:
                status, failure, next_run = "failed", _no_inbox_message(owner), None
            else:
                status, failure = "active", None
                window = steps.window_for(zone)
                next_run = first_due.get(window)
                if next_run is None:
                    next_run = first_due[window] = iso(plan.due(now, first_step, window))
            inserts.append((enrollment_id, sequence_id, contact_id, inbox_id, status, failure,
                            variant, step_id, now_iso, next_run, now_iso, now_iso))
            result(email, "failed" if failure else "enrolled", enrollment_id, failure or "",
                   missing_of(inbox_id, variant, email, owner, first_name, last_name, company,
                              custom))
        self.next_id = next_id
        if inserts:
            db.conn.executemany(_INSERT, inserts)


# render.BUILTIN_VARIABLES, without loading render (and Jinja2) on every tick
_BUILTIN_COLUMNS = frozenset({"first_name", "last_name", "company_name", "email",
                              "owner_first_name", "owner_email"})
_OWN_COLUMNS = ("first_name", "last_name", "company_name")


class _MissingFields:
    """Per contact, the merge variables the sequence's emails print without a default and
    that the contact lacks (SPEC 8: `enroll` warns about them)."""

    def __init__(self, db: Database, steps: list[dict[str, Any]]):
        from seqctl.engine import compose  # loads render and Jinja2: only when enrolling

        self.db = db
        self.used = {variant: sorted(compose.fields_without_default(db, steps, variant))
                     for variant in ("A", "B")}
        self.custom = {variant: any(name not in _BUILTIN_COLUMNS for name in used)
                       for variant, used in self.used.items()}
        # the usual case, names of the contact's own columns only: checked without a dict
        self.own = {variant: [(name, _OWN_COLUMNS.index(name)) for name in used]
                    if all(name in _OWN_COLUMNS for name in used) else None
                    for variant, used in self.used.items()}
        self.owners: dict[int | None, dict[str, str]] = {}

    def of(self, inbox_id: int | None, variant: str, email: str, owner_email: str | None,
           first_name: str | None, last_name: str | None, company_name: str | None,
           custom_fields_json: str | None) -> list[str]:
        used = self.used[variant]
        if not used:
            return []
        own = self.own[variant]
        if own is not None:
            cells = (first_name, last_name, company_name)
            return [name for name, index in own if not str(cells[index] or "").strip()]
        values = self._owner(inbox_id) | {
            "first_name": first_name, "last_name": last_name,
            "company_name": company_name, "email": email}
        if owner_email:
            values["owner_email"] = owner_email
        if self.custom[variant]:
            custom = json.loads(custom_fields_json or "{}")
            values = {**{k: "" if v is None else str(v) for k, v in custom.items()}, **values}
        return [name for name in used if not str(values.get(name) or "").strip()]

    def _owner(self, inbox_id: int | None) -> dict[str, str]:
        if inbox_id not in self.owners:
            row = self.db.execute(
                "SELECT u.first_name, u.email FROM inboxes i JOIN users u ON u.id = i.user_id "
                "WHERE i.id = ?", [inbox_id]).fetchone()
            self.owners[inbox_id] = ({"owner_first_name": row[0] or "", "owner_email": row[1]}
                                     if row else {})
        return self.owners[inbox_id]


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
