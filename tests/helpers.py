"""In-process setup for engine tests: a real SQLite file in the test's SEQCTL_HOME."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

from seqctl import clock, config
from seqctl import db as database
from seqctl.engine import accounts, cycle, enroll, sequence_reader, sequence_store
from seqctl.engine.counts import TickCounts
from seqctl.files import install_secret


def at(text: str) -> datetime:
    return clock.parse_instant(text)


def setup_account(home: Path, address: str = "rep@acme.test", first_name: str = "Riley"):
    """A user and a maildir inbox; returns (db, maildir path)."""
    db = database.get()
    accounts.add_user(db, address, first_name, "Rep")
    maildir = home / "mail"
    from seqctl.providers.maildir import create_maildir

    create_maildir(maildir)
    accounts.add_inbox(db, "maildir", address, {"dir": str(maildir)})
    return db, maildir


def apply_yaml(db, text: str, now: datetime | None = None):
    validation = sequence_reader.validate_sequence(textwrap.dedent(text))
    assert validation.ok, validation.errors
    return sequence_store.apply_spec(db, validation.spec, now or clock.now())


def enroll_all(db, sequence: str, emails: list[str], now: datetime) -> dict:
    return enroll.enroll(db, sequence, emails, now)


def install_key() -> bytes:
    """The install secret of the test's home, as the CLI passes it to the engine."""
    return install_secret(config.home())


def tick(db, now: datetime, **kwargs) -> TickCounts:
    clock.set_now(now)
    try:
        return cycle.run(db, now, key=install_key(), **kwargs)
    finally:
        clock.set_now(None)


def sent_files(maildir: Path) -> list[Path]:
    return sorted((maildir / "sent" / "new").iterdir())
