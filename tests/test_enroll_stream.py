"""`enroll --csv` streams (issue 15, item 6): the CSV is imported, then enrolled in batches, and
the results are printed from temporary files, so memory does not grow with the file. The
document, the counts, the order of the results and the exit code are those of enrolling the
whole list at once; one transaction still holds the import and the enrollments."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from seqctl import output
from seqctl.engine import contacts, enroll
from tests.helpers import apply_yaml, at, setup_account

NOW = "2026-03-02T10:00:00Z"
SEQUENCE = """\
name: s
steps:
  - step_type: email
    subject: "Hi {{ first_name }}"
    body: "Hello"
"""
ROWS = 12_000       # more than two of enroll.BATCH and of the import's batches


def setup_cli(run, home) -> None:
    assert run("users", "add", "rep@acme.test", "--first-name", "Riley").code == 0
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "s.yaml").write_text(SEQUENCE)
    assert run("sequence", "apply", home / "s.yaml").code == 0


def big_csv() -> tuple[str, list[tuple[int, str]]]:
    """ROWS rows across the batch boundaries, with a repeated address (its later row fills in
    the first name), bad rows on both sides of a boundary, and nameless contacts."""
    lines = ["email,first_name"]
    bad: list[tuple[int, str]] = []
    for i in range(ROWS):
        line = len(lines) + 1
        if i in (4_999, 5_001, 10_000):
            lines.append(f"not-an-address-{i},X")
            bad.append((line, f"not-an-address-{i}"))
        elif i == 7_003:
            lines.append("p3@x.test,Later")             # p3 again, in a later batch
        else:
            lines.append(f"p{i}@x.test,{'' if i % 1000 == 7 else f'P{i}'}")
    return "\n".join(lines) + "\n", bad


def test_a_csv_larger_than_a_batch_enrolls_every_row_in_one_document(run, home):
    setup_cli(run, home)
    assert run("enroll", "s", "p6000@x.test", now=NOW).code == 0     # in the second batch
    text, bad = big_csv()
    (home / "big.csv").write_text(text)

    result = run("enroll", "s", "--csv", home / "big.csv", "--json", now=NOW)

    assert result.code == 1, result.err                 # bad rows: exit 1, the rest enrolled
    document = result.json
    assert result.out == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert list(document) == ["enrolled", "skipped_duplicates", "failed", "results",
                              "invalid_rows"]
    emails = [f"p{i}@x.test" for i in range(ROWS) if i not in (4_999, 5_001, 10_000, 7_003)]
    expected, next_id = [], 2
    for email in emails:
        number = int(email[1:].split("@")[0])
        if email == "p6000@x.test":
            expected.append({"email": email, "status": "skipped_duplicate", "enrollment_id": 1,
                             "message": "already enrolled (active)", "missing_fields": []})
            continue
        lacking = number % 1000 == 7 and email != "p3@x.test"
        expected.append({"email": email, "status": "enrolled", "enrollment_id": next_id,
                         "message": "", "missing_fields": ["first_name"] if lacking else []})
        next_id += 1
    assert document["results"] == expected
    assert (document["enrolled"], document["skipped_duplicates"], document["failed"]) == (
        len(emails) - 1, 1, 0)
    assert [(r["line"], r["email"]) for r in document["invalid_rows"]] == bad
    warnings = result.err.splitlines()
    assert len(warnings) == len(bad)
    for warning, (line, email) in zip(warnings, bad, strict=True):
        assert warning.startswith(f"warning: {home / 'big.csv'}:{line}: invalid email address")
        assert warning.endswith(f"({email})")

    listed = run("enrollments", "list", "--json").json
    assert len(listed) == len(emails)
    assert len({row["email"] for row in listed}) == len(emails)


def test_text_output_shows_every_failure_and_a_capped_list_of_missing_fields(run, home):
    assert run("users", "add", "rep@acme.test", "--first-name", "Riley").code == 0
    assert run("users", "add", "noinbox@acme.test", "--first-name", "Nia").code == 0
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "s.yaml").write_text(SEQUENCE)
    assert run("sequence", "apply", home / "s.yaml").code == 0
    rows = [f"p{i}@x.test,,{'noinbox@acme.test' if i % 2500 == 1 else ''}" for i in range(6000)]
    (home / "c.csv").write_text("email,first_name,owner_email\n" + "\n".join(rows) + "\n")

    result = run("enroll", "s", "--csv", home / "c.csv", now=NOW)

    assert result.code == 1
    failures = [line for line in result.err.splitlines() if "no inbox to send from" in line]
    assert [line.split(":")[1].strip() for line in failures] == [
        "p1@x.test", "p2501@x.test", "p5001@x.test"]
    lacking = [line for line in result.err.splitlines() if ": no first_name:" in line]
    assert len(lacking) == 20           # MISSING_SHOWN; the failed contacts lack it too
    assert ("... and 5980 more contacts lack fields their emails use "
            "(see --json: results[].missing_fields)") in result.err
    assert result.out == "enrolled 5997, skipped 0 duplicates, failed 3\n"


@pytest.fixture
def db(home, monkeypatch):
    monkeypatch.setattr(enroll, "BATCH", 3)
    db, _ = setup_account(home)
    apply_yaml(db, SEQUENCE)
    return db


def enroll_csv(db, data: str, *emails: str) -> tuple[dict, list[dict], list[dict]]:
    results: list[dict] = []
    bad: list[dict] = []
    counts = enroll.enroll_stream(db, "s", at(NOW), emails=emails,
                                  csv=(io.BytesIO(data.encode()), "c.csv"),
                                  on_result=results.append, on_invalid=bad.append)
    return counts, results, bad


def test_an_address_given_and_in_the_file_is_enrolled_once_where_it_was_given(db):
    data = "email\na@x.test\nb@x.test\nc@x.test\nd@x.test\nb@x.test\ne@x.test\nc@x.test\n"
    counts, results, _ = enroll_csv(db, data, "E@x.test", "nope", "c@x.test", "e@x.test")
    assert [(r["email"], r["status"], r["message"]) for r in results] == [
        ("nope", "failed", "email 'nope' is not a valid email address: "
         "An email address must have an @-sign."),
        ("e@x.test", "skipped_duplicate", "listed twice"),
        ("c@x.test", "skipped_duplicate", "listed twice"),
        ("e@x.test", "skipped_duplicate", "listed twice"),
        ("e@x.test", "enrolled", ""),
        ("c@x.test", "enrolled", ""),
        ("a@x.test", "enrolled", ""),
        ("b@x.test", "enrolled", ""),
        ("d@x.test", "enrolled", ""),
    ]
    assert [r["enrollment_id"] for r in results if r["status"] == "enrolled"] == [1, 2, 3, 4, 5]
    assert counts == {"enrolled": 5, "skipped_duplicates": 3, "failed": 1, "invalid_rows": 0}


def test_earlier_enrollments_and_bad_rows_across_batches(db):
    enroll.enroll(db, "s", ["d@x.test", "f@x.test"], at(NOW))
    db.execute("UPDATE enrollments SET status = 'exited', exit_reason = 'manual' "
               "WHERE id = 2")
    data = "email\na@x.test\nbad\nb@x.test\nc@x.test\nd@x.test\n\nf@x.test\nalso bad\ng@x.test\n"
    counts, results, bad = enroll_csv(db, data)
    assert [(r["email"], r["status"], r["enrollment_id"], r["message"]) for r in results] == [
        ("a@x.test", "enrolled", 3, ""),
        ("b@x.test", "enrolled", 4, ""),
        ("c@x.test", "enrolled", 5, ""),
        ("d@x.test", "skipped_duplicate", 1, "already enrolled (active)"),
        ("f@x.test", "skipped_duplicate", 2, "already enrolled (exited)"),
        ("g@x.test", "enrolled", 6, ""),
    ]
    assert [(row["line"], row["email"]) for row in bad] == [(3, "bad"), (9, "also bad")]
    assert counts["invalid_rows"] == 2


def test_a_database_error_while_enrolling_imports_nothing_either(db):
    db.execute("CREATE TRIGGER no_g BEFORE INSERT ON enrollments "
               "WHEN NEW.contact_id = (SELECT id FROM contacts WHERE email = 'g@x.test') "
               "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    contacts_before = db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0]
    data = "email\na@x.test\nb@x.test\nc@x.test\nd@x.test\ne@x.test\nf@x.test\ng@x.test\n"
    with pytest.raises(sqlite3.IntegrityError):
        enroll_csv(db, data)
    assert db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == contacts_before
    assert db.execute("SELECT COUNT(*) FROM enrollments").fetchone()[0] == 0
    assert not db.execute("SELECT 1 FROM temp.sqlite_master WHERE name LIKE 'seqctl_%'"
                          ).fetchall()


@pytest.mark.parametrize("items", [
    [],
    [{"email": "a@x.test", "status": "enrolled", "enrollment_id": 1, "message": "",
      "missing_fields": []}],
    [{"email": 'é"\\\u2028\n', "status": "failed", "enrollment_id": None,
      "message": "no inbox", "missing_fields": ["first_name", "x"]},
     {"line": 3, "email": "", "reason": "missing email"},
     {"nested": {"a": [1, {"b": True}]}, "f": 1.5}, "text", 7],
])
def test_a_spooled_document_is_byte_for_byte_the_one_emit_json_prints(items, capsys):
    document = {"enrolled": len(items), "results": items, "after": {"k": [1]}}
    output.emit_json(document)
    expected = capsys.readouterr().out
    spooled = output.JsonList()
    for item in items:
        spooled.append(item)
    output.emit_json_spooled({**document, "results": spooled})
    spooled.close()
    assert capsys.readouterr().out == expected


def test_new_contacts_then_a_repeat_in_a_later_import_batch_keep_file_order(db, monkeypatch):
    monkeypatch.setattr(contacts, "_CHUNK", 2)
    data = "email,first_name\na@x.test,A\nb@x.test,\nc@x.test,C\nd@x.test,D\nb@x.test,Later\n" \
           "e@x.test,E\nf@x.test,F\n"
    counts, results, _ = enroll_csv(db, data)
    assert [(r["email"], r["enrollment_id"], r["missing_fields"]) for r in results] == [
        ("a@x.test", 1, []), ("b@x.test", 2, []), ("c@x.test", 3, []), ("d@x.test", 4, []),
        ("e@x.test", 5, []), ("f@x.test", 6, [])]
    assert counts["enrolled"] == 6


@pytest.mark.parametrize("data, created, updated", [
    ("email\na@x.test\nb@x.test\nc@x.test\nd@x.test\ne@x.test\n", 5, 0),      # all new
    ("email\na@x.test\nb@x.test\nc@x.test\nold@x.test\ne@x.test\n", 4, 1),    # then an update
    ("email\na@x.test\nb@x.test\nc@x.test\nb@x.test\ne@x.test\n", 4, 0),      # then a repeat
])
def test_import_lists_unique_addresses_in_file_order_however_it_keeps_them(
        db, monkeypatch, data, created, updated):
    monkeypatch.setattr(contacts, "_CHUNK", 2)
    contacts.ensure_contact(db, "old@x.test")
    result = contacts.import_contacts(db, data.encode(), filename="c.csv", keep_emails=True)
    assert result.emails == list(dict.fromkeys(data.split()[1:]))
    assert (result.created, result.updated) == (created, updated)
    assert not db.execute("SELECT 1 FROM temp.sqlite_master").fetchall()


def test_a_file_of_new_contacts_is_told_by_their_ids(db, monkeypatch):
    monkeypatch.setattr(contacts, "_CHUNK", 2)
    contacts.ensure_contact(db, "old@x.test")
    data = b"email\na@x.test\nb@x.test\nc@x.test\n"
    assert contacts.import_contacts(db, data, filename="c.csv").new_ids == (1, 4)
    assert contacts.import_contacts(db, data, filename="c.csv").new_ids is None
