"""`seqctl sequence draft` and `seqctl spam-score --rewrite` (SPEC 17): the deterministic parser
on a corpus of descriptions, the drafted copy, bad input, and the `--model` path through `llm`
with a local model plugin (tests/llm_plugin), never the network."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqctl.engine import draft, spam
from seqctl.engine.render import BUILTIN_VARIABLES
from seqctl.engine.sequence_reader import validate_sequence

DATA = Path(__file__).parent / "data"
PLUGIN = Path(__file__).parent / "llm_plugin"
SEED = ("Build a 3-step outbound sequence for cold SaaS intros: Day 1 — intro email with their "
        "company name and a one-line pitch / Day 3 business days — follow-up email asking about "
        "their current tooling / Day 7 business days — LinkedIn connect-request task / Exit on "
        "reply and on meeting booked.")
CORPUS = yaml.safe_load((DATA / "draft_corpus.yaml").read_text())
REWRITES = yaml.safe_load((DATA / "rewrite_corpus.yaml").read_text())
WINDOW_KEYS = ("timezone", "send_window_start_hour", "send_window_end_hour",
               "send_weekdays_only", "send_in_contact_timezone", "holidays")
EXIT_KEYS = ("exit_on_reply", "exit_on_booking", "exit_on_stage_change", "exit_on_company_reply")
_MERGE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def step_code(step: dict) -> str:
    delays = [f"{step[key]}{unit}" for key, unit in (
        ("delay_business_days", "b"), ("delay_calendar_days", "d"), ("delay_hours", "h"))
        if step.get(key)]
    parts = [step["step_type"], "+".join(delays) or "0"]
    if step["step_type"] == "email":
        parts.append("subject" if "subject" in step else "thread")
    if "variant_b" in step:
        parts.append("ab")
    return " ".join(parts)


def model_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Load only the test plugin, from its folder, with llm's user dir in the test's tmp."""
    (tmp_path / "llm").mkdir(exist_ok=True)
    return {"PYTHONPATH": str(PLUGIN), "LLM_LOAD_PLUGINS": "seqctl-test-llm",
            "LLM_USER_PATH": str(tmp_path / "llm"), "SEQCTL_TEST_LLM_LOG":
            str(tmp_path / "llm.log"), **extra}


def logged(tmp_path: Path) -> list[dict]:
    path = tmp_path / "llm.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- the seed's example --------------------------------------------------------------------


def test_the_seed_example_gives_exactly_the_spec_steps():
    document = draft.draft(SEED).document
    steps = document["steps"]
    assert [s["step_type"] for s in steps] == ["email", "email", "linkedin"]
    assert {k: v for k, v in steps[0].items() if k.startswith("delay")} == {}
    assert steps[1].get("delay_business_days") == 2 and "subject" not in steps[1]
    assert steps[2].get("delay_business_days") == 4
    assert not any(steps[2].get(k) for k in ("delay_calendar_days", "delay_hours"))
    assert document["exit_on_reply"] is True and document["exit_on_booking"] is True
    assert document["name"] == "cold-saas-intros"


def test_the_seed_intro_uses_first_name_and_company_name_and_marks_the_pitch_todo():
    steps = draft.draft(SEED).document["steps"]
    intro, follow_up = steps[0]["body"], steps[1]["body"]
    assert "{{first_name}}" in intro and "{{company_name}}" in intro
    assert re.search(r"^TODO: .*pitch", intro, re.MULTILINE)
    assert "your current tooling" in follow_up
    assert len(steps[0]["subject"]) <= 40


# --- the corpus -----------------------------------------------------------------------------


def test_the_corpus_has_at_least_40_descriptions():
    assert len(CORPUS) >= 40
    assert len({entry["text"] for entry in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: e["text"][:50])
def test_each_description_gives_its_steps_delays_window_and_exits(entry):
    drafted = draft.draft(entry["text"])
    document = drafted.document
    assert [step_code(step) for step in document["steps"]] == entry["steps"]
    assert {k: document[k] for k in WINDOW_KEYS if k in document} == entry.get("window", {})
    assert {k: document[k] for k in EXIT_KEYS} == entry["exits"]
    for key, value in entry.get("other", {}).items():
        assert document[key] == value
    validation = validate_sequence(drafted.to_yaml(entry["text"]))
    assert validation.ok, validation.errors
    assert all("still has a TODO: line" in w.message for w in validation.warnings)


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: e["text"][:50])
def test_drafted_emails_score_green_and_use_only_known_fields(entry):
    for step in draft.draft(entry["text"]).document["steps"]:
        if step["step_type"] != "email":
            continue
        texts = [step.get("subject") or "", step["body"]]
        texts += list(step.get("variant_b", {}).values())
        for text in texts:
            assert set(_MERGE.findall(text)) <= set(BUILTIN_VARIABLES)
        report = spam.score_email(step.get("subject"), step["body"],
                                  first_touch="subject" in step)
        assert report.band == "green", (step, report)


def test_a_follow_up_threads_and_a_new_thread_gets_its_own_subject():
    steps = draft.draft("Day 1 intro email / Day 3 follow-up / Day 6 break-up, new thread"
                        ).document["steps"]
    assert "subject" not in steps[1]
    assert steps[2]["subject"] == "Closing the loop"


def test_a_quoted_subject_is_used_as_written():
    steps = draft.draft('Day 1 email with subject "Notes from the webinar" / Day 3 bump'
                        ).document["steps"]
    assert steps[0]["subject"] == "Notes from the webinar"
    assert "webinar" not in steps[0]["body"].split("TODO")[0]


def test_ab_test_the_subject_gives_variant_b_a_different_subject():
    step = draft.draft("Day 1 intro email, A/B test the subject / Day 3 follow-up"
                       ).document["steps"][0]
    assert step["variant_b"]["subject"] != step["subject"]
    assert step["variant_b"]["body"] == step["body"]


def test_a_trailing_ab_test_of_the_subject_applies_to_the_intro_not_a_threaded_follow_up():
    steps = draft.draft("Day 1 intro email. Day 3 follow-up. A/B test the subject."
                        ).document["steps"]
    assert "variant_b" in steps[0] and "variant_b" not in steps[1]


def test_ab_test_the_intro_varies_the_opening_and_keeps_the_subject():
    step = draft.draft("Day 1 intro email (A/B test the intro)").document["steps"][0]
    assert step["variant_b"]["subject"] == step["subject"]
    assert step["variant_b"]["body"] != step["body"]


def test_unknown_field_words_become_todo_lines_not_merge_variables():
    body = draft.draft("Day 1 intro email mentioning their job title and recent funding"
                       ).document["steps"][0]["body"]
    assert "TODO: a line on your job title and recent funding." in body
    assert set(_MERGE.findall(body)) <= set(BUILTIN_VARIABLES)


def test_a_phrase_it_does_not_understand_is_a_warning_naming_it():
    drafted = draft.draft("Day 1 intro email / juggle flaming torches / Day 3 call")
    assert [s["step_type"] for s in drafted.document["steps"]] == ["email", "call"]
    assert any('"juggle flaming torches"' in w for w in drafted.warnings)


def test_a_step_without_timing_gets_two_business_days_and_a_warning():
    drafted = draft.draft("Intro email, then a call")
    assert drafted.document["steps"][1]["delay_business_days"] == 2
    assert any("has no timing" in w for w in drafted.warnings)


@pytest.mark.parametrize("text, message", [
    ("", "the description is empty"),
    ("   \n\t ", "the description is empty"),
    ("x" * 1_000_000, "keep it under 10,000"),
    ("flibber jabber wocky", "no step found"),
    ("Day 1 email, Day 3 call. Send 9-5 ET and 10am-4pm ET", "contradictory send windows"),
    ("Day 1 email. Weekdays only, including weekends", "contradictory send days"),
    ("Day 1 email 9-5 America/Chicago, Day 2 call 9-5 America/Denver", "contradictory timezones"),
    ("Day 1 email, send 5pm-9am", "ends before it starts"),
    ("Day 5 email / Day 2 call", "comes before Day 5"),
    ("Day 1 email, exit on reply, don't exit on reply", "both set and unset"),
    ("wait 3 days", "only waits"),
])
def test_bad_words_raise_one_clear_error(text, message):
    with pytest.raises(draft.SeqctlError) as caught:
        draft.draft(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the command ------------------------------------------------------------------------------


def test_draft_prints_yaml_that_validate_accepts_and_apply_creates(run, tmp_path):
    result = run("sequence", "draft", SEED)
    assert result.code == 0, result.err
    assert result.out.startswith("# Drafted by `seqctl sequence draft` from words:")
    path = tmp_path / "cold.yaml"
    path.write_text(result.out)
    assert run("sequence", "validate", str(path)).code == 0
    assert run("sequence", "list", "--json").json == []   # draft applied nothing
    applied = run("sequence", "apply", str(path), "--json")
    assert applied.code == 0, applied.err
    shown = run("sequence", "show", "cold-saas-intros", "--json").json
    assert [s["step_type"] for s in shown["steps"]] == ["email", "email", "linkedin"]
    assert [s["delay_business_days"] for s in shown["steps"]] == [0, 2, 4]


def test_draft_writes_the_file_with_o_and_reads_stdin_with_dash(run, tmp_path):
    target = tmp_path / "out.yaml"
    result = run("sequence", "draft", "-", "-o", str(target), "--name", "my-seq",
                 input="Day 1 intro email\nDay 4 call\n")
    assert result.code == 0, result.err
    assert result.out == ""
    assert "seqctl sequence apply" in result.err
    assert yaml.safe_load(target.read_text())["name"] == "my-seq"


def test_validate_and_draft_warn_about_todo_lines_left_in_an_email(run, tmp_path):
    target = tmp_path / "seed.yaml"
    drafted = run("sequence", "draft", SEED, "-o", str(target))
    assert drafted.code == 0
    assert f"warning: {target}:" in drafted.err and "steps[1].body: still has a TODO" in drafted.err
    checked = run("sequence", "validate", str(target), "--json")
    assert checked.code == 0
    assert [w["field"] for w in checked.json["warnings"]] == ["steps[1].body"]
    line = checked.json["warnings"][0]["line"]
    assert target.read_text().splitlines()[line - 1].strip().startswith("TODO:")
    target.write_text(target.read_text().replace(
        "TODO: your one-line pitch (what you do, for whom, and the result).",
        "We cut onboarding time for SaaS teams in half."))
    assert run("sequence", "validate", str(target), "--json").json["warnings"] == []


def test_draft_warns_on_stderr_about_phrases_it_skips(run):
    result = run("sequence", "draft", "Day 1 intro email / juggle flaming torches")
    assert result.code == 0
    assert 'warning: did not understand "juggle flaming torches"' in result.err
    assert yaml.safe_load(result.out)["steps"][0]["step_type"] == "email"


@pytest.mark.parametrize("text", ["", "flibber jabber wocky", "x" * 1_000_000,
                                  "Day 1 email. Send 9-5 ET and 10am-4pm ET"])
def test_bad_input_is_one_line_exit_1_and_nothing_written(run, tmp_path, text):
    target = tmp_path / "out.yaml"
    result = run("sequence", "draft", "-", "-o", str(target), input=text)
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert not target.exists()


def test_draft_into_a_missing_folder_is_one_line(run, tmp_path):
    result = run("sequence", "draft", "Day 1 email", "-o", str(tmp_path / "nope" / "x.yaml"))
    assert result.code == 1 and "does not exist" in result.err and "Traceback" not in result.err


# --- --model through llm ------------------------------------------------------------------------


def test_model_answer_in_the_sequence_schema_is_validated_and_printed(run, tmp_path):
    result = run("sequence", "draft", SEED, "--model", "seqctl-test", env=model_env(tmp_path))
    assert result.code == 0, result.err
    document = yaml.safe_load(result.out)
    assert document["description"] == "Written by the test model"
    assert "We help SaaS teams" in document["steps"][0]["body"]
    assert "from model seqctl-test" in result.out.splitlines()[0]
    (call,) = logged(tmp_path)
    assert call["schema"] == draft.SEQUENCE_SCHEMA
    assert SEED in call["prompt"]


def test_model_answer_that_fails_validation_lists_the_errors_and_writes_nothing(run, tmp_path):
    target = tmp_path / "out.yaml"
    result = run("sequence", "draft", SEED, "--model", "seqctl-test-invalid", "-o", str(target),
                 env=model_env(tmp_path))
    assert result.code == 1
    assert "steps[1].subject: the first email step needs a subject" in result.err
    assert "steps[2].title: a call step needs a title" in result.err
    assert "does not pass validation" in result.err and "nothing was written" in result.err
    assert "Traceback" not in result.err and result.out == ""
    assert not target.exists()


def test_words_the_parser_cannot_read_still_go_to_the_model(run, tmp_path):
    result = run("sequence", "draft", "flibber jabber wocky", "--model", "seqctl-test",
                 env=model_env(tmp_path))
    assert result.code == 0, result.err
    assert yaml.safe_load(result.out)["name"] == "model-sequence"
    assert "deterministic parser drafted" not in logged(tmp_path)[0]["prompt"]


def test_contradictory_words_are_an_error_with_a_model_too(run, tmp_path):
    result = run("sequence", "draft", "Day 1 email. Send 9-5 ET and 10am-4pm ET", "--model",
                 "seqctl-test", env=model_env(tmp_path))
    assert result.code == 1 and "contradictory send windows" in result.err
    assert logged(tmp_path) == []


def test_model_answer_that_is_not_json_is_one_line(run, tmp_path):
    result = run("sequence", "draft", SEED, "--model", "seqctl-test-garbage",
                 env=model_env(tmp_path))
    assert result.code == 1
    assert result.err.startswith("error: model seqctl-test-garbage did not answer in JSON")
    assert result.err.count("\n") == 1


@pytest.mark.parametrize("model, message", [
    ("seqctl-test-noschema", "cannot answer in a JSON schema"),
    ("no-such-model", "unknown model 'no-such-model'"),
])
def test_a_model_that_cannot_be_used_is_one_line(run, tmp_path, model, message):
    result = run("sequence", "draft", SEED, "--model", model, env=model_env(tmp_path))
    assert result.code == 1 and message in result.err and result.err.count("\n") == 1


def test_without_the_ai_extra_model_says_how_to_install_it(run, tmp_path):
    blocker = tmp_path / "no_llm"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['llm'] = None\n")
    for args in (["sequence", "draft", SEED, "--model", "x"],
                 ["spam-score", "--subject", "FREE!!!", "--body", "hi", "--rewrite",
                  "--model", "x"]):
        result = run(*args, env={"PYTHONPATH": str(blocker)})
        assert result.code == 1
        assert result.err == "error: --model needs the llm library: pip install 'seqctl[ai]'\n"


def test_the_deterministic_path_and_startup_never_import_llm():
    code = ("import sys\nfrom seqctl.cli import app\nfrom seqctl.engine import draft\n"
            "draft.draft('Day 1 email / Day 3 call')\ndraft.rewrite('FREE!!!', 'Buy now')\n"
            "assert 'llm' not in sys.modules, 'llm imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# --- spam-score --rewrite -----------------------------------------------------------------------


def test_the_rewrite_corpus_has_at_least_20_red_or_amber_emails():
    assert len(REWRITES) >= 20
    for email in REWRITES:
        assert spam.score_email(email["subject"], email["body"]).band in ("amber", "red"), email


def _tags(text: str) -> set[str]:
    return {re.sub(r"\s+", "", tag) for tag in re.findall(r"\{\{.*?\}\}", text)}


@pytest.mark.parametrize("email", REWRITES, ids=lambda e: e["subject"][:40])
def test_each_rewrite_scores_under_20_keeps_merge_variables_and_urls_and_lists_changes(email):
    result = draft.rewrite(email["subject"], email["body"])
    assert result.report.score < 20, result.to_json()
    assert result.report.score == spam.score_email(result.subject, result.body).score
    assert result.score_before == spam.score_email(email["subject"], email["body"]).score
    before = f"{email['subject']}\n{email['body']}"
    after = f"{result.subject}\n{result.body}"
    assert _tags(before) <= _tags(after)
    thinned = {c.before for c in result.changes if c.rule in ("too_many_links",
                                                              "link_to_text_ratio")}
    for url in draft.urls(before):
        assert url in after or url in thinned, url
    for url in draft.urls(after):
        assert url in before
    assert result.changes and all(c.rule and c.before != c.after for c in result.changes)


def test_every_spam_phrase_has_a_plain_replacement_that_is_not_spam():
    assert set(draft.PLAIN_WORDS) == set(spam.SPAM_PHRASES)
    for phrase, plain in draft.PLAIN_WORDS.items():
        found = [r.rule for r in spam.score_email("Hello", f"Hi {{{{first_name}}}}, {plain}."
                                                  ).reasons]
        assert "spam_vocabulary" not in found, (phrase, plain)


def test_a_rewrite_that_no_rule_can_fix_says_what_is_left():
    result = draft.rewrite(None, "Hi {{first_name}}, see https://bit.ly/x for the deck and notes "
                           "from our call today, with the pricing we discussed.")
    assert result.report.score >= 20
    assert any("no automatic fix for" in note and "empty_subject" in note
               for note in result.notes)


def test_rewrite_json_has_the_spec_keys(run):
    result = run("spam-score", "--subject", "FREE MONEY!!!", "--body",
                 "Dear friend, act now: https://acme.test/x", "--rewrite", "--json")
    assert result.code == 0, result.err
    document = result.json
    assert {"score_before", "score", "band", "subject", "body", "changes"} <= set(document)
    assert document["score"] < 20 <= document["score_before"]
    assert "https://acme.test/x" in document["body"]
    assert all(set(c) == {"rule", "before", "after"} for c in document["changes"])


def test_rewrite_prints_the_email_on_stdout_and_the_changes_on_stderr(run):
    result = run("spam-score", "--subject", "ACT NOW", "--body", "Hi {{first_name}}, act now!!!",
                 "--rewrite")
    assert result.code == 0
    assert result.out.startswith("Subject: Take a look\n\nHi {{first_name}}")
    assert "spam_vocabulary" in result.err and "->" in result.err


def test_model_goes_with_rewrite_only(run):
    result = run("spam-score", "--subject", "x", "--model", "seqctl-test")
    assert result.code == 2 and "--rewrite" in result.err


def test_a_model_rewrite_is_kept_when_it_scores_lower(run, tmp_path):
    body = ("Dear friend, click here https://acme.test/demo to get 50% off. GUARANTEED!!! "
            "{{company_name}} wins.")
    result = run("spam-score", "--subject", "FREE DEMO NOW!!!", "--body", body, "--rewrite",
                 "--json", "--model", "seqctl-test", env=model_env(tmp_path))
    assert result.code == 0, result.err
    document = result.json
    assert document["changes"][0]["rule"] == "model"
    assert document["subject"] == "A quick question"
    assert "https://acme.test/demo" in document["body"]
    assert "{{company_name}}" in document["body"]
    assert document["score"] < 20
    (call,) = logged(tmp_path)
    assert call["schema"] == draft.REWRITE_SCHEMA


def test_a_model_rewrite_that_drops_a_merge_variable_is_ignored(run, tmp_path):
    result = run("spam-score", "--subject", "FREE DEMO NOW!!!", "--body",
                 "Hi {{first_name}}, act now!!!", "--rewrite", "--json", "--model",
                 "seqctl-test-invalid", env=model_env(tmp_path))
    assert result.code == 0, result.err
    assert "dropped {{first_name}}" in result.err and "kept the deterministic rewrite" in result.err
    assert all(c["rule"] != "model" for c in result.json["changes"])
    assert result.json["score"] < 20


def test_a_model_rewrite_that_scores_no_lower_is_ignored(run, tmp_path):
    result = run("spam-score", "--subject", "FREE DEMO NOW!!!", "--body",
                 "Hi {{first_name}}, act now!!!", "--rewrite", "--json", "--model",
                 "seqctl-test-spammy", env=model_env(tmp_path))
    assert result.code == 0, result.err
    assert "not lower than" in result.err and "kept the deterministic rewrite" in result.err
    assert all(c["rule"] != "model" for c in result.json["changes"])
    assert result.json["score"] < 20
