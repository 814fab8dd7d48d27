"""Asking a language model for the sequence: the JSON schema, the prompt, reading the answer."""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from seqctl.engine.draft.document import Draft, draft
from seqctl.engine.draft.words import NoStepError, check_words
from seqctl.engine.render import BUILTIN_VARIABLES
from seqctl.errors import SeqctlError


class Model(Protocol):
    """A language model that answers a prompt with JSON text following a JSON schema."""

    name: str

    def answer(self, prompt: str, schema: dict[str, Any]) -> str: ...


_TEXT = {"type": "string"}
_STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": _TEXT,
        "step_type": {"type": "string", "enum": ["email", "call", "linkedin", "task", "wait"]},
        "delay_business_days": {"type": "integer", "minimum": 0},
        "delay_calendar_days": {"type": "integer", "minimum": 0},
        "delay_hours": {"type": "number", "minimum": 0},
        "subject": {"type": "string", "description": "email only; leave out on a follow-up to "
                    "reply in the thread of the previous email"},
        "body": {"type": "string", "description": "email only; Jinja2 merge variables such as "
                 "{{first_name}}"},
        "title": {"type": "string", "description": "call, linkedin and task steps"},
        "notes": {"type": "string", "description": "call, linkedin and task steps"},
    },
    "required": ["step_type"],
    "additionalProperties": False,
}
SEQUENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "lower-case-with-dashes"},
        "description": _TEXT,
        "timezone": {"type": "string", "description": "IANA name, e.g. America/Chicago"},
        "send_window_start_hour": {"type": "integer", "minimum": 0, "maximum": 23},
        "send_window_end_hour": {"type": "integer", "minimum": 1, "maximum": 24},
        "send_weekdays_only": {"type": "boolean"},
        "send_in_contact_timezone": {"type": "boolean"},
        "exit_on_reply": {"type": "boolean"},
        "exit_on_booking": {"type": "boolean"},
        "exit_on_stage_change": {"type": "boolean"},
        "exit_on_company_reply": {"type": "boolean"},
        "steps": {"type": "array", "minItems": 1, "items": _STEP_SCHEMA},
    },
    "required": ["name", "steps"],
    "additionalProperties": False,
}
REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"subject": _TEXT, "body": _TEXT},
    "required": ["subject", "body"],
    "additionalProperties": False,
}


def model_prompt(words: str, draft_document: dict[str, Any] | None) -> str:
    """The prompt that asks a model for a sequence; the deterministic draft is its start."""
    start = (f"A deterministic parser drafted this (improve its copy, keep its timing unless "
             f"the words say otherwise):\n{json.dumps(draft_document, indent=2)}\n\n"
             if draft_document else "")
    return (
        "You write outreach sequences for one sales rep, sent 1:1 from their own mailbox. "
        "Turn the description below into a sequence in the given JSON schema.\n"
        "Rules: delays are relative to the previous step (Day 1 is delay 0; 'Day 3 business "
        "days' after Day 1 is delay_business_days 2). The first email has a subject; a "
        "follow-up without a subject replies in the same thread. Use only these merge "
        f"variables: {', '.join('{{' + v + '}}' for v in BUILTIN_VARIABLES)}. Mark what you "
        "cannot know with a line starting 'TODO:'. Short plain sentences; no hype, no "
        "exclamation marks, no money talk.\n\n"
        f"{start}Description:\n{words}\n"
    )


def document_from_answer(answer: str, *, model: str, name: str | None) -> dict[str, Any]:
    """The sequence mapping in a model's answer; SeqctlError when it is not a JSON object.
    Keys with null or "" values are dropped (models fill optional fields with them)."""
    try:
        document = json.loads(json_text(answer))
    except ValueError as exc:
        raise SeqctlError(f"model {model} did not answer in JSON ({exc}); nothing was "
                          "written") from None
    if not isinstance(document, dict):
        raise SeqctlError(f"model {model} answered a JSON {type(document).__name__}, not an "
                          "object with name and steps; nothing was written")
    cleaned = _without_empty(document)
    if name:
        cleaned["name"] = name
    return cleaned


def json_text(answer: str) -> str:
    fenced = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", answer, re.DOTALL)
    return fenced[1] if fenced else answer


def _without_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list):
        return [_without_empty(item) for item in value]
    return value


def draft_with_model(text: str, model: Model, *, name: str | None = None) -> Draft:
    """Ask `model` for the sequence (structured output in SEQUENCE_SCHEMA). The deterministic
    draft, when the words give one, goes into the prompt. The answer still has to pass
    validation; the caller validates it like a file."""
    words = check_words(text)
    start: dict[str, Any] | None
    try:
        start = draft(words, name=name).document
    except NoStepError:  # the model may read what the parser could not; other errors stand
        start = None
    answer = model.answer(model_prompt(words, start), SEQUENCE_SCHEMA)
    document = document_from_answer(answer, model=model.name, name=name)
    if "name" not in document and start is not None:
        document["name"] = start["name"]
    return Draft(_ordered(document), [], source=f"model {model.name}")


def _ordered(document: dict[str, Any]) -> dict[str, Any]:
    order = list(SEQUENCE_SCHEMA["properties"])
    return {**{k: document[k] for k in order if k in document},
            **{k: v for k, v in document.items() if k not in order}}
