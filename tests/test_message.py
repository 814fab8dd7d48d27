"""Building MIME messages (spec section 8); every message is parsed back with the stdlib."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqctl.engine.message import (
    BuiltMessage,
    OutgoingEmail,
    Tracking,
    Unsubscribe,
    build_message,
    html_from_text,
)
from seqctl.engine.render import header_safe, reply_subject

SENT_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
UNSUBSCRIBE = Unsubscribe(
    mailto="unsubscribe@acme.com",
    url="https://t.acme.com/u/tok123",
    physical_address="Acme Inc, 1 Main St, Springfield",
)
BODY = "Hi Jane,\n\nSaw the launch - congrats.\nWorth a call? https://cal.acme.com/sam\n\nSam"


def outgoing(**changes) -> OutgoingEmail:
    base = OutgoingEmail(
        from_address="sam@acme.com",
        from_name="Sam Carter",
        to_address="jane@initech.com",
        to_name="Jane Smith",
        subject="Quick question, Jane",
        text=BODY,
        cc=[],
        bcc=[],
        message_id="<seqctl.1.1@acme.com>",
        date=SENT_AT,
        unsubscribe=UNSUBSCRIBE,
    )
    return replace(base, **changes)


def parse(built: BuiltMessage) -> EmailMessage:
    return email.message_from_bytes(built.raw, policy=email.policy.default)


def text_of(message: EmailMessage, subtype: str) -> str:
    return message.get_body((subtype,)).get_content().replace("\r\n", "\n")


def test_message_is_multipart_alternative_with_utf8_text_and_html():
    message = parse(build_message(outgoing()))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parts)
    assert all(not part.defects for part in message.walk())


def test_headers_match_what_a_parser_reads():
    built = build_message(outgoing(cc=["Lee <lee@initech.com>"]))
    message = parse(built)
    assert {name: str(message[name]) for name in message.keys()} == built.headers
    assert built.headers["From"] == "Sam Carter <sam@acme.com>"
    assert built.headers["To"] == "Jane Smith <jane@initech.com>"
    assert built.headers["Cc"] == "Lee <lee@initech.com>"
    assert built.headers["Subject"] == "Quick question, Jane"
    assert built.headers["Date"] == "Mon, 02 Mar 2026 15:00:00 +0000"
    assert built.headers["Message-ID"] == "<seqctl.1.1@acme.com>"
    assert built.headers["MIME-Version"] == "1.0"


def test_parts_decode_to_the_returned_text_and_html():
    built = build_message(outgoing())
    message = parse(built)
    assert text_of(message, "plain") == built.text
    assert text_of(message, "html") == built.html
    assert built.text.startswith(BODY)


def test_raw_uses_crlf_and_short_lines():
    built = build_message(outgoing(subject="word " * 40, text="x" * 500))
    assert b"\n" not in built.raw.replace(b"\r\n", b"")
    assert max(len(line) for line in built.raw.split(b"\r\n")) <= 78


def test_html_part_is_escaped_and_keeps_line_breaks():
    built = build_message(outgoing(text="Hi <b>Jane</b> & co,\nline two\n\n  indented"))
    assert "Hi &lt;b&gt;Jane&lt;/b&gt; &amp; co,<br>\nline two<br>\n<br>\n&nbsp; indented" in (
        built.html
    )


def test_html_links_are_clickable_without_trailing_punctuation():
    html = html_from_text("See https://acme.com/a?x=1&y=2. Or (www.acme.com/b).")
    assert '<a href="https://acme.com/a?x=1&amp;y=2">https://acme.com/a?x=1&amp;y=2</a>.' in html
    assert '(<a href="https://www.acme.com/b">www.acme.com/b</a>).' in html


def test_footer_with_url_and_physical_address_in_text_and_html():
    built = build_message(outgoing())
    assert built.text.endswith(
        "\n\nUnsubscribe: https://t.acme.com/u/tok123\nAcme Inc, 1 Main St, Springfield\n"
    )
    assert '<a href="https://t.acme.com/u/tok123">Unsubscribe</a>' in built.html
    assert "Acme Inc, 1 Main St, Springfield" in built.html


def test_footer_with_mailto_only_gives_the_address():
    built = build_message(outgoing(unsubscribe=Unsubscribe("unsubscribe@acme.com", None, None)))
    assert 'email unsubscribe@acme.com with the subject "unsubscribe"' in built.text
    assert 'href="mailto:unsubscribe@acme.com?subject=unsubscribe"' in built.html


def test_list_unsubscribe_with_url_is_one_click():
    message = parse(build_message(outgoing()))
    assert message["List-Unsubscribe"] == (
        "<https://t.acme.com/u/tok123>, <mailto:unsubscribe@acme.com?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_list_unsubscribe_with_mailto_only_has_no_one_click():
    unsubscribe = Unsubscribe(mailto="mailto:unsubscribe@acme.com", url=None, physical_address=None)
    message = parse(build_message(outgoing(unsubscribe=unsubscribe)))
    assert message["List-Unsubscribe"] == "<mailto:unsubscribe@acme.com?subject=unsubscribe>"
    assert "List-Unsubscribe-Post" not in message


def test_no_unsubscribe_means_no_footer_and_no_header():
    built = build_message(outgoing(unsubscribe=None))
    assert "List-Unsubscribe" not in parse(built)
    assert built.text == BODY + "\n"


def test_threading_chain_across_a_four_email_sequence():
    first = outgoing(subject="Quick question, Jane", message_id="<m1@acme.com>")
    sent = [build_message(first)]
    subject = first.subject
    references: list[str] = []
    for number in (2, 3):
        previous = sent[-1].headers["Message-ID"]
        references = [*references, previous]
        subject = reply_subject(subject)
        sent.append(
            build_message(
                outgoing(
                    subject=subject,
                    message_id=f"<m{number}@acme.com>",
                    in_reply_to=previous,
                    references=references,
                    date=SENT_AT + timedelta(days=3 * number),
                )
            )
        )
    sent.append(build_message(outgoing(subject="New idea", message_id="<m4@acme.com>")))
    parsed = [parse(built) for built in sent]

    assert parsed[0]["Subject"] == "Quick question, Jane"
    assert "In-Reply-To" not in parsed[0] and "References" not in parsed[0]
    assert parsed[1]["Subject"] == "Re: Quick question, Jane"
    assert parsed[2]["Subject"] == "Re: Quick question, Jane"
    assert parsed[1]["In-Reply-To"] == "<m1@acme.com>"
    assert parsed[1]["References"] == "<m1@acme.com>"
    assert parsed[2]["In-Reply-To"] == "<m2@acme.com>"
    assert parsed[2]["References"] == "<m1@acme.com> <m2@acme.com>"
    assert parsed[3]["Subject"] == "New idea"
    assert "In-Reply-To" not in parsed[3]


def test_in_reply_to_is_added_to_references():
    built = build_message(outgoing(in_reply_to="m1@acme.com"))
    assert built.headers["In-Reply-To"] == "<m1@acme.com>"
    assert built.headers["References"] == "<m1@acme.com>"


EXPECTED_HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Content-Type",
}


def test_crlf_in_subject_cannot_add_a_bcc_header():
    built = build_message(outgoing(subject="Hello\r\nBcc: evil@example.com\r\n\r\nbody"))
    message = parse(built)
    assert set(message.keys()) == EXPECTED_HEADERS
    assert message["Subject"] == "Hello Bcc: evil@example.com body"
    assert b"\r\nBcc:" not in built.raw


def test_crlf_in_names_cannot_add_headers():
    built = build_message(
        outgoing(to_name="Jane\nBcc: evil@example.com", from_name="Sam\r\nX-Evil: 1")
    )
    message = parse(built)
    assert set(message.keys()) == EXPECTED_HEADERS
    assert message["To"].addresses[0].addr_spec == "jane@initech.com"
    assert message["From"].addresses[0].addr_spec == "sam@acme.com"


@pytest.mark.parametrize(
    "changes",
    [
        {"cc": ["lee@initech.com\r\nBcc: evil@example.com"]},
        {"to_address": "jane@initech.com\nBcc: evil@example.com"},
        {"message_id": "<a@b>\r\nBcc: evil@example.com"},
        {"in_reply_to": "<a@b>\nX-Evil: 1"},
    ],
)
def test_header_injection_through_addresses_or_ids_is_refused(changes):
    with pytest.raises(ValueError):
        build_message(outgoing(**changes))


# Names stay within one encoded word (45 UTF-8 bytes): the stdlib's phrase parser, unlike
# RFC 2047 section 6.2, keeps the space between adjacent encoded words. Longer names are
# checked with an RFC-following decoder in test_long_non_ascii_display_name_decodes.
SHORT_NAMES = st.text(max_size=11)


@settings(max_examples=80, deadline=None)
@given(subject=st.text(), to_name=SHORT_NAMES, from_name=SHORT_NAMES)
def test_no_merge_value_can_change_the_header_set(subject, to_name, from_name):
    built = build_message(outgoing(subject=subject, to_name=to_name, from_name=from_name))
    message = parse(built)
    assert set(message.keys()) == EXPECTED_HEADERS
    assert str(message["Subject"]) == header_safe(subject)
    assert message["To"].addresses[0].addr_spec == "jane@initech.com"
    assert message["To"].addresses[0].display_name == " ".join(header_safe(to_name).split())
    assert message["From"].addresses[0].display_name == " ".join(header_safe(from_name).split())
    assert {name: str(message[name]) for name in message.keys()} == built.headers


@settings(max_examples=60, deadline=None)
@given(st.text())
def test_any_body_round_trips(text):
    built = build_message(outgoing(text=text))
    message = parse(built)
    assert text_of(message, "plain") == built.text
    assert text_of(message, "html") == built.html


def test_non_ascii_names_and_subject_round_trip():
    built = build_message(
        outgoing(
            from_name="José Díaz, Ventas",
            to_name="Zoë Ångström",
            subject="¿Una pregunta rápida, Zoë? 日本語のテキストも大丈夫です " * 3,
            text="Olá Zoë — até já 👋",
        )
    )
    message = parse(built)
    assert message["From"].addresses[0].display_name == "José Díaz, Ventas"
    assert message["To"].addresses[0].display_name == "Zoë Ångström"
    assert str(message["Subject"]) == header_safe(
        "¿Una pregunta rápida, Zoë? 日本語のテキストも大丈夫です " * 3
    )
    assert text_of(message, "plain").startswith("Olá Zoë — até já 👋")
    assert built.raw.isascii()


def test_long_non_ascii_display_name_decodes():
    name = "Zoë Ångström-Łukasiewicz, Direção de Operações Comerciais 日本"
    built = build_message(outgoing(to_name=name))
    raw_value = built.raw.split(b"\r\nTo: ", 1)[1].split(b"\r\nSubject:", 1)[0].decode()
    encoded_name = raw_value.replace("\r\n", "").rsplit(" <", 1)[0]
    assert encoded_name.count("=?utf-8?b?") > 1
    assert str(make_header(decode_header(encoded_name))) == name


def test_names_with_specials_are_quoted():
    message = parse(build_message(outgoing(to_name='Smith, "JJ" Jane')))
    assert message["To"].addresses[0].display_name == 'Smith, "JJ" Jane'


def test_bcc_is_returned_but_not_in_the_headers():
    built = build_message(outgoing(bcc=["crm@acme.com", "Boss <boss@acme.com>"]))
    assert built.bcc == ["crm@acme.com", "boss@acme.com"]
    assert "Bcc" not in parse(built)
    assert b"crm@acme.com" not in built.raw
    assert b"boss@acme.com" not in built.raw


def test_cc_entries_are_parsed_deduplicated_and_blank_ones_skipped():
    built = build_message(
        outgoing(
            cc=['"Doe, John" <john@initech.com>', "", "  ", "amy@initech.com; JOHN@initech.com"],
            bcc=["amy@initech.com", "jane@initech.com", "crm@acme.com"],
        )
    )
    assert built.cc == ["john@initech.com", "amy@initech.com"]
    assert built.bcc == ["crm@acme.com"]
    message = parse(built)
    assert [a.addr_spec for a in message["Cc"].addresses] == built.cc
    assert message["Cc"].addresses[0].display_name == "Doe, John"


@pytest.mark.parametrize("bad", ["not an address", "a@b@c", "jane@", "<>", "a@b.com, junk"])
def test_malformed_address_is_refused(bad):
    with pytest.raises(ValueError):
        build_message(outgoing(cc=[bad]))


def test_international_domain_is_punycoded():
    built = build_message(outgoing(to_address="jane@bücher.example"))
    assert built.to == "jane@xn--bcher-kva.example"


def test_same_input_gives_the_same_bytes():
    assert build_message(outgoing()).raw == build_message(outgoing()).raw


def test_boundary_comes_from_the_message_id():
    one = build_message(outgoing(message_id="<a@acme.com>"))
    two = build_message(outgoing(message_id="<b@acme.com>"))
    assert parse(one).get_boundary() != parse(two).get_boundary()


def test_naive_date_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        build_message(outgoing(date=datetime(2026, 3, 2, 9, 0)))


def test_tracking_wraps_html_links_but_not_unsubscribe_or_text():
    tracking = Tracking(
        pixel_url="https://t.acme.com/o/tok",
        wrap_link=lambda url: "https://t.acme.com/c/tok?u=" + url,
    )
    built = build_message(outgoing(tracking=tracking))
    assert 'href="https://t.acme.com/c/tok?u=https://cal.acme.com/sam"' in built.html
    assert '<a href="https://t.acme.com/u/tok123">Unsubscribe</a>' in built.html
    assert '<img src="https://t.acme.com/o/tok" width="1" height="1"' in built.html
    assert "https://cal.acme.com/sam" in built.text
    assert "t.acme.com/c/" not in built.text
    assert "t.acme.com/o/" not in built.text


def test_without_tracking_there_is_no_pixel():
    assert "<img" not in build_message(outgoing()).html


def test_stdlib_generator_agrees_on_the_content():
    """Our hand-written bytes carry the same content the stdlib would produce."""
    built = build_message(outgoing(subject="Grüße", to_name="Zoë"))
    reference = EmailMessage(policy=email.policy.SMTP)
    reference["Subject"] = "Grüße"
    reference["To"] = "Zoë <jane@initech.com>"
    reference.set_content(built.text)
    reparsed = email.message_from_bytes(reference.as_bytes(), policy=email.policy.default)
    ours = parse(built)
    assert str(ours["Subject"]) == str(reparsed["Subject"])
    assert str(ours["To"]) == str(reparsed["To"])
    assert text_of(ours, "plain") == reparsed.get_content().replace("\r\n", "\n")
