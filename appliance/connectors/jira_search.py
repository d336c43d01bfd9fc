"""Searching Jira for the Jira connector (appliance.connectors.jira): the poll's pages of
changed issues, their count, and the search for an issue by its sync marker.

changed_since: JQL `updated >= "yyyy/MM/dd HH:mm"` has minute precision and is read in the
account's time zone (myself.timeZone). The connector asks from `since` floored to the minute in
that zone (an hour earlier when the local time is ambiguous at a DST fall-back), orders by
updated then key, and keeps only items with updated >= since at full precision. Paging is by
keyset, not offset: the cursor holds the last (updated, ids at that instant), so an issue edited
while paging moves to the end instead of shifting others out of view. The first page's `total` is
Data Center's search `total`; on Cloud, only when more pages follow, one search/approximate-count.

find_by_marker first searches JQL `issue.property[tandem.sync].marker = "..."`, which finds the
issue where an admin had the property indexed. Jira indexes an entity property for JQL only where
an installed app declares it, and Tandem is no Jira app: elsewhere Jira takes the clause and
matches nothing (no error). So when that search finds nothing, or is refused (400), the connector
looks through the issues this account created, newest first (`creator = currentUser()`, at most
SCAN_WINDOW of them: the create being recovered is recent, and other people's issues, however
many, do not push it out of view), reading the marker from the search results themselves
(`properties=tandem.sync`), so nothing is read per issue.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from appliance.connectors.base import (ChangePage, Item, RemoteItemError, RetriableRemoteError, readable,
                                       utc)
from appliance.connectors.jql import jql_bound, jql_string, parse_time

log = logging.getLogger(__name__)

PROPERTY = "tandem.sync"
SCAN_WINDOW = 100
MARKER_FIELDS = ("created",)     # a search for markers needs the properties, hardly any field


class JiraSearch:
    """Mixed into JiraConnector: uses its `_setup`, `_schemas`, `_json`, `_item`, `get_item`,
    `_cloud`, `_tz` and `http`."""

    async def _search(self, jql: str, *, limit: int, start: int = 0, at: dict | None = None,
                      fields: tuple[str, ...] = ("*all",)) -> AsyncIterator[dict]:
        """Issues matching `jql` (`fields`, all by default, and the marker property), at most
        `limit` per request, from result `start` on (Data Center). Cloud's enhanced search pages
        by token: there `at["token"]` (when given) is where to begin, and is kept as the token of
        the page the last yielded issue came from (None: the first), to resume the same query
        there; a token Jira no longer accepts starts the query again from the first page. Data
        Center counts the matches in every answer: `at["total"]` is set to the first answer's
        count (Cloud's enhanced search counts nothing: see _approximate_count)."""
        await self._setup()
        await self._schemas()      # the issues yielded may become Items (JiraConnector._item)
        at = at if at is not None else {}
        body: dict[str, Any] = {"jql": jql, "maxResults": limit, "fields": list(fields), "properties": [PROPERTY]}
        if self._cloud:
            token = at.get("token")
            while True:
                try:
                    page = await self._json("POST", "search/jql", idempotent=True,
                                            json=dict(body, **({"nextPageToken": token} if token else {})))
                except RemoteItemError as exc:
                    if token is None or token != at.get("token") or exc.status != 400:
                        raise
                    log.info("Jira refused a saved search page token (%s); reading from the first page", exc)
                    token = at["token"] = None
                    continue
                at["token"] = token
                for issue in page.get("issues") or []:
                    yield issue
                token = page.get("nextPageToken")
                if page.get("isLast", not token) or not token:
                    return
        # Data Center's POST /search refuses "properties": use GET there.
        params = {"jql": jql, "maxResults": limit, "fields": ",".join(fields), "properties": PROPERTY}
        while True:
            page = await self._json("GET", "search", params=dict(params, startAt=start))
            at.setdefault("total", page.get("total"))
            issues = page.get("issues") or []
            for issue in issues:
                yield issue
            start += len(issues)
            if not issues or start >= page.get("total", 0):
                return

    async def changed_since(self, container: str, since: datetime | None, cursor: str | None, *,
                            page_size: int = 50) -> ChangePage:
        await self._setup()
        last: datetime | None = None
        seen: set[str] = set()
        state: dict[str, Any] = {}
        if cursor:
            state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            last, seen = datetime.fromisoformat(state["u"]), set(state["ids"])
        floor = max(t for t in (since, last) if t is not None) if (since or last) else None
        matching = f"project = {jql_string(container)}"
        if floor is not None:
            matching += f' AND updated >= "{jql_bound(floor, self._tz)}"'
        jql = matching + " ORDER BY updated ASC, key ASC"
        # JQL bounds are whole minutes: thousands of issues in one minute (an import, a bulk
        # change) would be re-read from the first on every page, quadratic in their number.
        # The same query resumes where the last page stopped, a page earlier in case issues
        # updated meanwhile moved out of the order (re-read ones are filtered out below).
        same = state.get("q") == jql
        start = max(0, state.get("at", 0) - page_size) if same else 0
        # Cloud resumes at the search page the last one stopped in (its token; a position there
        # has no meaning), re-reading its first issues, which are filtered out below.
        where = {"token": state.get("t") if same else None}
        items: list[Item] = []
        exhausted = True
        position = start
        async for issue in self._search(jql, limit=min(100, page_size * 2), start=start, at=where):
            position += 1
            # Filtered on the raw issue: the page re-read above is most of what is dropped here,
            # and converting an issue (its description and comments) is what reading one costs.
            updated = parse_time(issue["fields"]["updated"])
            if since is not None and updated < utc(since):
                continue
            if last is not None and (updated < last or (updated == last and str(issue["id"]) in seen)):
                continue
            items.append(readable(lambda: self._item(issue), item_id=str(issue["id"]), key=issue.get("key", ""),
                                  updated_at=updated))
            if len(items) >= page_size:
                exhausted = False
                break
        items.sort(key=lambda i: (i.updated_at, int(i.id) if i.id.isdigit() else 0))
        # Only the first page carries the total; Data Center's search counted the matches.
        total = where.get("total") if cursor is None else None
        if exhausted or not items:
            return ChangePage(items, None, total)
        top = items[-1].updated_at
        ids = [i.id for i in items if i.updated_at == top] + (list(seen) if top == last else [])
        token = base64.urlsafe_b64encode(json.dumps({"u": top.isoformat(), "ids": ids, "q": jql,
                                                      "at": position, "t": where["token"]}).encode()).decode()
        if cursor is None and self._cloud:
            total = await self._approximate_count(matching)
        return ChangePage(items, token, total)

    async def _approximate_count(self, jql: str) -> int | None:
        """Jira Cloud's estimate of how many issues match `jql` (a filter without ORDER BY), or
        None: a progress figure is not worth failing a poll for, so a refusal (RemoteItemError)
        or an outage outlasting the retries (RetriableRemoteError) is logged and swallowed.
        RemoteAuthError propagates as from any other call."""
        try:
            answer = await self._json("POST", "search/approximate-count", idempotent=True, json={"jql": jql})
        except (RemoteItemError, RetriableRemoteError) as exc:
            log.warning("Jira did not count the issues of a poll (%s); it goes on without a total", exc,
                        extra={"connection": self.http.connection_id})
            return None
        count = (answer or {}).get("count")
        return count if isinstance(count, int) else None

    async def find_by_marker(self, container: str, marker: str) -> Item | None:
        """See the module docstring: the property clause, then this account's newest issues."""
        project = jql_string(container)
        indexed = f"project = {project} AND issue.property[{PROPERTY}].marker = {jql_string(marker)}"
        try:
            async for issue in self._search(indexed, limit=10, fields=MARKER_FIELDS):
                if _marker(issue) == marker:
                    return await self.get_item(container, str(issue["id"]), comments=False)
        except RemoteItemError as exc:
            if exc.status != 400:
                raise
            log.info("Jira refused JQL on issue properties (%s)", exc, extra={"connection": self.http.connection_id})
        # Ties of `created` (a bulk import) are broken by key, which grows with each create.
        ours = f"project = {project} AND creator = currentUser() ORDER BY created DESC, key DESC"
        seen = 0
        async for issue in self._search(ours, limit=SCAN_WINDOW, fields=MARKER_FIELDS):
            if _marker(issue) == marker:
                return await self.get_item(container, str(issue["id"]), comments=False)
            seen += 1
            if seen >= SCAN_WINDOW:
                break
        return None


def _marker(issue: dict) -> str | None:
    """The sync marker of a search result (its `properties`), without converting the issue."""
    return ((issue.get("properties") or {}).get(PROPERTY) or {}).get("marker")
