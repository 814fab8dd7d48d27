"""A backlog of inbound mail is read to the end by one sync, batch after batch, or, when the
tick's time budget is spent, the sync says how many messages are still waiting and the next one
reads on. The batch size is made small here so that a few messages make a backlog.
How long a 10k backlog takes is measured in benchmarks/bench_sync.py, not here.
"""

from __future__ import annotations

from seqctl.engine import accounts, sync
from seqctl.providers import imap, maildir
from tests.helpers import at, setup_account

T0 = at("2026-03-02T14:00:00Z")


def note(n: int) -> bytes:
    return (f"From: Person {n} <person{n}@elsewhere.test>\r\nTo: rep@acme.test\r\n"
            f"Subject: Notes {n}\r\nMessage-ID: <n{n}@elsewhere.test>\r\n\r\nNotes.\r\n").encode()


def drop(home, count: int) -> None:
    new = home / "mail" / "inbox" / "new"
    for n in range(count):
        (new / f"{1767690000 + n}.{n}_backlog.host").write_bytes(note(n))


def stored(db) -> int:
    return db.execute("SELECT COUNT(*) FROM inbound").fetchone()[0]


def test_one_sync_reads_a_maildir_backlog_to_the_end(home, monkeypatch):
    monkeypatch.setattr(maildir, "FETCH_LIMIT", 5)
    db, _ = setup_account(home)
    sync.run_sync(db, T0)
    drop(home, 12)
    assert sync.run_sync(db, T0) == 12
    assert stored(db) == 12
    assert sync.run_sync(db, T0) == 0


def test_out_of_time_the_sync_says_what_is_waiting_and_the_next_reads_on(home, monkeypatch,
                                                                          caplog):
    monkeypatch.setattr(maildir, "FETCH_LIMIT", 5)
    db, _ = setup_account(home)
    sync.run_sync(db, T0)
    drop(home, 12)
    caplog.set_level("WARNING", logger="seqctl")
    assert sync.run_sync(db, T0, budget=0) == 5
    assert "7 more new messages are waiting; the next sync reads on" in caplog.text
    caplog.clear()
    assert sync.run_sync(db, T0, budget=0) == 5
    assert "2 more new messages are waiting" in caplog.text
    caplog.clear()
    assert sync.run_sync(db, T0, budget=0) == 2
    assert "waiting" not in caplog.text
    assert stored(db) == 12


def test_one_sync_reads_an_imap_backlog_to_the_end(home, dovecot, monkeypatch):
    monkeypatch.setattr(imap, "FETCH_BATCH", 3)
    account = dovecot.add_user()
    monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", account.password)
    db, _ = setup_account(home)
    accounts.add_inbox(db, "smtp", "imap-rep@acme.test", {
        "smtp_host": "127.0.0.1", "smtp_port": 1, "security": "none",
        "imap_host": account.host, "imap_port": account.port, "imap_security": "none",
        "username": account.username, "password_env": "SEQCTL_TEST_IMAP_PW", "timeout": 5})
    sync.run_sync(db, T0, only="imap-rep@acme.test")
    client = account.connect()
    try:
        for n in range(8):
            assert client.append("INBOX", None, None, note(n))[0] == "OK"
    finally:
        client.logout()
    assert sync.run_sync(db, T0, only="imap-rep@acme.test") == 8
    assert stored(db) == 8
