"""Messages as sent: preview equals the sent bytes, threading, A/B, templates, spam-score."""

from __future__ import annotations

import email
import email.policy
import textwrap
from datetime import timedelta

from seqctl.engine import exits
from tests.helpers import apply_yaml, at, enroll_all, sent_files, setup_account, tick

FOUR = """
    name: four
    steps:
      - step_type: email
        subject: "Idea for {{company_name}}"
        body: "Hi {{first_name}},\\nfirst note."
        variant_b:
          subject: "{{company_name}} question"
          body: "Hello {{first_name}}, variant B."
      - step_type: email
        delay_calendar_days: 1
        body: "Second note."
      - step_type: email
        delay_calendar_days: 1
        body: "Third note."
      - step_type: email
        delay_calendar_days: 1
        body: "Fourth note."
"""


def parse(path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def by_date(files):
    return sorted(files, key=lambda p: parse(p)["Date"].datetime)


def test_four_email_thread_chains_in_reply_to_and_references(home):
    db, maildir = setup_account(home)
    start = at("2026-03-02T10:00:00Z")
    apply_yaml(db, FOUR, start)
    db.execute("INSERT INTO contacts (email, first_name, company_name, created_at, updated_at) "
               "VALUES ('ann@a.test', 'Ann', 'Acme', '', '')")
    enroll_all(db, "four", ["ann@a.test"], start)
    for day in range(4):
        tick(db, start + timedelta(days=day))
    messages = [parse(p) for p in by_date(sent_files(maildir))]
    assert len(messages) == 4
    first = messages[0]
    assert first["Subject"] in ("Idea for Acme", "Acme question")
    ids = [m["Message-ID"] for m in messages]
    assert len(set(ids)) == 4
    for index, message in enumerate(messages[1:], start=1):
        assert message["Subject"] == "Re: " + first["Subject"]
        assert message["In-Reply-To"] == ids[index - 1]
        assert message["References"].split() == ids[:index]
    for message in messages:
        assert message["From"].addresses[0].display_name == "Riley Rep"
        assert message["To"].addresses[0].addr_spec == "ann@a.test"
        assert "List-Unsubscribe" in message
        text = message.get_body(("plain",)).get_content()
        assert "unsubscribe" in text.lower()
        assert message.get_body(("html",)) is not None


def test_follow_up_after_a_skipped_email_starts_a_new_thread(home):
    db, maildir = setup_account(home)
    start = at("2026-03-02T10:00:00Z")
    apply_yaml(db, FOUR, start)
    db.execute("INSERT INTO contacts (email, first_name, company_name, created_at, updated_at) "
               "VALUES ('ann@a.test', 'Ann', 'Acme', '', '')")
    exits.suppress(db, "ann@a.test", "manual", start)
    enroll_all(db, "four", ["ann@a.test"], start)
    tick(db, start)                                   # step 1 skipped: suppressed
    db.execute("DELETE FROM suppressions")
    tick(db, start + timedelta(days=1))
    (only,) = sent_files(maildir)
    message = parse(only)
    assert message["Subject"] in ("Idea for Acme", "Acme question")
    assert message["In-Reply-To"] is None and message["References"] is None


def test_merge_values_cannot_inject_headers(home):
    db, maildir = setup_account(home)
    start = at("2026-03-02T10:00:00Z")
    apply_yaml(db, FOUR, start)
    db.execute(
        "INSERT INTO contacts (email, first_name, company_name, created_at, updated_at) "
        "VALUES ('ann@a.test', ?, ?, '', '')",
        ["Ann\r\nBcc: evil@attacker.test", "Acme\nX-Injected: yes\r\n\r\nbody"])
    enroll_all(db, "four", ["ann@a.test"], start)
    tick(db, start)
    (only,) = sent_files(maildir)
    message = parse(only)
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@a.test"]
    assert "\n" not in message["Subject"]


def test_preview_equals_the_file_the_maildir_inbox_receives(run, home):
    mail = home / "mail"
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", mail).code == 0
    (home / "four.yaml").write_text(textwrap.dedent(FOUR))
    assert run("sequence", "apply", home / "four.yaml").code == 0
    csv = "email,first_name,company_name\nann@a.test,Ann,Acme\nbob@b.test,Bøb,Bärenstark GmbH\n"
    assert run("enroll", "four", "--csv", "-", input=csv, now="2026-03-02T10:00:00Z").code == 0
    for day, moment in enumerate(["2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z"], start=1):
        previews = {}
        for address in ("ann@a.test", "bob@b.test"):
            result = run("preview", "four", "--step", str(day), "--contact", address, "--raw",
                         now=moment)
            assert result.code == 0, result.err
            previews[address] = result.out.encode()
        assert run("tick", now=moment).code == 0
        files = by_date(sent_files(mail))[-2:]
        received = {str(parse(f)["To"].addresses[0].addr_spec): f.read_bytes() for f in files}
        assert received == previews


def test_preview_json_and_variant_b(run, home):
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "four.yaml").write_text(textwrap.dedent(FOUR))
    assert run("sequence", "apply", home / "four.yaml").code == 0
    assert run("contacts", "import", "-", input="email,first_name,company_name\n"
               "ann@a.test,Ann,Acme\n").code == 0
    result = run("preview", "four", "--step", "1", "--contact", "ann@a.test", "--variant", "b",
                 "--json")
    assert result.code == 0, result.err
    document = result.json
    assert document["subject"] == "Acme question"
    assert document["text"].startswith("Hello Ann, variant B.")
    assert document["to"] == "ann@a.test" and document["cc"] == [] and document["bcc"] == []
    assert "Message-ID" in document["headers"] and "Hello Ann, variant B." in document["html"]
    assert set(document["spam"]) == {"score", "band", "reasons"}
    assert document["variant"] == "B"
    assert run("preview", "four", "--step", "9", "--contact", "ann@a.test").code == 1
    assert run("preview", "four", "--step", "1", "--contact", "ann@a.test",
               "--variant", "c").code == 2


def test_ab_split_over_a_thousand_enrollments_is_near_even_and_stable(home):
    db, maildir = setup_account(home)
    start = at("2026-03-02T10:00:00Z")
    apply_yaml(db, FOUR, start)
    enroll_all(db, "four", [f"p{i}@x.test" for i in range(1000)], start)
    variants = [v for (v,) in db.execute("SELECT variant FROM enrollments ORDER BY id")]
    share = variants.count("A") / len(variants)
    assert 0.45 <= share <= 0.55
    from seqctl.engine.render import variant_for

    ids = [i for (i,) in db.execute("SELECT id FROM enrollments ORDER BY id")]
    assert [variant_for(i) for i in ids] == variants


def test_templates_save_list_show_delete_and_template_steps_send_them(run, home):
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "four.yaml").write_text(textwrap.dedent(FOUR))
    assert run("sequence", "apply", home / "four.yaml").code == 0
    assert run("templates", "save", "opener", "--sequence", "four", "--step", "1").code == 0
    assert [t["name"] for t in run("templates", "--json").json] == ["opener"]
    shown = run("templates", "show", "opener", "--json").json
    assert shown["subject"] == "Idea for {{company_name}}"
    (home / "t.yaml").write_text(textwrap.dedent("""
        name: from-template
        steps:
          - step_type: email
            template: opener
    """))
    result = run("sequence", "apply", home / "t.yaml")
    assert result.code == 0, result.err
    assert run("enroll", "from-template", "ann@a.test", now="2026-03-02T10:00:00Z").code == 0
    assert run("tick", now="2026-03-02T10:00:00Z").code == 0
    (sent,) = sent_files(home / "mail")
    assert parse(sent)["Subject"] == "Idea for"         # no company for a bare contact
    refused = run("templates", "delete", "opener")
    assert refused.code == 1 and "from-template step 1" in refused.err
    assert run("templates", "delete", "opener", "--force").code == 0
    assert run("templates", "--json").json == []


def test_spam_score_cli(run, home):
    result = run("spam-score", "--subject", "FREE MONEY!!!", "--body",
                 "Act now!!! 100% free, click here: http://bit.ly/x $$$", "--json")
    assert result.code == 0
    report = result.json
    assert report["band"] == "red" and report["score"] >= 60
    assert {"rule", "points", "detail"} <= set(report["reasons"][0])
    clean = run("spam-score", "--subject", "Question about your onboarding", "--body-file", "-",
                input="Hi {{first_name}},\nwould a short call next week be useful?\nRiley\n",
                ).out
    assert clean.startswith("0/100 green") or "green" in clean.splitlines()[0]
    assert run("spam-score").code == 2


def test_preview_of_a_follow_up_before_the_first_email_went_out_shows_the_reply(run, home):
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "four.yaml").write_text(textwrap.dedent(FOUR))
    assert run("sequence", "apply", home / "four.yaml").code == 0
    assert run("contacts", "import", "-", input="email,first_name,company_name\n"
               "ann@a.test,Ann,Acme\n").code == 0
    first = run("preview", "four", "--step", "1", "--contact", "ann@a.test", "--variant", "a",
                "--json").json
    third = run("preview", "four", "--step", "3", "--contact", "ann@a.test", "--variant", "a",
                "--json").json
    assert third["subject"] == "Re: " + first["subject"]
    assert third["headers"]["In-Reply-To"].startswith("<sq.")
    assert len(third["headers"]["References"].split()) == 2
    # enrolled, first email queued but not sent: the follow-up preview is still the reply
    assert run("enroll", "four", "ann@a.test", now="2026-03-02T10:00:00Z").code == 0
    assert run("tick", "--phase", "engine", now="2026-03-02T10:00:00Z").code == 0
    second = run("preview", "four", "--step", "2", "--contact", "ann@a.test", "--json").json
    queued = run("outbox", "list", "--json").json[0]
    assert second["headers"]["In-Reply-To"] == queued["message_id"]
    assert queued["status"] == "queued"
    assert second["subject"] == "Re: " + queued["subject"]


def test_preview_shows_the_decoded_text_and_which_variant(run, home):
    assert run("inbox", "add", "maildir", "rep@acme.test", "--dir", home / "mail").code == 0
    (home / "four.yaml").write_text(textwrap.dedent(FOUR))
    assert run("sequence", "apply", home / "four.yaml").code == 0
    assert run("contacts", "import", "-", input="email,first_name,company_name\n"
               "bob@b.test,Bøb,Bärenstark GmbH\n").code == 0
    result = run("preview", "four", "--step", "1", "--contact", "bob@b.test", "--variant", "b")
    assert result.code == 0, result.err
    assert "variant B" in result.out.splitlines()[0]
    assert "To: Bøb <bob@b.test>" in result.out and "Subject: Bärenstark GmbH question" in result.out
    assert "Hello Bøb, variant B." in result.out
    assert "=\r\n" not in result.out and "=C3" not in result.out       # not quoted-printable
    raw = run("preview", "four", "--step", "1", "--contact", "bob@b.test", "--variant", "b",
              "--raw").out
    assert "Content-Transfer-Encoding: quoted-printable" in raw


def test_a_template_step_uses_only_the_owners_template(run, home):
    assert run("users", "add", "riley@acme.test", "--first-name", "Riley").code == 0
    assert run("users", "add", "sam@acme.test", "--first-name", "Sam").code == 0
    assert run("inbox", "add", "maildir", "riley@acme.test", "--dir", home / "riley").code == 0
    assert run("inbox", "add", "maildir", "sam@acme.test", "--dir", home / "sam").code == 0
    (home / "four.yaml").write_text(textwrap.dedent(FOUR))
    assert run("sequence", "apply", home / "four.yaml").code == 0
    assert run("templates", "save", "opener", "--sequence", "four", "--step", "1",
               "--user", "riley@acme.test").code == 0
    (home / "t.yaml").write_text("name: t\nsteps:\n  - step_type: email\n    template: opener\n")
    assert run("sequence", "apply", home / "t.yaml").code == 0
    csv = ("email,owner_email\nann@a.test,riley@acme.test\nbo@b.test,sam@acme.test\n")
    assert run("enroll", "t", "--csv", "-", input=csv, now="2026-03-02T10:00:00Z").code == 0
    run("tick", now="2026-03-02T10:00:00Z")
    assert len(sent_files(home / "riley")) == 1          # Riley's contact: Riley's template
    assert not (home / "sam" / "sent" / "new").exists() or sent_files(home / "sam") == []
    rows = {r["email"]: r for r in run("enrollments", "--json").json}
    assert rows["bo@b.test"]["status"] == "failed"
    assert "template 'opener' no longer exists" in rows["bo@b.test"]["failure_message"]
