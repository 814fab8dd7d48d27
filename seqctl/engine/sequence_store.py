"""Sequences in the database: applying a spec, rescheduling what it changed, and duplicating,
(de)activating and deleting.

Applying (`apply_spec`) creates the sequence, or updates the one with the same name in place:
- Steps match by their `id` when they have one, else by position. A matched step keeps its
  database row (enrollments pointing at it keep pointing); new steps are inserted; old steps
  that match nothing are marked removed (never deleted: history refers to them).
- An enrollment whose up-next step is removed moves to the first step after it, in the old
  order, that still exists; with none left it is due now, and the engine completes it.
- Active enrollments not waiting on a send, whose up-next step's delays or whose sequence's
  send window changed (or that moved), get a new `next_run_at`: the new due time, but never
  earlier than the next open slot from now (a live edit never fires a step outside its window).

Activation: an inactive sequence accepts no new enrollments; enrollments already in it keep
running (deactivating pauses nothing). Deleting: a sequence with open (active, paused or failed)
enrollments is refused unless forced, which exits them with reason `manual`. A sequence that
nothing refers to is deleted outright; one with history is soft-deleted (renamed to
`NAME#deleted-ID`, made inactive and hidden from listings) so that stats and events keep their
sequence, and the name is free for reuse.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl.clock import from_iso, iso
from seqctl.db import transaction
from seqctl.engine import exits
from seqctl.engine.schedule import (
    due_time,
    into_window,
)
from seqctl.engine.sequence_reader import validate_sequence
from seqctl.engine.sequence_spec import (
    DELETED_MARK,
    MAX_NAME_LENGTH,
    SEQUENCE_DEFAULTS,
    WINDOW_SETTINGS,
    SequenceSpec,
    StepSpec,
    Validation,
    sequence_window,
    step_delay,
)
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database

# --- what the validator needs from the database ----------------------------------------------


def validation_context(db: Database) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """(custom-field names of all contacts, saved templates by name) for `validate_sequence`."""
    custom = {
        row[0]
        for row in db.execute(
            "SELECT DISTINCT j.key FROM contacts, json_each(contacts.custom_fields_json) j "
            "WHERE json_valid(contacts.custom_fields_json)"
        ).fetchall()
    }
    templates: dict[str, dict[str, Any]] = {}
    for name, subject, body in db.execute(
        "SELECT name, subject, body FROM templates ORDER BY id"
    ).fetchall():
        templates.setdefault(name, {"subject": subject, "body": body})
    return custom, templates


def validate_text(db: Database, text: str) -> Validation:
    """`validate_sequence` with the database's custom fields and templates."""
    custom, templates = validation_context(db)
    return validate_sequence(text, known_custom=custom, templates=templates)


# --- the engine's view ------------------------------------------------------------------------


def dict_rows(cursor) -> list[dict[str, Any]]:
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def live_steps(db: Database, sequence_id: int) -> list[dict[str, Any]]:
    """The sequence's current steps (not removed), by position: the `steps` row of each, plus
    `cc`, `bcc` (lists) and `variant_b` (dict or None) decoded from their JSON columns."""
    steps = dict_rows(
        db.execute(
            "SELECT * FROM steps WHERE sequence_id = ? AND removed = 0 ORDER BY position",
            [sequence_id],
        )
    )
    for step in steps:
        step["cc"] = json.loads(step["cc_json"] or "[]")
        step["bcc"] = json.loads(step["bcc_json"] or "[]")
        step["variant_b"] = json.loads(step["variant_b_json"]) if step["variant_b_json"] else None
    return steps


def get_sequence(db: Database, name: str) -> dict[str, Any]:
    """The `sequences` row named `name` (deleted ones are not found); SeqctlError if none."""
    rows = dict_rows(db.execute("SELECT * FROM sequences WHERE name = ?", [name]))
    if not rows or DELETED_MARK in name:
        raise SeqctlError(f"no sequence '{name}' (see `seqctl sequence list`)")
    return rows[0]


# --- applying ---------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    name: str
    action: str  # created | updated | unchanged
    steps: int
    steps_added: int = 0
    steps_changed: int = 0
    steps_removed: int = 0
    enrollments_moved: int = 0
    enrollments_rescheduled: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _sequence_columns(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: int(v) if isinstance(v, bool) else v for k, v in settings.items()}


def _step_columns(step: StepSpec, position: int) -> dict[str, Any]:
    return {
        "step_key": step.key,
        "position": position,
        "step_type": step.step_type,
        "delay_business_days": step.delay_business_days,
        "delay_calendar_days": step.delay_calendar_days,
        "delay_hours": step.delay_hours,
        "subject": step.subject,
        "body": step.body,
        "cc_json": json.dumps(step.cc),
        "bcc_json": json.dumps(step.bcc),
        "variant_b_json": json.dumps(step.variant_b) if step.variant_b else None,
        "template": step.template,
        "title": step.title,
        "notes": step.notes,
        "removed": 0,
    }


def _insert(db: Database, table: str, values: Mapping[str, Any]) -> int:
    columns = ", ".join(values)
    marks = ", ".join("?" * len(values))
    return db.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values())
    ).lastrowid


def _update(db: Database, table: str, row_id: int, values: Mapping[str, Any]) -> None:
    assignments = ", ".join(f"{column} = ?" for column in values)
    db.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), row_id])


def _match_steps(old: list[dict[str, Any]], new: list[StepSpec]) -> list[dict[str, Any] | None]:
    """For each new step, the old live step it updates (by id, else by position), or None."""
    by_key = {step["step_key"]: step for step in old if step["step_key"] is not None}
    new_keys = {step.key for step in new if step.key is not None}
    matched: list[dict[str, Any] | None] = [None] * len(new)
    taken: set[int] = set()
    for index, step in enumerate(new):
        if step.key is not None and step.key in by_key:
            matched[index] = by_key[step.key]
            taken.add(by_key[step.key]["id"])
    for index, step in enumerate(new):
        if step.key is not None or index >= len(old):
            continue
        candidate = old[index]
        if candidate["id"] in taken or candidate["step_key"] in new_keys:
            continue
        matched[index] = candidate
        taken.add(candidate["id"])
    return matched


def apply_specs(db: Database, specs: list[SequenceSpec], now: datetime) -> list[ApplyResult]:
    """Apply several sequence files at once: all of them, or (on any error) none."""
    with transaction(db):
        return [apply_spec(db, spec, now) for spec in specs]


def apply_spec(db: Database, spec: SequenceSpec, now: datetime) -> ApplyResult:
    """Create the sequence, or update the one with the same name (see the module docstring)."""
    with transaction(db):
        rows = dict_rows(db.execute("SELECT * FROM sequences WHERE name = ?", [spec.name]))
        columns = _sequence_columns(spec.settings)
        if not rows:
            sequence_id = _insert(
                db,
                "sequences",
                {"name": spec.name, **columns, "created_at": iso(now), "updated_at": iso(now)},
            )
            for position, step in enumerate(spec.steps, start=1):
                _insert(db, "steps", {"sequence_id": sequence_id, **_step_columns(step, position)})
            return ApplyResult(spec.name, "created", len(spec.steps), steps_added=len(spec.steps))
        return _update_sequence(db, rows[0], columns, spec, now)


def _update_sequence(
    db: Database, row: dict[str, Any], columns: dict[str, Any], spec: SequenceSpec, now: datetime
) -> ApplyResult:
    sequence_id = row["id"]
    result = ApplyResult(spec.name, "unchanged", len(spec.steps))
    changed_settings = {k: v for k, v in columns.items() if row[k] != v}
    window_changed = any(k in changed_settings for k in WINDOW_SETTINGS)
    if changed_settings:
        _update(db, "sequences", sequence_id, changed_settings)

    old = dict_rows(
        db.execute(
            "SELECT * FROM steps WHERE sequence_id = ? AND removed = 0 ORDER BY position",
            [sequence_id],
        )
    )
    matched = _match_steps(old, spec.steps)
    delay_changed: set[int] = set()
    for position, (step, previous) in enumerate(zip(spec.steps, matched, strict=True), start=1):
        values = _step_columns(step, position)
        if previous is None:
            _insert(db, "steps", {"sequence_id": sequence_id, **values})
            result.steps_added += 1
            continue
        diff = {k: v for k, v in values.items() if previous[k] != v}
        if not diff:
            continue
        _update(db, "steps", previous["id"], diff)
        if set(diff) - {"position"}:
            result.steps_changed += 1
        if any(k.startswith("delay_") for k in diff):
            delay_changed.add(previous["id"])
        if "step_type" in diff:
            waiting = _up_next_count(db, previous["id"])
            if waiting:
                result.warnings.append(
                    f"step {position} changed from {previous['step_type']} to "
                    f"{step.step_type} while up next for {waiting} enrollment(s); "
                    f"they will get the new {step.step_type} step"
                )

    kept = {m["id"] for m in matched if m is not None}
    removed = [step for step in old if step["id"] not in kept]
    moved: set[int] = set()
    for step in removed:
        db.execute("UPDATE steps SET removed = 1, position = NULL WHERE id = ?", [step["id"]])
        result.steps_removed += 1
        index = old.index(step)
        successor = next((s for s in old[index + 1 :] if s["id"] in kept), None)
        waiting = dict_rows(
            db.execute(
                "SELECT id, status, waiting_outbox_id FROM enrollments "
                "WHERE step_id = ? AND status != 'exited'",
                [step["id"]],
            )
        )
        if not waiting:
            continue
        label = f"'{step['step_key']}'" if step["step_key"] else str(step["position"])
        where = "the next remaining step" if successor else "the end (they complete)"
        result.warnings.append(
            f"removed step {label} was up next for {len(waiting)} "
            f"enrollment(s); they move to {where}"
        )
        for enrollment in waiting:
            if successor is not None:
                db.execute(
                    "UPDATE enrollments SET step_id = ?, updated_at = ? WHERE id = ?",
                    [successor["id"], iso(now), enrollment["id"]],
                )
            elif enrollment["status"] == "active" and enrollment["waiting_outbox_id"] is None:
                db.execute(
                    "UPDATE enrollments SET step_id = NULL, next_run_at = ?, "
                    "updated_at = ? WHERE id = ?",
                    [iso(now), iso(now), enrollment["id"]],
                )
            else:
                db.execute(
                    "UPDATE enrollments SET step_id = NULL, updated_at = ? WHERE id = ?",
                    [iso(now), enrollment["id"]],
                )
            moved.add(enrollment["id"])
    result.enrollments_moved = len(moved)
    result.enrollments_rescheduled = _reschedule(
        db, sequence_id, now, window_changed, delay_changed, moved
    )

    if (
        changed_settings
        or result.steps_added
        or result.steps_removed
        or any(
            (m is None or m["position"] != position) for position, m in enumerate(matched, start=1)
        )
        or result.steps_changed
    ):
        result.action = "updated"
        db.execute("UPDATE sequences SET updated_at = ? WHERE id = ?", [iso(now), sequence_id])
    return result


def _up_next_count(db: Database, step_id: int) -> int:
    return db.execute(
        "SELECT COUNT(*) FROM enrollments WHERE step_id = ? AND status != 'exited'", [step_id]
    ).fetchone()[0]


def _reschedule(
    db: Database,
    sequence_id: int,
    now: datetime,
    window_changed: bool,
    delay_changed: set[int],
    moved: set[int],
) -> int:
    """New `next_run_at` for the active enrollments the edit affects (see module docstring)."""
    if not (window_changed or delay_changed or moved):
        return 0
    sequence = dict_rows(db.execute("SELECT * FROM sequences WHERE id = ?", [sequence_id]))[0]
    steps = {step["id"]: step for step in live_steps(db, sequence_id)}
    enrollments = dict_rows(
        db.execute(
            "SELECT e.id, e.step_id, e.anchor_at, e.next_run_at, c.timezone AS contact_timezone "
            "FROM enrollments e JOIN contacts c ON c.id = e.contact_id "
            "WHERE e.sequence_id = ? AND e.status = 'active' AND e.waiting_outbox_id IS NULL "
            "AND e.step_id IS NOT NULL",
            [sequence_id],
        )
    )
    count = 0
    for enrollment in enrollments:
        step = steps.get(enrollment["step_id"])
        if step is None:
            continue
        if not (window_changed or step["id"] in delay_changed or enrollment["id"] in moved):
            continue
        window = sequence_window(sequence, enrollment["contact_timezone"])
        due = due_time(from_iso(enrollment["anchor_at"]), step_delay(step), window)
        next_run_at = iso(max(due, into_window(now, window)))
        if next_run_at != enrollment["next_run_at"]:
            db.execute(
                "UPDATE enrollments SET next_run_at = ?, updated_at = ? WHERE id = ?",
                [next_run_at, iso(now), enrollment["id"]],
            )
            count += 1
    return count


def check_new_name(db: Database, name: str) -> None:
    """SeqctlError unless `name` is a valid name that no sequence has."""
    if not name.strip() or name != name.strip() or "\n" in name or len(name) > MAX_NAME_LENGTH:
        raise SeqctlError(
            f"'{name}' is not a valid sequence name (one line, no leading or "
            f"trailing spaces, at most {MAX_NAME_LENGTH} characters)"
        )
    if DELETED_MARK in name:
        raise SeqctlError(
            f"'{DELETED_MARK}' is reserved for deleted sequences; choose another name"
        )
    if db.execute("SELECT 1 FROM sequences WHERE name = ?", [name]).fetchone():
        raise SeqctlError(f"a sequence named '{name}' already exists (choose another name)")


def duplicate(db: Database, name: str, new_name: str, now: datetime) -> dict[str, Any]:
    """Copy a sequence and its live steps (not its enrollments) under `new_name`. The copy is
    inactive (Active = false), so nobody is enrolled in it before it is reviewed."""
    with transaction(db):
        source = get_sequence(db, name)
        check_new_name(db, new_name)
        values = {k: source[k] for k in SEQUENCE_DEFAULTS}
        values["active"] = 0
        sequence_id = _insert(
            db,
            "sequences",
            {"name": new_name, **values, "created_at": iso(now), "updated_at": iso(now)},
        )
        steps = live_steps(db, source["id"])
        for step in steps:
            copy = {
                k: v
                for k, v in step.items()
                if k not in ("id", "sequence_id", "cc", "bcc", "variant_b")
            }
            _insert(db, "steps", {**copy, "sequence_id": sequence_id})
    return {"name": new_name, "source": name, "steps": len(steps)}


def set_active(db: Database, name: str, active: bool, now: datetime) -> bool:
    """Turn a sequence on or off. Returns False when it already was."""
    with transaction(db):
        sequence = get_sequence(db, name)
        if bool(sequence["active"]) == active:
            return False
        db.execute(
            "UPDATE sequences SET active = ?, updated_at = ? WHERE id = ?",
            [int(active), iso(now), sequence["id"]],
        )
    return True


def delete(db: Database, name: str, now: datetime, *, force: bool = False) -> dict[str, Any]:
    """Delete a sequence (see the module docstring). Returns {"name", "deleted": "hard"|"soft",
    "exited": n}."""
    with transaction(db):
        sequence = get_sequence(db, name)
        sequence_id = sequence["id"]
        open_ids = [
            row[0]
            for row in db.execute(
                "SELECT id FROM enrollments WHERE sequence_id = ? AND status != 'exited'",
                [sequence_id],
            ).fetchall()
        ]
        if open_ids and not force:
            raise SeqctlError(
                f"sequence '{name}' has {len(open_ids)} enrollment(s) still in it "
                "(active, paused or failed); `seqctl sequence deactivate "
                f"{name}` stops new ones, or add --force to exit them (reason "
                "manual) and delete"
            )
        for enrollment_id in open_ids:
            exits.exit_enrollment(db, enrollment_id, "manual", now, {"why": "sequence deleted"})
        if _has_history(db, sequence_id):
            db.execute(
                "UPDATE sequences SET name = ?, active = 0, updated_at = ? WHERE id = ?",
                [f"{name}{DELETED_MARK}{sequence_id}", iso(now), sequence_id],
            )
            how = "soft"
        else:
            db.execute("DELETE FROM steps WHERE sequence_id = ?", [sequence_id])
            db.execute("DELETE FROM sequences WHERE id = ?", [sequence_id])
            how = "hard"
    return {"name": name, "deleted": how, "exited": len(open_ids)}


def _has_history(db: Database, sequence_id: int) -> bool:
    checks = (
        "SELECT 1 FROM enrollments WHERE sequence_id = ? LIMIT 1",
        "SELECT 1 FROM tasks WHERE sequence_id = ? LIMIT 1",
        "SELECT 1 FROM events WHERE sequence_id = ? LIMIT 1",
        "SELECT 1 FROM outbox WHERE step_id IN (SELECT id FROM steps WHERE sequence_id = ?) "
        "LIMIT 1",
    )
    return any(db.execute(sql, [sequence_id]).fetchone() for sql in checks)
