"""An inbox's batch overlaps the bookkeeping of one email with the send of the next; the claim
rule does not move. Watched from a real SMTP server (aiosmtpd on loopback) at each DATA, while
the dispatcher waits for its answer, through a connection of the server's own to the database
file: the email on the wire is claimed, no email after it is, and nothing but the email before
it (its answer being recorded) is still `sending`. What happens meanwhile (an unsubscribe, an
exit) is honoured by the next email, which was composed before it.
How fast a batch goes is measured in benchmarks/bench_dispatch.py, not here.
"""

from __future__ import annotations

import sqlite3
from email import message_from_bytes

import pytest
from servers.smtp_server import SmtpTestServer

from seqctl import clock
from seqctl import db as database
from seqctl.db import database_file
from seqctl.engine import enroll, exits
from seqctl.errors import SeqctlError
from tests.helpers import apply_yaml, at, enroll_all, tick
from tests.test_sessions import PEOPLE, T0, queue_batch, smtp_inbox


def outbox_by_message_id(path) -> list[tuple[str, str, int]]:
    """(Message-ID, status, attempts) of every email, in send order, read by a connection of
    its own (the server's thread)."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT message_id, status, attempts FROM outbox "
                            "ORDER BY scheduled_at, id").fetchall()


def first_message_id(path, to_email: str) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT message_id FROM outbox WHERE to_email = ?",
                            [to_email]).fetchone()[0].strip("<>")


def message_id(content: bytes) -> str:
    return message_from_bytes(content)["Message-ID"].strip().strip("<>")


def while_on_the_wire(path, person: str, action):
    """A DATA hook: while `person`'s email is on the wire, `action(db)` runs on a database
    connection of the server's own (another writer, as `seqctl serve` would be)."""
    def hook(content: bytes) -> None:
        if message_id(content) == first_message_id(path, person):
            own = database.connect(path)
            try:
                action(own)
            finally:
                own.close()
    return hook


def test_while_an_email_is_on_the_wire_only_it_and_the_one_before_are_sending(home):
    seen: list[tuple[int, list[tuple[str, int]]]] = []
    with SmtpTestServer() as smtp:
        db = database.get()
        path = database_file(db)
        smtp_inbox(db, smtp.port)
        queue_batch(db)

        def watch(content: bytes) -> None:
            rows = outbox_by_message_id(path)
            ids = [r[0].strip("<>") for r in rows]
            seen.append((ids.index(message_id(content)), [(r[1], r[2]) for r in rows]))

        smtp.handler.on_data = watch
        assert tick(db, at(T0)).emails_sent == len(PEOPLE)
    assert [position for position, _ in seen] == list(range(len(PEOPLE)))
    for position, states in seen:
        assert states[position] == ("sending", 1)                   # claimed before the call
        assert all(s == ("queued", 0) for s in states[position + 1:])   # never ahead
        assert all(s[0] == "sent" for s in states[: max(0, position - 1)])
        if position:
            assert states[position - 1][0] in ("sending", "sent")    # being recorded


def test_an_unsubscribe_while_the_email_before_is_on_the_wire_stops_the_next_one(home):
    """The next email is composed while the one before is on the wire; the claim re-checks
    the suppression list, so an address suppressed meanwhile gets nothing."""
    with SmtpTestServer() as smtp:
        db = database.get()
        path = database_file(db)
        smtp_inbox(db, smtp.port)
        queue_batch(db, PEOPLE[:4])

        smtp.handler.on_data = while_on_the_wire(path, PEOPLE[0], lambda own: (
            exits.add_suppression(own, PEOPLE[1], "unsubscribe", clock.now())))
        counts = tick(db, at(T0))
        delivered = [r for m in smtp.messages for r in m.rcpt_tos]
    assert PEOPLE[1] not in delivered
    assert sorted(delivered) == sorted([PEOPLE[0], PEOPLE[2], PEOPLE[3]])
    assert counts.emails_sent == 3
    status = db.execute("SELECT o.status FROM outbox o WHERE o.to_email = ?",
                        [PEOPLE[1]]).fetchone()[0]
    assert status in ("queued", "skipped", "cancelled")
    assert db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sending'").fetchone()[0] == 0


def test_an_exit_while_the_email_before_is_on_the_wire_stops_the_next_one(home):
    with SmtpTestServer() as smtp:
        db = database.get()
        path = database_file(db)
        smtp_inbox(db, smtp.port)
        queue_batch(db, PEOPLE[:3])

        def unenroll_the_third(own) -> None:
            (enrollment_id,) = own.execute(
                "SELECT e.id FROM enrollments e JOIN contacts c ON c.id = e.contact_id "
                "WHERE c.email = ?", [PEOPLE[2]]).fetchone()
            assert enroll.unenroll(own, enrollment_id, clock.now())

        smtp.handler.on_data = while_on_the_wire(path, PEOPLE[1], unenroll_the_third)
        counts = tick(db, at(T0))
        delivered = [r for m in smtp.messages for r in m.rcpt_tos]
    assert delivered == PEOPLE[:2]
    assert counts.emails_sent == 2
    assert db.execute("SELECT status FROM outbox WHERE to_email = ?",
                      [PEOPLE[2]]).fetchone()[0] == "cancelled"


def test_a_sender_limit_mid_batch_leaves_the_rest_queued_and_unclaimed(home):
    """The email after the throttled one was already composed, but never claimed: it and the
    rest wait, queued, their attempts untouched."""
    with SmtpTestServer() as smtp:
        db = database.get()
        smtp_inbox(db, smtp.port)
        path = database_file(db)
        queue_batch(db, PEOPLE[:5])

        def limit_the_third(content: bytes) -> None:
            if message_id(content) == first_message_id(path, PEOPLE[2]):
                smtp.fail_next("DATA", "451 4.7.0 Too many messages, slow down")

        smtp.handler.on_data = limit_the_third
        counts = tick(db, at(T0))
    assert counts.emails_sent == 2
    rows = db.execute("SELECT to_email, status, attempts FROM outbox "
                      "ORDER BY scheduled_at, id").fetchall()
    assert [tuple(r) for r in rows[:2]] == [(PEOPLE[0], "sent", 1), (PEOPLE[1], "sent", 1)]
    assert [r[1] for r in rows[2:]] == ["queued"] * 3
    assert [r[2] for r in rows[3:]] == [0, 0]        # never claimed
    assert counts.deferred == 3
    inbox = db.execute("SELECT status FROM inboxes").fetchone()[0]
    assert inbox == "throttled"


BCC_SEQUENCE = """
    name: {name}
    steps:
      - step_type: email
        subject: "{subject} {{{{first_name}}}}"
        body: "Hello {{{{first_name}}}}"
        bcc: ["crm@acme.test"]
"""


def test_the_next_email_to_an_address_the_server_just_refused_does_not_go(home):
    """The contact's own address is refused while the Bcc copy is accepted (a hard bounce).
    Their email in another sequence, next in the batch, was composed meanwhile; it is claimed
    only after the bounce is recorded, so it does not go."""
    with SmtpTestServer() as smtp:
        db = database.get()
        smtp_inbox(db, smtp.port)
        apply_yaml(db, BCC_SEQUENCE.format(name="a", subject="A"), at(T0))
        apply_yaml(db, BCC_SEQUENCE.format(name="b", subject="B"), at(T0))
        enroll_all(db, "a", ["gone@buyer.test"], at(T0))
        enroll_all(db, "b", ["gone@buyer.test"], at(T0))
        enroll_all(db, "a", ["ok@buyer.test"], at(T0))
        smtp.fail_address("gone@buyer.test", "550 5.1.1 no such user")
        counts = tick(db, at(T0))
        delivered = sorted(r for m in smtp.messages for r in m.rcpt_tos)
    assert delivered == ["crm@acme.test", "crm@acme.test", "ok@buyer.test"]
    assert counts.emails_sent == 2
    assert db.execute("SELECT reason FROM suppressions WHERE email = 'gone@buyer.test'"
                      ).fetchone()[0] == "bounced"
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'bounce'").fetchone()[0] == 1
    statuses = [r[0] for r in db.execute(
        "SELECT o.status FROM outbox o JOIN enrollments e ON e.id = o.enrollment_id "
        "JOIN sequences s ON s.id = e.sequence_id WHERE o.to_email = 'gone@buyer.test' "
        "ORDER BY s.name")]
    assert statuses == ["sent", "cancelled"]


def test_a_bad_retry_budget_stops_the_batch_before_anything_is_claimed(home, monkeypatch):
    with SmtpTestServer() as smtp:
        db = database.get()
        smtp_inbox(db, smtp.port)
        queue_batch(db, PEOPLE[:3])
        monkeypatch.setenv("SEQCTL_RETRY_BUDGET", "soon")
        with pytest.raises(SeqctlError, match="SEQCTL_RETRY_BUDGET"):
            tick(db, at(T0))
        assert smtp.messages == []
    assert {r[0] for r in db.execute("SELECT status FROM outbox")} == {"queued"}


def test_an_error_while_the_next_email_is_prepared_records_the_one_on_the_wire(home,
                                                                              monkeypatch):
    """A bug (an unexpected exception) composing the third email while the second is on the
    wire: the tick fails, but the second email, which went out, is recorded `sent`, not left
    for the reconcile; nothing after it was claimed. (A patched function: no server can make
    the template engine fail this way.)"""
    from seqctl.engine import compose

    real = compose.compose
    with SmtpTestServer() as smtp:
        db = database.get()
        smtp_inbox(db, smtp.port)
        queue_batch(db, PEOPLE[:4])
        (third,) = db.execute("SELECT e.id FROM enrollments e JOIN contacts c ON "
                              "c.id = e.contact_id WHERE c.email = ?", [PEOPLE[2]]).fetchone()

        def failing(db_, enrollment_id, *args, **kwargs):
            if enrollment_id == third:
                raise RuntimeError("a template engine bug")
            return real(db_, enrollment_id, *args, **kwargs)

        monkeypatch.setattr(compose, "compose", failing)
        with pytest.raises(RuntimeError):
            tick(db, at(T0))
        delivered = [r for m in smtp.messages for r in m.rcpt_tos]
    assert delivered == PEOPLE[:2]
    rows = [tuple(r) for r in db.execute("SELECT to_email, status FROM outbox "
                                         "ORDER BY scheduled_at, id")]
    assert rows == [(PEOPLE[0], "sent"), (PEOPLE[1], "sent"), (PEOPLE[2], "queued"),
                    (PEOPLE[3], "queued")]
