import asyncpg


async def test_database_fixture_gives_an_empty_database(database):
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT current_setting('fsync')") == "off"
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'tandem'") == 0
    finally:
        await conn.close()
