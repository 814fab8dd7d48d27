"""Sync benchmark (issue 15): a backlog of 10k inbound messages, on maildir and on IMAP (Dovecot).

    .venv/bin/python benchmarks/bench_sync.py [--messages 10000] [--no-imap]

Sends one email to each of 3,000 enrolled contacts through a maildir inbox, then drops a
backlog of N inbound messages: replies to those emails (30%), newsletters with
`Precedence: bulk` and `List-Unsubscribe` (30%), out-of-office replies with a return date
(10%), delivery-status bounces (10%) and mail from strangers (20%). Times one `sync` run over
the whole backlog (it must read all of it, not 500 a run), then a second sync with nothing new,
and, as the yardstick from the same run, parsing the same messages with the standard
library's `email.message_from_bytes` (compat32). The IMAP run puts the same backlog into a
Dovecot INBOX on loopback (tests/servers/imap_server.py; needs dovecot installed) and syncs an
SMTP + IMAP inbox. Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import email
import os
import platform
import random
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
    subject: "Quick question, {{first_name}}"
    body: "Hi {{first_name}}, a short note about {{company_name}}."
  - step_type: email
    delay_business_days: 3
    body: "Following up on my note below."
"""
CONTACTS = 3000
REP = "rep@bench.example"


def inbound(i: int, sent: list[tuple[str, str]], rng: random.Random) -> bytes:
    """Message number i of the backlog."""
    kind = rng.random()
    date = email.utils.formatdate(1767690000 + i * 7, usegmt=True)
    if kind < 0.30:
        to_email, message_id = sent[i % len(sent)]
        return (f"From: {to_email}\r\nTo: {REP}\r\nSubject: Re: Quick question\r\n"
                f"Date: {date}\r\nMessage-ID: <r{i}@client.example>\r\n"
                f"In-Reply-To: {message_id}\r\nReferences: {message_id}\r\n\r\n"
                f"Thanks, let's talk next week.\r\n\r\nOn Mon you wrote:\r\n> Hi there\r\n"
                ).encode()
    if kind < 0.60:
        body = ("Héllo reader, this week's digest: " + "news and links " * 80 + "\r\n") * 4
        return (f"From: News <news@letters{i % 50}.example>\r\nTo: {REP}\r\n"
                f"Subject: Weekly digest #{i}: what changed on March 9\r\nDate: {date}\r\n"
                f"Message-ID: <n{i}@letters.example>\r\nPrecedence: bulk\r\n"
                f"List-Unsubscribe: <mailto:leave@letters.example>\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}").encode()
    if kind < 0.70:
        to_email, message_id = sent[(i * 7) % len(sent)]
        return (f"From: {to_email}\r\nTo: {REP}\r\nSubject: Automatic reply: Quick question\r\n"
                f"Date: {date}\r\nMessage-ID: <a{i}@client.example>\r\n"
                f"Auto-Submitted: auto-replied\r\nIn-Reply-To: {message_id}\r\n\r\n"
                f"I am out of the office until March 16 with limited access to email.\r\n"
                ).encode()
    if kind < 0.80:
        to_email, message_id = sent[(i * 11) % len(sent)]
        boundary = f"b{i}"
        return (f"From: MAILER-DAEMON@mx.example\r\nTo: {REP}\r\n"
                f"Subject: Undelivered Mail Returned to Sender\r\nDate: {date}\r\n"
                f"Message-ID: <d{i}@mx.example>\r\nAuto-Submitted: auto-replied\r\n"
                f"Content-Type: multipart/report; report-type=delivery-status; "
                f"boundary=\"{boundary}\"\r\n\r\n"
                f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
                f"I'm sorry to have to inform you that your message could not be delivered.\r\n"
                f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
                f"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; {to_email}\r\n"
                f"Action: failed\r\nStatus: 5.1.1\r\n"
                f"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
                f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
                f"Message-ID: {message_id}\r\nTo: {to_email}\r\n"
                f"--{boundary}--\r\n").encode()
    return (f"From: Someone <person{i}@elsewhere.example>\r\nTo: {REP}\r\n"
            f"Subject: Meeting notes {i}\r\nDate: {date}\r\nMessage-ID: <s{i}@elsewhere.example>"
            f"\r\n\r\nHere are the notes from today.\r\n").encode()


def prepare(folder: Path):
    """A database with CONTACTS emails sent through a maildir inbox; returns (db, sent)."""
    os.environ["SEQCTL_HOME"] = str(folder)
    from seqctl import clock, config
    from seqctl import db as database
    from seqctl.engine import accounts, cycle, enroll, sequence_reader, sequence_store
    from seqctl.files import install_secret
    from seqctl.providers.maildir import create_maildir

    db = database.get()
    now = clock.parse_instant("2026-01-05T10:00:00Z")
    clock.set_now(now)
    accounts.add_user(db, REP, "Rep")
    create_maildir(folder / "mail")
    accounts.add_inbox(db, "maildir", REP, {"dir": str(folder / "mail")})
    db.execute("UPDATE settings SET value = '100000' WHERE key = 'sequence_hourly_send_cap'")
    db.execute("INSERT OR REPLACE INTO settings (key, value) "
               "VALUES ('sequence_hourly_send_cap', '100000')")
    validation = sequence_reader.validate_sequence(SEQUENCE)
    sequence_store.apply_spec(db, validation.spec, now)
    emails = [f"person{i}@company{i % 400}.example" for i in range(CONTACTS)]
    enroll.enroll(db, "bench", emails, now)
    cycle.run(db, now + timedelta(minutes=1), key=install_secret(config.home()), phase="all")
    sent = db.execute("SELECT to_email, message_id FROM outbox WHERE status = 'sent'").fetchall()
    assert len(sent) == CONTACTS, len(sent)
    return db, [tuple(row) for row in sent], now + timedelta(days=1)


def timed_sync(db, now, only=None) -> tuple[float, int]:
    from seqctl.engine import sync

    started = time.perf_counter()
    synced = sync.run_sync(db, now, only=only)
    return time.perf_counter() - started, synced


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--no-imap", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="seqctl-bench-sync-"))
    db, sent, now = prepare(folder)
    from seqctl.engine import sync

    rng = random.Random(15)
    backlog = [inbound(i, sent, rng) for i in range(args.messages)]
    started = time.perf_counter()
    for raw in backlog:
        email.message_from_bytes(raw)
    stdlib = time.perf_counter() - started

    sync.run_sync(db, now)               # the first sync fixes the cursor of a new folder
    new = folder / "mail" / "inbox" / "new"
    for i, raw in enumerate(backlog):
        (new / f"{1767690000 + i}.{i}_bench.host").write_bytes(raw)
    rows = []
    seconds, synced = timed_sync(db, now + timedelta(minutes=5))
    assert synced == args.messages, (synced, args.messages)
    again, nothing = timed_sync(db, now + timedelta(minutes=10))
    assert nothing == 0
    rows.append(("maildir", seconds, again, synced))

    if not args.no_imap:
        rows.append(imap_run(db, backlog, now + timedelta(minutes=15)))

    print(f"seqctl sync benchmark — Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}; {args.messages:,} inbound messages\n")
    print("| inbox | sync of the backlog | second sync, nothing new | messages/s "
          "| stdlib parse, same messages |")
    print("|---|---|---|---|---|")
    for kind, seconds, again, synced in rows:
        print(f"| {kind} | {seconds:.1f} s | {again * 1000:.0f} ms | {synced / seconds:,.0f} "
              f"| {stdlib:.1f} s |")


def imap_run(db, backlog: list[bytes], now):
    from servers.imap_server import DovecotServer, find_dovecot

    from seqctl.engine import accounts, sync

    if find_dovecot() is None:
        raise SystemExit("dovecot is not installed (scripts/test-services.sh installs it); "
                         "use --no-imap")
    with DovecotServer() as server:
        account = server.add_user()
        os.environ["BENCH_IMAP_PASSWORD"] = account.password
        address = "imap-rep@bench.example"
        accounts.add_inbox(db, "smtp", address, {
            "smtp_host": "127.0.0.1", "smtp_port": 1, "security": "none",
            "imap_host": account.host, "imap_port": account.port, "imap_security": "none",
            "username": account.username, "password_env": "BENCH_IMAP_PASSWORD"})
        sync.run_sync(db, now, only=address)            # cursor: from now on
        imap = account.connect()
        for raw in backlog:
            imap.append("INBOX", None, None, raw)
        imap.logout()
        seconds, synced = timed_sync(db, now + timedelta(minutes=5), only=address)
        assert synced == len(backlog), (synced, len(backlog))
        again, nothing = timed_sync(db, now + timedelta(minutes=10), only=address)
        assert nothing == 0
        return ("IMAP (Dovecot on loopback)", seconds, again, synced)


if __name__ == "__main__":
    main()
