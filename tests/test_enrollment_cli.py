"""pause, resume, unenroll, re-enroll and the database location, through the CLI."""

from __future__ import annotations

import stat
import textwrap

SEQUENCE = """
name: s
timezone: America/New_York
send_window_start_hour: 9
send_window_end_hour: 17
send_weekdays_only: true
steps:
  - step_type: task
    title: Research
  - step_type: email
    delay_business_days: 1
    subject: Hi
    body: Hello
"""


def setup(run, home):
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "s.yaml").write_text(textwrap.dedent(SEQUENCE))
    assert run("sequence", "apply", home / "s.yaml").code == 0
    # Monday 10:00 New York
    result = run("enroll", "s", "ann@a.test", now="2026-03-02T15:00:00Z")
    assert result.code == 0, result.err


def row(run):
    return run("enrollments", "list", "--json").json[0]


def test_pause_freezes_and_resume_recomputes_into_the_window(run, home):
    setup(run, home)
    assert run("tick", now="2026-03-02T15:00:00Z").code == 0
    assert row(run)["next_run_at"] == "2026-03-03T15:00:00Z"
    assert run("pause", "s", "ann@a.test", now="2026-03-02T16:00:00Z").code == 0
    assert row(run)["status"] == "paused"
    result = run("tick", "--json", now="2026-03-04T15:00:00Z")
    assert result.json["steps_fired"] == 0 and result.json["emails_sent"] == 0
    # resumed on Saturday: the stored due time has passed, so max(due, now) moves into Monday
    assert run("resume", "s", "ann@a.test", now="2026-03-07T12:00:00Z").code == 0
    current = row(run)
    assert current["status"] == "active" and current["next_run_at"] == "2026-03-09T13:00:00Z"
    assert run("resume", "s", "ann@a.test").code == 1     # not paused any more


def test_unenroll_exits_manual_and_cannot_be_undone(run, home):
    setup(run, home)
    assert run("unenroll", "s", "ann@a.test").code == 0
    current = row(run)
    assert current["status"] == "exited" and current["exit_reason"] == "manual"
    assert current["step"] is None
    assert run("resume", "s", "ann@a.test").code == 1
    again = run("enroll", "s", "ann@a.test", "--json")
    assert again.json["skipped_duplicates"] == 1
    reenrolled = run("enroll", "s", "ann@a.test", "--reenroll", "--json")
    assert reenrolled.code == 0 and reenrolled.json["enrolled"] == 1


def test_enroll_into_an_inactive_sequence_is_refused(run, home):
    setup(run, home)
    assert run("sequence", "deactivate", "s").code == 0
    result = run("enroll", "s", "bob@b.test")
    assert result.code == 1 and "inactive" in result.err


def test_max_active_sequences_per_contact(run, home):
    setup(run, home)
    assert run("settings", "set", "max_active_sequences_per_contact", "1").code == 0
    (home / "t.yaml").write_text(textwrap.dedent(SEQUENCE).replace("name: s", "name: t"))
    assert run("sequence", "apply", home / "t.yaml").code == 0
    result = run("enroll", "t", "ann@a.test", "--json")
    assert result.code == 1
    assert result.json["failed"] == 1
    assert "max_active_sequences_per_contact" in result.json["results"][0]["message"]


def test_db_option_and_environment_choose_the_database(run, home, tmp_path):
    other = tmp_path / "other.db"
    assert run("--db", other, "users", "add", "x@y.test", "--first-name", "X").code == 0
    assert other.exists()
    assert run("users", "--json").json == []
    assert [u["email"] for u in run("users", "--json", env={"SEQCTL_DB": str(other)}).json] == [
        "x@y.test"]
    assert run("--db", other, "init").code == 0


def test_path_and_backup(run, home, tmp_path):
    setup(run, home)
    assert run("path").out.strip() == str(home / "seqctl.db")
    assert run("path", "--json").json["tokens"] == str(home / "tokens")
    copy = tmp_path / "backup.db"
    assert run("backup", copy).code == 0
    assert run("--db", copy, "enrollments", "--json").json[0]["email"] == "ann@a.test"
    again = run("backup", copy)
    assert again.code == 1 and "exists" in again.err


def test_a_backup_is_private_and_nothing_is_left_when_it_fails(run, home, tmp_path):
    setup(run, home)
    copy = tmp_path / "backup.db"
    assert run("backup", copy).code == 0      # the test process's umask would give 0644
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("backup.db-*"))
    missing = tmp_path / "no-such-folder" / "b.db"
    failed = run("backup", missing)
    assert failed.code == 1 and failed.err.count("\n") == 1 and "Traceback" not in failed.err
    assert not missing.parent.exists()
