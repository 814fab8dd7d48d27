"""`seqctl tick` and friends through the real CLI: locking, JSON shapes, clean errors."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

SEQUENCE = """
name: intro
timezone: UTC
steps:
  - step_type: email
    subject: "Hello {{first_name}}"
    body: "Hi {{first_name}}"
  - step_type: call
    delay_hours: 1
    title: "Call {{first_name}}"
"""


def setup(run, home: Path, contacts: int = 3) -> Path:
    mail = home / "mail"
    assert run("users", "add", "rep@acme.test", "--first-name", "Riley").code == 0
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", mail).code == 0
    (home / "seq.yaml").write_text(textwrap.dedent(SEQUENCE))
    result = run("sequence", "apply", home / "seq.yaml")
    assert result.code == 0, result.err
    csv = "email,first_name\n" + "".join(f"p{i}@x.test,P{i}\n" for i in range(contacts))
    result = run("enroll", "intro", "--csv", "-", "--json", input=csv,
                 now="2026-03-02T10:00:00Z")
    assert result.code == 0, result.err
    return mail


def test_enroll_json_shape_and_duplicates(run, home):
    setup(run, home, contacts=2)
    result = run("enroll", "intro", "p0@x.test", "new@x.test", "--json", now="2026-03-02T10:00:00Z")
    assert result.code == 0
    summary = result.json
    assert summary["enrolled"] == 1 and summary["skipped_duplicates"] == 1 and summary["failed"] == 0
    assert {r["status"] for r in summary["results"]} == {"enrolled", "skipped_duplicate"}
    assert set(summary["results"][0]) >= {"email", "status", "enrollment_id", "message"}


def test_enroll_without_inbox_fails_with_plain_message_and_exit_1(run, home):
    (home / "seq.yaml").write_text(textwrap.dedent(SEQUENCE))
    assert run("sequence", "apply", home / "seq.yaml").code == 0
    result = run("enroll", "intro", "a@x.test", "--json")
    assert result.code == 1
    summary = result.json
    assert summary["failed"] == 1
    assert "no inbox" in summary["results"][0]["message"]
    rows = run("enrollments", "list", "--json").json
    assert rows[0]["status"] == "failed" and "inbox add" in rows[0]["failure_message"]


def test_resume_failed_inbox_includes_enrollments_that_had_no_inbox_at_all(run, home):
    (home / "seq.yaml").write_text(textwrap.dedent(SEQUENCE))
    assert run("sequence", "apply", home / "seq.yaml").code == 0
    assert run("enroll", "intro", "a@x.test").code == 1            # nobody can send yet
    assert run("inbox", "add", "maildir", "rep@x.test", "--dir", home / "mail").code == 0
    result = run("resume", "--failed", "--inbox", "rep@x.test", "--json")
    assert result.code == 0 and result.json == {"resumed": 1, "still_failed": 0}
    row = run("enrollments", "list", "--json").json[0]
    assert row["status"] == "active" and row["inbox"] == "rep@x.test"


def test_tick_json_counts_and_enrollments_list_shape(run, home):
    mail = setup(run, home)
    result = run("tick", "--json", now="2026-03-02T10:00:00Z")
    assert result.code == 0, result.err
    counts = result.json
    assert set(counts) >= {"synced", "exited", "steps_fired", "emails_queued", "emails_sent",
                           "tasks_created", "skipped_suppressed", "deferred", "failed"}
    assert counts["emails_queued"] == 3 and counts["emails_sent"] == 3
    assert len(list((mail / "sent" / "new").iterdir())) == 3
    rows = run("enrollments", "list", "--json").json
    assert len(rows) == 3
    row = rows[0]
    assert set(row) >= {"id", "sequence", "email", "status", "exit_reason", "failure_message",
                        "variant", "step", "next_run_at", "inbox"}
    assert row["step"] == 2 and row["next_run_at"] == "2026-03-02T11:00:00Z"
    assert row["variant"] in ("A", "B")
    result = run("tick", "--json", "--now", "2026-03-02T11:00:00Z")
    assert result.json["tasks_created"] == 3 and result.json["exited"] == 3
    tasks = run("tasks", "list", "--json").json
    assert tasks[0]["kind"] == "call" and tasks[0]["title"] == "Call P0"
    assert set(tasks[0]) >= {"id", "kind", "title", "notes", "email", "sequence", "due_at",
                             "status"}
    assert run("tasks", "done", str(tasks[0]["id"])).code == 0
    assert run("tasks", "--json").json[0]["id"] == tasks[1]["id"]


def test_dry_run_changes_nothing(run, home):
    mail = setup(run, home)
    result = run("tick", "--dry-run", "--json", now="2026-03-02T10:00:00Z")
    assert result.json["emails_queued"] == 3
    assert list((mail / "sent" / "new").iterdir()) == []
    assert run("outbox", "list", "--json").json == []


def test_schedule_prints_the_timeline(run, home):
    setup(run, home)
    rows = run("schedule", "intro", "--contact", "p0@x.test", "--json").json
    assert [(r["step"], r["step_type"], r["fires_at"]) for r in rows] == [
        (1, "email", "2026-03-02T10:00:00Z"), (2, "call", "2026-03-02T11:00:00Z")]


def test_a_second_tick_exits_at_once_while_one_runs(run, home):
    setup(run, home)
    lock = open(home / "seqctl.db.tick.lock", "a+")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        result = run("tick", "--json", now="2026-03-02T10:00:00Z")
        assert result.code == 0
        assert "another tick is running" in result.err
        assert result.json["steps_fired"] == 0 and result.json["emails_sent"] == 0
        assert run("outbox", "list", "--status", "all", "--json").json == []
    finally:
        lock.close()


def test_a_killed_tick_never_blocks_the_next(run, home):
    mail = setup(run, home)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, time
            f = open({str(home / 'seqctl.db.tick.lock')!r}, 'a+')
            fcntl.flock(f, fcntl.LOCK_EX)
            print('locked', flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"locked"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    result = run("tick", "--json", now="2026-03-02T10:00:00Z")
    assert result.code == 0 and result.json["emails_sent"] == 3
    assert len(list((mail / "sent" / "new").iterdir())) == 3


def test_two_ticks_started_together_never_fire_a_step_twice(run, home):
    mail = setup(run, home, contacts=40)
    env = dict(os.environ, SEQCTL_HOME=str(home), SEQCTL_NOW="2026-03-02T10:00:00Z")
    for _round in range(3):
        procs = [subprocess.Popen([sys.executable, "-m", "seqctl", "tick", "--json"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
        for p in procs:
            p.wait(timeout=120)
            assert p.returncode == 0, p.stderr.read()
    assert len(list((mail / "sent" / "new").iterdir())) == 40
    outbox = run("outbox", "list", "--status", "all", "--json").json
    assert len(outbox) == 40 and {o["status"] for o in outbox} == {"sent"}


def test_bad_arguments_are_usage_errors_with_exit_2(run, home):
    for args in (["tick", "--phase", "sideways"], ["enroll"], ["tasks", "done", "abc"],
                 ["tick", "--now", "yesterday-ish"], ["log", "reply", "a@x.test", "--at", "soon"],
                 ["nosuchcommand"], ["tick", "--bogus"]):
        result = run(*args)
        assert result.code == 2, (args, result)
        assert "Traceback" not in result.err


def test_bad_values_are_one_line_errors_with_exit_1(run, home):
    for args in (["enroll", "nope", "a@x.test"],
                 ["tasks", "done", "999"], ["settings", "set", "sequence_hourly_send_cap", "0"],
                 ["settings", "get", "nope"], ["schedule", "nope", "--contact", "a@x.test"]):
        result = run(*args)
        assert result.code == 1, (args, result)
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
        assert "Traceback" not in result.err


def test_cron_prints_crontab_lines_with_next_runs(run, home):
    result = run("cron", now="2026-03-02T10:00:30Z")
    assert result.code == 0
    lines = [line for line in result.out.splitlines() if not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("* * * * * ") and " tick" in lines[0]
    assert run("cron", "--json", now="2026-03-02T10:00:30Z").json["lines"][0]["next_runs"][0] \
        == "2026-03-02T10:01:00Z"
    split = run("cron", "--split", "--json", now="2026-03-02T10:00:30Z").json
    commands = [row["command"] for row in split["lines"]]
    assert any(c.endswith("tick --phase engine") for c in commands)
    assert any(c.endswith("tick --phase dispatch") for c in commands)
    sync = next(row for row in split["lines"] if row["command"].endswith("--phase sync"))
    assert sync["schedule"] == "*/5 * * * *" and sync["next_runs"][0] == "2026-03-02T10:05:00Z"


def test_settings_round_trip(run, home):
    assert run("settings", "set", "sequence_hourly_send_cap", "40").code == 0
    assert run("settings", "get", "sequence_hourly_send_cap").out.strip() == "40"
    values = run("settings", "--json").json
    assert values["sequence_hourly_send_cap"] == "40"
    assert values["sync_schedule"] == "*/5 * * * *"
    assert json.loads(run("settings", "list", "--json").out)["bounce_pause_threshold"] == "0.05"


def test_a_file_that_is_not_a_database_is_a_one_line_error(run, home, tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("shopping list\n" * 100)
    result = run("--db", bogus, "users")
    assert result.code == 1
    assert result.err.startswith("error: cannot open database") and "Traceback" not in result.err
    assert bogus.read_text() == "shopping list\n" * 100
