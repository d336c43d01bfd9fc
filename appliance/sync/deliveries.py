"""Webhook deliveries in the engine: the items webhooks named (webhook_deliveries rows, written by
the web tier), looked at by an Engine run.

A "webhook" run takes them and nothing else; a full run takes them at its end, and during a poll
whenever SyncJobs asks (`ask`, once per new delivery) or a page ends that held some back. Each
item is looked at once however many deliveries named it, several pairs at once: one pair's items
one after another (they would race on it), and items without a pair one after another (one may
be the other's new counterpart). During a poll page, the items of pairs the page still holds,
and items without a pair (the page may be creating theirs), wait for the end of the page; and a
later page's item whose pair a delivery is looking at waits for that look (`wait_for`), so a
delivery and the poll never merge one pair, or copy its comments, at once. A person is waiting
for these: their requests are urgent (appliance.outbound.URGENT), ahead of a backfill's in the
apps' budgets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container
from typing import TYPE_CHECKING

from appliance.outbound import URGENT
from appliance.sync import parallel

if TYPE_CHECKING:
    from appliance.sync.engine import Engine


class Deliveries:
    """One engine's deliveries. `asked` is set when they should be taken during a poll (the
    poll serves it: parallel.serving); `held_back` says whether the last look during a poll
    left some to a page's end (then that page's end asks again)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.asked = asyncio.Event()
        self.held_back = False
        self._looking: dict[tuple[str, str], asyncio.Event] = {}    # both items of pairs being looked at

    def ask(self) -> None:
        self.asked.set()

    async def wait_for(self, side: str, item_id: str) -> None:
        """Return once no delivery is looking at the pair of (side, item_id) (a poll's item)."""
        if (looking := self._looking.get((side, item_id))) is not None:
            await looking.wait()

    async def take(self, page_side: str | None = None, page_ids: Container[str] = ()) -> None:
        """Look at the pending deliveries' items (module docstring); during a poll page of
        `page_side`, `page_ids` are its items not yet done."""
        store = self.engine.store
        if page_side is None:
            self.asked.clear()
        self.held_back = False
        rows = await store.pending_deliveries()
        if not rows:
            return
        items: dict[tuple[str, str], list[int]] = {}
        for row in rows:
            items.setdefault((row["side"], row["item_id"]), []).append(row["id"])
        pairs = await store.pairs_of(items)
        if page_side is not None:
            column = 1 if page_side == "a" else 2
            named = len(items)
            items = {k: v for k, v in items.items() if k in pairs and pairs[k][column] not in page_ids}
            self.held_back = len(items) < named
            if not items:
                return
        urgent = URGENT.set(True)
        try:
            await parallel.run_each(list(items), lambda k: self._look(k, pairs.get(k), page_side is not None),
                                    key=lambda k: pairs[k][0] if k in pairs else "unpaired", fatal=(Exception,))
        finally:
            URGENT.reset(urgent)
        await store.delivered([i for ids in items.values() for i in ids])

    async def _look(self, key: tuple[str, str], pair: tuple[int, str, str] | None, polling: bool) -> None:
        if not polling or pair is None:
            return await self.engine._guarded(*key, "", None, force=True)
        done, ids = asyncio.Event(), (("a", pair[1]), ("b", pair[2]))
        self._looking.update(dict.fromkeys(ids, done))
        try:
            await self.engine._guarded(*key, "", None, force=True)
        finally:
            done.set()
            for k in ids:
                if self._looking.get(k) is done:
                    del self._looking[k]
