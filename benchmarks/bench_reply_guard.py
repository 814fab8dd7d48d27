"""What the reply guard costs a busy tick (SPEC 10: before an inbox sends in a tick, its new
mail is read once, so a reply already in the mailbox stops the follow-up).

    .venv/bin/python benchmarks/bench_reply_guard.py [--emails 100] [--runs 5]

For a maildir inbox, and for an SMTP inbox whose replies are read over IMAP (Dovecot on
loopback, when it is installed): the dispatch phase of a tick that sends EMAILS emails, with
the guard and with the guard switched off (interleaved, best of RUNS each), and the guard's
own work alone (one incremental sync with nothing new). An idle tick (nothing due) never runs
the guard. Results print as a Markdown table.
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


def guard_time(kind: str, **servers) -> float:
    """The guard's own work: one incremental sync of the inbox, nothing new in it."""
    from seqctl.engine import accounts, sync
    from seqctl.providers.registry import default_factory

    db, now, _key, smtp = prepare(kind, 1, **servers)
    inbox = accounts.list_inboxes(db)[0]
    provider = default_factory(inbox)
    started = time.perf_counter()
    sync.sync_inbox(db, inbox, provider, now)
    elapsed = time.perf_counter() - started
    if smtp is not None:
        smtp.stop()
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
        print("| inbox | busy tick, guard off | busy tick, guard on | the guard's sync alone |")
        print("|---|---|---|---|")
        for label, servers in kinds:
            kind = "maildir" if label == "maildir" else "smtp"
            offs, ons = [], []
            for _ in range(args.runs):      # interleaved: a busy machine slows both alike
                offs.append(dispatch_time(kind, args.emails, False, **servers))
                ons.append(dispatch_time(kind, args.emails, True, **servers))
            off, on = min(offs), min(ons)
            alone = min(guard_time(kind, **servers) for _ in range(args.runs))
            print(f"| {label} | {off * 1000:.0f} ms | {on * 1000:.0f} ms | "
                  f"{alone * 1000:.1f} ms ({alone / off:.1%} of the busy tick) |")
    finally:
        for server in stack:
            server.stop()


if __name__ == "__main__":
    main()
