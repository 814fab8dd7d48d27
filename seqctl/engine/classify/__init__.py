"""Classify one inbound message: bounce, auto-reply, unsubscribe, meeting, reply or ignored.

The package: `verdict` (the context and the verdict), `mime` (reading headers and text),
`bounces`, `autoreply` (with return dates), `unsubscribe` and `meetings`; this module runs
them in order.

A pure function of the raw message bytes and a `ClassifyContext` (no database, clock or
network). The engine decides what a verdict means for an enrollment (SPEC section 10); this
module only reads the message. It never raises: malformed input gives a verdict too.

Checks run in this order, the first match wins:

1. mail from one of our own addresses -> ``ignored``.
2. spam complaint: an RFC 5965 ARF report (``multipart/report;
   report-type=feedback-report``) -> ``spam_complaint``, with the complainer when the report
   names one and the Message-ID of our email it reports.
3. bounce: an RFC 3464 DSN (Action/Status per recipient; 5.x.x hard, 4.x.x or
   ``Action: delayed`` soft), or a mailer-daemon / postmaster notice without one
   (recipients from flufl.bounce, hard/soft from the status codes in the notice text), or a
   notice from any other sender whose subject, or the top of whose text with a status code,
   says delivery failed ("could not be delivered", "undeliverable", "non remis",
   "unzustellbar", "no se pudo entregar", "Mail Delivery Warning", ...) and that names the
   address or our email. A notice naming neither is ``ignored``: never a reply.
   A DSN that reports only successful deliveries, and a read receipt (RFC 8098), are
   ``ignored``.
4. bulk mail: ``List-Id``, ``List-Post``, ``Precedence: list``, a campaign header, or on a
   message that answers none of ours ``List-Unsubscribe``, ``Feedback-ID`` or ``Precedence:
   bulk|junk`` -> ``ignored`` (a newsletter is not an auto-reply and pauses nothing), unless
   it also carries a personal auto-reply signal or a booking.
5. auto-reply: RFC 3834 ``Auto-Submitted`` other than "no", ``X-Autoreply``,
   ``X-Autorespond``, ``Precedence: auto_reply`` (``bulk|junk`` in reply to a message), or an
   out-of-office subject in
   English, German, French or Spanish. One exception: a message whose only signal is
   "machine generated" (``Auto-Submitted: auto-generated``, ``Precedence: bulk|junk``) but
   that carries a booking calendar part is a meeting, because scheduling tools send their
   invitations that way.
6. unsubscribe: mail to an unsubscribe mailto, or a subject / first own line (quotes,
   greetings and the quoted original skipped) that asks for it. A bare keyword
   ("Unsubscribe", "opt out") counts only when it is nearly the whole line; a phrase
   ("remove me", "stop emailing me", "abmelden", "désinscrire", "darme de baja") counts
   anywhere in the line.
7. meeting: a ``text/calendar`` part (or .ics attachment) with METHOD REQUEST, REPLY with
   PARTSTAT=ACCEPTED, or PUBLISH with attendees. A CANCEL is not a booking and is
   ``ignored``. A declined or tentative REPLY falls through to ``reply``: the contact did
   answer us.
8. reply: everything else, with its intent (`seqctl.engine.intent`, SPEC section 18) read
   from the body's new text.
"""

from __future__ import annotations

from email import message_from_bytes

from seqctl.engine.classify.autoreply import _auto_reply_signal, _bulk_signal, parse_return_date
from seqctl.engine.classify.bounces import _bounce, _complaint
from seqctl.engine.classify.meetings import _calendar_parts, _meeting
from seqctl.engine.classify.mime import (
    _body_text,
    _date_header,
    _first_id,
    _header,
    _own_text,
    _parts,
    _references,
    _sender,
)
from seqctl.engine.classify.unsubscribe import _unsubscribe
from seqctl.engine.classify.verdict import KINDS, ClassifyContext, Verdict
from seqctl.engine.intent import read_intent

__all__ = ["KINDS", "ClassifyContext", "Verdict", "classify", "parse_return_date"]


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

    if _complaint(msg, verdict, our) or _bounce(msg, bytes(raw), verdict, our):
        return verdict

    if any(p.get_content_type() == "message/disposition-notification" for p in _parts(msg)):
        verdict.kind = "ignored"
        verdict.reason = "read receipt (RFC 8098 disposition notification)"
        return verdict

    calendar_parts = _calendar_parts(msg)
    booking = _meeting(calendar_parts)
    auto_reason, strong = _auto_reply_signal(msg, verdict.subject)
    bulk_reason = _bulk_signal(msg)
    if bulk_reason and not strong and not (booking and booking.kind == "meeting"):
        verdict.kind = "ignored"
        verdict.reason = bulk_reason
        return verdict
    if auto_reason and (strong or not (booking and booking.kind == "meeting")):
        verdict.kind = "auto_reply"
        verdict.reason = auto_reason
        if strong:      # a person's out-of-office names a return date; a newsletter does not
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
    verdict.intent = read_intent(
        _body_text(msg),
        ctx.received_at or _date_header(msg),
        sender=sender,
        own_addresses=ctx.our_addresses,
    )
    return verdict
