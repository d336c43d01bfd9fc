"""GitLabConnector.changed_since (appliance/connectors/gitlab.py): the project's issues updated
since a time, in pages that neither skip nor repeat an issue edited while paging; and GitLab's
timestamps, which that rests on.

`updated_after` is inclusive ("on or after") and compared with the stored microsecond value,
while the API prints milliseconds. A poll asks from `since` rounded down to the millisecond (an
overlap: the engine de-duplicates), ordered by updated_at (GitLab breaks ties by id).

GitLab's issue list pages by offset only (no keyset pagination, no filter excluding ids; see
../shared/specs/), and offsets shift when an edit moves an issue to the end. So the cursor is a
keyset of its own: the instant (printed ms) of the last issue returned, the iids returned at
that instant, and how many of the instant's issues preceded the first not returned. Each page
is read from that instant on; rows returned before are dropped. Within one instant the issues
keep their order, and an edit only takes one out of it (to a later instant: it is returned
again there, as a new change). Up to 100 returned rows, a page from the instant's start holds
them and what follows. Past that (a bulk edit), pages go by offset within the instant, sized
so a page starts on a row already returned, which proves none was skipped; a page that does
not (edits shifted the rest forward) is read again one page back until it does.

The first page's `total` is the X-Total header of its request; beyond the 10,000 rows GitLab
counts there, when more pages follow, one issues_statistics request counts them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from appliance.connectors.base import ChangePage, RemoteItemError, RetriableRemoteError, readable, utc

if TYPE_CHECKING:
    from appliance.connectors.gitlab import GitLabConnector

log = logging.getLogger(__name__)

PER_PAGE = 100  # GitLab's largest page


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def api_time(value: datetime) -> str:
    """`value` rounded down to GitLab's printed precision (ms), as it accepts it."""
    value = utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


async def changed_page(gl: GitLabConnector, container: str, since: datetime | None, cursor: str | None,
                       page_size: int) -> ChangePage:
    """One page of GitLabConnector.changed_since (the module docstring says how it pages)."""
    state = json.loads(base64.urlsafe_b64decode(cursor)) if cursor else {
        "after": api_time(since) if since else None, "seen": []}
    after, seen = state["after"], set(state["seen"])
    at = state.get("at", len(seen))  # a cursor from before "at" was kept: as if none had moved
    page_size = min(page_size, PER_PAGE)
    params: dict[str, Any] = {"order_by": "updated_at", "sort": "asc", "scope": "all", "state": "all"}
    if after:
        params["updated_after"] = after

    def returned(row: Mapping[str, Any]) -> bool:
        return api_time(parse_time(row["updated_at"])) == after and str(row["iid"]) in seen

    if len(seen) + page_size <= PER_PAGE:
        per_page, page = len(seen) + page_size, 1
    else:
        # A size that does not divide `at` puts a returned row first; of those, the most new rows.
        per_page = max(range(2, PER_PAGE + 1), key=lambda n: (at % n != 0, n - at % n, n))
        page = at // per_page + 1
    ahead: list[dict[str, Any]] = []
    while True:
        response = await gl.http.request("GET", f"{gl.project_path(container)}/issues",
                                         params={**params, "per_page": per_page, "page": page})
        rows = response.json()
        if page == 1 or (rows and returned(rows[0])):
            break
        # Edits shifted the instant forward past this page's start: one page back (the page
        # just read follows that one, so it is used too).
        ahead, page = rows, page - 1
    more = len(ahead or rows) == per_page
    known = {row["iid"] for row in rows}
    rows += [row for row in ahead if row["iid"] not in known]
    offset = (page - 1) * per_page
    # X-Total counts every matching row, whatever the page size: the poll's size, when
    # GitLab still counts (it stops beyond 10,000 rows and leaves the header out).
    total = _count(response.headers.get("X-Total")) if cursor is None else None
    fresh = [(n, row) for n, row in enumerate(rows) if not returned(row)]
    items = [readable(lambda row=row: gl.to_item(row), item_id=str(row["iid"]), key=f"#{row['iid']}",
                      updated_at=parse_time(row["updated_at"])) for _, row in fresh[:page_size]]
    if not more and len(fresh) <= page_size:
        return ChangePage(items=items, next_cursor=None, total=total)
    if cursor is None and total is None:
        total = await _issue_count(gl, container, after)
    if not items:
        # Only rows returned before (the instant's end fell on this page's): go on past them.
        return ChangePage(items=[], next_cursor=_cursor(after, seen, offset + len(rows)), total=total)
    last = api_time(items[-1].updated_at)
    at_last = {i.id for i in items if api_time(i.updated_at) == last}
    if last == after:
        at_last |= seen
        at = offset + fresh[len(items) - 1][0] + 1
    else:
        at = len(at_last)  # the first issues of that instant: all before them were older
    return ChangePage(items=items, next_cursor=_cursor(last, at_last, at), total=total)


async def _issue_count(gl: GitLabConnector, container: str, after: str | None) -> int | None:
    """How many issues a poll from `after` holds, by issues_statistics, which counts past
    the 10,000 rows where X-Total stops; None when GitLab does not say (a refusal, or an
    outage outlasting the retries: a progress figure is not worth failing a poll for)."""
    params = {"scope": "all", **({"updated_after": after} if after else {})}
    try:
        answer = (await gl.http.request("GET", f"{gl.project_path(container)}/issues_statistics",
                                        params=params)).json()
    except (RemoteItemError, RetriableRemoteError) as exc:
        log.warning("GitLab did not count the issues of a poll (%s); it goes on without a total", exc,
                    extra={"connection": gl.http.connection_id})
        return None
    count = ((answer or {}).get("statistics") or {}).get("counts", {}).get("all")
    return count if isinstance(count, int) else None


def _cursor(after: str | None, seen: set[str], at: int) -> str:
    """Where a poll goes on: after the instant `after`, whose issues `seen` it returned, `at` of
    the instant's issues preceding the first it did not, as last read."""
    data = {"after": after, "seen": sorted(seen, key=int), "at": at}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _count(value: str | None) -> int | None:
    """A count header's value (X-Total) as a number; None when missing or not a count."""
    return int(value) if value and re.fullmatch(r"[0-9]+", value.strip()) else None
