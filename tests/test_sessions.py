"""One SMTP connection and one IMAP session per dispatch batch, counted at real servers on
loopback (aiosmtpd, Dovecot) through a proxy that counts the connections it forwards. An error
drops the connection and the next email opens a new one; a refused login ends the batch.
How fast a batch goes is measured in benchmarks/bench_dispatch.py, not here.
"""

from __future__ import annotations

import pytest
from servers.counting_proxy import CountingProxy
from servers.smtp_server import SmtpTestServer

from seqctl import db as database
from seqctl.engine import accounts, sync
from seqctl.providers.imap import PENDING_KEYWORD
from tests.helpers import apply_yaml, at, enroll_all, tick

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

ADDRESS = "rep@example.com"
SEQUENCE = """
    name: batch
    steps:
      - step_type: email
        subject: "Quick question, {{first_name}}"
        body: "Hi {{first_name}}, short note."
"""
T0 = "2026-03-02T14:01:00Z"        # not a sync minute (*/5): the tick is engine + dispatch
PEOPLE = [f"p{i}@buyer.test" for i in range(6)]


def smtp_inbox(db, smtp_port: int, **imap) -> None:
    accounts.add_user(db, ADDRESS, "Riley", "Rep")
    accounts.add_inbox(db, "smtp", ADDRESS, {
        "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "security": "none", "timeout": 5,
        **imap})


def queue_batch(db, people=PEOPLE) -> None:
    apply_yaml(db, SEQUENCE, at(T0))
    enroll_all(db, "batch", list(people), at(T0))


def test_a_batch_of_emails_goes_over_one_smtp_connection(home):
    with SmtpTestServer() as smtp, CountingProxy(smtp.host, smtp.port) as proxy:
        db = database.get()
        smtp_inbox(db, proxy.port)
        queue_batch(db)
        assert tick(db, at(T0)).emails_sent == len(PEOPLE)
        assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(PEOPLE)
        assert proxy.connections == 1


def test_after_a_refused_message_the_next_email_opens_a_new_connection(home):
    with SmtpTestServer() as smtp, CountingProxy(smtp.host, smtp.port) as proxy:
        db = database.get()
        smtp_inbox(db, proxy.port)
        queue_batch(db, PEOPLE[:3])
        smtp.fail_next("DATA", "554 5.7.1 Message refused by policy")
        counts = tick(db, at(T0))
        assert counts.emails_sent == 2
        delivered = [r for m in smtp.messages for r in m.rcpt_tos]
        assert len(delivered) == 2
        assert proxy.connections == 2      # the refusal dropped the first connection


def test_a_refused_login_ends_the_batch_after_one_connection(home, monkeypatch):
    monkeypatch.setenv("SEQCTL_TEST_SMTP_PW", "wrong")
    with SmtpTestServer(users={ADDRESS: "right"}) as smtp, \
            CountingProxy(smtp.host, smtp.port) as proxy:
        db = database.get()
        smtp_inbox(db, proxy.port, password_env="SEQCTL_TEST_SMTP_PW")
        queue_batch(db)
        assert tick(db, at(T0)).emails_sent == 0
        assert smtp.messages == []
        assert proxy.connections == 1
        status = db.execute("SELECT status FROM inboxes").fetchone()[0]
        assert status == "needs_reauth"


def test_the_sent_copies_of_a_batch_share_one_imap_session(home, dovecot, monkeypatch):
    account = dovecot.add_user()
    monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", account.password)
    with SmtpTestServer(users={account.username: account.password}) as smtp, \
            CountingProxy(smtp.host, smtp.port) as smtp_proxy, \
            CountingProxy(account.host, account.port) as imap_proxy:
        db = database.get()
        smtp_inbox(db, smtp_proxy.port, imap_host=imap_proxy.host, imap_port=imap_proxy.port,
                   imap_security="none", username=account.username,
                   password_env="SEQCTL_TEST_IMAP_PW")
        sync.run_sync(db, at(T0))              # the sync cursor is set: no reply guard read
        before = imap_proxy.connections
        queue_batch(db)
        assert tick(db, at(T0)).emails_sent == len(PEOPLE)
        assert imap_proxy.connections - before == 1
        assert smtp_proxy.connections == 1

    imap = account.connect()
    try:
        assert imap.select('"Sent"', readonly=True)[0] == "OK"
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (TO)])")
        copies = [item for item in data if isinstance(item, tuple)]
    finally:
        imap.logout()
    assert len(copies) == len(PEOPLE)
    # every copy was confirmed on the shared session: none is left flagged as being sent
    assert [flags for flags, _ in copies if PENDING_KEYWORD.encode() in flags] == []
