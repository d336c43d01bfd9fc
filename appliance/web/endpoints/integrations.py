"""Integrations: /api/v1/integrations, tenant realm. Viewers read, editors write.

An integration is an IntegrationSpec (appliance.sync.spec) between two connections, a name,
and its switches: `enabled` (the engine in the tenant worker runs it) and `paused` (kept, not
run). The spec is validated by IntegrationSpec and then against the tenant's connections:
each side's connection exists, and the spec only names what that kind of app has (item types,
canonical fields, user matching by login only where the app has logins). Errors name the
field ("spec.side_b.connection_id").

Per integration, what the engine recorded: runs, links (synced pairs), events (searchable by
item key or text), conflicts held for a person (resolve by choosing a side or giving a value), and failed items
(retry one now: its backoff is reset and it is queued for the engine).

Webhooks: each integration has a random secret; its webhook URL for side A and B is
`https://<tenant host>/api/v1/hooks/{integration_id}/{secret}?side=a|b`, received by
appliance/web/endpoints/hooks.py, which queues the items a delivery names in
`webhook_deliveries` (enqueue_item, also used by retry). A delivery only says "look at item
X now"; the poll remains the safety net.

Preview (POST .../{id}/preview) lives in appliance/web/endpoints/preview.py.

Every change is recorded in the tenant's audit log.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from appliance import audit
from appliance.db import jsonb
from appliance.sync.connections import check_spec
from appliance.sync.spec import IntegrationSpec
from appliance.web.api import (API, ApiError, ApiModel, Context, Page, PageQuery, ValidationFailed, decode_cursor,
                               omittable)

TAG = "integrations"
INTEGRATIONS = "/api/v1/integrations"
ONE = INTEGRATIONS + "/{id}"
HOOKS = "/api/v1/hooks/{integration_id}/{secret}"
Side = Literal["a", "b"]
MAX_ITEM_ID = 200


# --- models --------------------------------------------------------------------------------------

def _name(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return None if value is None else value.strip()


class IntegrationCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100)
    _check_name = field_validator("name")(_name)
    spec: IntegrationSpec
    enabled: bool = Field(default=False, description="Start syncing at once.")


class IntegrationPatch(ApiModel):
    """Only the fields given change (none of them may be null). The sides cannot change once
    items are linked."""

    name: str = omittable(min_length=1, max_length=100)
    spec: IntegrationSpec = omittable()
    _check_name = field_validator("name")(_name)
    enabled: bool = omittable()
    paused: bool = omittable()


class WebhookUrls(ApiModel):
    a: str = Field(description="Register this URL with side A's app.")
    b: str = Field(description="Register this URL with side B's app.")


#: The time left is given once the poll has run this long and done this many items.
ETA_AFTER_SECONDS = 5.0
ETA_AFTER_ITEMS = 10


class RunProgress(ApiModel):
    """How far the poll of a run in progress has got (a run polls side A, then side B)."""

    side: Side = Field(description="The side being polled.")
    started_at: datetime = Field(description="When the poll of this side began.")
    items_done: int = Field(description="Changed items of this side's poll done so far.")
    items_total: int | None = Field(
        description="About how many changed items this side's poll holds: what the app counted when the poll began "
                    "(never below items_done; items changed meanwhile are looked at too). Null when the app does "
                    "not say (Jira Cloud, when the poll fits one page) or its count failed.")
    items_per_second: float | None = Field(description="Items done per second over about the last two minutes (since "
                                                       "the poll began, while it is younger); null in its first "
                                                       "seconds.")
    seconds_left: float | None = Field(
        description="Time left for this side's poll at that rate; null without a total, or before "
                    f"{ETA_AFTER_SECONDS:g} s and {ETA_AFTER_ITEMS} items.")

    @classmethod
    def of(cls, row: asyncpg.Record) -> RunProgress | None:
        """From a `runs` row read with RUN_COLUMNS; None unless the run is polling."""
        if row["status"] != "running" or row["poll_side"] is None:
            return None
        done, total = row["poll_items_done"], row["poll_items_total"]
        total = None if total is None else max(total, done)
        elapsed = (row["as_of"] - row["poll_started_at"]).total_seconds()
        rate = row["poll_items_per_second"] if elapsed >= ETA_AFTER_SECONDS and done >= ETA_AFTER_ITEMS else None
        return cls(side=row["poll_side"], started_at=row["poll_started_at"], items_done=done, items_total=total,
                   items_per_second=None if rate is None else round(rate, 2),
                   seconds_left=None if not rate or total is None else round((total - done) / rate, 1))


class RunOut(ApiModel):
    id: int
    trigger: str
    status: Literal["running", "ok", "partial", "failed"]
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    items_seen: int
    items_created: int
    items_updated: int
    comments_created: int
    conflicts: int
    errors: int
    api_calls: int
    retries: int
    rate_limit_wait_seconds: float
    error: str | None
    progress: RunProgress | None = Field(description="How far the run's poll has got, while it runs and polls; "
                                                     "null otherwise (webhook runs do not poll).")

    @classmethod
    def of(cls, row: asyncpg.Record) -> RunOut:
        """From a `runs` row read with RUN_COLUMNS."""
        return cls(**{k: row[k] for k in cls.model_fields if k != "progress"}, progress=RunProgress.of(row))


class IntegrationOut(ApiModel):
    id: int
    name: str
    enabled: bool
    paused: bool
    state: Literal["disabled", "paused", "active"]
    spec: IntegrationSpec
    webhook_urls: WebhookUrls
    open_conflicts: int
    failing_items: int
    last_run: RunOut | None
    created_at: datetime
    updated_at: datetime


class LinkOut(ApiModel):
    id: int
    a_id: str
    b_id: str
    a_key: str
    b_key: str
    a_url: str = Field(description="Opens the item in side A's app.")
    b_url: str = Field(description="Opens the item in side B's app.")
    a_title: str = Field(description='The title as last synced from A ("" when titles are not mapped).')
    b_title: str = Field(description='The title as last synced from B ("" when titles are not mapped).')
    state: Literal["active", "conflict", "error", "deleted"]
    created_at: datetime
    synced_at: datetime


class LinkQuery(PageQuery):
    q: str | None = Field(default=None, min_length=1, max_length=200,
                          description="Part of either item's key or title (as last synced), ignoring case.")


class EventOut(ApiModel):
    id: int
    run_id: int | None
    link_id: int | None
    at: datetime
    action: str
    direction: Literal["", "a_to_b", "b_to_a"]
    item_key: str
    fields: list[str]
    detail: str


class EventQuery(PageQuery):
    q: str | None = Field(default=None, min_length=1, max_length=200,
                          description="Part of the item key or of the event's text (which names the item's "
                                      "title), ignoring case.")
    link_id: int | None = Field(default=None, ge=1, le=2**63 - 1,
                                description="Only the events of this linked pair (an item's history, both ways).")


class ConflictOut(ApiModel):
    id: int
    link_id: int
    a_key: str
    b_key: str
    field: str
    a_value: Any
    b_value: Any
    base_value: Any
    state: Literal["open", "resolved"]
    resolution: str | None
    resolved_value: Any
    resolved_by: str | None
    created_at: datetime
    resolved_at: datetime | None
    applied_at: datetime | None = Field(description="When the engine wrote the resolution to the apps.")


class ConflictQuery(PageQuery):
    state: Literal["open", "resolved", "all"] = "open"


class Resolve(ApiModel):
    """Exactly one of `side` and `value`."""

    side: Side | None = Field(default=None, description="Whose current value wins; the engine writes it to the "
                                                        "other side.")
    value: Any = Field(default=None, description="A value of your own, as side A holds the field (e.g. a Jira "
                                                 "status name); the engine writes it to A and maps it to B.")


class ItemErrorOut(ApiModel):
    side: Side
    item_id: str
    item_key: str
    attempts: int
    error: str
    first_failed_at: datetime
    last_failed_at: datetime
    next_attempt_at: datetime


class Retry(ApiModel):
    side: Side
    item_id: str = Field(min_length=1, max_length=MAX_ITEM_ID)


# --- helpers -------------------------------------------------------------------------------------

_COLUMNS = "id, name, enabled, paused, spec::text AS spec, webhook_secret, created_at, updated_at"
RUN_COLUMNS = ("id, trigger, status, started_at, finished_at, duration_seconds, items_seen, items_created, "
               "items_updated, comments_created, conflicts, errors, api_calls, retries, rate_limit_wait_seconds, "
               "error, poll_side, poll_started_at, poll_items_done, poll_items_total, poll_items_per_second, "
               "now() AS as_of")


def _missing(integration_id: int) -> ApiError:
    return ApiError(404, f"There is no integration {integration_id}.")


async def _load(conn: asyncpg.Connection, integration_id: int, *, lock: bool = False) -> asyncpg.Record:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM integrations WHERE id = $1" + (" FOR UPDATE" if lock else ""),
                              integration_id)
    if row is None:
        raise _missing(integration_id)
    return row


async def _out(conn: asyncpg.Connection, ctx: Context, row: asyncpg.Record) -> IntegrationOut:
    counts = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM conflicts WHERE integration_id = $1 AND state = 'open') AS conflicts, "
        "(SELECT count(*) FROM item_errors WHERE integration_id = $1) AS errors", row["id"])
    run = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE integration_id = $1 ORDER BY id DESC LIMIT 1",
                              row["id"])
    hook = f"https://{ctx.realm.host}/api/v1/hooks/{row['id']}/{row['webhook_secret']}?side="
    state = "disabled" if not row["enabled"] else "paused" if row["paused"] else "active"
    return IntegrationOut(id=row["id"], name=row["name"], enabled=row["enabled"], paused=row["paused"], state=state,
                          spec=IntegrationSpec.model_validate_json(row["spec"]),
                          webhook_urls=WebhookUrls(a=hook + "a", b=hook + "b"),
                          open_conflicts=counts["conflicts"], failing_items=counts["errors"],
                          last_run=RunOut.of(run) if run else None,
                          created_at=row["created_at"], updated_at=row["updated_at"])


async def _check_spec(conn: asyncpg.Connection, spec: IntegrationSpec) -> None:
    problems = await check_spec(conn, spec)
    if problems:
        raise ValidationFailed.many(problems)


async def check_spec_change(conn: asyncpg.Connection, row: asyncpg.Record, spec: IntegrationSpec) -> None:
    """What PATCH checks of a new `spec` for the integration in `row` (the preview of an unsaved
    edit checks the same): 422 when it does not fit the connections, 409 when it would change
    the sides while items are linked."""
    await _check_spec(conn, spec)
    old = IntegrationSpec.model_validate_json(row["spec"])
    if (spec.side_a, spec.side_b) != (old.side_a, old.side_b) and await conn.fetchval(
            "SELECT EXISTS (SELECT FROM links WHERE integration_id = $1)", row["id"]):
        raise ApiError(409, "The sides of an integration cannot change once items are linked; create a "
                            "new integration instead.")


async def _audit(conn: asyncpg.Connection, ctx: Context, action: str, row: asyncpg.Record | None, name: str,
                 **details: Any) -> None:
    await audit.log_event(conn, ctx.actor, action, name,
                          {"integration_id": row["id"] if row is not None else None, **details}, ctx.client_addr)


def _text_cursor(ctx: Context, *types: type) -> tuple:
    """The query's cursor (all None without one); a text part holding NUL is no cursor of ours."""
    if not ctx.query.cursor:
        return (None,) * len(types)
    key = decode_cursor(ctx.query.cursor, *types)
    if any(isinstance(part, str) and "\x00" in part for part in key):
        raise ValidationFailed("cursor", "not a cursor of this list; start again without one")
    return key


async def enqueue_item(conn: asyncpg.Connection, integration_id: int, side: str, item_id: str, kind: str) -> None:
    """Queue `item_id` of `side` for the tenant worker's engine (a webhook's or a retry's fast path)."""
    await conn.execute("INSERT INTO webhook_deliveries (integration_id, side, item_id, kind) VALUES ($1, $2, $3, $4)",
                       integration_id, side, item_id, kind)


# --- integrations --------------------------------------------------------------------------------

@API.operation("GET", INTEGRATIONS, summary="List integrations", tags=[TAG], realm="tenant", role="viewer",
               query=PageQuery, response=Page[IntegrationOut], description="By name.")
async def list_integrations(request: web.Request, ctx: Context) -> Page[IntegrationOut]:
    limit = ctx.query.limit
    after = _text_cursor(ctx, str, int)
    async with ctx.transaction() as conn:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM integrations WHERE $1::text IS NULL OR (name, id) > ($1, $2) "
                                "ORDER BY name, id LIMIT $3", after[0], after[1], limit + 1)
        items = [await _out(conn, ctx, r) for r in rows]
    return Page[IntegrationOut].of(items, limit, key=lambda i: (i.name, i.id))


@API.operation("POST", INTEGRATIONS, summary="Create an integration", tags=[TAG], realm="tenant", role="editor",
               body=IntegrationCreate, response=IntegrationOut, status=201,
               errors={409: "An integration with this name exists."})
async def create_integration(request: web.Request, ctx: Context) -> IntegrationOut:
    body = ctx.body
    name = body.name
    async with ctx.transaction() as conn:
        await _check_spec(conn, body.spec)
        try:
            row = await conn.fetchrow(
                f"INSERT INTO integrations (name, enabled, spec, webhook_secret) VALUES ($1, $2, $3::jsonb, $4) "
                f"RETURNING {_COLUMNS}", name, body.enabled, body.spec.model_dump_json(), secrets.token_urlsafe(32))
        except asyncpg.UniqueViolationError:
            raise ApiError(409, f"An integration named {name!r} exists.") from None
        await _audit(conn, ctx, "integration.create", row, name, enabled=body.enabled,
                     side_a=body.spec.side_a.model_dump(), side_b=body.spec.side_b.model_dump())
        return await _out(conn, ctx, row)


@API.operation("GET", ONE, summary="One integration", tags=[TAG], realm="tenant", role="viewer",
               response=IntegrationOut)
async def get_integration(request: web.Request, ctx: Context) -> IntegrationOut:
    async with ctx.transaction() as conn:
        return await _out(conn, ctx, await _load(conn, ctx.path["id"]))


@API.operation("PATCH", ONE, summary="Change an integration", tags=[TAG], realm="tenant", role="editor",
               body=IntegrationPatch, response=IntegrationOut,
               errors={409: "The name is taken, or the sides would change while items are linked."})
async def update_integration(request: web.Request, ctx: Context) -> IntegrationOut:
    body, given = ctx.body, ctx.body.model_fields_set
    async with ctx.transaction() as conn:
        row = await _load(conn, ctx.path["id"], lock=True)
        spec = body.spec if "spec" in given else IntegrationSpec.model_validate_json(row["spec"])
        if "spec" in given:
            await check_spec_change(conn, row, spec)
        name = body.name if "name" in given else row["name"]
        enabled = body.enabled if "enabled" in given else row["enabled"]
        paused = body.paused if "paused" in given else row["paused"]
        try:
            row = await conn.fetchrow(
                f"UPDATE integrations SET name = $2, spec = $3::jsonb, enabled = $4, paused = $5, updated_at = now() "
                f"WHERE id = $1 RETURNING {_COLUMNS}", row["id"], name, spec.model_dump_json(), enabled, paused)
        except asyncpg.UniqueViolationError:
            raise ApiError(409, f"An integration named {name!r} exists.") from None
        await _audit(conn, ctx, "integration.update", row, name, changed=sorted(given), enabled=enabled,
                     paused=paused)
        return await _out(conn, ctx, row)


@API.operation("DELETE", ONE, summary="Delete an integration", tags=[TAG], realm="tenant", role="editor",
               description="Its links, runs, events and conflicts go with it; the items in the apps stay.")
async def delete_integration(request: web.Request, ctx: Context) -> None:
    async with ctx.transaction() as conn:
        row = await _load(conn, ctx.path["id"], lock=True)
        await conn.execute("DELETE FROM integrations WHERE id = $1", row["id"])
        await _audit(conn, ctx, "integration.delete", row, row["name"])


async def _switch(ctx: Context, action: str, column: str, value: bool) -> IntegrationOut:
    async with ctx.transaction() as conn:
        row = await _load(conn, ctx.path["id"], lock=True)
        if column == "enabled" and value:
            await _check_spec(conn, IntegrationSpec.model_validate_json(row["spec"]))
        if row[column] != value:
            row = await conn.fetchrow(f"UPDATE integrations SET {column} = $2, updated_at = now() WHERE id = $1 "
                                      f"RETURNING {_COLUMNS}", row["id"], value)
            await _audit(conn, ctx, f"integration.{action}", row, row["name"])
        return await _out(conn, ctx, row)


@API.operation("POST", ONE + "/enable", summary="Enable an integration", tags=[TAG], realm="tenant", role="editor",
               response=IntegrationOut, description="The tenant worker starts running it within seconds.")
async def enable_integration(request: web.Request, ctx: Context) -> IntegrationOut:
    return await _switch(ctx, "enable", "enabled", True)


@API.operation("POST", ONE + "/pause", summary="Pause an integration", tags=[TAG], realm="tenant", role="editor",
               response=IntegrationOut, description="Stops running it; nothing is forgotten.")
async def pause_integration(request: web.Request, ctx: Context) -> IntegrationOut:
    return await _switch(ctx, "pause", "paused", True)


@API.operation("POST", ONE + "/resume", summary="Resume a paused integration", tags=[TAG], realm="tenant",
               role="editor", response=IntegrationOut)
async def resume_integration(request: web.Request, ctx: Context) -> IntegrationOut:
    return await _switch(ctx, "resume", "paused", False)


class SyncRequested(ApiModel):
    requested_at: datetime


@API.operation("POST", ONE + "/sync-now", summary="Run an integration now", tags=[TAG], realm="tenant",
               role="editor", response=SyncRequested, status=202,
               errors={409: "The integration is disabled or paused."},
               description="The tenant worker starts a run within about a second; the run appears under runs.")
async def sync_now(request: web.Request, ctx: Context) -> SyncRequested:
    async with ctx.transaction() as conn:
        row = await _load(conn, ctx.path["id"], lock=True)
        if not row["enabled"] or row["paused"]:
            raise ApiError(409, f"Integration {row['name']!r} is {'paused' if row['enabled'] else 'disabled'}; "
                                "enable or resume it first.")
        # Not updated_at: that would make the worker rebuild the integration's job.
        requested = await conn.fetchval("UPDATE integrations SET sync_requested_at = now() WHERE id = $1 "
                                        "RETURNING sync_requested_at", row["id"])
        await _audit(conn, ctx, "integration.sync_now", row, row["name"])
    return SyncRequested(requested_at=requested)


# --- what the engine recorded --------------------------------------------------------------------

def _before(ctx: Context) -> int | None:
    return decode_cursor(ctx.query.cursor, int)[0] if ctx.query.cursor else None


@API.operation("GET", ONE + "/runs", summary="Runs of an integration", tags=[TAG], realm="tenant", role="viewer",
               query=PageQuery, response=Page[RunOut], description="Newest first.")
async def list_runs(request: web.Request, ctx: Context) -> Page[RunOut]:
    limit = ctx.query.limit
    async with ctx.transaction() as conn:
        await _load(conn, ctx.path["id"])
        rows = await conn.fetch(f"SELECT {RUN_COLUMNS} FROM runs WHERE integration_id = $1 "
                                "AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                                ctx.path["id"], _before(ctx), limit + 1)
    return Page[RunOut].of([RunOut.of(r) for r in rows], limit, key=lambda r: (r.id,))


@API.operation("GET", ONE + "/links", summary="Linked pairs of an integration", tags=[TAG], realm="tenant",
               role="viewer", query=LinkQuery, response=Page[LinkOut],
               description="Newest first; `q` searches both items' keys and titles.")
async def list_links(request: web.Request, ctx: Context) -> Page[LinkOut]:
    limit = ctx.query.limit
    async with ctx.transaction() as conn:
        await _load(conn, ctx.path["id"])
        # Titles as the bases hold them: the last synced value of the mapped "title" field.
        rows = await conn.fetch(
            "SELECT id, a_id, b_id, a_key, b_key, a_url, b_url, state, created_at, synced_at, "
            "coalesce(base_a->>'title', '') AS a_title, coalesce(base_b->>'title', '') AS b_title FROM links "
            "WHERE integration_id = $1 AND ($2::bigint IS NULL OR id < $2) AND ($3::text IS NULL "
            "OR strpos(lower(a_key), lower($3)) > 0 OR strpos(lower(b_key), lower($3)) > 0 "
            "OR strpos(lower(coalesce(base_a->>'title', '')), lower($3)) > 0 "
            "OR strpos(lower(coalesce(base_b->>'title', '')), lower($3)) > 0) ORDER BY id DESC LIMIT $4",
            ctx.path["id"], _before(ctx), ctx.query.q, limit + 1)
    return Page[LinkOut].of([LinkOut(**dict(r)) for r in rows], limit, key=lambda r: (r.id,))


@API.operation("GET", ONE + "/events", summary="What happened to items", tags=[TAG], realm="tenant", role="viewer",
               query=EventQuery, response=Page[EventOut], description="Newest first; `q` searches.")
async def list_events(request: web.Request, ctx: Context) -> Page[EventOut]:
    limit = ctx.query.limit
    async with ctx.transaction() as conn:
        await _load(conn, ctx.path["id"])
        rows = await conn.fetch(
            "SELECT id, run_id, link_id, at, action, direction, item_key, fields, detail FROM events "
            "WHERE integration_id = $1 AND ($2::bigint IS NULL OR id < $2) AND ($3::text IS NULL "
            "OR strpos(lower(item_key), lower($3)) > 0 OR strpos(lower(detail), lower($3)) > 0) "
            "AND ($5::bigint IS NULL OR link_id = $5) "
            "ORDER BY id DESC LIMIT $4", ctx.path["id"], _before(ctx), ctx.query.q, limit + 1, ctx.query.link_id)
    return Page[EventOut].of([EventOut(**dict(r)) for r in rows], limit, key=lambda r: (r.id,))


_CONFLICT = ("SELECT c.id, c.link_id, l.a_key, l.b_key, l.a_id, c.field, c.a_value::text AS a_value, "
             "c.b_value::text AS b_value, c.base_value::text AS base_value, c.state, c.resolution, "
             "c.resolved_value::text AS resolved_value, c.resolved_by, c.created_at, c.resolved_at, c.applied_at "
             "FROM conflicts c JOIN links l ON l.id = c.link_id ")


def _conflict(row: asyncpg.Record) -> ConflictOut:
    values = {k: jsonb(row[k]) for k in ("a_value", "b_value", "base_value", "resolved_value")}
    return ConflictOut(**{k: row[k] for k in ConflictOut.model_fields if k not in values}, **values)


@API.operation("GET", ONE + "/conflicts", summary="Conflicts of an integration", tags=[TAG], realm="tenant",
               role="viewer", query=ConflictQuery, response=Page[ConflictOut],
               description="Open ones (held for a person) by default; newest first.")
async def list_conflicts(request: web.Request, ctx: Context) -> Page[ConflictOut]:
    limit = ctx.query.limit
    state = None if ctx.query.state == "all" else ctx.query.state
    async with ctx.transaction() as conn:
        await _load(conn, ctx.path["id"])
        rows = await conn.fetch(_CONFLICT + "WHERE c.integration_id = $1 AND ($2::bigint IS NULL OR c.id < $2) "
                                "AND ($3::text IS NULL OR c.state = $3) ORDER BY c.id DESC LIMIT $4",
                                ctx.path["id"], _before(ctx), state, limit + 1)
    return Page[ConflictOut].of([_conflict(r) for r in rows], limit, key=lambda c: (c.id,))


@API.operation("POST", ONE + "/conflicts/{conflict_id}/resolve", summary="Resolve a held conflict", tags=[TAG],
               realm="tenant", role="editor", body=Resolve, response=ConflictOut,
               errors={409: "The conflict is resolved already."},
               description="The chosen side's current value (or the value given) wins; the engine writes it "
                           "on its next look at the item, which this queues.")
async def resolve_conflict(request: web.Request, ctx: Context) -> ConflictOut:
    integration_id, conflict_id = ctx.path["id"], ctx.path["conflict_id"]
    if ("side" in ctx.body.model_fields_set) == ("value" in ctx.body.model_fields_set) or (
            "side" in ctx.body.model_fields_set and ctx.body.side is None):
        raise ValidationFailed("side", 'give either side ("a" or "b") or value')
    async with ctx.transaction() as conn:
        await _load(conn, integration_id)
        row = await conn.fetchrow(_CONFLICT + "WHERE c.integration_id = $1 AND c.id = $2 FOR UPDATE OF c",
                                  integration_id, conflict_id)
        if row is None:
            raise ApiError(404, f"Integration {integration_id} has no conflict {conflict_id}.")
        if row["state"] != "open":
            raise ApiError(409, f"Conflict {conflict_id} was resolved already ({row['resolution']}).")
        resolution = ctx.body.side or "value"
        await conn.execute(
            "UPDATE conflicts SET state = 'resolved', resolution = $2, resolved_value = CASE $2 WHEN 'a' THEN a_value "
            "WHEN 'b' THEN b_value ELSE $4::jsonb END, resolved_by = $3, resolved_at = now() WHERE id = $1",
            conflict_id, resolution, ctx.actor, json.dumps(ctx.body.value))
        await enqueue_item(conn, integration_id, "a", row["a_id"], "conflict_resolved")
        await audit.log_event(conn, ctx.actor, "integration.conflict.resolve", row["a_key"] or row["b_key"],
                              {"integration_id": integration_id, "conflict_id": conflict_id, "field": row["field"],
                               "resolution": resolution}, ctx.client_addr)
        return _conflict(await conn.fetchrow(_CONFLICT + "WHERE c.id = $1", conflict_id))


@API.operation("GET", ONE + "/errors", summary="Items that failed", tags=[TAG], realm="tenant", role="viewer",
               query=PageQuery, response=Page[ItemErrorOut],
               description="Each is retried with backoff from next_attempt_at while the rest flows on.")
async def list_item_errors(request: web.Request, ctx: Context) -> Page[ItemErrorOut]:
    limit = ctx.query.limit
    after = _text_cursor(ctx, str, str)
    async with ctx.transaction() as conn:
        await _load(conn, ctx.path["id"])
        rows = await conn.fetch(
            "SELECT side, item_id, item_key, attempts, error, first_failed_at, last_failed_at, next_attempt_at "
            "FROM item_errors WHERE integration_id = $1 AND ($2::text IS NULL OR (side, item_id) > ($2, $3)) "
            "ORDER BY side, item_id LIMIT $4", ctx.path["id"], after[0], after[1], limit + 1)
    return Page[ItemErrorOut].of([ItemErrorOut(**dict(r)) for r in rows], limit, key=lambda e: (e.side, e.item_id))


@API.operation("POST", ONE + "/items/retry", summary="Retry a failed item now", tags=[TAG], realm="tenant",
               role="editor", body=Retry, response=ItemErrorOut,
               description="Resets the item's backoff and queues it for the engine.")
async def retry_item(request: web.Request, ctx: Context) -> ItemErrorOut:
    integration_id, body = ctx.path["id"], ctx.body
    async with ctx.transaction() as conn:
        await _load(conn, integration_id)
        row = await conn.fetchrow(
            "UPDATE item_errors SET next_attempt_at = now() WHERE integration_id = $1 AND side = $2 AND item_id = $3 "
            "RETURNING side, item_id, item_key, attempts, error, first_failed_at, last_failed_at, next_attempt_at",
            integration_id, body.side, body.item_id)
        if row is None:
            raise ApiError(404, f"Item {body.item_id} of side {body.side.upper()} has not failed.")
        await enqueue_item(conn, integration_id, body.side, body.item_id, "retry")
        await audit.log_event(conn, ctx.actor, "integration.item.retry", row["item_key"] or body.item_id,
                              {"integration_id": integration_id, "side": body.side, "item_id": body.item_id},
                              ctx.client_addr)
    return ItemErrorOut(**dict(row))
