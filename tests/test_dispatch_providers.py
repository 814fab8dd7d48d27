"""Ticks end to end through the real provider code against local fakes: the Gmail API and
Google's token endpoint, Microsoft Graph and identity, aiosmtpd + Dovecot."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fakes.gmail_server import SCOPE_READONLY, SCOPE_SEND, GmailServer
from fakes.graph_server import GraphServer
from fakes.ms_identity import MSIdentityServer
from fakes.tls import make_self_signed
from servers.smtp_server import SmtpTestServer

from seqctl import clock
from seqctl import db as database
from seqctl.engine import accounts, bookings, compose, sync
from seqctl.providers.gmail import CALENDAR_READONLY
from seqctl.providers.outlook import connect_outlook
from tests.conftest import ROOT
from tests.helpers import apply_yaml, at, enroll_all, install_key, tick

ADDRESS = "rep@example.com"

SEQUENCE = """
    name: outreach
    steps:
      - id: first
        step_type: email
        subject: "Quick question, {{first_name}}"
        body: "Hi {{first_name}}, short note."
      - id: bump
        step_type: email
        delay_calendar_days: 2
        body: "Bumping this up."
"""

# Minute 1 of the hour: the default sync_schedule (*/5) does not fire, so a tick is
# engine + dispatch only; minute 0 ticks sync first.
T0 = "2026-03-02T14:01:00Z"


# -- setup ----------------------------------------------------------------------------------


def write_gmail_token(home, server: GmailServer, address: str = ADDRESS, *,
                      refresh: str = "refresh-1", scopes=None) -> str:
    scopes = scopes or [SCOPE_SEND, SCOPE_READONLY]
    server.refresh_tokens[refresh] = scopes
    token = server.issue_access_token(scopes)
    path = home / "tokens" / f"gmail-{address}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "client-id", "client_secret": "client-secret",
        "refresh_token": refresh, "token": token,
        "expiry": (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scopes": scopes,
    }))
    return token


def add_gmail_inbox(home, server: GmailServer, address: str = ADDRESS, **config):
    db = database.get()
    if not db.execute("SELECT 1 FROM users WHERE email = ?", [address]).fetchone():
        accounts.add_user(db, address, "Riley", "Rep")
    write_gmail_token(home, server, address)
    accounts.add_inbox(db, "gmail", address, {"calendar": False, **config})
    return db


def use_gmail(monkeypatch, server: GmailServer) -> None:
    monkeypatch.setenv("SEQCTL_GMAIL_API_URL", server.url)
    monkeypatch.setenv("SEQCTL_GCAL_API_URL", server.url)
    monkeypatch.setenv("SEQCTL_GOOGLE_TOKEN_URI", f"{server.url}/token")


@pytest.fixture
def gmail(home, monkeypatch):
    with GmailServer(address=ADDRESS) as server:
        use_gmail(monkeypatch, server)
        yield server


def start(db, emails=("ann@acme.test",), now=T0, inbox=None):
    apply_yaml(db, SEQUENCE, at(now))
    summary = enroll_all_from(db, list(emails), at(now), inbox)
    return summary


def enroll_all_from(db, emails, now, inbox=None):
    if inbox is None:
        return enroll_all(db, "outreach", emails, now)
    from seqctl.engine import enroll

    return enroll.enroll(db, "outreach", emails, now, inbox_address=inbox)


def outbox_rows(db, email: str | None = None) -> list[dict]:
    sql = "SELECT * FROM outbox" + (" WHERE to_email = ?" if email else "") + " ORDER BY id"
    cursor = db.execute(sql, [email] if email else [])
    keys = [c[0] for c in cursor.description]
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def step(db, key: str) -> dict:
    cursor = db.execute("SELECT * FROM steps WHERE step_key = ?", [key])
    return dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))


def enrollment(db, email: str) -> dict:
    cursor = db.execute(
        "SELECT e.* FROM enrollments e JOIN contacts c ON c.id = e.contact_id WHERE c.email = ?",
        [email])
    return dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))


def composed_bytes(db, email: str, key: str, when: datetime) -> bytes:
    """What `seqctl preview` shows: the one rendering path, for the same contact/step/time."""
    return compose.compose(db, enrollment(db, email)["id"], step(db, key), date=when, key=install_key()).built.raw


def reply_to(raw: bytes, sender: str, to: str = ADDRESS) -> bytes:
    import email

    original = email.message_from_bytes(raw)
    message_id = original["Message-ID"]
    return (
        f"From: Ann <{sender}>\r\nTo: {to}\r\nSubject: Re: {original['Subject']}\r\n"
        f"Message-ID: <reply-{time.time_ns()}@acme.test>\r\nIn-Reply-To: {message_id}\r\n"
        f"References: {message_id}\r\nDate: Mon, 02 Mar 2026 15:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nSounds good, call me.\r\n"
    ).encode()


# -- Gmail ----------------------------------------------------------------------------------


def test_gmail_sends_what_preview_shows_and_the_follow_up_joins_the_thread(home, gmail):
    db = add_gmail_inbox(home, gmail)
    start(db)
    counts = tick(db, at(T0))
    assert counts.emails_sent == 1
    [first_raw] = gmail.sent_raw()
    assert first_raw == composed_bytes(db, "ann@acme.test", "first", at(T0))
    [first_row] = outbox_rows(db)
    assert first_row["raw"] == first_raw and first_row["status"] == "sent"
    first_thread = gmail.requests_to(r"messages/send$", "POST")[0]
    assert "threadId" not in first_thread.json()
    assert first_row["thread_id"] == gmail.messages[first_row["provider_message_id"]].thread_id

    later = at(T0) + timedelta(days=2, minutes=1)
    assert tick(db, later).emails_sent == 1
    second_request = gmail.requests_to(r"messages/send$", "POST")[1]
    assert second_request.json()["threadId"] == first_row["thread_id"]
    second_raw = gmail.sent_raw()[1]
    assert second_raw == composed_bytes(db, "ann@acme.test", "bump", later)
    assert f"In-Reply-To: {first_row['message_id']}".encode() in second_raw
    assert gmail.deliveries[first_row["message_id"]] == 1


def test_an_expired_access_token_is_refreshed_and_saved_privately(home, gmail):
    db = add_gmail_inbox(home, gmail)
    start(db)
    old = json.loads((home / "tokens" / f"gmail-{ADDRESS}.json").read_text())["token"]
    gmail.expire_tokens()
    assert tick(db, at(T0)).emails_sent == 1
    assert len(gmail.requests_to(r"^/token$", "POST")) == 1
    token_file = home / "tokens" / f"gmail-{ADDRESS}.json"
    saved = json.loads(token_file.read_text())
    assert saved["token"] != old and saved["token"] in gmail.access_tokens
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_429_with_retry_after_is_retried_within_the_tick(home, gmail):
    db = add_gmail_inbox(home, gmail)
    start(db)
    gmail.fail_next(429, retry_after=1, path=r"messages/send$")
    began = time.monotonic()
    counts = tick(db, at(T0))
    waited = time.monotonic() - began
    assert counts.emails_sent == 1
    assert waited >= 1.0, "the Retry-After second was not honoured"
    assert len(gmail.requests_to(r"messages/send$")) == 2
    [row] = outbox_rows(db)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert gmail.deliveries[row["message_id"]] == 1


def test_503_beyond_the_retry_budget_is_sent_by_the_next_tick(home, gmail, monkeypatch):
    monkeypatch.setenv("SEQCTL_RETRY_BUDGET", "0")
    db = add_gmail_inbox(home, gmail)
    start(db)
    gmail.fail_next(503, path=r"messages/send$")
    counts = tick(db, at(T0))
    assert (counts.emails_sent, counts.deferred) == (0, 1)
    [row] = outbox_rows(db)
    assert row["status"] == "queued" and "503" in row["error"]
    assert at(T0) < clock.from_iso(row["next_attempt_at"]) <= at(T0) + timedelta(minutes=1)
    assert tick(db, at(T0) + timedelta(minutes=1)).emails_sent == 1
    assert gmail.deliveries[row["message_id"]] == 1


def test_a_revoked_grant_fails_enrollments_until_reimport_and_resume(home, gmail, run):
    db = add_gmail_inbox(home, gmail)
    start(db, ["ann@acme.test", "bob@acme.test"])
    gmail.revoke()
    counts = tick(db, at(T0))
    assert counts.emails_sent == 0 and counts.failed == 2
    inbox = accounts.inbox(db, ADDRESS)
    assert inbox["status"] == "needs_reauth"
    for email in ("ann@acme.test", "bob@acme.test"):
        row = enrollment(db, email)
        assert row["status"] == "failed"
        assert "seqctl inbox import gmail rep@example.com" in row["failure_message"]
        assert "seqctl resume --failed --inbox rep@example.com" in row["failure_message"]
    assert sum(gmail.deliveries.values()) == 0

    gmail.refresh_tokens["refresh-2"] = [SCOPE_SEND, SCOPE_READONLY]
    credentials = home / "authorized_user.json"
    credentials.write_text(json.dumps({"type": "authorized_user", "client_id": "client-id",
                                       "client_secret": "client-secret",
                                       "refresh_token": "refresh-2"}))
    later = "2026-03-02T16:01:00Z"
    result = run("inbox", "import", "gmail", ADDRESS, "--credentials", credentials, now=later)
    assert result.code == 0, result.err
    assert "seqctl resume --failed --inbox rep@example.com" in result.err
    assert accounts.inbox(db, ADDRESS)["status"] == "active"
    result = run("resume", "--failed", "--inbox", ADDRESS, now=later)
    assert result.code == 0, result.err
    assert tick(db, at(later)).emails_sent == 2
    assert [r["status"] for r in outbox_rows(db)] == ["sent", "sent"]
    assert all(count == 1 for count in gmail.deliveries.values())


def test_history_404_recovers_during_sync_and_the_reply_exits(home, gmail, run):
    db = add_gmail_inbox(home, gmail)
    start(db, now="2026-03-02T14:00:00Z")
    tick(db, at("2026-03-02T14:00:00Z"))                 # sync stores the historyId, then sends
    assert accounts.inbox(db, ADDRESS)["sync_cursor"]
    [row] = outbox_rows(db)
    gmail.expire_history()
    gmail.deliver(reply_to(row["raw"], "ann@acme.test"))
    result = run("sync", now="2026-03-02T15:00:00Z")
    assert result.code == 0, result.err
    assert len(gmail.requests_to(r"/history$")) >= 1
    row = enrollment(db, "ann@acme.test")
    assert (row["status"], row["exit_reason"]) == ("exited", "reply_received")


def test_a_reply_to_the_first_email_is_seen_when_the_first_send_was_not_on_a_sync_minute(
        home, gmail, run):
    """The first send of an inbox fixes where its sync starts: a reply that arrives before the
    first sync still counts."""
    db = add_gmail_inbox(home, gmail)
    start(db)                                            # T0 is minute 1: no sync phase
    counts = tick(db, at(T0))
    assert counts.emails_sent == 1 and counts.synced == 0
    assert accounts.inbox(db, ADDRESS)["sync_cursor"]
    [row] = outbox_rows(db)
    gmail.deliver(reply_to(row["raw"], "ann@acme.test"))
    result = run("sync", "--json", now="2026-03-02T14:03:00Z")
    assert result.code == 0 and result.json["synced"] == 1
    found = enrollment(db, "ann@acme.test")
    assert (found["status"], found["exit_reason"]) == ("exited", "reply_received")


# -- crash in flight ------------------------------------------------------------------------


class GatedGmail(GmailServer):
    """The first send blocks until released: after storing the message (`accept_first`) or
    before (then it is dropped, as if the request never got through)."""

    def __init__(self, *, accept_first: bool, **kwargs):
        super().__init__(**kwargs)
        self.accept_first = accept_first
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.gated = True

    def _send(self, request):
        if not self.gated:
            return super()._send(request)
        self.gated = False
        try:
            if self.accept_first:
                response = super()._send(request)
                self.arrived.set()
                self.release.wait(20)
                return response
            self.arrived.set()
            self.release.wait(20)
            return self.error(503, "the client went away")
        finally:
            self.finished.set()


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted-before-kill", "not-accepted"])
def test_a_tick_killed_mid_send_neither_loses_nor_duplicates_the_email(home, monkeypatch,
                                                                       accepted):
    with GatedGmail(accept_first=accepted, address=ADDRESS) as server:
        use_gmail(monkeypatch, server)
        db = add_gmail_inbox(home, server)
        start(db)
        env = {**os.environ, "SEQCTL_HOME": str(home), "SEQCTL_NOW": T0}
        proc = subprocess.Popen([sys.executable, "-m", "seqctl", "tick", "--json"], env=env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert server.arrived.wait(30), "the send never reached the fake"
            [row] = outbox_rows(db)
            assert row["status"] == "sending"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
            server.release.set()
        assert server.finished.wait(10)
        message_id = row["message_id"]
        assert server.deliveries[message_id] == (1 if accepted else 0)

        if not accepted:
            # Gmail's search can lag behind a send: for a while "not found" is not "not sent",
            # so a tick soon after the crash leaves the email alone
            soon = subprocess.run([sys.executable, "-m", "seqctl", "tick", "--json"],
                                  env={**env, "SEQCTL_NOW": "2026-03-02T14:05:00Z"}, cwd=ROOT,
                                  capture_output=True, timeout=60)
            assert soon.returncode == 0, soon.stderr.decode()
            assert server.deliveries[message_id] == 0
            assert outbox_rows(db)[0]["status"] == "sending"
            env["SEQCTL_NOW"] = "2026-03-02T14:20:00Z"
        second = subprocess.run([sys.executable, "-m", "seqctl", "tick", "--json"], env=env,
                                cwd=ROOT, capture_output=True, timeout=60)
        assert second.returncode == 0, second.stderr.decode()
        assert server.deliveries[message_id] == 1
        assert len(server.requests_to(r"messages/send$")) == (1 if accepted else 2)
        [row] = outbox_rows(db)
        assert row["status"] == "sent" and row["provider_message_id"] in server.messages
        assert json.loads(second.stdout)["emails_sent"] == 1


# -- throttling and caps --------------------------------------------------------------------


class ThrottlingGmail(GmailServer):
    """One mailbox (by its access token) answers every send with 429 Retry-After: 60."""

    throttled_tokens: set[str]

    def _send(self, request):
        if request.bearer in self.throttled_tokens:
            response = self.error(429, "User-rate limit exceeded", "rateLimitExceeded")
            response.headers["Retry-After"] = "60"
            return response
        return super()._send(request)


def test_a_throttled_inbox_defers_while_the_others_send_everything(home, monkeypatch):
    addresses = ["ann.rep@one.test", "bo.rep@two.test", "cy.rep@three.test"]
    with ThrottlingGmail(address=ADDRESS) as server:
        use_gmail(monkeypatch, server)
        db = database.get()
        apply_yaml(db, SEQUENCE, at(T0))
        tokens = {}
        for number, address in enumerate(addresses):
            accounts.add_user(db, address, "Rep", str(number))
            tokens[address] = write_gmail_token(home, server, address)
            accounts.add_inbox(db, "gmail", address, {})
            contacts = [f"c{i}@{address.split('@')[1]}.example" for i in range(5)]
            enroll_all_from(db, contacts, at(T0), inbox=address)
        server.throttled_tokens = {tokens["cy.rep@three.test"]}
        counts = tick(db, at(T0))
    assert counts.emails_sent == 10
    by_inbox = {
        address: db.execute(
            "SELECT o.status, o.next_attempt_at FROM outbox o JOIN inboxes i ON i.id = o.inbox_id"
            " WHERE i.address = ?", [address]).fetchall()
        for address in addresses
    }
    assert all(status == "sent" for status, _ in by_inbox["ann.rep@one.test"])
    assert all(status == "sent" for status, _ in by_inbox["bo.rep@two.test"])
    throttled = by_inbox["cy.rep@three.test"]
    assert len(throttled) == 5
    assert {status for status, _ in throttled} == {"queued"}       # in order, untouched
    assert {clock.from_iso(t) for _, t in throttled} == {at(T0)}
    inbox = accounts.inbox(db, "cy.rep@three.test")
    assert inbox["status"] == "throttled"                            # for Retry-After: 60
    assert clock.from_iso(inbox["status_until"]) == at(T0) + timedelta(seconds=60)
    sends = server.requests_to(r"messages/send$")
    assert sum(r.bearer == tokens["cy.rep@three.test"] for r in sends) == 1   # not hammered


def test_daily_cap_rolls_the_third_email_to_when_the_window_frees_a_slot(home, gmail, run):
    db = add_gmail_inbox(home, gmail)
    result = run("inbox", "set", ADDRESS, "--daily-cap", "2", "--json")
    assert result.code == 0, result.err
    assert result.json["daily_cap"] == 2
    start(db, ["a@acme.test", "b@acme.test", "c@acme.test"])
    counts = tick(db, at(T0))
    assert (counts.emails_sent, counts.deferred) == (2, 1)
    third = next(r for r in outbox_rows(db) if r["status"] == "queued")
    frees = at(T0) + timedelta(hours=24, seconds=1)
    assert clock.from_iso(third["next_attempt_at"]) == frees
    assert tick(db, at(T0) + timedelta(hours=23, minutes=59)).emails_sent == 0
    assert tick(db, frees + timedelta(seconds=59)).emails_sent == 1


# -- calendar bookings ----------------------------------------------------------------------


def test_a_booking_on_the_gmail_calendar_exits_the_contact(home, gmail):
    db = add_gmail_inbox(home, gmail, calendar=True)
    write_gmail_token(home, gmail, scopes=[SCOPE_SEND, SCOPE_READONLY, CALENDAR_READONLY])
    start(db, ["ann@acme.test", "bob@acme.test"], now="2026-03-02T14:00:00Z")
    gmail.events.append({"id": "e1", "status": "confirmed",
                         "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "attendees": [{"email": "ann@acme.test"}, {"email": ADDRESS}]})
    inbox = accounts.inbox(db, ADDRESS)
    assert bookings.check_bookings(db, inbox, datetime.now(UTC)) == 1
    ann, bob = enrollment(db, "ann@acme.test"), enrollment(db, "bob@acme.test")
    assert (ann["status"], ann["exit_reason"]) == ("exited", "booking")
    assert bob["status"] == "active"


def test_inboxes_without_calendar_access_are_not_asked(home, gmail):
    db = add_gmail_inbox(home, gmail)
    start(db)
    assert bookings.check_bookings(db, accounts.inbox(db, ADDRESS), at(T0)) == 0
    assert gmail.requests_to(r"/calendar/") == []


# -- Outlook --------------------------------------------------------------------------------

OUTLOOK = "rep@contoso.com"
CLIENT_ID = "ms-client-id"


@pytest.fixture
def graph(home, tmp_path, monkeypatch):
    tls = make_self_signed(tmp_path / "tls")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
    with MSIdentityServer(client_id=CLIENT_ID, username=OUTLOOK, tls=tls) as identity:
        monkeypatch.setenv("SEQCTL_MS_AUTHORITY", identity.url)
        with GraphServer(identity=identity, address=OUTLOOK) as server:
            monkeypatch.setenv("SEQCTL_GRAPH_API_URL", f"{server.url}/v1.0")
            connect_outlook(CLIENT_ID, "common", home, printer=lambda text: None)
            db = database.get()
            accounts.add_user(db, OUTLOOK, "Riley", "Rep")
            accounts.add_inbox(db, "outlook", OUTLOOK,
                               {"client_id": CLIENT_ID, "tenant": "common", "calendar": False})
            yield server


def test_outlook_sends_the_composed_mime_through_graph_and_recovers_an_expired_delta(home,
                                                                                    graph):
    db = database.get()
    now = at("2026-03-02T14:00:00Z")
    start(db, now="2026-03-02T14:00:00Z")
    assert tick(db, now).emails_sent == 1            # sync (delta link stored), then send
    assert graph.sent_mime == [composed_bytes(db, "ann@acme.test", "first", now)]
    [row] = outbox_rows(db)
    assert row["provider_message_id"] == graph.sent[0].id
    assert row["thread_id"] == graph.sent[0].conversation_id
    assert accounts.inbox(db, OUTLOOK)["sync_cursor"]

    graph.expire_delta()
    graph.deliver(reply_to(row["raw"], "ann@acme.test", OUTLOOK))
    clock.set_now(now + timedelta(hours=1))
    try:
        assert sync.run_sync(db, now + timedelta(hours=1)) >= 1
    finally:
        clock.set_now(None)
    ann = enrollment(db, "ann@acme.test")
    assert (ann["status"], ann["exit_reason"]) == ("exited", "reply_received")


# -- SMTP + IMAP ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_sends_through_aiosmtpd_keeps_the_sent_copy_and_a_reply_exits(home, dovecot,
                                                                            monkeypatch):
    account = dovecot.add_user()
    monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", account.password)
    with SmtpTestServer(users={account.username: account.password}) as smtp:
        db = database.get()
        accounts.add_user(db, ADDRESS, "Riley", "Rep")
        accounts.add_inbox(db, "smtp", ADDRESS, {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "security": "none",
            "imap_host": account.host, "imap_port": account.port, "imap_security": "none",
            "username": account.username, "password_env": "SEQCTL_TEST_IMAP_PW", "timeout": 5,
        })
        now = at("2026-03-02T14:00:00Z")
        start(db, now="2026-03-02T14:00:00Z")
        assert tick(db, now).emails_sent == 1
        [row] = outbox_rows(db)
        [received] = smtp.messages
        assert received.data.replace(b"\r\n", b"\n") == row["raw"].replace(b"\r\n", b"\n")
        assert received.rcpt_tos == ["ann@acme.test"]

    imap = account.connect()
    try:
        assert imap.select('"Sent"', readonly=True)[0] == "OK"
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        copies = [item for item in data if isinstance(item, tuple)]
        assert len(copies) == 1
        assert row["message_id"].encode() in copies[0][1]
        assert b"$SeqctlSending" not in copies[0][0]
        assert imap.append("INBOX", None, None, reply_to(row["raw"], "ann@acme.test"))[0] == "OK"
    finally:
        imap.logout()
    tick(db, now + timedelta(minutes=5))
    ann = enrollment(db, "ann@acme.test")
    assert (ann["status"], ann["exit_reason"]) == ("exited", "reply_received")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_xoauth2_authenticates_with_the_gmail_grant_of_the_address(home, gmail):
    token = write_gmail_token(home, gmail)
    with SmtpTestServer(tokens={ADDRESS: token}) as smtp:
        db = database.get()
        accounts.add_user(db, ADDRESS, "Riley", "Rep")
        accounts.add_inbox(db, "smtp", ADDRESS, {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "security": "none",
            "auth": "xoauth2", "oauth": "gmail", "timeout": 5,
        })
        start(db)
        assert tick(db, at(T0)).emails_sent == 1
        [received] = smtp.messages
        assert received.login == ADDRESS
