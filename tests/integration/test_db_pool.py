"""The tenant worker's pool (db.create_pool(session_state=False)): a release sends nothing to
the server, and still leaves no transaction behind for the next user of the connection."""

from appliance import db


async def _round_trips(pool, times: int) -> int:
    """Protocol-level queries one connection sends for `times` acquire + one SELECT + release."""
    async with pool.acquire() as conn:
        protocol = conn._con._protocol      # the pooled connection's wire protocol
    before = protocol.queries_count
    for _ in range(times):
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    return protocol.queries_count - before


async def test_release_without_session_state_costs_no_round_trip(config, key):
    lean = await db.create_pool(config, key, min_size=1, max_size=1, session_state=False)
    full = await db.create_pool(config, key, min_size=1, max_size=1)
    try:
        assert await _round_trips(lean, 10) == 10
        # The default pool resets the session on every release: one more query each.
        assert await _round_trips(full, 10) == 20
    finally:
        await lean.close()
        await full.close()


async def test_a_transaction_left_open_is_rolled_back_on_release(config, key):
    pool = await db.create_pool(config, key, min_size=1, max_size=1, session_state=False)
    try:
        await pool.execute("CREATE TEMP TABLE IF NOT EXISTS t (n int)")
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("SET LOCAL statement_timeout = 1234")
            await conn.execute("INSERT INTO t VALUES (1)")
            # released mid-transaction (as when a task is cancelled inside one)
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW statement_timeout") == "0"
            assert await conn.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await pool.close()
