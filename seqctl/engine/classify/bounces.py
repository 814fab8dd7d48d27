"""Bounces: RFC 3464 delivery status notifications, and mailer-daemon notices without one
(recipients from flufl.bounce, hard or soft from the status codes in the text).
"""

from __future__ import annotations

import logging
import re
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser

from seqctl.engine.classify.mime import (
    _address,
    _body_text,
    _header,
    _ids,
    _one_line,
    _part_text,
    _parts,
    _references,
)
from seqctl.engine.classify.verdict import _MAX_BOUNCE_SCAN, Verdict

# flufl.bounce logs a traceback before re-raising a detector's error; we catch the error.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
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
    import flufl.bounce  # loaded only for a message that looks like a bounce notice

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
