"""Rewriting an email until it scores under 20: deterministic fixes, each one listed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from seqctl.engine.draft.model import REWRITE_SCHEMA, Model, json_text
from seqctl.engine.spam import SpamReport, score_email

REWRITE_BELOW = 20

# --- rewriting an email -----------------------------------------------------------------------

_PROTECTED = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|(?:https?://|www\.)[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]",
                        re.IGNORECASE | re.DOTALL)
_MERGE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)

#: Every spam phrase of the score (engine/spam.py) and its plain replacement.
PLAIN_WORDS: dict[str, str] = {
    "act immediately": "take a look", "act now": "take a look", "apply now": "apply",
    "buy now": "take a look", "call now": "give me a call", "don't delete": "keep",
    "don't miss out": "have a look", "do not delete": "keep", "expires today": "ends soon",
    "final notice": "a last note", "hurry": "", "last chance": "a last note",
    "limited offer": "offer", "limited time": "this quarter", "offer expires": "offer ends",
    "once in a lifetime": "rare", "order now": "take a look", "urgent": "timely",
    "what are you waiting for": "worth a look", "while supplies last": "this quarter",
    "100% free": "free", "100% guaranteed": "backed", "100% satisfied": "happy",
    "amazing offer": "offer", "best price": "fair price", "cash bonus": "bonus",
    "exclusive deal": "offer", "free gift": "gift", "free money": "credit",
    "guaranteed": "expected", "incredible deal": "offer", "lowest price": "fair price",
    "miracle": "big change", "money back": "refund", "no catch": "", "no cost": "no charge",
    "no credit card": "no card details", "no obligation": "no commitment",
    "no strings attached": "no commitment", "prize": "reward", "risk free": "low-risk",
    "risk-free": "low-risk", "satisfaction guaranteed": "", "special promotion": "offer",
    "winner": "pick", "you have been selected": "I thought of you",
    "you've been selected": "I thought of you", "you have won": "you get", "you've won": "you get",
    "be your own boss": "run your own schedule", "double your": "grow your", "earn extra": "add",
    "extra income": "more revenue", "fast cash": "revenue", "get paid": "be paid",
    "make money": "grow revenue", "million dollars": "big", "pre-approved": "eligible",
    "work from home": "work remotely", "click below": "see below", "click here": "see this link",
    "dear friend": "Hi {{first_name}}", "dear sir": "Hi {{first_name}}",
    "dear madam": "Hi {{first_name}}", "not spam": "", "this is not spam": "",
    "this isn't spam": "",
}  # fmt: skip
_PHRASE = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in sorted(PLAIN_WORDS, key=len, reverse=True))
    + r")(?![\w-])",
    re.IGNORECASE,
)
_MONEY_FIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(earn|make|making|win|won|get)\s+(?:up\s+to\s+|over\s+|an\s+extra\s+)?"
                r"\$\s?\d[\d,]*(?:\.\d+)?(?:\s?[kKmM]\b)?(?:\s*(?:/|per|a|an)\s*(?:hour|day|week|month)\b)?",
                re.IGNORECASE), r"\1 more"),
    (re.compile(r"\b(earn|make|making|win|won|get)\s+(?:up\s+to\s+|over\s+|an\s+extra\s+)?\$",
                re.IGNORECASE), r"\1 "),
    (re.compile(r"\$\s?\d[\d,]*\s*(?:/|per|a|an)\s*(?:hour|day|week|month)\b", re.IGNORECASE),
     "more"),
    (re.compile(r"\$\s?\d{1,3}(?:,\d{3}){2,}(?:\.\d+)?|\$\s?\d{7,}"), "a large amount"),
    (re.compile(r"\b\d{2,3}\s?%\s+off\b", re.IGNORECASE), "a discount"),
    (re.compile(r"\s*\${2,}\s*"), " "),
)
_GENERIC_GREETING = re.compile(
    r"^(\s*(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening)),?\s+)"
    r"(there|friend|friends|sir|madam|all|team|everyone|customer|valued\s+\w+|user|folks|guys|"
    r"colleague|colleagues|sir/madam|partner|member)\b",
    re.IGNORECASE,
)
_GREETING_WORD = re.compile(r"^\s*(?:hi|hello|hey|dear)\b", re.IGNORECASE)
_RE_FWD = re.compile(r"^\s*(?:re|fwd?|fw|aw|wg|tr|sv)\s*(?:\[\d+\])?\s*:\s*", re.IGNORECASE)
_CAPS_WORD = re.compile(r"(?<![A-Za-z])[A-Z]{4,}(?![A-Za-z])")


@dataclass
class Change:
    rule: str
    before: str
    after: str


@dataclass
class Rewrite:
    """An email rewritten to score lower, and every change made."""

    score_before: int
    subject: str
    body: str
    changes: list[Change]
    report: SpamReport
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """SPEC 17: {"score_before", "score", "band", "subject", "body", "changes"}, plus the
        reasons still left."""
        return {
            "score_before": self.score_before,
            "score": self.report.score,
            "band": self.report.band,
            "subject": self.subject,
            "body": self.body,
            "changes": [{"rule": c.rule, "before": c.before, "after": c.after}
                        for c in self.changes],
            "reasons": self.report.to_json()["reasons"],
        }


def _shielded(text: str, fix: Callable[[str], str]) -> str:
    """Apply `fix` to the prose only: merge tags and URLs pass through untouched."""
    kept: list[str] = []

    def hide(match: re.Match[str]) -> str:
        kept.append(match.group())
        return f"\ue000{len(kept) - 1}\ue001"

    hidden = _PROTECTED.sub(hide, text)
    fixed = fix(hidden)
    return re.sub(r"\ue000(\d+)\ue001", lambda m: kept[int(m[1])], fixed)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"([,:;])[ \t]*(?:[,:;][ \t]*)+", r"\1 ", text)
    text = re.sub(r"[,:;][ \t]*([.!?])", r"\1", text)
    text = re.sub(r" +([,.;:!?])", r"\1", text)
    text = re.sub(r"([.!?])\.+", r"\1", text)
    return re.sub(r"(?m)^ +| +$", "", text)


class _Fixer:
    """One pass of one rule over (subject, body); records each change."""

    def __init__(self, subject: str, body: str) -> None:
        self.subject = subject
        self.body = body
        self.changes: list[Change] = []

    def sub(self, rule: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str],
            *, subject: bool = True, body: bool = True) -> None:
        def fix(text: str) -> str:
            def one(match: re.Match[str]) -> str:
                after = replace(match)
                if after[:1].islower() and _sentence_start(match):
                    after = after[:1].upper() + after[1:]
                if after != match.group():
                    change = Change(rule, match.group().strip(), after.strip())
                    if change not in self.changes:
                        self.changes.append(change)
                return after
            return pattern.sub(one, text)

        if subject:
            self.subject = _tidy(_shielded(self.subject, fix)).strip()
        if body:
            self.body = _tidy(_shielded(self.body, fix))

    def all_caps_subject(self) -> None:
        def fold(text: str) -> str:
            words = re.split(r"(\s+)", text.lower())
            out = "".join(words)
            return out[:1].upper() + out[1:]

        before = self.subject
        self.subject = _shielded(self.subject, fold)
        self.subject = re.sub(r"\b(i)\b", "I", self.subject)
        if self.subject != before:
            self.changes.append(Change("all_caps_subject", before, self.subject))

    def shouting(self) -> None:
        self.sub("shouting", _CAPS_WORD, lambda m: m.group().capitalize()
                 if _sentence_start(m) else m.group().lower(), subject=False)

    def excessive_exclamation(self) -> None:
        if "!" in self.subject:
            before = self.subject
            self.subject = _tidy(_shielded(self.subject, lambda t: t.replace("!", ""))).strip()
            self.changes.append(Change("excessive_exclamation", before, self.subject))
        seen = [0]

        def keep_first(match: re.Match[str]) -> str:
            seen[0] += 1
            word = match[1]
            return f"{word}!" if seen[0] == 1 else f"{word}."

        self.sub("excessive_exclamation", re.compile(r"(\S*?)!+"), keep_first, subject=False)

    def spam_vocabulary(self) -> None:
        def plain(match: re.Match[str]) -> str:
            phrase = match.group()
            after = PLAIN_WORDS[phrase.lower().replace("’", "'")]
            if after and _sentence_start(match) and not after.startswith("{{"):
                after = after[:1].upper() + after[1:]
            return after

        self.sub("spam_vocabulary", _PHRASE, plain)

    def money_patterns(self) -> None:
        for pattern, replacement in _MONEY_FIXES:
            self.sub("money_patterns", pattern, lambda m, r=replacement: m.expand(r))

    def re_fwd_first_touch(self) -> None:
        before = self.subject
        self.subject = _RE_FWD.sub("", self.subject, count=1)
        self.subject = self.subject[:1].upper() + self.subject[1:]
        if self.subject != before:
            self.changes.append(Change("re_fwd_first_touch", before, self.subject))

    def long_subject(self) -> None:
        sized = _MERGE.sub("Name", self.subject)
        if len(sized) <= 60:
            return
        before = self.subject
        tokens = re.split(r"(\{\{.*?\}\}|\s+)", self.subject)
        out = ""
        for token in tokens:
            if len(_MERGE.sub("Name", out + token)) > 60:
                break
            out += token
        out = re.sub(r"[\s,;:—–-]+(?:and|or|but|with|for|to|the|a|an)?\s*$", "", out).strip()
        if out and out != before:
            self.subject = out
            self.changes.append(Change("long_subject", before, out))

    def no_personalization(self) -> None:
        before = self.body
        generic = _GENERIC_GREETING.match(self.body)
        if generic:
            self.body = self.body[:generic.start(2)] + "{{first_name}}" + self.body[generic.end(2):]
            self.changes.append(Change("no_personalization", generic.group().strip(),
                                       (generic[1] + "{{first_name}}").strip()))
        elif not _GREETING_WORD.match(self.body):
            self.body = "Hi {{first_name}},\n\n" + self.body.lstrip("\n")
            self.changes.append(Change("no_personalization", "", "Hi {{first_name}},"))
        if self.body == before:
            return

    def thin_links(self, rule: str) -> None:
        urls = list(dict.fromkeys(u.rstrip(".,;:!?") for u in _URL.findall(self.body)))
        if len(urls) <= 1:
            return
        drop = urls[-1]
        self.body = _drop_link(self.body, drop)
        self.changes.append(Change(rule, drop, ""))


def _sentence_start(match: re.Match[str]) -> bool:
    before = match.string[:match.start()].rstrip(" \t\"'(")
    return not before or before[-1] in ".!?\n"


def _drop_link(body: str, url: str) -> str:
    escaped = re.escape(url)
    body = re.sub(r"\[([^\]]*)\]\(" + escaped + r"[^)]*\)", r"\1", body)
    body = re.sub(r"<a\b[^>]*href=[\"']?" + escaped + r"[^>]*>(.*?)</a>", r"\1", body,
                  flags=re.IGNORECASE | re.DOTALL)
    body = re.sub(r"[(<]\s*" + escaped + r"[.,;:!?]*\s*[)>]", "", body)
    body = re.sub(escaped + r"(?![\w/?#=&%~+-])", "", body)
    lines = []
    for line in body.split("\n"):
        if line.strip() and re.fullmatch(r"\s*(?:[-*•]\s*)?(?:[\w' ]{0,30}:)?[\s.,;:()-]*", line):
            continue
        lines.append(line)
    return _tidy("\n".join(lines))


_FIX_ORDER = (
    "all_caps_subject", "re_fwd_first_touch", "spam_vocabulary", "money_patterns",
    "excessive_exclamation", "shouting", "too_many_links", "link_to_text_ratio",
    "long_subject", "no_personalization",
)


def merge_variables(text: str) -> list[str]:
    """The merge tags in a text, in order, without repeats (spaces inside ignored)."""
    return list(dict.fromkeys(re.sub(r"\s+", "", tag) for tag in _MERGE.findall(text)))


def urls(text: str) -> list[str]:
    """The links in a text, in order, without repeats."""
    return list(dict.fromkeys(url.rstrip(".,;:!?") for url in _URL.findall(text)))


def _deterministic(subject: str, body: str, target: int) -> tuple[str, str, list[Change]]:
    fixer = _Fixer(subject, body)
    for _ in range(40):
        report = score_email(fixer.subject, fixer.body)
        if report.score < target:
            break
        fired = {reason.rule for reason in report.reasons}
        before = (fixer.subject, fixer.body)
        for rule in _FIX_ORDER:
            if rule not in fired:
                continue
            if rule in ("too_many_links", "link_to_text_ratio"):
                fixer.thin_links(rule)
            else:
                getattr(fixer, rule)()
            if (fixer.subject, fixer.body) != before:
                break
        if (fixer.subject, fixer.body) == before:
            break
    return fixer.subject, fixer.body, fixer.changes


def rewrite_prompt(subject: str, body: str, report: SpamReport) -> str:
    reasons = "\n".join(f"- {r.rule} (+{r.points}): {r.detail} Fix: {r.fix}"
                        for r in report.reasons)
    return (
        "Rewrite this sales email so a spam filter and a busy reader both trust it. Keep its "
        "meaning, keep every {{merge_variable}} and every URL exactly as written, plain short "
        "sentences, no hype, no exclamation marks, no money figures. Answer in the given JSON "
        "schema.\n\n"
        f"What the spam-risk score found:\n{reasons}\n\nSubject: {subject}\n\nBody:\n{body}\n"
    )


def rewrite(subject: str | None, body: str, *, model: Model | None = None,
            target: int = REWRITE_BELOW) -> Rewrite:
    """Rewrite an email until it scores under `target` or no fix applies. With `model`, its
    rewrite is the starting point when it keeps every merge variable and URL and its score is
    lower than the original's; otherwise it is ignored (with a note)."""
    subject = subject or ""
    original = score_email(subject, body)
    notes: list[str] = []
    changes: list[Change] = []
    start_subject, start_body = subject, body
    if model is not None and original.score >= target:
        answer = model.answer(rewrite_prompt(subject, body, original), REWRITE_SCHEMA)
        candidate, why = _model_candidate(answer, subject, body, original.score)
        if candidate is None:
            notes.append(f"model {model.name}: {why}; kept the deterministic rewrite")
        else:
            start_subject, start_body = candidate
            changes.append(Change("model", f"{subject}\n\n{body}".strip(),
                                  f"{start_subject}\n\n{start_body}".strip()))
            notes.append(f"model {model.name}: {why}")
    new_subject, new_body, fixes = _deterministic(start_subject, start_body, target)
    changes.extend(fixes)
    report = score_email(new_subject, new_body)
    if report.score >= target:
        stuck = ", ".join(r.rule for r in report.reasons)
        notes.append(f"still {report.score}: no automatic fix for {stuck} (see the reasons)")
    return Rewrite(original.score, new_subject, new_body, changes, report, notes)


def _model_candidate(answer: str, subject: str, body: str, score_before: int
                     ) -> tuple[tuple[str, str] | None, str]:
    try:
        document = json.loads(json_text(answer))
    except ValueError:
        return None, "the answer is not JSON"
    if not isinstance(document, dict) or not isinstance(document.get("body"), str) \
            or not isinstance(document.get("subject", ""), str):
        return None, "the answer has no subject and body"
    new_subject, new_body = document.get("subject") or "", document["body"]
    lost = [v for v in merge_variables(f"{subject}\n{body}")
            if v not in merge_variables(f"{new_subject}\n{new_body}")]
    lost += [u for u in urls(f"{subject}\n{body}") if u not in urls(f"{new_subject}\n{new_body}")]
    if lost:
        return None, f"the answer dropped {', '.join(lost)}"
    score = score_email(new_subject, new_body).score
    if score >= score_before:
        return None, f"the answer scored {score}, not lower than {score_before}"
    return (new_subject, new_body), f"kept its rewrite (score {score_before} -> {score})"
