"""Missing merge fields (SPEC 8): `enroll` and `preview` say which fields a contact lacks,
and `require_fields` holds an email back with a message saying how to fix it."""

from __future__ import annotations

import email
import email.policy
import textwrap

import pytest

from seqctl.engine import sequence_reader
from seqctl.engine.render import variables_without_default
from tests.helpers import sent_files

NOW = "2026-03-02T15:00:00Z"     # a Monday

SEQUENCE = """\
name: growth
timezone: UTC
{require}steps:
  - step_type: email
    subject: "Quick question, {{{{ first_name | default('there') }}}}"
    body: |
      Hi {{{{ first_name | default('there') }}}},

      I noticed {{{{ company_name }}}} has been growing{{% if city %}} in {{{{ city }}}}{{% endif %}}.
      {{{{ favourite_tool }}}}
"""

CONTACTS = """\
email,first_name,company_name,favourite_tool
full@a.test,Ann,Initech,Jira
bare@b.test,,,
"""


def setup(run, home, require: str = "") -> None:
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "contacts.csv").write_text(CONTACTS)
    assert run("contacts", "import", home / "contacts.csv").code == 0
    (home / "s.yaml").write_text(SEQUENCE.format(require=require))
    applied = run("sequence", "apply", home / "s.yaml")
    assert applied.code == 0, applied.err


@pytest.mark.parametrize("template, expected", [
    ("Hi {{ first_name }}", {"first_name"}),
    ("Hi {{ first_name | default('there') }}", set()),
    ("Hi {{ first_name | title | d('there') }}", set()),
    ("{{ first_name or 'there' }}", set()),
    ("{% if company_name %}at {{ company_name }}{% endif %}", set()),
    ("{{ company_name if company_name else 'your team' }}", set()),
    ("{% if city %}{{ company_name }}{% endif %}", {"company_name"}),
    ("{{ last_name | upper }}", {"last_name"}),
    ("{% set who = nickname %}{{ who }}", {"nickname"}),
    ("No merge fields at all", set()),
])
def test_variables_printed_without_a_fallback(template, expected):
    assert variables_without_default(template) == expected


def test_enroll_warns_per_contact_and_lists_missing_fields_in_json(run, home):
    setup(run, home)
    result = run("enroll", "growth", "full@a.test", "bare@b.test", "--json", now=NOW)
    assert result.code == 0, result.err
    by_email = {r["email"]: r for r in result.json["results"]}
    assert by_email["full@a.test"]["missing_fields"] == []
    # first_name has a default and city is tested by {% if %}: neither is a surprise
    assert by_email["bare@b.test"]["missing_fields"] == ["company_name", "favourite_tool"]
    text = run("enroll", "growth", "bare@b.test", "--reenroll", now=NOW)
    assert "bare@b.test" not in text.err      # a skipped duplicate gets no warning


def test_enroll_text_names_the_contact_the_fields_and_the_fix(run, home):
    setup(run, home)
    result = run("enroll", "growth", "full@a.test", "bare@b.test", now=NOW)
    assert result.code == 0
    warnings = [line for line in result.err.splitlines() if "bare@b.test" in line]
    assert len(warnings) == 1 and "company_name, favourite_tool" in warnings[0]
    assert "seqctl contacts set bare@b.test company_name" in warnings[0]
    assert "full@a.test" not in result.err


def test_preview_flags_missing_fields(run, home):
    setup(run, home)
    assert run("enroll", "growth", "bare@b.test", now=NOW).code == 0
    preview = run("preview", "growth", "--step", "1", "--contact", "bare@b.test", now=NOW)
    assert preview.code == 0
    assert "warning: bare@b.test: no company_name, favourite_tool" in preview.err
    assert "I noticed  has been growing" in preview.out      # what would be sent, as it is
    data = run("preview", "growth", "--step", "1", "--contact", "bare@b.test", "--json",
               now=NOW).json
    assert data["missing_fields"] == ["company_name", "favourite_tool"]
    assert data["held_fields"] == []
    full = run("preview", "growth", "--step", "1", "--contact", "full@a.test", "--json", now=NOW)
    assert full.json["missing_fields"] == []


def test_require_fields_holds_the_email_back_until_the_field_is_set(run, home):
    setup(run, home, require="require_fields: [company_name]\n")
    assert run("enroll", "growth", "full@a.test", "bare@b.test", now=NOW).code == 0
    data = run("preview", "growth", "--step", "1", "--contact", "bare@b.test", "--json",
               now=NOW).json
    assert data["held_fields"] == ["company_name"]
    assert run("tick", now=NOW).code == 0
    sent = [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["To"]
            for path in sent_files(home / "mail")]
    assert sent == ["Ann <full@a.test>"]
    rows = {r["email"]: r for r in run("enrollments", "list", "--json").json}
    assert rows["full@a.test"]["exit_reason"] == "completed"
    bare = rows["bare@b.test"]
    assert bare["status"] == "failed"
    assert "company_name is empty for bare@b.test" in bare["failure_message"]
    assert "seqctl contacts set bare@b.test company_name VALUE" in bare["failure_message"]
    assert "seqctl resume growth bare@b.test" in bare["failure_message"]
    # the fix the message names works
    assert run("contacts", "set", "bare@b.test", "company_name", "Globex").code == 0
    assert run("resume", "growth", "bare@b.test", now=NOW).code == 0
    assert run("tick", now=NOW).code == 0
    raws = [path.read_bytes() for path in sent_files(home / "mail")]
    assert len(raws) == 2 and b"Globex has been growing" in b"".join(raws).replace(b"=\r\n", b"")


def test_require_fields_all_means_every_field_printed_without_a_default(run, home):
    setup(run, home, require="require_fields: all\n")
    assert run("enroll", "growth", "bare@b.test", now=NOW).code == 0
    assert run("tick", now=NOW).code == 0
    assert sent_files(home / "mail") == []
    (row,) = run("enrollments", "list", "--json").json
    assert row["status"] == "failed"
    assert row["failure_message"].startswith("company_name and favourite_tool are empty for "
                                             "bare@b.test")


def test_require_fields_round_trips_through_export(run, home):
    setup(run, home, require="require_fields: [company_name, favourite_tool]\n")
    exported = run("sequence", "export", "growth").out
    assert "require_fields:\n  - company_name\n  - favourite_tool\n" in exported
    (home / "again.yaml").write_text(exported)
    assert run("sequence", "apply", home / "again.yaml").code == 0
    assert run("sequence", "export", "growth").out == exported
    assert run("sequence", "show", "growth", "--json").json["require_fields"] == [
        "company_name", "favourite_tool"]


@pytest.mark.parametrize("value, fragment", [
    ("require_fields: everything", "must be a list of fields or 'all'"),
    ("require_fields: [compnay_name]", "did you mean company_name?"),
    ("require_fields: ['not a name']", "is not a field name"),
])
def test_bad_require_fields_are_reported_with_line_and_field(value, fragment):
    text = textwrap.dedent(f"""\
        name: x
        {value}
        steps:
          - step_type: email
            subject: Hi
            body: Hello
        """)
    result = sequence_reader.validate_sequence(text)
    assert not result.ok
    assert [(p.line, p.field) for p in result.errors] == [(2, "require_fields")]
    assert fragment in result.errors[0].message


def test_a_required_field_no_contact_has_yet_is_a_warning():
    result = sequence_reader.validate_sequence(
        "name: x\nrequire_fields: [deal_size]\nsteps:\n  - step_type: email\n"
        "    subject: Hi\n    body: Hello\n")
    assert result.ok and result.spec.settings["require_fields"] == "deal_size"
    assert [(p.line, p.field) for p in result.warnings] == [(2, "require_fields")]
