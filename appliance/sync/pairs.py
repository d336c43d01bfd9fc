"""Bringing a linked pair up to date (the engine's look at a changed linked item): its
counterpart is read, appliance.sync.merge decides field by field and appliance.sync.item_types
for the item's type, with the resolutions a person gave held conflicts; what changed is written
to each side, and the read-back values become the new bases, in one transaction with the pair's
events and conflicts (Store.save_link). `plan` is that decision alone, which preview
(appliance.sync.preview) shows without writing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appliance.connectors.base import Item
from appliance.db import jsonb
from appliance.sync import deletes, item_types, merge
from appliance.sync.mapping import OTHER
from appliance.sync.store import ConflictRow, Event, Link

if TYPE_CHECKING:
    from appliance.sync.engine import Engine


async def merge_pair(engine: Engine, link: Link, side: str, item: Item) -> Item | None:
    """Merge the pair; returns the counterpart as read, None if it is gone (delete policy)."""
    other = OTHER[side]
    counterpart = await engine._counterpart(link, side)
    if counterpart is None:
        await deletes.counterpart_gone(engine, link, side, item)
        return None
    items = {side: item, other: counterpart}
    a_item, b_item = items["a"], items["b"]
    decisions, changes, applied = await plan(engine, link, a_item, b_item)
    written: dict[str, Item] = {}
    for to in ("a", "b"):
        if changes[to]:
            s = engine._side_map[to]
            written[to] = await engine._call(to, lambda c, s=s, to=to: c.update_item(
                s.container, link.item_id(to), changes[to]))
    read_back = {k: engine._read(k, v) for k, v in written.items()}
    base_a, base_b = merge.new_bases(decisions, link.base_a, link.base_b, read_back.get("a"), read_back.get("b"))
    events, conflicts = [], []
    for direction, action in (("a_to_b", merge.A_TO_B), ("b_to_a", merge.B_TO_A)):
        moved = [d for d in decisions if d.action == action]
        if moved:
            source = a_item if direction == "a_to_b" else b_item
            events.append(Event("updated", direction, source.key, [d.name for d in moved],
                                "; ".join(f"{d.name}: {d.reason}" for d in moved)))
    for d in decisions:
        if d.mapping is item_types.TYPE and d.action in (merge.ACK_A, merge.ACK_B):
            events.append(Event("type_unmapped", "", a_item.key, [d.name], d.reason))
        if d.action == merge.CONFLICT:
            conflicts.append(ConflictRow(d.name, d.a_value, d.b_value, d.base_a))
            events.append(Event("conflict", "", a_item.key, [d.name], d.reason))
        elif d.writes and d.reason.startswith("changed on both sides; policy"):
            winner = "a" if d.action == merge.A_TO_B else "b"
            conflicts.append(ConflictRow(d.name, d.a_value, d.b_value, d.base_a, "resolved",
                                         engine.spec.conflict_policy, d.a_value if winner == "a" else d.b_value))
    held = [c for c in conflicts if c.state == "open"]
    engine.counts["conflicts"] += len(held)
    if written:
        engine.counts["updated"] += 1
    times = tuple(_seen_until(decisions, s, items[s], written.get(s), read_back.get(s)) for s in ("a", "b"))
    # NULL update times until comments and attachments are done (see _link).
    # A pair in conflict: the fields no longer in conflict were settled by people (both sides
    # made to agree, or one side's edit undone); their conflicts leave the inbox.
    settled = [d.name for d in decisions if d.action != merge.CONFLICT] if link.state == "conflict" else []
    await engine.store.save_link(
        link, base_a, base_b, *((None, None) if engine._has_related() else times),
        "conflict" if held else "active", engine.run_id, events, conflicts, applied, settled)
    link.a_updated_at, link.b_updated_at = times
    return counterpart


def _seen_until(decisions: list[merge.Decision], side: str, item: Item, written: Item | None,
                read_back: dict[str, Any] | None) -> Any:
    """The update time of `side` up to which the pair is now in step: the read-back's when we
    wrote to it (so our own write is not looked at again), unless a mapped field we did not
    write reads back other than the merge read it. Then a person edited it while we wrote
    (between our read and the write's answer), and the time stays the one read before, so the
    next poll looks again; the field's base is still its value before (merge.new_bases), so
    the edit is copied. (Also a side effect of our write, such as a resolution a transition
    set, is.)"""
    if written is None or read_back is None:
        return item.updated_at
    ours = merge.A_TO_B if side == "b" else merge.B_TO_A
    read = (lambda d: d.a_value) if side == "a" else (lambda d: d.b_value)
    if any(read_back.get(d.name) != read(d) for d in decisions
           if d.action != ours and d.mapping is not item_types.TYPE):
        return item.updated_at
    return written.updated_at


async def plan(engine: Engine, link: Link, a_item: Item, b_item: Item
               ) -> tuple[list[merge.Decision], dict[str, dict[str, Any]], list[int]]:
    """The merge's decisions for a pair, the field changes to write per side, and the ids of
    the person-resolved conflicts they apply."""
    cur = {"a": engine._read("a", a_item), "b": engine._read("b", b_item)}
    resolutions, chosen, applied = {}, {}, []
    for r in await engine.store.resolutions(link):
        resolutions[r["field"]] = "a" if r["resolution"] == "value" else r["resolution"]
        if r["resolution"] == "value":
            chosen[r["field"]] = jsonb(r["resolved_value"])
        applied.append(r["id"])
    for name, value in chosen.items():
        cur["a"][name] = value      # a person's own value: written to A, then flows to B
    decisions = merge.decide(engine.spec.field_mappings, cur["a"], cur["b"], link.base_a, link.base_b,
                             policy=engine.spec.conflict_policy, translate=engine.mapper.translate,
                             a_updated=a_item.updated_at, b_updated=b_item.updated_at,
                             resolutions=resolutions)
    typed = item_types.decide(engine.mapper, link.base_a, link.base_b, cur["a"][item_types.NAME],
                              cur["b"][item_types.NAME], policy=engine.spec.conflict_policy, a_item=a_item,
                              b_item=b_item, resolution=resolutions.get(item_types.NAME))
    decisions.append(typed)
    final = item_types.final_values(engine.mapper, typed, chosen.get(item_types.NAME))
    tms = {s: item_types.mapping_of(engine.mapper, s, final[s]) for s in ("a", "b")}
    fallback = engine.mapper.type_mapping("a", a_item) or engine.mapper.type_mapping("b", b_item)
    changes: dict[str, dict[str, Any]] = {"a": {}, "b": {}}
    for d in decisions:
        if d is typed:
            continue
        if d.name in chosen:
            field_a = d.mapping.a_field
            changes["a"][field_a] = engine.mapper.write_value("a", field_a, chosen[d.name], tms["a"] or fallback)
        if d.writes:
            to = "b" if d.action == merge.A_TO_B else "a"
            source_value = d.a_value if to == "b" else d.b_value
            target_field = engine.mapper.field_of(d.mapping, to)
            # The target's current value: what of it already maps stays (Mapper.translate).
            value = engine.mapper.translate(d.mapping, source_value, OTHER[to],
                                          current=d.a_value if to == "a" else d.b_value)
            changes[to][target_field] = engine.mapper.write_value(to, target_field, value, tms[to] or fallback)
    for side, item in (("a", a_item), ("b", b_item)):
        if final[side] != item_types.value(engine.mapper, side, item):
            changes[side].update(item_types.writes(engine.mapper, side, item, final[side],
                                                   changes[side].get("labels")))
    return decisions, changes, applied
