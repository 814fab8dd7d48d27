"""Signed links for one-click unsubscribe, the open pixel and click redirects, and what
following one of them does.

A link is `{tracking_base_url}/{kind}/{token}` with kind `u` (unsubscribe), `o` (open) or
`c` (click). The token is `payload.mac`: payload = base64url(Message-ID without <>), plus
`~base64url(url)` for clicks; mac = HMAC-SHA256 under the per-install secret, over kind and
payload, so a token for one kind or message cannot be reused for another.

`seqctl serve` verifies a token, then calls `record_open`, `record_click` or `unsubscribe`
here. A click redirects only to a URL that is in the text of that very email (no open
redirect). Opens and clicks that look like a mail scanner's (see `analytics.is_early` and
`analytics.scanner_clicks`) are recorded with `{"scanner": true}` and not counted in stats.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import html
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from sqlite_utils import Database

from seqctl import config
from seqctl.clock import from_iso
from seqctl.db import transaction
from seqctl.engine import analytics, events
from seqctl.files import install_secret

KINDS = ("u", "o", "c")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _mac(kind: str, payload: str) -> str:
    key = install_secret(config.home())
    return hmac.new(key, f"{kind}:{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def link(base: str, kind: str, message_id: str, url: str | None = None) -> str:
    payload = _b64(message_id.strip("<>"))
    if url is not None:
        payload += "~" + _b64(url)
    return f"{base.rstrip('/')}/{kind}/{payload}.{_mac(kind, payload)}"


@dataclass(frozen=True)
class Token:
    kind: str
    message_id: str  # with <>
    url: str | None


def verify(kind: str, token: str) -> Token | None:
    """The token's content when its signature is right for `kind`, else None."""
    if kind not in KINDS or "." not in token or not token.isascii():
        return None
    payload, _, mac = token.rpartition(".")
    if not hmac.compare_digest(mac, _mac(kind, payload)):
        return None
    try:
        parts = payload.split("~")
        message_id = "<" + _unb64(parts[0]) + ">"
        url = _unb64(parts[1]) if len(parts) > 1 else None
    except (ValueError, UnicodeDecodeError):
        return None
    if len(parts) > 2 or (kind == "c") != (url is not None):
        return None
    return Token(kind, message_id, url)


# --- what following a verified link does --------------------------------------------------


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


def normalise_url(url: str) -> str:
    """The form two URLs are compared in: scheme and host lower case, default port and
    entity escapes removed, an empty path as `/`."""
    url = html.unescape(url.strip())
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def email_links(raw: bytes) -> list[str]:
    """The links in the text part of a sent message, as the HTML part made them clickable
    (the same URL pattern), first occurrence first."""
    from seqctl.engine.message import _URL, _trim_url  # the one definition of "a link"

    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return []
    links: list[str] = []
    for match in _URL.finditer(part.get_content()):
        url = _trim_url(match.group())
        if not url or url.lower() in ("http://", "https://", "www."):
            continue
        target = url if "://" in url else f"https://{url}"
        if target not in links:
            links.append(target)
    return links


def _is_unsubscribe_link(url: str) -> bool:
    path = urlsplit(url).path.rstrip("/")
    head, _, token = path.rpartition("/")
    return head.endswith("/u") and verify("u", token) is not None


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


def record_click(db: Database, token: Token, at: datetime) -> str | None:
    """A tracked link was followed: record a `click` event and return the URL to redirect to;
    None (nothing recorded) when the token names no email we sent or its URL is not a link of
    that email. A click that completes a scanner burst flags the earlier clicks of the burst
    too."""
    sent = find_email(db, token.message_id)
    if sent is None or token.url is None or not sent.raw:
        return None
    links = email_links(sent.raw)
    target = normalise_url(token.url)
    if target not in {normalise_url(link) for link in links}:
        return None
    tracked = {normalise_url(link) for link in links if not _is_unsubscribe_link(link)}
    at = at.replace(microsecond=0)
    with transaction(db):
        earlier = db.execute(
            "SELECT id, at, detail_json FROM events WHERE outbox_id = ? AND kind = 'click' "
            "ORDER BY at, id",
            [sent.outbox_id],
        ).fetchall()
        details = [json.loads(detail or "{}") for _, _, detail in earlier]
        clicks = [
            (from_iso(when), normalise_url(detail.get("url") or ""))
            for (_, when, _), detail in zip(earlier, details, strict=True)
        ]
        clicks.append((at, target))
        flagged = analytics.scanner_clicks(sent.sent_at, clicks, len(tracked))
        for index, ((event_id, _, _), detail) in enumerate(zip(earlier, details, strict=True)):
            if index in flagged and not detail.get("scanner"):
                db.execute(
                    "UPDATE events SET detail_json = ? WHERE id = ?",
                    [json.dumps({**detail, "scanner": True}), event_id],
                )
        detail = {"url": token.url}
        if len(clicks) - 1 in flagged:
            detail["scanner"] = True
        events.record(
            db,
            "click",
            at,
            enrollment_id=sent.enrollment_id,
            contact_id=sent.contact_id,
            outbox_id=sent.outbox_id,
            step_id=sent.step_id,
            detail=detail,
        )
    return token.url


def unsubscribe(db: Database, token: Token, at: datetime, *, via: str) -> bool:
    """Suppress the email's recipient and exit all their live enrollments `unsubscribed`.
    Repeating it changes nothing. False when the token names no email to a contact."""
    from seqctl.engine import outcomes

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
