"""Sequence YAML (SPEC 3): validation, apply/update with live-edit semantics, export round trip,
and the `seqctl sequence` commands."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from seqctl import clock
from seqctl.engine import sequence_reader, sequence_spec, sequence_store
from seqctl.engine.schedule import Delay, SendWindow

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "sequences"
EXAMPLE = ROOT / "examples" / "cold-saas-intro.yaml"
BAD = sorted((DATA / "bad").glob("*.yaml"))
GOOD = sorted((DATA / "good").glob("*.yaml"))
TEMPLATES = {"breakup": {"subject": "Closing the loop", "body": "Should I stop writing?"}}
EXPECT = re.compile(r"# expect: (\d+|-) (\S+): (.*)")
NOW = "2026-03-02T15:00:00Z"   # a Monday, 09:00 in Chicago

THREE_EMAILS = """\
name: three
timezone: America/Chicago
send_window_start_hour: 9
send_window_end_hour: 17
send_weekdays_only: true
steps:
  - id: a
    step_type: email
    subject: First
    body: One
  - id: b
    step_type: email
    delay_business_days: 2
    body: Two
  - id: c
    step_type: email
    delay_business_days: 3
    body: Three
"""


def expectation(path: Path) -> tuple[int | None, str, str]:
    match = EXPECT.match(path.read_text().splitlines()[0])
    assert match, f"{path.name}: first line must be '# expect: LINE FIELD: fragment'"
    line, field, fragment = match.groups()
    return (None if line == "-" else int(line)), field, fragment


def validate(text: str, **kwargs):
    kwargs.setdefault("templates", TEMPLATES)
    return sequence_reader.validate_sequence(text, **kwargs)


# --- pure validation --------------------------------------------------------------------------


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_sequence_file_is_reported_with_line_and_field(path):
    line, field, fragment = expectation(path)
    result = sequence_reader.validate_sequence(path.read_text(), templates={})
    assert not result.ok and result.spec is None
    found = [(p.line, p.field, p.message) for p in result.errors]
    assert any(p_line == line and p_field == field and fragment in message
               for p_line, p_field, message in found), found


@pytest.mark.parametrize("path", [*GOOD, EXAMPLE], ids=[p.stem for p in [*GOOD, EXAMPLE]])
def test_good_sequence_file_validates(path):
    result = validate(path.read_text())
    assert result.errors == []
    assert result.spec is not None and result.spec.steps


def test_every_problem_is_reported_not_just_the_first():
    result = validate("""\
name: many
timezone: Mars/Base
send_window_start_hour: -1
steps:
  - step_type: email
    body: Hi {{frist_name}}
  - step_type: call
  - step_type: email
    delay_buisness_days: 2
""")
    fields = {p.field for p in result.errors}
    assert {"timezone", "send_window_start_hour", "steps[1].subject", "steps[1].body",
            "steps[2].title", "steps[3].delay_buisness_days", "steps[3].body"} <= fields


def test_problem_line_reads_file_line_field_message():
    result = validate(
        "name: x\nsteps:\n  - step_type: email\n    subject: Hi\n    body: Hi\n"
        "    delay_buisness_days: 3\n"
    )
    assert [p.format("seq.yaml") for p in result.errors] == [
        "seq.yaml:6: steps[1].delay_buisness_days: unknown key "
        "(did you mean delay_business_days?)"
    ]


def test_unknown_merge_variable_is_a_warning_not_an_error():
    result = validate(
        "name: x\nsteps:\n  - step_type: email\n    subject: Hi\n"
        "    body: Loved your {{ favourite_color }} logo\n"
    )
    assert result.ok and result.spec is not None
    assert [(w.line, w.field) for w in result.warnings] == [(5, "steps[1].body")]
    assert "favourite_color" in result.warnings[0].message


def test_custom_field_of_a_contact_is_a_known_merge_variable():
    text = ("name: x\nsteps:\n  - step_type: email\n    subject: Hi\n"
            "    body: Loved your {{ favourite_color }} logo\n")
    assert validate(text, known_custom={"favourite_color"}).warnings == []
    near = validate(text, known_custom={"favourite_colour"})
    assert not near.ok
    assert "did you mean favourite_colour?" in near.errors[0].message


def test_defaults_when_keys_are_absent():
    spec = validate("name: x\nsteps:\n  - step_type: wait\n").spec
    assert spec.settings == sequence_spec.SEQUENCE_DEFAULTS
    assert spec.settings["active"] is True and spec.settings["timezone"] == "UTC"
    assert (spec.settings["send_window_start_hour"], spec.settings["send_window_end_hour"]) == (0, 24)
    step = spec.steps[0]
    assert (step.delay_business_days, step.delay_calendar_days, step.delay_hours) == (0, 0, 0)


def test_type_is_an_alias_of_step_type():
    spec = validate("name: x\nsteps:\n  - type: task\n    title: Research\n").spec
    assert spec.steps[0].step_type == "task"


def test_holidays_no_means_norway_not_false():
    spec = validate("name: x\nholidays: NO\nsteps:\n  - type: wait\n").spec
    assert spec.settings["holidays"] == "NO"


def test_holidays_accept_a_country_subdivision():
    spec = validate("name: x\nholidays: GB-ENG\nsteps:\n  - type: wait\n").spec
    assert spec.settings["holidays"] == "GB-ENG"
    assert validate("name: x\nholidays: us-ca\nsteps:\n  - type: wait\n").errors


def test_email_without_subject_after_the_first_is_a_thread_reply():
    spec = validate("name: x\nsteps:\n  - step_type: email\n    subject: Hi\n    body: One\n"
                    "  - step_type: email\n    body: Two\n").spec
    assert spec.steps[1].subject is None


def test_template_step_uses_the_saved_templates_subject():
    assert validate("name: x\nsteps:\n  - step_type: email\n    template: breakup\n").ok
    no_subject = {"breakup": {"subject": None, "body": "Bye"}}
    result = validate("name: x\nsteps:\n  - step_type: email\n    template: breakup\n",
                      templates=no_subject)
    assert "has no subject" in result.errors[0].message


def test_spam_score_for_every_email_step_and_variant():
    result = validate(EXAMPLE.read_text())
    assert [(s["step"], s["variant"]) for s in result.spam] == [(1, "A"), (1, "B"), (2, "A"),
                                                                 (6, "A")]
    loud = validate("name: x\nsteps:\n  - step_type: email\n    subject: FREE MONEY NOW!!!\n"
                    "    body: Click here to claim your prize!!! 100% free, act now!\n")
    assert loud.spam[0]["band"] in ("amber", "red")
    assert loud.spam[0]["reasons"]


def test_block_scalar_error_line_points_at_the_line_in_the_body():
    result = validate(
        "name: x\nsteps:\n  - step_type: email\n    subject: Hi\n    body: |\n"
        "      line one\n      line two {{ lsat_name }}\n"
    )
    assert [(p.line, p.field) for p in result.errors] == [(7, "steps[1].body")]


# --- engine helpers ---------------------------------------------------------------------------


def test_sequence_window_and_step_delay_from_rows():
    row = {"timezone": "America/Chicago", "send_window_start_hour": 9,
           "send_window_end_hour": 17, "send_weekdays_only": 1, "holidays": "US",
           "send_in_contact_timezone": 0}
    assert sequence_spec.sequence_window(row) == SendWindow("America/Chicago", 9, 17, True, "US")
    assert sequence_spec.sequence_window(row, "Europe/Berlin").timezone == "America/Chicago"
    row["send_in_contact_timezone"] = 1
    assert sequence_spec.sequence_window(row, "Europe/Berlin").timezone == "Europe/Berlin"
    assert sequence_spec.sequence_window(row, "Not/AZone").timezone == "America/Chicago"
    step = {"delay_business_days": 2, "delay_calendar_days": 1, "delay_hours": 4.5}
    assert sequence_spec.step_delay(step) == Delay(2, 1, 4.5)


def test_live_steps_are_ordered_and_skip_removed(home):
    from seqctl import db as database

    db = database.get()
    spec = validate(THREE_EMAILS).spec
    sequence_store.apply_spec(db, spec, clock.from_iso(NOW))
    sequence = sequence_store.get_sequence(db, "three")
    spec.steps = [spec.steps[2], spec.steps[0]]
    sequence_store.apply_spec(db, spec, clock.from_iso(NOW))
    steps = sequence_store.live_steps(db, sequence["id"])
    assert [(s["position"], s["step_key"]) for s in steps] == [(1, "c"), (2, "a")]
    assert steps[0]["cc"] == [] and steps[0]["variant_b"] is None


# --- the CLI ----------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def sql(home: Path, query: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(home / "seqctl.db")
    try:
        with conn:
            return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def tables(home: Path) -> tuple[list, list]:
    return (sql(home, "SELECT * FROM sequences ORDER BY id"),
            sql(home, "SELECT * FROM steps ORDER BY id"))


def enroll_rows(home: Path, sequence: str, step_key: str, count: int, *,
                status: str = "active", anchor: str = NOW) -> list[int]:
    """Enrollments inserted directly, up next at the step with YAML id `step_key`."""
    (sequence_id,) = sql(home, "SELECT id FROM sequences WHERE name = ?", [sequence])[0]
    (step_id,) = sql(home, "SELECT id FROM steps WHERE sequence_id = ? AND step_key = ? "
                     "AND removed = 0", [sequence_id, step_key])[0]
    ids = []
    for _ in range(count):
        n = sql(home, "SELECT COUNT(*) FROM contacts")[0][0]
        conn = sqlite3.connect(home / "seqctl.db")
        with conn:
            contact = conn.execute(
                "INSERT INTO contacts (email, created_at, updated_at) VALUES (?, ?, ?)",
                [f"c{n}@example.com", NOW, NOW]).lastrowid
            ids.append(conn.execute(
                "INSERT INTO enrollments (sequence_id, contact_id, status, step_id, anchor_at, "
                "next_run_at, enrolled_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [sequence_id, contact, status, step_id, anchor, NOW, NOW, NOW]).lastrowid)
        conn.close()
    return ids


def test_example_file_validates_cleanly(run):
    code, out, err = run("sequence", "validate", EXAMPLE)
    assert code == 0, err
    assert "warning" not in err
    assert "ok, sequence cold-saas-intro (6 steps)" in err


def test_validate_json_document(run, tmp_path):
    bad = write(tmp_path, "bad.yaml", "name: x\nsteps:\n  - step_type: emial\n")
    result = run("sequence", "validate", "--json", bad)
    assert result.code == 1
    document = result.json
    assert document["file"] == str(bad) and document["name"] == "x" and not document["ok"]
    assert document["errors"] == [{"line": 3, "field": "steps[1].step_type",
                                   "message": "unknown step type 'emial' (did you mean email?)"}]
    good = run("sequence", "validate", "--json", EXAMPLE).json
    assert good["ok"] and good["spam"][0].keys() >= {"step", "score", "band", "reasons"}


def test_apply_bad_file_exits_1_with_one_line_and_writes_nothing(run, home):
    bad = DATA / "bad" / "unknown_step_key_near_miss.yaml"
    code, out, err = run("sequence", "apply", bad)
    assert code == 1
    assert err.splitlines() == [f"{bad}:8: steps[2].delay_buisness_days: unknown key "
                                "(did you mean delay_business_days?)"]
    assert "Traceback" not in err and out == ""
    assert run("sequence", "list", "--json").json == []


def test_apply_bad_version_keeps_the_previous_version_intact(run, home, tmp_path):
    assert run("sequence", "apply", EXAMPLE).code == 0
    before = tables(home)
    broken = EXAMPLE.read_text().replace("{{first_name}}", "{{frist_name}}").replace(
        "delay_business_days: 3", "delay_business_days: -3")
    code, _, err = run("sequence", "apply", write(tmp_path, "v2.yaml", broken))
    assert code == 1
    assert "did you mean first_name?" in err and "cannot be negative" in err
    assert tables(home) == before


def test_apply_several_files_writes_nothing_when_one_is_bad(run, tmp_path):
    good = write(tmp_path, "good.yaml", "name: good\nsteps:\n  - step_type: wait\n")
    code, _, err = run("sequence", "apply", good, DATA / "bad" / "negative_delay.yaml")
    assert code == 1 and "negative_delay.yaml:5:" in err
    assert run("sequence", "list", "--json").json == []


def test_two_files_with_the_same_name_are_an_error(run, tmp_path):
    one = write(tmp_path, "one.yaml", "name: same\nsteps:\n  - step_type: wait\n")
    two = write(tmp_path, "two.yaml", "name: same\nsteps:\n  - step_type: task\n    title: T\n")
    code, _, err = run("sequence", "apply", one, two)
    assert code == 1 and "also the name in" in err


@pytest.mark.parametrize("args", [
    ["sequence", "apply"],
    ["sequence", "show"],
    ["sequence", "duplicate", "only-one"],
    ["sequence", "delete", "x", "--bogus"],
    ["sequence", "frobnicate"],
])
def test_bad_arguments_exit_2(run, args):
    code, _, err = run(*args)
    assert code == 2, err
    assert "Traceback" not in err


def test_a_missing_file_is_a_one_line_error_exit_1(run):
    code, _, err = run("sequence", "apply", "no-such-file.yaml")
    assert code == 1
    assert err == "no-such-file.yaml: file: cannot read: No such file or directory\n"


def test_unknown_sequence_is_one_line_exit_1(run):
    for command in ("show", "export", "activate", "deactivate", "delete"):
        code, _, err = run("sequence", command, "nope")
        assert code == 1
        assert err == "error: no sequence 'nope' (see `seqctl sequence list`)\n"


def test_apply_creates_then_updates_by_name(run, home, tmp_path):
    path = write(tmp_path, "s.yaml", THREE_EMAILS)
    first = run("sequence", "apply", "--json", path).json
    assert (first["action"], first["steps"], first["ok"]) == ("created", 3, True)
    again = run("sequence", "apply", path)
    assert "unchanged sequence three (3 steps)" in again.err
    edited = write(tmp_path, "s.yaml", THREE_EMAILS.replace("body: Two", "body: Two, edited"))
    code, _, err = run("sequence", "apply", edited)
    assert code == 0 and "updated sequence three (3 steps: 1 changed)" in err
    assert sql(home, "SELECT COUNT(*) FROM sequences")[0][0] == 1
    assert run("sequence", "show", "--json", "three").json["steps"][1]["body"] == "Two, edited"


def test_steps_match_by_id_when_reordered(run, home, tmp_path):
    run("sequence", "apply", write(tmp_path, "s.yaml", THREE_EMAILS))
    ids = dict(sql(home, "SELECT step_key, id FROM steps"))
    reordered = THREE_EMAILS.replace(
        "  - id: b\n    step_type: email\n    delay_business_days: 2\n    body: Two\n", ""
    ) + "  - id: b\n    step_type: email\n    delay_business_days: 2\n    body: Two\n"
    assert run("sequence", "apply", write(tmp_path, "s.yaml", reordered)).code == 0
    after = sql(home, "SELECT step_key, id, position FROM steps WHERE removed = 0 "
                "ORDER BY position")
    assert after == [("a", ids["a"], 1), ("c", ids["c"], 2), ("b", ids["b"], 3)]
    assert sql(home, "SELECT COUNT(*) FROM steps")[0][0] == 3


def test_steps_without_id_match_by_position(run, home, tmp_path):
    text = ("name: pos\nsteps:\n  - step_type: email\n    subject: Hi\n    body: One\n"
            "  - step_type: email\n    body: Two\n")
    run("sequence", "apply", write(tmp_path, "s.yaml", text))
    before = sql(home, "SELECT id FROM steps ORDER BY position")
    text = text.replace("body: Two", "body: Second") + "  - step_type: task\n    title: T\n"
    code, _, err = run("sequence", "apply", write(tmp_path, "s.yaml", text))
    assert code == 0 and "1 added, 1 changed" in err
    after = sql(home, "SELECT id, body FROM steps ORDER BY position")
    assert [row[0] for row in after[:2]] == [row[0] for row in before]
    assert after[1][1] == "Second"


def test_removed_up_next_step_moves_enrollments_to_the_next_remaining_step(run, home, tmp_path):
    run("sequence", "apply", write(tmp_path, "s.yaml", THREE_EMAILS), now=NOW)
    ids = dict(sql(home, "SELECT step_key, id FROM steps"))
    moved = enroll_rows(home, "three", "b", 2)
    untouched = enroll_rows(home, "three", "a", 1)
    without_b = THREE_EMAILS.replace(
        "  - id: b\n    step_type: email\n    delay_business_days: 2\n    body: Two\n", "")
    code, _, err = run("sequence", "apply", write(tmp_path, "s.yaml", without_b), now=NOW)
    assert code == 0
    assert "removed step 'b' was up next for 2 enrollment(s)" in err
    rows = dict(sql(home, "SELECT id, step_id FROM enrollments"))
    assert [rows[i] for i in moved] == [ids["c"], ids["c"]]
    assert rows[untouched[0]] == ids["a"]
    # Never deleted: history refers to it.
    assert sql(home, "SELECT removed, position FROM steps WHERE id = ?", [ids["b"]]) == [(1, None)]
    # Due now at c's delay from the anchor: Mon 09:00 Chicago + 3 business days = Thu 09:00.
    assert sql(home, "SELECT next_run_at FROM enrollments WHERE id = ?", [moved[0]]) == [
        ("2026-03-05T15:00:00Z",)]


def test_removed_last_step_completes_its_enrollments(run, home, tmp_path):
    run("sequence", "apply", write(tmp_path, "s.yaml", THREE_EMAILS), now=NOW)
    (enrollment,) = enroll_rows(home, "three", "c", 1, anchor="2026-02-01T00:00:00Z")
    without_c = THREE_EMAILS.split("  - id: c")[0]
    later = "2026-03-04T12:00:00Z"
    assert run("sequence", "apply", write(tmp_path, "s.yaml", without_c), now=later).code == 0
    assert sql(home, "SELECT step_id, next_run_at FROM enrollments WHERE id = ?",
               [enrollment]) == [(None, later)]


def test_step_type_change_warns_with_the_number_of_enrollments(run, home, tmp_path):
    run("sequence", "apply", write(tmp_path, "s.yaml", THREE_EMAILS), now=NOW)
    enroll_rows(home, "three", "b", 3)
    enroll_rows(home, "three", "b", 1, status="exited")
    as_call = THREE_EMAILS.replace("    body: Two\n", "    title: Call instead\n").replace(
        "  - id: b\n    step_type: email", "  - id: b\n    step_type: call")
    code, _, err = run("sequence", "apply", write(tmp_path, "s.yaml", as_call), now=NOW)
    assert code == 0
    assert "step 2 changed from email to call while up next for 3 enrollment(s)" in err


def test_changed_delay_reschedules_active_enrollments(run, home, tmp_path):
    run("sequence", "apply", write(tmp_path, "s.yaml", THREE_EMAILS), now=NOW)
    (active,) = enroll_rows(home, "three", "b", 1)
    (paused,) = enroll_rows(home, "three", "b", 1, status="paused")
    sql(home, "UPDATE enrollments SET next_run_at = 'stale' WHERE id = ?", [paused])
    slower = THREE_EMAILS.replace("delay_business_days: 2", "delay_business_days: 4")
    code, _, err = run("sequence", "apply", write(tmp_path, "s.yaml", slower), now=NOW)
    assert code == 0 and "1 enrollment rescheduled" in err
    # Mon 09:00 Chicago + 4 business days = Fri 09:00 = 15:00Z.
    assert sql(home, "SELECT next_run_at FROM enrollments WHERE id = ?", [active]) == [
        ("2026-03-06T15:00:00Z",)]
    assert sql(home, "SELECT next_run_at FROM enrollments WHERE id = ?", [paused]) == [("stale",)]


def test_export_round_trip_changes_nothing(run, home, tmp_path):
    assert run("sequence", "apply", EXAMPLE).code == 0
    before = tables(home)
    exported = run("sequence", "export", "cold-saas-intro")
    assert exported.code == 0
    path = write(tmp_path, "exported.yaml", exported.out)
    code, _, err = run("sequence", "apply", path)
    assert code == 0 and "unchanged" in err
    assert tables(home) == before
    assert run("sequence", "export", "cold-saas-intro").out == exported.out


def test_export_keeps_spec_key_order_and_block_bodies(run, tmp_path):
    run("sequence", "apply", EXAMPLE)
    out = run("sequence", "export", "cold-saas-intro").out
    keys = [line.split(":")[0] for line in out.splitlines() if re.match(r"^\w", line)]
    # require_fields is written only when set
    assert keys == ["name", *(k for k in sequence_spec.SEQUENCE_DEFAULTS if k != "require_fields"),
                    "steps"]
    assert "    body: |\n      Hi {{ first_name | default(\"there\") }},\n" in out


def test_export_round_trip_of_every_good_file(run, home, tmp_path):
    sql_templates = ("INSERT INTO users (email, created_at) VALUES ('rep@example.com', 'x')",
                     "INSERT INTO templates (user_id, name, subject, body, created_at) "
                     "VALUES (1, 'breakup', 'Closing the loop', 'Bye', 'x')")
    run("sequence", "list")
    for statement in sql_templates:
        sql(home, statement)
    for path in GOOD:
        assert run("sequence", "apply", path).code == 0
    before = tables(home)
    for name in ("minimal", "nordic-tasks", "templated"):
        exported = write(tmp_path, f"{name}.yaml", run("sequence", "export", name).out)
        code, _, err = run("sequence", "apply", exported)
        assert code == 0 and "unchanged" in err, err
    assert tables(home) == before


def test_list_and_show(run, home):
    run("sequence", "apply", EXAMPLE)
    enroll_rows(home, "cold-saas-intro", "intro", 2)
    enroll_rows(home, "cold-saas-intro", "intro", 1, status="paused")
    listed = run("sequence", "--json").json
    assert listed == [{"name": "cold-saas-intro",
                       "description": "Cold SaaS intros for heads of customer success",
                       "active": True, "steps": 6, "active_enrollments": 2,
                       "paused_enrollments": 1, "exited_enrollments": 0,
                       "failed_enrollments": 0}]
    shown = run("sequence", "show", "cold-saas-intro", "--json").json
    assert shown["timezone"] == "America/Chicago" and shown["holidays"] == "US"
    assert shown["send_weekdays_only"] is True
    assert [s["step_type"] for s in shown["steps"]] == ["email", "email", "linkedin", "call",
                                                        "wait", "email"]
    first = shown["steps"][0]
    assert first["position"] == 1 and first["id"] == "intro"
    assert first["variant_b"]["subject"] == "{{company_name}} + onboarding"
    assert shown["steps"][1]["subject"] is None
    text = run("sequence", "show", "cold-saas-intro")
    assert text.code == 0 and "(reply in thread)" in text.out


def test_duplicate_copies_steps_not_enrollments(run, home):
    run("sequence", "apply", EXAMPLE)
    enroll_rows(home, "cold-saas-intro", "intro", 1)
    assert run("sequence", "duplicate", "cold-saas-intro", "cold-saas-v2").code == 0
    listed = {row["name"]: row for row in run("sequence", "list", "--json").json}
    assert listed["cold-saas-v2"]["steps"] == 6
    assert listed["cold-saas-v2"]["active_enrollments"] == 0
    assert not listed["cold-saas-v2"]["active"] and listed["cold-saas-intro"]["active"]
    assert run("enroll", "cold-saas-v2", "x@y.test").code == 1        # inactive until activated
    original = run("sequence", "export", "cold-saas-intro").out
    copy = run("sequence", "export", "cold-saas-v2").out
    assert "active: false" in copy and "active: true" in original
    assert copy == original.replace("name: cold-saas-intro", "name: cold-saas-v2").replace(
        "active: true", "active: false")
    code, _, err = run("sequence", "duplicate", "cold-saas-intro", "cold-saas-v2")
    assert code == 1 and "already exists" in err


def test_activate_and_deactivate(run):
    run("sequence", "apply", EXAMPLE)
    assert run("sequence", "deactivate", "cold-saas-intro").code == 0
    assert run("sequence", "--json").json[0]["active"] is False
    assert "already inactive" in run("sequence", "deactivate", "cold-saas-intro").err
    assert run("sequence", "activate", "cold-saas-intro").code == 0
    assert run("sequence", "--json").json[0]["active"] is True


def test_delete_refuses_with_open_enrollments_unless_forced(run, home):
    run("sequence", "apply", EXAMPLE)
    (enrollment,) = enroll_rows(home, "cold-saas-intro", "intro", 1)
    code, _, err = run("sequence", "delete", "cold-saas-intro")
    assert code == 1 and "--force" in err and len(err.splitlines()) == 1
    assert len(run("sequence", "--json").json) == 1
    code, _, err = run("sequence", "delete", "cold-saas-intro", "--force")
    assert code == 0 and "exited 1 enrollment" in err
    assert sql(home, "SELECT status, exit_reason FROM enrollments WHERE id = ?",
               [enrollment]) == [("exited", "manual")]
    assert run("sequence", "--json").json == []
    assert run("sequence", "show", "cold-saas-intro").code == 1
    # History keeps its (renamed) sequence; the name is free again.
    assert sql(home, "SELECT name, active FROM sequences") == [
        ("cold-saas-intro#deleted-1", 0)]
    assert run("sequence", "apply", EXAMPLE).code == 0


def test_delete_unused_sequence_removes_it(run, home):
    run("sequence", "apply", EXAMPLE)
    assert run("sequence", "delete", "cold-saas-intro").code == 0
    assert sql(home, "SELECT COUNT(*) FROM sequences")[0][0] == 0
    assert sql(home, "SELECT COUNT(*) FROM steps")[0][0] == 0


def test_unknown_template_is_an_error_until_saved(run, home):
    path = DATA / "good" / "template_steps.yaml"
    code, _, err = run("sequence", "validate", path)
    assert code == 1 and "no saved template 'breakup'" in err
    sql(home, "INSERT INTO users (email, created_at) VALUES ('rep@example.com', 'x')")
    sql(home, "INSERT INTO templates (user_id, name, subject, body, created_at) "
              "VALUES (1, 'breakup', 'Bye', 'Closing the loop', 'x')")
    code, _, err = run("sequence", "validate", path)
    assert code == 0, err
    assert "warning:" in err and "favourite_color" in err


def test_contact_custom_fields_are_known_merge_variables(run, home):
    path = DATA / "good" / "template_steps.yaml"
    run("sequence", "list")
    sql(home, "INSERT INTO users (email, created_at) VALUES ('rep@example.com', 'x')")
    sql(home, "INSERT INTO templates (user_id, name, subject, body, created_at) "
              "VALUES (1, 'breakup', 'Bye', 'Closing the loop', 'x')")
    sql(home, "INSERT INTO contacts (email, custom_fields_json, created_at, updated_at) "
              "VALUES ('a@example.com', ?, 'x', 'x')", [json.dumps({"favourite_color": "red"})])
    code, _, err = run("sequence", "validate", path)
    assert code == 0 and "warning" not in err


def test_apply_reads_standard_input(run):
    code, _, err = run("sequence", "apply", "-", input="name: piped\nsteps:\n  - type: wait\n")
    assert code == 0 and "created sequence piped (1 step)" in err
    code, _, err = run("sequence", "validate", "-", input="name: piped\nsteps: []\n")
    assert code == 1 and err.startswith("<stdin>:2: steps: is empty")
