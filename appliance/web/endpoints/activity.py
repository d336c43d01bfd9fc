"""An integration's page: where it stands and how it went. Tenant realm, role viewer.

  GET /api/v1/integrations/{id}/overview        state, current run with its progress, last run,
                                                next run, lag, counts of links, conflicts, ...
  GET /api/v1/integrations/{id}/series?hours=24  time buckets for the charts

Everything comes from what the tenant worker records: `runs` (a run in progress has status
"running" and the counts so far, which appliance.sync.jobs writes every few seconds while it
runs, so a backfill shows progress), `scheduled_jobs` (the next run of job `sync:<id>`), links,
conflicts, item errors and webhook deliveries.

Lag is how long ago the last run that did not fail finished: changes made in the apps since
then have not been looked at yet (the Prometheus lag is the same measure). In the series, a
run counts in the bucket in which it finished (one still running: in the current bucket, with its
counts so far), and each bucket's lag is the lag at the bucket's end (or now, for the last one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from appliance.web.api import API, ApiError, ApiModel, Context
from appliance.web.endpoints.integrations import ONE, RUN_COLUMNS, TAG, RunOut

#: Bucket sizes the series uses: the smallest that gives at most MAX_BUCKETS buckets.
BUCKET_SECONDS = (60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_BUCKETS = 60
MAX_HOURS = 24 * 30


class LinkCounts(ApiModel):
    total: int
    active: int
    conflict: int
    error: int
    deleted: int


class Totals(ApiModel):
    """Sums over the runs that finished in the last 24 hours."""

    runs: int
    failed_runs: int
    items_created: int
    items_updated: int
    comments_created: int
    errors: int
    api_calls: int
    rate_limit_wait_seconds: float


class Overview(ApiModel):
    id: int
    name: str
    state: Literal["disabled", "paused", "active"]
    current_run: RunOut | None = Field(description="The run in progress, with its counts so far (refreshed every "
                                                   "few seconds while it runs); null when none runs.")
    last_run: RunOut | None = Field(description="The last run that ended.")
    next_run_at: datetime | None = Field(description="When the worker runs it next; null when not active or not "
                                                     "scheduled yet.")
    last_success_at: datetime | None = Field(description="When the last run that did not fail ended.")
    lag_seconds: float | None = Field(description="Seconds since last_success_at; null before the first success.")
    links: LinkCounts
    open_conflicts: int
    failing_items: int
    pending_webhooks: int
    last_24h: Totals


class SeriesQuery(ApiModel):
    hours: int = Field(default=24, ge=1, le=MAX_HOURS, description="How far back.")


class Bucket(ApiModel):
    start: datetime
    runs: int
    failed_runs: int
    items_synced: int = Field(description="Items created plus items updated.")
    items_created: int
    items_updated: int
    comments_created: int
    errors: int
    api_calls: int
    retries: int
    rate_limit_wait_seconds: float
    lag_seconds: float | None = Field(description="Lag at the bucket's end; null before the first success.")


class Series(ApiModel):
    hours: int
    bucket_seconds: int
    buckets: list[Bucket] = Field(description="Oldest first; the last one holds now.")


async def _exists(conn, integration_id: int):
    row = await conn.fetchrow("SELECT id, name, enabled, paused FROM integrations WHERE id = $1", integration_id)
    if row is None:
        raise ApiError(404, f"There is no integration {integration_id}.")
    return row


@API.operation("GET", ONE + "/overview", summary="Where an integration stands", tags=[TAG], realm="tenant",
               role="viewer", response=Overview,
               description="State, the run in progress with its progress, the last run, the next run, lag, "
                           "and counts, for the integration's page.")
async def integration_overview(request: web.Request, ctx: Context) -> Overview:
    iid = ctx.path["id"]
    async with ctx.transaction() as conn:
        row = await _exists(conn, iid)
        current = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE integration_id = $1 "
                                      "AND status = 'running' ORDER BY id DESC LIMIT 1", iid)
        last = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE integration_id = $1 "
                                   "AND status <> 'running' ORDER BY id DESC LIMIT 1", iid)
        facts = await conn.fetchrow(
            "SELECT (SELECT max(finished_at) FROM runs WHERE integration_id = $1 AND status IN ('ok', 'partial')) "
            "  AS last_success, "
            "(SELECT next_run_at FROM scheduled_jobs WHERE name = 'sync:' || $1::bigint) AS next_run, "
            "(SELECT count(*) FROM conflicts WHERE integration_id = $1 AND state = 'open') AS conflicts, "
            "(SELECT count(*) FROM item_errors WHERE integration_id = $1) AS failing, "
            "(SELECT count(*) FROM webhook_deliveries WHERE integration_id = $1 AND processed_at IS NULL) AS hooks, "
            "now() AS now", iid)
        links = dict(await conn.fetch("SELECT state, count(*) FROM links WHERE integration_id = $1 GROUP BY state",
                                      iid))
        totals = await conn.fetchrow(
            "SELECT count(*) AS runs, count(*) FILTER (WHERE status = 'failed') AS failed_runs, "
            "coalesce(sum(items_created), 0) AS items_created, coalesce(sum(items_updated), 0) AS items_updated, "
            "coalesce(sum(comments_created), 0) AS comments_created, coalesce(sum(errors), 0) AS errors, "
            "coalesce(sum(api_calls), 0) AS api_calls, "
            "coalesce(sum(rate_limit_wait_seconds), 0) AS rate_limit_wait_seconds "
            "FROM runs WHERE integration_id = $1 AND finished_at > now() - interval '24 hours'", iid)
    state = "disabled" if not row["enabled"] else "paused" if row["paused"] else "active"
    success = facts["last_success"]
    return Overview(
        id=iid, name=row["name"], state=state,
        current_run=RunOut.of(current) if current else None, last_run=RunOut.of(last) if last else None,
        next_run_at=facts["next_run"] if state == "active" else None, last_success_at=success,
        lag_seconds=round(max((facts["now"] - success).total_seconds(), 0.0), 3) if success else None,
        links=LinkCounts(total=sum(links.values()), **{s: links.get(s, 0) for s in ("active", "conflict", "error",
                                                                                      "deleted")}),
        open_conflicts=facts["conflicts"], failing_items=facts["failing"], pending_webhooks=facts["hooks"],
        last_24h=Totals(**dict(totals)))


def bucket_seconds(hours: int) -> int:
    """The smallest BUCKET_SECONDS size that covers `hours` in at most MAX_BUCKETS buckets."""
    return next((size for size in BUCKET_SECONDS if hours * 3600 / size <= MAX_BUCKETS), BUCKET_SECONDS[-1])


# Buckets aligned to multiples of their size (so two requests a moment apart agree), from the
# one holding now - hours to the one holding now.
_SERIES = """
WITH b AS (
    SELECT g AS start, g + make_interval(secs => $3) AS stop
    FROM generate_series(to_timestamp(floor(extract(epoch FROM now() - make_interval(hours => $2)) / $3) * $3),
                         now(), make_interval(secs => $3)) AS g
)
SELECT b.start, count(r.id) AS runs, count(r.id) FILTER (WHERE r.status = 'failed') AS failed_runs,
       coalesce(sum(r.items_created), 0) AS items_created, coalesce(sum(r.items_updated), 0) AS items_updated,
       coalesce(sum(r.comments_created), 0) AS comments_created, coalesce(sum(r.errors), 0) AS errors,
       coalesce(sum(r.api_calls), 0) AS api_calls, coalesce(sum(r.retries), 0) AS retries,
       coalesce(sum(r.rate_limit_wait_seconds), 0) AS rate_limit_wait_seconds,
       extract(epoch FROM least(b.stop, now()) - (
           SELECT max(s.finished_at) FROM runs s WHERE s.integration_id = $1 AND s.status IN ('ok', 'partial')
           AND s.finished_at <= least(b.stop, now())))::float8 AS lag_seconds
FROM b LEFT JOIN runs r ON r.integration_id = $1 AND coalesce(r.finished_at, now()) >= b.start
                       AND coalesce(r.finished_at, now()) < b.stop
GROUP BY b.start, b.stop
ORDER BY b.start
"""


@API.operation("GET", ONE + "/series", summary="An integration's activity over time", tags=[TAG], realm="tenant",
               role="viewer", query=SeriesQuery, response=Series,
               description="Buckets of items synced, errors, API calls, rate-limit waits and lag over the last "
                           "`hours`, for the throughput and error charts. The bucket size is the smallest of "
                           "1, 5, 15, 30 min, 1, 2, 3, 6, 12, 24 h that gives at most 60 buckets.")
async def integration_series(request: web.Request, ctx: Context) -> Series:
    iid, hours = ctx.path["id"], ctx.query.hours
    size = bucket_seconds(hours)
    async with ctx.transaction() as conn:
        await _exists(conn, iid)
        rows = await conn.fetch(_SERIES, iid, hours, float(size))
    buckets = [Bucket(**{k: r[k] for k in r.keys() if k != "lag_seconds"},
                      items_synced=r["items_created"] + r["items_updated"],
                      lag_seconds=None if r["lag_seconds"] is None else round(max(r["lag_seconds"], 0.0), 3))
               for r in rows]
    return Series(hours=hours, bucket_seconds=size, buckets=buckets)
