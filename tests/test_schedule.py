"""When does a step fire? SPEC section 5, checked against `seqctl.engine.schedule`."""

from __future__ import annotations

import datetime as dt
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqctl.engine.schedule import (
    Delay,
    SendWindow,
    add_business_days,
    add_delays,
    due_time,
    into_window,
    is_open_day,
    valid_holiday_country,
    valid_timezone,
)

UTC = dt.UTC
NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
CHICAGO = "America/Chicago"

# 2025 DST transitions (local dates):
# New York: spring forward Sun 03-09 02:00 EST -> 03:00 EDT; fall back Sun 11-02 02:00 EDT -> 01:00 EST.
# Berlin:   spring forward Sun 03-30 02:00 CET -> 03:00 CEST; fall back Sun 10-26 03:00 CEST -> 02:00 CET.


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def local(tz: str, *parts: int, fold: int = 0) -> dt.datetime:
    """A local wall time in `tz` as an aware UTC instant."""
    return dt.datetime(*parts, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


def wall(instant: dt.datetime, tz: str) -> dt.datetime:
    """The naive local wall time of `instant` in `tz`."""
    return instant.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


OFFICE_HOURS = SendWindow(CHICAGO, start_hour=9, end_hour=17, weekdays_only=True)


# --- business days -----------------------------------------------------------------------


def test_friday_plus_two_business_days_is_tuesday():
    assert add_business_days(dt.date(2025, 6, 6), 2) == dt.date(2025, 6, 10)


def test_saturday_plus_one_business_day_is_monday():
    assert add_business_days(dt.date(2025, 6, 7), 1) == dt.date(2025, 6, 9)


def test_sunday_plus_one_business_day_is_monday():
    assert add_business_days(dt.date(2025, 6, 8), 1) == dt.date(2025, 6, 9)


@pytest.mark.parametrize("day", [dt.date(2025, 6, 6), dt.date(2025, 6, 7), dt.date(2025, 7, 4)])
def test_plus_zero_business_days_is_no_change(day):
    assert add_business_days(day, 0) == day
    assert add_business_days(day, 0, holidays="US") == day


def test_five_business_days_from_a_weekday_is_one_week():
    assert add_business_days(dt.date(2025, 6, 4), 5) == dt.date(2025, 6, 11)


def test_business_days_do_not_count_the_countrys_holidays():
    thursday_before_july_fourth = dt.date(2025, 7, 3)
    assert add_business_days(thursday_before_july_fourth, 1) == dt.date(2025, 7, 4)
    assert add_business_days(thursday_before_july_fourth, 1, holidays="US") == dt.date(2025, 7, 7)
    assert add_business_days(thursday_before_july_fourth, 1, holidays="DE") == dt.date(2025, 7, 4)


def test_holiday_subdivisions_england_gets_easter_monday_and_california_cesar_chavez_day():
    thursday_before_easter_monday = dt.date(2026, 4, 2)       # Good Friday 3 Apr is national
    assert add_business_days(thursday_before_easter_monday, 1, holidays="GB") == dt.date(2026, 4, 6)
    assert add_business_days(thursday_before_easter_monday, 1, holidays="GB-ENG") == \
        dt.date(2026, 4, 7)
    assert add_business_days(dt.date(2026, 3, 30), 1, holidays="US") == dt.date(2026, 3, 31)
    assert add_business_days(dt.date(2026, 3, 30), 1, holidays="US-CA") == dt.date(2026, 4, 1)


def test_negative_business_days_are_rejected():
    with pytest.raises(ValueError):
        add_business_days(dt.date(2025, 6, 6), -1)


def _numpy_offsets(days: list[dt.date], ns: list[int], holiday_dates=()) -> list[dt.date]:
    result = np.busday_offset(
        np.array(days, dtype="datetime64[D]"),
        np.array(ns),
        roll="backward",
        holidays=np.array(sorted(holiday_dates), dtype="datetime64[D]"),
    )
    return [d.item() for d in result]


def _random_dates_and_counts(seed: int, count: int) -> tuple[list[dt.date], list[int]]:
    rng = np.random.default_rng(seed)
    first = dt.date(2000, 1, 1).toordinal()
    last = dt.date(2039, 12, 31).toordinal()
    days = [dt.date.fromordinal(int(o)) for o in rng.integers(first, last, size=count)]
    ns = [int(n) for n in rng.integers(1, 31, size=count)]
    return days, ns


def test_business_days_agree_with_numpy_busday_offset():
    # roll="backward" makes numpy's offset from a weekend day match walking forward from it.
    days, ns = _random_dates_and_counts(seed=5, count=5000)
    ours = [add_business_days(day, n) for day, n in zip(days, ns, strict=True)]
    assert ours == _numpy_offsets(days, ns)


@pytest.mark.parametrize("country", ["US", "DE", "GB"])
def test_business_days_with_holidays_agree_with_numpy_busday_offset(country):
    days, ns = _random_dates_and_counts(seed=len(country) * 31 + ord(country[0]), count=3000)
    holiday_dates = holidays.country_holidays(country, years=range(1999, 2042)).keys()
    ours = [add_business_days(day, n, holidays=country) for day, n in zip(days, ns, strict=True)]
    assert ours == _numpy_offsets(days, ns, holiday_dates)


# --- delays ------------------------------------------------------------------------------


def test_business_day_delay_keeps_the_local_wall_clock_time():
    friday_morning = local(CHICAGO, 2025, 6, 6, 10, 15, 42)
    due = add_delays(friday_morning, Delay(business_days=2), CHICAGO)
    assert wall(due, CHICAGO) == dt.datetime(2025, 6, 10, 10, 15, 42)
    assert due.tzinfo is UTC


def test_delays_stack_business_days_then_calendar_days_then_hours():
    friday = utc(2025, 6, 6, 16, 0)
    # Fri + 1 business day = Mon, + 2 calendar days = Wed, + 5 h. (Calendar days first would
    # give Sun + 1 business day = Mon.)
    assert add_delays(friday, Delay(1, 2, 5), "UTC") == utc(2025, 6, 11, 21, 0)


def test_business_days_in_add_delays_skip_holidays_when_given():
    thursday = local(NEW_YORK, 2025, 7, 3, 10, 0)
    assert add_delays(thursday, Delay(business_days=1), NEW_YORK) == local(
        NEW_YORK, 2025, 7, 4, 10, 0
    )
    assert add_delays(thursday, Delay(business_days=1), NEW_YORK, holidays="US") == local(
        NEW_YORK, 2025, 7, 7, 10, 0
    )


def test_zero_delay_leaves_the_anchor_unchanged_even_in_a_repeated_hour():
    second_one_thirty = local(NEW_YORK, 2025, 11, 2, 1, 30, fold=1)
    assert add_delays(second_one_thirty, Delay(), NEW_YORK) == second_one_thirty


def test_hours_are_elapsed_time_across_spring_forward():
    before_gap = local(NEW_YORK, 2025, 3, 9, 1, 30)
    due = add_delays(before_gap, Delay(hours=1), NEW_YORK)
    assert due == before_gap + dt.timedelta(hours=1)
    assert wall(due, NEW_YORK) == dt.datetime(2025, 3, 9, 3, 30)


def test_hours_are_elapsed_time_across_fall_back():
    before_fold = local(NEW_YORK, 2025, 11, 2, 0, 30)
    due = add_delays(before_fold, Delay(hours=2), NEW_YORK)
    assert due == utc(2025, 11, 2, 6, 30)  # 01:30 EST, the second 01:30 of the night


def test_fractional_hours_are_allowed():
    assert add_delays(utc(2025, 6, 6, 9), Delay(hours=1.5), "UTC") == utc(2025, 6, 6, 10, 30)


@pytest.mark.parametrize(
    ("tz", "friday", "monday"),
    [
        (NEW_YORK, (2025, 3, 7, 9, 0), (2025, 3, 10, 9, 0)),
        (BERLIN, (2025, 3, 28, 9, 0), (2025, 3, 31, 9, 0)),
        (NEW_YORK, (2025, 10, 31, 9, 0), (2025, 11, 3, 9, 0)),
        (BERLIN, (2025, 10, 24, 9, 0), (2025, 10, 27, 9, 0)),
    ],
)
def test_business_day_delay_across_a_dst_change_keeps_the_wall_time(tz, friday, monday):
    due = add_delays(local(tz, *friday), Delay(business_days=1), tz)
    assert wall(due, tz) == dt.datetime(*monday)


@pytest.mark.parametrize(
    ("tz", "day_before", "expected_utc"),
    [
        (NEW_YORK, (2025, 3, 8, 10, 0), utc(2025, 3, 9, 14, 0)),
        (NEW_YORK, (2025, 11, 1, 10, 0), utc(2025, 11, 2, 15, 0)),
        (BERLIN, (2025, 3, 29, 10, 0), utc(2025, 3, 30, 8, 0)),
        (BERLIN, (2025, 10, 25, 10, 0), utc(2025, 10, 26, 9, 0)),
    ],
)
def test_calendar_day_delay_across_a_dst_change_keeps_the_wall_time(tz, day_before, expected_utc):
    assert add_delays(local(tz, *day_before), Delay(calendar_days=1), tz) == expected_utc


@pytest.mark.parametrize(
    ("tz", "day_before", "expected_utc"),
    [
        # 02:30 does not exist on the spring-forward day: it becomes 03:30 (summer time).
        (NEW_YORK, (2025, 3, 8, 2, 30), utc(2025, 3, 9, 7, 30)),
        (BERLIN, (2025, 3, 29, 2, 30), utc(2025, 3, 30, 1, 30)),
    ],
)
def test_nonexistent_wall_time_moves_forward_by_the_gap(tz, day_before, expected_utc):
    due = add_delays(local(tz, *day_before), Delay(calendar_days=1), tz)
    assert due == expected_utc
    assert wall(due, tz).time() == dt.time(3, 30)


@pytest.mark.parametrize(
    ("tz", "anchor", "delay", "expected_utc"),
    [
        (
            NEW_YORK,
            local(NEW_YORK, 2025, 11, 1, 1, 30),
            Delay(calendar_days=1),
            utc(2025, 11, 2, 5, 30),
        ),
        (
            BERLIN,
            local(BERLIN, 2025, 10, 25, 2, 30),
            Delay(calendar_days=1),
            utc(2025, 10, 26, 0, 30),
        ),
        # From winter time a year earlier: the first (summer time) occurrence still wins.
        (
            NEW_YORK,
            local(NEW_YORK, 2024, 12, 1, 1, 30),
            Delay(calendar_days=336),
            utc(2025, 11, 2, 5, 30),
        ),
    ],
)
def test_ambiguous_wall_time_takes_the_first_occurrence(tz, anchor, delay, expected_utc):
    assert add_delays(anchor, delay, tz) == expected_utc


# --- the send window ---------------------------------------------------------------------


def test_step_due_saturday_3am_fires_monday_9am():
    saturday_3am = local(CHICAGO, 2025, 6, 7, 3, 0)
    assert into_window(saturday_3am, OFFICE_HOURS) == local(CHICAGO, 2025, 6, 9, 9, 0)


def test_inside_the_window_is_unchanged_to_the_microsecond():
    tuesday = local(CHICAGO, 2025, 6, 10, 10, 17, 42, 123456)
    assert into_window(tuesday, OFFICE_HOURS) == tuesday


def test_before_the_start_hour_moves_to_the_start_of_the_same_day():
    tuesday_early = local(CHICAGO, 2025, 6, 10, 6, 45)
    assert into_window(tuesday_early, OFFICE_HOURS) == local(CHICAGO, 2025, 6, 10, 9, 0)


def test_end_hour_is_exclusive():
    assert into_window(local(CHICAGO, 2025, 6, 10, 16, 59, 59), OFFICE_HOURS) == local(
        CHICAGO, 2025, 6, 10, 16, 59, 59
    )
    assert into_window(local(CHICAGO, 2025, 6, 10, 17, 0), OFFICE_HOURS) == local(
        CHICAGO, 2025, 6, 11, 9, 0
    )


def test_friday_after_hours_moves_to_monday_start():
    assert into_window(local(CHICAGO, 2025, 6, 6, 18, 0), OFFICE_HOURS) == local(
        CHICAGO, 2025, 6, 9, 9, 0
    )


def test_end_hour_24_means_the_end_of_the_day():
    window = SendWindow("UTC", start_hour=8, end_hour=24, weekdays_only=True)
    assert into_window(utc(2025, 6, 6, 23, 59, 59), window) == utc(2025, 6, 6, 23, 59, 59)
    assert into_window(utc(2025, 6, 7, 0, 0), window) == utc(2025, 6, 9, 8, 0)


def test_weekends_are_open_without_weekdays_only():
    window = SendWindow(CHICAGO, start_hour=9, end_hour=17)
    saturday_10am = local(CHICAGO, 2025, 6, 7, 10, 0)
    assert into_window(saturday_10am, window) == saturday_10am
    assert into_window(local(CHICAGO, 2025, 6, 7, 3, 0), window) == local(CHICAGO, 2025, 6, 7, 9, 0)


def test_default_window_is_always_open():
    instant = utc(2025, 6, 7, 3, 0, 1)
    assert into_window(instant, SendWindow()) == instant


def test_us_holiday_window_skips_july_fourth():
    window = SendWindow(NEW_YORK, 9, 17, weekdays_only=True, holidays="US")
    monday_start = local(NEW_YORK, 2025, 7, 7, 9, 0)
    assert into_window(local(NEW_YORK, 2025, 7, 4, 10, 0), window) == monday_start
    assert into_window(local(NEW_YORK, 2025, 7, 3, 17, 30), window) == monday_start
    assert not is_open_day(dt.date(2025, 7, 4), window)
    assert is_open_day(dt.date(2025, 7, 4), SendWindow(NEW_YORK, 9, 17, weekdays_only=True))


def test_holidays_close_the_day_even_without_weekdays_only():
    window = SendWindow(BERLIN, 9, 17, holidays="DE")
    christmas = local(BERLIN, 2025, 12, 25, 10, 0)
    assert into_window(christmas, window) == local(BERLIN, 2025, 12, 27, 9, 0)


def test_due_time_is_delays_then_window():
    window = SendWindow(NEW_YORK, 9, 17, weekdays_only=True, holidays="US")
    thursday_4pm = local(NEW_YORK, 2025, 7, 3, 16, 0)
    assert due_time(thursday_4pm, Delay(business_days=1), window) == local(
        NEW_YORK, 2025, 7, 7, 16, 0
    )
    assert due_time(thursday_4pm, Delay(business_days=1, hours=2), window) == local(
        NEW_YORK, 2025, 7, 8, 9, 0
    )


def test_due_time_accepts_non_utc_aware_anchors_and_returns_utc():
    anchor = dt.datetime(2025, 6, 6, 10, 0, tzinfo=ZoneInfo(CHICAGO))
    due = due_time(anchor, Delay(business_days=1), OFFICE_HOURS)
    assert due == local(CHICAGO, 2025, 6, 9, 10, 0)
    assert due.tzinfo is UTC


# --- the send window across DST ----------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "night_before", "expected_utc"),
    [
        # 02:00 does not exist on the spring-forward day: the window opens at 03:00 summer time.
        (NEW_YORK, (2025, 3, 9, 0, 30), utc(2025, 3, 9, 7, 0)),
        (BERLIN, (2025, 3, 30, 0, 30), utc(2025, 3, 30, 1, 0)),
    ],
)
def test_window_start_in_the_spring_forward_gap_is_the_first_instant_after_it(
    tz, night_before, expected_utc
):
    window = SendWindow(tz, start_hour=2, end_hour=5)
    opened = into_window(local(tz, *night_before), window)
    assert opened == expected_utc
    assert wall(opened, tz).time() == dt.time(3, 0)


def test_window_start_inside_a_two_hour_gap_is_the_transition_instant():
    # Antarctica/Troll jumps 01:00 -> 03:00; 02:00 + the whole gap would overshoot to 04:00.
    window = SendWindow("Antarctica/Troll", start_hour=2, end_hour=5)
    assert into_window(utc(2025, 3, 29, 23, 0), window) == utc(2025, 3, 30, 1, 0)


def test_window_entirely_inside_the_gap_has_no_slot_that_day():
    window = SendWindow(NEW_YORK, start_hour=2, end_hour=3)
    assert into_window(local(NEW_YORK, 2025, 3, 9, 0, 30), window) == local(
        NEW_YORK, 2025, 3, 10, 2, 0
    )


def test_window_1_to_3_on_the_spring_forward_day_is_one_hour_long():
    window = SendWindow(NEW_YORK, start_hour=1, end_hour=3)
    last_second = local(NEW_YORK, 2025, 3, 9, 1, 59, 59)
    assert into_window(last_second, window) == last_second
    three_am_edt = utc(2025, 3, 9, 7, 0)
    assert into_window(three_am_edt, window) == local(NEW_YORK, 2025, 3, 10, 1, 0)


@pytest.mark.parametrize(
    ("tz", "window_hours", "repeated_hour", "after_window"),
    [
        (
            NEW_YORK,
            (1, 2),
            [utc(2025, 11, 2, 5, 30), utc(2025, 11, 2, 6, 30)],
            utc(2025, 11, 2, 7, 0),
        ),
        (
            BERLIN,
            (2, 3),
            [utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 1, 30)],
            utc(2025, 10, 26, 2, 0),
        ),
    ],
)
def test_both_passes_of_the_repeated_hour_are_inside_a_window_covering_it(
    tz, window_hours, repeated_hour, after_window
):
    window = SendWindow(tz, *window_hours)
    for instant in repeated_hour:
        assert into_window(instant, window) == instant
    next_day_start = into_window(after_window, window)
    assert wall(next_day_start, tz) == dt.datetime(
        2025, after_window.month, after_window.day + 1, window_hours[0]
    )


@pytest.mark.parametrize(
    ("tz", "window_hours", "second_pass", "next_day_start"),
    [
        (NEW_YORK, (0, 1), utc(2025, 11, 2, 6, 15), local(NEW_YORK, 2025, 11, 3, 0, 0)),
        (BERLIN, (1, 2), utc(2025, 10, 26, 1, 30), local(BERLIN, 2025, 10, 27, 1, 0)),
    ],
)
def test_second_pass_of_the_repeated_hour_is_outside_a_window_ending_before_it(
    tz, window_hours, second_pass, next_day_start
):
    assert into_window(second_pass, SendWindow(tz, *window_hours)) == next_day_start


@pytest.mark.parametrize(
    ("tz", "transition_day"),
    [
        (NEW_YORK, dt.date(2025, 3, 9)),
        (NEW_YORK, dt.date(2025, 11, 2)),
        (BERLIN, dt.date(2025, 3, 30)),
        (BERLIN, dt.date(2025, 10, 26)),
    ],
)
@pytest.mark.parametrize("wall_time", [dt.time(1, 30), dt.time(2, 30)])
def test_daily_steps_across_dst_fire_exactly_once_a_day(tz, transition_day, wall_time):
    window = SendWindow(tz, start_hour=1, end_hour=4)
    three_days_before = transition_day - dt.timedelta(days=3)
    fire = dt.datetime.combine(three_days_before, wall_time, ZoneInfo(tz)).astimezone(UTC)
    fire_days = []
    for _ in range(7):
        fire = due_time(fire, Delay(calendar_days=1), window)
        fire_days.append(wall(fire, tz).date())
        assert window.start_hour <= wall(fire, tz).hour < window.end_hour
    first = transition_day - dt.timedelta(days=2)
    assert fire_days == [first + dt.timedelta(days=i) for i in range(7)]


@pytest.mark.parametrize(
    ("tz", "evening"),
    [
        (NEW_YORK, (2025, 3, 8, 22, 0)),
        (NEW_YORK, (2025, 11, 1, 22, 0)),
        (BERLIN, (2025, 3, 29, 22, 0)),
        (BERLIN, (2025, 10, 25, 22, 0)),
    ],
)
def test_hourly_steps_across_dst_are_one_elapsed_hour_apart(tz, evening):
    window = SendWindow(tz)
    fires = [local(tz, *evening)]
    for _ in range(8):
        fires.append(due_time(fires[-1], Delay(hours=1), window))
    assert all(b - a == dt.timedelta(hours=1) for a, b in pairwise(fires))


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end"), [(9, 9), (10, 9), (-1, 5), (0, 25), (24, 24), (0, 0)])
def test_send_window_rejects_bad_hours(start, end):
    with pytest.raises(ValueError):
        SendWindow(start_hour=start, end_hour=end)


def test_send_window_rejects_unknown_timezone_and_holiday_country():
    with pytest.raises(ValueError, match="timezone"):
        SendWindow(timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="holiday"):
        SendWindow(holidays="XX")


def test_delay_rejects_negative_values():
    for delay in ({"business_days": -1}, {"calendar_days": -1}, {"hours": -0.5}):
        with pytest.raises(ValueError):
            Delay(**delay)


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="naive"):
        into_window(dt.datetime(2025, 6, 6, 9), SendWindow())
    with pytest.raises(ValueError, match="naive"):
        add_delays(dt.datetime(2025, 6, 6, 9), Delay(hours=1), "UTC")


@pytest.mark.parametrize("name", ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"])
def test_valid_timezone_accepts_iana_names(name):
    assert valid_timezone(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Mars/Olympus_Mons",
        "america/new_york",
        "America",
        "America/",
        "../etc/passwd",
        "/etc/localtime",
        "localtime",
    ],
)
def test_valid_timezone_rejects_everything_else(name):
    assert not valid_timezone(name)


def test_valid_holiday_country():
    assert valid_holiday_country("US")
    assert valid_holiday_country("DE")
    assert not valid_holiday_country("XX")
    assert not valid_holiday_country("")
    assert valid_holiday_country("GB-ENG") and valid_holiday_country("US-CA")
    assert not valid_holiday_country("GB-XX") and not valid_holiday_country("GB-")


# --- properties --------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
ZONES = [
    "UTC",
    NEW_YORK,
    BERLIN,
    CHICAGO,
    "Asia/Kolkata",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST shift
]


@cache
def _offset_changes(tz: str) -> tuple[dt.datetime, ...]:
    """Instants in 2025 where `tz` changes its UTC offset (all of ours change on :00 or :30)."""
    zone = ZoneInfo(tz)
    changes = []
    instant = utc(2025, 1, 1)
    offset = instant.astimezone(zone).utcoffset()
    while instant.year == 2025:
        instant += dt.timedelta(minutes=30)
        new_offset = instant.astimezone(zone).utcoffset()
        if new_offset != offset:
            changes.append(instant)
            offset = new_offset
    return tuple(changes)


@cache
def _holidays_of(country: str, year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays(country, years=year))


def in_open_slot(instant: dt.datetime, window: SendWindow) -> bool:
    """The spec's rule, read off the local wall clock; independent of the implementation."""
    here = instant.astimezone(ZoneInfo(window.timezone))
    if window.weekdays_only and here.weekday() >= 5:
        return False
    if window.holidays and here.date() in _holidays_of(window.holidays, here.year):
        return False
    return window.start_hour <= here.hour < window.end_hour


@st.composite
def send_windows(draw) -> SendWindow:
    start = draw(st.integers(0, 23))
    end = draw(st.integers(start + 1, 24))
    return SendWindow(
        timezone=draw(st.sampled_from(ZONES)),
        start_hour=start,
        end_hour=end,
        weekdays_only=draw(st.booleans()),
        holidays=draw(st.sampled_from([None, "US", "DE"])),
    )


def instants_in(tz: str):
    """Aware UTC instants, half of them within a few hours of one of `tz`'s DST changes."""
    anywhere = st.datetimes(
        min_value=dt.datetime(2024, 1, 1),
        max_value=dt.datetime(2026, 12, 31),
        timezones=st.just(UTC),
    )
    changes = _offset_changes(tz)
    if not changes:
        return anywhere
    shift = st.one_of(
        st.integers(-16, 16).map(lambda half_hours: dt.timedelta(minutes=30 * half_hours)),
        st.integers(-8 * 3600, 8 * 3600).map(lambda seconds: dt.timedelta(seconds=seconds)),
    )
    near_change = st.builds(lambda change, by: change + by, st.sampled_from(changes), shift)
    return st.one_of(anywhere, near_change)


@st.composite
def window_and_instants(draw, count: int = 1):
    window = draw(send_windows())
    return window, *[draw(instants_in(window.timezone)) for _ in range(count)]


@PROPERTY_SETTINGS
@given(window_and_instants())
def test_into_window_result_is_open_and_never_earlier(case):
    window, instant = case
    result = into_window(instant, window)
    assert result >= instant
    assert in_open_slot(result, window)
    assert result.tzinfo is UTC


@PROPERTY_SETTINGS
@given(window_and_instants(), st.floats(0, 1, exclude_max=True))
def test_into_window_skips_no_open_instant(case, fraction):
    window, instant = case
    result = into_window(instant, window)
    if in_open_slot(instant, window):
        assert result == instant
    else:
        just_before = result - dt.timedelta(microseconds=1)
        assert not in_open_slot(just_before, window)
        # timedelta * float rounds to the microsecond, so keep the point strictly before result.
        assert not in_open_slot(min(instant + (result - instant) * fraction, just_before), window)


@PROPERTY_SETTINGS
@given(window_and_instants())
def test_into_window_is_idempotent(case):
    window, instant = case
    once = into_window(instant, window)
    assert into_window(once, window) == once


@PROPERTY_SETTINGS
@given(window_and_instants(count=2))
def test_into_window_is_monotone(case):
    window, first, second = case
    earlier, later = sorted((first, second))
    assert into_window(earlier, window) <= into_window(later, window)


@PROPERTY_SETTINGS
@given(
    window_and_instants(),
    st.builds(
        Delay,
        business_days=st.integers(0, 30),
        calendar_days=st.integers(0, 30),
        hours=st.one_of(st.integers(0, 72), st.floats(0, 72, allow_nan=False)),
    ),
)
def test_due_time_is_never_earlier_than_anchor_plus_delays(case, delay):
    window, anchor = case
    moved = add_delays(anchor, delay, window.timezone, window.holidays)
    due = due_time(anchor, delay, window)
    assert due == into_window(moved, window)
    assert due >= moved >= anchor + dt.timedelta(hours=delay.hours)
    # Each day delay is a local day: at most one DST hour shorter than 24 h in these zones.
    days = delay.business_days + delay.calendar_days
    assert moved >= anchor + dt.timedelta(days=days, hours=delay.hours) - dt.timedelta(hours=1)
    if days:
        anchor_day = anchor.astimezone(ZoneInfo(window.timezone)).date()
        expected_day = add_business_days(anchor_day, delay.business_days, window.holidays)
        expected_day += dt.timedelta(days=delay.calendar_days)
        before_hours = moved - dt.timedelta(hours=delay.hours)
        assert wall(before_hours, window.timezone).date() == expected_day
