"""The drafted sequence: the mapping its YAML holds, with copy a rep would want to edit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from seqctl.engine.draft.timing import Step, place
from seqctl.engine.draft.words import NoStepError, Reader, check_words
from seqctl.engine.sequence_spec import dump_yaml

DEFAULT_NAME = "drafted-sequence"
MAX_NAME_CHARS = 60


@dataclass
class Draft:
    """A drafted sequence: the mapping its YAML holds, and the warnings for the rep."""

    document: dict[str, Any]
    warnings: list[str]
    source: str = "words"  # or the model's name

    def to_yaml(self, words: str | None = None) -> str:
        """The YAML text; with `words`, a comment on top says where it came from."""
        head = ""
        if words is not None:
            quoted = " ".join(words.split())
            if len(quoted) > 300:
                quoted = quoted[:297] + "..."
            head = (f"# Drafted by `seqctl sequence draft` from {self.source}: {quoted}\n"
                    "# Edit every TODO: line, then `seqctl sequence apply` this file.\n")
        return head + dump_yaml(self.document)


_PRONOUNS = {
    "their": "your", "they": "you", "them": "you", "theirs": "yours", "they're": "you're",
    "they've": "you've", "they'll": "you'll", "themselves": "yourselves", "his": "your",
    "her": "your", "he": "you", "she": "you", "him": "you", "is": "are", "was": "were",
}  # fmt: skip
_KNOWN_FIELD_WORDS = (
    (re.compile(r"\b(?:their\s+|the\s+)?company(?:'s)?(?:\s+name)?\b|\baccount\s+name\b",
                re.IGNORECASE), "company_name"),
    (re.compile(r"\b(?:their\s+|the\s+)?first\s+name\b|\bby\s+name\b|\btheir\s+name\b",
                re.IGNORECASE), "first_name"),
    (re.compile(r"\b(?:their\s+)?(?:last|full|sur)\s*name\b", re.IGNORECASE), "last_name"),
)
_PITCH = re.compile(r"\b(?:(?:a\s+)?one[\s-]line(?:r)?\s+pitch|(?:a\s+|the\s+|our\s+|your\s+)?"
                    r"(?:elevator\s+)?pitch(?:\s+line)?|value\s+prop(?:osition)?)\b", re.IGNORECASE)
_ASK = re.compile(r"\b(?:ask(?:ing|s)?|question(?:ing|s)?)\s+(about|if|whether|how|what|why|"
                  r"when|which|who)\s+(.+)$", re.IGNORECASE)
_ABOUT = re.compile(r"\b(?:about|on|regarding|re|mentioning|referencing|sharing|with|"
                    r"including|featuring|highlighting|offering|pitching)\s+(.+)$", re.IGNORECASE)
_CTA = re.compile(r"\b(?:demo|meeting|call|chat|15[\s-]?min(?:ute)?s?|calendar\s+link)\b",
                  re.IGNORECASE)
_STRIP_KIND_WORDS = re.compile(
    r"\b(?:send|sending|an?|the|intro(?:duction|ductory)?|follow[\s-]?up|bump|nudge|break[\s-]?up|"
    r"check[\s-]?in|e-?mails?|linked\s?in|connect(?:ion)?[\s-]requests?|connect|messages?|dms?|"
    r"inmails?|calls?|phone|ring|tasks?|reminders?|step|touch|cold|first|second|third|last|final|"
    r"quick|short|another|new|thread|subject(?:\s+line)?\s*[:=]?\s*[\"“'][^\"”']*[\"”'])\b",
    re.IGNORECASE,
)
_LEADING_PREPOSITION = re.compile(r"^(?:about|on|regarding|re|to|with)\s+", re.IGNORECASE)
_PLAIN_FILLER = re.compile(r"^[\s,.:;—–-]*(?:and\s+|with\s+|to\s+)?|[\s,.:;—–-]+$", re.IGNORECASE)


def _second_person(phrase: str) -> str:
    words = phrase.split()
    return " ".join(_PRONOUNS.get(word.lower(), word) for word in words)


def _content(words: str) -> tuple[set[str], list[str], str | None, str | None]:
    """What an email's words ask for: (merge fields, TODO lines, a question, the topic)."""
    fields: set[str] = set()
    todos: list[str] = []
    text = words
    for pattern, name in _KNOWN_FIELD_WORDS:
        if pattern.search(text):
            fields.add(name)
            text = pattern.sub(" ", text)
    if _PITCH.search(text):
        todos.append("TODO: your one-line pitch (what you do, for whom, and the result).")
        text = _PITCH.sub(" ", text)
    question = None
    ask = _ASK.search(text)
    if ask:
        subject = _second_person(_PLAIN_FILLER.sub("", ask[2]))
        question = (f"Quick question about {subject}: what is working well today, and what "
                    "would you change?" if ask[1].lower() == "about"
                    else f"Wanted to ask {ask[1].lower()} {subject}.")
        text = text[:ask.start()]
    topic = None
    about = _ABOUT.search(text)
    if about:
        topic = _second_person(_PLAIN_FILLER.sub("", about[1]))
        topic = re.sub(r"\s+", " ", _STRIP_KIND_WORDS.sub(" ", topic)).strip(" ,.")
        if topic and not re.fullmatch(r"(?:and|a|an|the)?", topic, re.IGNORECASE):
            todos.append(f"TODO: a line on {topic}.")
        text = text[:about.start()]
    return fields, todos, question, topic or None


def _short_topic(topic: str | None) -> str | None:
    if not topic:
        return None
    words = [w for w in topic.split() if w.lower() not in ("a", "an", "the", "your", "our")]
    if not words or len(words) > 4:
        return None
    return " ".join(words)[:40]


def _email_copy(step: Step, first_email: bool, topic: str | None
                ) -> tuple[str | None, str, dict[str, str] | None]:
    """(subject or None to thread, body, variant B) for one email step."""
    fields, todos, question, email_topic = _content(step.words)
    intent = step.intent or ("intro" if first_email else "follow_up")
    company = "company_name" in fields or intent == "intro"
    at_company = " at {{company_name}}" if company else ""
    name_line = "Hi {{first_name}},"
    if "last_name" in fields:
        name_line = "Hi {{first_name}} {{last_name}},"
    cta = "Would a 15-minute call next week be worth it?"
    if re.search(r"\bdemo\b", step.words, re.IGNORECASE):
        cta = "Open to a short demo next week?"
    lines: list[str]
    if intent == "intro":
        lines = ["I have been following {{company_name}} and had an idea for your team."
                 if company else "I will keep this short."]
        if not any("pitch" in todo for todo in todos):
            todos.insert(0, "TODO: your one-line pitch (what you do, for whom, and the result).")
    elif intent == "bump":
        lines = ["Bumping this to the top of your inbox in case it got buried."]
        cta = "Worth a quick chat?" if not _CTA.search(step.words) else cta
    elif intent == "breakup":
        lines = [f"I have not heard back, so I will assume the timing is not right{at_company} "
                 "and close the loop here."]
        cta = "If that changes, just reply to this email and I will pick it up."
    else:
        lines = ["Following up on my note below."]
    if question:
        lines.append(question)
    paragraphs = [name_line, " ".join(lines)]
    if todos:
        paragraphs.append("\n".join(todos))
    paragraphs += [cta, "{{owner_first_name}}"]
    body = "\n\n".join(paragraphs) + "\n"

    threaded = not first_email and not step.new_thread and step.subject is None
    subject: str | None = None
    if not threaded:
        subject = step.subject or _subject_for(intent, company, _short_topic(email_topic))
    variant = None
    if step.ab_test == "subject" and subject is not None:
        variant = {"subject": _variant_subject(subject, company), "body": body}
    elif step.ab_test:
        variant = {"body": _variant_body(body, intent)}
        if subject is not None:
            variant = {"subject": subject, **variant}
    return subject, body, variant


def _subject_for(intent: str, company: bool, topic: str | None) -> str:
    if intent == "breakup":
        return "Closing the loop"
    if topic and company:
        return f"{topic[:1].upper()}{topic[1:]} at {{{{company_name}}}}"
    if company:
        return "Idea for {{company_name}}"
    return "Quick question, {{first_name}}"


def _variant_subject(subject: str, company: bool) -> str:
    alternative = "Question about {{company_name}}" if company else "{{first_name}}, a quick idea"
    return alternative if alternative != subject else "{{first_name}}, a quick idea"


def _variant_body(body: str, intent: str) -> str:
    lines = body.split("\n")
    openers = {
        "intro": "Short note, since inboxes are busy.",
        "follow_up": "Circling back on my last email.",
        "bump": "Floating this back up for you.",
        "breakup": "This is my last note on this.",
    }
    if len(lines) > 2:
        lines[2] = openers.get(intent, lines[2])
    return "\n".join(lines)


def _task_fields(step: Step, topic: str | None) -> tuple[str, str | None]:
    words = re.sub(r"\s+", " ", step.words).strip(" ,.:—–-")
    rest = re.sub(r"\s+", " ", _STRIP_KIND_WORDS.sub(" ", words)).strip(" ,.:—–-")
    if step.kind == "call":
        title = "Call the contact"
        detail = _LEADING_PREPOSITION.sub("", _PLAIN_FILLER.sub("", rest))
        notes = (f"Talk about: {detail}." if detail else
                 "TODO: talking points (reference the emails so far).")
        return title, notes
    if step.kind == "linkedin":
        if step.intent == "message":
            rest = _LEADING_PREPOSITION.sub("", rest)
            return "LinkedIn message", (f"About: {rest}." if rest else
                                        "TODO: a short message that references the emails.")
        return "LinkedIn connect request", "TODO: a one-line note for the connect request."
    if step.intent == "research" or re.search(r"\bresearch", words, re.IGNORECASE):
        what = re.sub(r"\b(?:research|task)\b", " ", words, flags=re.IGNORECASE)
        what = re.sub(r"\s+", " ", what).strip(" ,.:—–-")
        return ("Research " + what if what else "Research the account")[:100], \
            "TODO: what to look for (recent news, team, tools)."
    title = words[:1].upper() + words[1:] if words else "Task"
    return title[:100], None


def draft(text: str, *, name: str | None = None) -> Draft:
    """Draft a sequence mapping from plain words (deterministic). Raises SeqctlError for empty
    or over-long text, text with no step in it, and contradictions (two windows, two
    timezones, steps out of order)."""
    words = check_words(text)
    reader = Reader()
    reader.read(words)
    if not reader.steps:
        unknown = ", ".join(f'"{phrase}"' for phrase in reader.unknown)
        raise NoStepError(
            "no step found in the words" + (f" (not understood: {unknown})" if unknown else "")
            + '; name at least one, e.g. "Day 1 — intro email / Day 3 — follow-up email" '
            "(docs/drafting.md lists the phrases)"
        )
    if all(step.kind == "wait" for step in reader.steps):
        raise NoStepError("the words name only waits: a sequence needs an email, call, LinkedIn "
                          "step or task")
    if reader.step_count is not None and reader.step_count != len(reader.steps):
        reader.warnings.append(f"the words say {reader.step_count} steps, the draft has "
                               f"{len(reader.steps)}")
    place(reader.steps, reader.warnings)
    return Draft(_document(reader, name), reader.warnings)


def slug(text: str) -> str:
    """A sequence name from words: lower-case, dashes, at most 60 characters."""
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(value) > MAX_NAME_CHARS:
        value = value[:MAX_NAME_CHARS].rsplit("-", 1)[0]
    return value or DEFAULT_NAME


def _document(reader: Reader, name: str | None) -> dict[str, Any]:
    settings = reader.settings
    topic = reader.topic
    document: dict[str, Any] = {"name": name or (slug(topic) if topic else DEFAULT_NAME)}
    if topic:
        document["description"] = topic[:1].upper() + topic[1:]
    if settings.timezone is not None:
        document["timezone"] = settings.timezone
    if settings.window is not None:
        document["send_window_start_hour"], document["send_window_end_hour"] = settings.window
    if settings.weekdays_only is not None:
        document["send_weekdays_only"] = settings.weekdays_only
    if settings.holidays:
        document["holidays"] = settings.holidays
    if settings.contact_timezone:
        document["send_in_contact_timezone"] = True
    exits = {"exit_on_reply": True, "exit_on_stage_change": False, "exit_on_booking": True,
             "exit_on_company_reply": False, **settings.exits}
    document.update(exits)
    if settings.pause_on_auto_reply is not None:
        document["pause_on_auto_reply"] = settings.pause_on_auto_reply
    document.update(settings.track)
    steps = []
    first_email = True
    ids: set[str] = set()
    for step in reader.steps:
        out: dict[str, Any] = {"id": _step_id(step, first_email, ids), "step_type": step.kind}
        for key, value in step.delays.items():
            if value:
                out[key] = int(value) if float(value).is_integer() else round(value, 2)
        if step.kind == "email":
            subject, body, variant = _email_copy(step, first_email, topic)
            if subject is not None:
                out["subject"] = subject
            out["body"] = body
            if variant:
                out["variant_b"] = variant
            first_email = False
        elif step.kind in ("call", "linkedin", "task"):
            title, notes = _task_fields(step, topic)
            out["title"] = title
            if notes:
                out["notes"] = notes
        steps.append(out)
    document["steps"] = steps
    return document


def _step_id(step: Step, first_email: bool, taken: set[str]) -> str:
    if step.kind == "email":
        base = {"intro": "intro", "bump": "bump", "breakup": "break-up"}.get(
            step.intent or ("intro" if first_email else "follow_up"), "follow-up")
    else:
        base = {"call": "call", "linkedin": "linkedin", "task": "task", "wait": "wait"}[step.kind]
        if step.kind == "linkedin":
            base = "linkedin-message" if step.intent == "message" else "linkedin-connect"
        if step.kind == "task" and step.intent == "research":
            base = "research"
    key, number = base, 2
    while key in taken:
        key, number = f"{base}-{number}", number + 1
    taken.add(key)
    return key
