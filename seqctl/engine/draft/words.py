"""Reading the words of a cadence into steps and settings (exits, send window, A/B tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from seqctl.engine.draft.timing import Step, number, read_timing
from seqctl.engine.schedule import valid_holiday_country, valid_timezone
from seqctl.errors import SeqctlError

MAX_TEXT_CHARS = 10_000
MAX_STEPS = 50


class NoStepError(SeqctlError):
    """The words name no step (a model may still read them; the parser could not)."""

# Step kinds. A strong word names the kind outright; the first strong word in a segment wins.
# Weak words (an email's intent, "reminder") count only when the segment has no strong word.
_STRONG_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("linkedin", re.compile(r"\blinked\s?in\b|\binmails?\b|\bconnect(?:ion)?[\s-]requests?\b|"
                            r"\bdms?\b|\bdirect\s+messages?\b", re.IGNORECASE)),
    ("call", re.compile(r"\b(?:phone|call|ring|dial|voicemail)(?:s|ed|ing)?\b|\bcold[\s-]call",
                        re.IGNORECASE)),
    ("email", re.compile(r"\be-?mails?\b", re.IGNORECASE)),
    ("task", re.compile(r"\b(?:tasks?|research|to-?dos?)\b", re.IGNORECASE)),
    ("wait", re.compile(r"\b(?:wait|do\s+nothing|pause)\b", re.IGNORECASE)),
)
_EMAIL_INTENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("breakup", re.compile(r"\bbreak[\s-]?ups?\b|\blast\s+(?:email|touch|note)\b|"
                           r"\bfinal\s+(?:email|touch|note)\b|\bclos(?:e|ing)\s+the\s+loop\b",
                           re.IGNORECASE)),
    ("bump", re.compile(r"\bbumps?\b|\bnudges?\b|\bone[\s-]liner\b", re.IGNORECASE)),
    ("follow_up", re.compile(r"\bfollow[\s-]?ups?\b|\bfollowing\s+up\b|\bcheck[\s-]?ins?\b",
                             re.IGNORECASE)),
    ("intro", re.compile(r"\bintro(?:duction|ductory)?s?\b|\bfirst\s+touch\b|\bopener\b|"
                         r"\bcold\s+(?:email|note)\b", re.IGNORECASE)),
)
_REMINDER = re.compile(r"\breminders?\b|\bremind\s+me\b", re.IGNORECASE)
_LINKEDIN_MESSAGE = re.compile(r"\bmessages?\b|\bdms?\b|\binmails?\b|\bdirect\b", re.IGNORECASE)

# Settings.
_EXIT_VERB = re.compile(
    r"\b(?:exit|exits|stop|stops|end|ends|halt|unenroll|remove|pull\s+(?:them\s+)?out|"
    r"drop\s+(?:them|out))\b", re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:don'?t|do\s+not|never|no\s+exit|keep\s+going|continue|not)\b",
                       re.IGNORECASE)
_KEEP_GOING = re.compile(r"\b(?:keep\s+going|continue|carry\s+on)\s+(?:\w+\s+){0,2}?"
                         r"(?:after|on|if|when|through)\b", re.IGNORECASE)
_OOO = re.compile(r"\b(?:out[\s-]of[\s-]office|ooo|auto[\s-]?repl(?:y|ies))\b", re.IGNORECASE)
_COMPANY_REPLY = re.compile(
    r"\b(?:colleague|coworker|co-worker|company)(?:'s)?\s+repl(?:y|ies)\b|"
    r"\b(?:a\s+)?(?:colleague|coworker|co-worker|teammate)s?\s+(?:\w+\s+){0,2}repl(?:y|ies)\b|"
    r"\b(?:anyone|someone)\s+(?:else\s+)?(?:at|from)\s+(?:the|their)\s+company\s+repl(?:y|ies)\b",
    re.IGNORECASE,
)
_REPLY = re.compile(r"\brepl(?:y|ies|ied)\b|\bresponds?\b|\banswers?\b|\bwrites?\s+back\b",
                    re.IGNORECASE)
_BOOKING = re.compile(
    r"\bmeetings?\s+(?:is\s+|are\s+|gets?\s+|get\s+)?(?:booked|scheduled|set)\b|"
    r"\bbook(?:s|ed)?\s+(?:a\s+)?(?:meeting|call|demo)\b|\bbookings?\b|\bbooked\b",
    re.IGNORECASE,
)
_STAGE = re.compile(r"\b(?:(?:deal|lifecycle)\s+)?stage\s+chang(?:e|es|ed)\b|"
                    r"\bchang(?:e|es)\s+(?:deal\s+|lifecycle\s+)?stages?\b|"
                    r"\b(?:deal|lifecycle)\s+stage\b", re.IGNORECASE)
_AB_TEST = re.compile(
    r"\b(?:a/b|ab|split)[\s-]?test(?:ing)?\s+(?:the\s+|of\s+the\s+)?"
    r"(subject(?:\s+lines?)?|subjects|intro(?:duction)?|opener|opening(?:\s+line)?|body|copy|"
    r"email)?",
    re.IGNORECASE,
)
_TRACK = re.compile(r"\b(?:track(?:ing)?\s+(opens?|clicks?)(?:\s+and\s+(opens?|clicks?))?|"
                    r"(open|click)\s+tracking)\b", re.IGNORECASE)
_HOURS = re.compile(
    r"(?:\b(from|between|send(?:ing)?|window|hours|only|at)\s+)?"
    r"\b(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\s*(?:-|–|—|to|until|till|and)\s*"
    r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\b(?!\s*(?:business\s+|working\s+|calendar\s+)?"
    r"(?:days?|weeks?|steps?|emails?|touch|hours?)\b)",
    re.IGNORECASE,
)
_BUSINESS_HOURS = re.compile(r"\b(?:business|office|working|work)\s+hours\b", re.IGNORECASE)
_WEEKDAYS = re.compile(
    r"\b(?:weekdays?(?:\s+only)?|mon(?:day)?\s*(?:-|–|—|to|through|thru)\s*fri(?:day)?|"
    r"no\s+weekends?|not\s+on\s+weekends?|skip(?:ping)?\s+weekends?|business\s+days\s+only|"
    r"working\s+days\s+only)\b",
    re.IGNORECASE,
)
_EVERY_DAY = re.compile(r"\b(?:every\s+day|7\s+days\s+a\s+week|seven\s+days\s+a\s+week|"
                        r"including\s+weekends?|weekends?\s+too|also\s+on\s+weekends?)\b",
                        re.IGNORECASE)
_OTHER_DAYS = re.compile(r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\s*(?:-|–|—|to|through|thru)\s*"
                         r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b", re.IGNORECASE)
_IANA = re.compile(r"\b((?:[A-Z][A-Za-z_]+/)+[A-Z][A-Za-z_]+)\b")
_ZONE_WORDS = {
    "ET": "America/New_York", "EST": "America/New_York", "EDT": "America/New_York",
    "EASTERN": "America/New_York", "CT": "America/Chicago", "CST": "America/Chicago",
    "CDT": "America/Chicago", "CENTRAL": "America/Chicago", "MT": "America/Denver",
    "MST": "America/Denver", "MDT": "America/Denver", "MOUNTAIN": "America/Denver",
    "PT": "America/Los_Angeles", "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
    "PACIFIC": "America/Los_Angeles", "UTC": "UTC", "GMT": "UTC", "BST": "Europe/London",
    "CET": "Europe/Berlin", "CEST": "Europe/Berlin", "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney",
}  # fmt: skip
_ZONE_WORD = re.compile(r"\b(ET|EST|EDT|CT|CST|CDT|MT|MST|MDT|PT|PST|PDT|UTC|GMT|BST|CET|CEST|"
                        r"AEST|AEDT|Eastern|Central|Mountain|Pacific)\b"
                        r"(?:\s+time)?")
_CONTACT_ZONE = re.compile(
    r"\b(?:in\s+)?(?:their|the\s+contact'?s|the\s+prospect'?s|the\s+recipient'?s|each\s+contact'?s|"
    r"contact|recipient|prospect)\s+(?:own\s+)?(?:local\s+)?(?:time\s*zones?|tz|local\s+time)\b"
    r"|\blocal\s+to\s+(?:the\s+)?(?:contact|recipient|prospect)\b",
    re.IGNORECASE,
)
_HOLIDAYS = re.compile(r"(?:\b(?:[Ss]kip(?:ping)?|[Nn]o\s+sends?\s+on|[Aa]void(?:ing)?|[Ee]xcept|"
                       r"[Ee]xcluding|[Cc]losed\s+on|[Nn]ot\s+on|[Oo]bserv(?:e|ing)|[Hh]onou?r(?:ing)?)"
                       r"\s+)?\b([A-Z]{2}|UK)\s+(?:public\s+|bank\s+|national\s+|federal\s+)?"
                       r"holidays\b")
_HEADER_WORDS = re.compile(r"\b(?:sequences?|cadences?|campaigns?|playbooks?|flows?|outreach)\b",
                           re.IGNORECASE)
_STEP_COUNT = re.compile(r"\b(\d{1,2}|two|three|four|five|six|seven|eight|nine|ten)[\s-]"
                         r"(?:step|touch|touchpoint)s?\b", re.IGNORECASE)
_TOPIC = re.compile(r"\bfor\s+(.+?)\s*$", re.IGNORECASE)
_SUBJECT = re.compile(r"\bsubject(?:\s+line)?\s*[:=]?\s*[\"“']([^\"”']{1,120})[\"”']",
                      re.IGNORECASE)
_NEW_THREAD = re.compile(r"\b(?:new|fresh|own|separate)\s+(?:thread|subject)\b", re.IGNORECASE)

_FILLER = frozenset(
    "a an and or the on of if when once after upon to at in as is are be by it its with from "
    "for any also please them they their then that this all each every send sending only "
    "also both too so who whoever someone somebody contact contacts prospect prospects "
    "someone's sequence during within over".split()
)
_SEPARATOR = re.compile(
    r"\n+|\s+/\s+|;|•|\s\|\s|(?<=[.!?])\s+(?=[\"“(\[]?[A-Z0-9+])|"
    r"(?<=\w)\s+(?=\+\s*\d)|\s*,?\s*\b(?:and\s+)?then\b[\s,:]*|\s*,?\s*\bfollowed\s+by\b\s*|\s*,?\s*\bafter\s+that\s*,\s*",
    re.IGNORECASE,
)
_SOFT_SEPARATOR = re.compile(r"(\s*,\s*(?:and\s+)?|\s+(?:and|&|plus)\s+)", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•]|\(?\d{1,2}[.)]|(?:step|touch|touchpoint)\s+\d{1,2}\b\s*[:.)-]?)\s*",
                     re.IGNORECASE)


@dataclass
class _Settings:
    timezone: str | None = None
    window: tuple[int, int] | None = None
    window_phrase: str = ""
    weekdays_only: bool | None = None
    weekday_phrase: str = ""
    contact_timezone: bool = False
    holidays: str | None = None
    exits: dict[str, bool] = field(default_factory=dict)
    pause_on_auto_reply: bool | None = None
    track: dict[str, bool] = field(default_factory=dict)
    ab_tests: list[str] = field(default_factory=list)


def _kind_of(segment: str) -> tuple[str | None, str]:
    """(kind, intent) of a segment, or (None, "")."""
    best: tuple[int, str] | None = None
    for kind, pattern in _STRONG_KINDS:
        match = pattern.search(segment)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), kind)
    intent = next((name for name, pattern in _EMAIL_INTENTS if pattern.search(segment)), "")
    if best is None:
        if intent:
            return "email", intent
        if _REMINDER.search(segment):
            return "task", "reminder"
        return None, ""
    kind = best[1]
    if kind == "linkedin":
        lowered = segment.lower()
        connect = "connect" in lowered
        return kind, "message" if _LINKEDIN_MESSAGE.search(segment) and not connect else "connect"
    if kind == "task":
        return kind, "research" if re.search(r"\bresearch", segment, re.IGNORECASE) else "task"
    return kind, intent


def _segments(text: str) -> list[str]:
    pieces = []
    for piece in _SEPARATOR.split(text):
        if piece is None:
            continue
        piece = _BULLET.sub("", piece).strip(" \t.,:-–—")
        if piece:
            pieces.extend(_split_soft(piece))
    return pieces


def _split_soft(segment: str) -> list[str]:
    """Split at commas and "and" when the parts on both sides each name a step."""
    windows = [m.span() for m in _HOURS.finditer(segment) if _window_match(m.group())]
    parts: list[str] = []
    last = 0
    for match in _SOFT_SEPARATOR.finditer(segment):
        if any(start <= match.start() < end for start, end in windows):
            continue
        parts += [segment[last:match.start()], match.group()]
        last = match.end()
    parts.append(segment[last:])
    if len(parts) == 1:
        return [segment]
    groups: list[str] = []
    for index in range(0, len(parts), 2):
        part = parts[index]
        separator = parts[index - 1] if index else ""
        kind, _ = _kind_of(part)
        if not groups or _is_settings(part):
            groups.append(part)
        elif kind is None or (_kind_of(groups[-1])[0] is None and not _is_settings(groups[-1])):
            groups[-1] += separator + part
        else:
            groups.append(part)
    return [group.strip(" ,") for group in groups if group.strip(" ,")]


def _is_settings(segment: str) -> bool:
    exit_words = _EXIT_VERB.search(segment) or _KEEP_GOING.search(segment)
    condition = _REPLY.search(segment) or _BOOKING.search(segment) or _STAGE.search(segment)
    return bool(
        (exit_words and condition)
        or _AB_TEST.search(segment) or _WEEKDAYS.search(segment) or _BUSINESS_HOURS.search(segment)
        or _window_match(segment) is not None or _CONTACT_ZONE.search(segment)
    )


def _window_match(segment: str) -> re.Match[str] | None:
    for match in _HOURS.finditer(segment):
        context = match[1]
        has_suffix = match[4] or match[7]
        has_minutes = match[3] or match[6]
        after = segment[match.end():match.end() + 40]
        zone_after = bool(_ZONE_WORD.match(after.lstrip()) or _IANA.match(after.lstrip())
                          or re.match(r"\s*(?:local|their|in\s+their|o'?clock)", after))
        joined_by_and = re.search(r"\band\b", match.group(), re.IGNORECASE)
        if joined_by_and and (context or "").lower() != "between":
            continue
        twenty_four_hour = 12 < int(match[5]) <= 24 and int(match[2]) < int(match[5])
        if context or has_suffix or has_minutes or zone_after or twenty_four_hour:
            return match
    return None


def _hour(value: str, suffix: str | None) -> int:
    hour = int(value)
    if suffix:
        suffix = suffix.lower()
        if suffix == "pm" and hour < 12:
            hour += 12
        if suffix == "am" and hour == 12:
            hour = 0
    return hour


def _read_window(match: re.Match[str]) -> tuple[int, int, str]:
    start_suffix, end_suffix = match[4], match[7]
    start = _hour(match[2], start_suffix)
    end = _hour(match[5], end_suffix)
    if end_suffix and end_suffix.lower() == "am" and int(match[5]) == 12:
        end = 24
    if end_suffix and not start_suffix and end_suffix.lower() == "pm" and start + 12 < end:
        start += 12
    if not start_suffix and not end_suffix and end <= start and end < 12:
        end += 12
    notes = ""
    if (match[3] and match[3] != "00") or (match[6] and match[6] != "00"):
        notes = "send windows are whole hours: minutes were dropped"
    return start, end, notes


class Reader:
    """Reads the segments into steps and settings, collecting warnings."""

    def __init__(self) -> None:
        self.settings = _Settings()
        self.steps: list[Step] = []
        self.warnings: list[str] = []
        self.unknown: list[str] = []
        self.topic: str | None = None
        self.step_count: int | None = None

    def fail(self, message: str) -> None:
        raise SeqctlError(message)

    # settings -------------------------------------------------------------------------------

    def read_settings(self, segment: str) -> str:
        """Take every setting out of `segment`; returns what is left of it."""
        rest = segment
        rest = self._read_ab(rest)
        rest = self._read_exits(rest)
        rest = self._read_track(rest)
        rest = self._read_window(rest)
        return rest

    def _read_ab(self, segment: str) -> str:
        match = _AB_TEST.search(segment)
        if match is None:
            return segment
        target = (match[1] or "subject").lower()
        if target.startswith("subject"):
            target = "subject"
        elif target.startswith(("intro", "open")):
            target = "intro"
        else:
            target = "body"
        self.settings.ab_tests.append(target)
        return _cut(segment, match)

    def _read_exits(self, segment: str) -> str:
        rest = segment
        ooo = _OOO.search(rest)
        if ooo:
            before = rest[:ooo.start()]
            negated = bool(re.search(r"\b(?:ignore|don'?t\s+pause|do\s+not\s+pause|no\s+pause)\b",
                                     before, re.IGNORECASE))
            if re.search(r"\bpause|\bignore|\bhold|\bwait", before, re.IGNORECASE):
                self.settings.pause_on_auto_reply = not negated
                rest = rest[:max(0, ooo.start() - len(before))] + " " + rest[ooo.end():]
        verb = _EXIT_VERB.search(rest)
        triggers = [(name, pattern) for name, pattern in (
            ("exit_on_company_reply", _COMPANY_REPLY), ("exit_on_booking", _BOOKING),
            ("exit_on_stage_change", _STAGE), ("exit_on_reply", _REPLY))]
        keep_going = _KEEP_GOING.search(rest)
        if keep_going is not None:
            after = rest[keep_going.end():]
            reply = _REPLY.search(after)
            if reply is not None and reply.start() < 30:
                self._set_exit("exit_on_reply", False)
                rest = rest[:keep_going.start()] + " " + after[reply.end():]
                verb = _EXIT_VERB.search(rest)
        exit_phrase = verb is not None
        if not exit_phrase:
            return rest
        negated = bool(_NEGATION.search(rest[:verb.start()] if verb else rest))
        found = False
        for name, pattern in triggers:
            match = pattern.search(rest)
            if match is None:
                continue
            self._set_exit(name, not negated)
            rest = _cut(rest, match)
            found = True
        if found:
            if verb:
                rest = _EXIT_VERB.sub(" ", rest, count=1)
            rest = _NEGATION.sub(" ", rest) if negated else rest
        return rest

    def _set_exit(self, name: str, value: bool) -> None:
        if self.settings.exits.get(name, value) != value:
            self.fail(f"the words both set and unset {name.replace('_', ' ')}; keep one")
        self.settings.exits[name] = value

    def _read_track(self, segment: str) -> str:
        match = _TRACK.search(segment)
        if match is None:
            return segment
        for what in (match[1], match[2], match[3]):
            if what:
                key = "track_opens" if what.lower().startswith("open") else "track_clicks"
                self.settings.track[key] = True
        return _cut(segment, match)

    def _read_window(self, segment: str) -> str:
        rest = segment
        settings = self.settings
        while (match := _window_match(rest)) is not None:
            start, end, note = _read_window(match)
            if note:
                self.warnings.append(f'"{match.group().strip()}": {note}')
            if not (0 <= start <= 23 and 1 <= end <= 24):
                self.fail(f'"{match.group().strip()}" is not a send window (hours run 0-24)')
            if start >= end:
                self.fail(f'the send window "{match.group().strip()}" ends before it starts '
                          "(windows cannot run past midnight)")
            self._set_window(start, end, match.group().strip())
            rest = _cut(rest, match)
        business = _BUSINESS_HOURS.search(rest)
        if business is not None:
            if settings.window is None:
                self._set_window(9, 17, business.group())
            self._set_weekdays(True, business.group())
            rest = _cut(rest, business)
        for pattern, value in ((_WEEKDAYS, True), (_EVERY_DAY, False)):
            match = pattern.search(rest)
            if match is not None:
                self._set_weekdays(value, match.group())
                rest = _cut(rest, match)
        other = _OTHER_DAYS.search(rest)
        if other is not None:
            self.warnings.append(f'"{other.group()}": a sequence sends on every day or on '
                                 "weekdays only; drafted as weekdays only")
            self._set_weekdays(True, other.group())
            rest = _cut(rest, other)
        contact = _CONTACT_ZONE.search(rest)
        if contact is not None:
            settings.contact_timezone = True
            rest = _cut(rest, contact)
        for match in list(_IANA.finditer(rest)):
            zone = match[1]
            if not valid_timezone(zone):
                self.fail(f'unknown timezone "{zone}" (use an IANA name like America/Chicago)')
            self._set_zone(zone)
        rest = _IANA.sub(" ", rest)
        for match in list(_ZONE_WORD.finditer(rest)):
            self._set_zone(_ZONE_WORDS[match[1].upper()])
        rest = _ZONE_WORD.sub(" ", rest)
        holidays = _HOLIDAYS.search(rest)
        if holidays is not None:
            code = "GB" if holidays[1] == "UK" else holidays[1]
            if valid_holiday_country(code):
                settings.holidays = code
            else:
                self.warnings.append(f'"{holidays.group()}": no holiday calendar for {code}; '
                                     "left out")
            rest = _cut(rest, holidays)
        return rest

    def _set_window(self, start: int, end: int, phrase: str) -> None:
        settings = self.settings
        if settings.window is not None and settings.window != (start, end):
            self.fail(f'contradictory send windows: "{settings.window_phrase}" and "{phrase}" '
                      "(give one)")
        settings.window, settings.window_phrase = (start, end), phrase

    def _set_weekdays(self, value: bool, phrase: str) -> None:
        settings = self.settings
        if settings.weekdays_only is not None and settings.weekdays_only != value:
            self.fail(f'contradictory send days: "{settings.weekday_phrase}" and "{phrase}" '
                      "(give one)")
        settings.weekdays_only, settings.weekday_phrase = value, phrase

    def _set_zone(self, zone: str) -> None:
        if self.settings.timezone is not None and self.settings.timezone != zone:
            self.fail(f"contradictory timezones: {self.settings.timezone} and {zone} (give one)")
        self.settings.timezone = zone

    # segments ---------------------------------------------------------------------------------

    def read(self, text: str) -> None:
        segments = _segments(_header(text, self))
        for segment in segments:
            self.read_segment(segment)

    def read_segment(self, segment: str) -> None:
        has_settings = _is_settings(segment)
        timing, rest = read_timing(self.read_settings(segment))
        kind, intent = _kind_of(rest)
        waits = re.match(r"(?:wait|pause|do\s+nothing)\b", timing.phrase if timing else "",
                         re.IGNORECASE)
        if kind is None and waits:
            kind, intent = "wait", ""
        if kind is None or (has_settings and timing is None and not self._names_step(rest)):
            if timing is not None and kind is None and _meaningful(rest):
                kind, intent = "task", "task"
            else:
                leftover = _meaningful(rest)
                if leftover:
                    self.unknown.append(_short(leftover))
                    self.warnings.append(
                        f'did not understand "{_short(leftover)}" in "{_short(segment)}" '
                        "(left out)" if leftover != segment.strip()
                        else f'did not understand "{_short(segment)}" (left out)')
                if timing is not None and kind is None:
                    self.warnings.append(f'"{timing.phrase}" names no step (left out)')
                self._attach_ab()
                return
        if len(self.steps) >= MAX_STEPS:
            self.fail(f"more than {MAX_STEPS} steps in the words: draft a shorter cadence")
        step = Step(kind=kind, words=rest, timing=timing, intent=intent)
        subject = _SUBJECT.search(rest)
        if subject is not None and kind == "email":
            step.subject = subject[1].strip()
            step.words = _cut(rest, subject)
        step.new_thread = bool(_NEW_THREAD.search(segment))
        self.steps.append(step)
        self._attach_ab()

    def _names_step(self, rest: str) -> bool:
        """Whether what is left of a settings segment still names a step of its own."""
        return bool(re.search(r"\b(?:send|add|then|email|call|linkedin|task)\b", rest,
                              re.IGNORECASE)) and _kind_of(rest)[0] is not None and bool(
            _meaningful(rest))

    def _attach_ab(self) -> None:
        """An A/B phrase applies to the email in its segment, else to the first email."""
        if not self.settings.ab_tests:
            return
        emails = [step for step in self.steps if step.kind == "email"]
        if not emails:
            return
        last = self.steps[-1]
        own_subject = last is emails[0] or last.new_thread or last.subject is not None
        for what in self.settings.ab_tests:
            if what == "intro":
                target = emails[0]
            elif last.kind == "email" and (what == "body" or own_subject):
                target = last
            else:
                target = emails[0]
            target.ab_test = what if target.ab_test in (None, what) else "body"
        self.settings.ab_tests.clear()


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _cut(text: str, match: re.Match[str]) -> str:
    return (text[:match.start()] + " " + text[match.end():]).strip()


def _meaningful(text: str) -> str:
    """What is left after filler words and punctuation, or ""."""
    words = [w for w in re.findall(r"[\w'’/-]+", text)
             if w.lower().strip("'’-") not in _FILLER and not re.fullmatch(r"[-–—/]+", w)]
    return " ".join(words)


def _header(text: str, reader: Reader) -> str:
    """Take a leading "Build a 3-step sequence for X:" off the text (topic and step count)."""
    first = re.match(r"\s*([^:\n]{0,300}?):\s*(?=\S)", text)
    candidate = first[1] if first else None
    rest = text[first.end():] if first else text
    if candidate is None:
        sentence = re.match(r"\s*([^.\n]{0,300}?)[.\n]\s+(?=\S)", text)
        if sentence and _HEADER_WORDS.search(sentence[1]) and read_timing(sentence[1])[0] is None:
            candidate, rest = sentence[1], text[sentence.end():]
    if candidate is None or not _HEADER_WORDS.search(candidate) \
            or read_timing(candidate)[0] is not None:
        return text
    count = _STEP_COUNT.search(candidate)
    if count:
        reader.step_count = int(number(count[1]))
    topic = _TOPIC.search(candidate)
    if topic:
        reader.topic = topic[1].strip(" .")
    return rest


def check_words(text: str) -> str:
    """The words, normalised; raises SeqctlError when they are empty or too long."""
    if len(text) > MAX_TEXT_CHARS:
        raise SeqctlError(f"the description is {len(text):,} characters; keep it under "
                          f"{MAX_TEXT_CHARS:,} (a cadence fits in a paragraph)")
    cleaned = (text.replace("\r\n", "\n").replace("’", "'").replace("“", '"').replace("”", '"')
               .replace("\u00a0", " "))
    cleaned = re.sub(r"\b([ap])\.m\.", r"\1m", cleaned, flags=re.IGNORECASE)
    if not cleaned.strip():
        raise SeqctlError("the description is empty (describe the steps, e.g. "
                          '"Day 1 — intro email / Day 3 — follow-up")')
    if "\x00" in cleaned:
        raise SeqctlError("the description is not text (it holds NUL bytes)")
    return cleaned
