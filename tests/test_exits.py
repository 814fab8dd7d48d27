"""Exits that do not come from the inbox: manual logging, stage and deal changes, suppressions,
the tick's backstop, and the cap on active sequences per contact."""

from __future__ import annotations

from datetime import timedelta

from seqctl.engine import events, exits
from tests.helpers import apply_yaml, at, enroll_all, sent_files, setup_account, tick

MONDAY = at("2026-03-02T14:00:00Z")
NOW = "2026-03-02T15:00:00Z"

SEQUENCE = """
    name: {name}
    exit_on_stage_change: {stage}
    exit_on_booking: {booking}
    steps:
      - step_type: email
        subject: "Hello {{{{first_name}}}}"
        body: "Short note."
      - step_type: call
        delay_business_days: 1
        title: Call
      - step_type: email
        delay_business_days: 2
        body: "Bumping this."
"""


def sequence(db, name: str, *, stage: bool = False, booking: bool = True) -> None:
    apply_yaml(db, SEQUENCE.format(name=name, stage=str(stage).lower(),
                                   booking=str(booking).lower()), MONDAY)


def status(db, email: str, name: str) -> tuple:
    return db.execute(
        "SELECT e.status, e.exit_reason FROM enrollments e JOIN contacts c ON c.id = e.contact_id"
        " JOIN sequences s ON s.id = e.sequence_id WHERE c.email = ? AND s.name = ?",
        [email, name]).fetchone()


def two_sequences(home, emails=("ann@a.test",)):
    db, maildir = setup_account(home)
    sequence(db, "cold", stage=True)
    sequence(db, "warm", stage=False, booking=False)
    enroll_all(db, "cold", list(emails), MONDAY)
    enroll_all(db, "warm", list(emails), MONDAY)
    tick(db, MONDAY)
    return db, maildir


# -- manual logging --------------------------------------------------------------------------


def test_log_reply_exits_in_the_same_command(home, run):
    db, maildir = two_sequences(home)
    result = run("log", "reply", "ann@a.test", "--json", now=NOW)
    assert result.code == 0, result.err
    assert result.json == {"email": "ann@a.test", "event": "reply", "exited": [1, 2],
                           "intent": "unknown"}
    assert status(db, "ann@a.test", "cold") == ("exited", "reply_received")
    assert status(db, "ann@a.test", "warm") == ("exited", "reply_received")
    listed = run("enrollments", "list", "--json").json
    assert {r["exit_reason"] for r in listed} == {"reply_received"}
    tick(db, at("2026-03-10T14:00:00Z"))
    assert len(sent_files(maildir)) == 2        # the two first emails, nothing after


def test_log_reply_at_a_time_and_credited_to_a_sequence(home, run):
    db, _ = two_sequences(home)
    result = run("log", "reply", "ANN@a.test", "--at", "2026-03-02T14:30:00Z",
                 "--sequence", "warm", now=NOW)
    assert result.code == 0, result.err
    assert "2 enrollments exited" in result.err
    row = db.execute("SELECT at, enrollment_id, detail_json FROM events WHERE kind = 'reply'"
                     ).fetchone()
    assert row[0] == "2026-03-02T14:30:00Z" and row[1] == 2 and '"manual"' in row[2]
    shown = run("log", "--json").json
    assert [(r["event"], r["email"], r["sequence"], r["via"]) for r in shown] == [
        ("reply", "ann@a.test", "warm", "manual")]


def test_log_meeting_exits_booking_only_where_exit_on_booking(home, run):
    db, _ = two_sequences(home)
    result = run("log", "meeting", "ann@a.test", "--json", now=NOW)
    assert result.json["exited"] == [1]
    assert status(db, "ann@a.test", "cold") == ("exited", "booking")
    assert status(db, "ann@a.test", "warm") == ("active", None)


def test_log_bounce_hard_suppresses_and_soft_only_records(home, run):
    db, _ = two_sequences(home, ("ann@a.test", "bob@b.test"))
    soft = run("log", "bounce", "bob@b.test", "--soft", "--json", now=NOW)
    assert soft.json == {"email": "bob@b.test", "event": "soft_bounce", "exited": []}
    assert status(db, "bob@b.test", "cold") == ("active", None)
    hard = run("log", "bounce", "ann@a.test", "--json", now=NOW)
    assert sorted(hard.json["exited"]) == [1, 3]
    assert status(db, "ann@a.test", "warm") == ("exited", "bounced")
    assert run("suppress", "list", "--json").json == [
        {"email": "ann@a.test", "reason": "bounced", "created_at": NOW}]


def test_log_for_an_unknown_contact_is_one_line_and_exit_1(home, run):
    setup_account(home)
    result = run("log", "reply", "nobody@x.test")
    assert result.code == 1
    assert result.err.strip().count("\n") == 0 and "no contact nobody@x.test" in result.err
    bad_time = run("log", "reply", "nobody@x.test", "--at", "yesterday")
    assert bad_time.code == 2 and "ISO 8601" in bad_time.err      # a malformed option value


# -- stage and deal changes ------------------------------------------------------------------


def test_contacts_set_stage_exits_only_where_exit_on_stage_change(home, run):
    db, _ = two_sequences(home)
    result = run("contacts", "set-stage", "ann@a.test", "opportunity", now=NOW)
    assert result.code == 0, result.err
    assert status(db, "ann@a.test", "cold") == ("exited", "stage_changed")
    assert status(db, "ann@a.test", "warm") == ("active", None)


def test_deals_set_stage_exits_the_deals_contacts_where_exit_on_stage_change(home, run):
    db, _ = two_sequences(home, ("ann@a.test", "bob@b.test", "cy@c.test"))
    assert run("deals", "add", "Acme renewal", "--stage", "discovery",
               "--contact", "ann@a.test").code == 0
    linked = run("deals", "link", "Acme renewal", "bob@b.test", "ann@a.test")
    assert linked.code == 0 and "1 contact linked" in linked.err
    same = run("deals", "set-stage", "Acme renewal", "discovery", "--json", now=NOW)
    assert same.json["exited"] == []
    moved = run("deals", "set-stage", "Acme renewal", "negotiation", "--json", now=NOW)
    assert moved.code == 0, moved.err
    assert moved.json["previous_stage"] == "discovery" and len(moved.json["exited"]) == 2
    assert status(db, "ann@a.test", "cold") == ("exited", "stage_changed")
    assert status(db, "bob@b.test", "cold") == ("exited", "stage_changed")
    assert status(db, "ann@a.test", "warm") == ("active", None)
    assert status(db, "cy@c.test", "cold") == ("active", None)
    (deal,) = run("deals", "--json").json
    assert (deal["name"], deal["stage"], deal["contacts"], deal["updated_at"]) == (
        "Acme renewal", "negotiation", ["ann@a.test", "bob@b.test"], "2026-03-02T15:00:00Z")


def test_deals_errors_are_one_line(home, run):
    setup_account(home)
    assert run("deals", "add", "X", "--contact", "ghost@x.test").code == 1
    assert run("deals", "list", "--json").json == []
    assert run("deals", "add", "X").code == 0
    duplicate = run("deals", "add", "X")
    assert duplicate.code == 1 and "exists" in duplicate.err
    missing = run("deals", "set-stage", "Nope", "won")
    assert missing.code == 1 and "no deal 'Nope'" in missing.err


# -- suppressions ----------------------------------------------------------------------------


def test_manual_suppression_skips_emails_but_keeps_the_enrollment(home, run):
    db, maildir = setup_account(home)
    sequence(db, "cold")
    enroll_all(db, "cold", ["ann@a.test"], MONDAY)
    result = run("suppress", "add", "Ann@A.test", "--json", now="2026-03-02T13:00:00Z")
    assert result.json == {"added": ["ann@a.test"], "already_suppressed": [], "exited": []}
    for day in range(0, 6):
        tick(db, MONDAY + timedelta(days=day))
    assert sent_files(maildir) == []
    assert [r[0] for r in db.execute("SELECT kind FROM tasks")] == ["call"]
    assert status(db, "ann@a.test", "cold") == ("exited", "completed")
    skipped = db.execute("SELECT error FROM outbox").fetchall()
    assert skipped == [("suppressed",), ("suppressed",)]


def test_suppress_with_reason_unsubscribed_exits_like_the_real_event(home, run):
    db, _ = two_sequences(home, ("ann@a.test", "bob@b.test"))
    result = run("suppress", "add", "ann@a.test", "--reason", "unsubscribed", "--json", now=NOW)
    assert sorted(result.json["exited"]) == [1, 3]
    assert status(db, "ann@a.test", "warm") == ("exited", "unsubscribed")
    assert status(db, "bob@b.test", "warm") == ("active", None)


def test_suppress_list_remove_and_reason_upgrade(home, run):
    db, _ = setup_account(home)
    assert run("suppress", "add", "a@x.test", "b@x.test", now="2026-03-01T00:00:00Z").code == 0
    again = run("suppress", "add", "a@x.test", "--reason", "bounced", "--json")
    assert again.json["already_suppressed"] == ["a@x.test"]
    listed = run("suppress", "--json").json
    assert sorted((r["email"], r["reason"], r["created_at"]) for r in listed) == [
        ("a@x.test", "bounced", "2026-03-01T00:00:00Z"),
        ("b@x.test", "manual", "2026-03-01T00:00:00Z")]
    assert run("suppress", "remove", "B@x.test").code == 0
    assert [r["email"] for r in run("suppress", "list", "--json").json] == ["a@x.test"]
    missing = run("suppress", "remove", "b@x.test")
    assert missing.code == 1 and "not suppressed" in missing.err
    invalid = run("suppress", "add", "ok@x.test", "not-an-address")
    assert invalid.code == 1 and "not-an-address" in invalid.err
    assert not exits.is_suppressed(db, "ok@x.test")        # all or nothing


# -- the tick's backstop ---------------------------------------------------------------------


def test_backstop_exits_when_an_outcome_was_recorded_without_its_exit(home):
    db, maildir = setup_account(home)
    sequence(db, "cold")
    enroll_all(db, "cold", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    contact_id = db.execute("SELECT id FROM contacts").fetchone()[0]
    # a crash between recording the reply and exiting the enrollment
    events.record(db, "reply", MONDAY + timedelta(hours=1), enrollment_id=1,
                  contact_id=contact_id)
    assert status(db, "ann@a.test", "cold") == ("active", None)
    counts = tick(db, at("2026-03-03T14:00:00Z"))         # the call step is due
    assert counts.exited == 1 and counts.tasks_created == 0
    assert status(db, "ann@a.test", "cold") == ("exited", "reply_received")
    detail = db.execute("SELECT detail_json FROM events WHERE kind = 'exit'").fetchone()[0]
    assert '"backstop"' in detail


def test_backstop_respects_the_sequence_flags(home):
    db, maildir = setup_account(home)
    sequence(db, "warm", booking=False)
    enroll_all(db, "warm", ["ann@a.test"], MONDAY)
    tick(db, MONDAY)
    events.record(db, "meeting", MONDAY + timedelta(hours=1), enrollment_id=1, contact_id=1)
    events.record(db, "stage_changed", MONDAY + timedelta(hours=1), contact_id=1)
    assert tick(db, at("2026-03-03T14:00:00Z")).tasks_created == 1
    assert status(db, "ann@a.test", "warm") == ("active", None)


def test_backstop_sees_a_lost_company_reply(home):
    db, maildir = setup_account(home)
    apply_yaml(db, SEQUENCE.format(name="cold", stage="false", booking="true")
               + "    exit_on_company_reply: true\n", MONDAY)
    enroll_all(db, "cold", ["ann@bigco.test", "bob@bigco.test"], MONDAY)
    tick(db, MONDAY)
    events.record(db, "reply", MONDAY + timedelta(hours=1), enrollment_id=1, contact_id=1)
    exits.exit_enrollment(db, 1, "reply_received", MONDAY + timedelta(hours=1))
    tick(db, at("2026-03-03T14:00:00Z"))
    assert status(db, "bob@bigco.test", "cold") == ("exited", "company_replied")


def test_an_outcome_before_enrollment_does_not_exit_a_later_enrollment(home):
    db, maildir = setup_account(home)
    sequence(db, "cold")
    enroll_all(db, "cold", ["ann@a.test"], MONDAY)
    events.record(db, "reply", MONDAY - timedelta(days=30), contact_id=1)
    tick(db, MONDAY)
    assert status(db, "ann@a.test", "cold") == ("active", None)
    assert len(sent_files(maildir)) == 1


# -- enrollment cap --------------------------------------------------------------------------


def test_enrolling_over_max_active_sequences_per_contact_fails_with_a_message(home, run):
    db, _ = setup_account(home)
    for name in ("one", "two", "three"):
        sequence(db, name)
    assert run("settings", "set", "max_active_sequences_per_contact", "2").code == 0
    assert run("enroll", "one", "ann@a.test").code == 0
    assert run("enroll", "two", "ann@a.test").code == 0
    result = run("enroll", "three", "ann@a.test", "bob@b.test", "--json")
    assert result.code == 1
    summary = result.json
    assert (summary["enrolled"], summary["failed"]) == (1, 1)
    failed = next(r for r in summary["results"] if r["email"] == "ann@a.test")
    assert failed["status"] == "failed" and "max_active_sequences_per_contact" in failed["message"]
    # an exited enrollment no longer counts
    assert run("unenroll", "one", "ann@a.test").code == 0
    assert run("enroll", "three", "ann@a.test").code == 0
