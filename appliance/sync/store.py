"""The engine's SQL (tables in sql/tenant/0003_sync.sql), one method per question or change.

Every method runs on the tenant role's pool against the tenant schema given at construction
(quoted once with quote_ident); values go as parameters only. Methods that change several rows
do it in one transaction, so a crash leaves either all or none of it (the engine relies on
that: a link and its intent's completion, a link's bases and its events, a comment pair and its
intent)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from appliance.db import jsonb
from appliance.identifiers import quote_ident


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Link:
    id: int
    a_id: str
    b_id: str
    a_key: str
    b_key: str
    marker: str
    base_a: dict[str, Any]
    base_b: dict[str, Any]
    a_updated_at: datetime | None
    b_updated_at: datetime | None
    state: str

    def item_id(self, side: str) -> str:
        return self.a_id if side == "a" else self.b_id

    def updated_at(self, side: str) -> datetime | None:
        return self.a_updated_at if side == "a" else self.b_updated_at

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Link:
        return cls(id=row["id"], a_id=row["a_id"], b_id=row["b_id"], a_key=row["a_key"], b_key=row["b_key"],
                   marker=row["marker"], base_a=jsonb(row["base_a"]), base_b=jsonb(row["base_b"]),
                   a_updated_at=row["a_updated_at"], b_updated_at=row["b_updated_at"], state=row["state"])


@dataclass
class Intent:
    id: int
    marker: str
    kind: str
    source_side: str
    source_id: str
    parent_link_id: int | None
    state: str


@dataclass
class Event:
    """An events row to write with the work it describes."""

    action: str
    direction: str = ""
    item_key: str = ""
    fields: Sequence[str] = ()
    detail: str = ""


@dataclass
class ConflictRow:
    field: str
    a_value: Any
    b_value: Any
    base_value: Any
    state: str = "open"
    resolution: str | None = None
    resolved_value: Any = None


def _event_from(cte: str, n: int) -> str:
    """A CTE writing one events row in the same statement as the row it is about: `cte` names
    the CTE whose `id` is the pair's; $1 is the integration, ${n} the run, then _event_args."""
    return (f"event AS (INSERT INTO {{s}}.events (integration_id, run_id, link_id, action, direction, item_key, "
            f"fields, detail) SELECT $1, ${n}::bigint, {cte}.id, ${n + 1}::text, ${n + 2}::text, ${n + 3}::text, "
            f"${n + 4}::text[], ${n + 5}::text FROM {cte})")


def _event_args(event: Event) -> tuple:
    return event.action, event.direction, event.item_key, list(event.fields), event.detail[:2000]


class Store:
    def __init__(self, pool: asyncpg.Pool, schema: str, integration_id: int):
        self.pool = pool
        self.s = quote_ident(schema)
        self.iid = integration_id

    def _q(self, sql: str) -> str:
        return sql.replace("{s}", self.s)

    # -- configuration ------------------------------------------------------------------------

    async def integration(self) -> asyncpg.Record | None:
        return await self.pool.fetchrow(self._q("SELECT * FROM {s}.integrations WHERE id = $1"), self.iid)

    async def connection(self, connection_id: int) -> asyncpg.Record | None:
        return await self.pool.fetchrow(self._q("SELECT * FROM {s}.connections WHERE id = $1"), connection_id)

    # -- runs ---------------------------------------------------------------------------------

    async def start_run(self, trigger: str) -> int:
        """A new run row. Runs of this integration still marked running were interrupted (the
        worker stopped or died; one worker runs one integration's runs one at a time)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self._q(
                "UPDATE {s}.runs SET status = 'failed', finished_at = now(), error = 'interrupted: the worker "
                "stopped during the run; the next run carried on' WHERE integration_id = $1 AND status = 'running'"),
                self.iid)
            return await conn.fetchval(self._q(
                "INSERT INTO {s}.runs (integration_id, trigger) VALUES ($1, $2) RETURNING id"), self.iid, trigger)

    async def finish_run(self, run_id: int, status: str, counts: Mapping[str, int], *, api_calls: int,
                         retries: int, rate_limit_wait: float, duration: float, error: str | None) -> None:
        await self.pool.execute(self._q(
            "UPDATE {s}.runs SET finished_at = now(), status = $2, items_seen = $3, items_created = $4, "
            "items_updated = $5, comments_created = $6, conflicts = $7, errors = $8, api_calls = $9, "
            "retries = $10, rate_limit_wait_seconds = $11, duration_seconds = $12, error = $13, "
            "attachments_created = $14, poll_side = NULL, poll_started_at = NULL, poll_items_done = NULL, "
            "poll_items_total = NULL, poll_items_per_second = NULL WHERE id = $1"),
            run_id, status, counts["seen"], counts["created"], counts["updated"], counts["comments"],
            counts["conflicts"], counts["errors"], api_calls, retries, rate_limit_wait, duration, error,
            counts["attachments"])

    # -- cursors ------------------------------------------------------------------------------

    async def cursor(self, side: str) -> asyncpg.Record | None:
        return await self.pool.fetchrow(self._q(
            "SELECT since, started_at FROM {s}.cursors WHERE integration_id = $1 AND side = $2"), self.iid, side)

    async def init_cursor(self, side: str, since: datetime | None, started_at: datetime) -> asyncpg.Record:
        await self.pool.execute(self._q(
            "INSERT INTO {s}.cursors (integration_id, side, since, started_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING"), self.iid, side, since, started_at)
        return await self.cursor(side)

    async def advance_cursor(self, side: str, since: datetime) -> None:
        """Move the cursor forward to `since` (never back)."""
        await self.pool.execute(self._q(
            "UPDATE {s}.cursors SET since = GREATEST(coalesce(since, $3), $3), updated_at = now() "
            "WHERE integration_id = $1 AND side = $2"), self.iid, side, since)

    # -- links and intents --------------------------------------------------------------------

    async def link_by(self, side: str, item_id: str) -> Link | None:
        column = "a_id" if side == "a" else "b_id"
        row = await self.pool.fetchrow(self._q(
            f"SELECT * FROM {{s}}.links WHERE integration_id = $1 AND {column} = $2"), self.iid, item_id)
        return Link.from_row(row) if row else None

    async def link_states(self, side: str, item_ids: Sequence[str]
                          ) -> dict[tuple[str, str], tuple[str, datetime | None]]:
        """(side, item id) -> (state, update time of its last sync) for the linked ones among
        `item_ids`: one query for a page of a poll, where most items are unchanged."""
        column, synced = ("a_id", "a_updated_at") if side == "a" else ("b_id", "b_updated_at")
        rows = await self.pool.fetch(self._q(
            f"SELECT {column} AS item_id, state, {synced} AS synced FROM {{s}}.links "
            f"WHERE integration_id = $1 AND {column} = ANY($2::text[])"), self.iid, list(item_ids))
        return {(side, r["item_id"]): (r["state"], r["synced"]) for r in rows}

    async def pairs_of(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str, str]]:
        """(side, item id) -> (link id, side A's item id, side B's) for the linked ones among `keys`."""
        keys = list(keys)
        rows = await self.pool.fetch(self._q(
            "SELECT id, a_id, b_id FROM {s}.links WHERE integration_id = $1 "
            "AND (a_id = ANY($2::text[]) OR b_id = ANY($3::text[]))"), self.iid,
            [i for side, i in keys if side == "a"], [i for side, i in keys if side == "b"])
        wanted = set(keys)
        found = {}
        for r in rows:
            for key in (("a", r["a_id"]), ("b", r["b_id"])):
                if key in wanted:
                    found[key] = (r["id"], r["a_id"], r["b_id"])
        return found

    async def intent_by_marker(self, marker: str) -> Intent | None:
        row = await self.pool.fetchrow(self._q(
            "SELECT * FROM {s}.intents WHERE integration_id = $1 AND marker = $2"), self.iid, marker)
        return self._intent(row)

    async def intent_for(self, kind: str, source_side: str, source_id: str, parent_link_id: int | None = None
                         ) -> tuple[Intent, bool]:
        """intents_for of one source."""
        return (await self.intents_for(kind, [(source_side, source_id)], parent_link_id))[0]

    async def intents_for(self, kind: str, sources: Sequence[tuple[str, str]], parent_link_id: int | None = None
                          ) -> list[tuple[Intent, bool]]:
        """For each (side, id) of `sources`, in order: the pending intent to create its
        counterpart, and whether it is new.

        An intent already pending means an earlier attempt may have created the counterpart
        before it could record it: the caller looks for its marker first. Otherwise a new
        intent (and fresh marker) is committed here, before the remote create is attempted.
        One statement (one round trip) however many: the engine asks this for every item, and
        for all the comments of a pair it copies at once. (`= ANY` next to each join on an
        unnest gives the planner the index: the rows of an unnest are unknown to it, and with a
        hash join it would read every intent of the tenant each time.)"""
        if not sources:
            return []
        rows = await self.pool.fetch(self._q(
            "WITH wanted AS (SELECT * FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY "
            "AS w (side, source_id, marker, n)), "
            "found AS (SELECT DISTINCT ON (w.n) w.n, i.* FROM wanted w JOIN {s}.intents i ON i.integration_id = $1 "
            "AND i.kind = $2 AND i.source_id = ANY($4::text[]) AND i.source_side = w.side AND i.source_id = w.source_id "
            "AND i.state = 'pending' "
            "ORDER BY w.n, i.id), "
            "made AS (INSERT INTO {s}.intents (integration_id, marker, kind, source_side, source_id, parent_link_id) "
            "SELECT $1, w.marker, $2, w.side, w.source_id, $6 FROM wanted w "
            "WHERE w.n NOT IN (SELECT n FROM found) ORDER BY w.n RETURNING *) "
            "SELECT *, false AS fresh FROM found "
            "UNION ALL SELECT w.n, made.*, true FROM made JOIN wanted w ON w.marker = made.marker ORDER BY n"),
            self.iid, kind, [side for side, _ in sources], [i for _, i in sources],
            [uuid.uuid4().hex for _ in sources], parent_link_id)
        return [(self._intent(r), r["fresh"]) for r in rows]

    @staticmethod
    def _intent(row: asyncpg.Record | None) -> Intent | None:
        if row is None:
            return None
        return Intent(id=row["id"], marker=row["marker"], kind=row["kind"], source_side=row["source_side"],
                      source_id=row["source_id"], parent_link_id=row["parent_link_id"], state=row["state"])

    async def create_link(self, intent: Intent, ids: Mapping[str, str], keys: Mapping[str, str],
                          urls: Mapping[str, str], bases: Mapping[str, dict], updated: Mapping[str, datetime],
                          run_id: int, event: Event, comment_sources: Sequence[tuple[str, str]] = ()
                          ) -> tuple[Link, list[Intent]]:
        """The pair, the intent done, the event, and a new intent for each (side, id) of
        `comment_sources` (comments to copy to a counterpart created just now, which has no
        comment intents yet): one statement, so all or none of it. Returns the pair and those
        intents, in order."""
        target = ids["b"] if intent.source_side == "a" else ids["a"]
        markers = [uuid.uuid4().hex for _ in comment_sources]
        row = await self.pool.fetchrow(self._q(
            "WITH link AS (INSERT INTO {s}.links (integration_id, a_id, b_id, a_key, b_key, a_url, b_url, marker, "
            "base_a, base_b, a_updated_at, b_updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
            "RETURNING *), "
            "done AS (UPDATE {s}.intents SET state = 'done', target_id = $13, updated_at = now() WHERE id = $14), "
            "comment_intents AS (INSERT INTO {s}.intents (integration_id, marker, kind, source_side, source_id, "
            "parent_link_id) SELECT $1, c.marker, 'comment', c.side, c.source_id, link.id FROM link, "
            "unnest($21::text[], $22::text[], $23::text[]) AS c (side, source_id, marker) RETURNING id, marker), "
            f"{_event_from('link', 15)} "
            "SELECT link.*, (SELECT coalesce(json_object_agg(marker, id), '{}') FROM comment_intents) "
            "AS comment_intents FROM link"),
            self.iid, ids["a"], ids["b"], keys["a"], keys["b"], urls["a"], urls["b"], intent.marker,
            _json(bases["a"]), _json(bases["b"]), updated["a"], updated["b"], target, intent.id,
            run_id, *_event_args(event), [side for side, _ in comment_sources],
            [source_id for _, source_id in comment_sources], markers)
        link = Link.from_row(row)
        made = jsonb(row["comment_intents"])
        return link, [Intent(id=made[marker], marker=marker, kind="comment", source_side=side, source_id=source_id,
                             parent_link_id=link.id, state="pending")
                      for (side, source_id), marker in zip(comment_sources, markers)]

    async def save_link(self, link: Link, base_a: dict, base_b: dict, a_updated: datetime | None,
                        b_updated: datetime | None, state: str, run_id: int, events: Iterable[Event],
                        conflicts: Iterable[ConflictRow], applied: Iterable[int], settled: Sequence[str] = ()) -> None:
        """New bases, update times and state of a pair, with its events, conflicts and the
        resolutions applied, and the open conflicts of `settled` fields closed (people made the
        sides agree, or undid one side's edit): one transaction (one statement when there is
        nothing but the pair)."""
        events, conflicts, ids = list(events), list(conflicts), list(applied)
        update = self._q("UPDATE {s}.links SET base_a = $2, base_b = $3, a_updated_at = $4, b_updated_at = $5, "
                         "state = $6, synced_at = now() WHERE id = $1")
        values = (link.id, _json(base_a), _json(base_b), a_updated, b_updated, state)
        if not events and not conflicts and not ids and not settled:
            await self.pool.execute(update, *values)
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(update, *values)
            await self._events(conn, run_id, link.id, events)
            if settled:
                await conn.execute(self._q(
                    "UPDATE {s}.conflicts SET state = 'resolved', resolved_by = 'sides agree', resolved_at = now(), "
                    "applied_at = now() WHERE link_id = $1 AND field = ANY($2::text[]) AND state = 'open'"),
                    link.id, list(settled))
            for c in conflicts:
                await conn.execute(self._q(
                    "INSERT INTO {s}.conflicts (integration_id, link_id, field, a_value, b_value, base_value, "
                    "state, resolution, resolved_value, resolved_by, resolved_at) VALUES ($1, $2, $3, $4, $5, $6, "
                    "$7, $8, $9, CASE WHEN $7 = 'resolved' THEN 'policy' END, "
                    "CASE WHEN $7 = 'resolved' THEN now() END) "
                    "ON CONFLICT (link_id, field) WHERE state = 'open' DO UPDATE SET a_value = EXCLUDED.a_value, "
                    "b_value = EXCLUDED.b_value"),
                    self.iid, link.id, c.field, _json(c.a_value), _json(c.b_value), _json(c.base_value), c.state,
                    c.resolution, _json(c.resolved_value) if c.resolved_value is not None else None)
            if ids:
                await conn.execute(self._q(
                    "UPDATE {s}.conflicts SET applied_at = now() WHERE id = ANY($1::bigint[])"), ids)

    async def set_link_times(self, link: Link) -> None:
        """Record the update times `link` holds: the pair counts as synced up to them."""
        await self.pool.execute(self._q("UPDATE {s}.links SET a_updated_at = $2, b_updated_at = $3 WHERE id = $1"),
                                link.id, link.a_updated_at, link.b_updated_at)

    async def set_link_state(self, link: Link, state: str, run_id: int, event: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self._q("UPDATE {s}.links SET state = $2, synced_at = now() WHERE id = $1"),
                               link.id, state)
            await self._events(conn, run_id, link.id, [event])

    async def resolutions(self, link: Link) -> list[asyncpg.Record]:
        """Field conflicts of the pair a person resolved that the engine has not applied yet
        (comment conflicts, fields "comment <id>", are comment_resolutions')."""
        return await self.pool.fetch(self._q(
            "SELECT id, field, resolution, resolved_value FROM {s}.conflicts WHERE link_id = $1 "
            "AND state = 'resolved' AND applied_at IS NULL AND resolution IN ('a', 'b', 'value') "
            "AND field NOT LIKE 'comment %' ORDER BY id"), link.id)

    async def active_links(self) -> list[Link]:
        rows = await self.pool.fetch(self._q(
            "SELECT * FROM {s}.links WHERE integration_id = $1 AND state <> 'deleted' ORDER BY id"), self.iid)
        return [Link.from_row(r) for r in rows]

    async def links_with_resolutions(self) -> list[Link]:
        """Pairs with a person-resolved conflict not applied yet (resolving does not touch
        either app, so no poll would bring the pair back)."""
        rows = await self.pool.fetch(self._q(
            "SELECT * FROM {s}.links WHERE integration_id = $1 AND id IN (SELECT link_id FROM {s}.conflicts "
            "WHERE integration_id = $1 AND state = 'resolved' AND applied_at IS NULL "
            "AND resolution IN ('a', 'b', 'value'))"), self.iid)
        return [Link.from_row(r) for r in rows]

    # -- comments -----------------------------------------------------------------------------

    async def comment_state(self, link: Link) -> tuple[list[asyncpg.Record], dict[str, str]]:
        """The pair's comment pairs, deleted ones included, each with `source_side` (the side of
        the original; the other side holds Tandem's copy), and marker -> state ('pending' /
        'done') of every comment the engine created or meant to create on this pair: one round
        trip."""
        rows = await self.pool.fetch(self._q(
            "SELECT 'pair' AS what, c.id, c.a_id, c.b_id, c.base_a, c.base_b, c.state, c.marker, i.source_side "
            "FROM {s}.comment_links c LEFT JOIN {s}.intents i ON i.marker = c.marker WHERE c.link_id = $1 "
            "UNION ALL SELECT 'intent', NULL, NULL, NULL, NULL, NULL, i.state, i.marker, NULL FROM {s}.intents i "
            "WHERE i.parent_link_id = $1 AND i.kind = 'comment' ORDER BY what DESC, id"), link.id)
        return ([r for r in rows if r["what"] == "pair"],
                {r["marker"]: r["state"] for r in rows if r["what"] == "intent"})

    async def add_comment_links(self, link: Link, pairs: Sequence[tuple[Intent, str, str, str, str, Event]],
                                run_id: int) -> None:
        """Comment pairs of `link`, each (intent, A id, B id, A body, B body, event): the pairs,
        their intents done and their events in one statement, so all or none of it. Events of
        comment pairs name no fields. (The pair's update times are not recorded here: updating
        the link row in the statement whose foreign keys lock it costs a MultiXact, ~200 us, more
        than the round trip of set_link_times.)"""
        if not pairs:
            return
        if any(event.fields for *_, event in pairs):
            raise ValueError("comment pair events name no fields")
        await self.pool.execute(self._q(
            "WITH pair AS (INSERT INTO {s}.comment_links (link_id, a_id, b_id, marker, base_a, base_b) "
            "SELECT $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])), "
            "done AS (UPDATE {s}.intents i SET state = 'done', target_id = t.target, updated_at = now() "
            "FROM unnest($8::bigint[], $9::text[]) AS t (id, target) WHERE i.id = ANY($8::bigint[]) AND i.id = t.id), "
            "event AS (INSERT INTO {s}.events (integration_id, run_id, link_id, action, direction, item_key, detail) "
            "SELECT $1, $10, $2, * FROM unnest($11::text[], $12::text[], $13::text[], $14::text[])) "
            "SELECT"),
            self.iid, link.id, [p[1] for p in pairs], [p[2] for p in pairs], [p[0].marker for p in pairs],
            [p[3] for p in pairs], [p[4] for p in pairs], [p[0].id for p in pairs],
            [p[2] if p[0].source_side == "a" else p[1] for p in pairs], run_id,
            [p[5].action for p in pairs], [p[5].direction for p in pairs], [p[5].item_key for p in pairs],
            [p[5].detail[:2000] for p in pairs])

    async def save_comment_pair(self, pair_id: int, base_a: str, base_b: str, state: str, run_id: int,
                                link: Link, event: Event | None) -> None:
        """New bodies (as last synced) and state of a comment pair, with its event: one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self._q(
                "UPDATE {s}.comment_links SET base_a = $2, base_b = $3, state = $4, synced_at = now() "
                "WHERE id = $1"), pair_id, base_a, base_b, state)
            if event is not None:
                await self._events(conn, run_id, link.id, [event])

    async def hold_comment_conflict(self, link: Link, field: str, a_body: str, b_body: str, base: str,
                                    run_id: int, event: Event) -> bool:
        """Open (or refresh) the held conflict `field` of the pair; the event is written only
        when the conflict is new. Returns True when it is new."""
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(self._q(
                "INSERT INTO {s}.conflicts (integration_id, link_id, field, a_value, b_value, base_value) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (link_id, field) WHERE state = 'open' "
                "DO UPDATE SET a_value = EXCLUDED.a_value, b_value = EXCLUDED.b_value "
                "RETURNING xmax = 0"), self.iid, link.id, field, _json(a_body), _json(b_body), _json(base))
            if fresh:
                await self._events(conn, run_id, link.id, [event])
        return bool(fresh)

    async def comment_resolutions(self, link: Link) -> dict[str, asyncpg.Record]:
        """Held comment conflicts of the pair a person resolved, not applied yet, by field."""
        rows = await self.pool.fetch(self._q(
            "SELECT id, field, resolution, resolved_value FROM {s}.conflicts WHERE link_id = $1 "
            "AND field LIKE 'comment %' AND state = 'resolved' AND applied_at IS NULL "
            "AND resolution IN ('a', 'b', 'value') ORDER BY id"), link.id)
        return {r["field"]: r for r in rows}

    async def close_conflict(self, link: Link, field: str) -> None:
        """The pair's open conflict `field`, if any, settled by the sides coming to agree."""
        await self.pool.execute(self._q(
            "UPDATE {s}.conflicts SET state = 'resolved', resolved_by = 'sides agree', resolved_at = now(), "
            "applied_at = now() WHERE link_id = $1 AND field = $2 AND state = 'open'"), link.id, field)

    async def resolution_applied(self, conflict_id: int) -> None:
        await self.pool.execute(self._q("UPDATE {s}.conflicts SET applied_at = now() WHERE id = $1"), conflict_id)

    # -- attachments --------------------------------------------------------------------------

    async def attachment_links(self, link: Link) -> list[asyncpg.Record]:
        return await self.pool.fetch(self._q("SELECT * FROM {s}.attachment_links WHERE link_id = $1"), link.id)

    async def skipped_attachments(self, link: Link) -> dict[str, int]:
        """"side:id" of the attachments already reported as over the size limit, with the
        largest limit each was reported over (the last number of the event's detail)."""
        rows = await self.pool.fetch(self._q(
            "SELECT split_part(detail, ' ', 1) AS ref, max(substring(detail FROM '(\\d+)$')::bigint) AS limit_bytes "
            "FROM {s}.events WHERE link_id = $1 AND action = 'attachment_skipped' GROUP BY 1"), link.id)
        return {r["ref"]: r["limit_bytes"] or 0 for r in rows}

    async def add_attachment_link(self, link: Link, a_id: str, b_id: str, sha256: str, size: int, filename: str,
                                  run_id: int, event: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self._q(
                "INSERT INTO {s}.attachment_links (link_id, a_id, b_id, sha256, size, filename) "
                "VALUES ($1, $2, $3, $4, $5, $6)"), link.id, a_id, b_id, sha256, size, filename)
            await self._events(conn, run_id, link.id, [event])

    async def attachment_pair_deleted(self, link: Link, pair_id: int, run_id: int, event: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self._q("UPDATE {s}.attachment_links SET state = 'deleted' WHERE id = $1"), pair_id)
            await self._events(conn, run_id, link.id, [event])

    # -- item errors --------------------------------------------------------------------------

    async def backing_off(self) -> dict[tuple[str, str], datetime]:
        """(side, item id) -> when it last failed, for the items whose retry is not due yet."""
        rows = await self.pool.fetch(self._q(
            "SELECT side, item_id, last_failed_at FROM {s}.item_errors WHERE integration_id = $1 "
            "AND next_attempt_at > now()"), self.iid)
        return {(r["side"], r["item_id"]): r["last_failed_at"] for r in rows}

    async def failing(self) -> set[tuple[str, str]]:
        """(side, item id) of every item with an error recorded (only the engine records them)."""
        rows = await self.pool.fetch(self._q(
            "SELECT side, item_id FROM {s}.item_errors WHERE integration_id = $1"), self.iid)
        return {(r["side"], r["item_id"]) for r in rows}

    async def due_errors(self, limit: int = 100) -> list[asyncpg.Record]:
        return await self.pool.fetch(self._q(
            "SELECT side, item_id, attempts FROM {s}.item_errors WHERE integration_id = $1 "
            "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $2"), self.iid, limit)

    async def record_error(self, side: str, item_id: str, item_key: str, error: str, backoff: float,
                           run_id: int) -> int:
        """Upsert the item's error row; returns the number of attempts so far."""
        async with self.pool.acquire() as conn, conn.transaction():
            attempts = await conn.fetchval(self._q(
                "INSERT INTO {s}.item_errors (integration_id, side, item_id, item_key, error, next_attempt_at) "
                "VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) "
                "ON CONFLICT (integration_id, side, item_id) DO UPDATE SET attempts = {s}.item_errors.attempts + 1, "
                "error = EXCLUDED.error, item_key = EXCLUDED.item_key, last_failed_at = now(), "
                "next_attempt_at = now() + make_interval(secs => $6 * least(64, "
                "power(2, {s}.item_errors.attempts)::int)) RETURNING attempts"),
                self.iid, side, item_id, item_key, error, backoff)
            await self._events(conn, run_id, None, [Event("error", "", item_key or item_id, (), error)])
        return attempts

    async def clear_error(self, side: str, item_id: str) -> bool:
        status = await self.pool.execute(self._q(
            "DELETE FROM {s}.item_errors WHERE integration_id = $1 AND side = $2 AND item_id = $3"),
            self.iid, side, item_id)
        return status != "DELETE 0"

    # -- webhooks -----------------------------------------------------------------------------

    async def pending_deliveries(self, limit: int = 200) -> list[asyncpg.Record]:
        return await self.pool.fetch(self._q(
            "SELECT id, side, item_id FROM {s}.webhook_deliveries WHERE integration_id = $1 "
            "AND processed_at IS NULL ORDER BY id LIMIT $2"), self.iid, limit)

    async def take_sync_requests(self) -> list[int]:
        """Ids of the enabled, unpaused integrations someone asked to sync now; clears the asks."""
        rows = await self.pool.fetch(self._q(
            "UPDATE {s}.integrations SET sync_requested_at = NULL WHERE sync_requested_at IS NOT NULL "
            "AND enabled AND NOT paused RETURNING id"))
        return [r["id"] for r in rows]

    async def integrations_with_deliveries(self) -> dict[int, int]:
        """Every integration of the tenant with unprocessed webhook deliveries -> the id of the
        newest of them."""
        rows = await self.pool.fetch(self._q(
            "SELECT integration_id, max(id) AS newest FROM {s}.webhook_deliveries WHERE processed_at IS NULL "
            "GROUP BY integration_id"))
        return {r["integration_id"]: r["newest"] for r in rows}

    async def delivered(self, ids: Sequence[int]) -> None:
        await self.pool.execute(self._q(
            "UPDATE {s}.webhook_deliveries SET processed_at = now() WHERE id = ANY($1::bigint[])"), list(ids))

    # -- events -------------------------------------------------------------------------------

    async def event(self, run_id: int, link_id: int | None, event: Event) -> None:
        async with self.pool.acquire() as conn:
            await self._events(conn, run_id, link_id, [event])

    async def _events(self, conn: asyncpg.Connection, run_id: int, link_id: int | None,
                      events: Iterable[Event]) -> None:
        rows = [(self.iid, run_id, link_id, e.action, e.direction, e.item_key, list(e.fields), e.detail[:2000])
                for e in events]
        if rows:
            await conn.executemany(self._q(
                "INSERT INTO {s}.events (integration_id, run_id, link_id, action, direction, item_key, fields, "
                "detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"), rows)
