"""Whose problem an SMTP refusal is: the pure rules, reply by reply (SPEC 9)."""

from __future__ import annotations

import pytest

from seqctl.providers.base import (
    AuthRevokedError,
    MessageRejectedError,
    RecipientDeferredError,
    RecipientRejectedError,
    SenderLimitError,
    TransientError,
)
from seqctl.providers.smtp_replies import enhanced_code, rcpt_verdict, smtp_refusal

SENDER_DAILY = "sender (daily quota)"
SENDER_RATE = "sender (rate)"

# (command, reply, expected): real servers' words (Gmail, Exchange Online, Postfix, Exim)
CASES = [
    # the inbox's own quota or rate: at any command
    ("MAIL", "550 5.4.5 Daily user sending quota exceeded. https://support.google.com/mail/?p=...",
     SENDER_DAILY),
    ("RCPT", "550 5.4.5 Daily user sending quota exceeded.", SENDER_DAILY),
    ("DATA", "550 5.4.5 Daily user sending quota exceeded.", SENDER_DAILY),
    ("DATA", "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; "
             "Failed to process message due to a permanent exception", SENDER_DAILY),
    ("MAIL", "550 5.2.251 Sender is over the outbound message limit", SENDER_DAILY),
    ("RCPT", "550 5.2.255 Sending rate limit reached", SENDER_DAILY),
    ("RCPT", "550 5.1.90 Your message can't be sent because you've reached your daily limit "
             "for message recipients", SENDER_DAILY),
    ("MAIL", "421 4.7.0 Try again later, closing connection.", SENDER_RATE),
    ("RCPT", "451 4.7.1 Too many messages, slow down", SENDER_RATE),
    ("DATA", "451 4.7.500 Server busy. Please try again later", SENDER_RATE),
    ("MAIL", "450 Too many messages sent, rate limit exceeded", SENDER_RATE),
    # this login may not send: a misconfiguration
    ("MAIL", "530 5.7.0 Authentication required", AuthRevokedError),
    ("MAIL", "553 5.7.1 <rep@example.com>: Sender address rejected: not owned by user "
             "rep@example.com", AuthRevokedError),
    ("RCPT", "550 5.7.1 Relaying denied", AuthRevokedError),
    ("RCPT", "554 5.7.1 <ann@acme.test>: Relay access denied", AuthRevokedError),
    ("RCPT", "550 relay not permitted", AuthRevokedError),
    ("MAIL", "550 5.1.7 Invalid sender address", AuthRevokedError),
    # the recipient, for good
    ("RCPT", "550 5.1.1 The email account that you tried to reach does not exist.",
     RecipientRejectedError),
    ("RCPT", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address "
             "lookup", RecipientRejectedError),
    ("RCPT", "553 5.1.3 The recipient address is not a valid RFC-5321 address.",
     RecipientRejectedError),
    ("RCPT", "550 No such user here", RecipientRejectedError),
    ("RCPT", "551 User not local; please try <ann@elsewhere.test>", RecipientRejectedError),
    # the recipient, for now
    ("RCPT", "450 4.2.2 The email account that you tried to reach is over quota.",
     RecipientDeferredError),
    ("RCPT", "452 4.2.2 Mailbox full", RecipientDeferredError),
    ("RCPT", "450 4.7.1 <ann@acme.test>: Recipient address rejected: Greylisted",
     RecipientDeferredError),
    ("RCPT", "451 4.7.1 Greylisting in action, please come back later", RecipientDeferredError),
    ("RCPT", "451 4.3.0 Temporary lookup failure", RecipientDeferredError),
    ("RCPT", "552 5.2.2 Mailbox full", RecipientDeferredError),
    ("RCPT", "450 4.2.1 The user you are trying to contact is receiving mail at a rate that "
             "prevents additional messages from being delivered.", RecipientDeferredError),
    # the message: policy or content
    ("DATA", "554 5.7.1 Message rejected as spam", MessageRejectedError),
    ("DATA", "550 5.7.26 Unauthenticated email from example.com is not accepted due to "
             "domain's DMARC policy", MessageRejectedError),
    ("RCPT", "550 5.7.606 Access denied, banned sending IP", MessageRejectedError),
    ("DATA", "552 5.3.4 Message size exceeds fixed limit", MessageRejectedError),
    ("MAIL", "552 Message size exceeds maximum permitted", MessageRejectedError),
    ("DATA", "554 5.6.0 Message contains invalid header", MessageRejectedError),
    # anything else: try again later
    ("MAIL", "421 Service not available, closing transmission channel", TransientError),
    ("MAIL", "451 4.3.0 Local error in processing", TransientError),
    ("DATA", "451 4.3.0 Local error in processing", TransientError),
    ("DATA", "554 5.0.0 Transaction failed", TransientError),
    ("MAIL", "500 5.5.2 Syntax error", TransientError),
]


def _expected(expected):
    if expected == SENDER_DAILY:
        return SenderLimitError, True
    if expected == SENDER_RATE:
        return SenderLimitError, False
    return expected, None


@pytest.mark.parametrize("command, reply, expected", CASES,
                         ids=[f"{c}-{r[:28]}" for c, r, _ in CASES])
def test_each_refusal_is_sorted_by_whose_problem_it_is(command, reply, expected):
    code, text = int(reply[:3]), reply[4:]
    error = smtp_refusal(command, code, text, recipients=["ann@acme.test"], host="mx.test")
    kind, daily = _expected(expected)
    assert type(error) is kind, (reply, type(error).__name__)
    if daily is not None:
        assert error.daily is daily
    assert reply in str(error) and "mx.test" in str(error)          # the server's own words
    if isinstance(error, RecipientRejectedError | RecipientDeferredError):
        assert error.recipients == ("ann@acme.test",)


def test_the_sender_limits_are_transient_to_readers_that_only_know_transient():
    assert isinstance(smtp_refusal("MAIL", 550, "5.4.5 Daily quota exceeded"), TransientError)


def test_recipient_and_message_refusals_are_not_transient():
    for error in (smtp_refusal("RCPT", 450, "4.2.2 Mailbox full"),
                  smtp_refusal("RCPT", 550, "5.1.1 User unknown"),
                  smtp_refusal("DATA", 554, "5.7.1 Spam")):
        assert not isinstance(error, TransientError)


def test_enhanced_codes_are_read_from_the_start_of_the_text():
    assert enhanced_code("5.1.1 User unknown") == (5, 1, 1)
    assert enhanced_code("4.7.500 Server busy") == (4, 7, 500)
    assert enhanced_code("User unknown 5.1.1") is None
    assert enhanced_code("") is None


def refusals(**replies: str) -> dict:
    return {f"{name}@acme.test": smtp_refusal("RCPT", int(reply[:3]), reply[4:],
                                              recipients=[f"{name}@acme.test"])
            for name, reply in replies.items()}


def test_a_deferred_recipient_holds_the_message_back_for_everyone():
    verdict = rcpt_verdict(refusals(bob="450 4.2.2 Mailbox full"), total=2)
    assert isinstance(verdict, RecipientDeferredError)
    assert verdict.recipients == ("bob@acme.test",)


def test_recipients_refused_for_good_are_dropped_while_others_remain():
    assert rcpt_verdict(refusals(bob="550 5.1.1 User unknown"), total=2) is None
    verdict = rcpt_verdict(refusals(ann="550 5.1.1 User unknown",
                                    bob="550 5.1.1 User unknown"), total=2)
    assert isinstance(verdict, RecipientRejectedError)
    assert set(verdict.recipients) == {"ann@acme.test", "bob@acme.test"}


def test_the_inboxs_own_problems_win_over_the_recipients():
    verdict = rcpt_verdict(refusals(ann="550 5.1.1 User unknown",
                                    bob="550 5.4.5 Daily user sending quota exceeded"), total=2)
    assert isinstance(verdict, SenderLimitError)
    verdict = rcpt_verdict(refusals(ann="450 4.2.2 Mailbox full",
                                    bob="554 5.7.1 Relay access denied"), total=2)
    assert isinstance(verdict, AuthRevokedError)
    assert rcpt_verdict({}, total=1) is None
