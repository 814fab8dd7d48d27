"""Not-now dates: the first day a contact wants to hear from us again, read from the
reply and anchored at the day it was received.

dateparser reads month-and-day words ("after March 15", "nach dem 15. April", "fin avril",
"el 15 de mayo") in the reply's language; quarters, Easter, seasons, "next month" and
"in N weeks" are computed here. A date that is not after the reply's day, or more than two
years away, is no date.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from dateutil.easter import easter

from seqctl.engine.intent.text import LANGUAGES, lazy

if TYPE_CHECKING:
    from dateparser.date import DateDataParser

_MAX_AHEAD = timedelta(days=731)

MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
    r"|januar|janner|februar|marz|mai|juni|juli|oktober|dezember"
    r"|janvier|fevrier|mars|avril|juin|juillet|aout|septembre|octobre|novembre|decembre"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre"
    r"|diciembre"
)
EVENTS = (
    r"easter|ostern|paques|semana santa|summer|sommer|sommerferien|sommerpause|l'ete|ete|verano"
    r"|vacaciones|autumn|fall|herbst|automne|otono|la rentree|rentree|the new year|new year"
    r"|neujahr|jahreswechsel|nouvel an|ano nuevo|christmas|weihnachten|noel|navidad|the holidays"
    r"|our (?:launch|migration|reorg|audit|funding round|board meeting|budget)"
)

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
_RELATIVE_RE = lazy(
    r"(?<![\w])(?:in|within|dans|en|dentro de|d'ici) (" + "|".join(
        sorted((re.escape(k) for k in _NUMBER_WORDS), key=len, reverse=True)
    ) + r"|\d{1,2}) (" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")(?![\w])"
)
_QUARTER_RE = lazy(
    r"(?<![\w])(?:(" + _AFTER + r") )?(?:(?:the |im |au |el |en el |le )?(?:q([1-4])(?: ?'?((?:20)?\d\d))?"
    r"|(" + "|".join(re.escape(k) for k in sorted(_ORDINALS, key=len, reverse=True))
    + r") (?:quarter|quartal|trimestre)))(?![\w])"
)
_NEXT_QUARTER_RE = lazy(
    r"(?<![\w])(?:next|following|coming|nachsten|kommenden|prochain|proximo|siguiente) "
    r"(?:quarter|quartal|trimestre)|trimestre (?:prochain|que viene)"
)
_NEXT_YEAR_RE = lazy(
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
_SEASON_RE = lazy(
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
_DATE_PHRASE_RE = lazy(
    r"(?<![\w])(?:(" + _AFTER + r"|on|am|le|el|around|in|im|en|courant|the week of|la semaine du"
    r"|la semana del) )?(?:(?:the|le|el|dem|den) )?(?:(?:month of|mois d'|mois de|mes de|monat) )?(?:("
    + "|".join(sorted((re.escape(k) for k in _MODIFIERS), key=len, reverse=True))
    + r") ?)?((\d{1,2}(?:st|nd|rd|th|er|\.)? (?:de )?)?(" + MONTHS + r")\.?( \d{1,2}"
    r"(?:st|nd|rd|th)?)?(?:,? (?:20\d\d))?)(?![\w])"
)
# month words that are also ordinary words, read as a month only with a day or a preposition
_AMBIGUOUSMONTHS = frozenset("may mar jan jun jul aug sep oct nov dec feb apr mai".split())
_NUMERIC_RE = lazy(
    r"(?<![\w/.])(?:(" + _AFTER + r") (?:the |dem |den |le |el )?)?(\d{1,2})[./](\d{1,2})(?:[./]((?:20)?\d\d))?\.?(?![\w/])"
)
_DATE_ORDER = {"en": "MDY", "de": "DMY", "fr": "DMY", "es": "DMY"}


def not_before(text: str, folded: str, language: str, received_at: datetime) -> date | None:
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


_NEXT_RE = lazy(
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
        if month in _AMBIGUOUSMONTHS and not (prefix or modifier or day_before or day_after):
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
    # imported on first use: dateparser takes longer to import than a seqctl command to run,
    # and only a not-now reply with a month in it needs it
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=[language],
        settings={
            "RELATIVE_BASE": _FIXED_BASE,
            "PREFER_DAY_OF_MONTH": "first",
            "DATE_ORDER": _DATE_ORDER[language],
            "PARSERS": ["absolute-time"],
        },
    )
