"""Dispatch benchmark (issue 15): SMTP over loopback, with and without the IMAP Sent copy.

    .venv/bin/python benchmarks/bench_dispatch.py [--emails 2000] [--imap-emails 500]

Queues N emails (one step, N contacts) for an SMTP inbox and times the dispatch phase that
sends them to aiosmtpd on loopback (tests/servers/smtp_server.py), against the yardstick of
the same run: the same messages sent with plain `smtplib` on one connection, and with a new
connection per email. Then an SMTP + IMAP inbox whose Sent copies go to Dovecot on loopback
(needs dovecot; `--imap-emails 0` skips it). Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "tests"))

SEQUENCE = """
name: {name}
steps:
  - step_type: email
    subject: "Quick question, {{{{first_name}}}}"
    body: "Hi {{{{first_name}}}}, a short note about {{{{company_name}}}}.\\n\\nThanks"
"""


def queue(db, name: str, address: str, count: int, now) -> None:
    """Enroll `count` contacts from `address` and run the engine phase."""
    from seqctl.engine import enroll, sequence_reader, sequence_store, tick
    from seqctl.engine.counts import TickCounts

    spec = sequence_reader.validate_sequence(SEQUENCE.format(name=name)).spec
    sequence_store.apply_spec(db, spec, now)
    emails = [f"{name}{i}@buyer{i % 50}.example" for i in range(count)]
    enroll.enroll(db, name, emails, now, inbox_address=address)
    tick.run_engine(db, now, TickCounts(), key=bench_key())


def bench_key() -> bytes:
    """The install secret of the benchmark's SEQCTL_HOME (workflows take it as a parameter)."""
    from seqctl.files import install_secret

    return install_secret(Path(os.environ["SEQCTL_HOME"]))


def sent_bytes(db, address: str) -> list[bytes]:
    """The exact bytes seqctl sent from `address` (stored when each email was claimed)."""
    return [row[0] for row in db.execute(
        "SELECT raw FROM outbox o JOIN inboxes i ON i.id = o.inbox_id "
        "WHERE i.address = ? AND o.status = 'sent'", [address])]


SERVER = """
import sys, threading
sys.path.insert(0, {tests!r})
from servers.smtp_server import SmtpTestServer
server = SmtpTestServer(users={users!r}).start()
print(server.port, flush=True)
sys.stdin.read()        # runs until the benchmark closes our stdin
server.stop()
"""


class SmtpServerProcess:
    """aiosmtpd in a process of its own, so that it does not share the benchmark's GIL."""

    def __init__(self, users: dict[str, str] | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER.format(tests=str(HERE / "tests"), users=users or {})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def dispatch_time(db, now) -> tuple[float, int]:
    from seqctl.engine import dispatch
    from seqctl.engine.counts import TickCounts

    counts = TickCounts()
    started = time.perf_counter()
    dispatch.run_dispatch(db, now, counts, key=bench_key())
    return time.perf_counter() - started, counts.emails_sent


def smtplib_time(port: int, messages: list[bytes], *, one_connection: bool) -> float:
    started = time.perf_counter()
    client = smtplib.SMTP("127.0.0.1", port) if one_connection else None
    for raw in messages:
        if client is None:
            with smtplib.SMTP("127.0.0.1", port) as each:
                each.sendmail("rep@bench.example", ["x@buyer.example"], raw)
        else:
            client.sendmail("rep@bench.example", ["x@buyer.example"], raw)
    if client is not None:
        client.quit()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--imap-emails", type=int, default=500)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="seqctl-bench-dispatch-"))
    os.environ["SEQCTL_HOME"] = str(folder)
    from seqctl import clock
    from seqctl import db as database
    from seqctl.engine import accounts

    db = database.get()
    now = clock.parse_instant("2026-03-02T14:01:00Z")
    clock.set_now(now)
    db.execute("INSERT OR REPLACE INTO settings (key, value) "
               "VALUES ('sequence_hourly_send_cap', '1000000')")
    rows = []
    smtp = SmtpServerProcess()
    try:
        address = "rep@bench.example"
        accounts.add_user(db, address, "Rep")
        accounts.add_inbox(db, "smtp", address, {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "security": "none"})
        db.execute("UPDATE inboxes SET daily_cap = 1000000, sync_cursor = 'none' "
                   "WHERE address = ?", [address])
        queue(db, "smtp", address, args.emails, now)
        seconds, sent = dispatch_time(db, now)
        assert sent == args.emails, sent
        messages = sent_bytes(db, address)
        one = smtplib_time(smtp.port, messages, one_connection=True)
        each = smtplib_time(smtp.port, messages, one_connection=False)
        rows.append((f"SMTP dispatch, {args.emails:,} emails", seconds, sent,
                     f"smtplib, one connection: {one:.2f} s ({one / seconds:.0%} of its speed "
                     f"reached); a connection per email: {each:.2f} s"))
        if args.imap_emails:
            rows.append(imap_run(db, args.imap_emails, now + timedelta(minutes=1)))
    finally:
        smtp.stop()

    print(f"seqctl dispatch benchmark — Python {platform.python_version()}, {os.cpu_count()} "
          f"cores, {time.strftime('%Y-%m-%d')}\n")
    print("| run | seqctl | emails/s | baseline, same run |")
    print("|---|---|---|---|")
    for label, seconds, sent, baseline in rows:
        print(f"| {label} | {seconds:.2f} s | {sent / seconds:,.0f} | {baseline} |")


def imap_run(db, count: int, now):
    from servers.imap_server import DovecotServer, find_dovecot

    from seqctl.engine import accounts

    if find_dovecot() is None:
        raise SystemExit("dovecot is not installed (scripts/test-services.sh); --imap-emails 0")
    with DovecotServer() as server:
        account = server.add_user()
        smtp = SmtpServerProcess(users={account.username: account.password})
        os.environ["BENCH_IMAP_PASSWORD"] = account.password
        address = "imap-rep@bench.example"
        accounts.add_user(db, address, "Rep")
        accounts.add_inbox(db, "smtp", address, {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "security": "none",
            "imap_host": account.host, "imap_port": account.port, "imap_security": "none",
            "username": account.username, "password_env": "BENCH_IMAP_PASSWORD"})
        db.execute("UPDATE inboxes SET daily_cap = 1000000, sync_cursor = 'none' "
                   "WHERE address = ?", [address])
        queue(db, "imap", address, count, now)
        seconds, sent = dispatch_time(db, now)
        assert sent == count, sent
        smtp.stop()
        plain = SmtpServerProcess()
        smtp_only = smtplib_time(plain.port, sent_bytes(db, address), one_connection=True)
        plain.stop()
        return (f"SMTP + IMAP Sent copy (Dovecot), {count:,} emails", seconds, sent,
                f"smtplib alone, one connection: {smtp_only:.2f} s")


if __name__ == "__main__":
    main()
