"""What a reply's intent does, and where the rep sees it (SPEC section 18): the referral
import and task, the not-now pause that resumes by itself, the wrong-person and
left-company tasks, `seqctl replies`, `log reply --intent`, `stats` and `compare --by
positive`."""

from __future__ import annotations

from datetime import date, timedelta

from seqctl.engine import outcomes
from seqctl.engine.intent import read_intent
from tests.helpers import apply_yaml, at, enroll_all, sent_files, setup_account, tick
from tests.test_sync_maildir import drop, first_sent_to, reply_to

MONDAY = at("2026-03-02T16:00:00Z")  # 10:00 in Chicago: step 1 goes out

SEQUENCE = """
    name: {name}
    timezone: America/Chicago
    send_window_start_hour: 9
    send_window_end_hour: 17
    {pause}
    steps:
      - step_type: email
        subject: "Hello {{{{first_name}}}}"
        body: "Short note."
      - step_type: email
        delay_business_days: 2
        body: "Bumping this."
      - step_type: email
        delay_business_days: 2
        body: "Last one."
"""


def sequence(name: str, pause: bool = False) -> str:
    return SEQUENCE.format(name=name, pause="pause_on_not_now: true" if pause else "")


def setup(home, *, pause: bool = False, emails=("dana@acme-robotics.com",), name="cold"):
    db, maildir = setup_account(home)
    apply_yaml(db, sequence(name, pause), MONDAY)
    enroll_all(db, name, list(emails), MONDAY)
    tick(db, MONDAY)
    return db, maildir


def contact_id(db, email: str) -> int:
    return db.execute("SELECT id FROM contacts WHERE email = ?", [email]).fetchone()[0]


def enrollment(db, email: str, sequence: str = "cold") -> tuple:
    return db.execute(
        "SELECT e.status, e.exit_reason, e.paused_until FROM enrollments e "
        "JOIN contacts c ON c.id = e.contact_id JOIN sequences s ON s.id = e.sequence_id "
        "WHERE c.email = ? AND s.name = ?", [email, sequence]).fetchone()


def tasks(db) -> list[tuple]:
    return db.execute(
        "SELECT t.title, c.email, t.status FROM tasks t JOIN contacts c ON c.id = t.contact_id "
        "WHERE t.step_id IS NULL ORDER BY t.id").fetchall()


def reply(db, email: str, text: str, when=MONDAY + timedelta(hours=2)):
    found = read_intent(text, when, sender=email)
    return outcomes.on_reply(db, contact_id(db, email), when, intent=found,
                             detail={"via": "sync"}), found


# -- actions -------------------------------------------------------------------------------


def test_referral_imports_the_referred_contact_not_enrolled_with_a_task(home):
    db, _ = setup(home)
    exited, found = reply(db, "dana@acme-robotics.com",
                          "Please talk to Jane Morales <jane.morales@acme-robotics.com>, she "
                          "owns this.")
    assert found.intent == "referral"
    assert enrollment(db, "dana@acme-robotics.com") == ("exited", "reply_received", None)
    assert len(exited) == 1
    jane = db.execute(
        "SELECT first_name, last_name, owner_email FROM contacts WHERE email = ?",
        ["jane.morales@acme-robotics.com"]).fetchone()
    assert jane == ("Jane", "Morales", "rep@acme.test")  # owner: the rep
    assert db.execute(
        "SELECT COUNT(*) FROM enrollments e JOIN contacts c ON c.id = e.contact_id "
        "WHERE c.email = 'jane.morales@acme-robotics.com'").fetchone()[0] == 0
    assert tasks(db) == [(
        "Reach out to Jane Morales jane.morales@acme-robotics.com (referred by "
        "dana@acme-robotics.com)", "jane.morales@acme-robotics.com", "open")]


def test_a_referral_to_an_existing_contact_changes_nothing_of_it(home):
    db, _ = setup(home, emails=("dana@acme-robotics.com", "sam@acme-robotics.com"))
    db.execute("UPDATE contacts SET first_name = 'Samuel' WHERE email = 'sam@acme-robotics.com'")
    reply(db, "dana@acme-robotics.com", "Looping in my colleague sam@acme-robotics.com.")
    assert db.execute("SELECT first_name FROM contacts WHERE email = 'sam@acme-robotics.com'"
                      ).fetchone() == ("Samuel",)
    assert enrollment(db, "sam@acme-robotics.com")[0] == "active"
    assert [t[1] for t in tasks(db)] == ["sam@acme-robotics.com"]


def test_wrong_person_and_left_company_create_a_find_the_right_contact_task(home):
    db, _ = setup(home, emails=("dana@acme-robotics.com", "chris@acme-robotics.com"))
    db.execute("UPDATE contacts SET company_name = 'Acme Robotics'")
    reply(db, "dana@acme-robotics.com", "I'm not the right person for this, sorry.")
    reply(db, "chris@acme-robotics.com", "I'm no longer with Acme Robotics.")
    assert tasks(db) == [
        ("Find the right contact at Acme Robotics (dana@acme-robotics.com: not the right "
         "person)", "dana@acme-robotics.com", "open"),
        ("Find the right contact at Acme Robotics (chris@acme-robotics.com: left the "
         "company)", "chris@acme-robotics.com", "open"),
    ]
    assert enrollment(db, "chris@acme-robotics.com")[:2] == ("exited", "reply_received")


def test_left_company_naming_a_successor_imports_the_successor(home):
    db, _ = setup(home)
    _, found = reply(db, "dana@acme-robotics.com",
                     "I have left Acme. Please contact mark.ortiz@acme-robotics.com.")
    assert found.intent == "left_company"
    assert [t[1] for t in tasks(db)] == ["mark.ortiz@acme-robotics.com"]


def test_not_now_with_pause_on_not_now_pauses_until_the_date_and_resumes_by_itself(home):
    db, maildir = setup(home, pause=True)
    exited, found = reply(db, "dana@acme-robotics.com", "Not now - reach out after March 15.")
    assert (found.intent, found.not_before) == ("not_now", date(2026, 3, 16))
    assert exited == []
    # the first open slot of the window on March 16 (Monday 09:00 Chicago = 14:00 UTC)
    assert enrollment(db, "dana@acme-robotics.com") == ("paused", None, "2026-03-16T14:00:00Z")
    day = MONDAY + timedelta(days=1)
    while day < at("2026-03-16T13:00:00Z"):
        tick(db, day)
        day += timedelta(hours=6)
    assert len(sent_files(maildir)) == 1  # nothing while paused
    tick(db, at("2026-03-16T14:00:00Z"))
    assert enrollment(db, "dana@acme-robotics.com")[0] == "active"
    tick(db, at("2026-03-16T14:05:00Z"))
    # the backstop does not take the kept reply for an exit: step 2 goes out
    assert enrollment(db, "dana@acme-robotics.com")[0] == "active"
    assert len(sent_files(maildir)) == 2


def test_not_now_without_the_sequence_key_or_without_a_date_exits_as_any_reply(home):
    db, _ = setup(home, emails=("dana@acme-robotics.com", "chris@acme-robotics.com"))
    reply(db, "dana@acme-robotics.com", "Not now - reach out after March 15.")
    assert enrollment(db, "dana@acme-robotics.com")[:2] == ("exited", "reply_received")
    db2 = db
    apply_yaml(db2, sequence("paused", True), MONDAY)
    enroll_all(db2, "paused", ["chris@acme-robotics.com"], MONDAY)
    reply(db2, "chris@acme-robotics.com", "Not right now, sorry.")
    assert enrollment(db2, "chris@acme-robotics.com", "paused")[:2] == ("exited",
                                                                        "reply_received")


def test_every_reply_still_exits_reply_received(home):
    db, _ = setup(home, emails=[f"c{n}@x{n}.test" for n in range(4)])
    texts = ["Sounds good, let's talk.", "Not interested.", "Who is this?", "Kein Interesse."]
    for n, text in enumerate(texts):
        reply(db, f"c{n}@x{n}.test", text)
    assert {enrollment(db, f"c{n}@x{n}.test")[1] for n in range(4)} == {"reply_received"}


# -- where the rep sees it -----------------------------------------------------------------


def test_replies_command_lists_with_filters_in_the_spec_shape(home, run):
    db, _ = setup(home, emails=("dana@acme-robotics.com", "chris@acme-robotics.com"))
    reply(db, "dana@acme-robotics.com", "Sounds great, send me a calendar invite.",
          MONDAY + timedelta(hours=1))
    reply(db, "chris@acme-robotics.com", "Please reach out in Q3.\n\nSent from my iPhone",
          MONDAY + timedelta(hours=3))
    result = run("replies", "--json")
    assert result.code == 0, result.err
    rows = result.json
    assert [r["email"] for r in rows] == ["chris@acme-robotics.com", "dana@acme-robotics.com"]
    assert set(rows[0]) >= {"email", "sequence", "step", "intent", "received_at", "snippet",
                            "referral_email", "not_before"}
    assert rows[0]["intent"] == "not_now"
    assert (rows[0]["sequence"], rows[0]["step"], rows[0]["not_before"]) == (
        "cold", 1, "2026-07-01")
    assert rows[0]["snippet"] == "Please reach out in Q3."
    assert rows[0]["received_at"] == "2026-03-02T19:00:00Z"
    positive = run("replies", "--intent", "positive", "--json").json
    assert [r["email"] for r in positive] == ["dana@acme-robotics.com"]
    since = run("replies", "--since", "2026-03-02T18:00:00Z", "--json").json
    assert [r["email"] for r in since] == ["chris@acme-robotics.com"]
    assert len(run("replies", "--since", "2026-03-02T20:00:00Z", "--json").json) == 0
    assert run("replies", "--sequence", "cold", "--json").json == rows
    text = run("replies")
    assert text.code == 0 and "not_now" in text.out and "2026-07-01" in text.out


def test_replies_bad_filters_are_one_line_and_exit_1_or_2(home, run):
    setup(home)
    code, out, err = run("replies", "--intent", "maybe")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "positive" in err
    code, _, err = run("replies", "--sequence", "nope")
    assert code == 1 and len(err.strip().splitlines()) == 1
    code, _, err = run("replies", "--since", "yesterday")
    assert code == 2 and "--since" in err


def test_log_reply_with_intent_acts_and_shows_in_log_list(home, run):
    db, _ = setup(home, pause=True)
    result = run("log", "reply", "dana@acme-robotics.com", "--intent", "not_now",
                 "--not-before", "2026-07-01", "--json", now="2026-03-02T18:00:00Z")
    assert result.code == 0, result.err
    assert result.json == {"email": "dana@acme-robotics.com", "event": "reply", "exited": [],
                           "intent": "not_now"}
    assert enrollment(db, "dana@acme-robotics.com")[0] == "paused"
    listed = run("log", "list", "--json").json
    assert [(r["event"], r["intent"]) for r in listed if r["event"] == "reply"] == [
        ("reply", "not_now")]
    row = run("replies", "--json").json[0]
    assert (row["intent"], row["not_before"]) == ("not_now", "2026-07-01")


def test_log_reply_referral_imports_and_creates_the_task(home, run):
    db, _ = setup(home)
    result = run("log", "reply", "dana@acme-robotics.com", "--intent", "referral",
                 "--referral", "Jane@Acme-Robotics.com", now="2026-03-02T18:00:00Z")
    assert result.code == 0, result.err
    assert [t[1] for t in tasks(db)] == ["jane@acme-robotics.com"]


def test_log_reply_rejects_a_bad_intent_before_writing_anything(home, run):
    db, _ = setup(home)
    for args in (["--intent", "maybe"], ["--not-before", "2026-07-01"],
                 ["--intent", "positive", "--not-before", "2026-07-01"],
                 ["--intent", "referral", "--referral", "not-an-address"]):
        code, out, err = run("log", "reply", "dana@acme-robotics.com", *args)
        assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, (args, err)
    code, _, err = run("log", "reply", "dana@acme-robotics.com", "--intent", "not_now",
                       "--not-before", "July")
    assert code == 2 and "--not-before" in err
    assert enrollment(db, "dana@acme-robotics.com")[0] == "active"
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'reply'").fetchone()[0] == 0


def test_stats_split_replies_by_intent_with_the_positive_reply_rate(home, run):
    db, _ = setup(home, emails=[f"c{n}@x{n}.test" for n in range(4)])
    reply(db, "c0@x0.test", "Sounds good, let's talk.")
    reply(db, "c1@x1.test", "Not interested.")
    reply(db, "c2@x2.test", "Yes please, book a call.")
    stats = run("stats", "cold", "--json").json
    assert stats["totals"]["replies"] == 3
    assert stats["totals"]["replies_by_intent"] == {
        "positive": 2, "not_interested": 1, "referral": 0, "not_now": 0, "wrong_person": 0,
        "left_company": 0, "unknown": 0}
    assert stats["totals"]["positive_replies"] == 2
    assert stats["totals"]["positive_reply_rate"] == 0.5
    assert stats["steps"][0]["positive_replies"] == 2
    out = run("stats", "cold").out
    assert "replies by intent: positive 2, not_interested 1; positive-reply rate 50.0%" in out


def test_the_latest_reply_decides_an_enrollments_intent(home, run):
    db, _ = setup(home, pause=True)
    reply(db, "dana@acme-robotics.com", "Not now, after March 15 please.")
    reply(db, "dana@acme-robotics.com", "OK, sounds good - let's talk.",
          at("2026-03-17T15:00:00Z"))
    totals = run("stats", "cold", "--json").json["totals"]
    assert totals["replies"] == 1 and totals["positive_replies"] == 1


def test_compare_by_positive_ranks_by_positive_reply_rate(home, run):
    db, _ = setup(home, emails=[f"a{n}@a{n}.test" for n in range(3)], name="alpha")
    apply_yaml(db, sequence("beta"), MONDAY)
    enroll_all(db, "beta", [f"b{n}@b{n}.test" for n in range(3)], MONDAY)
    tick(db, MONDAY + timedelta(minutes=1))
    for n in range(3):  # alpha: three replies, all refusals
        reply(db, f"a{n}@a{n}.test", "Not interested, thanks.")
    reply(db, "b0@b0.test", "Sounds great, let's talk.")  # beta: one reply, positive
    by_reply = run("compare", "alpha", "beta", "--json").json
    assert [r["sequence"] for r in by_reply["ranking"]] == ["alpha", "beta"]
    by_positive = run("compare", "alpha", "beta", "--by", "positive", "--json").json
    assert by_positive["by"] == "positive"
    assert [(r["sequence"], r["positive_replies"], r["positive_reply_rate"])
            for r in by_positive["ranking"]] == [("beta", 1, 0.3333), ("alpha", 0, 0.0)]
    assert by_positive["verdict"].startswith("not enough data yet")
    text = run("compare", "alpha", "beta", "--by", "positive")
    assert text.code == 0 and "positive_reply_rate" in text.out
    code, _, err = run("compare", "alpha", "beta", "--by", "opens")
    assert code == 1 and len(err.strip().splitlines()) == 1


# -- through sync ----------------------------------------------------------------------------


def test_a_synced_referral_reply_is_read_from_its_new_text_and_acted_on(home, run):
    db, maildir = setup(home, emails=("dana@acme-robotics.com",))
    original = first_sent_to(maildir, "dana@acme-robotics.com")
    body = (
        "Hi Riley,\n\nI'm not the one for this - please talk to Priya Shah "
        "<priya.shah@acme-robotics.com>, she runs RevOps.\n\nBest,\nDana\n\nSent from my iPhone"
        "\n\nOn Mon, Mar 2, 2026 at 10:00 AM Riley Rep <rep@acme.test> wrote:\n"
        "> Sounds good? Would you be interested in a call next week?\n"
    )
    drop(maildir, reply_to(original, "Dana <dana@acme-robotics.com>", body))
    tick(db, MONDAY + timedelta(minutes=5))
    assert enrollment(db, "dana@acme-robotics.com")[:2] == ("exited", "reply_received")
    row = run("replies", "--json").json[0]
    assert (row["intent"], row["referral_email"], row["step"]) == (
        "referral", "priya.shah@acme-robotics.com", 1)
    assert "Sent from" not in row["snippet"] and "wrote" not in row["snippet"]
    assert tasks(db) == [("Reach out to Priya Shah priya.shah@acme-robotics.com (referred by "
                          "dana@acme-robotics.com)", "priya.shah@acme-robotics.com", "open")]


def test_a_synced_html_only_not_now_reply_pauses_with_pause_on_not_now(home):
    db, maildir = setup(home, pause=True)
    original = first_sent_to(maildir, "dana@acme-robotics.com")
    message = reply_to(original, "dana@acme-robotics.com")
    message.set_content(
        "<div>Bitte melden Sie sich nach Ostern wieder.</div><div class=\"gmail_quote\">"
        "Am Mo., 2. März 2026 schrieb Riley: Klingt gut? Gerne Termin?</div>", subtype="html")
    drop(maildir, message)
    tick(db, MONDAY + timedelta(minutes=5))
    # Easter 2026 is 5 April: from Tuesday 7 April, 09:00 in Chicago
    assert enrollment(db, "dana@acme-robotics.com") == ("paused", None, "2026-04-07T14:00:00Z")


def test_a_referral_to_a_suppressed_address_imports_nothing_and_makes_no_task(home):
    db, _ = setup(home)
    db.execute("INSERT INTO suppressions (email, reason, created_at) VALUES "
               "('jane@acme-robotics.com', 'unsubscribed', '2026-01-01T00:00:00Z')")
    reply(db, "dana@acme-robotics.com", "Please contact jane@acme-robotics.com instead.")
    assert tasks(db) == []
    assert db.execute("SELECT COUNT(*) FROM contacts WHERE email = 'jane@acme-robotics.com'"
                      ).fetchone()[0] == 0


def test_erasing_a_referred_person_scrubs_them_from_the_referrers_reply(home, run):
    """`contacts delete` of someone a reply named: their address and name leave the
    referrer's reply event, its stored inbound record and the task; the referrer's reply, its
    intent and the counts stay."""
    import sqlite3

    db, maildir = setup(home, emails=("dana@acme-robotics.com",))
    original = first_sent_to(maildir, "dana@acme-robotics.com")
    drop(maildir, reply_to(original, "Dana <dana@acme-robotics.com>",
                           "Please talk to Priya Shah <priya.shah@acme-robotics.com>, she runs "
                           "RevOps.\n\nDana"))
    tick(db, MONDAY + timedelta(minutes=5))
    assert run("replies", "--json").json[0]["referral_email"] == "priya.shah@acme-robotics.com"
    assert run("contacts", "delete", "priya.shah@acme-robotics.com").code == 0
    dump = "\n".join(sqlite3.connect(home / "seqctl.db").iterdump())
    assert "priya.shah@acme-robotics.com" not in dump.lower()
    assert "Priya Shah" not in dump
    row = run("replies", "--json").json[0]
    assert (row["email"], row["intent"]) == ("dana@acme-robotics.com", "referral")
    assert row["referral_email"] == "[erased]"
    assert "dana@acme-robotics.com" in dump                  # the referrer's own data stays
    totals = run("stats", "cold", "--json").json["totals"]
    assert (totals["replies"], totals["replies_by_intent"]["referral"]) == (1, 1)
