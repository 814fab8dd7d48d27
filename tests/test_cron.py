"""`sync_schedule` matching agrees with croniter itself."""

from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from seqctl.engine.cycle import cron_matches

EXPRESSIONS = ["*/5 * * * *", "0 9 * * 1-5", "15,45 8-18 * * *", "0 0 1 * *",
               "30 6 1 * 1", "*/7 */3 * 2-11 *", "0 12 * * 0"]


@pytest.mark.parametrize("expression", EXPRESSIONS)
@settings(max_examples=200, deadline=None)
@given(minutes=st.integers(min_value=0, max_value=60 * 24 * 800))
def test_cron_matches_agrees_with_croniter(expression, minutes):
    when = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    assert cron_matches(expression, when) == croniter.match(expression, when)
