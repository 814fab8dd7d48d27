"""What an SMTP server's refusal means, sorted by whose problem it is (SPEC 9).

A pure function of the command that was refused (MAIL, RCPT or DATA), the reply code and the
reply text, so each rule is testable without a server. The enhanced status code (RFC 3463,
`X.Y.Z` at the start of the text) decides where there is one; the basic code otherwise.

- sender: the inbox's own quota or rate (`550 5.4.5` daily quota, `421`/`451 4.7.x` rate
  limits, `554 5.2.0 ... SubmissionQuotaExceeded`, `5.2.251`-`5.2.255`, `5.1.90`);
- authorization: the server will not let this login send (`530`, `535`, relaying denied, a
  sender address the login does not own);
- recipient permanent: `5.1.x` at RCPT (no such mailbox, no such domain), or a bare
  `550`/`551`/`553` at RCPT;
- recipient temporary: any other refusal at RCPT (`450 4.2.2 mailbox full`, greylisting);
- message: a policy or content refusal (`5.7.x`, `5.6.x`, `552`/`5.3.4` too large);
- transient: anything else (`421` closing, `451 4.3.0`, other 4xx/5xx at MAIL or DATA).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from seqctl.providers.base import (
    AuthRevokedError,
    MessageRejectedError,
    ProviderError,
    RecipientDeferredError,
    RecipientRejectedError,
    SenderLimitError,
    TransientError,
)

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_DAILY_QUOTA = re.compile(r"quota|daily|per day|24 ?h", re.I)
_SUBMISSION_QUOTA = re.compile(r"submissionquota|quota ?exceeded|sending limit|"
                               r"exceeded .{0,40}limit", re.I)
_RATE_WORDS = re.compile(r"rate|too many|limit|try again later|slow down|throttl", re.I)
_GREYLIST = re.compile(r"greylist|graylist", re.I)
_RELAY = re.compile(r"relay(ing)? (access )?(denied|not permitted|prohibited)|"
                    r"not (permitted|allowed) to relay|unable to relay", re.I)


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 status code at the start of a reply text (`5.1.1 ...`), else None."""
    match = _ENHANCED.match(text or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def smtp_refusal(
    command: str, code: int, text: str, *, recipients: Iterable[str] = (), host: str = "the server"
) -> ProviderError:
    """The provider error for a refused MAIL, RCPT or DATA (`code` >= 400). `recipients` are
    the addresses a RCPT refusal concerns."""
    command = command.upper()
    recipients = tuple(recipients)
    words = f"{code} {text}".strip()
    status = enhanced_code(text)
    klass, subject, detail = status if status else (code // 100, -1, -1)
    said = f"{host} refused {command}: {words}"

    # the inbox's own limits: the whole inbox waits, no enrollment is touched
    if status in ((5, 4, 5), (4, 4, 5)) and _DAILY_QUOTA.search(text):
        return SenderLimitError(said, daily=True)
    if (klass, subject) == (5, 2) and (detail == 0 and _SUBMISSION_QUOTA.search(text)
                                       or 251 <= detail <= 255):
        return SenderLimitError(said, daily=True)
    if status == (5, 1, 90):
        return SenderLimitError(said, daily=True)
    if code in (421, 451) and (klass, subject) == (4, 7) and not _GREYLIST.search(text):
        return SenderLimitError(said)
    if code in (421, 450, 451, 452) and status is None and _RATE_WORDS.search(text) \
            and command != "RCPT":
        return SenderLimitError(said)

    # this login may not send (a misconfiguration): nothing else on this inbox is tried
    if code in (530, 535) or (klass == 5 and _RELAY.search(text)):
        return AuthRevokedError(f"{said} (check the inbox's login and server settings)")
    if command == "MAIL" and klass == 5 and subject in (1, 7):
        return AuthRevokedError(f"{said} (the login may not send as this address)")

    if command == "RCPT":
        if klass == 5 and subject == 1 or status is None and code in (550, 551, 553):
            return RecipientRejectedError(said, recipients)
        if klass == 5 and subject in (6, 7) or code == 554 and status is None:
            return MessageRejectedError(said)
        return RecipientDeferredError(said, recipients)

    if klass == 5 and subject in (6, 7) or status == (5, 3, 4) or code == 552 and \
            (status is None or subject == 3):
        return MessageRejectedError(said)
    return TransientError(said)


def rcpt_verdict(refused: dict[str, ProviderError], total: int) -> ProviderError | None:
    """What the refusals at RCPT (`smtp_refusal` for each refused address) mean for the whole
    message of `total` recipients: the error to stop with, or None to send to the others.

    The inbox's problems (authorization, a sender limit) and the message's win; a recipient
    that is only deferred holds the message back for everyone (it would never get it if the
    rest went now); recipients refused for good are dropped while any recipient is left."""
    if not refused:
        return None
    errors = list(refused.values())
    for kind in (AuthRevokedError, SenderLimitError, MessageRejectedError, TransientError):
        first = next((error for error in errors if isinstance(error, kind)), None)
        if first is not None:
            return first
    deferred = {r: e for r, e in refused.items() if isinstance(e, RecipientDeferredError)}
    if deferred:
        return RecipientDeferredError("; ".join(map(str, deferred.values())), deferred)
    if len(refused) >= total:
        return RecipientRejectedError("; ".join(map(str, errors)), refused)
    return None
