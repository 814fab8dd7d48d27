"""What a reply means: positive, not_interested, referral, not_now, wrong_person, left_company
or unknown (SPEC section 18).

A pure function of the reply's text and the instant it was received: no database, clock or
network, and deterministic. It reads only the new text: the quoted history, the signature and
mobile footers are cut first (mail-parser-reply's patterns for English, German, French and
Spanish, plus the few footers it lacks). The cues are phrase lists in those four languages,
matched on folded text (lower case, no accents); when several intents' cues are present the
first of this order wins:

1. left_company: "I no longer work at Acme", "nicht mehr bei", "ne fait plus partie",
   "ya no trabaja".
2. wrong_person: "not the right person", "nicht zuständig", "pas la bonne personne",
   "no soy la persona adecuada".
3. referral: someone else's address with a pointer to them ("talk to", "my colleague",
   "cc'ing"), or such a pointer to a named colleague without one.
4. not_now with a deferral ("reach out in Q3", "after March 15", "next month", "nach Ostern"):
   this beats the refusals below ("not interested right now, try me in Q3" is a not now).
5. not_interested: "not interested", "kein Interesse", "pas intéressé", "no nos interesa".
6. not_now without a date ("not right now", "bad timing", "gerade schlecht").
7. positive: "sounds good", "let's talk", "gerne", "volontiers", "me interesa".
8. unknown: none of these.

A left_company or wrong_person reply that names someone's address keeps it, as a referral
does (the engine then imports that person and asks the rep to reach out to them).
Not-now dates are read with dateparser, anchored at the reply's date; quarters, Easter,
seasons and "in N weeks" are computed here. A date that is not after the reply's day, or more
than two years away, is no date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from seqctl.engine.intent.cues import (
    LEFT_COMPANY,
    NOT_INTERESTED,
    NOT_NOW_STRONG,
    NOT_NOW_WEAK,
    POSITIVE,
    REFERRAL,
    REFERRAL_NAMED,
    WRONG_PERSON,
)
from seqctl.engine.intent.dates import not_before
from seqctl.engine.intent.text import (
    LANGUAGES,
    addresses,
    detect_language,
    fold,
    name_after,
    name_near,
    new_text,
)

__all__ = ["INTENTS", "LANGUAGES", "ReplyIntent", "fold", "new_text", "read_intent"]

INTENTS = (
    "positive",
    "not_interested",
    "referral",
    "not_now",
    "wrong_person",
    "left_company",
    "unknown",
)
_SNIPPET = 160


@dataclass(frozen=True)
class ReplyIntent:
    """What a reply says, with the facts the engine acts on."""

    intent: str
    language: str
    text: str  # the new text: quotes, signature and footers cut
    referral_email: str | None = None
    referral_name: str | None = None
    not_before: date | None = None
    cue: str = ""  # the phrase that decided, for `replies` and debugging

    @property
    def snippet(self) -> str:
        one_line = " ".join(self.text.split())
        return one_line if len(one_line) <= _SNIPPET else one_line[: _SNIPPET - 1] + "…"


def read_intent(
    text: str,
    received_at: datetime | None,
    *,
    sender: str | None = None,
    own_addresses: frozenset[str] = frozenset(),
) -> ReplyIntent:
    """The intent of one reply's body text (plain text; HTML already turned into text).
    `received_at` anchors relative dates (None: no not-now date is read); `sender` and
    `own_addresses` are never taken for a referral."""
    new = new_text(text)
    folded = fold(new)
    language = detect_language(folded)
    ignore = {a.lower() for a in own_addresses} | ({sender.lower()} if sender else set())
    named = [(m, a) for m, a in addresses(new) if a.lower() not in ignore]
    referral_email = named[0][1].lower() if named else None
    referral_name = name_near(new, named[0][0]) if named else None

    def result(intent: str, cue: str, not_before: date | None = None) -> ReplyIntent:
        keep = intent in ("referral", "wrong_person", "left_company")
        return ReplyIntent(
            intent=intent,
            language=language,
            text=new,
            referral_email=referral_email if keep else None,
            referral_name=(referral_name if keep else None),
            not_before=not_before,
            cue=cue,
        )

    if not folded.strip():
        return result("unknown", "")
    if found := LEFT_COMPANY.search(folded):
        return result("left_company", found.group())
    pointer = REFERRAL.search(folded)
    if pointer and referral_email:
        return result("referral", pointer.group())
    if found := WRONG_PERSON.search(folded):
        return result("wrong_person", found.group())
    if found := REFERRAL_NAMED.search(folded):
        if referral_name is None:
            referral_name = name_after(new, found.end())
        return result("referral", found.group())
    deferral = NOT_NOW_STRONG.search(folded)
    if deferral:
        return result("not_now", deferral.group(), _dated(new, folded, language, received_at))
    if found := NOT_INTERESTED.search(folded):
        return result("not_interested", found.group())
    if found := NOT_NOW_WEAK.search(folded):
        return result("not_now", found.group(), _dated(new, folded, language, received_at))
    if found := POSITIVE.search(folded):
        return result("positive", found.group())
    return result("unknown", "")


def _dated(text: str, folded: str, language: str, received_at: datetime | None) -> date | None:
    return not_before(text, folded, language, received_at) if received_at else None
