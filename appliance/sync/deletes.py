"""Deletes: an item gone from one side, and what the integration's delete policy does to its
counterpart ("delete" it, "close" it with the workflow's first done status, or "ignore": leave
it). Either way the pair becomes 'deleted' and is never synced again; an event says what was
done."""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.connectors.base import Item
from appliance.sync.mapping import OTHER, SIDE_NAME
from appliance.sync.store import Event, Link

if TYPE_CHECKING:
    from appliance.sync.engine import Engine


async def item_gone(engine: Engine, side: str, item_id: str) -> None:
    """Item `item_id` of `side` no longer exists (a webhook or a retry asked about it): the
    delete policy applies to its counterpart, if it has one."""
    link = await engine.store.link_by(side, item_id)
    if link is None or link.state == "deleted":
        return
    counterpart = await engine._counterpart(link, side)
    if counterpart is None:
        await engine.store.set_link_state(link, "deleted", engine.run_id,
                                          Event("deleted", "", link.a_key, (), "deleted on both sides"))
        return
    await counterpart_gone(engine, link, OTHER[side], counterpart)


async def counterpart_gone(engine: Engine, link: Link, side: str, item: Item) -> None:
    """The counterpart of `item` was deleted: the delete policy says what happens to `item`."""
    policy = engine.spec.delete_policy
    s = engine._side_map[side]
    detail = f"counterpart of {item.key} was deleted on side {SIDE_NAME[OTHER[side]]}"
    if policy == "delete":
        await engine._call(side, lambda c: c.delete_item(s.container, item.id))
        detail += f"; {item.key} deleted (delete policy)"
    elif policy == "close":
        info = await engine._call(side, lambda c: c.describe(s.container))
        done = next((st.name for st in info.statuses if st.category == "done"), None)
        if done and item.fields.get("status") != done:
            await engine._call(side, lambda c: c.update_item(s.container, item.id, {"status": done}))
            detail += f"; {item.key} set to {done} (close policy)"
    else:
        detail += "; left alone (delete policy ignore)"
    await engine.store.set_link_state(link, "deleted", engine.run_id, Event("deleted", "", item.key, (), detail))
