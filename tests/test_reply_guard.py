"""The reply guard (SPEC 10): before an inbox sends anything in a tick, its new mail is read
once, whatever `sync_schedule` says, so a reply already in the mailbox stops the follow-up.
A tick with nothing to send reads nothing."""

from __future__ import annotations

from datetime import timedelta

from fakes.gmail_server import GmailServer

from seqctl.engine import accounts
from tests.helpers import apply_yaml, at, enroll_all, setup_account, tick
from tests.test_dispatch_providers import ADDRESS, add_gmail_inbox, reply_to, start, use_gmail
from tests.test_sync_maildir import drop, enrollment, first_sent_to
from tests.test_sync_maildir import reply_to as maildir_reply

T0 = "2026-03-02T14:01:00Z"          # minute 1: `*/5` does not sync

TWO_EMAILS = """
    name: cadence
    steps:
      - id: intro
        step_type: email
        subject: "Hello {{first_name}}"
        body: "Hi {{first_name}}, short note."
      - id: bump
        step_type: email
        delay_calendar_days: 2
        body: "Bumping this up."
"""


def test_a_reply_30_seconds_before_the_follow_up_stops_it_on_a_minute_without_sync(home):
    db, maildir = setup_account(home)
    apply_yaml(db, TWO_EMAILS, at(T0))
    enroll_all(db, "cadence", ["ann@buyer.test", "bob@buyer.test"], at(T0))
    assert tick(db, at(T0)).emails_sent == 2
    follow_up_due = at(T0) + timedelta(days=2)
    drop(maildir, maildir_reply(first_sent_to(maildir, "ann@buyer.test"), "ann@buyer.test"))
    counts = tick(db, follow_up_due + timedelta(seconds=30))
    assert counts.synced == 1
    assert counts.emails_sent == 1                                 # bob's follow-up only
    assert enrollment(db, "ann@buyer.test", "cadence")[:2] == ("exited", "reply_received")
    sent_to = [r[0] for r in db.execute(
        "SELECT to_email FROM outbox WHERE status = 'sent' ORDER BY id")]
    assert sent_to == ["ann@buyer.test", "bob@buyer.test", "bob@buyer.test"]


def test_a_tick_with_nothing_due_reads_no_mail(home, monkeypatch):
    with GmailServer(address=ADDRESS) as gmail:
        use_gmail(monkeypatch, gmail)
        db = add_gmail_inbox(home, gmail)
        start(db)
        assert tick(db, at(T0)).emails_sent == 1
        read = len(gmail.requests_to(r"/history$|/profile$"))
        for minute in (2, 3, 6, 7):                                # idle, not sync minutes
            counts = tick(db, at(T0) + timedelta(minutes=minute))
            assert (counts.synced, counts.emails_sent) == (0, 0)
        assert len(gmail.requests_to(r"/history$|/profile$")) == read


def test_an_inbox_is_read_once_per_tick_however_much_it_sends(home, monkeypatch):
    with GmailServer(address=ADDRESS) as gmail:
        use_gmail(monkeypatch, gmail)
        db = add_gmail_inbox(home, gmail)
        start(db, ["a@buyer.test"])
        tick(db, at(T0))                                           # cursor set, first sent
        enroll_all(db, "outreach", [f"c{i}@buyer.test" for i in range(4)], at(T0))
        before = len(gmail.requests_to(r"/history$"))
        assert tick(db, at(T0) + timedelta(minutes=1)).emails_sent == 4
        assert len(gmail.requests_to(r"/history$")) == before + 1


def test_a_sync_minute_reads_each_inbox_once_not_twice(home, monkeypatch):
    with GmailServer(address=ADDRESS) as gmail:
        use_gmail(monkeypatch, gmail)
        db = add_gmail_inbox(home, gmail)
        start(db, ["a@buyer.test"], now="2026-03-02T14:00:00Z")
        tick(db, at("2026-03-02T14:00:00Z"))
        enroll_all(db, "outreach", ["b@buyer.test"], at("2026-03-02T14:05:00Z"))
        before = len(gmail.requests_to(r"/history$"))
        counts = tick(db, at("2026-03-02T14:05:00Z"))              # a sync minute
        assert counts.emails_sent == 1
        assert len(gmail.requests_to(r"/history$")) == before + 1


def test_the_guard_reads_gmail_and_the_reply_stops_the_follow_up(home, monkeypatch):
    with GmailServer(address=ADDRESS) as gmail:
        use_gmail(monkeypatch, gmail)
        db = add_gmail_inbox(home, gmail)
        start(db)
        tick(db, at(T0))
        [first] = gmail.sent_raw()
        gmail.deliver(reply_to(first, "ann@acme.test"))
        counts = tick(db, at(T0) + timedelta(days=2, minutes=1))
        assert counts.emails_sent == 0 and counts.exited == 1
        assert len(gmail.sent_raw()) == 1
        assert accounts.inbox(db, ADDRESS)["status"] == "active"


def test_when_the_mailbox_cannot_be_read_follow_ups_wait_and_first_touches_go(home, monkeypatch):
    with GmailServer(address=ADDRESS) as gmail:
        use_gmail(monkeypatch, gmail)
        db = add_gmail_inbox(home, gmail)
        start(db)
        tick(db, at(T0))
        later = at(T0) + timedelta(days=2, minutes=1)
        enroll_all(db, "outreach", ["new@buyer.test"], later)
        gmail.fail_next(503, path=r"/history$")
        counts = tick(db, later)
        assert counts.emails_sent == 1                             # the first touch only
        rows = {r[0]: r[1] for r in db.execute("SELECT to_email, status FROM outbox "
                                               "WHERE is_follow_up = 1")}
        assert rows == {"ann@acme.test": "queued"}
        assert tick(db, later + timedelta(minutes=1)).emails_sent == 1   # read, then sent
