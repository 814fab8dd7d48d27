"""An inbox's sending health: pause it when its hard bounces climb, resume it by hand.

Sync (after reading bounces) and `seqctl log bounce` both call `check_bounce_rate`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from seqctl import clock, settings
from seqctl.db import transaction
from seqctl.engine import accounts, events

if TYPE_CHECKING:
    from sqlite_utils import Database

# Notices for the person running seqctl; the CLI shows them on stderr (SPEC: the engine
# never prints).
log = logging.getLogger("seqctl")

BOUNCE_WINDOW = 100  # an inbox's bounce rate is judged over its last 100 sends
BOUNCE_MIN_SENDS = 20  # ... once it has this many: 1 bounce in 5 sends is no signal


def check_bounce_rate(db: Database, inbox_id: int, now: datetime) -> bool:
    """Pause an inbox's sending when its hard bounces exceed `bounce_pause_threshold` of its
    last 100 sends (judged once it has at least 20). A pause is recorded as an event, and
    once the inbox is resumed (however: `seqctl inbox resume`, `resume_inbox`, re-adding it)
    only the sends after that pause count, so the old bounces do not pause it again at once.
    Returns True when it is (now) paused."""
    threshold = settings.get_float(db, "bounce_pause_threshold")
    judged_since = db.execute(
        "SELECT MAX(at) FROM events WHERE inbox_id = ? AND kind IN ('inbox_paused', "
        "'inbox_resumed')",
        [inbox_id],
    ).fetchone()[0]
    recent = [
        r[0]
        for r in db.execute(
            "SELECT id FROM outbox WHERE inbox_id = ? AND status = 'sent' AND sent_at > ? "
            "ORDER BY sent_at DESC LIMIT ?",
            [inbox_id, judged_since or "", BOUNCE_WINDOW],
        )
    ]
    if len(recent) < BOUNCE_MIN_SENDS:
        return False
    marks = ",".join("?" * len(recent))
    bounces = db.execute(
        f"SELECT COUNT(DISTINCT outbox_id) FROM events WHERE kind = 'bounce' "
        f"AND outbox_id IN ({marks})",
        recent,
    ).fetchone()[0]
    rate = bounces / len(recent)
    if rate <= threshold:
        return False
    address = db.execute("SELECT address FROM inboxes WHERE id = ?", [inbox_id]).fetchone()[0]
    with transaction(db):
        changed = db.execute(
            "UPDATE inboxes SET status = 'paused_bounces', status_message = ? "
            "WHERE id = ? AND status = 'active'",
            [
                f"{bounces} hard bounces in the last {len(recent)} sends ({rate:.0%}, over the "
                f"bounce_pause_threshold of {threshold:.0%}): sending is paused; clean the list, "
                f"then `seqctl inbox resume {address}`",
                inbox_id,
            ],
        ).rowcount
        if changed:
            events.record(
                db,
                "inbox_paused",
                now,
                inbox_id=inbox_id,
                detail={"bounces": bounces, "sends": len(recent), "threshold": threshold},
            )
    if changed:
        _log(f"inbox {address}: sending paused, {bounces} hard bounces in {len(recent)} sends")
    return True


def resume_inbox(db: Database, address: str, now: datetime | None = None) -> bool:
    """Let an inbox paused for bounces send again. Its bounce rate is judged afresh from here.
    Returns False when it was not paused for bounces."""
    inbox = accounts.inbox(db, address)
    now = now or clock.now()
    with transaction(db):
        changed = db.execute(
            "UPDATE inboxes SET status = 'active', status_message = NULL "
            "WHERE id = ? AND status = 'paused_bounces'",
            [inbox["id"]],
        ).rowcount
        if changed:
            events.record(db, "inbox_resumed", now, inbox_id=inbox["id"])
    return bool(changed)


def paused_for_bounces(db: Database) -> list[tuple[str, str]]:
    """(address, why) of every inbox whose sending is paused for bounces."""
    return [tuple(row) for row in db.execute(
        "SELECT address, status_message FROM inboxes WHERE status = 'paused_bounces' "
        "ORDER BY id").fetchall()]


def _log(message: str) -> None:
    log.warning(message)
