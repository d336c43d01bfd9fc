"""A web worker's cache of checked sign-ins (appliance.web.realm.PrincipalCache): what it
answers from memory, for how long, and that an invalidation is never undone by a database
check that was already under way. The database check is a stand-in coroutine here; the
integration tests (test_sessions, test_tokens) run the real one through the app."""

from __future__ import annotations

import asyncio

from appliance.auth import Principal
from appliance.web.realm import PrincipalCache

ALICE = Principal(1, "alice@example.com", "editor", "tenant", "session", session_id="s1", csrf_token="c")
SCHEMA = "t_acme"


class Database:
    """Answers checks with `answer`; `gate`, when set, holds every check until opened."""

    def __init__(self, answer: Principal | None = ALICE):
        self.answer = answer
        self.checks = 0
        self.gate: asyncio.Event | None = None

    async def check(self) -> Principal | None:
        self.checks += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.answer


async def test_an_accepted_sign_in_is_answered_from_memory_until_its_time_is_up():
    cache, database = PrincipalCache(seconds=1.0), Database()
    assert await cache.lookup(SCHEMA, "session a", database.check) == ALICE
    for _ in range(5):
        assert cache.get(SCHEMA, "session a") == ALICE
        assert await cache.lookup(SCHEMA, "session a", database.check) == ALICE
    assert database.checks == 1
    assert cache.get(SCHEMA, "session b") is None and cache.get("t_globex", "session a") is None
    await asyncio.sleep(1.05)
    assert cache.get(SCHEMA, "session a") is None
    database.answer = None                                  # ended meanwhile
    assert await cache.lookup(SCHEMA, "session a", database.check) is None
    assert database.checks == 2


async def test_a_refused_sign_in_is_not_kept():
    cache, database = PrincipalCache(seconds=10), Database(answer=None)
    for _ in range(3):
        assert await cache.lookup(SCHEMA, "session x", database.check) is None
    assert database.checks == 3


async def test_requests_that_miss_together_share_one_check():
    cache, database = PrincipalCache(seconds=10), Database()
    database.gate = asyncio.Event()
    waiting = [asyncio.create_task(cache.lookup(SCHEMA, "session a", database.check)) for _ in range(20)]
    await asyncio.sleep(0.01)
    database.gate.set()
    assert await asyncio.gather(*waiting) == [ALICE] * 20
    assert database.checks == 1


async def test_an_invalidation_during_a_check_is_not_undone_by_it():
    cache, database = PrincipalCache(seconds=10), Database()
    database.gate = asyncio.Event()
    before = asyncio.create_task(cache.lookup(SCHEMA, "session a", database.check))
    await asyncio.sleep(0.01)
    cache.invalidate(SCHEMA)              # e.g. the notification of a sign-out arrives
    # A request after the invalidation does not join the check that began before it.
    after = asyncio.create_task(cache.lookup(SCHEMA, "session a", database.check))
    await asyncio.sleep(0.01)
    assert database.checks == 2
    database.answer = None                # what the second check reads: signed out
    database.gate.set()
    assert await after is None
    await before                          # whatever it read, it stores nothing
    assert cache.get(SCHEMA, "session a") is None
    database.gate = None
    database.answer = ALICE
    assert await cache.lookup(SCHEMA, "session a", database.check) == ALICE
    assert database.checks == 3


async def test_invalidating_one_realm_keeps_the_others():
    cache, database = PrincipalCache(seconds=10), Database()
    await cache.lookup("t_acme", "session a", database.check)
    await cache.lookup("t_globex", "session a", database.check)
    cache.invalidate("t_acme")
    assert cache.get("t_acme", "session a") is None and cache.get("t_globex", "session a") == ALICE
    cache.invalidate()
    assert cache.get("t_globex", "session a") is None


async def test_past_half_its_time_an_entry_is_refreshed_without_making_anyone_wait():
    cache, database = PrincipalCache(seconds=2.0), Database()
    await cache.lookup(SCHEMA, "session a", database.check)
    await asyncio.sleep(1.1)
    database.gate = asyncio.Event()       # the refresh would hang: requests must not wait for it
    for _ in range(3):
        assert await asyncio.wait_for(cache.lookup(SCHEMA, "session a", database.check), 0.5) == ALICE
    assert database.checks == 2           # one refresh for all of them
    database.answer = None                # the refresh finds the session ended: dropped at once
    database.gate.set()
    await asyncio.sleep(0.01)
    database.gate = None
    assert await cache.lookup(SCHEMA, "session a", database.check) is None
    assert database.checks == 3


async def test_the_cache_is_bounded():
    cache, database = PrincipalCache(seconds=10, max_entries=3), Database()
    for n in range(3):
        await cache.lookup(SCHEMA, f"session {n}", database.check)
    assert all(cache.get(SCHEMA, f"session {n}") == ALICE for n in range(3))
    await cache.lookup(SCHEMA, "session 3", database.check)       # full: starts afresh
    assert [cache.get(SCHEMA, f"session {n}") for n in range(4)] == [None, None, None, ALICE]
