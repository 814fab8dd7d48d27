"""The tick engine end to end on the maildir inbox: steps fire once, at their minute."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest

from seqctl import clock
from seqctl.engine import exits, schedule
from tests.helpers import (
    apply_yaml,
    at,
    enroll_all,
    install_key,
    sent_files,
    setup_account,
    tick,
)

CADENCE = """
    name: cadence
    timezone: America/New_York
    send_window_start_hour: 9
    send_window_end_hour: 17
    send_weekdays_only: true
    steps:
      - id: one
        step_type: email
        subject: "Hello {{first_name}}"
        body: "Hi {{first_name}}, short note."
      - id: two
        step_type: email
        delay_business_days: 2
        body: "Bumping this up."
      - id: call
        step_type: call
        delay_hours: 3
        title: "Call {{first_name}}"
      - step_type: wait
        delay_calendar_days: 1
      - step_type: linkedin
        delay_business_days: 1
        title: Connect
      - id: last
        step_type: email
        delay_business_days: 2
        subject: "Closing the loop"
        body: "Last note."
"""


def expected_fire_times(enrolled_at, steps, window):
    """Independent chain: each step due at the previous fire time plus its delays, moved into
    the window, and fired on the first minute tick at or after that."""
    times, anchor = [], enrolled_at
    for delay in steps:
        due = schedule.due_time(anchor, delay, window)
        if due.second or due.microsecond:
            due = due.replace(second=0, microsecond=0) + timedelta(minutes=1)
        times.append(due)
        anchor = due
    return times


def test_minute_ticks_for_three_weeks_send_each_email_once_at_its_minute(home):
    db, maildir = setup_account(home)
    start = at("2026-03-05T13:07:00Z")          # a Thursday, across the US DST change (03-08)
    apply_yaml(db, CADENCE, start)
    emails = ["ann@a.test", "bob@b.test", "cy@c.test"]
    enroll_all(db, "cadence", emails[:2], start)
    late = start + timedelta(days=1, hours=9, minutes=41)   # Friday evening
    enroll_all(db, "cadence", emails[2:], late)

    now = start
    end = start + timedelta(days=21)
    while now <= end:
        tick(db, now)
        now += timedelta(minutes=1)

    window = schedule.SendWindow("America/New_York", 9, 17, True)
    delays = [schedule.Delay(), schedule.Delay(business_days=2), schedule.Delay(hours=3),
              schedule.Delay(calendar_days=1), schedule.Delay(business_days=1),
              schedule.Delay(business_days=2)]
    for address, enrolled in (("ann@a.test", start), ("bob@b.test", start), ("cy@c.test", late)):
        expected = expected_fire_times(enrolled, delays, window)
        sent = db.execute(
            "SELECT s.step_key, o.sent_at FROM outbox o JOIN steps s ON s.id = o.step_id "
            "WHERE o.to_email = ? AND o.status = 'sent' ORDER BY o.sent_at", [address]).fetchall()
        assert [k for k, _ in sent] == ["one", "two", "last"]
        assert [clock.from_iso(t) for _, t in sent] == [expected[0], expected[1], expected[5]]
        tasks = db.execute("SELECT kind, due_at FROM tasks t JOIN contacts c ON c.id = t.contact_id"
                           " WHERE c.email = ? ORDER BY due_at", [address]).fetchall()
        assert [(k, clock.from_iso(d)) for k, d in tasks] == [
            ("call", expected[2]), ("linkedin", expected[4])]
        status = db.execute(
            "SELECT e.status, e.exit_reason FROM enrollments e JOIN contacts c "
            "ON c.id = e.contact_id WHERE c.email = ?", [address]).fetchone()
        assert status == ("exited", "completed")
    files = sent_files(maildir)
    assert len(files) == 9
    ids = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default)["Message-ID"]
           for f in files]
    assert len(set(ids)) == 9


def test_follow_up_replies_in_thread_of_first_email(home):
    db, maildir = setup_account(home)
    now = at("2026-03-02T14:00:00Z")
    apply_yaml(db, CADENCE, now)
    enroll_all(db, "cadence", ["ann@a.test"], now)
    tick(db, now)
    tick(db, now + timedelta(days=2))
    first, second = (email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
                     for f in sorted(sent_files(maildir), key=lambda p: p.stat().st_mtime_ns))
    assert first["Subject"] == "Hello"
    assert second["Subject"] == "Re: Hello"
    assert second["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in second["References"]


def test_suppressed_contact_email_steps_are_skipped_and_tasks_still_fire(home):
    db, maildir = setup_account(home)
    now = at("2026-03-02T14:00:00Z")
    apply_yaml(db, CADENCE, now)
    exits.suppress(db, "ann@a.test", "manual", now)
    enroll_all(db, "cadence", ["ann@a.test"], now)
    counts = tick(db, now)
    assert counts.skipped_suppressed == 1 and counts.emails_sent == 0
    for day in range(1, 12):
        tick(db, now + timedelta(days=day))
    assert sent_files(maildir) == []
    kinds = [r[0] for r in db.execute("SELECT kind FROM tasks ORDER BY id")]
    assert kinds == ["call", "linkedin"]
    skipped = db.execute("SELECT detail_json FROM events WHERE kind = 'skipped'").fetchall()
    assert len(skipped) == 3 and all("suppressed" in d for (d,) in skipped)


def test_hourly_cap_defers_the_rest_to_next_hour_follow_ups_first(home):
    db, maildir = setup_account(home)
    db.execute("INSERT INTO settings (key, value) VALUES ('sequence_hourly_send_cap', '2')")
    now = at("2026-03-02T14:00:00Z")
    apply_yaml(db, CADENCE, now)
    enroll_all(db, "cadence", ["a@x.test", "b@x.test"], now)
    tick(db, now)
    tick(db, now + timedelta(hours=1))
    assert len(sent_files(maildir)) == 2
    # Wednesday: both follow-ups are due; three new contacts want their first touch
    wed = at("2026-03-04T14:00:00Z")
    enroll_all(db, "cadence", ["c@x.test", "d@x.test", "e@x.test"], wed)
    counts = tick(db, wed)
    assert counts.emails_sent == 2 and counts.deferred == 3
    sent = db.execute("SELECT is_follow_up FROM outbox WHERE status = 'sent' "
                      "AND sent_at = ?", [clock.iso(wed)]).fetchall()
    assert sent == [(1,), (1,)]
    counts = tick(db, wed + timedelta(minutes=30))
    assert counts.emails_sent == 0
    counts = tick(db, wed + timedelta(hours=1))
    assert counts.emails_sent == 2


def test_removed_inbox_fails_the_enrollment_with_a_plain_message(home, run):
    db, maildir = setup_account(home)
    now = at("2026-03-02T14:00:00Z")
    apply_yaml(db, CADENCE, now)
    enroll_all(db, "cadence", ["ann@a.test"], now)
    result = run("inbox", "remove", "rep@acme.test")
    assert result.code == 0, result.err
    counts = tick(db, now)
    assert counts.failed == 1
    code, out, err = run("enrollments", "list", "--json")
    row = __import__("json").loads(out)[0]
    assert row["status"] == "failed"
    assert "inbox" in row["failure_message"] and "seqctl" in row["failure_message"]
    assert run("resume", "--failed", "--inbox", "rep@acme.test").code == 1   # still removed
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", maildir).code == 0
    result = run("resume", "--failed", "--inbox", "rep@acme.test", "--json", now=clock.iso(now))
    assert result.code == 0 and result.json["resumed"] == 1
    counts = tick(db, now)
    assert counts.emails_sent == 1 and len(sent_files(maildir)) == 1


@pytest.mark.parametrize("weekday", ["2026-03-06T15:00:00Z"])
def test_friday_enrollment_with_two_business_days_fires_tuesday(home, weekday):
    db, maildir = setup_account(home)
    now = at(weekday)
    apply_yaml(db, """
        name: bd
        send_window_start_hour: 9
        send_window_end_hour: 17
        send_weekdays_only: true
        steps:
          - step_type: task
            delay_business_days: 2
            title: Research
    """, now)
    enroll_all(db, "bd", ["ann@a.test"], now)
    next_run = db.execute("SELECT next_run_at FROM enrollments").fetchone()[0]
    assert next_run == "2026-03-10T15:00:00Z"   # Tuesday, same time


def test_dispatcher_rechecks_exits_right_before_the_send(home):
    """A reply recorded between queueing and sending (its exit lost to a crash) still stops
    the queued email."""
    from seqctl.engine import events

    db, maildir = setup_account(home)
    now = at("2026-03-02T14:00:00Z")
    apply_yaml(db, CADENCE, now)
    enroll_all(db, "cadence", ["ann@a.test"], now)
    counts = tick(db, now, phase="engine")
    assert counts.emails_queued == 1
    enrollment_id = db.execute("SELECT id FROM enrollments").fetchone()[0]
    events.record(db, "reply", now, enrollment_id=enrollment_id)
    counts = tick(db, now, phase="dispatch")
    assert counts.emails_sent == 0 and counts.exited == 1
    assert sent_files(maildir) == []
    assert db.execute("SELECT status, exit_reason FROM enrollments").fetchone() == (
        "exited", "reply_received")
    assert db.execute("SELECT status FROM outbox").fetchone() == ("cancelled",)


def test_an_email_held_back_by_the_cap_shows_as_the_next_step_with_its_send_time(home):
    from seqctl.engine.enroll import enrollment_rows

    db, maildir = setup_account(home)
    db.execute("INSERT INTO settings (key, value) VALUES ('sequence_hourly_send_cap', '1')")
    now = at("2026-03-02T14:00:00Z")
    apply_yaml(db, CADENCE, now)
    enroll_all(db, "cadence", ["a@x.test", "b@x.test"], now)
    tick(db, now)
    first, second = enrollment_rows(db)
    assert (first["step"], first["next_run_at"]) == (2, "2026-03-04T14:00:00Z")
    assert (second["step"], second["next_run_at"]) == (1, "2026-03-02T15:00:00Z")
    tick(db, at("2026-03-02T15:00:00Z"))
    second = enrollment_rows(db)[1]
    assert (second["step"], second["next_run_at"]) == (2, "2026-03-04T15:00:00Z")


def test_an_email_moved_to_another_inbox_keeps_the_message_id_it_was_queued_with(home):
    """Reconciling a crashed send, reply matching and signed links all go by the stored
    Message-ID: the bytes sent must carry exactly that one."""
    from seqctl.engine import accounts, enroll
    from seqctl.providers.maildir import create_maildir

    db, first_dir = setup_account(home, address="rep@corp.test")
    other_dir = home / "other"
    create_maildir(other_dir)
    accounts.add_inbox(db, "maildir", "rep@other.test", {"dir": str(other_dir)})
    now = at("2026-03-02T14:00:00Z")
    apply_yaml(db, CADENCE, now)
    enroll_all(db, "cadence", ["ann@a.test"], now)
    tick(db, now, phase="engine")
    queued_id = db.execute("SELECT message_id FROM outbox").fetchone()[0]
    assert queued_id.endswith("@corp.test>") and not queued_id.startswith("<sq.1.")
    accounts.remove_inbox(db, "rep@corp.test", now)
    enrollment_id = db.execute("SELECT id FROM enrollments").fetchone()[0]
    assert enroll.resume(db, enrollment_id, now) == "active"
    tick(db, now, phase="dispatch")
    (sent,) = sent_files(other_dir)
    message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    assert message["Message-ID"] == queued_id
    assert message["From"].addresses[0].addr_spec == "rep@other.test"


def test_message_ids_never_repeat_across_databases_sharing_a_home(home, tmp_path):
    from seqctl import db as database
    from seqctl.engine import compose

    first = database.connect(tmp_path / "one.db")
    second = database.connect(tmp_path / "two.db")
    key = install_key()
    a = compose.message_id_for(first, 1, 1, "rep@acme.test", key=key)
    assert a == compose.message_id_for(first, 1, 1, "rep@acme.test", key=key)
    assert a != compose.message_id_for(second, 1, 1, "rep@acme.test", key=key)
    assert a != compose.message_id_for(first, 1, 2, "rep@acme.test", key=key)


class _FlakyMaildir:
    """The real maildir provider, whose first send answers 'try again in a moment'; `meanwhile`
    runs before that answer (a reply or an unsubscribe arriving during the retry wait)."""

    def __init__(self, inner, meanwhile):
        self.inner, self.meanwhile, self.calls = inner, meanwhile, 0
        self.kind, self.sent_lookup_lag = inner.kind, 0

    def send(self, raw, **kwargs):
        from seqctl.providers.base import TransientError

        self.calls += 1
        if self.calls == 1:
            self.meanwhile()
            raise TransientError("421 try again", retry_after=0.05)
        return self.inner.send(raw, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("event", ["unsubscribe", "reply"])
def test_an_exit_during_a_retry_wait_stops_the_resend(home, event):
    from seqctl import db as database
    from seqctl.engine import cycle, outcomes
    from seqctl.providers import registry

    db, maildir = setup_account(home)
    now = at("2026-03-02T14:00:00Z")
    apply_yaml(db, CADENCE, now)
    enroll_all(db, "cadence", ["ann@a.test"], now)
    contact = db.execute("SELECT id FROM contacts").fetchone()[0]

    def meanwhile():
        other = database.connect()
        if event == "unsubscribe":
            outcomes.on_unsubscribe(other, contact, now)
        else:
            outcomes.on_reply(other, contact, now)
        other.close()

    providers = []

    def factory(inbox):
        providers.append(_FlakyMaildir(registry.default_factory(inbox), meanwhile))
        return providers[-1]

    clock.set_now(now)
    try:
        counts = cycle.run(db, now, key=install_key(), factory=factory)
    finally:
        clock.set_now(None)
    assert sum(p.calls for p in providers) == 1, counts
    assert counts.emails_sent == 0
    assert sent_files(maildir) == []
    status = db.execute("SELECT status FROM outbox").fetchone()[0]
    assert status in ("cancelled", "skipped")
    tick(db, now + timedelta(days=3))
    assert sent_files(maildir) == []
