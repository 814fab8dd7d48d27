"""What following a signed link does (the links themselves are `seqctl.engine.links`).

`seqctl serve` verifies a token, then calls `record_open`, `record_click` or `unsubscribe`
here. A click redirects only to a URL that is in the text of that very email (no open
redirect). Opens and clicks that look like a mail scanner's (see `analytics.is_early` and
`analytics.scanner_clicks`) are recorded with `{"scanner": true}` and not counted in stats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from seqctl.clock import from_iso, iso
from seqctl.db import transaction
from seqctl.engine import analytics, events, outcomes
from seqctl.engine.links import Token, email_links, is_unsubscribe_link, normalise_url

if TYPE_CHECKING:
    from sqlite_utils import Database


@dataclass(frozen=True)
class SentEmail:
    """The outbox row a token's Message-ID names."""

    outbox_id: int
    enrollment_id: int | None
    contact_id: int | None
    step_id: int | None
    sent_at: datetime | None
    raw: bytes | None


def find_email(db: Database, message_id: str) -> SentEmail | None:
    row = db.execute(
        "SELECT id, enrollment_id, contact_id, step_id, sent_at, raw FROM outbox "
        "WHERE message_id = ?",
        [message_id],
    ).fetchone()
    if row is None:
        return None
    raw = row[5].encode() if isinstance(row[5], str) else row[5]
    return SentEmail(row[0], row[1], row[2], row[3], from_iso(row[4]), raw)


def record_open(db: Database, token: Token, at: datetime) -> bool:
    """An open pixel was fetched: record an `open` event on that email. False when the
    token names no email we sent."""
    sent = find_email(db, token.message_id)
    if sent is None:
        return False
    scanner = analytics.is_early(sent.sent_at, at)
    events.record(
        db,
        "open",
        at,
        enrollment_id=sent.enrollment_id,
        contact_id=sent.contact_id,
        outbox_id=sent.outbox_id,
        step_id=sent.step_id,
        detail={"scanner": True} if scanner else None,
    )
    return True


def click_target(db: Database, token: Token) -> str | None:
    """The URL a click token may redirect to: its URL when that is a link in the text of the
    email it names, else None."""
    sent = find_email(db, token.message_id)
    if sent is None or token.url is None or not sent.raw:
        return None
    target = normalise_url(token.url)
    if target not in {normalise_url(link) for link in email_links(sent.raw)}:
        return None
    return token.url


def record_click(db: Database, token: Token, at: datetime, *, key: bytes) -> str | None:
    """A tracked link was followed: record a `click` event and return the URL to redirect to;
    None (nothing recorded) when the token names no email we sent or its URL is not a link of
    that email. The same link of the same email followed again within the same minute is one
    click. A click that completes a scanner burst flags the other clicks of the burst too.

    The cost does not grow with the clicks that came before: only those within the burst
    window around this one are read."""
    sent = find_email(db, token.message_id)
    if sent is None or token.url is None or not sent.raw:
        return None
    links = email_links(sent.raw)
    target = normalise_url(token.url)
    if target not in {normalise_url(link) for link in links}:
        return None
    tracked = {normalise_url(link) for link in links if not is_unsubscribe_link(link, key=key)}
    at = at.replace(microsecond=0)
    minute_key = [sent.outbox_id, target, at.strftime("%Y-%m-%dT%H:%MZ")]
    with transaction(db):
        inserted = db.execute(
            "INSERT OR IGNORE INTO click_minutes (outbox_id, url, minute, at) VALUES (?, ?, ?, ?)",
            [*minute_key, iso(at)]).rowcount
        if not inserted:
            return token.url
        window = timedelta(seconds=analytics.BURST_SECONDS)
        nearby = db.execute(
            "SELECT at, url, event_id, scanner FROM click_minutes WHERE outbox_id = ? "
            "AND at BETWEEN ? AND ? AND event_id IS NOT NULL ORDER BY at",
            [sent.outbox_id, iso(at - window), iso(at + window)]).fetchall()
        clicks = [(from_iso(when), url) for when, url, _, _ in nearby] + [(at, target)]
        flagged = analytics.scanner_clicks(sent.sent_at, clicks, len(tracked))
        for index, (_, _, event_id, was_flagged) in enumerate(nearby):
            if index in flagged and not was_flagged:
                db.execute("UPDATE events SET detail_json = json_set(detail_json, '$.scanner', "
                           "json('true')) WHERE id = ?", [event_id])
                db.execute("UPDATE click_minutes SET scanner = 1 WHERE event_id = ?", [event_id])
        scanner = len(clicks) - 1 in flagged
        event_id = events.record(
            db,
            "click",
            at,
            enrollment_id=sent.enrollment_id,
            contact_id=sent.contact_id,
            outbox_id=sent.outbox_id,
            step_id=sent.step_id,
            detail={"url": token.url, **({"scanner": True} if scanner else {})},
        )
        db.execute("UPDATE click_minutes SET event_id = ?, scanner = ? "
                   "WHERE outbox_id = ? AND url = ? AND minute = ?",
                   [event_id, int(scanner), *minute_key])
    return token.url


def unsubscribe(db: Database, token: Token, at: datetime, *, via: str) -> bool:
    """Suppress the email's recipient and exit all their live enrollments `unsubscribed`.
    Repeating it changes nothing. False when the token names no email to a contact."""
    with transaction(db):
        row = db.execute(
            "SELECT o.contact_id, o.enrollment_id, c.email FROM outbox o "
            "JOIN contacts c ON c.id = o.contact_id WHERE o.message_id = ?",
            [token.message_id],
        ).fetchone()
        if row is None:
            return False
        contact_id, enrollment_id, address = row
        done = db.execute(
            "SELECT 1 FROM suppressions WHERE email = ? AND reason = 'unsubscribed'",
            [address.strip().lower()],
        ).fetchone()
        live = db.execute(
            "SELECT 1 FROM enrollments WHERE contact_id = ? AND status IN ('active', 'paused')",
            [contact_id],
        ).fetchone()
        if done and not live:
            return True
        outcomes.on_unsubscribe(
            db,
            contact_id,
            at,
            enrollment_id=enrollment_id,
            detail={"via": via, "message_id": token.message_id},
        )
    return True
