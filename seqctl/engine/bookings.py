"""Booking detection during sync: a contact who got a meeting on the rep's calendar since
enrolling exits `booking`, as if the invitation had arrived by mail.

Only gmail and outlook inboxes connected with `--calendar` (config "calendar": true) are asked;
one calendar lookup per live enrollment of the inbox, so it runs on the sync schedule only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl.clock import from_iso
from seqctl.engine import outcomes
from seqctl.providers.base import InboxInfo, ProviderError
from seqctl.providers.registry import inbox_info

if TYPE_CHECKING:
    from sqlite_utils import Database

# Notices for the person running seqctl; the CLI shows them on stderr (SPEC: the engine
# never prints).
log = logging.getLogger("seqctl")

BookingLookup = Callable[[InboxInfo, str, datetime], bool]


def _lookup_for(kind: str) -> BookingLookup | None:
    if kind == "gmail":
        from seqctl.providers.calendar import gmail_booking

        return gmail_booking
    if kind == "outlook":
        from seqctl.providers.calendar import outlook_booking

        return outlook_booking
    return None


def check_bookings(
    db: Database,
    inbox: dict[str, Any],
    now: datetime,
    lookup: BookingLookup | None = None,
) -> int:
    """Ask the inbox's calendar about each contact with a live enrollment from this inbox;
    returns the number of contacts found booked (their enrollments exit `booking` where the
    sequence has exit_on_booking). A calendar error stops this inbox's check until next sync."""
    if not inbox["config"].get("calendar") or inbox["status"] != "active":
        return 0
    lookup = lookup or _lookup_for(inbox["kind"])
    if lookup is None:
        return 0
    rows = db.execute(
        "SELECT c.id, c.email, MIN(e.enrolled_at) FROM enrollments e "
        "JOIN contacts c ON c.id = e.contact_id "
        "WHERE e.inbox_id = ? AND e.status IN ('active', 'paused') "
        "GROUP BY c.id ORDER BY c.id",
        [inbox["id"]],
    ).fetchall()
    info = inbox_info(inbox)
    booked = 0
    for contact_id, email, enrolled_at in rows:
        try:
            found = lookup(info, email, from_iso(enrolled_at) or now)
        except ProviderError as exc:
            log.warning(f"inbox {inbox['address']}: calendar check stopped: {exc}")
            break
        if found:
            outcomes.on_meeting(
                db, contact_id, now, detail={"via": "calendar", "inbox": inbox["address"]}
            )
            booked += 1
    return booked
