"""`--spacing MIN-MAX`: after each send an inbox waits a random gap in the range before its
next one; waiting emails stay queued in order and no tick sleeps for them (SPEC 9)."""

from __future__ import annotations

import email
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest

from seqctl.engine import accounts
from tests.helpers import apply_yaml, at, enroll_all, sent_files, setup_account, tick

T0 = "2026-03-02T14:01:00Z"         # minute 1: no sync phase

SEQUENCE = """
    name: paced
    steps:
      - id: first
        step_type: email
        subject: "Hello {{first_name}}"
        body: "Hi {{first_name}}."
      - id: bump
        step_type: email
        delay_calendar_days: 2
        body: "Bumping this."
"""


def sent_dates(maildir) -> list:
    return sorted(parsedate_to_datetime(email.message_from_bytes(path.read_bytes())["Date"])
                  for path in sent_files(maildir))


def test_add_and_set_take_spacing_and_list_shows_it(run, home):
    maildir = home / "mail"
    added = run("inbox", "add", "maildir", "rep@acme.test", "--dir", maildir,
                "--spacing", "60-180", "--json")
    assert added.code == 0, added.err
    assert added.json["spacing"] == "60-180"
    listed = run("inbox", "list", "--json")
    assert listed.json[0]["spacing"] == "60-180"
    assert run("inbox", "set", "rep@acme.test", "--spacing", "90", "--json").json["spacing"] \
        == "90"
    assert run("inbox", "set", "rep@acme.test", "--spacing", "0", "--json").json["spacing"] \
        == "0"


@pytest.mark.parametrize("value", ["180-60", "-5", "a-b", "1-90000", ""])
def test_a_bad_spacing_is_refused_before_anything_is_written(run, home, value):
    maildir = home / "mail"
    result = run("inbox", "add", "maildir", "rep@acme.test", "--dir", maildir,
                 "--spacing", value)
    assert result.code == 2
    assert "--spacing" in result.err and "Traceback" not in result.err
    assert not maildir.exists()
    assert run("inbox", "list", "--json").json == []


def test_first_touches_go_one_per_gap_and_never_share_a_date_second(home):
    db, maildir = setup_account(home)
    inbox = accounts.inbox(db, "rep@acme.test")
    accounts.set_spacing(db, inbox["id"], (60, 180))
    apply_yaml(db, SEQUENCE, at(T0))
    enroll_all(db, "paced", [f"c{i}@buyer.test" for i in range(4)], at(T0))

    first = tick(db, at(T0))
    assert first.emails_sent == 1                     # the tick does not sleep for the rest
    assert tick(db, at(T0) + timedelta(seconds=59)).emails_sent == 0
    queued = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'queued'").fetchone()[0]
    assert queued == 3
    minute = 1
    while len(sent_files(maildir)) < 4 and minute < 30:
        tick(db, at(T0) + timedelta(minutes=minute))
        minute += 1
    dates = sent_dates(maildir)
    assert len(dates) == 4 and len(set(dates)) == 4
    gaps = [(b - a).total_seconds() for a, b in zip(dates, dates[1:], strict=False)]
    assert all(60 <= gap <= 240 for gap in gaps), gaps       # a gap, then the next tick
    order = [r[0] for r in db.execute(
        "SELECT to_email FROM outbox WHERE status = 'sent' ORDER BY sent_at, id")]
    assert order == [f"c{i}@buyer.test" for i in range(4)]    # in queue order


def test_follow_ups_still_go_before_first_touches(home):
    db, maildir = setup_account(home)
    accounts.set_spacing(db, accounts.inbox(db, "rep@acme.test")["id"], (120, 120))
    apply_yaml(db, SEQUENCE, at(T0))
    enroll_all(db, "paced", ["ann@buyer.test"], at(T0))
    assert tick(db, at(T0)).emails_sent == 1
    later = at(T0) + timedelta(days=2, minutes=1)
    enroll_all(db, "paced", ["bob@buyer.test", "cy@buyer.test"], later)
    assert tick(db, later).emails_sent == 1
    [sent] = db.execute("SELECT o.to_email, o.is_follow_up FROM outbox o WHERE o.sent_at = ?",
                        [later.strftime("%Y-%m-%dT%H:%M:%SZ")]).fetchall()
    assert sent == ("ann@buyer.test", 1)


def test_without_spacing_a_tick_sends_everything_due(home):
    db, maildir = setup_account(home)
    apply_yaml(db, SEQUENCE, at(T0))
    enroll_all(db, "paced", [f"c{i}@buyer.test" for i in range(4)], at(T0))
    assert tick(db, at(T0)).emails_sent == 4
