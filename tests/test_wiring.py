"""How the pieces are wired (SPEC section 1): workflows run on the database they are given,
nested transactions are savepoints, and a broken command module is loud."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from seqctl import cli, config
from seqctl import db as database
from seqctl.db import transaction
from seqctl.engine import accounts, cycle, enroll, tasks
from seqctl.errors import SeqctlError
from seqctl.providers.maildir import create_maildir
from tests.conftest import ROOT
from tests.helpers import apply_yaml, at, install_key, sent_files

ONE_EMAIL = """
    name: hello
    steps:
      - step_type: email
        subject: "Hello {{first_name}}"
        body: "Hi {{first_name}}."
"""


def test_a_tick_on_another_database_with_two_inboxes_sends_from_both(home, tmp_path):
    """Each inbox dispatches on its own connection: to the database the tick was given, not to
    the configured one (which must not even be created)."""
    other = database.connect(tmp_path / "elsewhere" / "other.db")
    now = at("2026-03-02T14:00:00Z")
    maildirs = {}
    for address in ("ann.rep@one.test", "bob.rep@two.test"):
        accounts.add_user(other, address, address.split(".")[0].title(), "Rep")
        maildirs[address] = tmp_path / address
        create_maildir(maildirs[address])
        accounts.add_inbox(other, "maildir", address, {"dir": str(maildirs[address])})
    apply_yaml(other, ONE_EMAIL, now)
    enroll.enroll(other, "hello", ["x@a.test", "y@a.test"], now, inbox_address="ann.rep@one.test")
    enroll.enroll(other, "hello", ["z@b.test"], now, inbox_address="bob.rep@two.test")

    counts = cycle.run(other, now, key=install_key())

    assert counts.emails_sent == 3
    assert len(sent_files(maildirs["ann.rep@one.test"])) == 2
    assert len(sent_files(maildirs["bob.rep@two.test"])) == 1
    assert not config.db_path().exists()
    assert not list(home.glob("*.db*"))


def test_the_tick_lock_lives_beside_the_database_it_guards(home, tmp_path):
    other = database.connect(tmp_path / "other.db")
    lock = cycle.tick.TickLock.beside(other)
    assert lock.path == tmp_path / "other.db.tick.lock"
    assert lock.acquire()
    try:
        with pytest.raises(cycle.TickBusy):
            cycle.run(other, at("2026-03-02T14:00:00Z"), key=install_key())
    finally:
        lock.release()


# --- savepoints -----------------------------------------------------------------------------


def _names(db) -> list[str]:
    return [row[0] for row in db.execute("SELECT email FROM users ORDER BY email")]


def _add(db, email: str) -> None:
    db.execute("INSERT INTO users (email, created_at) VALUES (?, '2026-01-01T00:00:00Z')",
               [email])


def test_an_inner_failure_the_caller_catches_leaves_no_partial_writes(home):
    db = database.get()
    with transaction(db):
        _add(db, "outer@a.test")
        try:
            with transaction(db):
                _add(db, "inner@a.test")
                raise SeqctlError("the inner step fails after writing")
        except SeqctlError:
            pass
        _add(db, "after@a.test")
    assert _names(db) == ["after@a.test", "outer@a.test"]


def test_an_inner_success_commits_with_the_outer_and_rolls_back_with_it(home):
    db = database.get()
    with pytest.raises(RuntimeError):
        with transaction(db):
            with transaction(db):
                _add(db, "inner@a.test")
            raise RuntimeError("the outer fails")
    assert _names(db) == []
    with transaction(db):
        with transaction(db):
            _add(db, "inner@a.test")
        with transaction(db), transaction(db):
            _add(db, "deeper@a.test")
    assert _names(db) == ["deeper@a.test", "inner@a.test"]
    assert not db.conn.in_transaction


def test_a_failed_constraint_inside_a_nested_transaction_keeps_the_outer_usable(home):
    db = database.get()
    with transaction(db):
        _add(db, "one@a.test")
        with pytest.raises(sqlite3.IntegrityError):
            with transaction(db):
                _add(db, "two@a.test")
                _add(db, "one@a.test")      # UNIQUE fails after a write
        _add(db, "three@a.test")
    assert _names(db) == ["one@a.test", "three@a.test"]


def test_closing_tasks_is_all_or_nothing_inside_one_transaction(home):
    db = database.get()
    accounts.add_user(db, "rep@acme.test", "Riley", "Rep")
    db.execute("INSERT INTO contacts (email, created_at, updated_at) VALUES "
               "('c@a.test', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
    for title in ("first", "second"):
        db.execute("INSERT INTO tasks (contact_id, kind, title, due_at, status, created_at) "
                   "VALUES (1, 'call', ?, '2026-01-01T00:00:00Z', 'open', "
                   "'2026-01-01T00:00:00Z')", [title])
    now = at("2026-03-02T14:00:00Z")
    tasks.close(db, [2], "skipped", now)
    with pytest.raises(SeqctlError, match="task 2 is already skipped"):
        tasks.close(db, [1, 2], "done", now)
    assert [t["status"] for t in tasks.list_tasks(db, status="all")] == ["open", "skipped"]
    with pytest.raises(SeqctlError, match="closed as done or skipped"):
        tasks.close(db, [1], "open", now)


# --- loud command imports -------------------------------------------------------------------


def test_a_command_module_that_fails_to_import_raises(tmp_path, monkeypatch):
    (tmp_path / "broken_command.py").write_text("import a_module_that_does_not_exist\n")
    (tmp_path / "missing_name_command.py").write_text("from seqctl.engine import nothing_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "broken", ("broken_command", "Broken."))
    monkeypatch.setitem(cli.COMMANDS, "missing", ("missing_name_command", "Missing."))
    monkeypatch.setitem(cli.COMMANDS, "gone", ("seqctl.commands.gone", "Gone."))
    with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist"):
        cli.load_command("broken")
    with pytest.raises(ImportError, match="nothing_here"):
        cli.load_command("missing")
    with pytest.raises(ModuleNotFoundError, match="seqctl.commands.gone"):
        cli.load_command("gone")


def test_a_broken_command_module_is_an_error_not_a_missing_command(home, tmp_path):
    """Run as the CLI runs: one clear error line and exit 1, never "no such command"."""
    (tmp_path / "broken_command.py").write_text("import a_module_that_does_not_exist\n")
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); from seqctl import cli; "
        "cli.COMMANDS['broken'] = ('broken_command', 'Broken.'); cli.main(['broken'])"
    )
    proc = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert "a_module_that_does_not_exist" in proc.stderr
    assert "No such command" not in proc.stderr


def test_every_listed_command_loads(home):
    for name in cli.COMMANDS:
        assert cli.load_command(name) is not None, name


def test_no_migration_commits_its_own_transaction():
    """sqlite3's executescript() COMMITs first: a migration using it could be left half applied
    and recorded as pending, so every migration runs its statements through db.run_script."""
    import ast
    import inspect

    from seqctl import db as database

    tree = ast.parse(inspect.getsource(database))
    offenders = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                 and any(isinstance(d, ast.Call) and getattr(d.func, "id", "") == "migrations"
                         for d in node.decorator_list)
                 and any(isinstance(n, ast.Attribute) and n.attr == "executescript"
                         for n in ast.walk(node))]
    assert offenders == []
