"""An `llm` model plugin for the tests: local models that answer from the prompt, no network.

The tests put this folder on PYTHONPATH and set LLM_LOAD_PLUGINS=seqctl-test-llm; `llm` then
finds the plugin through the entry point in seqctl_test_llm-0.1.dist-info, the way it finds
any installed plugin. Each model writes what it was asked (prompt and schema) as one JSON line
to $SEQCTL_TEST_LLM_LOG when that is set.

- seqctl-test: a good answer (the draft from the prompt with its copy edited; a clean rewrite
  that keeps every merge variable and URL);
- seqctl-test-invalid: an answer in the schema's shape that fails validation (a sequence whose
  first email has no subject and whose call has no title; a rewrite that drops a merge variable);
- seqctl-test-garbage: prose, not JSON;
- seqctl-test-spammy: a rewrite that keeps everything but scores higher;
- seqctl-test-noschema: a model that cannot do structured output.
"""

from __future__ import annotations

import json
import os
import re

import llm

_EMAIL = re.compile(r"Subject: (.*?)\n\nBody:\n(.*)\Z", re.DOTALL)
_DRAFT = re.compile(r"drafted this .*?:\n(\{.*?\n\})\n", re.DOTALL)
_TAGS = re.compile(r"\{\{.*?\}\}")
_URLS = re.compile(r"https?://[^\s<>\"')\]]+")


def _log(model_id: str, prompt) -> None:
    path = os.environ.get("SEQCTL_TEST_LLM_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"model": model_id, "prompt": prompt.prompt,
                                     "schema": prompt.schema}) + "\n")


def _good_sequence(prompt: str) -> dict:
    found = _DRAFT.search(prompt)
    document = json.loads(found[1]) if found else {
        "name": "model-sequence",
        "steps": [{"step_type": "email", "subject": "Hello {{first_name}}", "body": "Hi."}],
    }
    document["description"] = "Written by the test model"
    for step in document["steps"]:
        if step.get("step_type") == "email":
            step["body"] = step["body"].replace("TODO: your one-line pitch (what you do, for "
                                                "whom, and the result).",
                                                "We help SaaS teams onboard customers in days.")
    return document


def _good_rewrite(prompt: str) -> dict:
    found = _EMAIL.search(prompt)
    subject, body = (found[1], found[2]) if found else ("", "")
    tags = list(dict.fromkeys(_TAGS.findall(subject + body)))
    links = list(dict.fromkeys(url.rstrip(".,;:!?") for url in _URLS.findall(body)))
    lines = ["Hi {{first_name}},", "", "A short note on how we could help your team this "
             "quarter, in plain words and without any pressure."]
    lines += [f"More here: {url}" for url in links[:1]]
    lines += [f"({tag})" for tag in tags if tag != "{{first_name}}"]
    lines += ["", "Worth a chat next week?"]
    # Every URL must be kept: any beyond the first go in a P.S.
    if links[1:]:
        lines += ["", "P.S. " + " ".join(links[1:])]
    return {"subject": "A quick question", "body": "\n".join(lines) + "\n"}


class _TestModel(llm.Model):
    supports_schema = True
    can_stream = False

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    def execute(self, prompt, stream, response, conversation):
        _log(self.model_id, prompt)
        if prompt.schema is None:
            raise AssertionError("seqctl must ask for structured output (a JSON schema)")
        rewrite = "steps" not in prompt.schema.get("properties", {})
        if self.model_id == "seqctl-test-garbage":
            yield "Sure! Here is a great sequence for you: step one, email them."
            return
        if self.model_id == "seqctl-test-spammy" and rewrite:
            found = _EMAIL.search(prompt.prompt)
            subject, body = (found[1], found[2]) if found else ("", "")
            answer = {"subject": f"FREE!!! {subject}", "body": f"{body}\nAct now, click here!!!"}
            yield json.dumps(answer)
            return
        if self.model_id == "seqctl-test-invalid":
            answer = ({"subject": "Hello", "body": "Hello there, a plain note."} if rewrite else
                      {"name": "broken", "steps": [
                          {"step_type": "email", "body": "Hi {{first_name}}"},
                          {"step_type": "call", "delay_business_days": 2}]})
        else:
            answer = _good_rewrite(prompt.prompt) if rewrite else _good_sequence(prompt.prompt)
        yield json.dumps(answer)


class _NoSchemaModel(llm.Model):
    model_id = "seqctl-test-noschema"
    supports_schema = False

    def execute(self, prompt, stream, response, conversation):
        yield "no"


@llm.hookimpl
def register_models(register):
    for model_id in ("seqctl-test", "seqctl-test-invalid", "seqctl-test-garbage",
                     "seqctl-test-spammy"):
        register(_TestModel(model_id))
    register(_NoSchemaModel())
