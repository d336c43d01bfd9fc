"""Preview (dry run): the writes the next run of an integration would make, made by nothing.

`await preview(engine, limit=100)` reads both sides from their cursors exactly as a run would
(the same filters, type mappings, start point, merge and mapping), but calls no write method of
any connector and writes nothing to the database: no cursor moves, no intent, link, event, run
or conflict row. Comments are not previewed. Each planned write is a dict:

  {"action": "create", "side": "b", "source": "PROJ-7", "type": "issue", "fields": {...}}
  {"action": "update", "side": "a", "item": "PROJ-3", "source": "#12", "fields": {...}, "old": {...},
   "why": "..."}      ("old": what the item holds now of each field written)
  {"action": "link", "side": "b", "item": "#13", "source": "PROJ-8", "why": "found by its sync marker"}
  {"action": "conflict", "item": "PROJ-3", "field": "title", "a_value": ..., "b_value": ..., "why": ...}

Raises SyncRunFailed (integration or connection gone) and ConnectorError (RemoteAuthError for a
refused credential) like a run would.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from appliance.db import jsonb
from appliance.sync import merge, pairs
from appliance.sync.engine import Engine, SyncRunFailed
from appliance.sync.mapping import OTHER
from appliance.sync.spec import IntegrationSpec


async def preview(engine: Engine, limit: int = 100, spec: IntegrationSpec | None = None) -> list[dict[str, Any]]:
    """`spec`: an unsaved edit of the integration's spec, previewed instead of the stored one
    (from the integration's cursors and links, as the next run after saving it would)."""
    row = await engine.store.integration()
    if row is None:
        raise SyncRunFailed(f"integration {engine.id} no longer exists")
    engine.spec = spec or IntegrationSpec.model_validate(jsonb(row["spec"]))
    engine.started_at = {}
    sides = await engine._sides()
    await engine._load_directories()
    plan: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    linked: set[int] = set()
    for side in ("a", "b"):
        other = OTHER[side]
        cursor = await engine.store.cursor(side)
        now = datetime.now(timezone.utc)
        if cursor is None:
            start = engine.spec.start
            since = {"new": now, "since": start.since, "all": None}[start.mode]
            engine.started_at[side] = now
        else:
            since, engine.started_at[side] = cursor["since"], cursor["started_at"]
        if since is not None:
            since -= engine.overlap
        page_cursor = None
        while len(seen) < limit:
            page = await engine._call(side, lambda c: c.changed_since(sides[side].container, since, page_cursor,
                                                                      page_size=engine.page_size))
            for item in page.items:
                if (side, item.id) in seen or len(seen) >= limit:
                    continue
                seen.add((side, item.id))
                link = await engine.store.link_by(side, item.id)
                if link is None:
                    intent = await engine.store.intent_by_marker(item.marker) if item.marker else None
                    if intent is not None:
                        if intent.state == "pending" and intent.source_side == other:
                            plan.append({"action": "link", "side": side, "item": item.key, "source": intent.source_id,
                                         "why": "found by its sync marker"})
                        continue
                    tm = engine._eligible(side, item)
                    if tm is None or item.deleted:
                        continue
                    plan.append({"action": "create", "side": other, "source": item.key,
                                 "type": tm.b_type if other == "b" else tm.a_type,
                                 "fields": engine.mapper.create_fields(other, engine.mapper.read(side, item), tm)})
                    continue
                if link.id in linked or link.state == "deleted" or (link.updated_at(side) is not None
                                               and item.updated_at <= link.updated_at(side)):
                    continue
                linked.add(link.id)       # a run syncs a pair once, whichever side shows it first
                counterpart = await engine._call(other, lambda c: c.get_item(
                    sides[other].container, link.item_id(other), comments=False, attachments=False))
                items = {side: item, other: counterpart}
                decisions, changes, _ = await pairs.plan(engine, link, items["a"], items["b"])
                for to in ("a", "b"):
                    if changes[to]:
                        action = merge.A_TO_B if to == "b" else merge.B_TO_A
                        why = "; ".join(f"{d.name}: {d.reason}" for d in decisions if d.action == action)
                        plan.append({"action": "update", "side": to, "item": items[to].key,
                                     "source": items[OTHER[to]].key, "fields": changes[to],
                                     "old": {f: items[to].fields.get(f) for f in changes[to]}, "why": why})
                for d in decisions:
                    if d.action == merge.CONFLICT:
                        plan.append({"action": "conflict", "item": items["a"].key, "field": d.name,
                                     "a_value": d.a_value, "b_value": d.b_value, "why": d.reason})
            if page.next_cursor is None:
                break
            page_cursor = page.next_cursor
    return plan
