"""What the classifier knows about us, and what it says about a message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from seqctl.engine.intent import ReplyIntent

KINDS = ("bounce", "spam_complaint", "auto_reply", "unsubscribe", "meeting", "reply", "ignored")

_MAX_TEXT = 200_000
_MAX_DEPTH = 20
_MAX_BOUNCE_SCAN = 256_000


@dataclass(frozen=True)
class ClassifyContext:
    """What the classifier needs to know about us."""

    our_addresses: frozenset[str]
    unsubscribe_addresses: frozenset[str] = frozenset()
    received_at: datetime | None = None


@dataclass
class Verdict:
    """What an inbound message is, with the facts the engine acts on."""

    kind: str
    sender: str | None
    subject: str
    message_id: str | None
    references: list[str] = field(default_factory=list)
    hard: bool = False
    bounced_recipients: list[str] = field(default_factory=list)
    complained_recipients: list[str] = field(default_factory=list)   # spam_complaint
    original_message_ids: list[str] = field(default_factory=list)
    return_date: date | None = None
    attendees: list[str] = field(default_factory=list)
    calendar_method: str | None = None
    reason: str = ""
    intent: ReplyIntent | None = None  # a reply's intent (SPEC 18), read from its new text
