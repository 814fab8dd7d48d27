"""Bounces: RFC 3464 delivery status notifications, and mailer-daemon notices without one
(recipients from flufl.bounce, hard or soft from the status codes in the text).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser

from seqctl.engine.classify.mime import (
    _address,
    _body_text,
    _fold,
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
# What a delivery-failure notice says, wherever it stands in the subject (matched on the
# accent-free lower-case text): "Mail could not be delivered", "Message non remis : ...",
# "Mail Delivery Warning", "DELIVERY FAILURE: User ... not listed", "No se pudo entregar".
_FAILURE_PHRASE = (
    r"undeliver|undelivered|could ?n[o']t be delivered|was ?n[o']t delivered"
    r"|(message|mail) not delivered"
    r"|wasn't able to deliver|unable to deliver|delivery (status notification|failure|failed"
    r"|has failed|problem|warning|delayed|notification: delivery has failed)"
    r"|mail delivery (failed|failure|warning|error|subsystem)|returned mail|returning message"
    r"|failure notice|delayed mail|non[- ]remis|non-remise|pas pu etre remis|unzustellbar"
    r"|nicht zustellbar|nicht zugestellt|nicht erreicht|no se pudo entregar"
    r"|no se puede entregar|no entregado|niet bezorgd|non recapitabile"
)
_FAILURE_SUBJECT_RE = re.compile(_FAILURE_PHRASE)
_REPLY_PREFIX_RE = re.compile(r"^\s*(re|aw|sv|antw|fw|fwd|wg|tr|rv)\s*(\[\d+\])?\s*:", re.I)
_NOTICE_HEAD = 1500    # a notice says what failed at the top
_ENHANCED_CODE_RE = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_BASIC_CODE_RE = re.compile(r"(?:^|[\s:(\[])([45][0-5]\d)(?=[ \-:]|$)", re.MULTILINE)
_ORIGINAL_MARKERS_RE = re.compile(
    r"^.*(this is a copy of the message|original message follows|below this line is a copy"
    r"|original message headers|-+ ?original message ?-+|received: from).*$",
    re.IGNORECASE | re.MULTILINE,
)
_PERMANENT_WORDS_RE = re.compile(
    r"permanent|does not exist|user unknown|unknown user|no such (user|address|mailbox)"
    r"|not listed in|recipient not found|address rejected|mailbox (has been |is )?(closed"
    r"|disabled|unavailable)|n'existe pas|no existe|existiert nicht",
    re.I,
)
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
    notice = _notice_text(msg)
    if not (from_daemon or _says_delivery_failed(msg, verdict.subject, notice)):
        return False
    # flufl.bounce reads every line; a bounce notice is at the top of a small message.
    scanned = msg if len(raw) <= _MAX_BOUNCE_SCAN else message_from_bytes(raw[:_MAX_BOUNCE_SCAN])
    temporary, permanent = _flufl_failures(scanned)
    recipients = list(dict.fromkeys(sorted(permanent) + sorted(temporary)))
    if not recipients:
        recipients = _addresses_in_notice(notice)
    recipients = [r for r in recipients if r not in our and r != sender]
    original_ids = _original_ids(msg, verdict.message_id)
    hard, evidence = _hardness(notice, temporary, permanent)
    if not from_daemon and not (recipients or original_ids):
        if evidence == "no status code" and not _automated(msg):
            return False    # a person's mail about a failed delivery, naming nothing of ours
        verdict.kind = "ignored"
        verdict.reason = "delivery-failure notice naming no address and none of our emails"
        return True
    verdict.kind = "bounce"
    verdict.hard = hard
    verdict.bounced_recipients = recipients
    verdict.original_message_ids = original_ids
    verdict.reason = f"{'hard' if hard else 'soft'} bounce (notice without DSN: {evidence})"
    return True


def _says_delivery_failed(msg: Message, subject: str, notice: str) -> bool:
    """A delivery-failure notice from any sender: its subject says so (not a reply's or a
    forward's subject), or the top of its text says so and it carries a status code or
    comes from a machine. A person writing "my old address could not be delivered to"
    does neither."""
    if _BOUNCE_SUBJECT_RE.match(subject):
        return True
    if not _REPLY_PREFIX_RE.match(subject) and _FAILURE_SUBJECT_RE.search(_fold(subject)):
        return True
    head = notice[:_NOTICE_HEAD]
    if not _FAILURE_SUBJECT_RE.search(_fold(head)):
        return False
    return _automated(msg) or bool(_ENHANCED_CODE_RE.search(head) or _BASIC_CODE_RE.search(head))


def _automated(msg: Message) -> bool:
    value = _header(msg, "Auto-Submitted").lower().strip()
    return bool(value) and value != "no"


def _complaint(msg: Message, verdict: Verdict, our: set[str]) -> bool:
    """Fill `verdict` as a spam complaint when the message is an RFC 5965 ARF report
    (`multipart/report; report-type=feedback-report`): the recipient who complained (when
    the report does not redact it) and the Message-ID of our email it reports."""
    report_type = (msg.get_param("report-type") or "") if msg.get_content_type() == (
        "multipart/report") else ""
    feedback = [p for p in _parts(msg) if p.get_content_type() == "message/feedback-report"]
    if str(report_type).strip('"').lower() != "feedback-report" and not feedback:
        return False
    fields = HeaderParser().parsestr(_part_text(feedback[0])) if feedback else None
    kind = _one_line(str(fields.get("Feedback-Type", ""))).lower() if fields else ""
    complainers: list[str] = []
    if fields is not None:
        for value in fields.get_all("Original-Rcpt-To") or []:
            address = _address(_one_line(str(value)))
            if address and "@" in address and not address.startswith("redacted@"):
                complainers.append(address)
    original = _original_message(msg)
    if not complainers and original is not None:
        address = _address(_header(original, "To"))
        if address and "@" in address and not address.startswith("redacted@"):
            complainers.append(address)
    verdict.kind = "spam_complaint"
    verdict.complained_recipients = [a for a in dict.fromkeys(complainers) if a not in our]
    verdict.original_message_ids = _original_ids(msg, verdict.message_id)
    verdict.reason = f"spam complaint (ARF feedback report: {kind or 'abuse'})"
    return True


def _original_message(msg: Message) -> Message | None:
    """The returned original (attached message, or its headers), if any."""
    return next(_originals(msg), None)


def _originals(msg: Message) -> Iterator[Message]:
    """Each returned original: an attached message, or attached headers."""
    for part in _parts(msg):
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                yield inner
        elif content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            yield HeaderParser().parsestr(_part_text(part))


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
    found = [i for original in _originals(msg) for i in _ids(_header(original, "Message-ID"))]
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
    """Failed addresses in a notice flufl.bounce does not know: lines that name one, else
    every address the notice names (the caller drops ours and the sender's)."""
    found = []
    for line in notice.splitlines():
        stripped = line.strip().strip("<>:")
        lowered = line.lower()
        if _EMAIL_RE.fullmatch(stripped) or re.search(
            r"rcpt to|wasn't delivered|was not delivered|could not be delivered|failed"
            r"|does not exist|unknown|undeliverable|couldn't be delivered|not found|rejected"
            r"|not listed|recipient|destinataire|empf",
            lowered,
        ):
            found.extend(a.lower() for a in _EMAIL_RE.findall(line))
    if not found:
        found = [a.lower() for a in _EMAIL_RE.findall(notice)]
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
