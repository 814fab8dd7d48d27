"""`seqctl demo`: the whole loop on a local maildir inbox, in a temporary folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from seqctl import clock, config, output
from seqctl import db as database
from seqctl.commands._common import install_key
from seqctl.commands.stats import show_stats
from seqctl.errors import SeqctlError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_START = "2026-03-02T14:00:00Z"      # a Monday, 08:00 in Chicago


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)


def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo folder to look around.")] = False,
    days: Annotated[int, typer.Option("--days", min=1, max=60, help="Simulated days.")] = 21,
) -> None:
    """Run the whole loop on a maildir inbox in a temporary folder: apply the example sequence,
    import the example contacts, enroll them, tick through simulated days, drop a reply, tick
    again, and show the exits, tasks and stats. Touches none of your data.

    \b
    Examples:
      seqctl demo
      seqctl demo --days 7 --keep
    """
    sequence_file = EXAMPLES / "cold-saas-intro.yaml"
    contacts_file = EXAMPLES / "contacts.csv"
    if not sequence_file.exists() or not contacts_file.exists():
        raise SeqctlError(f"the demo needs {sequence_file} and {contacts_file} (run it from a "
                          "checkout of seqctl)")
    folder = Path(tempfile.mkdtemp(prefix="seqctl-demo-"))
    saved = {k: os.environ.get(k) for k in ("SEQCTL_HOME", "SEQCTL_DB", "SEQCTL_NOW")}
    os.environ["SEQCTL_HOME"] = str(folder / "home")
    os.environ.pop("SEQCTL_DB", None)
    os.environ.pop("SEQCTL_NOW", None)
    config.set_db_path(None)
    database.reset()
    try:
        _run(folder, sequence_file, contacts_file, days, keep)
    finally:
        database.reset()
        clock.set_now(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def _say(text: str) -> None:
    output.line(f"\n▸ {text}")


def _run(folder: Path, sequence_file: Path, contacts_file: Path, days: int,
         keep: bool = False) -> None:
    from seqctl.engine import accounts, contacts, cycle, enroll, outbox, sequence_store, tasks
    from seqctl.providers.maildir import create_maildir

    start = clock.parse_instant(DEMO_START)
    clock.set_now(start)
    db = database.get()
    key = install_key()
    mail = folder / "mail"
    create_maildir(mail)

    _say("a rep and a local maildir inbox (no account needed)")
    accounts.add_user(db, "riley@acme-demo.test", "Riley", "Parker")
    accounts.add_inbox(db, "maildir", "riley@acme-demo.test", {"dir": str(mail)})
    output.line(f"  riley@acme-demo.test → sent mail in {mail / 'sent'}, replies from "
                f"{mail / 'inbox'}")

    _say(f"seqctl sequence apply {sequence_file.name}")
    validation = sequence_store.validate_text(db, sequence_file.read_text())
    if not validation.ok:
        raise SeqctlError(f"{sequence_file}: {validation.errors[0]}")
    result = sequence_store.apply_spec(db, validation.spec, start)
    zone = enroll.sequence_by_name(db, result.name)["timezone"]
    output.line(f"  {result.action} '{result.name}' with {result.steps} steps")

    _say(f"seqctl contacts import {contacts_file.name}")
    imported = contacts.import_contacts(db, contacts_file.read_bytes(), filename=str(contacts_file))
    output.line(f"  {imported.created} contacts created")

    _say("seqctl enroll cold-saas-intro --csv contacts.csv")
    enrolled: list[str] = []
    with open(contacts_file, "rb") as stream:
        summary = enroll.enroll_stream(
            db, result.name, start, csv=(stream, str(contacts_file)),
            on_result=lambda row: enrolled.append(row["email"]) if not enrolled else None)
    output.line(f"  enrolled {summary['enrolled']}, skipped {summary['skipped_duplicates']}, "
                f"failed {summary['failed']}")

    replier = enrolled[0]
    replied = False
    replied_at = None
    _say(f"ticking every 30 simulated minutes for {days} days (cron would tick every minute)")
    now = start
    end = start + timedelta(days=days)
    totals = {"emails_sent": 0, "tasks_created": 0, "exited": 0}
    while now <= end:
        clock.set_now(now)
        counts = cycle.run(db, now, key=key, phase="all")
        if not cycle.sync_due(db, now):
            counts.synced += cycle.sync_now(db, now)
        for name in totals:
            totals[name] += getattr(counts, name)
        if counts.emails_sent or counts.tasks_created or counts.exited:
            local = output.local_time(now, zone, now, relative=False)
            output.line(f"  {local}  sent {counts.emails_sent}, "
                        f"tasks {counts.tasks_created}, exits {counts.exited}")
        if not replied and now >= start + timedelta(days=1, hours=2):
            _drop_reply(db, mail, replier)
            replied_at = now
            _say(f"{replier} replied: a message lands in {mail / 'inbox' / 'new'}")
            replied = True
        now += timedelta(minutes=30)

    _say("enrollments (seqctl enrollments list)")
    rows = enroll.enrollment_rows(db)
    for row in rows:
        row["next"] = output.local_time(row["next_run_at"], zone, now)
    output.table(rows, ["email", "status", "exit_reason", "step", "next"], fold=["next"])
    open_tasks = tasks.list_tasks(db, status="open")
    _say(f"open tasks (seqctl tasks list): the first 8 of {len(open_tasks)}")
    for task in open_tasks:
        task["due"] = output.local_time(task["due_at"], zone, now)
    output.table(open_tasks[:8], ["kind", "title", "email", "due"], fold=["due"])
    _say("stats (seqctl stats cold-saas-intro)")
    show_stats(db, result.name)
    sent = len(list((mail / "sent" / "new").iterdir()))
    after = outbox.sent_since(db, replier, replied_at) if replied_at else 0
    output.line(f"\n{sent} emails were written to {mail / 'sent' / 'new'}; "
                f"{totals['tasks_created']} tasks created; "
                + (f"{replier} got nothing after replying." if after == 0 else
                   f"{replier} got {after} emails after replying: that is a bug."))
    if keep:
        output.line(f"the demo folder is kept: {folder} (delete it when you are done)")
    else:
        output.line("the demo folder is deleted now; run `seqctl demo --keep` to keep it and "
                    "look at the emails")


def _drop_reply(db, mail: Path, replier: str) -> None:
    """Write a reply to the first email into the maildir inbox, as a mail client would."""
    import email.policy
    from email.message import EmailMessage

    from seqctl.engine import outbox

    first = outbox.first_sent(db, replier)
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = replier
    message["To"] = "riley@acme-demo.test"
    message["Subject"] = "Re: " + (first["subject"] if first else "hello")
    if first:
        message["In-Reply-To"] = first["message_id"]
        message["References"] = first["message_id"]
    message["Message-ID"] = "<demo-reply-1@example.test>"
    message.set_content("Sounds interesting, can you send times for Thursday?\n")
    target = mail / "inbox" / "new" / "demo-reply-1.eml"
    target.write_bytes(message.as_bytes())

