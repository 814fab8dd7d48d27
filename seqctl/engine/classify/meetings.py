"""Meetings: calendar parts (text/calendar or .ics) that book, accept or cancel a meeting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from seqctl.engine.classify.mime import _part_text, _parts


@dataclass
class _Calendar:
    method: str
    organizer: list[str]
    attendees: list[str]
    accepted: bool
    has_event: bool


@dataclass
class _Booking:
    kind: str  # "meeting", "ignored", or "" to fall through to reply
    method: str | None
    attendees: list[str]
    reason: str


def _calendar_parts(msg: Message) -> list[_Calendar]:
    calendars = []
    for part in _parts(msg):
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = ""
        try:
            filename = (part.get_filename() or "").lower()
        except Exception:
            filename = ""
        if content_type in ("text/calendar", "application/ics") or filename.endswith(
            (".ics", ".vcs")
        ):
            text = _part_text(part)
            if "BEGIN:VCALENDAR" not in text.upper():
                continue
            method_param = str(part.get_param("method", "") or "")
            calendars.append(_read_calendar(text, method_param))
    return calendars


def _unfold(text: str) -> list[str]:
    return re.sub(r"\r?\n[ \t]", "", text).replace("\r", "").split("\n")


def _split_property(line: str) -> tuple[str, dict[str, str], str]:
    """NAME;PARAM=x;PARAM="a:b":VALUE -> (NAME, params, VALUE); colons inside quotes kept."""
    in_quotes = False
    for index, char in enumerate(line):
        if char == '"':
            in_quotes = not in_quotes
        elif char == ":" and not in_quotes:
            head, value = line[:index], line[index + 1 :]
            break
    else:
        return line.upper(), {}, ""
    name, *raw_params = _split_outside_quotes(head, ";")
    params = {}
    for raw in raw_params:
        key, _, val = raw.partition("=")
        params[key.strip().upper()] = val.strip().strip('"')
    return name.strip().upper(), params, value.strip()


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    pieces, current, in_quotes = [], [], False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
        if char == separator and not in_quotes:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return pieces


def _mailto(value: str) -> str | None:
    value = re.sub(r"^mailto:", "", value.strip(), flags=re.IGNORECASE).strip().lower()
    return value if "@" in value else None


def _read_calendar(text: str, method_param: str) -> _Calendar:
    method = method_param.upper()
    organizer: list[str] = []
    attendees: list[str] = []
    accepted = False
    has_event = False
    for line in _unfold(text):
        if not line.strip():
            continue
        name, params, value = _split_property(line)
        if name == "METHOD":
            method = value.upper()
        elif name == "BEGIN" and value.upper() == "VEVENT":
            has_event = True
        elif name in ("ORGANIZER", "ATTENDEE"):
            address = _mailto(value) or _mailto(params.get("EMAIL", ""))
            if not address:
                continue
            (organizer if name == "ORGANIZER" else attendees).append(address)
            if name == "ATTENDEE" and params.get("PARTSTAT", "").upper() == "ACCEPTED":
                accepted = True
    return _Calendar(method, organizer, attendees, accepted, has_event)


def _meeting(calendars: list[_Calendar]) -> _Booking | None:
    if not calendars:
        return None
    people = list(dict.fromkeys(a for c in calendars for a in c.organizer + c.attendees))
    methods = [c.method for c in calendars if c.method]
    method = methods[0] if methods else ""
    if any(c.method == "REQUEST" for c in calendars):
        return _Booking("meeting", "REQUEST", people, "calendar invitation (METHOD:REQUEST)")
    if any(c.method == "REPLY" and c.accepted for c in calendars):
        return _Booking("meeting", "REPLY", people, "calendar reply, PARTSTAT=ACCEPTED")
    if any(c.method == "PUBLISH" and c.attendees and c.has_event for c in calendars):
        return _Booking("meeting", "PUBLISH", people, "published event with attendees")
    if method == "CANCEL":
        return _Booking("ignored", method, people, "calendar CANCEL is not a booking")
    reason = f"calendar {method or 'part'} that is not a booking"
    if method == "REPLY":
        reason = "calendar reply not accepted (declined or tentative)"
    return _Booking("", method or None, people, reason)
