"""Deletes: an item gone from one side, and what the integration's delete policy does to its
counterpart ("delete" it, "close" it with the workflow's first done status, or "ignore": leave
it). Either way the pair becomes 'deleted' and is never synced again; an event says what was
done."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from appliance.connectors.base import ContainerGone, Item, RemoteAuthError
from appliance.sync.mapping import OTHER, SIDE_NAME
from appliance.sync.store import Event, Link

if TYPE_CHECKING:
    from appliance.sync.engine import Engine


#: How long a container seen to exist vouches for the 404s of its items (a mass delete makes
#: many in a row; access lost since is then noticed within this time).
CONTAINER_CHECK_SECONDS = 30.0


async def confirm_gone(engine: Engine, side: str) -> None:
    """A 404 for an item of `side` is taken to mean the item was deleted only while the side's
    container is there: an account that lost access to the project (removed from it, the
    project made private or moved) gets 404 for every item in it, and acting on those would
    delete or close every counterpart. Raises ContainerGone (the run stops, nothing is done to
    any pair) when the container cannot be seen."""
    s = engine._side_map[side]
    if time.monotonic() - s.container_seen < CONTAINER_CHECK_SECONDS:
        return
    if not await engine._call(side, lambda c: c.container_exists(s.container)):
        error = ContainerGone(f"the project (id {s.container!r}) is gone or no longer visible to the "
                              "connection's account; no item of it was taken as deleted")
        error.side = side
        raise error
    s.container_seen = time.monotonic()


async def item_gone(engine: Engine, side: str, item_id: str) -> None:
    """Item `item_id` of `side` answered 404 (a webhook, a retry or a reconciliation asked about
    it): once confirm_gone has seen its container, the delete policy applies to its
    counterpart, if it has one."""
    link = await engine.store.link_by(side, item_id)
    if link is None or link.state == "deleted":
        return
    await confirm_gone(engine, side)
    counterpart = await engine._counterpart(link, side)
    if counterpart is None:
        await engine.store.set_link_state(link, "deleted", engine.run_id,
                                          Event("deleted", "", link.a_key, (), "deleted on both sides"))
        return
    await counterpart_gone(engine, link, OTHER[side], counterpart)


def not_permitted(exc: RemoteAuthError) -> bool:
    """Whether a refused delete is the account not being allowed to delete there (403: GitLab
    lets only a project's Owners delete issues, Jira needs the Delete Issues permission), not a
    credential gone bad (401). Then the delete is reported as left undone and syncing goes on;
    stopping the integration would stop it on every run, for a permission it never needed
    before."""
    return exc.status == 403


async def counterpart_gone(engine: Engine, link: Link, side: str, item: Item) -> None:
    """The counterpart of `item` was deleted: the delete policy says what happens to `item`."""
    policy = engine.spec.delete_policy
    s = engine._side_map[side]
    detail = f"counterpart of {item.key} was deleted on side {SIDE_NAME[OTHER[side]]}"
    if policy == "delete":
        try:
            await engine._call(side, lambda c: c.delete_item(s.container, item.id))
            detail += f"; {item.key} deleted (delete policy)"
        except RemoteAuthError as exc:
            if not not_permitted(exc):
                raise
            detail += (f"; {item.key} left alone: the connection's account may not delete it ({exc.message}); "
                       "delete it by hand, or give the account that permission")
    elif policy == "close":
        info = await engine._call(side, lambda c: c.describe(s.container))
        done = next((st.name for st in info.statuses if st.category == "done"), None)
        if done and item.fields.get("status") != done:
            await engine._call(side, lambda c: c.update_item(s.container, item.id, {"status": done}))
            detail += f"; {item.key} set to {done} (close policy)"
    else:
        detail += "; left alone (delete policy ignore)"
    await engine.store.set_link_state(link, "deleted", engine.run_id, Event("deleted", "", item.key, (), detail))
