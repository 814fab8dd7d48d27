"""Contacts CSV (spec section 4) and `seqctl contacts ...`."""

from __future__ import annotations

import codecs
import io
import json
import sqlite3
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from seqctl import db as database
from seqctl.engine import accounts
from seqctl.engine.contacts import contact_by_email, ensure_contact, import_contacts
from seqctl.engine.contacts_csv import normalise_email, normalise_header, read_csv
from seqctl.errors import SeqctlError

CORPUS = Path(__file__).parent / "data" / "csv"
EXAMPLE = Path(__file__).parent.parent / "examples" / "contacts.csv"


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def read(name: str) -> tuple[list[dict], list[dict]]:
    return read_csv(corpus(name), filename=name)


def contacts_in(home: Path) -> list[tuple]:
    path = home / "seqctl.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("SELECT email FROM contacts ORDER BY email").fetchall()
        except sqlite3.OperationalError:
            return []


# --- reading: pure -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first_names"),
    [
        ("good_comma.csv", ["Ana", "Tom", "Li"]),
        ("good_bom.csv", ["Zoë", "José"]),
        ("good_cp1252_semicolon.csv", ["Chloé", "Marc"]),
        ("good_latin1_semicolon.csv", ["Jürgen", "Inés"]),
        ("good_tab.tsv", ["Priya", "Omar"]),
        ("good_utf16_tab.txt", ["Kenji"]),
    ],
)
def test_good_files_read_in_every_encoding_and_delimiter(name, first_names):
    rows, invalid = read(name)
    assert invalid == []
    assert [row["first_name"] for row in rows] == first_names


def test_utf8_bom_is_not_part_of_the_first_column_name():
    rows, _ = read("good_bom.csv")
    assert rows[0]["email"] == "zoe@fjord.example"
    assert rows[0]["company_name"] == "Fjord AS"
    assert rows[0]["last_name"] == "Ødegaard"


def test_windows_1252_file_keeps_euro_sign_and_curly_quotes():
    rows, _ = read("good_cp1252_semicolon.csv")
    assert rows[0]["custom_fields"]["budget"] == "5 000 €"
    assert rows[1]["custom_fields"]["budget"] == "“premium” tier"


def test_quoted_delimiter_inside_a_value_stays_in_the_value():
    assert read("good_cp1252_semicolon.csv")[0][1]["company_name"] == "Ardennes; Fils & Cie"
    assert read("good_comma.csv")[0][1]["custom_fields"]["pain_point"] == "slow, flaky CI"
    assert read("good_tab.tsv")[0][0]["company_name"] == "Monsoon, Inc."


def test_emails_are_normalised_to_lower_case():
    rows, _ = read("good_comma.csv")
    assert rows[1]["email"] == "tom.baker@quarry.example"


def test_unknown_columns_become_custom_fields_and_empty_cells_stay_empty():
    rows, _ = read("good_comma.csv")
    assert rows[0]["custom_fields"] == {
        "job_title": "Head of Sales",
        "pain_point": "manual follow-ups",
    }
    assert rows[2]["custom_fields"] == {"job_title": "", "pain_point": ""}
    assert "job_title" not in rows[0]


def test_quoted_multi_line_values_keep_their_line_breaks():
    rows, _ = read("multiline.csv")
    assert rows[0]["custom_fields"]["pain_point"] == "Three problems:\n1. churn\n2. onboarding"
    assert rows[1]["custom_fields"]["pain_point"] == 'quoted "word" and\r\na CRLF'


def test_line_numbers_are_physical_lines_after_multi_line_values():
    rows, invalid = read("multiline.csv")
    assert [row["line"] for row in rows] == [2, 6]
    assert [(bad["line"], bad["email"]) for bad in invalid] == [(5, "not-an-email"), (8, "")]


def test_line_numbers_count_crlf_lines_inside_quoted_values():
    rows, invalid = read("crlf_multiline_bad.csv")
    assert rows[0]["custom_fields"]["notes"] == "line one\r\nline two\r\nline three"
    assert invalid[0]["line"] == 5


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Job Title ", "job_title"),
        ("  Pain-Point!!", "pain_point"),
        ("first   name", "first_name"),
        ("# of Seats", "of_seats"),
        ("Company__Size", "company_size"),
        ("Prénom", "prénom"),
    ],
)
def test_header_names_become_lower_snake_case(header, expected):
    assert normalise_header(header) == expected


def test_obvious_header_aliases_map_to_known_columns():
    rows, invalid = read("odd_headers.csv")
    assert invalid == []
    row = rows[0]
    assert row["email"] == "sam@relay.example"  # "E-mail"
    assert row["first_name"] == "Sam"  # "First Name "
    assert row["last_name"] == "Reed"  # " Last Name"
    assert row["company_name"] == "Relay"  # "Company"
    assert row["timezone"] == "America/New_York"  # "Time Zone", any case
    assert row["custom_fields"] == {
        "job_title": "VP Ops",
        "pain_point": "too many tools",
        "of_seats": "40",
    }


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("First Name", "first_name"),
        ("Surname", "last_name"),
        ("Company", "company_name"),
        ("Organization", "company_name"),
        ("Lifecycle Stage", "lifecycle_stage"),
        ("Time Zone", "timezone"),
        ("Owner Email", "owner_email"),
    ],
)
def test_each_documented_alias(header, column):
    value = "x@y.example" if column in ("email", "owner_email") else "v"
    if column == "timezone":
        value = "UTC"
    email_header = "" if column == "email" else "email,"
    email_value = "" if column == "email" else "a@b.example,"
    rows, _ = read_csv(f"{email_header}{header}\n{email_value}{value}\n".encode(), filename="t.csv")
    assert rows[0][column] == (value if column != "owner_email" else "x@y.example")


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_kept():
    rows, invalid = read("bad_rows.csv")
    assert [(bad["line"], bad["email"]) for bad in invalid] == [
        (3, ""),
        (4, "bob@@acme.example"),
        (6, "dave@acme.example"),
    ]
    assert invalid[0]["reason"] == "missing email"
    assert invalid[1]["reason"].startswith("invalid email address")
    assert "Mars/Olympus_Mons" in invalid[2]["reason"]
    assert [row["line"] for row in rows] == [2, 5, 7, 8, 10]  # the all-empty line 9 is skipped


def test_header_only_file_has_no_rows():
    assert read("header_only.csv") == ([], [])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.csv", "empty"),
        ("no_email_column.csv", "no email column"),
        ("binary_garbage.csv", "not a CSV file"),
        ("spreadsheet.xlsx.csv", "save it as CSV"),
    ],
)
def test_unusable_files_are_one_clear_error(name, message):
    with pytest.raises(SeqctlError, match=message) as info:
        read(name)
    assert "\n" not in info.value.message
    assert name in info.value.message


def test_a_single_column_file_needs_no_delimiter():
    rows, _ = read_csv(b"email\r\nsolo@one.example\r\n", filename="one.csv")
    assert [row["email"] for row in rows] == ["solo@one.example"]


def test_more_values_than_columns_is_a_bad_row():
    rows, invalid = read_csv(
        b"email,first_name\na@b.example,Ann,extra\nc@d.example,Cy,\n", filename="t.csv"
    )
    assert invalid[0]["line"] == 2 and "values" in invalid[0]["reason"]
    assert [row["email"] for row in rows] == ["c@d.example"]  # an empty extra cell is fine


@pytest.mark.parametrize(
    "address",
    [
        "plain@example.com",
        "First.Last+tag@Sub.Example.CO.uk",
        "o'brien@example.ie",
        "a@b.c",
        "a..b@example.com",
        ".a@example.com",
        "a@-b.com",
        "a@b-.com",
        "a@ab--cd.com",
        "a@localhost",
        "a@b.local",
        "a@b.test",
        "a@1.2.3.4",
        "user@xn--bcher-kva.example",
        "ünïcode@exämple.com",
        "a b@example.com",
        "a@example.c0m",
    ],
)
def test_fast_email_check_agrees_with_email_validator(address):
    try:
        expected = validate_email(
            address, check_deliverability=False, test_environment=True
        ).normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        got = normalise_email(address)
    except ValueError:
        got = None
    assert got == expected


def test_example_contacts_file_is_ten_good_contacts_of_the_default_user():
    rows, invalid = read_csv(EXAMPLE.read_bytes(), filename="contacts.csv")
    assert invalid == [] and len(rows) == 10
    assert all(row["owner_email"] == "" for row in rows)
    assert any("\n" in row["custom_fields"]["pain_point"] for row in rows)
    assert {"job_title", "pain_point"} <= set(rows[0]["custom_fields"])


# --- importing: the database ---------------------------------------------------------------


@pytest.fixture
def db(home):
    return database.get()


def test_import_creates_then_updates_by_case_insensitive_email(db):
    first = import_contacts(db, b"email,first_name\nAnn@Acme.example,Ann\n", filename="a.csv",
                           keep_emails=True)
    assert (first.created, first.updated, first.emails) == (1, 0, ["ann@acme.example"])
    again = import_contacts(db, b"Email,First Name\nANN@ACME.EXAMPLE,Annie\n", filename="b.csv")
    assert (again.created, again.updated) == (0, 1)
    assert contact_by_email(db, "ann@acme.example")["first_name"] == "Annie"
    assert db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == 1


def test_empty_cells_do_not_erase_and_custom_fields_merge(db):
    import_contacts(
        db,
        b"email,first_name,company_name,job_title,pain_point\na@b.example,Ann,Acme,CEO,churn\n",
        filename="a.csv",
    )
    import_contacts(
        db,
        b"email,first_name,company_name,job_title,budget\na@b.example,,Acme Corp,,10k\n",
        filename="b.csv",
    )
    contact = contact_by_email(db, "A@B.example")
    assert contact["first_name"] == "Ann"
    assert contact["company_name"] == "Acme Corp"
    assert contact["custom_fields"] == {"job_title": "CEO", "pain_point": "churn", "budget": "10k"}


def test_duplicate_emails_in_one_file_the_later_row_wins(db):
    result = import_contacts(db, corpus("bad_rows.csv"), filename="bad_rows.csv", keep_emails=True)
    erin = contact_by_email(db, "erin@acme.example")
    assert erin["first_name"] == "Erin-Later" and erin["timezone"] == "Europe/Berlin"
    assert result.emails == ["good1@acme.example", "erin@acme.example", "good2@acme.example"]
    assert (result.created, result.updated) == (3, 0)


def test_unknown_owner_is_a_bad_row_and_empty_owner_means_default_user(db):
    accounts.add_user(db, "rep@acme.example", "Rita")
    result = import_contacts(
        db,
        b"email,owner_email\nx@c.example,nobody@acme.example\ny@c.example,REP@acme.example\n"
        b"z@c.example,\n",
        filename="o.csv",
    )
    assert result.invalid == [
        {"line": 2, "email": "x@c.example", "reason": result.invalid[0]["reason"]}
    ]
    assert "unknown owner nobody@acme.example" in result.invalid[0]["reason"]
    assert contact_by_email(db, "y@c.example")["owner_email"] == "rep@acme.example"
    assert contact_by_email(db, "z@c.example")["owner_email"] is None


def test_import_reports_header_whitespace_warnings(db):
    result = import_contacts(db, corpus("odd_headers.csv"), filename="odd_headers.csv")
    assert any("'Job Title '" in warning for warning in result.warnings)


def test_a_bad_file_writes_nothing(db):
    with pytest.raises(SeqctlError):
        import_contacts(db, corpus("binary_garbage.csv"), filename="g.csv")
    assert db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == 0


def test_an_oversized_value_is_one_bad_row_and_the_other_rows_import(db):
    huge = "x" * (200 * 1024)
    data = (
        "email,first_name,notes\n"
        "ann@a.example,Ann,short\n"
        f'big@a.example,Big,"{huge}\nstill the same value"\n'
        "cy@a.example,Cy,\n"
        f"flat@a.example,Flat,{huge}\n"
        "dee@a.example,Dee,last\n"
    ).encode()
    result = import_contacts(db, data, filename="big.csv", keep_emails=True)
    assert [(bad["line"], bad["email"]) for bad in result.invalid] == [
        (3, "big@a.example"), (6, "flat@a.example")]
    assert "a value of 204,821 characters" in result.invalid[0]["reason"]
    assert result.emails == ["ann@a.example", "cy@a.example", "dee@a.example"]
    assert result.created == 3
    assert contact_by_email(db, "dee@a.example")["custom_fields"] == {"notes": "last"}


class _BoundedReads(io.BytesIO):
    """A file that fails the test if anyone reads it whole (read() without a size)."""

    LIMIT = 1024 * 1024

    def read(self, size=-1):
        assert size is not None and 0 <= size <= self.LIMIT, f"read({size})"
        return super().read(size)

    def read1(self, size=-1):
        assert size is not None and 0 <= size <= self.LIMIT, f"read1({size})"
        return super().read1(size)

    def readall(self):
        raise AssertionError("readall()")


def test_import_streams_the_file_in_bounded_reads(db):
    rows = "".join(f"p{i}@c.example,P{i}\n" for i in range(100_000))
    source = _BoundedReads(("email,first_name\n" + rows).encode())
    assert source.getbuffer().nbytes > 2 * _BoundedReads.LIMIT
    result = import_contacts(db, source, filename="big.csv")
    assert (result.created, result.invalid) == (100_000, [])
    assert contact_by_email(db, "p99999@c.example")["first_name"] == "P99999"


def test_a_file_not_valid_in_its_encoding_late_in_the_file_writes_nothing(db):
    data = codecs.BOM_UTF16_LE + "email\na@b.example\n".encode("utf-16-le") + b"\x00\xd8"
    with pytest.raises(SeqctlError, match="not valid UTF-16"):
        import_contacts(db, data, filename="u16.csv")
    assert db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == 0


def test_a_windows_1252_byte_far_into_the_file_switches_the_whole_file(db):
    rows = "".join(f"p{i}@c.example,P{i}\n" for i in range(30_000))
    data = ("email,first_name\n" + rows).encode() + "z@c.example,Zo\u00eb\n".encode("cp1252")
    result = import_contacts(db, data, filename="late.csv")
    assert result.created == 30_001
    assert contact_by_email(db, "z@c.example")["first_name"] == "Zo\u00eb"


def test_ensure_contact_creates_a_bare_contact_once(db):
    first = ensure_contact(db, " New@Person.example ")
    assert ensure_contact(db, "new@person.example") == first
    assert contact_by_email(db, "new@person.example")["first_name"] == ""
    with pytest.raises(SeqctlError):
        ensure_contact(db, "not an email")


def test_contact_by_email_has_the_documented_keys(db):
    ensure_contact(db, "k@k.example")
    assert set(contact_by_email(db, "k@k.example")) == {
        "id",
        "email",
        "first_name",
        "last_name",
        "company_name",
        "owner_email",
        "lifecycle_stage",
        "timezone",
        "custom_fields",
        "suppressed",
    }
    assert contact_by_email(db, "missing@k.example") is None


# --- the command line ----------------------------------------------------------------------

SHOW_KEYS = {
    "email",
    "first_name",
    "last_name",
    "company_name",
    "owner_email",
    "lifecycle_stage",
    "timezone",
    "custom_fields",
    "suppressed",
}


def test_import_of_a_partly_bad_file_exits_1_keeps_good_rows_and_names_file_lines(run, tmp_path):
    path = tmp_path / "bad_rows.csv"
    path.write_bytes(corpus("bad_rows.csv"))
    code, out, err = run("contacts", "import", path)
    assert code == 1
    assert "Traceback" not in err
    assert f"{path}:3: missing email" in err
    assert f"{path}:4: invalid email address" in err and "(bob@@acme.example)" in err
    assert f"{path}:5: unknown owner nobody@acme.example" in err
    assert f"{path}:6: unknown timezone 'Mars/Olympus_Mons'" in err
    emails = [c["email"] for c in run("contacts", "list", "--json").json]
    assert emails == ["erin@acme.example", "good1@acme.example", "good2@acme.example"]


def test_import_json_shape(run):
    result = run("contacts", "import", CORPUS / "multiline.csv", "--json")
    assert result.code == 1
    assert result.json == {
        "created": 2,
        "updated": 0,
        "invalid": [
            {"line": 5, "email": "not-an-email", "reason": result.json["invalid"][0]["reason"]},
            {"line": 8, "email": "", "reason": "missing email"},
        ],
    }


def test_reimport_upserts_and_exits_0(run):
    assert run("contacts", "import", EXAMPLE).code == 0
    upper = EXAMPLE.read_text().replace(
        "dana.whitfield@brightpath.example", "Dana.Whitfield@BrightPath.example"
    )
    result = run("contacts", "import", "-", "--json", input=upper)
    assert result.code == 0
    assert result.json == {"created": 0, "updated": 10, "invalid": []}


def test_import_from_stdin(run):
    result = run("contacts", "import", "-", input=corpus("good_tab.tsv"))
    assert result.code == 0, result.err
    assert "2 created" in result.err
    assert (
        run("contacts", "show", "priya@monsoon.example", "--json").json["company_name"]
        == "Monsoon, Inc."
    )


def test_show_json_shape(run):
    run("contacts", "import", EXAMPLE)
    shown = run("contacts", "show", "PRIYA.NAIR@monsoonhealth.example", "--json").json
    assert set(shown) == SHOW_KEYS
    assert shown["email"] == "priya.nair@monsoonhealth.example"
    assert shown["owner_email"] is None
    assert shown["suppressed"] is False
    assert shown["timezone"] == "Asia/Kolkata"
    assert shown["custom_fields"]["job_title"] == "Director of RevOps"
    assert "\n- no single view of renewals" in shown["custom_fields"]["pain_point"]


def test_show_reports_suppressed(run, home):
    run("contacts", "import", EXAMPLE)
    with sqlite3.connect(home / "seqctl.db") as conn:
        conn.execute(
            "INSERT INTO suppressions (email, reason, created_at) VALUES "
            "('tom.baker@harborai.example', 'unsubscribed', '2026-01-01T00:00:00Z')"
        )
    assert run("contacts", "show", "tom.baker@harborai.example", "--json").json["suppressed"]


def test_show_of_an_unknown_contact_is_one_line_exit_1(run):
    code, out, err = run("contacts", "show", "ghost@nowhere.example")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "ghost@nowhere.example" in err


def test_list_is_the_default_and_filters(run):
    run("contacts", "import", EXAMPLE)
    run("contacts", "set-stage", "emma.clarke@ledgerly.example", "customer")
    everyone = run("contacts", "--json").json
    assert len(everyone) == 10 and all(set(c) == SHOW_KEYS for c in everyone)
    assert [c["email"] for c in run("contacts", "list", "--stage", "customer", "--json").json] == [
        "emma.clarke@ledgerly.example"
    ]
    assert [
        c["first_name"] for c in run("contacts", "list", "--search", "fjord", "--json").json
    ] == ["Jonas"]
    table = run("contacts", env={"COLUMNS": "200"})
    assert table.code == 0 and "dana.whitfield@brightpath.example" in table.out


def test_set_known_and_custom_fields(run):
    run("contacts", "import", EXAMPLE)
    email = "sofia.romano@vellum.example"
    assert run("contacts", "set", email, "Company", "Vellum Print & Co").code == 0
    assert run("contacts", "set", email, "timezone", "europe/madrid").code == 0
    assert run("contacts", "set", email, "Budget Range", "10-20k").code == 0
    assert run("contacts", "set", email, "job_title", "").code == 0
    shown = run("contacts", "show", email, "--json").json
    assert shown["company_name"] == "Vellum Print & Co"
    assert shown["timezone"] == "Europe/Madrid"
    assert shown["custom_fields"] == {
        "pain_point": "quotes that take two days to turn around",
        "budget_range": "10-20k",
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Moon/Base", "unknown timezone"),
        ("owner_email", "nobody@acme.example", "unknown owner"),
        ("email", "not-an-email", "not a valid email"),
        ("email", "marcus.lee@quarrylabs.example", "already has"),
    ],
)
def test_set_validates_like_import(run, field, value, message):
    run("contacts", "import", EXAMPLE)
    code, out, err = run("contacts", "set", "sofia.romano@vellum.example", field, value)
    assert code == 1 and message in err and err.count("\n") == 1


def test_set_stage_stores_the_stage(run):
    run("contacts", "import", EXAMPLE)
    assert (
        run("contacts", "set-stage", "kenji.watanabe@sakuratools.example", "opportunity").code == 0
    )
    shown = run("contacts", "show", "kenji.watanabe@sakuratools.example", "--json").json
    assert shown["lifecycle_stage"] == "opportunity"


def test_unreadable_file_is_one_line_exit_1(run, tmp_path):
    code, out, err = run("contacts", "import", tmp_path / "missing.csv")
    assert code == 1 and out == ""
    assert err.startswith("error: cannot read") and err.count("\n") == 1
    code, _, err = run("contacts", "import", tmp_path)  # a directory
    assert code == 1 and err.count("\n") == 1


@pytest.mark.parametrize("name", ["binary_garbage.csv", "empty.csv", "no_email_column.csv"])
def test_unusable_file_is_one_line_exit_1_and_nothing_written(run, home, name):
    code, out, err = run("contacts", "import", CORPUS / name)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert contacts_in(home) == []


def test_header_whitespace_is_warned_on_stderr(run):
    result = run("contacts", "import", CORPUS / "odd_headers.csv", "--json")
    assert result.code == 0
    assert "Job Title " in result.err
    assert json.loads(result.out)["created"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("contacts", "import"),
        ("contacts", "show"),
        ("contacts", "set", "a@b.example", "x"),
        ("contacts", "list", "--bogus"),
    ],
)
def test_bad_arguments_exit_2(run, args):
    code, _, err = run(*args)
    assert code == 2, err
    assert "Traceback" not in err


def test_a_stage_change_by_import_exits_sequences_that_exit_on_stage_change(db):
    import_contacts(db, b"email,lifecycle_stage\nlead@acme.example,lead\n", filename="a.csv")
    contact_id = contact_by_email(db, "lead@acme.example")["id"]
    stamp = "2026-03-02T09:00:00Z"
    for name, flag in (("exits", 1), ("stays", 0)):
        sequence_id = db.execute(
            "INSERT INTO sequences (name, exit_on_stage_change, created_at, updated_at) "
            "VALUES (?, ?, ?, ?)",
            [name, flag, stamp, stamp],
        ).lastrowid
        db.execute(
            "INSERT INTO enrollments (sequence_id, contact_id, status, anchor_at, "
            "enrolled_at, updated_at) VALUES (?, ?, 'active', ?, ?, ?)",
            [sequence_id, contact_id, stamp, stamp, stamp],
        )
    import_contacts(db, b"email,lifecycle_stage\nlead@acme.example,lead\n", filename="same.csv")
    assert db.execute("SELECT COUNT(*) FROM enrollments WHERE status = 'exited'").fetchone()[0] == 0
    import_contacts(db, b"email,lifecycle_stage\nlead@acme.example,customer\n", filename="b.csv")
    statuses = db.execute(
        "SELECT s.name, e.status, e.exit_reason FROM enrollments e "
        "JOIN sequences s ON s.id = e.sequence_id ORDER BY s.name"
    ).fetchall()
    assert statuses == [("exits", "exited", "stage_changed"), ("stays", "active", None)]


def test_binary_data_without_nul_bytes_is_still_not_csv():
    garbage = bytes(range(1, 256)) * 8
    with pytest.raises(SeqctlError, match="not a CSV file"):
        read_csv(garbage, filename="g.bin")
