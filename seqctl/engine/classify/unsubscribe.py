"""Unsubscribe requests: mail to an unsubscribe address, or a subject or first own line that
asks for it.
"""

from __future__ import annotations

import re
from email.message import Message

from seqctl.engine.classify.mime import _body_text, _fold, _own_lines, _recipients
from seqctl.engine.classify.verdict import ClassifyContext

# A request anywhere in the line ("Not interested, please remove me from your list").
_UNSUBSCRIBE_RE = re.compile(
    r"\b(unsubscribe me|please unsubscribe|(want|like|wish) to unsubscribe|remove me"
    r"|remove my (e-?mail|address|name)|opt me out|stop (e-?mailing|sending|contacting"
    r"|messaging|writing) me|stop (the|these|your) e-?mails|take me off|do not (e-?mail|contact)"
    r" me|don'?t (e-?mail|contact) me|no more e-?mails"
    r"|abmelden|abbestellen|austragen|melden sie mich ab|entfernen sie mich"
    r"|keine (weiteren )?(e-?mails|nachrichten)"
    r"|desabonner|desinscrire|desabonnez|desinscrivez|retirez[- ]moi|ne plus recevoir"
    r"|dar(se|me)? de baja|eliminarme|no me (escriba|escriban|envie|envien)"
    r"|cancelar (la |mi )?suscripcion)\b"
)
# A bare keyword only when it is (nearly) the whole line: "Unsubscribe", "opt out please".
_UNSUBSCRIBE_WORD_RE = re.compile(
    r"\b(unsubscribe|unsubcribe|opt[- ]?out|baja|desabonnement|desinscription)\b"
)
_STOP_LINE_RE = re.compile(r"^(please )?(stop|stopp|arret|remove)( please)?$")
_MAX_BARE_REQUEST_WORDS = 5
# "Hi Alex," / "Dear Mr. Rivera," / "Hola" - but not "Hi Alex, please remove me".
_GREETING_RE = re.compile(
    r"^(hi|hello|hey|dear|good (morning|afternoon|evening)|hallo|guten tag|liebe[r]?"
    r"|sehr geehrte[r]?|bonjour|bonsoir|cher|chere|hola|buenos dias|buenas tardes|estimad[oa])"
    r"\b([^?!,]{0,40}[,!:]|(\s+[\w.'-]+){0,2}\s*)$"
)
_SUBJECT_PREFIX_RE = re.compile(r"^\s*((re|aw|wg|fw|fwd|tr|rv|sv|antw)\s*(\[\d+\])?\s*:\s*)+")


def _unsubscribe(msg: Message, subject: str, ctx: ClassifyContext) -> str:
    unsubscribe_addresses = {a.lower() for a in ctx.unsubscribe_addresses}
    hit = sorted(unsubscribe_addresses & _recipients(msg))
    if hit:
        return f"sent to the unsubscribe address {hit[0]}"
    bare_subject = _SUBJECT_PREFIX_RE.sub("", _fold(subject)).strip(" .!-")
    if _is_request(bare_subject):
        return f"unsubscribe request in the subject: {subject!r}"
    line = _first_own_line(_body_text(msg))
    if line and _is_request(_fold(line).strip(" .!-")):
        return f"unsubscribe request in the first line: {line[:80]!r}"
    return ""


def _is_request(folded_line: str) -> bool:
    if not folded_line or len(folded_line) > 200:
        return False
    if _UNSUBSCRIBE_RE.search(folded_line):
        return True
    short = len(folded_line.split()) <= _MAX_BARE_REQUEST_WORDS
    if short and _UNSUBSCRIBE_WORD_RE.search(folded_line):
        return True
    return bool(_STOP_LINE_RE.match(folded_line))


def _first_own_line(text: str) -> str:
    for line in _own_lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        if _GREETING_RE.match(_fold(stripped)):
            continue
        return stripped
    return ""


# -- meetings ------------------------------------------------------------------------------
