"""Sync end to end on the maildir inbox: mail dropped into DIR/inbox/new ends (or pauses) the
enrollment on the next sync tick, with a simulated clock, and nothing more goes out."""

from __future__ import annotations

import json
from datetime import date, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from seqctl import settings
from seqctl.engine import cycle, exits, inbox_health, outcomes, plan, sync
from tests.helpers import apply_yaml, at, enroll_all, sent_files, setup_account, tick

REP = "rep@acme.test"

CADENCE = """
    name: {name}
    timezone: America/New_York
    send_window_start_hour: 9
    send_window_end_hour: 17
    send_weekdays_only: true
    exit_on_booking: {booking}
    exit_on_company_reply: {company}
    steps:
      - id: intro
        step_type: email
        subject: "Hello {{{{first_name}}}}"
        body: "Hi {{{{first_name}}}}, short note."
      - id: bump
        step_type: email
        delay_business_days: 2
        body: "Bumping this up."
      - id: call
        step_type: call
        delay_business_days: 1
        title: "Call"
      - id: last
        step_type: email
        delay_business_days: 2
        subject: "Closing the loop"
        body: "Last note."
"""

MONDAY = at("2026-03-02T14:00:00Z")        # 09:00 in New York: the window opens


def cadence(db, name="cadence", *, booking=True, company=False, now=MONDAY):
    return apply_yaml(db, CADENCE.format(name=name, booking=str(booking).lower(),
                                         company=str(company).lower()), now)


def sent_messages(maildir: Path) -> list:
    files = sorted(sent_files(maildir), key=lambda p: p.stat().st_mtime_ns)
    return [message_from_bytes(f.read_bytes(), policy=default_policy) for f in files]


def first_sent_to(maildir: Path, address: str):
    return next(m for m in sent_messages(maildir) if m["To"].addresses[0].addr_spec == address)


_dropped = 0


def drop(maildir: Path, message: EmailMessage | bytes) -> Path:
    """Deliver a message into DIR/inbox/new, as a mail client or MTA would."""
    global _dropped
    _dropped += 1
    data = message if isinstance(message, bytes) else message.as_bytes()
    path = maildir / "inbox" / "new" / f"1772460000.M{_dropped:06d}P1.test"
    path.write_bytes(data)
    return path


def incoming(sender: str, to: str, subject: str, message_id: str, body: str,
             **headers: str) -> EmailMessage:
    """A message as it arrives; `headers` by name, `_` for `-` (List_Unsubscribe=...)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def reply_to(original, sender: str, body: str = "Sounds good, let's talk Tuesday.",
             subject: str | None = None, **headers: str) -> EmailMessage:
    return incoming(sender, original["From"],
                    subject if subject is not None else "Re: " + original["Subject"],
                    f"<r{_dropped + 1}.{sender.replace('@', '.')}@mail.test>", body,
                    In_Reply_To=original["Message-ID"], References=original["Message-ID"],
                    **headers)


def enrollment(db, address: str, sequence: str = "cadence") -> tuple:
    return db.execute(
        "SELECT e.status, e.exit_reason, e.paused_until FROM enrollments e "
        "JOIN contacts c ON c.id = e.contact_id JOIN sequences s ON s.id = e.sequence_id "
        "WHERE c.email = ? AND s.name = ?", [address, sequence]).fetchone()


def tick_days(db, start, days: int) -> None:
    """One tick per business-hours quarter hour for `days` days (enough for every step)."""
    now = start
    while now < start + timedelta(days=days):
        tick(db, now)
        now += timedelta(minutes=15)


def test_reply_in_thread_exits_reply_received_and_nothing_more_is_sent(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    assert len(sent_files(maildir)) == 1
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "Ann <ann@a.test>"))
    counts = tick(db, MONDAY + timedelta(minutes=5))
    assert counts.synced == 1 and counts.exited == 1
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "reply_received")
    tick_days(db, MONDAY + timedelta(minutes=10), 10)
    assert len(sent_files(maildir)) == 1
    assert db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 0
    reply = db.execute("SELECT kind, at, outbox_id FROM events WHERE kind = 'reply'").fetchall()
    # dated when it was read (the file's mtime is ahead of the simulated clock), and credited
    # to the email it answers
    assert reply == [("reply", "2026-03-02T14:05:00Z", 1)]


def test_sync_runs_on_sync_schedule_minutes_only(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test"))
    assert not cycle.sync_due(db, MONDAY + timedelta(minutes=3))
    assert tick(db, MONDAY + timedelta(minutes=3)).synced == 0
    assert enrollment(db, "ann@a.test")[0] == "active"
    assert tick(db, MONDAY + timedelta(minutes=5)).synced == 1
    assert enrollment(db, "ann@a.test")[0] == "exited"


def test_custom_sync_schedule_is_honoured(home):
    db, maildir = setup_account(home)
    db.execute("INSERT INTO settings (key, value) VALUES ('sync_schedule', '7 * * * *')")
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test"))
    assert tick(db, MONDAY + timedelta(minutes=5)).synced == 0
    assert tick(db, MONDAY + timedelta(minutes=7)).synced == 1


def test_seqctl_sync_runs_now_whatever_the_schedule(home, run):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test"))
    result = run("sync", "--json", now="2026-03-02T14:03:00Z")
    assert result.code == 0, result.err
    assert result.json == {"synced": 1}
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "reply_received")
    again = run("sync", REP, "--json", now="2026-03-02T14:04:00Z")
    assert again.json == {"synced": 0}
    missing = run("sync", "nobody@acme.test")
    assert missing.code == 1 and "no inbox nobody@acme.test" in missing.err


def test_reply_after_queue_before_dispatch_cancels_the_queued_email(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    wednesday = at("2026-03-04T14:00:00Z")
    counts = tick(db, wednesday, phase="engine")
    assert counts.emails_queued == 1
    queued = db.execute("SELECT id FROM outbox WHERE status = 'queued'").fetchone()[0]
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test"))
    counts = tick(db, wednesday + timedelta(minutes=5))      # sync, engine, dispatch
    assert counts.synced == 1 and counts.emails_sent == 0
    status, error = db.execute("SELECT status, error FROM outbox WHERE id = ?", [queued]).fetchone()
    assert status == "cancelled" and "reply_received" in error
    tick_days(db, wednesday + timedelta(minutes=10), 8)
    assert len(sent_files(maildir)) == 1


def test_out_of_office_pauses_until_the_return_date_then_sends_the_next_step(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    ooo = reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test",
                   subject="Automatic reply: Hello",
                   body="I am out of the office until Thursday, March 12, 2026 with limited "
                        "access to email.",
                   Auto_Submitted="auto-replied")
    drop(maildir, ooo)
    tick(db, MONDAY + timedelta(minutes=5))
    status, reason, paused_until = enrollment(db, "ann@a.test")
    # the first open slot of the return date: 09:00 in New York (EDT from March 8)
    assert (status, reason, paused_until) == ("paused", None, "2026-03-12T13:00:00Z")
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'reply'").fetchone()[0] == 0
    tick_days(db, MONDAY + timedelta(minutes=15), 9)          # the bump was due Wednesday
    assert len(sent_files(maildir)) == 1
    tick(db, at("2026-03-12T12:59:00Z"))
    assert len(sent_files(maildir)) == 1
    counts = tick(db, at("2026-03-12T13:00:00Z"))
    assert counts.emails_sent == 1
    assert enrollment(db, "ann@a.test")[0] == "active"
    assert sent_messages(maildir)[-1]["Subject"] == "Re: Hello"


def test_out_of_office_without_a_return_date_pauses_seven_days(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test",
                           subject="Out of Office", body="I am away with no access to email.",
                           X_Autoreply="yes"))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[2] == "2026-03-09T14:05:00Z"
    tick(db, at("2026-03-09T14:00:00Z"))
    assert len(sent_files(maildir)) == 1
    assert tick(db, at("2026-03-09T14:05:00Z")).emails_sent == 1


def test_auto_reply_resume_time_rules(home):
    db, _ = setup_account(home)
    cadence(db)
    sequence_id = db.execute("SELECT id FROM sequences WHERE name = 'cadence'").fetchone()[0]
    the_plan = plan.load(db, sequence_id)
    friday_evening = at("2026-03-06T23:30:00Z")            # 18:30 in New York
    resume = outcomes.auto_reply_resume_at
    # back on Saturday: the next open slot is Monday 09:00 (EDT)
    assert resume(date(2026, 3, 7), friday_evening, the_plan, None) == at("2026-03-09T13:00:00Z")
    # no date: 7 days, then into the window (Friday 18:30 -> the next Monday 09:00)
    assert resume(None, friday_evening, the_plan, None) == at("2026-03-16T13:00:00Z")
    # more than 60 days away, or already past: 7 days
    assert resume(date(2026, 6, 1), friday_evening, the_plan, None) == at("2026-03-16T13:00:00Z")
    assert resume(date(2026, 3, 1), friday_evening, the_plan, None) == at("2026-03-16T13:00:00Z")
    # back today: the next open slot from now
    tuesday_noon = at("2026-03-10T16:00:00Z")
    assert resume(date(2026, 3, 10), tuesday_noon, the_plan, None) == tuesday_noon


def test_auto_reply_does_not_override_a_pause_by_the_rep(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    db.execute("UPDATE enrollments SET status = 'paused'")
    contact_id = db.execute("SELECT id FROM contacts").fetchone()[0]
    assert outcomes.on_auto_reply(db, contact_id, MONDAY, return_date=date(2026, 3, 5)) == []
    assert enrollment(db, "ann@a.test") == ("paused", None, None)


def dsn(original, failed: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    return f"""From: MAILER-DAEMON@mx.a.test (Mail Delivery System)
To: {REP}
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn.{failed}.{status}@mx.a.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain

Your message could not be delivered to {failed}.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.a.test

Final-Recipient: rfc822; {failed}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} user unknown

--BOUNDARY
Content-Type: text/rfc822-headers

From: {original['From']}
To: {failed}
Subject: {original['Subject']}
Message-ID: {original['Message-ID']}

--BOUNDARY--
""".replace("\n", "\r\n").encode()


def test_hard_bounce_exits_bounced_and_suppresses(home):
    db, maildir = setup_account(home)
    cadence(db)
    cadence(db, "other")
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    enroll_all(db, "other", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, dsn(first_sent_to(maildir, "ann@a.test"), "ann@a.test"))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "bounced")
    assert enrollment(db, "ann@a.test", "other")[:2] == ("exited", "bounced")
    assert exits.is_suppressed(db, "ann@a.test")
    assert db.execute("SELECT reason FROM suppressions").fetchone()[0] == "bounced"
    bounce = db.execute("SELECT outbox_id FROM events WHERE kind = 'bounce'").fetchone()
    first_id = first_sent_to(maildir, "ann@a.test")["Message-ID"]
    assert bounce[0] == db.execute("SELECT id FROM outbox WHERE message_id = ?",
                                   [first_id]).fetchone()[0]


def test_soft_bounce_is_recorded_only(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, dsn(first_sent_to(maildir, "ann@a.test"), "ann@a.test", "4.2.2", "delayed"))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[0] == "active"
    assert not exits.is_suppressed(db, "ann@a.test")
    assert db.execute("SELECT kind FROM events WHERE kind LIKE '%bounce'").fetchall() == [
        ("soft_bounce",)]


def test_unsubscribe_request_suppresses_and_exits_every_enrollment(home):
    db, maildir = setup_account(home)
    cadence(db)
    cadence(db, "other")
    enroll_all(db, "cadence", ["ann@a.test", "bob@b.test"], MONDAY)
    enroll_all(db, "other", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test",
                           body="Unsubscribe"))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "unsubscribed")
    assert enrollment(db, "ann@a.test", "other")[:2] == ("exited", "unsubscribed")
    assert enrollment(db, "bob@b.test")[0] == "active"
    assert db.execute("SELECT email, reason FROM suppressions").fetchall() == [
        ("ann@a.test", "unsubscribed")]


def test_mail_to_the_unsubscribe_address_unsubscribes(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, incoming("ann@a.test", "rep+unsubscribe@acme.test", "unsubscribe",
                           "<u1@a.test>", ""))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "unsubscribed")


def invite(organizer: str, attendees: list[str], method: str = "REQUEST") -> EmailMessage:
    message = incoming(organizer, REP, "Invitation: Intro call",
                       f"<invite.{len(attendees)}.{organizer}>", "You have been invited.")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"METHOD:{method}", "BEGIN:VEVENT",
             "UID:intro-1@a.test", "DTSTART:20260310T150000Z", "SUMMARY:Intro call",
             f"ORGANIZER;CN=Organizer:mailto:{organizer}"]
    lines += [f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{a}" for a in attendees]
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    message.add_attachment("\r\n".join(lines).encode(), maintype="text", subtype="calendar",
                           params={"method": method}, disposition="inline")
    return message


def test_meeting_invite_from_the_contact_exits_booking_where_exit_on_booking(home):
    db, maildir = setup_account(home)
    cadence(db)
    cadence(db, "nurture", booking=False)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    enroll_all(db, "nurture", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, invite("ann@a.test", [REP]))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "booking")
    assert enrollment(db, "ann@a.test", "nurture")[0] == "active"
    # our own address among the attendees is not a contact and books nobody
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'meeting'").fetchone()[0] == 1


def test_meeting_booked_through_a_scheduling_tool_names_the_contact_as_attendee(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test", "bob@b.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, invite(REP, ["ann@a.test", REP]).as_bytes().replace(
        f"From: {REP}".encode(), b"From: notifications@calendly.test"))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "booking")
    assert enrollment(db, "bob@b.test")[0] == "active"


def test_reply_from_another_address_in_our_thread_exits_and_is_remembered(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["dana@acme-robotics.test"], MONDAY)
    tick(db, MONDAY)
    original = first_sent_to(maildir, "dana@acme-robotics.test")
    drop(maildir, reply_to(original, "Dana W <d.whitfield@acmerobotics.test>"))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "dana@acme-robotics.test")[:2] == ("exited", "reply_received")
    assert db.execute("SELECT email FROM contact_aliases").fetchall() == [
        ("d.whitfield@acmerobotics.test",)]


def test_the_reps_own_mail_and_our_sent_copies_never_count_as_replies(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    original = first_sent_to(maildir, "ann@a.test")
    drop(maildir, reply_to(original, "Riley Rep <REP@Acme.test>", body="Note to self: call Ann"))
    drop(maildir, sent_files(maildir)[0].read_bytes())        # our sent copy, echoed back
    counts = tick(db, MONDAY + timedelta(minutes=5))
    assert counts.synced == 2
    assert enrollment(db, "ann@a.test")[0] == "active"
    verdicts = [r[0] for r in db.execute("SELECT verdict FROM inbound")]
    assert verdicts == ["ignored", "ignored"]
    tick(db, at("2026-03-04T14:00:00Z"))
    assert len(sent_files(maildir)) == 2


def test_company_reply_exits_colleagues_but_not_for_free_mail_domains(home):
    db, maildir = setup_account(home)
    cadence(db, company=True)
    cadence(db, "solo")                      # exit_on_company_reply off
    people = ["ann@bigco.test", "bob@bigco.test", "carl@gmail.com", "dan@gmail.com"]
    enroll_all(db, "cadence", people, MONDAY)
    enroll_all(db, "solo", ["eve@bigco.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, reply_to(first_sent_to(maildir, "ann@bigco.test"), "ann@bigco.test"))
    drop(maildir, reply_to(first_sent_to(maildir, "carl@gmail.com"), "carl@gmail.com"))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@bigco.test")[:2] == ("exited", "reply_received")
    assert enrollment(db, "bob@bigco.test")[:2] == ("exited", "company_replied")
    assert enrollment(db, "carl@gmail.com")[:2] == ("exited", "reply_received")
    assert enrollment(db, "dan@gmail.com")[0] == "active"
    assert enrollment(db, "eve@bigco.test", "solo")[0] == "active"


def test_hard_bounces_over_the_threshold_pause_the_inbox(home, run):
    db, maildir = setup_account(home)
    cadence(db)
    people = [f"p{i:02d}@corp{i:02d}.test" for i in range(20)]
    enroll_all(db, "cadence", people, MONDAY)
    assert tick(db, MONDAY).emails_sent == 20
    drop(maildir, dsn(first_sent_to(maildir, people[0]), people[0]))
    tick(db, MONDAY + timedelta(minutes=5))
    assert db.execute("SELECT status FROM inboxes").fetchone()[0] == "active"   # 1/20 = 5%
    drop(maildir, dsn(first_sent_to(maildir, people[1]), people[1]))
    tick(db, MONDAY + timedelta(minutes=10))                                     # 2/20 = 10%
    listed = run("inbox", "list", "--json").json[0]
    assert listed["status"] == "paused_bounces"
    assert "2 hard bounces in the last 20 sends" in listed["status_message"]
    wednesday = at("2026-03-04T14:00:00Z")
    counts = tick(db, wednesday)
    assert counts.emails_queued == 18 and counts.emails_sent == 0
    shown = run("tick", "--phase", "dispatch", now="2026-03-04T14:01:00Z")
    assert "paused" in shown.err
    assert len(sent_files(maildir)) == 20
    assert inbox_health.resume_inbox(db, REP, wednesday)
    assert db.execute("SELECT status, status_message FROM inboxes").fetchone() == ("active", None)
    assert tick(db, wednesday + timedelta(minutes=2)).emails_sent == 18
    # judged afresh after the resume: the old bounces do not pause it again
    tick(db, wednesday + timedelta(minutes=5))
    assert db.execute("SELECT status FROM inboxes").fetchone()[0] == "active"
    assert not inbox_health.resume_inbox(db, REP, wednesday)


def test_bounce_threshold_setting_is_read(home):
    db, maildir = setup_account(home)
    db.execute("INSERT INTO settings (key, value) VALUES ('bounce_pause_threshold', '0.2')")
    assert settings.get_float(db, "bounce_pause_threshold") == 0.2
    cadence(db)
    people = [f"p{i:02d}@corp{i:02d}.test" for i in range(20)]
    enroll_all(db, "cadence", people, MONDAY)
    tick(db, MONDAY)
    for person in people[:4]:
        drop(maildir, dsn(first_sent_to(maildir, person), person))
    tick(db, MONDAY + timedelta(minutes=5))
    assert db.execute("SELECT status FROM inboxes").fetchone()[0] == "active"   # 20% is not over


def test_a_message_read_twice_is_applied_once(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test"))
    sync.run_sync(db, MONDAY + timedelta(minutes=1))
    db.execute("UPDATE inboxes SET sync_cursor = NULL")     # as if the cursor was never stored
    (maildir / "inbox" / ".seqctl-created").touch()
    assert sync.run_sync(db, MONDAY + timedelta(minutes=2)) == 0
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'reply'").fetchone()[0] == 1


def test_arrival_time_stays_between_the_previous_sync_and_now():
    now, since = at("2026-03-02T14:05:00Z"), at("2026-03-02T14:00:00Z")
    assert sync.arrival_time(at("2026-11-27T00:00:00Z"), now, since) == now
    assert sync.arrival_time(at("2025-01-01T00:00:00Z"), now, since) == since
    inside = at("2026-03-02T14:02:00Z")
    assert sync.arrival_time(inside, now, since) == inside
    assert sync.arrival_time(None, now, since) == now


def test_inbound_rows_record_the_verdict(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    drop(maildir, incoming("someone@else.test", REP, "Hello", "<s1@else.test>", "hi"))
    drop(maildir, reply_to(first_sent_to(maildir, "ann@a.test"), "ann@a.test"))
    tick(db, MONDAY + timedelta(minutes=5))
    rows = db.execute("SELECT from_email, verdict, detail_json FROM inbound ORDER BY id").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("someone@else.test", "ignored"),
                                           ("ann@a.test", "reply")]
    assert json.loads(rows[1][2])["classified"] == "reply"


def test_inbox_resume_command_judges_the_bounce_rate_afresh(home, run):
    db, maildir = setup_account(home)
    cadence(db)
    people = [f"p{i:02d}@corp{i:02d}.test" for i in range(20)]
    enroll_all(db, "cadence", people, MONDAY)
    tick(db, MONDAY)
    for person in people[:3]:
        drop(maildir, dsn(first_sent_to(maildir, person), person))
    tick(db, MONDAY + timedelta(minutes=5))
    assert db.execute("SELECT status FROM inboxes").fetchone()[0] == "paused_bounces"
    resumed = run("inbox", "resume", REP, now="2026-03-02T14:06:00Z")
    assert resumed.code == 0, resumed.err
    tick(db, MONDAY + timedelta(minutes=10))          # a sync: the same bounces, no new sends
    assert db.execute("SELECT status FROM inboxes").fetchone()[0] == "active"


def _arf(original, recipient: str | None) -> bytes:
    """An RFC 5965 spam complaint about `original`, as a mailbox provider's feedback loop
    sends it (the recipient redacted when None)."""
    rcpt = f"Original-Rcpt-To: <{recipient}>\r\n" if recipient else ""
    return (
        "From: Feedback Loop <feedback@fbl.mailbox.example>\r\nTo: rep@acme.test\r\n"
        "Subject: FW: complaint\r\nMessage-ID: <arf.1@fbl.mailbox.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n{rcpt}\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
    ).encode() + original.as_bytes() + b"\r\n--b--\r\n"


def test_a_spam_complaint_suppresses_and_exits_unsubscribed(home):
    db, maildir = setup_account(home)
    cadence(db)
    cadence(db, "other")
    enroll_all(db, "cadence", ["ann@a.test", "bob@b.test"], MONDAY)
    enroll_all(db, "other", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    to_ann = sum(m["To"].addresses[0].addr_spec == "ann@a.test" for m in sent_messages(maildir))
    drop(maildir, _arf(first_sent_to(maildir, "ann@a.test"), None))   # recipient redacted
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "unsubscribed")
    assert enrollment(db, "ann@a.test", "other")[:2] == ("exited", "unsubscribed")
    assert enrollment(db, "bob@b.test")[0] == "active"
    assert db.execute("SELECT email, reason FROM suppressions").fetchall() == [
        ("ann@a.test", "spam_complaint")]
    assert db.execute("SELECT verdict FROM inbound").fetchall() == [("spam_complaint",)]
    tick_days(db, MONDAY + timedelta(minutes=10), 10)
    assert sum(m["To"].addresses[0].addr_spec == "ann@a.test"
               for m in sent_messages(maildir)) == to_ann
    assert len(sent_messages(maildir)) > to_ann + 1          # bob's follow-ups went out


def test_a_non_dsn_notice_in_our_thread_is_a_bounce_never_a_reply(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    original = first_sent_to(maildir, "ann@a.test")
    notice = reply_to(original, "imss@gw.a.test",
                      "The message could not be delivered to ann@a.test.\n"
                      "550 5.1.1 <ann@a.test>: Recipient address rejected: User unknown",
                      subject="Mail could not be delivered")
    drop(maildir, notice)
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "ann@a.test")[:2] == ("exited", "bounced")
    assert db.execute("SELECT reason FROM suppressions").fetchone()[0] == "bounced"
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'reply'").fetchone()[0] == 0


def test_the_contacts_newsletter_never_pauses_under_pause_on_auto_reply(home):
    db, maildir = setup_account(home)
    cadence(db)
    enroll_all(db, "cadence", ["dana@acme-robotics.test"], MONDAY)
    tick(db, MONDAY)
    newsletter = incoming(
        "Dana Whitfield <dana@acme-robotics.test>", REP, "Dana's robotics digest #12",
        "<digest.12@list-manage.example>",
        "Out of office hours are changing: we are back March 30.",
        List_Unsubscribe="<https://list-manage.example/u/1>", Precedence="bulk",
        Auto_Submitted="auto-generated")
    drop(maildir, newsletter)
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "dana@acme-robotics.test") == ("active", None, None)
    assert db.execute("SELECT kind FROM events WHERE kind IN ('auto_reply', 'reply', 'paused')"
                      ).fetchall() == []
    inbound = db.execute("SELECT verdict, detail_json FROM inbound").fetchone()
    assert inbound[0] == "ignored" and "bulk mail" in json.loads(inbound[1])["reason"]
def test_a_reply_is_credited_to_the_email_it_answers_else_the_latest_before_it(home):
    db, maildir = setup_account(home)
    apply_yaml(db, CADENCE.format(name="keep", booking="true", company="false").replace(
        "exit_on_booking: true", "exit_on_booking: true\n    exit_on_reply: false"), MONDAY)
    enroll_all(db, "keep", ["ann@a.test", "bo@b.test"], MONDAY)
    tick(db, MONDAY)                                              # step 1: Monday
    wednesday = MONDAY + timedelta(days=2)
    tick(db, wednesday)                                           # step 2: Wednesday
    assert len(sent_files(maildir)) == 4
    # Ann answers step 1's email (In-Reply-To) after step 2 went out
    first = next(m for m in sent_messages(maildir)
                 if m["To"].addresses[0].addr_spec == "ann@a.test" and "Hello" in m["Subject"])
    drop(maildir, reply_to(first, "Ann <ann@a.test>"))
    sync.run_sync(db, wednesday + timedelta(minutes=5))
    # Bo's reply, logged by hand, happened on Tuesday: before step 2 was sent
    outcomes.log_outcome(db, "bo@b.test", "reply", MONDAY + timedelta(days=1))
    credited = dict(db.execute(
        "SELECT c.email, st.step_key FROM events e JOIN contacts c ON c.id = e.contact_id "
        "JOIN steps st ON st.id = e.step_id WHERE e.kind = 'reply'").fetchall())
    assert credited == {"ann@a.test": "intro", "bo@b.test": "intro"}
