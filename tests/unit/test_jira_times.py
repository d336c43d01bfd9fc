"""Jira's timestamps ("2026-11-28T22:32:00.123+0100": milliseconds, an offset without a colon)."""

from datetime import datetime, timezone

import pytest

from appliance.connectors.jira import parse_time


def test_offsets_become_utc_with_milliseconds_kept():
    assert parse_time("2026-11-28T22:32:00.123+0100") == datetime(2026, 11, 28, 21, 32, 0, 123000, timezone.utc)
    assert parse_time("2026-11-28T22:32:00.000-0530") == datetime(2026, 11, 29, 4, 2, tzinfo=timezone.utc)
    assert parse_time("2026-11-28T22:32:00.000+0000").tzinfo is timezone.utc


def test_a_time_without_an_offset_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="without a UTC offset"):
        parse_time("2026-11-28T22:32:00.123")


def test_no_time_is_none():
    assert parse_time(None) is None and parse_time("") is None
