"""`seqctl preview`: the exact message a step would send to a contact now."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl.clock import iso
from seqctl.engine import accounts, compose, plan
from seqctl.engine.compose import Composed
from seqctl.engine.render import variant_for
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database


def preview(db: Database, sequence_name: str, position: int, email: str, now: datetime,
            variant: str | None = None, *, key: bytes) -> tuple[Composed, dict[str, Any]]:
    """Compose step `position` for the contact through the same path the dispatcher uses.
    An enrolled contact is previewed in its enrollment (its variant, inbox and thread); one
    that is not is previewed as if enrolled now, in a transaction that is rolled back."""
    row = db.execute("SELECT id FROM sequences WHERE name = ?", [sequence_name]).fetchone()
    if row is None:
        raise SeqctlError(f"no sequence '{sequence_name}': see `seqctl sequence list`")
    the_plan = plan.load(db, row[0])
    steps = [s for s in the_plan.steps if s["position"] == position]
    if not steps:
        raise SeqctlError(f"'{sequence_name}' has no step {position} "
                          f"(it has {len(the_plan.steps)})")
    step = steps[0]
    if step["step_type"] != "email":
        raise SeqctlError(f"step {position} of '{sequence_name}' is a {step['step_type']} step; "
                          "only email steps have a message to preview")
    address = accounts.normalise_email(email, what="--contact")
    contact = db.execute("SELECT id, owner_email FROM contacts WHERE email = ?",
                         [address]).fetchone()
    if contact is None:
        raise SeqctlError(f"no contact {address}: import it with `seqctl contacts import`")
    enrollment = db.execute(
        "SELECT id, inbox_id FROM enrollments WHERE sequence_id = ? AND contact_id = ? "
        "ORDER BY id DESC LIMIT 1", [row[0], contact[0]]).fetchone()
    has_b = bool(step.get("variant_b_json"))
    if enrollment is not None and enrollment[1] is not None:
        composed = compose.compose(db, enrollment[0], step, date=now, key=key, variant=variant,
                                   predict=True)
        stored = db.execute("SELECT variant FROM enrollments WHERE id = ?",
                            [enrollment[0]]).fetchone()[0]
        return composed, {"enrollment_id": enrollment[0], "has_variant_b": has_b,
                          "variant": (variant or stored or "A").upper()}
    inbox_id = accounts.default_inbox_for(db, contact[1])
    if inbox_id is None:
        raise SeqctlError("no inbox to preview from: add one with `seqctl inbox add`")
    db.execute("SAVEPOINT preview")
    try:
        enrollment_id = (db.execute("SELECT MAX(id) FROM enrollments").fetchone()[0] or 0) + 1
        db.execute(
            "INSERT INTO enrollments (id, sequence_id, contact_id, inbox_id, status, variant, "
            "step_id, anchor_at, enrolled_at, updated_at) VALUES (?,?,?,?,'active',?,?,?,?,?)",
            [enrollment_id, row[0], contact[0], inbox_id, variant_for(enrollment_id),
             step["id"], iso(now), iso(now), iso(now)])
        composed = compose.compose(db, enrollment_id, step, date=now, key=key,
                                   variant=variant, predict=True)
    finally:
        db.execute("ROLLBACK TO SAVEPOINT preview")
        db.execute("RELEASE SAVEPOINT preview")
    return composed, {"enrollment_id": None, "has_variant_b": has_b,
                      "variant": (variant or variant_for(enrollment_id)).upper()}


def pending_subject(db: Database, outbox_id: int, now: datetime, *, key: bytes) -> str | None:
    """The subject a queued email will have (it is rendered for good when it is sent)."""
    row = db.execute("SELECT enrollment_id, step_id FROM outbox WHERE id = ?",
                     [outbox_id]).fetchone()
    if row is None or row[0] is None:
        return None
    cursor = db.execute("SELECT * FROM steps WHERE id = ?", [row[1]])
    step = dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))
    try:
        return compose.compose(db, row[0], step, date=now, key=key, predict=True).built.subject
    except SeqctlError:
        return None
