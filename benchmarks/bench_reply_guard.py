"""What the reply guard costs a busy tick (SPEC 10: before an inbox sends in a tick, its new
mail is read once, so a reply already in the mailbox stops the follow-up).

    .venv/bin/python benchmarks/bench_reply_guard.py [--emails 100] [--runs 5]

For a maildir inbox, and for an SMTP inbox whose replies are read over IMAP (Dovecot on
loopback, when it is installed): the dispatch phase of a tick that sends EMAILS emails, with
the guard and with the guard switched off, best of RUNS each. The difference is the guard's
cost; an idle tick (nothing due) never runs it. Results print as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "tests"))

SEQUENCE = """
name: bench
steps:
  - step_type: email
    subject: "Hi {{first_name}}"
    body: "Hello {{first_name}}"
"""


def prepare(kind: str, emails: int, dovecot=None):
    """A fresh database with one inbox of `kind` and `emails` queued first touches; returns
    (db, now, the install key, the SMTP server to stop or None)."""
    from seqctl import clock, config
    from seqctl import db as database
    from seqctl.engine import accounts, cycle, enroll, sequence_reader, sequence_store
    from seqctl.files import install_secret

    home = Path(tempfile.mkdtemp(prefix="seqctl-bench-guard-"))
    os.environ["SEQCTL_HOME"] = str(home)
    config.set_db_path(None)
    database.reset()
    db = database.get()
    db.execute("INSERT OR REPLACE INTO settings (key, value) "
               "VALUES ('sequence_hourly_send_cap', '100000')")
    address = "rep@bench.example"
    accounts.add_user(db, address, "Riley", "Rep")
    if kind == "maildir":
        from seqctl.providers.maildir import create_maildir

        create_maildir(home / "mail")
        accounts.add_inbox(db, "maildir", address, {"dir": str(home / "mail")}, daily_cap=100_000)
    else:
        from servers.smtp_server import SmtpTestServer

        account = dovecot.add_user()
        os.environ["SEQCTL_BENCH_IMAP_PW"] = account.password
        smtp = SmtpTestServer(users={account.username: account.password}).start()
        accounts.add_inbox(db, "smtp", address, {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "security": "none",
            "imap_host": account.host, "imap_port": account.port, "imap_security": "none",
            "username": account.username, "password_env": "SEQCTL_BENCH_IMAP_PW",
            "append_sent": False, "timeout": 10}, daily_cap=100_000)
    now = clock.parse_instant("2026-03-02T14:01:00Z")       # minute 1: no sync phase
    validation = sequence_reader.validate_sequence(SEQUENCE)
    sequence_store.apply_spec(db, validation.spec, now)
    enroll.enroll(db, "bench", [f"c{i}@buyer.example" for i in range(emails)], now)
    key = install_secret(home)
    clock.set_now(now - timedelta(minutes=1))
    cycle.run(db, now - timedelta(minutes=1), phase="sync", key=key)   # the cursor is set
    clock.set_now(now)
    cycle.run(db, now, phase="engine", key=key)                # emails queued, none sent
    return db, now, key, (smtp if kind != "maildir" else None)


def dispatch_time(kind: str, emails: int, guard: bool, **servers) -> float:
    from seqctl import clock
    from seqctl.engine import cycle

    db, now, key, smtp = prepare(kind, emails, **servers)
    started = time.perf_counter()
    counts = cycle.run(db, now, phase="dispatch", key=key, guard_replies=guard)
    elapsed = time.perf_counter() - started
    clock.set_now(None)
    if smtp is not None:
        smtp.stop()
    assert counts.emails_sent == emails, counts
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    kinds: list[tuple[str, dict]] = [("maildir", {})]
    stack = []
    from servers.imap_server import DovecotServer, find_dovecot

    if find_dovecot():
        dovecot = DovecotServer().start()
        stack.append(dovecot)
        kinds.append(("smtp + IMAP (Dovecot)", {"dovecot": dovecot}))
    try:
        print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; "
              f"{args.emails} emails per tick, best of {args.runs}\n")
        print("| inbox | busy tick, guard off | busy tick, guard on | guard's cost |")
        print("|---|---|---|---|")
        for label, servers in kinds:
            kind = "maildir" if label == "maildir" else "smtp"
            off = min(dispatch_time(kind, args.emails, False, **servers)
                      for _ in range(args.runs))
            on = min(dispatch_time(kind, args.emails, True, **servers)
                     for _ in range(args.runs))
            print(f"| {label} | {off * 1000:.0f} ms | {on * 1000:.0f} ms | "
                  f"{(on - off) * 1000:+.0f} ms ({(on - off) / off:+.0%}) |")
    finally:
        for server in stack:
            server.stop()


if __name__ == "__main__":
    main()
