"""Crash safety, proven (SPEC 11): a tick killed with SIGKILL at random moments while it sends
through a slow SMTP server on loopback never sends an email twice and never loses one, and the
database stays sound; an email whose fate a crash made `unknown` goes out exactly once after
`seqctl outbox retry`."""

from __future__ import annotations

import asyncio
import email
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter

from servers.smtp_server import RecordingHandler, SmtpTestServer
from typer.testing import CliRunner

from seqctl import cli, clock
from seqctl import db as database
from seqctl.engine import accounts, cycle
from tests.conftest import ROOT
from tests.helpers import apply_yaml, at, enroll_all, install_key
from tests.helpers import tick as helper_tick

ADDRESS = "rep@example.com"
T0 = "2026-03-02T14:01:00Z"          # minute 1: no sync phase
TRIALS = 50
PER_TRIAL = 4

ONE_STEP = """
    name: crash
    steps:
      - id: only
        step_type: email
        subject: "Hello {{first_name}}"
        body: "Hi {{first_name}}, short note."
"""


def add_smtp_inbox(db, port: int) -> None:
    accounts.add_user(db, ADDRESS, "Riley", "Rep")
    accounts.add_inbox(db, "smtp", ADDRESS, {"smtp_host": "127.0.0.1", "smtp_port": port,
                                             "security": "none", "timeout": 5},
                       daily_cap=100_000)
    db.execute("INSERT OR REPLACE INTO settings (key, value) "
               "VALUES ('sequence_hourly_send_cap', '100000')")


def tick_process(home, now: str = T0) -> subprocess.Popen:
    env = {**os.environ, "SEQCTL_HOME": str(home), "SEQCTL_NOW": now}
    return subprocess.Popen([sys.executable, "-m", "seqctl", "tick", "--json"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def delivered(server: SmtpTestServer) -> Counter:
    """How many times the server accepted each Message-ID."""
    with server.handler.lock:
        return Counter(email.message_from_bytes(m.data)["Message-ID"] for m in server.messages)


class Watch(RecordingHandler):
    """Sets `started` at the first MAIL after each `arm()`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.started = threading.Event()

    def arm(self) -> None:
        self.started.clear()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.started.set()
        return await super().handle_MAIL(server, session, envelope, address, mail_options)


def forked_tick(now) -> int:
    """A tick in a child process (a fork of this one: no interpreter start-up per trial, so
    50 trials fit in CI); returns its pid. The child opens its own database connection."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        database._open = None          # the parent's connection is not the child's to use
        clock.set_now(now)
        cycle.run(database.get(), now, key=install_key())
        code = 0
    finally:
        os._exit(code)


def test_sigkill_at_random_moments_never_duplicates_or_loses_an_email(home):
    rng = random.Random(20261202)
    smtp = SmtpTestServer()
    smtp.handler = Watch(delay=0.02)
    with smtp:
        db = database.get()
        add_smtp_inbox(db, smtp.port)
        apply_yaml(db, ONE_STEP, at(T0))
        kills = 0
        for trial in range(TRIALS):
            # fresh work for every trial: the child's engine phase queues it, dispatch sends
            enroll_all(db, "crash", [f"c{trial:02d}.{i}@buyer.test" for i in range(PER_TRIAL)],
                       at(T0))
            smtp.handler.arm()
            pid = forked_tick(at(T0))
            if trial % 5 == 0:
                time.sleep(rng.uniform(0.0, 0.05))      # while reconciling, queuing, claiming
            else:
                smtp.handler.started.wait(15)            # while sending, at a random point
                time.sleep(rng.uniform(0.0, 0.25))
            try:
                os.kill(pid, signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0
            assert max(delivered(smtp).values(), default=0) <= 1, f"a duplicate, trial {trial}"
        assert kills >= TRIALS * 0.9

        # let ticks finish, then do what `outbox list` tells an operator: for each `unknown`
        # email, look in the server's log (the Sent folder) and retry those that did not go
        helper_tick(db, at(T0))
        while db.execute("SELECT 1 FROM outbox WHERE status IN ('queued', 'sending')").fetchone():
            helper_tick(db, at(T0))
        got = delivered(smtp)
        unknown = db.execute("SELECT id, message_id FROM outbox WHERE status = 'unknown'"
                             ).fetchall()
        assert unknown, "no kill landed inside a send: the test did not test anything"
        for outbox_id, message_id in unknown:
            if got[message_id] == 0:
                result = CliRunner().invoke(cli.app, ["outbox", "retry", str(outbox_id)],
                                            env={"SEQCTL_NOW": T0})
                assert result.exit_code == 0, result.output
        helper_tick(db, at(T0))

        rows = db.execute("SELECT message_id, status FROM outbox").fetchall()
        got = delivered(smtp)
    assert len(rows) == TRIALS * PER_TRIAL                         # nothing lost from the queue
    wrong = [(m, status, got[m]) for m, status in rows if got[m] != 1]
    assert wrong == []                                             # each went out exactly once
    assert set(got) == {message_id for message_id, _ in rows}
    assert {status for _, status in rows} <= {"sent", "unknown"}
    check = sqlite3.connect(home / "seqctl.db")
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        check.close()


class Gated(RecordingHandler):
    """The first DATA blocks until `release`, then refuses (the client is gone by then)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.gated = True

    async def handle_DATA(self, server, session, envelope):
        if self.gated:
            self.gated = False
            self.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 20)
            return "451 4.3.0 Connection went away"
        return await super().handle_DATA(server, session, envelope)


def test_outbox_retry_sends_an_email_a_crash_left_unknown_exactly_once(home, run):
    smtp = SmtpTestServer()
    smtp.handler = Gated()
    with smtp:
        db = database.get()
        add_smtp_inbox(db, smtp.port)
        apply_yaml(db, ONE_STEP, at(T0))
        enroll_all(db, "crash", ["ann@buyer.test"], at(T0))
        proc = tick_process(home)
        try:
            assert smtp.handler.arrived.wait(30), "the send never reached the server"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
            smtp.handler.release.set()
        assert db.execute("SELECT status FROM outbox").fetchone() == ("sending",)

        # the next tick cannot tell whether it went out (no Sent folder to ask): `unknown`
        after = run("tick", "--json", now="2026-03-02T14:02:00Z")
        assert after.code == 0, after.err
        assert after.json["emails_sent"] == 0
        [row] = run("outbox", "list", "--json", now="2026-03-02T14:02:00Z").json
        assert row["status"] == "unknown"
        assert f"seqctl outbox retry {row['id']}" in row["error"]
        assert delivered(smtp) == Counter()
        assert run("tick", "--json", now="2026-03-02T14:03:00Z").json["emails_sent"] == 0

        retried = run("outbox", "retry", row["id"], now="2026-03-02T14:04:00Z")
        assert retried.code == 0, retried.err
        sent = run("tick", "--json", now="2026-03-02T14:04:00Z")
        assert sent.code == 0, sent.err
        assert sent.json["emails_sent"] == 1
        again = run("tick", "--json", now="2026-03-02T14:05:00Z")
        assert again.json["emails_sent"] == 0
        got = delivered(smtp)
    assert got == Counter({row["message_id"]: 1})
    [final] = run("outbox", "list", "--status", "all", "--json").json
    assert final["status"] == "sent"
    status = db.execute("SELECT e.status, e.exit_reason FROM enrollments e").fetchone()
    assert status == ("exited", "completed")


def test_outbox_retry_refuses_an_email_that_was_sent(home, run):
    smtp = SmtpTestServer()
    with smtp:
        db = database.get()
        add_smtp_inbox(db, smtp.port)
        apply_yaml(db, ONE_STEP, at(T0))
        enroll_all(db, "crash", ["ann@buyer.test"], at(T0))
        assert run("tick", now=T0).code == 0
        [(outbox_id,)] = db.execute("SELECT id FROM outbox").fetchall()
        result = run("outbox", "retry", outbox_id)
    assert result.code == 1
    assert "only failed or unknown ones can be retried" in result.err
    assert len(smtp.messages) == 1
