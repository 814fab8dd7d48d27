"""Spam-risk score (spec section 14): deterministic, explainable, fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqctl.engine.spam import SPAM_PHRASES, Reason, SpamReport, band_for, score_email

CORPUS = json.loads((Path(__file__).parent / "data" / "spam_corpus.json").read_text("utf-8"))
PLAIN_BODY = (
    "Hi {{first_name}},\n\nSaw that {{company_name}} is hiring support engineers. We help teams "
    "like yours cut onboarding time in half, and I thought a short call could be useful.\n\n"
    "Would next Tuesday work?\n\nSam"
)


def rules(report: SpamReport) -> set[str]:
    return {reason.rule for reason in report.reasons}


def test_corpus_has_at_least_twenty_of_each():
    assert len(CORPUS["clean"]) >= 20
    assert len(CORPUS["spammy"]) >= 20


@pytest.mark.parametrize("item", CORPUS["clean"], ids=lambda item: (item["subject"] or "-")[:30])
def test_every_clean_cold_email_is_green(item):
    report = score_email(item["subject"], item["body"], first_touch=item["first_touch"])
    assert report.band == "green", report.to_json()


@pytest.mark.parametrize("item", CORPUS["spammy"], ids=lambda item: (item["subject"] or "-")[:30])
def test_every_spammy_email_is_amber_or_red(item):
    report = score_email(item["subject"], item["body"], first_touch=item["first_touch"])
    assert report.band in {"amber", "red"}, report.to_json()


@pytest.mark.parametrize(
    ("rule", "subject", "body", "first_touch"),
    [
        ("all_caps_subject", "QUICK QUESTION FOR YOU", PLAIN_BODY, True),
        ("spam_vocabulary", "Quick question", PLAIN_BODY + "\nAct now, it's risk-free.", True),
        ("link_to_text_ratio", "Quick question", "Hi {{first_name}}, https://acme.com/a", True),
        (
            "too_many_links",
            "Resources",
            PLAIN_BODY + "\n" + "\n".join(f"https://acme.com/{n}" for n in range(5)),
            True,
        ),
        ("excessive_exclamation", "Great news!", PLAIN_BODY + "\nWow!! Amazing!", True),
        ("empty_subject", "", PLAIN_BODY, True),
        ("empty_subject", None, PLAIN_BODY, True),
        ("image_only_body", "Hi", '<img src="https://acme.com/flyer.png"> Hi {{first_name}}', True),
        ("image_only_body", "Hi", "{{first_name}} https://acme.com/flyer.jpg", True),
        ("money_patterns", "Quick question", PLAIN_BODY + "\nEarn $500 a day.", True),
        ("money_patterns", "$$$ for {{company_name}}", PLAIN_BODY, True),
        ("money_patterns", "Quick question", PLAIN_BODY + "\nWorth $1,000,000 to you.", True),
        ("url_shortener", "Quick question", PLAIN_BODY + "\nhttps://bit.ly/abc", True),
        ("url_shortener", "Quick question", PLAIN_BODY + "\nHTTPS://TINYURL.COM/abc", True),
        ("long_subject", "A" + " very long subject line" * 4, PLAIN_BODY, True),
        ("no_personalization", "Quick question", "Hello there,\n\nWe sell software.", True),
        ("no_personalization", "Quick question", "Dear Sir/Madam, we sell software.", True),
        (
            "tracking_pixel_only",
            "Quick question",
            PLAIN_BODY + '\n<img src="https://t.example.com/p.gif" width="1" height="1">',
            True,
        ),
        ("re_fwd_first_touch", "Re: our call", PLAIN_BODY, True),
        ("re_fwd_first_touch", "FWD: pricing", PLAIN_BODY, True),
        ("shouting", "Quick question", PLAIN_BODY + "\nREAD THIS VERY CAREFULLY", True),
        ("empty_body", "Quick question", "   ", True),
        ("long_body", "Quick question", PLAIN_BODY + "\n" + "word " * 300, True),
    ],
)
def test_each_rule_triggers(rule, subject, body, first_touch):
    report = score_email(subject, body, first_touch=first_touch)
    assert rule in rules(report), report.to_json()
    reason = next(r for r in report.reasons if r.rule == rule)
    assert reason.points > 0 and reason.detail and reason.fix


def test_plain_personal_email_scores_zero():
    report = score_email("Quick question, {{first_name}}", PLAIN_BODY)
    assert report == SpamReport(score=0, band="green", reasons=[])


def test_merge_variable_counts_as_personalization_and_a_greeting_by_name_does_too():
    assert "no_personalization" not in rules(score_email("Hi", "Hi {{first_name}}, quick note."))
    assert "no_personalization" not in rules(score_email("Hi", "Hi Priya,\n\nquick note."))


def test_follow_up_without_subject_is_not_penalised():
    report = score_email(None, PLAIN_BODY, first_touch=False)
    assert report.score == 0


def test_re_prefix_is_fine_on_a_follow_up():
    assert "re_fwd_first_touch" not in rules(score_email("Re: hi", PLAIN_BODY, first_touch=False))


def test_merge_tags_do_not_count_as_capitals():
    assert "all_caps_subject" not in rules(score_email("{{ FIRST_NAME }} at {{ COMPANY }}", "x"))


def test_spam_phrases_match_whole_words_only():
    assert "spam_vocabulary" not in rules(score_email("Quick question", PLAIN_BODY + " reenactnow"))
    assert "spam_vocabulary" not in rules(score_email("Prizes?", PLAIN_BODY.replace("Sam", "")))


def test_every_listed_phrase_is_detected():
    for phrase in SPAM_PHRASES:
        report = score_email("Quick question", f"{PLAIN_BODY}\nAlso: {phrase.upper()}.")
        reason = next(r for r in report.reasons if r.rule == "spam_vocabulary")
        assert phrase in reason.detail


def test_score_is_capped_at_100():
    report = score_email(
        "RE: ACT NOW!!! $$$ WINNER " + "x" * 120,
        "Dear Friend!!! Click here: https://bit.ly/a https://bit.ly/b https://bit.ly/c "
        "https://bit.ly/d https://bit.ly/e 100% free, risk-free, guaranteed, cash bonus!!!",
    )
    assert report.score == 100
    assert report.band == "red"
    assert sum(r.points for r in report.reasons) > 100


@pytest.mark.parametrize(
    ("score", "band"), [(0, "green"), (29, "green"), (30, "amber"), (59, "amber"), (60, "red")]
)
def test_bands(score, band):
    assert band_for(score) == band


def test_reasons_are_ordered_by_points_and_json_has_the_stable_shape():
    report = score_email("Quick question!", "Click here: https://bit.ly/x")
    points = [reason.points for reason in report.reasons]
    assert points == sorted(points, reverse=True)
    data = report.to_json()
    assert set(data) == {"score", "band", "reasons"}
    assert all(set(reason) == {"rule", "points", "detail", "fix"} for reason in data["reasons"])
    assert data["score"] == min(100, sum(r["points"] for r in data["reasons"])) > 0
    json.dumps(data)


def test_same_input_same_report():
    item = CORPUS["spammy"][0]
    assert score_email(item["subject"], item["body"]) == score_email(item["subject"], item["body"])
    assert isinstance(score_email(item["subject"], item["body"]).reasons[0], Reason)
