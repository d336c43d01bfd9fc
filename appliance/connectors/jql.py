"""JQL literals: strings quoted for JQL, and `updated >=` bounds in the user's time zone."""

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
