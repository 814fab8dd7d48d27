"""`seqctl stats`, `seqctl compare` and `seqctl export` as a user runs them."""

from __future__ import annotations

import csv
import io
import stat
from datetime import timedelta

import pytest

from seqctl.engine import analytics, outcomes
from tests.helpers import apply_yaml, enroll_all, setup_account, tick
from tests.test_analytics import CONTACTS, T0, setup_tracked

STEP_KEYS = {"step", "variant", "sent", "opens", "clicks", "replies", "unsubscribes", "bounces",
             "meetings", "open_rate", "click_rate", "reply_rate", "positive_replies",
             "positive_reply_rate"}

SIMPLE = """
    name: {name}
    timezone: UTC
    steps:
      - step_type: email
        subject: "Hi {{{{first_name}}}}"
        body: "Short note."
      - step_type: email
        delay_calendar_days: 3
        body: "Following up."
"""


@pytest.fixture
def two_sequences(home):
    """alpha and beta, 40 emails sent each; 15 replies to alpha, 2 to beta."""
    db, _ = setup_account(home)
    for name in ("alpha", "beta"):
        apply_yaml(db, SIMPLE.format(name=name), T0)
        enroll_all(db, name, [f"{name}{n}@c{n}.test" for n in range(40)], T0)
    tick(db, T0)
    for name, replies in (("alpha", 15), ("beta", 2)):
        for n in range(replies):
            contact = db.execute("SELECT id FROM contacts WHERE email = ?",
                                 [f"{name}{n}@c{n}.test"]).fetchone()[0]
            outcomes.on_reply(db, contact, T0 + timedelta(hours=1))
    return db


def test_stats_json_has_the_spec_shape(home, run):
    setup_tracked(home, contacts=CONTACTS[:4])
    result = run("stats", "numbers", "--json")
    assert result.code == 0, result.err
    stats = result.json
    assert stats["sequence"] == "numbers"
    assert set(stats["totals"]) >= STEP_KEYS - {"step", "variant"}
    assert stats["totals"]["sent"] == 4
    assert [(r["step"], r["variant"]) for r in stats["steps"]] == [(1, "A"), (1, "B")]
    assert all(set(row) == STEP_KEYS for row in stats["steps"])
    assert sum(r["sent"] for r in stats["steps"]) == 4


def test_stats_of_an_unknown_sequence_is_one_line_and_exit_1(home, run):
    code, out, err = run("stats", "nope", "--json")
    assert code == 1 and out == ""
    assert err.strip().splitlines() == ["error: no sequence named 'nope': see `seqctl sequence list`"]
    code, _, err = run("compare", "nope", "other")
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_stats_terminal_view_has_a_table_per_step_with_bars_and_the_ab_verdict(home, run):
    setup_tracked(home, contacts=CONTACTS[:4])
    code, out, err = run("stats", "numbers")
    assert code == 0, err
    assert "Step 1" in out
    assert "░" in out and "%" in out
    assert "A vs B reply rate: not enough data yet" in out


def test_compare_ranks_by_reply_rate_with_a_significance_test(two_sequences, run):
    result = run("compare", "beta", "alpha", "--json")
    assert result.code == 0, result.err
    doc = result.json
    assert doc["ranking"] == [
        {"sequence": "alpha", "sent": 40, "replies": 15, "reply_rate": 0.375,
         "positive_replies": 0, "positive_reply_rate": 0.0},
        {"sequence": "beta", "sent": 40, "replies": 2, "reply_rate": 0.05,
         "positive_replies": 0, "positive_reply_rate": 0.0},
    ]
    expected = analytics.two_proportion_z_test(15, 40, 2, 40).p_value
    assert doc["p_value"] == pytest.approx(expected)
    assert doc["p_value"] < 0.001
    assert doc["significant"] is True
    assert doc["verdict"].startswith("alpha has the higher reply rate")
    code, out, _ = run("compare", "alpha", "beta")
    assert code == 0 and "alpha has the higher reply rate" in out


def test_compare_below_thirty_sent_says_not_enough_data_yet(home, run):
    db, _ = setup_account(home)
    for name, count in (("small", 10), ("big", 35)):
        apply_yaml(db, SIMPLE.format(name=name), T0)
        enroll_all(db, name, [f"{name}{n}@c{n}.test" for n in range(count)], T0)
    tick(db, T0)
    doc = run("compare", "small", "big", "--json").json
    assert doc["significant"] is False
    assert doc["verdict"].startswith("not enough data yet")
    assert {r["sequence"]: r["sent"] for r in doc["ranking"]} == {"small": 10, "big": 35}


def test_export_events_csv_has_a_header_and_one_row_per_event(two_sequences, run):
    db = two_sequences
    code, out, err = run("export", "events", "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == analytics.EVENT_COLUMNS
    assert len(rows) == db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    alpha = list(csv.DictReader(io.StringIO(run("export", "events", "--csv", "--sequence",
                                                "alpha").out)))
    assert {r["sequence"] for r in alpha} == {"alpha"}
    assert sum(r["kind"] == "reply" for r in alpha) == 15
    assert sum(r["kind"] == "sent" for r in alpha) == 40


def test_export_enrollments_csv_to_a_file(two_sequences, run, tmp_path):
    target = tmp_path / "enrollments.csv"
    code, out, err = run("export", "enrollments", "--csv", "--sequence", "beta",
                         "--output", target)
    assert code == 0, err
    assert out == ""
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40 and set(rows[0]) == set(analytics.ENROLLMENT_COLUMNS)
    statuses = sorted(r["status"] for r in rows)
    assert statuses.count("exited") == 2 and statuses.count("active") == 38
    assert {r["exit_reason"] for r in rows if r["status"] == "exited"} == {"reply_received"}


def test_export_to_a_file_is_private_even_over_an_existing_file(two_sequences, run, tmp_path):
    target = tmp_path / "events.csv"
    target.write_text("old\n")
    target.chmod(0o644)
    assert run("export", "events", "--csv", "-o", target).code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text().startswith("id,at,kind,")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp file left


def test_a_failed_export_leaves_the_old_file_untouched(home, run, tmp_path):
    target = tmp_path / "events.csv"
    target.write_text("old\n")
    assert run("export", "events", "--csv", "--sequence", "nope", "-o", target).code == 1
    assert target.read_text() == "old\n"


def test_spreadsheet_formulas_in_exported_cells_are_neutralised(home, run, tmp_path):
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "email,first_name,last_name,company_name\n"
        'evil@x.test,"=HYPERLINK(""https://evil.test"",""x"")",@SUM(A1),+1 555 0100\n'
        "plain@x.test,-2+3,Tab,Acme\n")
    setup_account(home)
    (tmp_path / "s.yaml").write_text(SIMPLE.format(name="alpha"))
    assert run("sequence", "apply", tmp_path / "s.yaml").code == 0
    assert run("enroll", "alpha", "--csv", contacts).code == 0
    out = run("export", "enrollments", "--csv").out
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["evil@x.test"]["first_name"] == "'=HYPERLINK(\"https://evil.test\",\"x\")"
    assert rows["evil@x.test"]["last_name"] == "'@SUM(A1)"
    assert rows["evil@x.test"]["company_name"] == "'+1 555 0100"
    assert rows["plain@x.test"]["first_name"] == "'-2+3"
    assert rows["plain@x.test"]["company_name"] == "Acme"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows.values()
               for cell in row.values())


@pytest.mark.parametrize("value, safe", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("Acme", "Acme"), ("a=b", "a=b"), (-1, -1), (None, None), ("", ""),
])
def test_spreadsheet_safe(value, safe):
    assert analytics.spreadsheet_safe(value) == safe


def test_export_of_an_unknown_sequence_is_an_error_before_any_output(home, run):
    code, out, err = run("export", "events", "--csv", "--sequence", "nope")
    assert code == 1 and out == ""
    assert "no sequence named 'nope'" in err


def test_a_sequence_without_variant_b_has_only_a_rows(two_sequences, run):
    stats = run("stats", "alpha", "--json").json
    assert [(r["step"], r["variant"]) for r in stats["steps"]] == [(1, "A")]
    assert stats["steps"][0]["sent"] == 40 and stats["steps"][0]["replies"] == 15


FOLLOW_UPS = """
    name: chase
    timezone: UTC
    steps:
      - id: first
        step_type: email
        subject: "Hi"
        body: "One."
      - id: second
        step_type: email
        delay_calendar_days: 1
        subject: "Again"
        body: "Two."
      - id: ring
        step_type: call
        delay_calendar_days: 1
        title: "Call {{first_name}}"
"""


def test_stats_per_contact_tasks_and_a_manual_reply_before_any_email(home, run):
    db, _ = setup_account(home)
    apply_yaml(db, FOLLOW_UPS, T0)
    enroll_all(db, "chase", ["ann@a.test", "bo@b.test", "cy@c.test"], T0)
    tick(db, T0)                                           # step 1 to all three
    tick(db, T0 + timedelta(days=1))                       # step 2 to all three
    outcomes.log_outcome(db, "ann@a.test", "reply", T0 + timedelta(days=1, hours=2))
    tick(db, T0 + timedelta(days=2))                       # calls for bo and cy
    task_ids = [t["id"] for t in run("tasks", "--json").json]
    assert run("tasks", "done", str(task_ids[0])).code == 0
    stats = run("stats", "chase", "--json").json
    totals = stats["totals"]
    assert totals["sent"] == 6 and totals["replies"] == 1
    assert totals["contacts_reached"] == 3 and totals["contacts_replied"] == 1
    assert totals["contact_reply_rate"] == round(1 / 3, 4)
    assert totals["tasks_created"] == 2 and totals["tasks_done"] == 1
    assert stats["tasks"] == [{"step": 3, "step_type": "call", "title": "Call {{first_name}}",
                               "created": 2, "done": 1, "skipped": 0, "open": 1}]
    text = run("stats", "chase").out
    assert "per contact: 1 of 3 reached replied (33.3%)" in text
    assert "Step 3 · call: 2 created, 1 done, 0 skipped, 1 open" in text
    # a reply logged for a contact who had no email yet still counts
    enroll_all(db, "chase", ["dee@d.test"], T0 + timedelta(days=3))
    outcomes.log_outcome(db, "dee@d.test", "reply", T0 + timedelta(days=3))
    totals = run("stats", "chase", "--json").json["totals"]
    assert totals["replies"] == 2 and totals["contacts_replied"] == 2


def test_stats_keep_a_steps_history_when_it_becomes_a_task(home, run):
    db, _ = setup_account(home)
    apply_yaml(db, FOLLOW_UPS, T0)
    enroll_all(db, "chase", ["ann@a.test", "bo@b.test"], T0)
    tick(db, T0)
    outcomes.log_outcome(db, "ann@a.test", "reply", T0 + timedelta(hours=1))
    before = run("stats", "chase", "--json").json["steps"]
    assert [(r["step"], r["sent"], r["replies"]) for r in before][:1] == [(1, 2, 1)]
    apply_yaml(db, FOLLOW_UPS.replace('''      - id: first
        step_type: email
        subject: "Hi"
        body: "One."''', '''      - id: first
        step_type: task
        title: "Research"'''), T0 + timedelta(hours=2))
    after = run("stats", "chase", "--json").json
    assert [(r["step"], r["sent"], r["replies"]) for r in after["steps"]][:1] == [(1, 2, 1)]
    assert after["totals"]["sent"] == 2 and after["totals"]["replies"] == 1
