"""The honest-errors corpus: conditions the user or the machine caused get one line that says
what to do, exit 1, and never "internal error ... please report it"."""

from __future__ import annotations

import sqlite3

import pytest

from seqctl import cli
from seqctl import db as database

SEQUENCE = "name: s\nsteps:\n  - step_type: email\n    subject: Hi\n    body: Hello\n"


def honest(result) -> str:
    """The one line of a clean failure."""
    assert result.code == 1, result
    assert result.err.endswith("\n") and result.err.count("\n") == 1, result.err
    assert result.err.startswith("error: ") or ": " in result.err, result.err
    assert "internal error" not in result.err and "Traceback" not in result.err
    return result.err


def setup(run, home, contacts: int = 0) -> None:
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "s.yaml").write_text(SEQUENCE)
    assert run("sequence", "apply", home / "s.yaml").code == 0
    if contacts:
        csv = "email\n" + "".join(f"p{i}@x.test\n" for i in range(contacts))
        assert run("enroll", "s", "--csv", "-", input=csv).code == 0


# -- input files ------------------------------------------------------------------------------

def test_a_nul_byte_in_a_sequence_file(run, home):
    (home / "nul.yaml").write_bytes(b"name: a\x00b\nsteps:\n  - step_type: task\n    title: x\n")
    for command in ("validate", "apply"):
        line = honest(run("sequence", command, home / "nul.yaml"))
        assert "U+0000" in line and "remove it" in line


def test_an_integer_of_more_than_4300_digits_in_a_delay(run, home):
    (home / "big.yaml").write_text("name: big\nsteps:\n  - step_type: task\n    title: x\n"
                                   "    delay_calendar_days: " + "9" * 5000 + "\n")
    line = honest(run("sequence", "apply", home / "big.yaml"))
    assert "delay_calendar_days" in line and "5,000-digit" in line and len(line) < 200


@pytest.mark.parametrize("depth", [600, 5000])
def test_yaml_nested_hundreds_of_levels_deep(run, home, depth):
    (home / "deep.yaml").write_text("name: deep\nsteps: " + "[" * depth + "]" * depth + "\n")
    assert "nested too deeply" in honest(run("sequence", "validate", home / "deep.yaml"))


def test_seqctl_now_before_year_1_in_utc(run, home):
    for command in (["tick"], ["enrollments"]):
        line = honest(run(*command, env={"SEQCTL_NOW": "0001-01-01T00:00:00+14:00"}))
        assert "SEQCTL_NOW" in line and "years 1 to 9999" in line


def test_a_csv_header_name_over_131072_characters(run, home):
    setup(run, home)
    wide = "email," + "x" * 140_000 + "\na@b.test,1\n"
    assert "at most 131,072" in honest(run("contacts", "import", "-", input=wide))
    assert "at most 131,072" in honest(run("enroll", "s", "--csv", "-", input=wide))
    assert run("contacts", "--json").json == []


def test_a_csv_with_100000_columns_imports(run, home):
    header = ",".join(["email", *(f"c{i}" for i in range(100_000))])
    row = ",".join(["a@b.test", *("v" for _ in range(100_000))])
    result = run("contacts", "import", "-", "--json", input=f"{header}\n{row}\n")
    assert result.code == 0 and result.json["created"] == 1
    assert len(run("contacts", "show", "a@b.test", "--json").json["custom_fields"]) == 100_000


# -- the database -----------------------------------------------------------------------------

def test_a_damaged_database_page(run, home):
    setup(run, home, contacts=300)
    assert run("tick").code == 0                                # the outbox has rows too
    path = home / "seqctl.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    roots = [r[0] for r in conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE tbl_name IN ('enrollments', 'outbox', "
        "'contacts') AND rootpage > 0")]                        # the tables and their indexes
    conn.close()
    with open(path, "r+b") as handle:
        for page in roots:
            handle.seek((page - 1) * size)
            handle.write(b"\xff" * 64)
    for command in (["enrollments", "list"], ["outbox", "list", "--status", "all"],
                    ["enroll", "s", "new@x.test"], ["tick"]):
        line = honest(run(*command))
        assert "is damaged" in line and "seqctl backup" in line, command


def main_line(argv, capsys) -> str:
    """Run the CLI in this process (to reach a real locked, full or read-only database)."""
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 1, err
    assert err.count("\n") == 1 and "internal error" not in err, err
    return err


def test_a_database_locked_past_the_busy_timeout(run, home, capsys, monkeypatch):
    setup(run, home, contacts=2)
    monkeypatch.setattr(database, "BUSY_TIMEOUT", 0.2)
    holder = sqlite3.connect(home / "seqctl.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert "is busy" in main_line(["tick", "--now", "2026-03-02T15:00:00Z"], capsys)
        database.reset()
        assert "is busy" in main_line(["sequence", "apply", str(home / "s.yaml")], capsys)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_full_disk(run, home, capsys):
    setup(run, home, contacts=200)
    db = database.get()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")      # SQLite's own "database or disk is full"
    csv = home / "many.csv"
    csv.write_text("email,notes\n" + "".join(f"n{i}@x.test,{'n' * 200}\n" for i in range(500)))
    assert "disk is full" in main_line(["enroll", "s", "--csv", str(csv)], capsys)
    assert "disk is full" in main_line(["enroll", "s", *(f"m{i}@x.test" for i in range(900))],
                                       capsys)
    assert "disk is full" in main_line(["tick"], capsys)


def test_a_read_only_database(run, home, capsys, monkeypatch):
    setup(run, home)
    read_only = sqlite3.connect(f"file:{home / 'seqctl.db'}?mode=ro", uri=True,
                                isolation_level=None)
    from sqlite_utils import Database

    monkeypatch.setattr(database, "_open", Database(read_only))
    line = main_line(["enroll", "s", "a@b.test"], capsys)
    assert "read-only" in line and "writable" in line
