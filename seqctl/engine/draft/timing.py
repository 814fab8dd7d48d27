"""When each drafted step fires: day phrases ("Day 3 business days", "2 days later", "+4h")
and turning them into the relative delays of SPEC 5 ("Day N" counts from enrollment)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from seqctl.errors import SeqctlError

DEFAULT_GAP_BUSINESS_DAYS = 2

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14,
    "a couple of": 2, "a couple": 2, "couple of": 2,
}  # fmt: skip
_NUM = r"(\d{1,4}(?:\.\d+)?|a couple of|a couple|couple of|an|a|one|two|three|four|five|six|" \
       r"seven|eight|nine|ten|eleven|twelve|fourteen)"
_UNIT = r"(?:(business|working|biz|calendar)\s+)?(days?|weekdays?|weeks?|hours?|hrs?|minutes?|mins?)"

_ABSOLUTE_DAY = re.compile(
    r"\b(?:on\s+)?day\s*#?\s*(\d{1,4}|one|two|three|four|five|six|seven|eight|nine|ten)\b"
    r"(?:\s*\(?\s*(?:(business|working|biz|calendar)\s+days?)\s*\)?)?",
    re.IGNORECASE,
)
_BUSINESS_DAY_N = re.compile(r"\b(business|working)\s+day\s+(\d{1,4})\b", re.IGNORECASE)
_WEEK_N = re.compile(r"(?<!\ba )(?<!per )\b(?:in\s+|on\s+)?week\s+(\d{1,2})\b(?!\s*(?:-|–|to)\s*\d)",
                     re.IGNORECASE)
_PLUS = re.compile(
    r"(?<![\w+])\+\s*(\d{1,4}(?:\.\d+)?)\s*(?:(business|working|calendar)\s+)?"
    r"(bd|h|hrs?|hours?|d|days?|weekdays?|w|weeks?|m|mins?|minutes?)\b",
    re.IGNORECASE,
)
_AFTER_N = re.compile(
    r"\b(?:after|in|wait(?:ing)?(?:\s+for)?|give\s+it|pause(?:\s+for)?|do\s+nothing\s+for)\s+(?:another\s+)?"
    + _NUM + r"\s+(?:more\s+)?" + _UNIT + r"\b",
    re.IGNORECASE,
)
_N_LATER = re.compile(
    r"\b" + _NUM + r"\s+(?:more\s+)?" + _UNIT
    + r"\s+(?:later|afterwards?|after(?:\s+that|\s+the\s+(?:\w+[\s-]){0,2}?\w+)?|on)\b",
    re.IGNORECASE,
)
_NEXT_DAY = re.compile(
    r"\b(?:(?:the\s+)?(?:next|following)\s+(business\s+|working\s+)?day|the\s+day\s+after|tomorrow)\b",
    re.IGNORECASE,
)
_NEXT_WEEK = re.compile(r"\b(?:the\s+)?(?:next|following)\s+week\b", re.IGNORECASE)
_SAME_DAY = re.compile(
    r"\b(?:same\s+day|immediately|right\s+away|at\s+once|straight\s+away|on\s+enrol?lment)\b",
    re.IGNORECASE,
)


@dataclass
class Timing:
    """What a segment says about when its step fires."""

    absolute_day: int | None = None  # "Day N": N - 1 days after enrollment
    unit: str = "calendar"  # "business" or "calendar" for an absolute day
    unit_given: bool = False
    business_days: int = 0
    calendar_days: int = 0
    hours: float = 0
    phrase: str = ""


@dataclass
class Step:
    kind: str
    words: str
    timing: Timing | None
    intent: str = ""
    subject: str | None = None
    new_thread: bool = False
    ab_test: str | None = None
    delays: dict[str, float] = field(default_factory=dict)


def number(text: str) -> float:
    lowered = text.lower()
    return float(_NUMBER_WORDS[lowered]) if lowered in _NUMBER_WORDS else float(text)


def _add_relative(timing: Timing, amount: float, unit: str, kind: str | None) -> None:
    unit = unit.lower()
    business = (kind or "").lower() in ("business", "working", "biz") or unit.startswith("weekday")
    if unit.startswith(("h",)):
        timing.hours += amount
    elif unit.startswith("m"):
        timing.hours += amount / 60
    elif unit.startswith("w") and not unit.startswith("weekday"):
        if business:
            timing.business_days += int(round(amount * 5))
        else:
            timing.calendar_days += int(round(amount * 7))
    elif unit == "bd" or business:
        timing.business_days += int(round(amount))
    else:
        timing.calendar_days += int(round(amount))


def read_timing(segment: str) -> tuple[Timing | None, str]:
    """The first timing phrase of a segment, and the segment without it."""
    candidates: list[tuple[int, int, Callable[[Timing], None], str]] = []

    def found(match: re.Match[str], apply: Callable[[Timing], None]) -> None:
        candidates.append((match.start(), match.end(), apply, match.group()))

    for match in _ABSOLUTE_DAY.finditer(segment):
        def absolute(t: Timing, m: re.Match[str] = match) -> None:
            t.absolute_day = int(number(m[1]))
            if m[2]:
                t.unit_given = True
                t.unit = "calendar" if m[2].lower() == "calendar" else "business"
        found(match, absolute)
    for match in _BUSINESS_DAY_N.finditer(segment):
        def business_day(t: Timing, m: re.Match[str] = match) -> None:
            t.absolute_day, t.unit, t.unit_given = int(m[2]), "business", True
        found(match, business_day)
    for match in _WEEK_N.finditer(segment):
        def week(t: Timing, m: re.Match[str] = match) -> None:
            t.absolute_day, t.unit, t.unit_given = 7 * (int(m[1]) - 1) + 1, "calendar", True
        found(match, week)
    for match in _PLUS.finditer(segment):
        def plus(t: Timing, m: re.Match[str] = match) -> None:
            _add_relative(t, float(m[1]), m[3], m[2])
        found(match, plus)
    for pattern in (_AFTER_N, _N_LATER):
        for match in pattern.finditer(segment):
            def relative(t: Timing, m: re.Match[str] = match) -> None:
                _add_relative(t, number(m[1]), m[3], m[2])
            found(match, relative)
    for match in _NEXT_DAY.finditer(segment):
        def next_day(t: Timing, m: re.Match[str] = match) -> None:
            if m[1]:
                t.business_days += 1
            else:
                t.calendar_days += 1
        found(match, next_day)
    for match in _NEXT_WEEK.finditer(segment):
        def next_week(t: Timing) -> None:
            t.calendar_days += 7
        found(match, next_week)
    for match in _SAME_DAY.finditer(segment):
        found(match, lambda t: None)
    if not candidates:
        return None, segment
    start, end, apply, phrase = min(candidates, key=lambda c: (c[0], -c[1]))
    timing = Timing(phrase=phrase.strip())
    apply(timing)
    return timing, (segment[:start] + " " + segment[end:]).strip()


def place(steps: list[Step], warnings: list[str]) -> None:
    """Turn each step's timing (absolute "Day N" or relative) into relative delays."""
    absolute_in_business = any(
        step.timing and step.timing.absolute_day is not None and step.timing.unit_given
        and step.timing.unit == "business" for step in steps
    )
    elapsed = {"business": 0, "calendar": 0}
    previous_day: tuple[int, str] | None = None
    mixed_warned = False
    for index, step in enumerate(steps):
        timing = step.timing
        delays = {"delay_business_days": 0, "delay_calendar_days": 0, "delay_hours": 0.0}
        if timing is None:
            after_wait = index > 0 and steps[index - 1].kind == "wait"
            if index > 0 and step.kind != "wait" and not after_wait:
                delays["delay_business_days"] = DEFAULT_GAP_BUSINESS_DAYS
                elapsed["business"] += DEFAULT_GAP_BUSINESS_DAYS
                warnings.append(
                    f"step {index + 1} ({_label(step)}) has no timing: drafted "
                    f"{DEFAULT_GAP_BUSINESS_DAYS} business days after the step before")
        elif timing.absolute_day is not None:
            unit = timing.unit if timing.unit_given else (
                "business" if absolute_in_business else "calendar")
            target = timing.absolute_day - 1
            if target < 0:
                raise SeqctlError(f'"{timing.phrase}": days count from Day 1 (the day of enrollment)')
            delay = target - elapsed[unit]
            if delay < 0:
                where = f"Day {previous_day[0]}" if previous_day else "the step before"
                raise SeqctlError(f'"{timing.phrase}" comes before {where}: list the steps in the order '
                            "they fire")
            other = "calendar" if unit == "business" else "business"
            if elapsed[other] and not mixed_warned:
                mixed_warned = True
                warnings.append(
                    f'"{timing.phrase}" counts {unit} days after steps timed in {other} days: '
                    "check the delays")
            delays[f"delay_{unit}_days"] = delay
            elapsed[unit] = target
            previous_day = (timing.absolute_day, unit)
        else:
            delays["delay_business_days"] = timing.business_days
            delays["delay_calendar_days"] = timing.calendar_days
            delays["delay_hours"] = timing.hours
            elapsed["business"] += timing.business_days
            elapsed["calendar"] += timing.calendar_days
        step.delays = delays


def _label(step: Step) -> str:
    return {"email": "email", "call": "call", "linkedin": "LinkedIn step", "task": "task",
            "wait": "wait"}[step.kind]
