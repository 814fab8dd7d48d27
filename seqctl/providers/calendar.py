"""Booking lookups: did the contact get a meeting on the rep's calendar since `since`?

A booking is an event created after `since`, not cancelled, with the contact as an attendee or
the organizer. Needs the calendar scope granted at connect time (`--calendar`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from seqctl.providers.base import AuthRevokedError, InboxInfo, ProviderError
from seqctl.providers.gmail import CALENDAR_READONLY, GmailProvider
from seqctl.providers.oauth import gcal_api_url, graph_api_url
from seqctl.providers.outlook import CALENDAR_SCOPES, OutlookProvider

MAX_PAGES = 10
LOOKAHEAD_DAYS = 180


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def gmail_booking(inbox: InboxInfo, contact_email: str, since: datetime) -> bool:
    """Google Calendar events.list on the primary calendar, searched by the contact's address."""
    provider = GmailProvider(inbox)
    if CALENDAR_READONLY not in provider.scopes:
        raise ProviderError(
            f"{inbox.address} was connected without calendar access; reconnect with --calendar"
        )
    since = _aware(since)
    contact = contact_email.lower()
    params: dict[str, Any] = {
        "q": contact_email, "updatedMin": _iso(since), "timeMin": _iso(since),
        "singleEvents": "true", "maxResults": 50,
    }
    for _ in range(MAX_PAGES):
        page = provider.request(
            "GET", f"{gcal_api_url()}/calendar/v3/calendars/primary/events",
            what="Google Calendar events.list", params=params,
        ).json()
        for event in page.get("items", []):
            people = [a.get("email", "") for a in event.get("attendees", [])]
            people.append(event.get("organizer", {}).get("email", ""))
            created = _parse(event.get("created"))
            if (event.get("status") != "cancelled" and contact in (p.lower() for p in people)
                    and created is not None and created > since):
                return True
        if not page.get("nextPageToken"):
            return False
        params["pageToken"] = page["nextPageToken"]
    return False


def outlook_booking(inbox: InboxInfo, contact_email: str, since: datetime) -> bool:
    """Graph calendarView from `since` to 180 days later, attendees checked."""
    provider = OutlookProvider(inbox)
    since = _aware(since)
    contact = contact_email.lower()
    url: str | None = f"{graph_api_url()}/me/calendarView"
    params: dict[str, Any] | None = {
        "startDateTime": _iso(since),
        "endDateTime": _iso(since + timedelta(days=LOOKAHEAD_DAYS)),
        "$select": "attendees,organizer,createdDateTime,isCancelled",
        "$top": "50",
    }
    for _ in range(MAX_PAGES):
        if url is None:
            break
        try:
            page = provider.request(
                "GET", url, what="Graph calendarView", params=params,
                scopes=list(CALENDAR_SCOPES),
            ).json()
        except AuthRevokedError as exc:
            raise ProviderError(
                f"no calendar access for {inbox.address} ({exc}); reconnect with --calendar"
            ) from exc
        for event in page.get("value", []):
            people = [
                (a.get("emailAddress") or {}).get("address", "") for a in event.get("attendees", [])
            ]
            people.append(((event.get("organizer") or {}).get("emailAddress") or {}).get("address", ""))
            created = _parse(event.get("createdDateTime"))
            if (not event.get("isCancelled") and contact in (p.lower() for p in people)
                    and created is not None and created > since):
                return True
        url, params = page.get("@odata.nextLink"), None
    return False
