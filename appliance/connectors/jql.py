"""JQL literals (strings quoted for JQL, `updated >=` bounds in the user's time zone) and Jira's
time stamps."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from appliance.connectors.base import utc


def jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jql_bound(since: datetime, tz: ZoneInfo) -> str:
    """The JQL date literal for `since`: floored to the minute in `tz`, an hour earlier when that
    local time is ambiguous (DST fall-back), so the bound is never later than `since`."""
    local = utc(since).astimezone(tz).replace(second=0, microsecond=0)
    naive = local.replace(tzinfo=None)
    if naive.replace(tzinfo=tz, fold=0).utcoffset() != naive.replace(tzinfo=tz, fold=1).utcoffset():
        local -= timedelta(hours=1)
    return local.strftime("%Y/%m/%d %H:%M")


def parse_time(value: str | None) -> datetime | None:
    """Jira's "2026-11-28T22:32:00.123+0100" as aware UTC (ValueError without an offset).
    fromisoformat: strptime cost 17 us a call, and a poll page parses three per item."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"Jira time without a UTC offset: {value!r}")
    return utc(parsed)
