"""The one rendering path: from an enrollment and a step to the exact MIME bytes.

`seqctl preview` and the dispatcher both call `compose`, so what you preview is what is sent.
"""

from __future__ import annotations

import email
import email.policy
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl import settings
from seqctl.engine import contacts, links, render
from seqctl.engine.message import BuiltMessage, OutgoingEmail, Tracking, Unsubscribe, build_message
from seqctl.engine.sequence_spec import REQUIRE_ALL, required_fields
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database


@dataclass
class Composed:
    built: BuiltMessage
    thread_id: str | None  # provider thread id to reply in, when replying
    is_reply: bool
    # merge variables this email prints without a default that the contact lacks
    missing_fields: list[str] = field(default_factory=list)
    # fields the sequence's require_fields needs that are empty (preview only: a send fails)
    held_fields: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=2048)
def _fields_without_default(template: str) -> frozenset[str]:
    try:
        return frozenset(render.variables_without_default(template))
    except ValueError:      # a syntax error shows when it is rendered
        return frozenset()


def _templates_of(db: Database, step: dict[str, Any], variant: str,
                  owner_id: int | None) -> list[str]:
    subject, body = _step_content(db, step, variant, owner_id)
    return [subject or "", body, *json.loads(step.get("cc_json") or "[]"),
            *json.loads(step.get("bcc_json") or "[]")]


def fields_without_default(db: Database, steps: list[dict[str, Any]], variant: str,
                           owner_id: int | None = None) -> frozenset[str]:
    """The merge variables the email steps print (for `variant`) without a default."""
    names: set[str] = set()
    for step in steps:
        if step["step_type"] == "email":
            for template in _templates_of(db, step, variant, owner_id):
                names |= _fields_without_default(template)
    return frozenset(names)


def required_missing(require: str, used: frozenset[str] | set[str],
                     context: dict[str, str]) -> list[str]:
    """The fields a sequence's `require_fields` ("" / "all" / "a,b") needs that are empty
    for this contact; "all" means every field the email prints without a default."""
    wanted = used if require == REQUIRE_ALL else required_fields(require)
    return render.blank_fields(context, wanted)


def missing_field_message(fields: list[str], email: str, sequence: str) -> str:
    """Why an email is held back by `require_fields`, and how to fix it."""
    names = " and ".join(fields)
    verb = "is" if len(fields) == 1 else "are"
    sets = "; ".join(f"`seqctl contacts set {email} {name} VALUE`" for name in fields)
    return (f"{names} {verb} empty for {email}, and sequence '{sequence}' requires "
            f"{'it' if len(fields) == 1 else 'them'} (require_fields): set {sets}, "
            f"then `seqctl resume {sequence} {email}`")


def message_id_for(
    db: Database, enrollment_id: int, step_id: int, inbox_address: str, *, key: bytes
) -> str:
    """The Message-ID of a step's email for an enrollment, chosen when the email is queued
    (and stored with it), so a crashed send can be looked up by it and preview shows the same.
    It mixes in a random salt of this database, so a rebuilt database or a second one under the
    same home never repeats an ID (nor honours an old email's links), and it does not show
    recipients how many enrollments there are. `key` is the install secret."""
    salt = _database_salt(db)
    digest = hmac.new(key, f"msgid:{salt}:{enrollment_id}:{step_id}".encode(), hashlib.sha256)
    domain = inbox_address.rsplit("@", 1)[-1]
    return f"<sq.{digest.hexdigest()[:24]}@{domain}>"


def _queued_message_id(db: Database, enrollment_id: int, step_id: int) -> str | None:
    row = db.execute("SELECT message_id FROM outbox WHERE enrollment_id = ? AND step_id = ?",
                     [enrollment_id, step_id]).fetchone()
    return row[0] if row else None


def _database_salt(db: Database) -> str:
    """This database's random salt, created on first use and kept on the connection (it never
    changes), so queueing thousands of emails in a tick asks for it once."""
    salt = getattr(db, "_message_id_salt", None)
    if salt is None:
        row = db.execute("SELECT value FROM settings WHERE key = '_message_id_salt'").fetchone()
        if row is None:
            db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES ('_message_id_salt', ?)",
                       [secrets.token_hex(16)])
            row = db.execute(
                "SELECT value FROM settings WHERE key = '_message_id_salt'").fetchone()
        salt = db._message_id_salt = row[0]
    return salt


def _step_content(
    db: Database, step: dict[str, Any], variant: str, owner_id: int | None
) -> tuple[str | None, str]:
    """Subject and body templates of a step for a variant. A `template:` step reads the saved
    template of the sender (the contact's owner): templates belong to one user (SPEC 8), so
    another rep's template of that name is never sent. With no sender (`owner_id` None: the
    merge fields a sequence uses, asked before anyone is chosen) any user's will do."""
    if step.get("template"):
        if owner_id is None:
            row = db.execute("SELECT subject, body FROM templates WHERE name = ? ORDER BY id "
                             "LIMIT 1", [step["template"]]).fetchone()
        else:
            row = db.execute(
                "SELECT subject, body FROM templates WHERE name = ? AND user_id = ?",
                [step["template"], owner_id],
            ).fetchone()
        if row is None:
            raise SeqctlError(
                f"template '{step['template']}' no longer exists: "
                "save it again with `seqctl templates save`"
            )
        return row[0], row[1]
    if variant == "B" and step.get("variant_b_json"):
        variant_b = json.loads(step["variant_b_json"])
        return variant_b.get("subject", step.get("subject")), variant_b.get("body", step["body"])
    return step.get("subject"), step["body"] or ""


def _context(db: Database, contact: dict[str, Any], owner: dict[str, Any]) -> dict[str, str]:
    return render.merge_context(contact, owner)


def task_text(db: Database, contact_id: int, inbox_id: int | None, title: str,
              notes: str) -> tuple[str, str]:
    """A task's title and notes with merge variables filled in (owner: the inbox's user, else
    the default user)."""
    owner = db.execute(
        "SELECT u.email, u.first_name, u.last_name FROM users u LEFT JOIN inboxes i "
        "ON i.user_id = u.id AND i.id = ? ORDER BY (i.id IS NOT NULL) DESC, u.is_default DESC "
        "LIMIT 1", [inbox_id]).fetchone()
    owner_dict = ({"email": owner[0], "first_name": owner[1], "last_name": owner[2]}
                  if owner else None)
    context = render.merge_context(contacts.contact_by_id(db, contact_id), owner_dict)
    try:
        return render.render(title, context), render.render(notes, context)
    except ValueError:
        return title, notes


def _previous_email(db: Database, enrollment_id: int, sequence_id: int, position: int):
    """The email step before `position` and its outbox row for this enrollment, if any."""
    step = db.execute(
        "SELECT * FROM steps WHERE sequence_id = ? AND removed = 0 AND step_type = 'email' "
        "AND position < ? ORDER BY position DESC LIMIT 1",
        [sequence_id, position],
    ).fetchone()
    if step is None:
        return None, None
    columns = [c[0] for c in db.execute("SELECT * FROM steps LIMIT 0").description]
    step_row = dict(zip(columns, step, strict=True))
    sent = db.execute(
        "SELECT raw, subject, thread_id, status FROM outbox WHERE enrollment_id = ? AND step_id = ?",
        [enrollment_id, step_row["id"]],
    ).fetchone()
    return step_row, sent


def _rendering_errors_as_user_errors(fn: Callable[..., Composed]) -> Callable[..., Composed]:
    @functools.wraps(fn)
    def wrapper(db: Database, enrollment_id: int, step: dict[str, Any], **options: Any) -> Composed:
        try:
            return fn(db, enrollment_id, step, **options)
        except ValueError as exc:  # a template or address that cannot be rendered
            raise SeqctlError(f"step {step.get('position')} cannot be rendered: {exc}") from None

    return wrapper


@_rendering_errors_as_user_errors
def compose(
    db: Database,
    enrollment_id: int,
    step: dict[str, Any],
    *,
    date: datetime,
    key: bytes,
    variant: str | None = None,
    predict: bool = False,
    message_id: str | None = None,
) -> Composed:
    """Render the email `step` for `enrollment_id` as it would be sent at `date`, with the
    Message-ID stored when it was queued (`message_id`; computed when previewing). `predict`
    (preview): earlier emails not sent yet are taken as sent, for the thread, and a field
    that `require_fields` needs is only reported in `held_fields`; when sending, it is a
    SeqctlError that says how to fix it. `key` (the install secret) signs the Message-ID and
    the tracking links."""
    enr = db.execute(
        "SELECT e.id, e.sequence_id, e.contact_id, e.inbox_id, e.variant, "
        "s.track_opens, s.track_clicks, s.require_fields, s.name FROM enrollments e "
        "JOIN sequences s ON s.id = e.sequence_id WHERE e.id = ?",
        [enrollment_id],
    ).fetchone()
    if enr is None:
        raise SeqctlError(f"enrollment {enrollment_id} not found")
    (_, sequence_id, contact_id, inbox_id, stored_variant, track_opens, track_clicks,
     require, sequence_name) = enr
    variant = (variant or stored_variant or "A").upper()
    contact = contacts.contact_by_id(db, contact_id)
    inbox = db.execute(
        "SELECT i.address, u.id, u.email, u.first_name, u.last_name FROM inboxes i "
        "JOIN users u ON u.id = i.user_id WHERE i.id = ?",
        [inbox_id],
    ).fetchone()
    if inbox is None:
        raise SeqctlError(
            "this enrollment has no inbox to send from: "
            "add one with `seqctl inbox add` and `seqctl resume --failed --inbox`"
        )
    address, owner_id, owner_email, owner_first, owner_last = inbox
    owner = {"email": owner_email, "first_name": owner_first, "last_name": owner_last}
    context = _context(db, contact, owner)

    used = frozenset().union(*(_fields_without_default(t)
                               for t in _templates_of(db, step, variant, owner_id)))
    held = required_missing(require, used, context)
    if held and not predict:
        raise SeqctlError(missing_field_message(held, contact["email"], sequence_name))
    subject_t, body_t = _step_content(db, step, variant, owner_id)
    body = render.render(body_t, context)
    in_reply_to = None
    references: list[str] = []
    thread_id = None
    is_reply = False
    if subject_t:
        subject = render.render(subject_t, context)
    else:
        subject, in_reply_to, references, thread_id = _thread(
            db, enrollment_id, sequence_id, step["position"], variant, owner_id, context,
            address=address, predict=predict, key=key)
        is_reply = in_reply_to is not None
    cc = [render.render(x, context) for x in json.loads(step.get("cc_json") or "[]")]
    bcc = [render.render(x, context) for x in json.loads(step.get("bcc_json") or "[]")]

    tracking_base = settings.get(db, "tracking_base_url")
    message_id = message_id or _queued_message_id(db, enrollment_id, step["id"]) or (
        message_id_for(db, enrollment_id, step["id"], address, key=key))
    unsubscribe = Unsubscribe(
        mailto=settings.get(db, "unsubscribe_mailto") or _plus_tag(address, "unsubscribe"),
        url=links.link(tracking_base, "u", message_id, key=key) if tracking_base else None,
        physical_address=settings.get(db, "physical_address") or None,
    )
    track = None
    if tracking_base and (track_opens or track_clicks):
        track = _tracking(tracking_base, message_id, bool(track_opens), bool(track_clicks), key)
    outgoing = OutgoingEmail(
        from_address=address,
        from_name=" ".join(x for x in (owner_first, owner_last) if x),
        to_address=contact["email"],
        to_name=" ".join(x for x in (contact["first_name"], contact["last_name"]) if x),
        subject=subject,
        text=body,
        cc=[x for x in cc if x.strip()],
        bcc=[x for x in bcc if x.strip()],
        message_id=message_id,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        unsubscribe=unsubscribe,
        tracking=track,
    )
    return Composed(built=build_message(outgoing), thread_id=thread_id, is_reply=is_reply,
                    missing_fields=render.blank_fields(context, used | set(held)),
                    held_fields=held)


def _thread(db, enrollment_id, sequence_id, position, variant, owner_id, context, *,
            address: str, predict: bool, key: bytes):
    """Subject and threading headers for an email step without a subject: a reply in the thread
    of the previous email; if that email was never sent, a new thread with its subject.

    With `predict` (preview), a previous email that has not gone out *yet* is taken as sent:
    its Message-ID is already fixed, so the preview shows the reply this step will be."""
    prev_step, prev_sent = _previous_email(db, enrollment_id, sequence_id, position)
    if prev_step is None:
        raise SeqctlError("an email step without a subject needs an earlier email step")
    if prev_sent is not None and prev_sent[3] == "sent" and prev_sent[0]:
        parsed = email.message_from_bytes(prev_sent[0], policy=email.policy.default)
        prev_id = str(parsed["Message-ID"]).strip()
        refs = str(parsed.get("References", "") or "").split()
        return (
            render.reply_subject(prev_sent[1] or str(parsed["Subject"])),
            prev_id,
            [*refs, prev_id],
            prev_sent[2],
        )
    pending = prev_sent is None or prev_sent[3] in ("queued", "sending", "unknown")
    subject_t, _ = _step_content(db, prev_step, variant, owner_id)
    if subject_t:
        earlier = (render.render(subject_t, context), None, [], None)
    else:   # the previous email was itself a reply: its thread is the one to join
        earlier = _thread(db, enrollment_id, sequence_id, prev_step["position"], variant,
                          owner_id, context, address=address, predict=predict, key=key)
    if predict and pending:
        prev_id = _queued_message_id(db, enrollment_id, prev_step["id"]) or message_id_for(
            db, enrollment_id, prev_step["id"], address, key=key)
        return render.reply_subject(earlier[0]), prev_id, [*earlier[2], prev_id], None
    return earlier


def _plus_tag(address: str, tag: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+{tag}@{domain}"


def _tracking(base: str, message_id: str, opens: bool, clicks: bool, key: bytes) -> Tracking:
    return Tracking(
        pixel_url=links.link(base, "o", message_id, key=key) if opens else None,
        wrap_link=(lambda url: links.link(base, "c", message_id, url, key=key)) if clicks else None,
    )
