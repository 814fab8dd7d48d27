"""When does a step fire? The pure scheduler (SPEC section 5).

A step's due time is its anchor (enrollment time, or the previous step's actual fire time) plus
its delays, moved into the sequence's send window:

- Delays stack in order, in the window's timezone: business days (walk forward one day at a
  time counting only Mon-Fri, and not counting the window's holidays; local wall-clock time
  kept), then calendar days (local wall-clock time kept), then hours (elapsed, added in UTC).
- A local wall time that does not exist (spring-forward gap) moves forward by the gap; an
  ambiguous one (fall-back fold) means its first occurrence.
- The send window is open on open days (not a weekend when `weekdays_only`, not a holiday of
  the `holidays` country) from `start_hour` to `end_hour` local time. An instant outside it moves
  to the first open instant after it.

Every function takes and returns plain values; instants are aware datetimes, returned in UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

UTC = dt.UTC
_ONE_DAY = dt.timedelta(days=1)
_ONE_SECOND = dt.timedelta(seconds=1)
# No real calendar closes this many days in a row; stops a runaway loop on impossible input.
_MAX_CLOSED_DAYS = 366
# Names ZoneInfo can load that are not IANA zones (`localtime` depends on the machine).
_NOT_IANA_ZONES = frozenset({"localtime", "posixrules"})


def _holidays_lib():
    """The `holidays` package, imported on first use (it takes ~0.15 s to import, and most
    commands never need it)."""
    import holidays

    return holidays


@dataclass(frozen=True)
class SendWindow:
    """When a sequence may fire steps: local hours `[start_hour, end_hour)` on open days."""

    timezone: str = "UTC"
    start_hour: int = 0
    end_hour: int = 24
    weekdays_only: bool = False
    holidays: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.start_hour <= 23:
            raise ValueError(f"send window start_hour must be 0-23, got {self.start_hour}")
        if not 1 <= self.end_hour <= 24:
            raise ValueError(f"send window end_hour must be 1-24, got {self.end_hour}")
        if self.start_hour >= self.end_hour:
            raise ValueError(
                f"send window start_hour ({self.start_hour}) must be before "
                f"end_hour ({self.end_hour})"
            )
        if not valid_timezone(self.timezone):
            raise ValueError(f"unknown timezone: {self.timezone!r}")
        if self.holidays is not None and not valid_holiday_country(self.holidays):
            raise ValueError(f"unknown holiday country: {self.holidays!r}")


@dataclass(frozen=True)
class Delay:
    """A step's delays; they stack in this order: business days, calendar days, hours."""

    business_days: int = 0
    calendar_days: int = 0
    hours: float = 0

    def __post_init__(self) -> None:
        if self.business_days < 0 or self.calendar_days < 0 or self.hours < 0:
            raise ValueError(f"delays cannot be negative: {self}")


def valid_timezone(name: str) -> bool:
    """True when `name` is an IANA timezone name this machine knows (e.g. "Europe/Berlin")."""
    return isinstance(name, str) and name in _iana_zone_names()


def valid_holiday_country(code: str) -> bool:
    """True when the `holidays` package knows the country code (e.g. "US", "DE"), or the
    country and subdivision ("GB-ENG", "US-CA")."""
    if not isinstance(code, str) or not code:
        return False
    return _holiday_country_known(code)


def add_business_days(day: dt.date, n: int, holidays: str | None = None) -> dt.date:
    """The day reached by walking forward one day at a time until `n` business days are counted.

    Business days are Mon-Fri, minus the holidays of the `holidays` country when given.
    Fri + 2 -> Tue, Sat + 1 -> Mon, + 0 -> `day` unchanged.
    """
    if n < 0:
        raise ValueError(f"business days cannot be negative, got {n}")
    if n == 0:
        return day
    if holidays is None:
        # The same walk, in closed form: 5 business days from a weekday always take 7 days.
        weekday = day.weekday()
        days = 0
        if weekday >= 5:
            days, weekday, n = 7 - weekday, 0, n - 1
        weeks, rest = divmod(n, 5)
        days += weeks * 7 + rest + (2 if weekday + rest > 4 else 0)
        return day + dt.timedelta(days=days)
    while n:
        day += _ONE_DAY
        if day.weekday() < 5 and day not in _holiday_dates(holidays, day.year):
            n -= 1
    return day


def add_delays(
    anchor: dt.datetime, delay: Delay, tz: str, holidays: str | None = None
) -> dt.datetime:
    """`anchor` plus `delay`, days counted in timezone `tz`; aware UTC in and out.

    Business days (skipping the `holidays` country's holidays when given) and calendar days
    keep the local wall-clock time; hours are elapsed time.
    """
    _require_aware(anchor)
    due = anchor
    if delay.business_days or delay.calendar_days:
        zone = _zone(tz)
        local = anchor.astimezone(zone)
        day = add_business_days(local.date(), delay.business_days, holidays)
        day += dt.timedelta(days=delay.calendar_days)
        wall_time = local.time()
        # Most day moves cross no offset change: try the anchor's offset before a full lookup.
        guess = dt.datetime.combine(day, wall_time, UTC) - local.utcoffset()
        back = guess.astimezone(zone)
        if back.fold == 0 and back.time() == wall_time and back.date() == day:
            due = guess
        else:
            due = _wall_to_utc(dt.datetime.combine(day, wall_time), zone)
    if delay.hours:
        due += dt.timedelta(hours=delay.hours)
    return due if due.tzinfo is UTC else due.astimezone(UTC)


def is_open_day(day: dt.date, window: SendWindow) -> bool:
    """True when `window` allows sending on local date `day` (hours aside)."""
    if window.weekdays_only and day.weekday() >= 5:
        return False
    if window.holidays is not None and day in _holiday_dates(window.holidays, day.year):
        return False
    return True


def into_window(instant: dt.datetime, window: SendWindow) -> dt.datetime:
    """The first instant at or after `instant` inside `window`; aware UTC in and out.

    Inside the window: unchanged. Before the start hour of an open day: that day's start.
    On a closed day, or at/after the end hour: the start of the next open day. A window bound
    that falls in a DST gap means the first instant that exists after it; a day whose whole
    window falls in the gap has no slot.
    """
    _require_aware(instant)
    if instant.tzinfo is not UTC:
        instant = instant.astimezone(UTC)
    zone = _zone(window.timezone)
    local = instant.astimezone(zone)
    day = local.date()
    if is_open_day(day, window):
        # fold=1 (the repeat of a fall-back hour) takes the slow path: its wall time alone
        # does not order it against the window bounds.
        if local.fold == 0 and window.start_hour <= local.hour < window.end_hour:
            return instant
        start, end = _window_bounds(window.timezone, day, window.start_hour, window.end_hour)
        if instant < end and start < end:
            return max(instant, start)
    for _ in range(_MAX_CLOSED_DAYS):
        day += _ONE_DAY
        if not is_open_day(day, window):
            continue
        start, end = _window_bounds(window.timezone, day, window.start_hour, window.end_hour)
        if start < end and instant < end:
            return max(instant, start)
    raise ValueError(f"send window {window} has no open slot within a year of {instant}")


def due_time(anchor: dt.datetime, delay: Delay, window: SendWindow) -> dt.datetime:
    """When a step fires: `anchor` plus `delay` (in the window's timezone), moved into `window`."""
    due = add_delays(anchor, delay, window.timezone, window.holidays)
    return into_window(due, window)


@lru_cache(maxsize=1)
def _iana_zone_names() -> frozenset[str]:
    return frozenset(available_timezones() - _NOT_IANA_ZONES)


@cache
def _zone(name: str) -> ZoneInfo:
    if not valid_timezone(name):
        raise ValueError(f"unknown timezone: {name!r}")
    return ZoneInfo(name)


def _calendar(code: str, year: int | None = None) -> Any:
    """The holidays of `code`: a country ("US") or a country and one of its subdivisions
    ("GB-ENG", "US-CA"), as ISO 3166-2 writes them. NotImplementedError when unknown."""
    country, _, subdivision = code.partition("-")
    if _ and not subdivision:
        raise NotImplementedError(code)
    years = year if year is not None else []
    try:
        return _holidays_lib().country_holidays(country, subdiv=subdivision or None,
                                                years=years)
    except (KeyError, ValueError) as exc:
        raise NotImplementedError(code) from exc


@lru_cache(maxsize=1024)
def _holiday_country_known(code: str) -> bool:
    try:
        _calendar(code)
    except NotImplementedError:
        return False
    return True


@cache
def _holiday_dates(country: str, year: int) -> frozenset[dt.date]:
    try:
        calendar = _calendar(country, year)
    except NotImplementedError:
        raise ValueError(f"unknown holiday country: {country!r}") from None
    return frozenset(calendar.keys())


def _require_aware(instant: dt.datetime) -> None:
    if instant.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {instant!r}")


def _wall_to_utc(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A naive local wall time as a UTC instant: a gap moves it forward by the gap, a fold
    means the first occurrence (PEP 495's fold=0 reading does both)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _first_instant_at_or_after(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The first instant whose local wall time is `wall` or later (UTC)."""
    instant = _wall_to_utc(wall, zone)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # `wall` is in a gap. fold=0 moved it forward by the whole gap, which can overshoot the
    # transition when `wall` sits inside a gap (30-minute or 2-hour shifts); find the
    # transition itself, to the second.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = instant
    while after - before > _ONE_SECOND:
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after


@lru_cache(maxsize=65536)
def _window_bounds(
    tz: str, day: dt.date, start_hour: int, end_hour: int
) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants `[start, end)` of one local day's window; start >= end means no slot."""
    zone = _zone(tz)
    midnight = dt.datetime(day.year, day.month, day.day)
    start = _first_instant_at_or_after(midnight + dt.timedelta(hours=start_hour), zone)
    end = _first_instant_at_or_after(midnight + dt.timedelta(hours=end_hour), zone)
    return start, end
