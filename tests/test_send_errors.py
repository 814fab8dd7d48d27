"""Provider refusals sorted by whose problem they are, end to end through ticks (SPEC 9):
the sender's limits throttle the inbox and touch no enrollment, the recipient's problems
concern one email, the message's fail it, and an authorization problem stops the inbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fakes.gmail_server import GmailServer
from servers.smtp_server import SmtpTestServer

from seqctl import clock
from seqctl import db as database
from seqctl.engine import accounts
from tests.helpers import apply_yaml, at, tick
from tests.test_dispatch_providers import (
    ADDRESS,
    OUTLOOK,
    SEQUENCE,
    T0,
    add_gmail_inbox,
    enroll_all_from,
    enrollment,
    outbox_rows,
    start,
    use_gmail,
    write_gmail_token,
)
from tests.test_dispatch_providers import graph as _graph_fixture

outlook = _graph_fixture          # the Outlook inbox on local Graph and identity fakes


def google_error(status: int, reason: str, message: str) -> dict:
    return {"error": {"code": status, "message": message, "status": "RESOURCE_EXHAUSTED",
                      "errors": [{"domain": "usageLimits", "reason": reason,
                                  "message": message}]}}


class LimitedGmail(GmailServer):
    """Mailboxes (by access token) in `limited` answer every send with `refusal`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.limited: set[str] = set()
        self.refusal = (403, google_error(403, "dailyLimitExceeded", "Daily Limit Exceeded"))

    def _send(self, request):
        if request.bearer in self.limited:
            from fakes import json_response

            return json_response(*self.refusal)
        return super()._send(request)


@pytest.fixture
def limited(home, monkeypatch):
    with LimitedGmail(address=ADDRESS) as server:
        use_gmail(monkeypatch, server)
        yield server


def two_gmail_inboxes(home, server, per_inbox=3):
    """Two Gmail inboxes with `per_inbox` enrollments each; returns (db, tokens)."""
    db = database.get()
    apply_yaml(db, SEQUENCE, at(T0))
    tokens = {}
    for number, address in enumerate(["quota.rep@one.test", "free.rep@two.test"]):
        accounts.add_user(db, address, "Rep", str(number))
        tokens[address] = write_gmail_token(home, server, address)
        accounts.add_inbox(db, "gmail", address, {})
        domain = address.split("@")[1]
        enroll_all_from(db, [f"c{i}@{domain}.example" for i in range(per_inbox)], at(T0),
                        inbox=address)
    return db, tokens


def rows_of(db, address: str) -> list[dict]:
    return [r for r in outbox_rows(db)
            if r["inbox_id"] == accounts.inbox(db, address)["id"]]


def enrollment_states(db, address: str) -> set[str]:
    return {r[0] for r in db.execute(
        "SELECT e.status FROM enrollments e JOIN inboxes i ON i.id = e.inbox_id "
        "WHERE i.address = ?", [address])}


# -- the sender's problem -----------------------------------------------------------------


def test_a_daily_quota_throttles_the_inbox_for_a_day_and_it_resumes_by_itself(home, limited,
                                                                               run):
    db, tokens = two_gmail_inboxes(home, limited)
    limited.limited = {tokens["quota.rep@one.test"]}
    counts = tick(db, at(T0))
    assert counts.emails_sent == 3 and counts.failed == 0              # the other inbox sent
    assert all(r["status"] == "sent" for r in rows_of(db, "free.rep@two.test"))
    quota = rows_of(db, "quota.rep@one.test")
    assert [r["status"] for r in quota] == ["queued"] * 3              # in order, none failed
    assert [r["attempts"] for r in quota] == [0, 0, 0]
    assert enrollment_states(db, "quota.rep@one.test") == {"active"}   # no enrollment touched
    inbox = accounts.inbox(db, "quota.rep@one.test")
    assert inbox["status"] == "throttled"
    assert clock.from_iso(inbox["status_until"]) == at(T0) + timedelta(hours=24)
    sends = limited.requests_to(r"messages/send$")
    assert sum(r.bearer == tokens["quota.rep@one.test"] for r in sends) == 1   # tried once

    later = "2026-03-02T15:01:00Z"
    listing = run("inbox", "list", "--json", now=later)
    assert listing.code == 0, listing.err
    shown = {r["address"]: r for r in listing.json}
    assert shown["quota.rep@one.test"]["status"] == "throttled"
    assert shown["quota.rep@one.test"]["status_until"] == "2026-03-03T14:01:00Z"
    assert "Daily Limit Exceeded" in shown["quota.rep@one.test"]["status_reason"]
    assert shown["free.rep@two.test"]["status"] == "active"
    assert shown["free.rep@two.test"]["status_until"] is None
    text = run("inbox", "list", now=later, env={"COLUMNS": "250"})
    assert "throttled until 2026-03-03T14:01:00Z: Gmail send: HTTP 403" in text.out
    ticked = run("tick", "--json", now=later)
    assert ticked.code == 0, ticked.err
    assert ticked.json["emails_sent"] == 0
    assert ticked.json["inboxes_held"] == [{
        "address": "quota.rep@one.test", "status": "throttled",
        "status_until": "2026-03-03T14:01:00Z",
        "status_reason": shown["quota.rep@one.test"]["status_reason"]}]
    assert "quota.rep@one.test is throttled until 2026-03-03T14:01:00Z" in ticked.err
    assert sum(r.bearer == tokens["quota.rep@one.test"]
               for r in limited.requests_to(r"messages/send$")) == 1   # nothing tried meanwhile

    limited.limited = set()
    resumed = tick(db, at("2026-03-03T14:02:00Z"))
    assert resumed.emails_sent == 3
    assert accounts.inbox(db, "quota.rep@one.test")["status"] == "active"
    assert all(limited.deliveries[r["message_id"]] == 1 for r in outbox_rows(db))


@pytest.mark.parametrize("status, reason", [
    (403, "userRateLimitExceeded"), (429, "rateLimitExceeded"), (429, "userRateLimitExceeded"),
])
def test_a_rate_limit_throttles_the_inbox_for_an_hour(home, limited, status, reason):
    db = add_gmail_inbox(home, limited)
    start(db, ["ann@acme.test", "bob@acme.test"])
    limited.limited = set(limited.access_tokens)
    limited.refusal = (status, google_error(status, reason, "User-rate limit exceeded"))
    assert tick(db, at(T0)).emails_sent == 0
    inbox = accounts.inbox(db, ADDRESS)
    assert inbox["status"] == "throttled"
    assert clock.from_iso(inbox["status_until"]) == at(T0) + timedelta(hours=1)
    assert {enrollment(db, e)["status"] for e in ("ann@acme.test", "bob@acme.test")} == {"active"}


def test_retry_after_in_gmails_words_sets_when_sending_resumes(home, limited):
    db = add_gmail_inbox(home, limited)
    start(db)
    limited.limited = set(limited.access_tokens)
    limited.refusal = (429, google_error(
        429, "rateLimitExceeded",
        "User-rate limit exceeded.  Retry after 2026-03-02T16:45:00.000Z"))
    tick(db, at(T0))
    inbox = accounts.inbox(db, ADDRESS)
    assert (inbox["status"], inbox["status_until"]) == ("throttled", "2026-03-02T16:45:00Z")
    limited.limited = set()
    assert tick(db, at("2026-03-02T16:44:00Z")).emails_sent == 0
    assert tick(db, at("2026-03-02T16:45:00Z")).emails_sent == 1


def graph_refuses(server, status: int, code: str, message: str, **kwargs) -> None:
    server.fail_next(status, path=r"/sendMail$",
                     body={"error": {"code": code, "message": message}}, **kwargs)


def test_graph_429_throttles_for_its_retry_after(home, outlook):
    db = database.get()
    start(db, ["ann@acme.test", "bob@acme.test"])
    graph_refuses(outlook, 429, "ApplicationThrottled",
                  "Application is over its MailboxConcurrency limit.", retry_after=1800)
    counts = tick(db, at(T0))
    assert (counts.emails_sent, counts.failed) == (0, 0)
    inbox = accounts.inbox(db, OUTLOOK)
    assert inbox["status"] == "throttled"
    assert clock.from_iso(inbox["status_until"]) == at(T0) + timedelta(minutes=30)
    assert "MailboxConcurrency" in inbox["status_message"]
    assert len(outlook.requests_to(r"/sendMail$")) == 1
    assert tick(db, at(T0) + timedelta(minutes=31)).emails_sent == 2


def test_graph_message_limit_throttles_for_a_day(home, outlook):
    db = database.get()
    start(db)
    graph_refuses(outlook, 403, "ErrorExceededMessageLimit",
                  "Cannot send mail. The message exceeds the limit of messages per day.")
    tick(db, at(T0))
    inbox = accounts.inbox(db, OUTLOOK)
    assert inbox["status"] == "throttled"
    assert clock.from_iso(inbox["status_until"]) == at(T0) + timedelta(hours=24)
    assert enrollment(db, "ann@acme.test")["status"] == "active"


def test_a_short_retry_after_from_a_sender_limit_is_waited_out_within_the_tick(home, outlook):
    db = database.get()
    start(db)
    outlook.fail_next(429, retry_after=0, path=r"/sendMail$")
    assert tick(db, at(T0)).emails_sent == 1
    assert accounts.inbox(db, OUTLOOK)["status"] == "active"


# -- the recipient's and the message's problems (Gmail and Graph) --------------------------


def test_an_invalid_recipient_from_gmail_is_a_hard_bounce_and_suppressed(home, limited):
    db = add_gmail_inbox(home, limited)
    start(db, ["ann@acme.test", "bob@acme.test"])
    limited.fail_next(400, path=r"messages/send$", body={"error": {
        "code": 400, "message": "Invalid To header", "status": "INVALID_ARGUMENT"}})
    counts = tick(db, at(T0))
    assert counts.emails_sent == 1                      # the other email still went out
    ann = enrollment(db, "ann@acme.test")
    assert (ann["status"], ann["exit_reason"]) == ("exited", "bounced")
    assert db.execute("SELECT reason FROM suppressions WHERE email = 'ann@acme.test'"
                      ).fetchone() == ("bounced",)
    assert accounts.inbox(db, ADDRESS)["status"] == "active"


def test_a_message_too_large_for_graph_fails_with_its_words_and_no_retry(home, outlook):
    db = database.get()
    start(db)
    graph_refuses(outlook, 400, "ErrorMessageSizeExceeded",
                  "The message exceeds the maximum supported size.")
    counts = tick(db, at(T0))
    assert counts.failed == 1
    [row] = outbox_rows(db)
    assert row["status"] == "failed" and "maximum supported size" in row["error"]
    ann = enrollment(db, "ann@acme.test")
    assert ann["status"] == "failed" and "maximum supported size" in ann["failure_message"]
    assert tick(db, at(T0) + timedelta(hours=1)).emails_sent == 0      # not retried by itself
    assert accounts.inbox(db, OUTLOOK)["status"] == "active"


# -- SMTP: aiosmtpd answering each code at MAIL, RCPT and DATA ------------------------------


SMTP_ADDRESS = "rep@example.com"


@pytest.fixture
def smtp(home):
    with SmtpTestServer() as server:
        yield server


def add_smtp_inbox(db, server: SmtpTestServer, **config) -> None:
    accounts.add_user(db, SMTP_ADDRESS, "Riley", "Rep")
    accounts.add_inbox(db, "smtp", SMTP_ADDRESS, {
        "smtp_host": "127.0.0.1", "smtp_port": server.port, "security": "none", "timeout": 5,
        **config})


def smtp_start(db, server, emails, **config):
    add_smtp_inbox(db, server, **config)
    apply_yaml(db, SEQUENCE, at(T0))
    enroll_all_from(db, list(emails), at(T0))


def delivered_to(server: SmtpTestServer) -> list[str]:
    return [rcpt for message in server.messages for rcpt in message.rcpt_tos]


def test_one_full_mailbox_waits_alone_and_becomes_a_soft_bounce(home, smtp, run):
    db = database.get()
    assert run("settings", "set", "max_send_attempts", "3").code == 0
    smtp_start(db, smtp, ["ann@acme.test", "bob@acme.test", "cy@acme.test"])
    smtp.fail_address("bob@acme.test", "450 4.2.2 The email account that you tried to reach "
                                       "is over quota.")
    counts = tick(db, at(T0))
    assert counts.emails_sent == 2 and counts.deferred == 1      # the others went out
    assert sorted(delivered_to(smtp)) == ["ann@acme.test", "cy@acme.test"]
    [bob] = outbox_rows(db, "bob@acme.test")
    assert bob["status"] == "queued" and "450 4.2.2" in bob["error"]
    assert clock.from_iso(bob["next_attempt_at"]) == at(T0) + timedelta(minutes=5)
    assert enrollment(db, "bob@acme.test")["status"] == "active"
    assert accounts.inbox(db, SMTP_ADDRESS)["status"] == "active"

    tick(db, at(T0) + timedelta(minutes=5))
    [bob] = outbox_rows(db, "bob@acme.test")
    assert bob["attempts"] == 2 and bob["status"] == "queued"
    assert clock.from_iso(bob["next_attempt_at"]) == at(T0) + timedelta(minutes=15)
    tick(db, at(T0) + timedelta(minutes=15))
    [bob] = outbox_rows(db, "bob@acme.test")
    assert bob["status"] == "failed" and "soft bounce after 3 attempts" in bob["error"]
    row = enrollment(db, "bob@acme.test")
    assert row["status"] == "failed" and "over quota" in row["failure_message"]
    assert db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'soft_bounce'").fetchone()[0] == 1
    assert "bob@acme.test" not in delivered_to(smtp)


def test_a_mailbox_that_frees_up_gets_its_email_on_the_retry(home, smtp):
    db = database.get()
    smtp_start(db, smtp, ["bob@acme.test"])
    smtp.fail_address("bob@acme.test", "452 4.2.2 Mailbox full")
    assert tick(db, at(T0)).emails_sent == 0
    smtp.clear_address("bob@acme.test")
    assert tick(db, at(T0) + timedelta(minutes=5)).emails_sent == 1
    assert delivered_to(smtp) == ["bob@acme.test"]


def test_a_dead_address_at_rcpt_is_a_hard_bounce_and_is_never_mailed_again(home, smtp, run):
    db = database.get()
    smtp_start(db, smtp, ["ann@acme.test", "bob@acme.test"])
    smtp.fail_address("ann@acme.test", "550 5.1.1 The email account that you tried to reach "
                                       "does not exist.")
    counts = tick(db, at(T0))
    assert counts.emails_sent == 1
    assert smtp.handler.seen["DATA"] == 1                         # only bob's message
    ann = enrollment(db, "ann@acme.test")
    assert (ann["status"], ann["exit_reason"]) == ("exited", "bounced")
    assert db.execute("SELECT reason FROM suppressions WHERE email = 'ann@acme.test'"
                      ).fetchone() == ("bounced",)
    [row] = outbox_rows(db, "ann@acme.test")
    assert row["status"] == "failed" and "5.1.1" in row["error"]
    result = run("resume", "--failed", now="2026-03-02T15:01:00Z")
    assert result.code == 0, result.err
    tick(db, at(T0) + timedelta(days=3))
    assert "ann@acme.test" not in delivered_to(smtp)


@pytest.mark.parametrize("command, reply, pause", [
    ("MAIL", "550 5.4.5 Daily user sending quota exceeded.", timedelta(hours=24)),
    ("RCPT", "550 5.4.5 Daily user sending quota exceeded.", timedelta(hours=24)),
    ("DATA", "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; "
             "Failed to process message", timedelta(hours=24)),
    ("MAIL", "421 4.7.0 Try again later, closing connection.", timedelta(hours=1)),
    ("RCPT", "451 4.7.1 Too many messages, slow down", timedelta(hours=1)),
    ("DATA", "451 4.7.500 Server busy. Please try again later", timedelta(hours=1)),
])
def test_the_inboxs_own_limit_at_any_command_throttles_it(home, smtp, command, reply, pause):
    db = database.get()
    smtp_start(db, smtp, ["ann@acme.test", "bob@acme.test"])
    smtp.fail_next(command, reply)
    counts = tick(db, at(T0))
    assert (counts.emails_sent, counts.failed) == (0, 0)
    assert smtp.handler.seen["MAIL"] == 1                         # the rest was not tried
    inbox = accounts.inbox(db, SMTP_ADDRESS)
    assert inbox["status"] == "throttled" and reply[:9] in inbox["status_message"]
    assert clock.from_iso(inbox["status_until"]) == at(T0) + pause
    assert [r["status"] for r in outbox_rows(db)] == ["queued", "queued"]
    assert {enrollment(db, e)["status"] for e in ("ann@acme.test", "bob@acme.test")} == {"active"}
    assert tick(db, at(T0) + pause).emails_sent == 2              # resumes by itself


@pytest.mark.parametrize("command, reply", [
    ("DATA", "554 5.7.1 Message rejected as spam"),
    ("DATA", "552 5.3.4 Message size exceeds fixed limit"),
    ("RCPT", "550 5.7.606 Access denied, banned sending IP"),
])
def test_a_refused_message_fails_alone_with_the_servers_words(home, smtp, command, reply):
    db = database.get()
    smtp_start(db, smtp, ["ann@acme.test", "bob@acme.test"])
    smtp.fail_next(command, reply)
    counts = tick(db, at(T0))
    assert (counts.emails_sent, counts.failed) == (1, 1)
    [ann] = outbox_rows(db, "ann@acme.test")
    assert ann["status"] == "failed" and reply in ann["error"]
    assert reply in enrollment(db, "ann@acme.test")["failure_message"]
    assert db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0] == 0
    assert accounts.inbox(db, SMTP_ADDRESS)["status"] == "active"


@pytest.mark.parametrize("command", ["MAIL", "DATA"])
def test_a_temporary_server_error_is_retried(home, smtp, command, monkeypatch):
    monkeypatch.setenv("SEQCTL_RETRY_BUDGET", "0")
    db = database.get()
    smtp_start(db, smtp, ["ann@acme.test"])
    smtp.fail_next(command, "451 4.3.0 Local error in processing")
    counts = tick(db, at(T0))
    assert (counts.emails_sent, counts.deferred) == (0, 1)
    assert accounts.inbox(db, SMTP_ADDRESS)["status"] == "active"
    assert tick(db, at(T0) + timedelta(minutes=1)).emails_sent == 1


# -- misconfiguration is an authorization problem ----------------------------------------


def assert_stopped_at_the_first_failure(db, server, tried_field: str, tried: int) -> None:
    inbox = accounts.inbox(db, SMTP_ADDRESS)
    assert inbox["status"] == "needs_reauth"
    rows = outbox_rows(db)
    assert [r["status"] for r in rows] == ["failed"] * 3
    assert server.messages == []
    assert server.handler.seen[tried_field] == tried
    for email in ("a@acme.test", "b@acme.test", "c@acme.test"):
        row = enrollment(db, email)
        assert row["status"] == "failed"
        assert f"seqctl resume --failed --inbox {SMTP_ADDRESS}" in row["failure_message"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_refused_login_needs_reauth_at_once_and_the_batch_is_not_tried(home, monkeypatch):
    monkeypatch.setenv("SEQCTL_TEST_SMTP_PW", "wrong")
    with SmtpTestServer(users={SMTP_ADDRESS: "right"}) as server:
        db = database.get()
        smtp_start(db, server, ["a@acme.test", "b@acme.test", "c@acme.test"],
                   password_env="SEQCTL_TEST_SMTP_PW")
        counts = tick(db, at(T0))
        assert counts.emails_sent == 0
        assert_stopped_at_the_first_failure(db, server, "EHLO", 1)   # one connection
        assert "535" in accounts.inbox(db, SMTP_ADDRESS)["status_message"]


def test_a_server_that_offers_no_auth_needs_reauth_at_once(home, smtp, monkeypatch):
    monkeypatch.setenv("SEQCTL_TEST_SMTP_PW", "secret")
    db = database.get()
    smtp_start(db, smtp, ["a@acme.test", "b@acme.test", "c@acme.test"],
               password_env="SEQCTL_TEST_SMTP_PW")
    tick(db, at(T0))
    assert_stopped_at_the_first_failure(db, smtp, "EHLO", 1)
    assert "AUTH" in accounts.inbox(db, SMTP_ADDRESS)["status_message"]


def test_a_failed_tls_handshake_needs_reauth_at_once(home, smtp):
    db = database.get()
    smtp_start(db, smtp, ["a@acme.test", "b@acme.test", "c@acme.test"], security="ssl")
    tick(db, at(T0))
    assert_stopped_at_the_first_failure(db, smtp, "MAIL", 0)
    assert "TLS" in accounts.inbox(db, SMTP_ADDRESS)["status_message"]
