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

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from dateparser.date import DateDataParser
from dateutil.easter import easter
from mailparser_reply.parser import EmailMessage

INTENTS = (
    "positive",
    "not_interested",
    "referral",
    "not_now",
    "wrong_person",
    "left_company",
    "unknown",
)
LANGUAGES = ("en", "de", "fr", "es")

_MAX_TEXT = 20_000  # a reply's new text is short; a pasted novel is read up to here
_SNIPPET = 160
_MAX_AHEAD = timedelta(days=731)


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
    received_at: datetime,
    *,
    sender: str | None = None,
    own_addresses: frozenset[str] = frozenset(),
) -> ReplyIntent:
    """The intent of one reply's body text (plain text; HTML already turned into text).
    `received_at` anchors relative dates; `sender` and `own_addresses` are never taken for
    a referral."""
    new = new_text(text)
    folded = fold(new)
    language = _language(folded)
    ignore = {a.lower() for a in own_addresses} | ({sender.lower()} if sender else set())
    named = [(m, a) for m, a in _addresses(new) if a.lower() not in ignore]
    referral_email = named[0][1].lower() if named else None
    referral_name = _name_near(new, named[0][0]) if named else None

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
    if found := _LEFT_COMPANY.search(folded):
        return result("left_company", found.group())
    pointer = _REFERRAL.search(folded)
    if pointer and referral_email:
        return result("referral", pointer.group())
    if found := _WRONG_PERSON.search(folded):
        return result("wrong_person", found.group())
    if found := _REFERRAL_NAMED.search(folded):
        if referral_name is None:
            referral_name = _name_after(new, found.end())
        return result("referral", found.group())
    deferral = _NOT_NOW_STRONG.search(folded)
    if deferral:
        return result("not_now", deferral.group(), _not_before(new, folded, language, received_at))
    if found := _NOT_INTERESTED.search(folded):
        return result("not_interested", found.group())
    if found := _NOT_NOW_WEAK.search(folded):
        return result("not_now", found.group(), _not_before(new, folded, language, received_at))
    if found := _POSITIVE.search(folded):
        return result("positive", found.group())
    return result("unknown", "")


# -- the new text ----------------------------------------------------------------------------

# mail-parser-reply's compiled patterns for our four languages: reply headers ("On ... wrote:",
# "Am ... schrieb", "Le ... a écrit", "El ... escribió", Outlook's From:/Von:/De: blocks) and
# signatures (closings, "--", "Sent from my iPhone", "Get Outlook for iOS").
_LIBRARY = EmailMessage(text="", languages=list(LANGUAGES), keep_hyphen_lists=True)
_HEADER_RE = _LIBRARY.HEADER_REGEX
_SIGNATURE_RE = _LIBRARY.SIGNATURE_REGEX
# Where the library's header pattern can match: its "wrote" lines and Outlook field names.
_HEADER_WORDS = ("wrote", "schrieb", "a \u00e9crit", "escribi\u00f3", "original message")
_HEADER_FIELD_RE = re.compile(
    r"^[>* ]*(?:from|sent|to|subject|date|cc|organization|von|gesendet|an|betreff|datum"
    r"|organisation|de|envoy\u00e9|\u00e0|objet|enviado|para|asunto|fecha|organizaci\u00f3n) ?:",
    re.IGNORECASE | re.MULTILINE,
)
# Footers and separators the library's lists do not have (German, French and Spanish mobile
# clients, forwarded-message lines).
_FOOTER_RE = re.compile(
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


def _language(folded: str) -> str:
    """English, German, French or Spanish, by common words (ties: the earlier one)."""
    words = _WORD_RE.findall(folded)
    scores = {lang: sum(1 for w in words if w in vocab) for lang, vocab in _LANGUAGE_SETS.items()}
    return max(LANGUAGES, key=lambda lang: (scores[lang], -LANGUAGES.index(lang)))


# -- cues ------------------------------------------------------------------------------------


def _cues(*phrases: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])(?:" + "|".join(phrases) + r")(?![\w])")


_LEFT_COMPANY = _cues(
    # en
    r"(?:i|i'm|i am|she|he|they|is|am|are|was) no longer (?:with|at|part of|employed|working)",
    r"no longer (?:works?|working|employed|with the company|at the company)",
    r"(?:i|she|he|they|i've|i have|she's|he's|has|have) (?:recently |just )?left (?:the company|the "
    r"business|the firm|the team|[a-z0-9&.-]+(?: [a-z0-9&.-]+)? (?:in|last|a few|at the end|earlier"
    r"|back|some))",
    r"(?:i've|i have|she has|he has|has|have) (?:recently |since )?left",
    r"(?:doesn't|does not|don't|do not) work (?:here|there|at [\w&.-]+) any ?more",
    r"not with (?:the company|[\w&.-]+) any ?more",
    r"(?:my|her|his|their) last day (?:at|with|was)",
    r"moved on from",
    r"left (?:the company|the business|the firm|our company|the organi[sz]ation|us)",
    r"(?:retired|has retired|have retired)",
    # de
    r"nicht mehr (?:bei|im unternehmen|in der firma|fur die|fur [\w&.-]+ tatig|tatig|beschaftigt"
    r"|angestellt|im hause)",
    r"(?:habe|hat|haben) (?:das unternehmen|die firma|[\w&.-]+) (?:\w+ )?verlassen",
    r"(?:arbeite|arbeitet) (?:seit [\w. ]{1,20} )?nicht mehr",
    r"(?:ist|bin) (?:aus dem unternehmen |bei uns )?ausgeschieden",
    r"(?:mein|ihr|sein) letzter arbeitstag",
    # fr
    r"ne (?:fait|fais|faisons) plus partie",
    r"ne (?:travaille|travailles|travaillons) plus",
    r"(?:a|ai) quitte (?:l'entreprise|la societe|la boite|le groupe|[\w&.-]+)",
    r"n'(?:est|suis) plus (?:chez|dans|avec|en poste|salarie)",
    r"(?:mon|son) dernier jour",
    # es
    r"ya no (?:trabaja|trabajo|esta|estoy|forma|formo|pertenece|pertenezco) (?:en|con|parte|a"
    r"|para)",
    r"(?:ha dejado|he dejado|dejo|deje) (?:la empresa|la compania|(?:[\w&.-]+ ){1,3}(?:el|hace|en"
    r"|a finales|este|a principios))",
    r"(?:mi|su) ultimo dia",
)
_WRONG_PERSON = _cues(
    # en
    r"(?:not|wrong|isn't|is not|am not|i'm not) (?:really )?the (?:right|correct|best|appropriate"
    r"|relevant) (?:person|contact|one|people)",
    r"(?:the )?wrong (?:person|contact|guy|team|department)",
    r"(?:i'm|i am) not (?:responsible|in charge|involved|the decision maker|the one who"
    r"|the person who)",
    r"(?:not|isn't|is not) (?:my|in my) (?:area|department|responsibility|role|remit|wheelhouse"
    r"|call|decision)",
    r"(?:i|we) (?:don't|do not) (?:handle|deal with|work on|look after|own|manage|make) "
    r"(?:this|that|these|those|purchasing|procurement|tooling|such|vendor|the)",
    r"(?:outside|out of) (?:of )?my (?:remit|scope|area|role)",
    r"(?:i have|i've) nothing to do with",
    r"(?:i|we) (?:don't|do not) (?:make|take|own) (?:the |any )?(?:decisions?|call)",
    r"nichts (?:damit |mit (?:dem|diesem) (?:thema|bereich) )?zu tun",
    r"no (?:tomo|tengo) (?:las |ninguna )?(?:decisiones|decision)",
    # de
    r"nicht (?:der|die) (?:richtige|passende|korrekte|zustandige)(?:n)? "
    r"(?:ansprechpartner|ansprechpartnerin|person|kontakt|adresse)",
    r"falsche(?:r|n)? (?:ansprechpartner|ansprechpartnerin|person|kontakt|adresse)",
    r"(?:bin|sind) (?:dafur |hierfur |da )?(?:leider )?nicht zustandig",
    r"nicht (?:mein|in meinem) (?:bereich|thema|zustandigkeitsbereich|ressort)",
    r"dafur bin ich (?:leider )?nicht",
    # fr
    r"(?:pas|plus) (?:la|le) (?:bonne|bon) (?:personne|interlocuteur|interlocutrice|contact)",
    r"ne suis pas (?:la personne|le responsable|la responsable|en charge|concerne|decisionnaire)",
    r"ne (?:m'occupe|gere|traite) pas",
    r"(?:pas|ne releve pas) (?:de mon ressort|de mon domaine|mon domaine|de mon perimetre)",
    r"mauvais(?:e)? (?:personne|interlocuteur|interlocutrice|contact)",
    # es
    r"no soy (?:la persona|el contacto) (?:adecuad[ao]|indicad[ao]|correct[ao]|apropiad[ao])",
    r"(?:persona|contacto) equivocad[ao]",
    r"no (?:me encargo|llevo|gestiono|me ocupo) (?:de|del|este|esto|eso|esa|ese|los|las|temas)",
    r"no es (?:mi|de mi) (?:area|departamento|responsabilidad|competencia)",
    r"no soy (?:el|la) (?:responsable|encargad[ao]|que decide)",
    r"no soy quien",
)
# A pointer to someone else; with their address in the text it makes a referral.
_REFERRAL = _cues(
    # en
    r"(?:reach out|talk|speak|get in touch|connect|chat|follow up|touch base) (?:directly )?(?:to"
    r"|with)",
    r"(?:please |best to |better to |you should |try |you can |you could )?(?:contact|email|e-mail"
    r"|ping|write to|try)",
    r"(?:cc'?ing|cc'?d|cc:|copied|copying|looping in|looped in|adding|forwarding|forwarded)",
    r"(?:my|our) (?:colleague|coworker|co-worker|boss|manager|head of|cto|ceo|cfo|vp|director)",
    r"(?:she|he|they)(?:'s| is| are| handles| owns| manages| runs| leads| would be| will be| can)",
    r"(?:right|best|better) (?:person|contact|fit|one)",
    r"(?:handles|owns|manages|in charge of|responsible for|looks after)",
    # de
    r"wenden sie sich",
    r"(?:kontaktieren|schreiben|fragen) sie",
    r"(?:melden|wenden) sie sich (?:bitte |gerne )?(?:bei|an)",
    r"(?:mein|meine|unser|unsere) (?:kollege|kollegin|chef|chefin|leiter|leiterin)",
    r"(?:ansprechpartner|ansprechpartnerin|zustandig) (?:ist|ware|dafur|hierfur)",
    r"(?:in kopie|in cc|cc gesetzt|weitergeleitet)",
    r"(?:sprechen|reden) sie (?:mit|bitte mit)",
    # fr
    r"(?:contactez|contacter|ecrivez a|ecrire a|adressez-vous a|voyez avec|voir avec|rapprochez-vous"
    r"|joindre|joignez)",
    r"(?:mon|ma|notre) (?:collegue|collaborateur|collaboratrice|responsable|directeur|directrice)",
    r"(?:en copie|je mets|j'ai mis|je transfere|j'ai transfere)",
    r"(?:s'occupe|gere|est en charge|est responsable|s'en occupe)",
    r"(?:bon|bonne) (?:interlocuteur|interlocutrice|personne) (?:est|serait)",
    # es
    r"(?:contacta|contacte|contactar|contactad|escribe a|escriba a|escribir a|habla con|hable con"
    r"|hablar con|dirijase a|dirigete a|ponte en contacto|pongase en contacto)",
    r"(?:mi|nuestra|nuestro) (?:companer[oa]|colega|responsable|jef[ea]|director[a]?)",
    r"(?:en copia|te copio|le copio|pongo en copia|copio a|reenvio|he reenviado)",
    r"(?:se encarga|lleva|gestiona|es responsable|es quien)",
)
# A referral to a named colleague without an address ("talk to my colleague Jane").
_REFERRAL_NAMED = _cues(
    r"(?:talk|speak|reach out|check) (?:to|with) (?:my|our) (?:colleague|coworker|boss|manager|head of \w+|cto"
    r"|ceo|cfo|vp of \w+)",
    r"(?:my|our) (?:colleague|coworker) [a-z]+ (?:handles|owns|manages|runs|looks after|is "
    r"(?:responsible|in charge|the right))",
    r"wenden sie sich (?:bitte |gerne )?an (?:meine|meinen|unsere|unseren) (?:kollegin|kollegen)",
    r"(?:sprechen|reden) sie (?:bitte |gerne )?mit (?:meinem|meiner|unserem|unserer) (?:kollegen"
    r"|kollegin|chef|chefin)",
    r"(?:contactez|voyez avec|voir avec) (?:plutot )?(?:mon|ma|notre) (?:collegue|responsable)",
    r"(?:habla|hable|hablar) con (?:mi|nuestra|nuestro) (?:companer[oa]|colega|responsable)",
)

_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
    r"|januar|janner|februar|marz|mai|juni|juli|oktober|dezember"
    r"|janvier|fevrier|mars|avril|juin|juillet|aout|septembre|octobre|novembre|decembre"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre"
    r"|diciembre"
)
_EVENTS = (
    r"easter|ostern|paques|semana santa|summer|sommer|sommerferien|sommerpause|l'ete|ete|verano"
    r"|vacaciones|autumn|fall|herbst|automne|otono|la rentree|rentree|the new year|new year"
    r"|neujahr|jahreswechsel|nouvel an|ano nuevo|christmas|weihnachten|noel|navidad|the holidays"
    r"|our (?:launch|migration|reorg|audit|funding round|board meeting|budget)"
)
_NOT_NOW_STRONG = _cues(
    # en
    r"(?:reach|circle|check|come|get|touch|loop|ping|follow|revisit|reconnect|try|contact|email"
    r"|write)(?: (?:me|us|back|base|up|out|again|this|it|in touch|with me|with us)){0,3}"
    r" (?:in|after|next|around|closer to|early|later|once|towards|toward|at the end of|from|by"
    r"|mid|end of|the week of|again in|again after)",
    r"circle back",
    r"(?:maybe|perhaps|possibly|probably|try again|ask again|ask me|check back) (?:later|next|in|"
    r"after|again)",
    r"later (?:this|in the|next) (?:year|quarter|month|spring|summer|fall|autumn)",
    r"(?:next|following|coming) (?:quarter|year|fiscal|financial year|month|budget cycle|fy)",
    r"q[1-4](?: ?(?:20)?\d\d)?",
    r"(?:first|second|third|fourth|1st|2nd|3rd|4th|last) quarter",
    r"h[12] (?:20)?\d\d",
    r"(?:after|until|past|once) (?:the |our )?(?:" + _EVENTS + r"|" + _MONTHS + r")",
    r"(?:in|from|around|early|mid|late|end of|start of|beginning of) (?:" + _MONTHS + r")",
    r"in (?:a|one|two|three|four|five|six|a few|a couple of|\d+|several) (?:weeks|months|years)",
    r"(?:not|nothing) (?:before|until)",
    r"pas avant",
    r"nicht vor",
    r"no antes de",
    r"(?:revisit|reconsider|look at) (?:this|it) (?:in|after|next|later)",
    r"(?:keep|stay) in touch",
    # de
    r"(?:im|in|ab|nach|zum|bis zum|bis|anfang|mitte|ende) (?:dem |den |der )?(?:nachsten|kommenden"
    r"|neuen) (?:quartal|jahr|monat|geschaftsjahr|jahres)",
    r"(?:nachstes|kommendes|im neuen) (?:jahr|quartal|geschaftsjahr)",
    r"(?:nachsten|kommenden) (?:monat|quartal|herbst|sommer|fruhling|fruhjahr)",
    r"(?:im|ab dem|nach dem) (?:ersten|zweiten|dritten|vierten|[1-4]\.) quartal",
    r"zu einem spateren zeitpunkt",
    r"erst (?:im|in|ab|nach|zum|wieder|nachstes|nachsten|kommendes)",
    r"(?:spater|nochmals|nochmal|noch einmal|erneut|wieder) (?:im|in|nach|ab|melden|kontaktieren"
    r"|auf mich|auf uns|zuruck|ansprechen)",
    r"(?:melden|kommen) sie (?:sich )?(?:gerne |bitte |doch )?(?:nochmal|noch einmal|wieder|erneut"
    r"|im|nach|in|ab|spater)",
    r"(?:nach|bis nach|ab|vor) (?:" + _EVENTS + r"|dem sommer|den sommerferien|der sommerpause"
    r"|der messe|dem umzug|dem launch|den feiertagen|(?:dem |den )?\d{1,2}\.(?:\d{1,2}\.?)?)",
    r"(?:im|ab|nach|anfang|mitte|ende) (?:" + _MONTHS + r")",
    r"in (?:ein paar|einigen|einem|einer|zwei|drei|vier|sechs|\d+) (?:wochen|monaten|monat|woche"
    r"|jahr)",
    # fr
    r"plus tard",
    r"(?:a|apres|des|pour) la rentree",
    r"(?:en )?(?:reparler|reparlerons|reparlons|reparle|rediscuter|rediscuterons)",
    r"(?:l'annee|le mois|le trimestre|l'exercice) (?:prochain|prochaine)",
    r"(?:prochain|prochaine) (?:trimestre|annee|exercice|mois)",
    r"(?:recontactez|relancez|revenez vers|recontacter|relancer|revenir vers|reprendre contact|"
    r"reparler|recontacte)(?:-moi|-nous| moi| nous)?",
    r"(?:au|d'ici le|des le|a partir du|apres le) (?:premier|deuxieme|second|troisieme|quatrieme|1er"
    r"|2e|3e|4e|dernier) trimestre",
    r"(?:apres|a partir de|des|d'ici|avant) (?:le |la |l'|les )?(?:" + _EVENTS + r"|vacances|"
    + _MONTHS + r"|\d{1,2})",
    r"(?:en|courant|debut|mi-|mi |fin) (?:" + _MONTHS + r")",
    r"dans (?:un|une|deux|trois|quatre|six|quelques|\d+) (?:semaines|mois|ans|an)",
    # es
    r"mas adelante",
    r"(?:el|al) (?:proximo|siguiente) (?:trimestre|ano|mes|ejercicio)",
    r"(?:el|al) (?:ano|mes|trimestre) (?:que viene|proximo|siguiente)",
    r"(?:vuelve|vuelva|volver|contacta|contacte|contactame|contacteme|escribe|escriba|escribeme"
    r"|escribame|retomar|retomemos|hablemos)(?: a)?(?: (?:a )?(?:contactar|escribir|hablar|ponerte"
    r"|ponerse))?(?:me|nos)? (?:en|despues|a partir|dentro|mas adelante|de nuevo|hacia|a finales"
    r"|a principios|a mediados)",
    r"(?:en el|el|para el|a partir del) (?:primer|segundo|tercer|cuarto|ultimo) trimestre",
    r"(?:despues|a partir|antes) (?:de|del) (?:la |el |los |las )?(?:" + _EVENTS + r"|" + _MONTHS
    + r"|\d{1,2})",
    r"(?:en|a principios de|a mediados de|a finales de|principios de|mediados de|finales de) (?:"
    + _MONTHS + r")",
    r"dentro de (?:un|una|unos|unas|dos|tres|cuatro|seis|\d+) (?:semanas|meses|ano)",
    r"en (?:un|una|unos|unas|dos|tres|cuatro|seis|\d+) (?:semanas|meses)",
)
_NOT_INTERESTED = _cues(
    # en
    r"not (?:really |at all |currently |actually )?interested",
    r"no (?:real )?interest",
    r"no,? thanks?",
    r"no,? thank you",
    r"not (?:a |the )?(?:good |right )?fit",
    r"not for (?:us|me)",
    r"(?:we're|we are|i'm|i am) (?:happy|all set|good|covered|set|satisfied|fine) with",
    r"(?:we|i) (?:already|currently) (?:use|have|work with|signed|partner|run|rely on|pay for)",
    r"already (?:using|have a|signed|working with|partnered|invested)",
    r"(?:please )?(?:don't|do not|stop) (?:contact|email|e-mail|reach|message|bother|write)",
    r"take (?:me|us) off",
    r"not (?:looking|in the market|something we need|needed|a priority for us)",
    r"(?:we'll|we will|i'll|i will|going to) pass",
    r"(?:signed|went|gone|going|decided to go) with (?:a|another|one of your) (?:competitor|vendor"
    r"|provider|solution)",
    r"so no",
    r"(?:we|i) (?:don't|do not) need",
    r"no need for",
    r"(?:we're|we are) not (?:going to|looking|buying|in the market)",
    r"(?:i'll|we'll|i will|we will) (?:have to )?(?:decline|pass)",
    r"(?:have|has) no (?:need|use|budget)",
    # de
    r"kein(?:e|en)? (?:interesse|bedarf)",
    r"nicht interessiert",
    r"nein,? danke",
    r"(?:brauchen|benotigen) (?:wir |ich )?(?:das |so etwas |sowas |derzeit |aktuell )?(?:nicht"
    r"|keine|kein)",
    r"(?:sind|bin) (?:bereits |schon )?(?:gut )?(?:versorgt|zufrieden|aufgestellt)",
    r"(?:gut|bestens|bereits|schon) (?:versorgt|aufgestellt)",
    r"(?:wollen|mochten|werden) (?:nicht|keinen?) (?:wechseln|anbieter wechseln|wechsel)",
    r"(?:haben|nutzen|verwenden|arbeiten) (?:bereits|schon)",
    r"(?:bitte )?(?:kontaktieren|schreiben) sie (?:mich|uns) nicht",
    r"bitte (?:keine (?:weiteren )?(?:e-mails|mails|nachrichten)|nicht mehr (?:kontaktieren"
    r"|schreiben|anschreiben))",
    r"kein thema fur uns",
    r"(?:wir )?verzichten",
    r"(?:streichen|loschen|entfernen) sie (?:mich|uns|meine adresse)",
    r"(?:ist|sind) (?:das |fur uns |hier )*nicht relevant",
    r"passt (?:das |leider |einfach |uberhaupt )*nicht",
    # fr
    r"(?:pas|plus) interesse(?:s|e|es)?",
    r"(?:pas|aucun) (?:d')?interet",
    r"non,? merci",
    r"(?:ne|n') (?:m'|nous )?interesse pas",
    r"(?:avons|ai|disposons|utilisons|travaillons) (?:deja|avec un)",
    r"(?:n'avons|n'ai) pas besoin",
    r"pas besoin",
    r"ne (?:me|nous) (?:contactez|recontactez|sollicitez|ecrivez) plus",
    r"pas pour nous",
    r"(?:je|nous) (?:decline|declinons)",
    r"(?:retirer|retirez|supprimer|supprimez|enlever|enlevez) (?:mon adresse|moi|mon contact|nous)",
    r"(?:nous ne sommes|je ne suis) pas (?:a la recherche|preneur|preneurs)",
    # es
    r"no (?:me|nos) interesa",
    r"no (?:estoy|estamos) interesad[oa]s?",
    r"no,? gracias",
    r"ya (?:tenemos|usamos|utilizamos|contamos|trabajamos|disponemos)",
    r"no (?:lo |la )?necesitamos",
    r"no (?:me|nos) (?:contacte|contactes|escriba|escribas|vuelva|vuelvas)",
    r"sin interes",
    r"(?:eliminenme|elimineme|eliminame|eliminadme|borrenme|borreme|borrame|quitenme|quiteme"
    r"|sacadme|sacame) (?:de|del)",
    r"no es para nosotros",
    r"no (?:estamos|estoy) buscando",
)
_NOT_NOW_WEAK = _cues(
    # en
    r"not (?:right )?now",
    r"not at (?:the|this) (?:moment|time|point|stage)",
    r"not (?:a )?(?:priority|the right time|a good time|the best time)",
    r"(?:bad|poor|wrong) timing",
    r"timing (?:isn't|is not|is) (?:right|great|ideal|off|bad)",
    r"(?:too )?(?:busy|swamped|slammed) (?:right now|at the moment|this|with|until|for)",
    r"(?:no|zero) (?:budget|bandwidth|capacity) (?:this|right now|at the moment|for now|until|left)",
    r"budget (?:is )?(?:frozen|freeze|locked|spent)",
    r"(?:maybe|perhaps) later",
    r"down the (?:road|line)",
    r"not yet",
    # de
    r"(?:aktuell|derzeit|momentan|im moment|gerade|zurzeit|zur zeit) (?:leider )?(?:nicht|kein"
    r"|keine|schlecht|ungunstig|zu viel)",
    r"(?:zeitpunkt|timing) (?:ist )?(?:leider )?(?:ungunstig|schlecht|nicht passend|passt nicht)",
    r"(?:gerade|aktuell) (?:keine|kein) (?:zeit|kapazitat|budget)",
    r"spater",
    # fr
    r"pas (?:pour )?(?:le moment|l'instant|maintenant|tout de suite)",
    r"pas le bon moment",
    r"(?:mauvais|pas le bon) timing",
    r"(?:actuellement|en ce moment) (?:pas|trop|aucun)",
    # es
    r"(?:ahora|en este momento|por ahora|de momento|ahora mismo|por el momento) no",
    r"no es (?:un |el )?(?:buen|mejor) momento",
    r"no (?:en este momento|por ahora|de momento|ahora)",
)
_POSITIVE = _cues(
    # en
    r"interested",
    r"sounds (?:good|great|interesting|promising|like a plan|fine|perfect)",
    r"(?:let's|lets|let us) (?:talk|chat|connect|set up|schedule|do it|find|book|meet|hop|jump|get"
    r"|discuss|set|go)",
    r"(?:happy|glad|open|keen|love|would love|i'd love|i'd like|i would like|want|like) to (?:chat"
    r"|talk|connect|learn|hear|meet|see|take a look|jump|hop|discuss|explore|try|get)",
    r"(?:book|schedule|set up|grab|find|arrange) (?:a|some|time|a time|the) ?(?:call|time|meeting"
    r"|demo|chat|slot)?",
    r"(?:send|share|forward) (?:me |us |over )?(?:more|some|the|a|your) (?:info|information"
    r"|details|pricing|deck|case stud|one-pager|overview|brochure|link)",
    r"(?:how much|what (?:does|do|would) .{1,30} cost|pricing)",
    r"(?:are you|you) (?:free|available)",
    r"(?:what|which) (?:time|times|day|days|slots) (?:work|suit|are good)",
    r"calendar (?:link|invite)",
    r"tell me more",
    r"(?:works|work) for (?:me|us)",
    r"count (?:me|us) in",
    r"(?:yes|yeah|yep|sure|absolutely|definitely|of course)(?: please)?[,.! ]",
    r"demo",
    r"curious",
    r"(?:monday|tuesday|wednesday|thursday|friday|tomorrow|today)(?: morning| afternoon)? (?:at|works"
    r"|after|before|between|around) ?\d",
    r"(?:can|could|shall) we (?:find|grab|set up|schedule|meet|talk|chat|hop on|jump on|book)",
    r"(?:could|can|shall) (?:you|we) do (?:monday|tuesday|wednesday|thursday|friday|tomorrow)",
    r"worth a (?:chat|call|look|conversation)",
    # de
    r"(?:klingt|hort sich|liest sich) (?:sehr )?(?:gut|interessant|spannend|vielversprechend)",
    r"gerne",
    r"(?:bin|sind) (?:sehr )?interessiert",
    r"interesse (?:haben wir|habe ich|ist da|an einem|an|besteht)",
    r"(?:lassen sie uns|lass uns|konnen wir) (?:gerne )?(?:sprechen|telefonieren|reden|austauschen"
    r"|einen termin)",
    r"termin",
    r"(?:schicken|senden) sie (?:mir|uns) (?:gerne |bitte )?(?:mehr|weitere|unterlagen|infos"
    r"|informationen|details|ein angebot)",
    r"(?:wann|welche zeit|welcher tag) (?:passt|haben sie|hatten sie)",
    r"telefonat",
    r"(?:konnen|konnten|wurden) sie (?:mir|uns) .{0,40}(?:schicken|senden|zusenden|zukommen lassen)",
    r"(?:das )?passt (?:sehr |ganz )?gut",
    r"(?:montag|dienstag|mittwoch|donnerstag|freitag|morgen) (?:um|ab|zwischen|gegen|vormittag"
    r"|nachmittag)",
    r"(?:ja|klar|selbstverstandlich)[,.! ]",
    # fr
    r"(?:ca|cela) (?:m'interesse|nous interesse|a l'air|me parle)",
    r"(?:m'interesse|nous interesse)",
    r"interesse(?:s|e|es)? par",
    r"(?:je suis|nous sommes) (?:interesse|partant|curieux|ouvert)",
    r"volontiers",
    r"avec plaisir",
    r"(?:envoyez|envoyer|transmettez)(?:-moi|-nous| moi| nous)? (?:plus|des|de la|la|votre|une)",
    r"(?:appel|rendez-vous|rdv|reunion|visio|echange|creneau|creneaux)",
    r"(?:quand|quelles) (?:etes-vous|disponibilites|sont vos)",
    r"pourquoi pas",
    r"interessant",
    r"(?:lundi|mardi|mercredi|jeudi|vendredi|demain) (?:a|vers|entre|matin|apres-midi) ?\d",
    r"(?:oui|d'accord|bien sur)[,.! ]",
    # es
    r"(?:me|nos) interesa",
    r"(?:estoy|estamos) interesad",
    r"(?:me|nos) parece (?:muy )?(?:interesante|bien|buena idea)",
    r"(?:podemos|podriamos|puedes|podrias) (?:hablar|vernos|llamarnos|quedar|agendar|tener)",
    r"cuentame mas",
    r"suena (?:bien|interesante|genial|muy bien)",
    r"(?:claro|por supuesto|con gusto|encantad[oa]|perfecto)",
    r"(?:hablemos|llamada|reunion|videollamada|cita|agendar|agendemos)",
    r"(?:envia|envie|envieme|enviame|mandame|mandeme|manda|mande)(?:nos)? (?:mas|informacion|info"
    r"|detalles|la propuesta|precios)",
    r"(?:cuando|que dia|que hora) (?:te|le|os) (?:viene|va|vendria|iria)",
    r"(?:si|vale)[,.! ]",
    r"(?:el )?(?:lunes|martes|miercoles|jueves|viernes|manana) (?:a las|sobre las|por la|entre)",
)


# -- referral addresses and names --------------------------------------------------------------

_ADDRESS_RE = re.compile(r"(?<![\w.+-])[\w.+'-]+@[\w-]+(?:\.[\w-]+)+(?<!\.)")
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][\w'’-]+"
_NAME_BEFORE_RE = re.compile(
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


def _addresses(text: str) -> list[tuple[re.Match[str], str]]:
    return [(m, m.group()) for m in _ADDRESS_RE.finditer(text)]


def _name_near(text: str, found: re.Match[str]) -> str | None:
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


def _name_after(text: str, position: int) -> str | None:
    found = _NAME_AFTER_RE.match(text, position)
    if not found:
        return None
    words = [w for w in found.group(1).split() if fold(w) not in _NOT_NAMES]
    return " ".join(words) or None


# -- not-now dates ---------------------------------------------------------------------------

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "a couple of": 2, "a few": 3, "several": 3,
    "ein": 1, "einem": 1, "einer": 1, "zwei": 2, "drei": 3, "vier": 4, "sechs": 6,
    "ein paar": 3, "einigen": 3,
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "quelques": 3,
    "uno": 1, "una": 1, "unos": 3, "unas": 3, "dos": 2, "tres": 3, "cuatro": 4, "seis": 6,
}  # fmt: skip
_UNITS = {
    "week": "weeks", "weeks": "weeks", "woche": "weeks", "wochen": "weeks",
    "semaine": "weeks", "semaines": "weeks", "semana": "weeks", "semanas": "weeks",
    "month": "months", "months": "months", "monat": "months", "monaten": "months",
    "mois": "months", "mes": "months", "meses": "months",
    "year": "years", "years": "years", "jahr": "years", "jahren": "years", "an": "years",
    "ans": "years", "ano": "years", "anos": "years",
}  # fmt: skip
_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "ersten": 1, "zweiten": 2, "dritten": 3, "vierten": 4, "1.": 1, "2.": 2, "3.": 3, "4.": 4,
    "premier": 1, "1er": 1, "deuxieme": 2, "2e": 2, "troisieme": 3, "3e": 3, "quatrieme": 4,
    "4e": 4, "primer": 1, "segundo": 2, "tercer": 3, "cuarto": 4,
}  # fmt: skip

# "after March": from April 1; "from March" (ab, a partir de, dès): from March 1
_AFTER_WORDS = ("after", "past", "once", "nach", "bis nach", "apres", "despues de", "despues del")
_FROM_WORDS = ("from", "starting", "not before", "ab", "nicht vor", "a partir de", "a partir du",
               "a partir del", "des", "pas avant", "no antes de", "until", "bis", "jusqu'a",
               "jusqu'au", "hasta", "hasta el")
_AFTER = "(?:" + "|".join(sorted((re.escape(w) for w in _AFTER_WORDS + _FROM_WORDS), key=len,
                               reverse=True)) + ")"
_RELATIVE_RE = re.compile(
    r"(?<![\w])(?:in|within|dans|en|dentro de|d'ici) (" + "|".join(
        sorted((re.escape(k) for k in _NUMBER_WORDS), key=len, reverse=True)
    ) + r"|\d{1,2}) (" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")(?![\w])"
)
_QUARTER_RE = re.compile(
    r"(?<![\w])(?:(" + _AFTER + r") )?(?:(?:the |im |au |el |en el |le )?(?:q([1-4])(?: ?'?((?:20)?\d\d))?"
    r"|(" + "|".join(re.escape(k) for k in sorted(_ORDINALS, key=len, reverse=True))
    + r") (?:quarter|quartal|trimestre)))(?![\w])"
)
_NEXT_QUARTER_RE = re.compile(
    r"(?<![\w])(?:next|following|coming|nachsten|kommenden|prochain|proximo|siguiente) "
    r"(?:quarter|quartal|trimestre)|trimestre (?:prochain|que viene)"
)
_NEXT_YEAR_RE = re.compile(
    r"(?<![\w])(?:next year|next fiscal|next financial year|in the new year|(?:nachstes|kommendes"
    r"|nachsten|kommenden|neuen) jahr|l'annee prochaine|(?:l'an|l'exercice) prochain|el (?:ano|"
    r"ejercicio) (?:que viene|proximo|siguiente)|el proximo ano|(?:after|nach|apres|despues de) "
    r"(?:the )?(?:new year|neujahr|dem jahreswechsel|jahreswechsel|nouvel an|ano nuevo))(?![\w])"
)
_SEASONS = {
    # folded word -> (month, day) the season starts; "after" it: the month it ends in + 1
    "easter": None, "ostern": None, "paques": None, "semana santa": None,
    "summer": (6, 21), "sommer": (6, 21), "sommerferien": (6, 21), "sommerpause": (6, 21),
    "l'ete": (6, 21), "ete": (6, 21), "verano": (6, 21),
    "autumn": (9, 22), "fall": (9, 22), "herbst": (9, 22), "automne": (9, 22),
    "otono": (9, 22), "rentree": (9, 1), "la rentree": (9, 1),
    "christmas": (12, 24), "weihnachten": (12, 24), "noel": (12, 24), "navidad": (12, 24),
}  # fmt: skip
_SEASON_ENDS = {(6, 21): (9, 1), (9, 22): (12, 1), (9, 1): (10, 1), (12, 24): (1, 7)}
_SEASON_RE = re.compile(
    r"(?<![\w])(" + _AFTER + r"|in|im|en|au|a|this|diesen|cet|este|during|wahrend|pendant|durante"
    r"|around|um|vers|hacia|next|nachsten|kommenden|prochain|proximo) (?:the |dem |den |der |le "
    r"|la |les |el |los |l')?(" + "|".join(
        re.escape(k) for k in sorted(_SEASONS, key=len, reverse=True)) + r")(?![\w])"
)
_MODIFIERS = {
    "early": 1, "beginning of": 1, "start of": 1, "anfang": 1, "debut": 1, "a principios de": 1,
    "principios de": 1, "mid": 15, "mid-": 15, "mitte": 15, "mi-": 15, "mi": 15,
    "a mediados de": 15, "mediados de": 15, "end of": 25, "late": 25, "the end of": 25,
    "ende": 25, "fin": 25, "a finales de": 25, "finales de": 25,
}  # fmt: skip
_DATE_PHRASE_RE = re.compile(
    r"(?<![\w])(?:(" + _AFTER + r"|on|am|le|el|around|in|im|en|courant|the week of|la semaine du"
    r"|la semana del) )?(?:(?:the|le|el|dem|den) )?(?:(?:month of|mois d'|mois de|mes de|monat) )?(?:("
    + "|".join(sorted((re.escape(k) for k in _MODIFIERS), key=len, reverse=True))
    + r") ?)?((\d{1,2}(?:st|nd|rd|th|er|\.)? (?:de )?)?(" + _MONTHS + r")\.?( \d{1,2}"
    r"(?:st|nd|rd|th)?)?(?:,? (?:20\d\d))?)(?![\w])"
)
# month words that are also ordinary words, read as a month only with a day or a preposition
_AMBIGUOUS_MONTHS = frozenset("may mar jan jun jul aug sep oct nov dec feb apr mai".split())
_NUMERIC_RE = re.compile(
    r"(?<![\w/.])(?:(" + _AFTER + r") (?:the |dem |den |le |el )?)?(\d{1,2})[./](\d{1,2})(?:[./]((?:20)?\d\d))?\.?(?![\w/])"
)
_DATE_ORDER = {"en": "MDY", "de": "DMY", "fr": "DMY", "es": "DMY"}


def _not_before(text: str, folded: str, language: str, received_at: datetime) -> date | None:
    """The first day the contact wants to hear from us again, read from the reply."""
    day = received_at.date()
    for reader in (_quarter, _next_year, _next, _season, _relative, _phrase, _numeric):
        found = reader(text, folded, language, day)
        if found is not None:
            return found if day < found <= day + _MAX_AHEAD else None
    return None


def _quarter(text: str, folded: str, language: str, day: date) -> date | None:
    if _NEXT_QUARTER_RE.search(folded):
        return _quarter_start(day.year, (day.month - 1) // 3 + 2)
    found = _QUARTER_RE.search(folded)
    if not found:
        return None
    quarter = int(found.group(2)) if found.group(2) else _ORDINALS[found.group(4)]
    if found.group(1) and found.group(1).strip() in _AFTER_WORDS:
        quarter += 1  # after Q3: from the start of Q4
    year_text = found.group(3)
    if year_text:
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        return _quarter_start(year, quarter)
    start = _quarter_start(day.year, quarter)
    return start if start > day else _quarter_start(day.year + 1, quarter)


def _quarter_start(year: int, quarter: int) -> date:
    year += (quarter - 1) // 4
    return date(year, (quarter - 1) % 4 * 3 + 1, 1)


_NEXT_RE = re.compile(
    r"(?<![\w])(?:next (?:month|week)|(?:nachsten|kommenden) (?:monat|woche)|nachste woche"
    r"|(?:le mois|la semaine) prochain(?:e)?|(?:le |la )?(?:mois|semaine) (?:prochain|prochaine)"
    r"|(?:el )?(?:proximo|siguiente) mes|(?:el )?mes que viene|la (?:proxima|siguiente) semana"
    r"|la semana que viene)(?![\w])"
)


def _next(text: str, folded: str, language: str, day: date) -> date | None:
    """ "next month", "nächsten Monat", "le mois prochain": the 1st of next month; "next
    week": a week from the reply."""
    found = _NEXT_RE.search(folded)
    if not found:
        return None
    if any(w in found.group() for w in ("week", "woche", "semaine", "semana")):
        return day + timedelta(weeks=1)
    return _after(day, "month")


def _next_year(text: str, folded: str, language: str, day: date) -> date | None:
    if _NEXT_YEAR_RE.search(folded):
        return date(day.year + 1, 1, 1)
    return None


def _season(text: str, folded: str, language: str, day: date) -> date | None:
    found = _SEASON_RE.search(folded)
    if not found:
        return None
    after = found.group(1) in _AFTER_WORDS
    start = _SEASONS[found.group(2)]
    for year in (day.year, day.year + 1):
        if start is None:  # Easter: from the Tuesday after Easter Monday
            when = easter(year) + timedelta(days=2)
        elif after:
            month, first = _SEASON_ENDS[start]
            when = date(year + (1 if month < start[0] else 0), month, first)
        else:
            when = date(year, *start)
        if when > day:
            return when
    return None


def _relative(text: str, folded: str, language: str, day: date) -> date | None:
    found = _RELATIVE_RE.search(folded)
    if not found:
        return None
    count = int(found.group(1)) if found.group(1).isdigit() else _NUMBER_WORDS[found.group(1)]
    unit = _UNITS[found.group(2)]
    if unit == "weeks":
        return day + timedelta(weeks=count)
    months = day.month - 1 + count * (12 if unit == "years" else 1)
    year, month = day.year + months // 12, months % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _phrase(text: str, folded: str, language: str, day: date) -> date | None:
    """A month, with or without a day ("after March 15", "im September", "fin avril", "el 15
    de mayo"), read by dateparser in the reply's language."""
    for found in _DATE_PHRASE_RE.finditer(folded):
        prefix, modifier, _, day_before, month, day_after = found.groups()
        if month in _AMBIGUOUS_MONTHS and not (prefix or modifier or day_before or day_after):
            continue
        start, end = found.span(3)
        words = text[start:end] if len(text) == len(folded) else found.group(3)
        parsed = _read_date(words.rstrip(".").lower(), language)
        if parsed is None:
            continue
        month, dom, year, period = parsed
        if modifier and period == "month":
            dom = _MODIFIERS[modifier]
        when = _make(year or day.year, month, dom)
        if prefix in _AFTER_WORDS:
            when = _after(when, period)
        if year is None and when <= day:
            when = _add_year(when)
        return when
    return None


def _numeric(text: str, folded: str, language: str, day: date) -> date | None:
    """"after 15.04.", "nach dem 15.4.", "after 4/15": day and month in the language's order."""
    for found in _NUMERIC_RE.finditer(folded):
        first, second = int(found.group(2)), int(found.group(3))
        month, dom = (first, second) if language == "en" else (second, first)
        year = found.group(4)
        try:
            when = date(
                int(year) + (2000 if len(year) == 2 else 0) if year else day.year, month, dom
            )
        except ValueError:
            continue
        if not year and when <= day:
            when = _add_year(when)
        if found.group(1) in _AFTER_WORDS:
            when += timedelta(days=1)
        return when
    return None


def _after(when: date, period: str) -> date:
    if period == "month":
        year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
        return date(year, month, 1)
    return when + timedelta(days=1)


def _add_year(when: date) -> date:
    try:
        return when.replace(year=when.year + 1)
    except ValueError:  # 29 February
        return when.replace(year=when.year + 1, day=28)


def _make(year: int, month: int, dom: int) -> date:
    return date(year, month, min(dom, calendar.monthrange(year, month)[1]))


_YEAR_RE = re.compile(r"(?<!\d)20\d\d(?!\d)")
_FIXED_BASE = datetime(2001, 1, 1)  # not a leap year: any day-month reads


@lru_cache(maxsize=4096)
def _read_date(words: str, language: str) -> tuple[int, int, int | None, str] | None:
    """(month, day, year named or None, period) as dateparser reads `words`, the reply's
    language first (a short reply's language can be a wrong guess). The same words read the
    same whatever the day, so readings are cached."""
    for each in (language, *(other for other in LANGUAGES if other != language)):
        parsed = _date_parser(each).get_date_data(words)
        if parsed is not None and parsed.date_obj is not None:
            year = _YEAR_RE.search(words)
            when = parsed.date_obj
            return when.month, when.day, int(year.group()) if year else None, parsed.period or "day"
    return None


@lru_cache(maxsize=8)
def _date_parser(language: str) -> DateDataParser:
    return DateDataParser(
        languages=[language],
        settings={
            "RELATIVE_BASE": _FIXED_BASE,
            "PREFER_DAY_OF_MONTH": "first",
            "DATE_ORDER": _DATE_ORDER[language],
            "PARSERS": ["absolute-time"],
        },
    )
