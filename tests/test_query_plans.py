"""Queries that grow with the window, not with history: every statement a busy tick and `stats`
run is checked with EXPLAIN QUERY PLAN, and none may read a whole table that grows with
history (outbox, events, enrollments, contacts, inbound). The hourly cap reads a range of the
`sent_at` index, and the sent counts of `stats` come from an index alone.

How fast they are at 1M rows is measured in benchmarks/bench_queries.py, not here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from seqctl.engine import analytics
from tests.helpers import apply_yaml, at, enroll_all, setup_account, tick

GROWING = ("outbox", "events", "enrollments", "contacts", "inbound", "tasks")

SEQUENCE = """
    name: plans
    steps:
      - step_type: email
        subject: "Hi {{first_name}}"
        body: "Hello"
        variant_b:
          subject: "Hey {{first_name}}"
          body: "Hello"
      - step_type: email
        delay_hours: 1
        body: "Following up"
"""


def statements(db, action: Callable[[], object]) -> list[str]:
    """The SELECTs (with their values bound) that `action` runs on db."""
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        db.conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def plan(db, sql: str) -> list[str]:
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]


def full_scans(db, sqls: list[str]) -> list[tuple[str, str]]:
    """(statement, plan line) for each plain scan of a growing table."""
    found = []
    for sql in sqls:
        for line in plan(db, sql):
            match = re.match(r"SCAN (\w+)(?: AS \w+)?(?! USING)", line)
            if match and match.group(1) in GROWING and "USING" not in line:
                found.append((sql, line))
    return found


def busy_history(home, sends: int = 30):
    """An inbox with sent emails, opens and a bounce in its history, and two emails due."""
    db, _ = setup_account(home)
    apply_yaml(db, SEQUENCE)
    start = at("2026-03-02T09:00:00Z")
    enroll_all(db, "plans", [f"p{i}@example.com" for i in range(sends)], start)
    tick(db, start)
    tick(db, start + timedelta(hours=2))
    enroll_all(db, "plans", ["late1@example.com", "late2@example.com"],
               start + timedelta(hours=3))
    return db, start + timedelta(hours=3)


def test_a_busy_tick_reads_no_growing_table_whole(home):
    db, now = busy_history(home)
    seen = statements(db, lambda: tick(db, now, phase="all"))
    assert any("status = 'sent' AND sent_at >=" in s for s in seen), "no cap check ran"
    assert full_scans(db, seen) == []


def test_the_hourly_cap_reads_only_this_hours_sends(home):
    db, now = busy_history(home)
    seen = statements(db, lambda: tick(db, now, phase="all"))
    cap = [s for s in seen if "COUNT(*) FROM outbox WHERE status = 'sent' AND sent_at >=" in s]
    assert cap, seen
    assert any("INDEX outbox_sent_at (status=? AND sent_at>?)" in line
               for line in plan(db, cap[0])), plan(db, cap[0])


def test_the_sync_phase_bounce_rate_check_uses_indexes(home):
    db, now = busy_history(home)
    seen = statements(db, lambda: tick(db, now, phase="sync"))
    bounce_checks = [s for s in seen if "'inbox_paused'" in s]
    assert bounce_checks, "the bounce-rate check did not run"
    for sql in bounce_checks:
        assert any("INDEX events_inbox" in line for line in plan(db, sql)), plan(db, sql)
    assert full_scans(db, seen) == []


def test_stats_count_sent_emails_from_an_index_alone(home):
    db, _ = busy_history(home)
    seen = statements(db, lambda: analytics.sequence_stats(db, "plans"))
    assert full_scans(db, seen) == []
    sent = [s for s in seen if "kind = 'sent' GROUP BY" in s]
    assert sent and any("COVERING INDEX events_sequence_step" in line
                        for line in plan(db, sent[0])), [plan(db, s) for s in sent]
    stats = analytics.sequence_stats(db, "plans")
    assert stats["totals"]["sent"] == 60


def test_a_reply_is_attributed_through_the_enrollments_own_emails(home):
    db, now = busy_history(home)
    raw = db.execute("SELECT raw, to_email, message_id FROM outbox WHERE status = 'sent' "
                     "ORDER BY id LIMIT 1").fetchone()
    maildir = home / "mail" / "inbox" / "new"
    # no In-Reply-To: matched by its sender, and credited to the latest email sent to them
    maildir.joinpath("1.reply.host").write_bytes(
        (f"From: {raw[1]}\r\nTo: rep@acme.test\r\nSubject: Re: Hi\r\n"
         f"Message-ID: <reply@example.com>\r\n\r\nYes, let's talk.\r\n").encode())
    seen = statements(db, lambda: tick(db, now, phase="sync"))
    assert full_scans(db, seen) == []
    by_enrollment = [s for s in seen if "FROM outbox WHERE enrollment_id =" in s]
    assert by_enrollment, "no outcome was attributed"
    for sql in by_enrollment:
        assert any("outbox_enrollment_sent" in line for line in plan(db, sql)), plan(db, sql)
