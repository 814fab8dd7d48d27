"""The new text of a reply, folded for matching, its language, and the addresses in it.

The quoted history, the signature and mobile footers are cut with mail-parser-reply's
patterns for English, German, French and Spanish, plus the few footers it lacks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailparser_reply.parser import EmailMessage

LANGUAGES = ("en", "de", "fr", "es")
_MAX_TEXT = 20_000  # a reply's new text is short; a pasted novel is read up to here

# -- the new text ----------------------------------------------------------------------------

# mail-parser-reply's compiled patterns for our four languages: reply headers ("On ... wrote:",
# "Am ... schrieb", "Le ... a écrit", "El ... escribió", Outlook's From:/Von:/De: blocks) and
# signatures (closings, "--", "Sent from my iPhone", "Get Outlook for iOS").


class LazyPattern:
    """A regular expression compiled on first use. Every seqctl command imports this package
    (through the commands that show intents); only sync and `read_intent` need the patterns,
    and compiling them all takes longer than starting the command."""

    def __init__(self, build: Callable[[], re.Pattern[str]]):
        self._build = build
        self._pattern: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        if self._pattern is None:
            self._pattern = self._build()
        return self._pattern

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.pattern.search(text, pos)

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.pattern.match(text, pos)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.pattern.finditer(text)


def lazy(pattern: str, flags: int = 0) -> LazyPattern:
    return LazyPattern(lambda: re.compile(pattern, flags))


@cache
def _library() -> EmailMessage:
    # imported on first use, like the patterns below: only a reply needs it
    from mailparser_reply.parser import EmailMessage

    return EmailMessage(text="", languages=list(LANGUAGES), keep_hyphen_lists=True)


_HEADER_RE = LazyPattern(lambda: _library().HEADER_REGEX)
_SIGNATURE_RE = LazyPattern(lambda: _library().SIGNATURE_REGEX)
# Where the library's header pattern can match: its "wrote" lines and Outlook field names.
_HEADER_WORDS = ("wrote", "schrieb", "a \u00e9crit", "escribi\u00f3", "original message")
_HEADER_FIELD_RE = lazy(
    r"^[>* ]*(?:from|sent|to|subject|date|cc|organization|von|gesendet|an|betreff|datum"
    r"|organisation|de|envoy\u00e9|\u00e0|objet|enviado|para|asunto|fecha|organizaci\u00f3n) ?:",
    re.IGNORECASE | re.MULTILINE,
)
# Footers and separators the library's lists do not have (German, French and Spanish mobile
# clients, forwarded-message lines).
_FOOTER_RE = lazy(
    r"^(?:von meinem \S+(?: \S+)? gesendet|gesendet von meinem|envoy[ée] de mon|envoy[ée] "
    r"depuis|obtenir outlook pour|outlook f[üu]r (?:ios|android)|descargar outlook para"
    r"|obtener outlook para|enviado desde|-{2,} ?(?:forwarded message|weitergeleitete nachricht"
    r"|message transf[ée]r[ée]|mensaje reenviado|urspr[üu]ngliche nachricht|message d'origine"
    r"|mensaje original) ?-*)",
    re.IGNORECASE | re.MULTILINE,
)
_CLOSING_NAME_RE = re.compile(r"^[\w.'-]+(?: [\w.'-]+){0,2}\.?$")


def new_text(body: str) -> str:
    """The reply's own words: quoted history, signature and mobile footer cut."""
    text = body[:_MAX_TEXT].replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = text[: _header_start(text)]
    footer = _FOOTER_RE.search(text)
    if footer:
        text = text[: footer.start()]
    text = "\n".join(line for line in text.split("\n") if not line.startswith(">"))
    return _cut_signature(text).strip()


def _header_start(text: str) -> int:
    """Where the first reply header (the library's pattern) begins; len(text) when none.
    The pattern backtracks over the whole rest of the text at every line, so it is run on a
    window around each line that could hold a header: from two lines above (a wrapped
    "On ... <\nx@y> wrote:" spans two) to a few lines below (an Outlook block)."""
    lowered = text.lower()
    position = 0
    while True:
        found = [i for i in (lowered.find(word, position) for word in _HEADER_WORDS) if i >= 0]
        field = _HEADER_FIELD_RE.search(text, position)
        if field:
            found.append(field.start())
        if not found:
            return len(text)
        hint = min(found)
        start = text.rfind("\n", 0, hint)
        for _ in range(2):
            start = text.rfind("\n", 0, start) if start > 0 else -1
        start = max(start, 0)
        header = _HEADER_RE.search(text[start : hint + _HEADER_WINDOW])
        if header:
            return start + header.start()
        line_end = text.find("\n", hint)
        if line_end < 0:
            return len(text)
        position = line_end + 1


_HEADER_WINDOW = 500


def _cut_signature(text: str) -> str:
    """Cut at the library's signature match, unless its first line is a sentence that
    merely starts with a closing word ("Thanks, but we are not interested.")."""
    position = 0
    while found := _SIGNATURE_RE.search(text, position):
        block = found.group().lstrip()
        first = block.split("\n", 1)[0]
        _, comma, rest = first.partition(",")
        rest = rest.strip()
        if not comma or not rest or (_CLOSING_NAME_RE.match(rest) and rest[:1].isupper()):
            return text[: found.start()]
        line_end = text.find("\n", found.start() + len(found.group()) - len(block))
        if line_end < 0:
            return text
        position = line_end + 1
    return text


# -- folding and language ----------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case without accents, same length as `text` (so spans map back), with curly
    apostrophes made straight."""
    return text.translate(_FOLD_TABLE)


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x41, 0x250):
        char = chr(code)
        base = unicodedata.normalize("NFKD", char)[:1].lower()
        if len(base) == 1 and (base != char or char.isupper()):
            table[code] = base
    table.update({ord("ß"): "s", ord("’"): "'", ord("‘"): "'", ord("´"): "'", ord("`"): "'"})
    return table


_FOLD_TABLE = _build_fold_table()

_LANGUAGE_WORDS = {
    "en": "the and you we our for not with this that thanks please is are would will me my it "
    "hi hello after next",
    "de": "und sie wir nicht ich ist das die der mit uns ihnen bitte danke gerne bei fur hallo "
    "nach dem den im mich mir",
    "fr": "et vous nous pas je est le la les avec merci pour une des ne suis sommes bonjour moi "
    "apres au du",
    "es": "y usted nosotros no yo es el la los con gracias para una por estoy estamos hola "
    "despues del escribeme ahora",
}
_LANGUAGE_SETS = {lang: frozenset(words.split()) for lang, words in _LANGUAGE_WORDS.items()}
_WORD_RE = re.compile(r"[a-z']+")


def detect_language(folded: str) -> str:
    """English, German, French or Spanish, by common words (ties: the earlier one)."""
    words = _WORD_RE.findall(folded)
    scores = {lang: sum(1 for w in words if w in vocab) for lang, vocab in _LANGUAGE_SETS.items()}
    return max(LANGUAGES, key=lambda lang: (scores[lang], -LANGUAGES.index(lang)))


# -- referral addresses and names --------------------------------------------------------------

_ADDRESS_RE = re.compile(r"(?<![\w.+-])[\w.+'-]+@[\w-]+(?:\.[\w-]+)+(?<!\.)")
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][\w'’-]+"
_NAME_BEFORE_RE = lazy(
    rf"({_NAME_WORD}(?: {_NAME_WORD}){{0,2}})\s*(?:<|\(|\[|-|–|—|,|:| at| unter| a l'adresse"
    r"| en)?\s*(?:mailto:)?$"
)
_NAME_AFTER_RE = re.compile(rf"\s*({_NAME_WORD}(?: {_NAME_WORD})?)")
_NOT_NAMES = frozenset(
    """please contact email mail e-mail reach talk speak write try cc hi hello hey thanks she he
    they her his our my the our at bitte kontakt kontaktieren schreiben sie frau herr an unter
    mon ma notre contactez ecrivez madame monsieur mme mlle mi nuestra nuestro escriba escribe
    contacta contacte sra sr don dona email: mail: pingen and und et y or oder ou o""".split()
)


def addresses(text: str) -> list[tuple[re.Match[str], str]]:
    return [(m, m.group()) for m in _ADDRESS_RE.finditer(text)]


def name_near(text: str, found: re.Match[str]) -> str | None:
    """The referred person's name: the capitalised words just before the address ("Jane Doe
    <jane@acme.com>", "Jane Doe (jane@...)", "Jane at jane@..."), else from the address
    itself (jane.doe@ -> Jane Doe)."""
    line_start = text.rfind("\n", 0, found.start()) + 1
    before = _NAME_BEFORE_RE.search(text[line_start : found.start()])
    if before:
        words = [w for w in before.group(1).split() if fold(w) not in _NOT_NAMES]
        if words:
            return " ".join(words)
    local = found.group().split("@", 1)[0]
    parts = [p for p in re.split(r"[._-]+", local) if p.isalpha() and len(p) > 1]
    if 2 <= len(parts) <= 3:
        return " ".join(p.capitalize() for p in parts)
    return None


def name_after(text: str, position: int) -> str | None:
    found = _NAME_AFTER_RE.match(text, position)
    if not found:
        return None
    words = [w for w in found.group(1).split() if fold(w) not in _NOT_NAMES]
    return " ".join(words) or None
