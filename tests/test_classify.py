"""What is an inbound message? SPEC section 10, checked against `seqctl.engine.classify`.

The corpus in tests/corpus/inbound/ holds real-world-shaped messages (Gmail, Exchange,
Postfix, Exim, Zimbra, Google Calendar, Outlook, Calendly); expected.json says what each is.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqctl.engine.classify import KINDS, ClassifyContext, Verdict, classify, parse_return_date

CORPUS = Path(__file__).parent / "corpus" / "inbound"
MANIFEST = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
EXPECTED = MANIFEST["messages"]
REP = "alex@northwindlabs.com"
UNSUBSCRIBE = "alex+unsubscribe@northwindlabs.com"
TUESDAY = datetime(2026, 3, 3, 9, 30, tzinfo=timezone(timedelta(hours=-5)))


def corpus_context(received_at: str | None = None) -> ClassifyContext:
    context = MANIFEST["context"]
    return ClassifyContext(
        our_addresses=frozenset(context["our_addresses"]),
        unsubscribe_addresses=frozenset(context["unsubscribe_addresses"]),
        received_at=datetime.fromisoformat(received_at or context["received_at"]),
    )


CTX = corpus_context()


def classify_file(name: str) -> Verdict:
    expected = EXPECTED[name]
    return classify((CORPUS / name).read_bytes(), corpus_context(expected.get("received_at")))


def message(body: str = "Sounds good.", **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Dana Whitfield <dana@acme-robotics.com>")
    msg["To"] = headers.pop("To", f"Alex Rivera <{REP}>")
    msg["Subject"] = headers.pop("Subject", "Re: Quick question")
    msg["Message-ID"] = headers.pop("Message_ID", "<reply.1@acme-robotics.com>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


# -- the corpus ----------------------------------------------------------------------------


def test_corpus_has_at_least_30_messages_and_every_file_is_in_the_manifest():
    files = {path.name for path in CORPUS.glob("*.eml")}
    assert len(files) >= 30
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_gets_its_expected_verdict(name):
    expected = EXPECTED[name]
    verdict = classify_file(name)
    assert verdict.kind == expected["kind"], verdict.reason
    assert verdict.reason
    if "hard" in expected:
        assert verdict.hard is expected["hard"], verdict.reason
    for key in ("bounced_recipients", "complained_recipients", "original_message_ids",
                "attendees", "references"):
        if key in expected:
            assert getattr(verdict, key) == expected[key]
    for key in ("calendar_method", "sender"):
        if key in expected:
            assert getattr(verdict, key) == expected[key]
    if "return_date" in expected:
        wanted = expected["return_date"]
        assert verdict.return_date == (date.fromisoformat(wanted) if wanted else None)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_headers_are_extracted(name):
    verdict = classify_file(name)
    assert verdict.sender and verdict.sender == verdict.sender.lower()
    assert verdict.message_id and verdict.message_id.startswith("<")
    assert all(ref.startswith("<") and ref.endswith(">") for ref in verdict.references)
    assert len(verdict.references) == len(set(verdict.references))


def test_corpus_covers_every_kind():
    assert {entry["kind"] for entry in EXPECTED.values()} == set(KINDS)


# -- order of checks and edge cases --------------------------------------------------------


def test_mail_from_our_own_address_is_ignored_even_if_it_looks_like_an_unsubscribe():
    raw = message("unsubscribe", From=f"Alex Rivera <{REP.upper()}>")
    assert classify(raw, CTX).kind == "ignored"


def test_references_are_in_reply_to_then_references_deduplicated():
    raw = (
        b"From: dana@acme-robotics.com\r\nSubject: Re: hi\r\nIn-Reply-To: <b@x.com>\r\n"
        b"References: <a@x.com> <b@x.com>\r\n <c@x.com>\r\n\r\nTuesday works.\r\n"
    )
    assert classify(raw, CTX).references == ["<b@x.com>", "<a@x.com>", "<c@x.com>"]


def test_auto_submitted_no_is_a_reply():
    raw = message("Tuesday works.", Auto_Submitted="no")
    assert classify(raw, CTX).kind == "reply"


def test_auto_reply_is_never_a_reply_even_when_its_first_line_says_unsubscribe():
    raw = message("Unsubscribe requests go to my colleague.", Auto_Submitted="auto-replied")
    assert classify(raw, CTX).kind == "auto_reply"


def test_x_auto_response_suppress_alone_is_not_an_auto_reply():
    raw = message("Happy to talk.", X_Auto_Response_Suppress="All", Subject="RE: Quick question")
    assert classify(raw, CTX).kind == "reply"


@pytest.mark.parametrize("precedence", ["bulk", "junk", "auto_reply"])
def test_precedence_bulk_junk_auto_reply_in_answer_to_our_email_is_an_auto_reply(precedence):
    raw = message(Precedence=precedence, In_Reply_To="<seqctl.1@northwindlabs.com>")
    assert classify(raw, CTX).kind == "auto_reply"


@pytest.mark.parametrize("headers", [
    {"Precedence": "bulk"},
    {"Precedence": "junk"},
    {"Precedence": "list"},
    {"List_Id": "Acme News <news.acme-robotics.com>"},
    {"List_Id": "<x.lists.example>", "In_Reply_To": "<post.1@lists.example>"},
    {"List_Unsubscribe": "<https://acme-robotics.com/u/1>"},
    {"Feedback_ID": "1:news:acme"},
    {"X_Campaign": "spring-2026"},
    {"Auto_Submitted": "auto-generated", "List_Unsubscribe": "<mailto:u@acme-robotics.com>"},
])
def test_bulk_mail_is_not_an_auto_reply(headers):
    verdict = classify(message("Our March newsletter: out of office hours change.", **headers),
                       CTX)
    assert verdict.kind == "ignored" and verdict.reason.startswith("bulk mail")


def test_a_personal_auto_reply_with_precedence_bulk_stays_an_auto_reply():
    raw = message("I am out of the office until March 9.", Precedence="bulk",
                  Auto_Submitted="auto-replied", Subject="Out of Office: Quick question")
    assert classify(raw, CTX).kind == "auto_reply"


def test_a_reply_in_our_thread_from_a_tool_that_adds_list_unsubscribe_is_a_reply():
    raw = message("Tuesday works.", In_Reply_To="<seqctl.1@northwindlabs.com>",
                  List_Unsubscribe="<https://tool.example/u/1>")
    assert classify(raw, CTX).kind == "reply"


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Quick question",
        "Auto: Quick question",
        "Out of Office: Quick question",
        "Autoreply: Quick question",
        "Abwesenheitsnotiz: Kurze Frage",
        "Automatische Antwort: Kurze Frage",
        "Abwesend: Kurze Frage",
        "Réponse automatique : Petite question",
        "Absence du bureau",
        "Absent : Petite question",
        "Respuesta automática: Pregunta rápida",
        "Fuera de la oficina",
    ],
)
def test_out_of_office_subjects_in_four_languages_are_auto_replies(subject):
    assert classify(message("Thanks for your message.", Subject=subject), CTX).kind == "auto_reply"


@pytest.mark.parametrize("subject", ["Re: Auto-renewal terms", "Re: Absent-minded question"])
def test_subjects_that_merely_start_like_an_auto_reply_are_replies(subject):
    assert classify(message("Tuesday works.", Subject=subject), CTX).kind == "reply"


@pytest.mark.parametrize(
    "first_line",
    [
        "Unsubscribe",
        "UNSUBSCRIBE me please",
        "Please remove me from your list.",
        "Opt out",
        "opt-out",
        "Stop emailing me",
        "Take me off your list, thanks.",
        "Bitte abmelden.",
        "Merci de me désabonner.",
        "Quiero darme de baja.",
        "Por favor dar de baja este correo.",
    ],
)
def test_first_line_unsubscribe_requests(first_line):
    raw = message(f"{first_line}\n\nSent from my iPhone\n")
    assert classify(raw, CTX).kind == "unsubscribe"


@pytest.mark.parametrize(
    "body",
    [
        "Tuesday works.\n\n> To unsubscribe, reply unsubscribe.\n",
        "Tuesday works.\n\nPS: your unsubscribe link is broken, just so you know.\n",
        "We had to opt out of our old vendor's contract early, so timing matters.\n",
        "Full stop - this is exactly what we need. Call me.\n",
    ],
)
def test_replies_that_mention_unsubscribing_are_still_replies(body):
    assert classify(message(body), CTX).kind == "reply"


@pytest.mark.parametrize(
    "body",
    [
        "Hi Alex, please remove me from your list.",
        "Hi Alex,\n\nPlease take me off your list.",
        "Dear Mr. Rivera,\n\nunsubscribe",
        "Hola Alex\n\nQuiero darme de baja.",
    ],
)
def test_greeting_is_skipped_but_a_request_on_the_same_line_counts(body):
    assert classify(message(body), CTX).kind == "unsubscribe"


def test_read_receipt_is_ignored():
    raw = (
        b"From: Dana <dana@acme-robotics.com>\r\nTo: alex@northwindlabs.com\r\n"
        b"Subject: Read: Quick question\r\nMessage-ID: <mdn.1@acme-robotics.com>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; "
        b'report-type=disposition-notification; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n"
        b"--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Final-Recipient: rfc822; dana@acme-robotics.com\r\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\r\n--b--\r\n"
    )
    verdict = classify(raw, CTX)
    assert verdict.kind == "ignored"
    assert "read receipt" in verdict.reason


def test_mail_to_the_unsubscribe_address_is_an_unsubscribe_whatever_the_body():
    raw = message("Hello?", To=UNSUBSCRIBE, Subject="")
    verdict = classify(raw, CTX)
    assert verdict.kind == "unsubscribe"
    assert UNSUBSCRIBE in verdict.reason


def test_unsubscribe_subject_on_a_reply():
    assert classify(message("", Subject="Re: unsubscribe"), CTX).kind == "unsubscribe"


def test_bounce_beats_auto_submitted():
    verdict = classify_file("bounce_postfix_dsn.eml")
    assert verdict.kind == "bounce"


def test_dsn_with_only_delivered_recipients_is_not_a_bounce():
    raw = (
        (CORPUS / "bounce_postfix_dsn.eml")
        .read_bytes()
        .replace(b"Action: failed\nStatus: 5.1.1", b"Action: delivered\nStatus: 2.0.0")
    )
    verdict = classify(raw, CTX)
    assert verdict.kind == "ignored"
    assert "without failures" in verdict.reason


def test_mailer_daemon_notice_without_recipients_is_a_soft_bounce():
    raw = message(
        "Something went wrong with a message you sent.",
        From="MAILER-DAEMON@mx.example.net",
        Subject="Returned mail",
    )
    verdict = classify(raw, CTX)
    assert verdict.kind == "bounce"
    assert verdict.hard is False
    assert verdict.bounced_recipients == []


def test_contact_reply_with_undeliverable_in_subject_is_a_reply():
    raw = message("Our old address is undeliverable, use this one.", Subject="Undeliverable")
    assert classify(raw, CTX).kind == "reply"


def test_calendar_invite_from_scheduling_tool_beats_auto_generated_header():
    verdict = classify_file("meeting_calendly_new_event.eml")
    assert verdict.kind == "meeting"
    assert "priya.shah@globex.com" in verdict.attendees


def test_out_of_office_subject_beats_a_calendar_part():
    raw = (CORPUS / "meeting_outlook_request.eml").read_bytes()
    raw = raw.replace(b"Subject: Contoso", b"Subject: Automatic reply: Contoso", 1)
    assert classify(raw, CTX).kind == "auto_reply"


def test_tentative_calendar_reply_is_a_reply_not_a_booking():
    raw = (CORPUS / "meeting_reply_declined.eml").read_bytes()
    assert classify(raw, CTX).kind == "reply"


def test_meeting_attendees_accept_mailto_in_any_case_and_folded_lines():
    ics = (
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
        'ORGANIZER;CN="Doe, Jane: CEO":MaIlTo:Jane.Doe@Example.COM\r\n'
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Alex:mailto:alex@northwind\r\n labs.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    msg = EmailMessage()
    msg["From"] = "jane.doe@example.com"
    msg["Subject"] = "Invitation: intro"
    msg.set_content("Join me.")
    msg.add_alternative(ics, subtype="calendar", params={"method": "REQUEST"})
    verdict = classify(msg.as_bytes(), CTX)
    assert verdict.kind == "meeting"
    assert verdict.attendees == ["jane.doe@example.com", "alex@northwindlabs.com"]


def test_classify_accepts_a_context_without_received_at_and_uses_the_date_header():
    ctx = ClassifyContext(our_addresses=frozenset({REP}))
    verdict = classify((CORPUS / "ooo_zimbra_fr_de_retour.eml").read_bytes(), ctx)
    assert verdict.return_date == date(2026, 3, 9)


# -- parse_return_date ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # English
        ("I'll be back on Monday, March 9.", date(2026, 3, 9)),
        ("Returning 03/09/2026.", date(2026, 3, 9)),
        ("I am out of the office until 9 March.", date(2026, 3, 9)),
        ("Back March 9th, 2026.", date(2026, 3, 9)),
        ("I'm away from 2 to 9 March.", date(2026, 3, 9)),
        ("Out March 2-9, back in the office after that.", date(2026, 3, 9)),
        ("Out of office from March 2 until March 13, 2026.", date(2026, 3, 13)),
        ("Out since Feb 27, back on Mar 9.", date(2026, 3, 9)),
        ("On leave until 2026-04-06.", date(2026, 4, 6)),
        ("I'll be back on Monday.", date(2026, 3, 9)),
        # German
        ("Ich bin bis zum 09.03.2026 nicht im Büro.", date(2026, 3, 9)),
        ("Ab dem 9. März bin ich wieder erreichbar.", date(2026, 3, 9)),
        ("Ich bin vom 2. bis 6. März im Urlaub und ab dem 9. März wieder da.", date(2026, 3, 9)),
        ("Ab Montag, 16.03. wieder im Haus.", date(2026, 3, 16)),
        ("Ich bin bis einschließlich 13. Maerz abwesend.", date(2026, 3, 13)),
        # French
        ("Je serai de retour le 9 mars.", date(2026, 3, 9)),
        ("Absente jusqu'au 09/03/2026 inclus.", date(2026, 3, 9)),
        ("Je suis absent du 2 au 13 mars.", date(2026, 3, 13)),
        ("De retour le 1er avril.", date(2026, 4, 1)),
        # Spanish
        ("Estaré fuera de la oficina hasta el 9 de marzo.", date(2026, 3, 9)),
        ("Regreso el 09/03/2026.", date(2026, 3, 9)),
        ("De vacaciones del 2 al 13 de marzo de 2026.", date(2026, 3, 13)),
        ("Vuelvo el lunes 16 de marzo.", date(2026, 3, 16)),
    ],
)
def test_return_date_in_four_languages(text, expected):
    assert parse_return_date(text, TUESDAY) == expected


def test_return_date_without_a_year_is_the_next_occurrence():
    december = datetime(2026, 12, 20, tzinfo=UTC)
    assert parse_return_date("back on January 5", december) == date(2027, 1, 5)
    assert parse_return_date("back on March 3", TUESDAY) == date(2026, 3, 3)
    assert parse_return_date("back on March 2", TUESDAY) == date(2027, 3, 2)


def test_return_date_without_year_or_received_at_is_unknown():
    assert parse_return_date("back on March 9", None) is None
    assert parse_return_date("back on 2026-03-09", None) == date(2026, 3, 9)


def test_ambiguous_slashed_date_follows_the_language_without_received_at():
    assert parse_return_date("returning 03/09/2026", None) == date(2026, 3, 9)
    assert parse_return_date("Je suis de retour le 03/09/2026 au bureau", None) == date(2026, 9, 3)


def test_return_date_ignores_text_without_dates():
    assert parse_return_date("Thanks for your email, I'm travelling.", TUESDAY) is None
    assert parse_return_date("", TUESDAY) is None
    assert parse_return_date("version 1.2.3 at 10:30 on 99/99/2026", TUESDAY) is None


# -- robustness ----------------------------------------------------------------------------


def test_empty_and_garbage_messages_give_a_verdict():
    for raw in (
        b"",
        b"\x00\xff\xfe",
        b"From: \r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\n--",
    ):
        verdict = classify(raw, CTX)
        assert verdict.kind in KINDS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_classify_never_raises_on_arbitrary_bytes(raw):
    verdict = classify(raw, CTX)
    assert isinstance(verdict, Verdict)
    assert verdict.kind in KINDS


MIME_PIECES = st.sampled_from(
    [
        b"From: MAILER-DAEMON@x.com\r\n",
        b"From: a@b.c\r\n",
        b"Subject: =?utf-8?q?R=C3=A9ponse_automatique?=\r\n",
        b"Subject: =?bogus?b?!!!?=\r\n",
        b"Auto-Submitted: auto-replied\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
        b"Content-Type: text/calendar; method=REQUEST\r\n",
        b"Content-Type: message/delivery-status\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"Action: failed\r\nStatus: 5.1.1\r\nFinal-Recipient: rfc822; x@y.z\r\n",
        b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:\r\n",
        b'ORGANIZER;CN="a:b\r\n',
        b"unsubscribe\r\n",
        b"back on 31.02.2026 until March 99\r\n",
        b"\xff\xfe\x00",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MIME_PIECES, max_size=30).map(b"".join))
def test_classify_never_raises_on_mangled_mime(raw):
    assert classify(raw, CTX).kind in KINDS


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500), st.none() | st.datetimes(timezones=st.just(UTC)))
def test_parse_return_date_never_raises(text, received_at):
    result = parse_return_date(text, received_at)
    assert result is None or isinstance(result, date)


def test_only_a_persons_out_of_office_is_read_for_a_return_date():
    text = "I am out of the office until March 16."
    personal = classify(message(text, Subject="Automatic reply: Quick question",
                                Auto_Submitted="auto-replied"), CTX)
    newsletter = classify(message(text, Subject="This week: the March 16 launch",
                                  Precedence="bulk"), CTX)
    assert personal.kind == "auto_reply"
    assert personal.return_date == date(2026, 3, 16)
    assert newsletter.return_date is None


def test_folding_strips_accents_and_keeps_plain_ascii_as_it_is():
    from seqctl.engine.classify.mime import _fold

    assert _fold("Réponse AUTOMATIQUE: Abwesenheit bis 16. März, Straße") == (
        "reponse automatique: abwesenheit bis 16. marz, strasse")
    assert _fold("Out Of Office") == "out of office"
