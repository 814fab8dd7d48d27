"""Classify one inbound message: bounce, auto-reply, unsubscribe, meeting, reply or ignored.

A pure function of the raw message bytes and a `ClassifyContext` (no database, clock or
network). The engine decides what a verdict means for an enrollment (SPEC section 10); this
module only reads the message. It never raises: malformed input gives a verdict too.

Checks run in this order, the first match wins:

1. mail from one of our own addresses -> ``ignored``.
2. bounce: an RFC 3464 DSN (Action/Status per recipient; 5.x.x hard, 4.x.x or
   ``Action: delayed`` soft), or a mailer-daemon / postmaster notice without one
   (recipients from flufl.bounce, hard/soft from the status codes in the notice text).
   A DSN that reports only successful deliveries, and a read receipt (RFC 8098), are
   ``ignored``.
3. auto-reply: RFC 3834 ``Auto-Submitted`` other than "no", ``X-Autoreply``,
   ``X-Autorespond``, ``Precedence: auto_reply|bulk|junk``, or an out-of-office subject in
   English, German, French or Spanish. One exception: a message whose only signal is
   "machine generated" (``Auto-Submitted: auto-generated``, ``Precedence: bulk|junk``) but
   that carries a booking calendar part is a meeting, because scheduling tools send their
   invitations that way.
4. unsubscribe: mail to an unsubscribe mailto, or a subject / first own line (quotes,
   greetings and the quoted original skipped) that asks for it. A bare keyword
   ("Unsubscribe", "opt out") counts only when it is nearly the whole line; a phrase
   ("remove me", "stop emailing me", "abmelden", "désinscrire", "darme de baja") counts
   anywhere in the line.
5. meeting: a ``text/calendar`` part (or .ics attachment) with METHOD REQUEST, REPLY with
   PARTSTAT=ACCEPTED, or PUBLISH with attendees. A CANCEL is not a booking and is
   ``ignored``. A declined or tentative REPLY falls through to ``reply``: the contact did
   answer us.
6. reply: everything else.
"""

from __future__ import annotations

import calendar
import html
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import flufl.bounce

# flufl.bounce logs a traceback before re-raising a detector's error; we catch the error.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())

KINDS = ("bounce", "auto_reply", "unsubscribe", "meeting", "reply", "ignored")

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
    original_message_ids: list[str] = field(default_factory=list)
    return_date: date | None = None
    attendees: list[str] = field(default_factory=list)
    calendar_method: str | None = None
    reason: str = ""


def classify(raw: bytes, ctx: ClassifyContext) -> Verdict:
    """Classify one raw RFC 5322 message. Never raises."""
    try:
        return _classify(raw, ctx)
    except Exception as exc:  # the sync loop must survive any message
        return Verdict(
            kind="ignored",
            sender=None,
            subject="",
            message_id=None,
            reason=f"unreadable message ({type(exc).__name__})",
        )


def _classify(raw: bytes, ctx: ClassifyContext) -> Verdict:
    if not isinstance(raw, bytes | bytearray):
        raw = str(raw).encode("utf-8", "surrogateescape")
    msg = message_from_bytes(bytes(raw))
    our = {a.lower() for a in ctx.our_addresses}
    sender = _sender(msg)
    verdict = Verdict(
        kind="reply",
        sender=sender,
        subject=_header(msg, "Subject"),
        message_id=_first_id(_header(msg, "Message-ID")),
        references=_references(msg),
    )
    if sender is not None and sender in our:
        verdict.kind = "ignored"
        verdict.reason = "sent from our own address"
        return verdict

    if _bounce(msg, bytes(raw), verdict, our):
        return verdict

    if any(p.get_content_type() == "message/disposition-notification" for p in _parts(msg)):
        verdict.kind = "ignored"
        verdict.reason = "read receipt (RFC 8098 disposition notification)"
        return verdict

    calendar_parts = _calendar_parts(msg)
    booking = _meeting(calendar_parts)
    auto_reason, strong = _auto_reply_signal(msg, verdict.subject)
    if auto_reason and (strong or not (booking and booking.kind == "meeting")):
        verdict.kind = "auto_reply"
        verdict.reason = auto_reason
        received = ctx.received_at or _date_header(msg)
        verdict.return_date = parse_return_date(
            verdict.subject + "\n" + _own_text(_body_text(msg)), received
        )
        return verdict

    unsubscribe_reason = _unsubscribe(msg, verdict.subject, ctx)
    if unsubscribe_reason:
        verdict.kind = "unsubscribe"
        verdict.reason = unsubscribe_reason
        return verdict

    if booking is not None:
        verdict.calendar_method = booking.method
        verdict.attendees = booking.attendees
        if booking.kind:
            verdict.kind = booking.kind
            verdict.reason = booking.reason
            return verdict

    verdict.kind = "reply"
    verdict.reason = booking.reason if booking else "no automatic or special signal"
    return verdict


# -- headers -------------------------------------------------------------------------------

_ID_RE = re.compile(r"<[^<>\s]+>")


def _header(msg: Message, name: str) -> str:
    """A header decoded to one line of text ('' when missing or unreadable)."""
    try:
        value = msg.get(name)
    except Exception:
        return ""
    if value is None:
        return ""
    return _decode(value)


def _decode(value: object) -> str:
    try:
        chunks = decode_header(value)  # type: ignore[arg-type]
    except Exception:
        return _one_line(str(value))
    text = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            text.append(_bytes_to_str(chunk, charset))
        else:
            text.append(chunk)
    return _one_line("".join(text))


def _bytes_to_str(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", "replace")
    except (LookupError, TypeError, ValueError):
        return data.decode("utf-8", "replace")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\udcff", "")).strip()


def _address(value: str) -> str | None:
    address = parseaddr(value)[1].strip().lower()
    return address if "@" in address else (address or None)


def _sender(msg: Message) -> str | None:
    return _address(_header(msg, "From"))


def _first_id(value: str) -> str | None:
    match = _ID_RE.search(value)
    if match:
        return match.group(0)
    bare = value.strip()
    return f"<{bare}>" if bare and " " not in bare else None


def _ids(value: str) -> list[str]:
    return _ID_RE.findall(value)


def _references(msg: Message) -> list[str]:
    found = _ids(_header(msg, "In-Reply-To")) + _ids(_header(msg, "References"))
    return list(dict.fromkeys(found))


def _recipients(msg: Message) -> set[str]:
    values = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        try:
            values.extend(_decode(v) for v in msg.get_all(name, []))
        except Exception:
            continue
    return {addr.lower() for _name, addr in getaddresses(values) if addr}


def _date_header(msg: Message) -> datetime | None:
    try:
        when = parsedate_to_datetime(_header(msg, "Date"))
    except Exception:
        return None
    return when if when.tzinfo else None


# -- message parts -------------------------------------------------------------------------


def _parts(msg: Message, depth: int = 0) -> Iterator[Message]:
    """Every part of the message itself, not descending into attached messages."""
    yield msg
    if depth >= _MAX_DEPTH or msg.get_content_maintype() == "message":
        return
    if msg.is_multipart():
        payload = msg.get_payload()
        if isinstance(payload, list):
            for part in payload:
                if isinstance(part, Message):
                    yield from _parts(part, depth + 1)


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).lower()
    return disposition.startswith("attachment")


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        try:
            charset = part.get_content_charset()
        except Exception:
            charset = None
        return _bytes_to_str(data[:_MAX_TEXT], charset)
    payload = part.get_payload()
    return payload[:_MAX_TEXT] if isinstance(payload, str) else ""


def _body_text(msg: Message) -> str:
    """The message's own text: text/plain parts, else HTML turned into text."""
    plain, rich = [], []
    for part in _parts(msg):
        if part.is_multipart() or _is_attachment(part):
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain":
            plain.append(_part_text(part))
        elif content_type == "text/html":
            rich.append(_html_to_text(_part_text(part)))
    return "\n".join(plain or rich)[:_MAX_TEXT]


_HTML_QUOTE_RE = re.compile(
    r"<blockquote\b|<div[^>]*\b(class|id)=\"?(gmail_quote|divRplyFwdMsg|appendonsend)", re.I
)
_HTML_HIDDEN_RE = re.compile(r"<(script|style|head)\b", re.I)


def _html_to_text(markup: str) -> str:
    """Visible text of an HTML body, up to the quoted original (replies quote below)."""
    quote = _HTML_QUOTE_RE.search(markup)
    markup = markup[: quote.start()] if quote else markup
    kept, position, lowered = [], 0, markup.lower()
    for match in _HTML_HIDDEN_RE.finditer(markup):
        if match.start() < position:
            continue
        kept.append(markup[position : match.start()])
        close = lowered.find(f"</{match.group(1).lower()}", match.end())
        close = lowered.find(">", close) if close >= 0 else -1
        position = close + 1 if close >= 0 else len(markup)
    markup = "".join(kept) + markup[position:]
    markup = re.sub(r"<br\s*/?>|</(p|div|tr|li|h\d)\s*>", "\n", markup, flags=re.I)
    markup = re.sub(r"<[^>]*>", " ", markup)
    return html.unescape(markup)


_REPLY_SEPARATOR_RE = re.compile(
    r"^\s*(-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original)"
    r"|_{10,}"
    r"|on\b.{0,200}\bwrote:"
    r"|am\b.{0,200}\bschrieb\b"
    r"|le\b.{0,200}\ba écrit"
    r"|el\b.{0,200}\bescribió"
    r"|from:\s.+"
    r"|von:\s.+"
    r"|de\s?:\s.+@"
    r")",
    re.IGNORECASE,
)


def _own_lines(text: str) -> list[str]:
    """The sender's own lines: quoted lines dropped, cut at the first reply separator."""
    lines = []
    for line in text.splitlines():
        if _REPLY_SEPARATOR_RE.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        lines.append(line)
    return lines


def _own_text(text: str) -> str:
    return "\n".join(_own_lines(text))[:5000]


def _fold(text: str) -> str:
    """Lower case without accents, for keyword matching in four languages."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")


# -- bounces -------------------------------------------------------------------------------

_DAEMON_LOCALPARTS = {
    "mailer-daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "mailer_daemon",
    "mdaemon",
}
_DAEMON_NAME_RE = re.compile(r"mail delivery (sub)?system|mail delivery service", re.I)
_BOUNCE_SUBJECT_RE = re.compile(
    r"^\s*(undeliverable|undelivered mail|mail delivery failed|delivery status notification"
    r"|returned mail|failure notice|delivery failure|mail delivery failure|undeliverable mail"
    r"|non remis|unzustellbar|no se puede entregar|message not delivered"
    r"|warning: message .* delayed|delayed mail|delivery delayed)",
    re.IGNORECASE,
)
_ENHANCED_CODE_RE = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_BASIC_CODE_RE = re.compile(r"(?:^|[\s:(\[])([45][0-5]\d)(?=[ \-:]|$)", re.MULTILINE)
_ORIGINAL_MARKERS_RE = re.compile(
    r"^.*(this is a copy of the message|original message follows|below this line is a copy"
    r"|original message headers|-+ ?original message ?-+|received: from).*$",
    re.IGNORECASE | re.MULTILINE,
)
_PERMANENT_WORDS_RE = re.compile(r"permanent|does not exist|user unknown|no such user", re.I)
_TEMPORARY_WORDS_RE = re.compile(
    r"temporar|delayed|will (be )?retr|not yet been delivered|still trying|mailbox (is )?full",
    re.I,
)
_EMAIL_RE = re.compile(r"[\w.+\-=']+@[\w\-]+(?:\.[\w\-]+)+")


def _bounce(msg: Message, raw: bytes, verdict: Verdict, our: set[str]) -> bool:
    """Fill `verdict` as a bounce when the message is one."""
    reports = [p for p in _parts(msg) if p.get_content_type() == "message/delivery-status"]
    recipients, statuses = _read_dsn(reports)
    if recipients or statuses:
        failing = [s for s in statuses if s[0] in ("failed", "delayed")]
        if statuses and not failing:
            verdict.kind = "ignored"
            verdict.reason = "delivery report without failures (" + statuses[0][0] + ")"
            return True
        verdict.kind = "bounce"
        verdict.hard = any(_is_hard(action, code) for action, code in failing)
        verdict.bounced_recipients = [r for r in recipients if r not in our]
        verdict.original_message_ids = _original_ids(msg, verdict.message_id)
        codes = ", ".join(code or action for action, code in failing) or "no status"
        verdict.reason = f"{'hard' if verdict.hard else 'soft'} bounce (DSN: {codes})"
        return True

    sender = verdict.sender or ""
    from_daemon = sender.split("@")[0] in _DAEMON_LOCALPARTS or bool(
        _DAEMON_NAME_RE.search(_header(msg, "From"))
    )
    bounce_subject = bool(_BOUNCE_SUBJECT_RE.match(verdict.subject))
    if not (from_daemon or bounce_subject):
        return False
    notice = _notice_text(msg)
    # flufl.bounce reads every line; a bounce notice is at the top of a small message.
    scanned = msg if len(raw) <= _MAX_BOUNCE_SCAN else message_from_bytes(raw[:_MAX_BOUNCE_SCAN])
    temporary, permanent = _flufl_failures(scanned)
    recipients = list(dict.fromkeys(sorted(permanent) + sorted(temporary)))
    if not recipients:
        recipients = _addresses_in_notice(notice)
    recipients = [r for r in recipients if r not in our and r != sender]
    original_ids = _original_ids(msg, verdict.message_id)
    hard, evidence = _hardness(notice, temporary, permanent)
    has_evidence = evidence != "no status code" or bool(original_ids)
    if not from_daemon and not (recipients and has_evidence):
        return False
    verdict.kind = "bounce"
    verdict.hard = hard
    verdict.bounced_recipients = recipients
    verdict.original_message_ids = original_ids
    verdict.reason = f"{'hard' if hard else 'soft'} bounce (notice without DSN: {evidence})"
    return True


def _is_hard(action: str, code: str) -> bool:
    if action == "delayed":
        return False
    if code:
        return code.startswith("5")
    return action == "failed"


def _read_dsn(reports: list[Message]) -> tuple[list[str], list[tuple[str, str]]]:
    """Recipients and (action, status) pairs from message/delivery-status parts."""
    recipients: list[str] = []
    statuses: list[tuple[str, str]] = []
    for report in reports:
        for block in _dsn_blocks(report):
            action = _one_line(str(block.get("Action", ""))).lower().split(" ")[0]
            if action.startswith("fail") or action == "error":
                action = "failed"
            status_match = _ENHANCED_CODE_RE.search(str(block.get("Status", "")))
            if not status_match:
                status_match = _ENHANCED_CODE_RE.search(str(block.get("Diagnostic-Code", "")))
            code = ".".join(status_match.groups()) if status_match else ""
            addresses = [
                _dsn_address(str(block.get(name, "")))
                for name in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient")
            ]
            addresses = [a for a in addresses if a]
            if not addresses or not (action or code):
                continue  # the per-message block
            if action in ("", "unknown") and code:
                action = "failed" if code[0] == "5" else "delayed" if code[0] == "4" else action
            statuses.append((action, code))
            if action in ("failed", "delayed"):
                recipients.extend(addresses)
    return list(dict.fromkeys(recipients)), statuses


def _dsn_blocks(report: Message) -> list[Message]:
    payload = report.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    text = payload if isinstance(payload, str) else ""
    if report.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        text = _part_text(report)
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [HeaderParser().parsestr(chunk) for chunk in chunks if chunk.strip()]


def _dsn_address(value: str) -> str | None:
    value = _one_line(value)
    if ";" in value:
        kind, _, value = value.partition(";")
        if kind.strip().lower() not in ("rfc822", ""):
            return None
    address = _address(value.strip())
    return address if address and "@" in address else None


def _original_ids(msg: Message, own_id: str | None) -> list[str]:
    """Message-IDs of the returned original: attached message or headers, else inline text,
    else the notice's own In-Reply-To / References."""
    found: list[str] = []
    for part in _parts(msg):
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found.extend(_ids(_header(inner, "Message-ID")))
        elif content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            headers = HeaderParser().parsestr(_part_text(part))
            found.extend(_ids(_header(headers, "Message-ID")))
    if not found:
        text = "\n".join(_part_text(p) for p in _parts(msg) if p.get_content_maintype() == "text")
        found = re.findall(r"^\s*message-id:\s*(<[^<>\s]+>)", text, re.IGNORECASE | re.MULTILINE)
    if not found:
        # Gmail and Exchange thread the notice to the original; Exim warnings do too.
        found = _references(msg)
    return [i for i in dict.fromkeys(found) if i != own_id]


def _notice_text(msg: Message) -> str:
    """The human-readable part of a bounce, without the returned original message."""
    text = _body_text(msg)
    marker = _ORIGINAL_MARKERS_RE.search(text)
    return text[: marker.start()] if marker else text


def _flufl_failures(msg: Message) -> tuple[list[str], list[str]]:
    try:
        temporary, permanent = flufl.bounce.all_failures(msg)
    except Exception:
        return [], []

    def clean(found: frozenset[bytes]) -> list[str]:
        addresses = (a.decode("ascii", "replace").strip("<>").lower() for a in found)
        return [a for a in addresses if _EMAIL_RE.fullmatch(a)]

    return clean(temporary), clean(permanent)


def _addresses_in_notice(notice: str) -> list[str]:
    """Failed addresses in a notice flufl.bounce does not know: lines that name one."""
    found = []
    for line in notice.splitlines():
        stripped = line.strip().strip("<>:")
        lowered = line.lower()
        if _EMAIL_RE.fullmatch(stripped) or re.search(
            r"rcpt to|wasn't delivered|was not delivered|could not be delivered|failed"
            r"|does not exist|unknown|undeliverable|couldn't be delivered",
            lowered,
        ):
            found.extend(a.lower() for a in _EMAIL_RE.findall(line))
    return list(dict.fromkeys(found))


def _hardness(notice: str, temporary: list[str], permanent: list[str]) -> tuple[bool, str]:
    """Hard (permanent) or soft, and the evidence, from a bounce notice's text."""
    enhanced = [".".join(m) for m in _ENHANCED_CODE_RE.findall(notice)]
    enhanced = [c for c in enhanced if c[0] in "45"]
    if any(c.startswith("5") for c in enhanced):
        return True, next(c for c in enhanced if c.startswith("5"))
    if enhanced:
        return False, enhanced[0]
    basic = _BASIC_CODE_RE.findall(notice)
    if any(c.startswith("5") for c in basic):
        return True, next(c for c in basic if c.startswith("5"))
    if basic:
        return False, basic[0]
    if _TEMPORARY_WORDS_RE.search(notice):
        return False, "temporary wording"
    if permanent:
        return True, "permanent failure"
    if temporary:
        return False, "temporary failure"
    if _PERMANENT_WORDS_RE.search(notice):
        return True, "permanent wording"
    return False, "no status code"


# -- auto-replies --------------------------------------------------------------------------

_AUTO_SUBJECT_RE = re.compile(
    r"^\s*\[?\s*("
    r"automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|out of (the )?office"
    r"|abwesenheitsnotiz|automatische antwort|abwesenheit"
    r"|reponse automatique|absence du bureau|message d'absence"
    r"|respuesta automatica|fuera de la oficina|respuesta de ausencia"
    r"|(auto|abwesend|absent|ausente)\s*(:|\]|$|\s-\s)"
    r")",
)


def _auto_reply_signal(msg: Message, subject: str) -> tuple[str, bool]:
    """Why the message looks automatic ('' if not), and whether it is a personal
    auto-reply (strong) rather than merely machine-generated (weak)."""
    strong: list[str] = []
    weak: list[str] = []
    auto_submitted = _header(msg, "Auto-Submitted").lower().split(";")[0].split("(")[0].strip()
    if auto_submitted == "auto-replied":
        strong.append(f"Auto-Submitted: {auto_submitted}")
    elif auto_submitted and auto_submitted != "no":
        weak.append(f"Auto-Submitted: {auto_submitted}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated"):
        value = _header(msg, name).lower()
        if value and value not in ("no", "false", "0"):
            strong.append(f"{name}: {value[:40]}")
    if _AUTO_SUBJECT_RE.match(_fold(subject)):
        strong.append("auto-reply subject")
        if _header(msg, "X-Auto-Response-Suppress"):
            strong.append("X-Auto-Response-Suppress")
    precedence = _header(msg, "Precedence").lower()
    if precedence == "auto_reply":
        strong.append(f"Precedence: {precedence}")
    elif precedence in ("bulk", "junk"):
        weak.append(f"Precedence: {precedence}")
    return "; ".join(strong + weak), bool(strong)


# -- return dates --------------------------------------------------------------------------

_MONTHS = {
    # English
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
    # German
    "januar": 1, "janner": 1, "februar": 2, "marz": 3, "maerz": 3, "mai": 5, "juni": 6,
    "juli": 7, "oktober": 10, "okt": 10, "dezember": 12, "dez": 12,
    # French
    "janvier": 1, "janv": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "avril": 4, "avr": 4,
    "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9, "octobre": 10,
    "novembre": 11, "decembre": 12,
    # Spanish
    "enero": 1, "ene": 1, "febrero": 2, "marzo": 3, "abril": 4, "abr": 4, "mayo": 5,
    "junio": 6, "julio": 7, "agosto": 8, "ago": 8, "septiembre": 9, "setiembre": 9,
    "octubre": 10, "noviembre": 11, "diciembre": 12, "dic": 12,
}  # fmt: skip
_WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5,
    "sunday": 6, "montag": 0, "dienstag": 1, "mittwoch": 2, "donnerstag": 3, "freitag": 4,
    "samstag": 5, "sonntag": 6, "lundi": 0, "mardi": 1, "mercredi": 2, "jeudi": 3,
    "vendredi": 4, "samedi": 5, "dimanche": 6, "lunes": 0, "martes": 1, "miercoles": 2,
    "jueves": 3, "viernes": 4, "sabado": 5, "domingo": 6,
}  # fmt: skip
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th|er|e|\.|º|°)?"
_YEAR = r"(?:,?\s*(?:de\s+)?(\d{4})(?!\d))?"
_DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")),
    # March 2-9, 2026 / March 2 to 9: the last day of the range
    (
        "month_range",
        re.compile(
            rf"\b({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\s*(?:-|–|to|through|thru|until)"
            rf"\s*(\d{{1,2}})(?:st|nd|rd|th)?(?!\s*(?:{_MONTH_ALT})\b)(?![\d:]){_YEAR}"
        ),
    ),
    ("numeric", re.compile(r"(?<![\d.:/])(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?![\d])")),
    # 9. März / 9 mars / 9 de marzo (de 2026) / 9th March
    ("day_month", re.compile(rf"(?<![\d.:/]){_DAY}\s*(?:de\s+)?({_MONTH_ALT})\b\.?{_YEAR}")),
    # March 9 / March 9th, 2026
    (
        "month_day",
        re.compile(rf"\b({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?![\d:]){_YEAR}"),
    ),
    # 16.03. (German, no year)
    ("dotted_no_year", re.compile(r"(?<![\d.:/])(\d{1,2})\.(\d{1,2})\.(?!\d)")),
    # 3/9 (no year)
    ("slashed_no_year", re.compile(r"(?<![\d./:])(\d{1,2})/(\d{1,2})(?![\d/])")),
]
_RETURN_WORDS_BEFORE_RE = re.compile(
    r"\b(back|return|returning|returns|until|till|til|through|thru|after|available|reachable"
    r"|in the office|zuruck|wieder|bis|ab|einschliesslich|retour|jusqu|reviens|reprendrai"
    r"|reprise|a partir|hasta|regreso|regresare|vuelvo|volvere|vuelta|reincorpor)\b"
)
_RETURN_WORDS_AFTER_RE = re.compile(r"\b(wieder|zuruck|inclus|incluido|inclusive)\b")
_FOREIGN_WORDS_RE = re.compile(
    r"\b(ich|bin|und|bis|zum|wieder|buro|je|suis|jusqu|retour|bureau|du|au|estare|hasta"
    r"|regreso|oficina|el|del|al|de)\b"
)


@dataclass
class _Found:
    start: int
    end: int
    when: date


def parse_return_date(text: str, received_at: datetime | None) -> date | None:
    """The date someone is back, read from an out-of-office text in English, German, French
    or Spanish. A date without a year is the next one on or after `received_at` (None when
    `received_at` is None). Among several dates, those next to a return word ("back",
    "until", "bis", "jusqu'au", "hasta", ...) win, and the latest of them is taken, so a range
    gives its last day."""
    try:
        return _parse_return_date(text, received_at)
    except Exception:
        return None


def _parse_return_date(text: str, received_at: datetime | None) -> date | None:
    folded = re.sub(r"\s+", " ", _fold(text[:5000]))
    base = received_at.date() if received_at else None
    day_first = _day_first_language(folded)
    found: list[_Found] = []
    taken: list[tuple[int, int]] = []
    for name, pattern in _DATE_PATTERNS:
        for match in pattern.finditer(folded):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            when = _date_from(name, match.groups(), base, day_first)
            if when is None:
                continue
            taken.append((match.start(), match.end()))
            found.append(_Found(match.start(), match.end(), when))
    if not found:
        return _weekday_return(folded, base)
    near_word = [f for f in found if _near_return_word(folded, f)]
    return max(f.when for f in (near_word or found))


def _near_return_word(folded: str, found: _Found) -> bool:
    before = folded[max(0, found.start - 40) : found.start]
    after = folded[found.end : found.end + 25]
    return bool(_RETURN_WORDS_BEFORE_RE.search(before) or _RETURN_WORDS_AFTER_RE.search(after))


def _day_first_language(folded: str) -> bool:
    return len(_FOREIGN_WORDS_RE.findall(folded)) >= 3


def _date_from(
    name: str, groups: tuple[str | None, ...], base: date | None, day_first: bool
) -> date | None:
    if name == "iso":
        return _make(int(groups[0] or 0), int(groups[1] or 0), int(groups[2] or 0))
    if name == "month_range":
        month, _first_day, day, year = groups
        return _resolve(_MONTHS[month or ""], int(day or 0), year, base)
    if name == "numeric":
        first, separator, second, year = groups
        a, b = int(first or 0), int(second or 0)
        if separator == ".":
            return _resolve(b, a, year, base)
        return _ambiguous(a, b, year, base, day_first)
    if name == "day_month":
        day, month, year = groups
        return _resolve(_MONTHS[month or ""], int(day or 0), year, base)
    if name == "month_day":
        month, day, year = groups
        return _resolve(_MONTHS[month or ""], int(day or 0), year, base)
    if name == "dotted_no_year":
        return _resolve(int(groups[1] or 0), int(groups[0] or 0), None, base)
    if name == "slashed_no_year":
        return _ambiguous(int(groups[0] or 0), int(groups[1] or 0), None, base, day_first)
    return None


def _ambiguous(a: int, b: int, year: str | None, base: date | None, day_first: bool) -> date | None:
    """a/b/year: month/day in English, day/month elsewhere; when both are valid dates, the
    one nearest after the received date wins, since that is the one an out-of-office means."""
    month_first = _resolve(a, b, year, base)
    day_first_date = _resolve(b, a, year, base)
    if month_first is None or day_first_date is None:
        return month_first or day_first_date
    if base is not None:
        upcoming = [d for d in (month_first, day_first_date) if d >= base]
        if upcoming:
            return min(upcoming)
    return day_first_date if day_first else month_first


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _resolve(month: int, day: int, year: str | None, base: date | None) -> date | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    if year:
        full_year = int(year) + (2000 if len(year) == 2 else 0)
        return _make(full_year, month, day)
    if base is None:
        return None
    for candidate_year in range(base.year, base.year + 9):
        if day > calendar.monthrange(candidate_year, month)[1]:
            continue
        candidate = date(candidate_year, month, day)
        if candidate >= base:
            return candidate
    return None


def _weekday_return(folded: str, base: date | None) -> date | None:
    """'back on Monday' with no date: the next such weekday after the received date."""
    if base is None:
        return None
    weekday_alt = "|".join(_WEEKDAYS)
    for match in re.finditer(rf"\b({weekday_alt})\b", folded):
        if _near_return_word(folded, _Found(match.start(), match.end(), base)):
            days_ahead = (_WEEKDAYS[match.group(1)] - base.weekday() - 1) % 7 + 1
            return base + timedelta(days=days_ahead)
    return None


# -- unsubscribe requests ------------------------------------------------------------------

# A request anywhere in the line ("Not interested, please remove me from your list").
_UNSUBSCRIBE_RE = re.compile(
    r"\b(unsubscribe me|please unsubscribe|(want|like|wish) to unsubscribe|remove me"
    r"|remove my (e-?mail|address|name)|opt me out|stop (e-?mailing|sending|contacting"
    r"|messaging|writing) me|stop (the|these|your) e-?mails|take me off|do not (e-?mail|contact)"
    r" me|don'?t (e-?mail|contact) me|no more e-?mails"
    r"|abmelden|abbestellen|austragen|melden sie mich ab|entfernen sie mich"
    r"|keine (weiteren )?(e-?mails|nachrichten)"
    r"|desabonner|desinscrire|desabonnez|desinscrivez|retirez[- ]moi|ne plus recevoir"
    r"|dar(se|me)? de baja|eliminarme|no me (escriba|escriban|envie|envien)"
    r"|cancelar (la |mi )?suscripcion)\b"
)
# A bare keyword only when it is (nearly) the whole line: "Unsubscribe", "opt out please".
_UNSUBSCRIBE_WORD_RE = re.compile(
    r"\b(unsubscribe|unsubcribe|opt[- ]?out|baja|desabonnement|desinscription)\b"
)
_STOP_LINE_RE = re.compile(r"^(please )?(stop|stopp|arret|remove)( please)?$")
_MAX_BARE_REQUEST_WORDS = 5
# "Hi Alex," / "Dear Mr. Rivera," / "Hola" - but not "Hi Alex, please remove me".
_GREETING_RE = re.compile(
    r"^(hi|hello|hey|dear|good (morning|afternoon|evening)|hallo|guten tag|liebe[r]?"
    r"|sehr geehrte[r]?|bonjour|bonsoir|cher|chere|hola|buenos dias|buenas tardes|estimad[oa])"
    r"\b([^?!,]{0,40}[,!:]|(\s+[\w.'-]+){0,2}\s*)$"
)
_SUBJECT_PREFIX_RE = re.compile(r"^\s*((re|aw|wg|fw|fwd|tr|rv|sv|antw)\s*(\[\d+\])?\s*:\s*)+")


def _unsubscribe(msg: Message, subject: str, ctx: ClassifyContext) -> str:
    unsubscribe_addresses = {a.lower() for a in ctx.unsubscribe_addresses}
    hit = sorted(unsubscribe_addresses & _recipients(msg))
    if hit:
        return f"sent to the unsubscribe address {hit[0]}"
    bare_subject = _SUBJECT_PREFIX_RE.sub("", _fold(subject)).strip(" .!-")
    if _is_request(bare_subject):
        return f"unsubscribe request in the subject: {subject!r}"
    line = _first_own_line(_body_text(msg))
    if line and _is_request(_fold(line).strip(" .!-")):
        return f"unsubscribe request in the first line: {line[:80]!r}"
    return ""


def _is_request(folded_line: str) -> bool:
    if not folded_line or len(folded_line) > 200:
        return False
    if _UNSUBSCRIBE_RE.search(folded_line):
        return True
    short = len(folded_line.split()) <= _MAX_BARE_REQUEST_WORDS
    if short and _UNSUBSCRIBE_WORD_RE.search(folded_line):
        return True
    return bool(_STOP_LINE_RE.match(folded_line))


def _first_own_line(text: str) -> str:
    for line in _own_lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        if _GREETING_RE.match(_fold(stripped)):
            continue
        return stripped
    return ""


# -- meetings ------------------------------------------------------------------------------


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
