"""What a rep sees at the terminal: the version, usage errors, group defaults, help."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_version_prints_the_package_version(run):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run("--version")
    assert result.code == 0 and result.out == f"seqctl {version}\n"


def test_a_usage_error_is_one_line_with_a_hint(run):
    result = run("tick", "--phase", "soon")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "--phase" in result.err and "see 'seqctl tick --help'" in result.err
    assert result.out == ""


def test_an_unknown_command_is_one_line(run):
    result = run("tasks", "lsit")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "lsit" in result.err and "seqctl tasks --help" in result.err


def test_a_bad_task_kind_is_a_usage_error(run):
    result = run("tasks", "list", "--kind", "phone")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "--kind" in result.err and "linkedin" in result.err


def test_group_defaults_pass_their_options_through(run):
    assert run("tasks", "--status", "all", "--json").json == []
    assert run("tasks", "--status", "all", "--kind", "call", "--json").json == []
    assert run("tasks", "--status", "nope").code == 2
    assert run("users", "--json").json == []


def test_group_help_is_the_group_help(run):
    result = run("tasks", "--help")
    assert result.code == 0 and "Commands:" in result.out and "Example" in result.out


def test_db_never_creates_a_missing_folder(run, tmp_path):
    target = tmp_path / "no-such-dir" / "x.db"
    result = run("--db", target, "init")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "does not exist" in result.err and "--db" in result.err
    assert not target.parent.exists()
    result = run("users", env={"SEQCTL_DB": str(target)})
    assert result.code == 1 and not target.parent.exists()


def test_enroll_into_an_unknown_or_inactive_sequence_imports_no_csv_row(run, home):
    csv = home / "leads.csv"
    csv.write_text("email,first_name\nann@a.test,Ann\n")
    result = run("enroll", "no-such-seq", "--csv", csv)
    assert result.code == 1 and "no sequence 'no-such-seq'" in result.err
    assert run("contacts", "--json").json == []
    (home / "s.yaml").write_text("name: s\nsteps:\n  - step_type: task\n    title: Call\n")
    assert run("sequence", "apply", home / "s.yaml").code == 0
    assert run("sequence", "deactivate", "s").code == 0
    result = run("enroll", "s", "--csv", csv)
    assert result.code == 1 and "inactive" in result.err
    assert run("contacts", "--json").json == []


def test_export_offers_only_options_that_work(run):
    assert run("export", "events", "--json").code == 2
    assert run("export", "--json").code == 2
    result = run("export", "events", "--csv")
    assert result.code == 0 and result.out.startswith("id,at,kind,sequence,")


CHICAGO = """
name: s
timezone: America/Chicago
send_window_start_hour: 9
send_window_end_hour: 17
steps:
  - step_type: email
    subject: Hi {{first_name}}
    body: Hello
  - step_type: call
    delay_calendar_days: 2
    title: Call {{first_name}}
  - step_type: email
    delay_calendar_days: 2
    subject: Again
    body: Hello again
"""
LONG = "alexandra.konstantinopoulou@very-long-company-name.example"


def chicago(run, home, emails=("ann@a.test",)):
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "s.yaml").write_text(CHICAGO)
    assert run("sequence", "apply", home / "s.yaml").code == 0
    # Monday 2 March 2026, 08:00 in Chicago: step 1 is due at 09:00 CST
    assert run("enroll", "s", *emails, now="2026-03-02T14:00:00Z").code == 0


def test_text_shows_times_in_the_sequence_zone_with_a_relative_part_and_json_stays_utc(run, home):
    chicago(run, home)
    text = run("enrollments", now="2026-03-02T14:00:00Z", env={"COLUMNS": "200"}).out
    assert "Mon 02 Mar 09:00 CST, in 1 h" in text
    assert run("enrollments", "--json").json[0]["next_run_at"] == "2026-03-02T15:00:00Z"
    schedule = run("schedule", "s", "--contact", "ann@a.test", now="2026-03-02T14:00:00Z",
                   env={"COLUMNS": "200"}).out
    assert "Mon 02 Mar 09:00 CST, in 1 h" in schedule and "Wed 04 Mar 09:00 CST, in 2 d" in schedule


def test_display_timezone_is_used_where_no_sequence_says(run, home):
    assert run("settings", "set", "display_timezone", "Europe/Paris").code == 0
    assert run("settings", "set", "display_timezone", "Mars/Olympus").code == 1
    assert run("suppress", "add", "x@y.test", now="2026-03-02T14:00:00Z").code == 0
    text = run("suppress", now="2026-03-02T16:00:00Z", env={"COLUMNS": "200"}).out
    assert "Mon 02 Mar 15:00 CET, 2 h ago" in text


def test_an_idle_tick_says_what_is_next(run, home):
    chicago(run, home, ("ann@a.test", "ben@b.test"))
    result = run("tick", now="2026-03-02T14:00:00Z")
    assert result.code == 0
    assert result.out == "nothing due; next: 2 emails, s step 1, Mon 02 Mar 09:00 CST, in 1 h\n"
    assert run("tick", "--json", now="2026-03-02T14:00:00Z").json["next"]["count"] == 2


def test_tick_verbose_lists_each_email_sent_and_each_task_created(run, home):
    chicago(run, home)
    sent = run("tick", "-v", now="2026-03-02T15:00:00Z").out
    assert "sent: ann@a.test, s step 1: Hi there" in sent or "sent: ann@a.test, s step 1: Hi" in sent
    task = run("tick", "-v", now="2026-03-04T15:00:00Z").out
    assert "task (call): ann@a.test, s step 2: Call" in task
    assert "tasks created 1" in task


def test_tick_log_lines_carry_a_timestamp_and_nothing_goes_to_the_terminal(run, home):
    chicago(run, home)
    log = home / "tick.log"
    result = run("tick", "--log", log, now="2026-03-02T14:00:00Z")
    assert result.code == 0 and result.out == "" and result.err == ""
    assert log.read_text().startswith("2026-03-02T14:00:00Z nothing due; next: 1 email, s step 1")
    result = run("tick", "--log", log, "--phase", "nope", now="2026-03-02T14:01:00Z")
    assert result.code == 2


def test_the_tick_log_is_rotated(home, monkeypatch):
    from seqctl import clock, output

    monkeypatch.setattr(output, "LOG_MAX_BYTES", 200)
    log = home / "tick.log"
    output.log_to(log)
    clock.set_now(clock.parse_instant("2026-03-02T14:00:00Z"))
    try:
        for n in range(40):
            output.line(f"line {n:02d} " + "x" * 20)
    finally:
        output.log_to(None)
    kept = sorted(p.name for p in home.iterdir() if p.name.startswith("tick.log"))
    assert kept == ["tick.log", "tick.log.1", "tick.log.2", "tick.log.3", "tick.log.lock"]
    assert all(p.stat().st_size <= 200 for p in home.glob("tick.log*"))
    assert log.read_text().splitlines()[-1].startswith("2026-03-02T14:00:00Z line 39 ")
    lines = [int(x.split()[2]) for name in ("tick.log.3", "tick.log.2", "tick.log.1", "tick.log")
             for x in (home / name).read_text().splitlines()]
    assert lines == sorted(lines) and lines[-1] == 39     # in order; only the oldest are gone


def test_tables_fit_80_columns_and_never_cut_an_address(run, home):
    chicago(run, home, (LONG, "bo@b.test"))
    assert run("tick", now="2026-03-02T15:00:00Z").code == 0
    assert run("inbox", "remove", "rep@acme.test").code == 0        # both fail: no inbox
    for command in (["enrollments"], ["contacts"], ["outbox", "list", "--status", "all"]):
        out = run(*command, now="2026-03-02T15:00:00Z", env={"COLUMNS": "80"}).out
        assert LONG in out, command
        assert max(len(line) for line in out.splitlines()) <= 80, (command, out)
    out = run("enrollments", env={"COLUMNS": "80"}).out
    reason = [line for line in out.splitlines() if line.startswith("    ")]
    assert reason and all(len(line) <= 80 for line in reason)      # folded below the row


def _tty_run(args, home, env_extra=None):
    import os
    import pty
    import subprocess
    import sys

    main, child = pty.openpty()
    env = {**os.environ, "SEQCTL_HOME": str(home), "TERM": "xterm-256color", **(env_extra or {})}
    env.pop("NO_COLOR", None) if "NO_COLOR" not in (env_extra or {}) else None
    proc = subprocess.run([sys.executable, "-m", "seqctl", *args], stdout=child,
                          stderr=subprocess.PIPE, env=env, cwd=ROOT, timeout=120)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.returncode == 0, proc.stderr
    return out.decode()


def test_statuses_are_coloured_on_a_terminal_only_and_no_color_is_honoured(run, home):
    chicago(run, home)
    green = "\x1b[32mactive"
    assert green in _tty_run(["enrollments"], home)
    plain = _tty_run(["enrollments"], home, {"NO_COLOR": "1"})
    assert "active" in plain and "\x1b[3" not in plain and "\x1b[9" not in plain
    piped = run("enrollments").out
    assert "\x1b[" not in piped and "active" in piped


def test_spam_bands_are_coloured_on_a_terminal_only(home):
    red = _tty_run(["spam-score", "--subject", "FREE!!! ACT NOW", "--body",
                    "100% free, guaranteed, click here http://bit.ly/x http://bit.ly/y"], home)
    assert "\x1b[1;31mred" in red or "\x1b[31;1mred" in red, red
    green = _tty_run(["spam-score", "--subject", "Quick question", "--body",
                      "Hi Sam, would a short call next week help?"], home)
    assert "\x1b[32mgreen" in green, green
    plain = _tty_run(["spam-score", "--subject", "Quick question", "--body", "Hi Sam"], home,
                     {"NO_COLOR": "1"})
    assert "green" in plain and "\x1b[3" not in plain


FAKE_CRONTAB = """#!/bin/sh
# a stand-in for crontab(1): the table lives in $FAKE_CRONTAB
case "$1" in
  -l) if [ -f "$FAKE_CRONTAB" ]; then cat "$FAKE_CRONTAB"; else
        echo "no crontab for $(id -un)" >&2; exit 1; fi ;;
  -) cat > "$FAKE_CRONTAB"; echo write >> "$FAKE_CRONTAB.writes" ;;
  *) echo "usage: crontab [-l | -]" >&2; exit 1 ;;
esac
"""


def test_cron_install_keeps_every_other_line_and_is_idempotent(run, home, tmp_path):
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "crontab"
    fake.write_text(FAKE_CRONTAB)
    fake.chmod(0o755)
    table = tmp_path / "table"
    mine = "MAILTO=me@example.com\n# backups\n30 2 * * * /usr/local/bin/backup --all\n"
    table.write_text(mine)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_CRONTAB": str(table)}
    result = run("cron", "--install", env=env)
    assert result.code == 0, result.err
    text = table.read_text()
    assert text.startswith(mine)
    assert text.count(" tick --log ") == 1 and "--log " + str(home / "tick.log") in text
    again = run("cron", "--install", env=env)
    assert again.code == 0 and "nothing changed" in again.err
    assert table.read_text() == text
    assert (tmp_path / "table.writes").read_text() == "write\n"          # written once
    split = run("cron", "--install", "--split", env=env)                 # replaces its block
    assert split.code == 0
    text = table.read_text()
    assert text.startswith(mine) and " tick --log " not in text
    assert text.count("--phase ") == 3


def test_cron_install_starts_a_crontab_when_there_is_none(run, home, tmp_path):
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "crontab").write_text(FAKE_CRONTAB)
    (bin_dir / "crontab").chmod(0o755)
    table = tmp_path / "table"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_CRONTAB": str(table)}
    assert run("cron", "--install", env=env).code == 0
    assert table.read_text().count(" tick --log ") == 1


def test_a_split_phase_waits_for_the_running_tick_instead_of_skipping(run, home):
    import os
    import subprocess
    import sys

    from seqctl import db as database
    from seqctl.engine.tick import TickLock

    chicago(run, home)
    held = TickLock.beside(database.get())
    assert held.acquire()
    env = {**os.environ, "SEQCTL_HOME": str(home), "SEQCTL_NOW": "2026-03-02T15:00:00Z"}
    proc = subprocess.Popen([sys.executable, "-m", "seqctl", "tick", "--phase", "engine",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    try:
        note = proc.stderr.readline().decode()
        assert "waiting for another tick" in note
        assert run("tick", "--json").json.get("skipped") == "another tick is running"
    finally:
        held.release()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    import json

    counts = json.loads(out)
    assert "skipped" not in counts and counts["emails_queued"] == 1


def test_contacts_delete_erases_everything_and_keeps_a_hashed_suppression(run, home):
    import hashlib
    import sqlite3

    chicago(run, home, ("ann@a.test", "bo@b.test"))
    assert run("tick", now="2026-03-02T15:00:00Z").code == 0          # emails sent
    assert run("tick", now="2026-03-04T15:00:00Z").code == 0          # call tasks
    assert run("deals", "add", "Acme", "--contact", "ann@a.test").code == 0
    result = run("contacts", "delete", "ann@a.test", "--json")
    assert result.code == 0, result.err
    assert result.json["enrollments"] == 1 and result.json["tasks"] == 1
    db = sqlite3.connect(home / "seqctl.db")
    dump = "\n".join(db.iterdump())
    assert "ann@a.test" not in dump                                   # no trace by name
    digest = "sha256:" + hashlib.sha256(b"ann@a.test").hexdigest()
    assert db.execute("SELECT reason FROM suppressions WHERE email = ?",
                      [digest]).fetchone() == ("erased",)
    assert [r["email"] for r in run("contacts", "--json").json] == ["bo@b.test"]
    assert run("stats", "s", "--json").json["totals"]["sent"] == 2    # counts survive
    # imported and enrolled again, the address is still never emailed
    assert run("enroll", "s", "ann@a.test", now="2026-03-09T14:00:00Z").code == 0
    assert run("tick", now="2026-03-09T15:00:00Z").code == 0
    sent_to = [r["to"] for r in run("outbox", "list", "--status", "sent", "--json").json]
    assert sent_to.count("ann@a.test") == 0
    assert run("contacts", "delete", "nobody@x.test").code == 1


def test_tick_verbose_dry_run_lists_what_would_be_sent_and_created_and_changes_nothing(run,
                                                                                        home):
    chicago(run, home, ("ann@a.test", "ben@b.test"))
    result = run("tick", "-v", "--dry-run", now="2026-03-02T15:00:00Z")
    assert result.code == 0, result.err
    lines = [line.strip() for line in result.out.splitlines()]
    assert [line.split(",")[0] for line in lines if line.startswith("would send")] == [
        "would send: ann@a.test", "would send: ben@b.test"]
    assert "dry run" in result.err
    assert run("outbox", "list", "--json").json == []              # nothing queued or sent
    assert run("tick", now="2026-03-02T15:00:00Z").code == 0         # step 1 really goes
    task = run("tick", "-v", "--dry-run", now="2026-03-04T15:00:00Z").out
    assert "would create task (call): ann@a.test, s step 2: Call" in task
    assert "would create task (call): ben@b.test, s step 2: Call" in task
    assert run("tasks", "--json").json == []
