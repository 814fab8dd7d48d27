"""Reply intent, SPEC section 18, checked against `seqctl.engine.intent`.

tests/corpus/replies/replies.yaml holds 220 labelled replies in English, German, French and
Spanish, each with what real mail clients add (quoted history, signatures, mobile footers).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from seqctl.engine.intent import INTENTS, LANGUAGES, fold, new_text, read_intent

CORPUS = yaml.safe_load(
    (Path(__file__).parent / "corpus" / "replies" / "replies.yaml").read_text(encoding="utf-8")
)["replies"]
RECEIVED = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # a Tuesday
REP = frozenset({"alex@northwindlabs.com"})


def read(entry: dict):
    received = datetime.fromisoformat(entry["received_at"]) if "received_at" in entry else RECEIVED
    return read_intent(entry["body"], received, sender=entry["from"], own_addresses=REP)


RESULTS = [(entry, read(entry)) for entry in CORPUS]


# -- the corpus ----------------------------------------------------------------------------


def test_corpus_has_150_replies_in_four_languages_with_every_intent_and_real_clutter():
    assert len(CORPUS) >= 150
    assert len({entry["id"] for entry in CORPUS}) == len(CORPUS)
    by_language = Counter(entry["language"] for entry in CORPUS)
    assert set(by_language) == set(LANGUAGES) and min(by_language.values()) >= 35
    assert {entry["intent"] for entry in CORPUS} == set(INTENTS)
    bodies = [entry["body"] for entry in CORPUS]
    assert sum("\n> " in body or "\nFrom: " in body or "\nDe : " in body for body in bodies) >= 100
    assert sum("iPhone" in body or "Outlook for" in body or "Outlook pour" in body
               or "Outlook para" in body for body in bodies) >= 40
    assert sum("\n--\n" in body for body in bodies) >= 40


def test_corpus_precision_and_recall_per_intent_and_overall_accuracy_at_least_090(capsys):
    confusion = Counter((entry["intent"], got.intent) for entry, got in RESULTS)
    lines = [f"{'intent':16} {'precision':>9} {'recall':>7} {'n':>4}"]
    for intent in INTENTS:
        true_positive = confusion[(intent, intent)]
        predicted = sum(n for (_, got), n in confusion.items() if got == intent)
        actual = sum(n for (want, _), n in confusion.items() if want == intent)
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        lines.append(f"{intent:16} {precision:9.2f} {recall:7.2f} {actual:4}")
    correct = sum(n for (want, got), n in confusion.items() if want == got)
    accuracy = correct / len(RESULTS)
    lines.append(f"accuracy {accuracy:.3f} ({correct}/{len(RESULTS)})")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    wrong = [(e["id"], e["intent"], got.intent) for e, got in RESULTS if got.intent != e["intent"]]
    assert accuracy >= 0.9, wrong


def test_corpus_positive_and_not_interested_are_confused_at_most_2_percent_of_the_time():
    either = [(e, got) for e, got in RESULTS if e["intent"] in ("positive", "not_interested")]
    swapped = [
        e["id"] for e, got in either
        if {e["intent"], got.intent} == {"positive", "not_interested"}
    ]
    assert len(either) >= 60
    assert len(swapped) / len(either) <= 0.02, swapped


def test_corpus_not_now_dates_are_read():
    dated = [(e, got) for e, got in RESULTS if e.get("not_before")]
    assert len(dated) >= 40
    wrong = [
        (e["id"], e["not_before"], got.not_before) for e, got in dated
        if got.not_before != date.fromisoformat(e["not_before"])
    ]
    assert len(wrong) <= len(dated) * 0.1, wrong


def test_corpus_referred_addresses_are_kept():
    named = [(e, got) for e, got in RESULTS if e.get("referral_email")]
    assert len(named) >= 25
    wrong = [(e["id"], got.referral_email) for e, got in named
             if got.referral_email != e["referral_email"]]
    assert not wrong


def test_corpus_replies_without_a_named_address_or_date_invent_none():
    invented = [
        (e["id"], got.referral_email, got.not_before) for e, got in RESULTS
        if (got.referral_email and not e.get("referral_email"))
        or (got.not_before and not e.get("not_before"))
    ]
    assert len(invented) <= len(RESULTS) * 0.02, invented


# -- the new text only ---------------------------------------------------------------------


def test_quoted_history_signature_and_iphone_footer_are_cut():
    body = (
        "Thanks, but we're not interested.\n\nBest regards,\nDana Whitfield\nVP Ops\n\n"
        "Sent from my iPhone\n\nOn Tue, Mar 3, 2026 at 9:00 AM Alex Rivera "
        "<alex@northwindlabs.com> wrote:\n> Would you be open to a call? Sounds good?\n"
    )
    assert new_text(body) == "Thanks, but we're not interested."


def test_a_closing_word_that_starts_a_sentence_is_not_a_signature():
    assert new_text("Hi Alex,\nThanks, but no: we are not interested.") == (
        "Hi Alex,\nThanks, but no: we are not interested."
    )
    assert new_text("Hola:\nGracias, ya no trabajo en Solvia.") == (
        "Hola:\nGracias, ya no trabajo en Solvia."
    )
    assert new_text("No thanks.\n\nThanks,\nDana Whitfield") == "No thanks."


def test_cues_in_the_quoted_original_do_not_count():
    body = (
        "Who is this?\n\nAm 03.03.2026 um 09:02 schrieb Alex Rivera <alex@northwindlabs.com>:\n"
        "> Hätten Sie Interesse? Gerne nächste Woche, Termin nach Ostern?\n"
    )
    result = read_intent(body, RECEIVED)
    assert result.intent == "unknown" and result.text == "Who is this?"


@pytest.mark.parametrize(
    "footer",
    ["Von meinem iPhone gesendet", "Envoyé de mon iPhone", "Enviado desde mi iPhone",
     "Get Outlook for iOS", "Obtenir Outlook pour Android"],
)
def test_mobile_footers_in_four_languages_are_cut(footer):
    assert new_text(f"Kein Interesse.\n\n{footer}\n\nmore text here") == "Kein Interesse."


def test_a_reply_that_is_only_a_quote_is_unknown_with_empty_text():
    body = "On Tue, Mar 3, 2026 at 9:00 AM Alex <alex@northwindlabs.com> wrote:\n> Interested?\n"
    result = read_intent(body, RECEIVED)
    assert (result.intent, result.text) == ("unknown", "")


# -- intents and their facts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Interested, but not until Q3. Ping me then.", "not_now"),
        ("Not interested right now, try me again in September.", "not_now"),
        ("Not interested at the moment.", "not_interested"),
        ("Sounds good - let's talk next week.", "positive"),
        ("Not the right person. Talk to jane.doe@acme-robotics.com instead.", "referral"),
        ("Not the right person, sorry.", "wrong_person"),
        ("I left Acme in January; my successor is jane.doe@acme-robotics.com.", "left_company"),
        ("Kein Interesse.", "not_interested"),
        ("Pas intéressé, merci.", "not_interested"),
        ("Ça ne nous intéresse pas.", "not_interested"),
        ("No nos interesa.", "not_interested"),
        ("Me interesa, hablemos.", "positive"),
        ("", "unknown"),
    ],
)
def test_precedence_between_intents(text, intent):
    assert read_intent(text, RECEIVED).intent == intent


def test_referral_keeps_the_address_and_name_but_never_the_sender_or_the_rep():
    text = (
        "Please talk to Jane Morales <Jane.Morales@acme-robotics.com>. You can reach me at "
        "dana@acme-robotics.com; cc alex@northwindlabs.com."
    )
    result = read_intent(text, RECEIVED, sender="dana@acme-robotics.com", own_addresses=REP)
    assert result.intent == "referral"
    assert result.referral_email == "jane.morales@acme-robotics.com"
    assert result.referral_name == "Jane Morales"
    own = read_intent("Contact me at dana@acme-robotics.com", RECEIVED,
                      sender="dana@acme-robotics.com")
    assert own.referral_email is None


def test_referral_name_comes_from_the_address_when_the_text_gives_none():
    result = read_intent("please email sam.patel@acme-robotics.com", RECEIVED)
    assert (result.intent, result.referral_name) == ("referral", "Sam Patel")


def test_other_intents_keep_no_referral_address():
    result = read_intent("Interested! Let's talk. My assistant is pa@acme-robotics.com", RECEIVED)
    assert result.intent == "positive" and result.referral_email is None


@pytest.mark.parametrize(
    ("text", "received", "not_before"),
    [
        ("Reach out in Q3.", "2026-03-03", "2026-07-01"),
        ("Reach out in Q3.", "2026-08-10", "2027-07-01"),  # Q3 has begun: next year's
        ("Let's talk after Q3 2026.", "2026-03-03", "2026-10-01"),
        ("Circle back after March 15.", "2026-03-03", "2026-03-16"),
        ("Circle back after March 15.", "2026-03-20", "2027-03-16"),
        ("Try me next month.", "2026-12-14", "2027-01-01"),
        ("Bitte melden Sie sich nach Ostern.", "2026-03-03", "2026-04-07"),
        ("Bitte melden Sie sich nach Ostern.", "2027-03-03", "2027-03-30"),
        ("Recontactez-moi à partir de juin.", "2026-03-03", "2026-06-01"),
        ("Recontactez-moi après juin.", "2026-03-03", "2026-07-01"),
        ("Escríbeme después del 15 de abril.", "2026-03-03", "2026-04-16"),
        ("Melden Sie sich nach dem 15.04. wieder.", "2026-03-03", "2026-04-16"),
        ("Follow up after 4/15 please.", "2026-03-03", "2026-04-16"),
        ("Ask me again in 3 weeks.", "2026-03-03", "2026-03-24"),
        ("Maybe next year.", "2026-03-03", "2027-01-01"),
        ("Not right now.", "2026-03-03", None),
        ("Reach out in 2031.", "2026-03-03", None),  # more than two years away: no date
    ],
)
def test_not_now_dates_are_anchored_at_the_reply(text, received, not_before):
    at = datetime.fromisoformat(received + "T14:00:00+00:00")
    result = read_intent(text, at)
    assert result.intent == "not_now"
    assert result.not_before == (date.fromisoformat(not_before) if not_before else None)


def test_may_the_verb_is_not_a_month():
    result = read_intent("Not now, we may look again later.", RECEIVED)
    assert (result.intent, result.not_before) == ("not_now", None)


def test_language_is_detected():
    assert read_intent("Wir haben leider kein Interesse.", RECEIVED).language == "de"
    assert read_intent("Nous ne sommes pas intéressés.", RECEIVED).language == "fr"
    assert read_intent("No estamos interesados, gracias.", RECEIVED).language == "es"
    assert read_intent("We are not interested.", RECEIVED).language == "en"


def test_snippet_is_one_line_and_short():
    result = read_intent("Sounds good.\n\n" + "word " * 100, RECEIVED)
    assert "\n" not in result.snippet and len(result.snippet) <= 160


def test_fold_keeps_length_so_spans_map_back():
    text = "Grüße, ÉTÉ, Mañana, Straße — it’s"
    assert len(fold(text)) == len(text)
    assert fold(text) == "gruse, ete, manana, strase — it's"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gives_an_intent_and_never_raises(text):
    result = read_intent(text, RECEIVED)
    assert result.intent in INTENTS
    assert result.language in LANGUAGES
    if result.not_before is not None:
        assert result.not_before > RECEIVED.date()


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Let me loop in Sarah from our ops team, sarah.k@acme-robotics.com", "referral"),
        ("Please get in touch with my colleague Rachel.", "referral"),
        ("Get in touch in Q3.", "not_now"),
        ("Can you send me some case studies?", "positive"),
        ("I am not sure this is for us.", "unknown"),  # "sure" is no yes after "not"
        ("Please stop emailing me.", "not_interested"),
        ("Yes", "positive"),
    ],
)
def test_phrases_found_after_the_corpus(text, intent):
    assert read_intent(text, RECEIVED).intent == intent
