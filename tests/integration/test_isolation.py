"""Isolation enforced by PostgreSQL: a request's queries run in realm_transaction(),
as the tenant's role with its schema on the search path, so even a deliberately
wrong query naming another tenant's schema (or the control schema) is refused by
the database; the console never runs as a tenant role; pooled connections go back
clean; concurrent requests of two tenants never see each other's rows.

The app is the real one plus test-only routes that run SQL in the request's realm.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from aiohttp import web

from appliance.web.app import create_app
from appliance.web.keys import DB_POOL, REALM, TENANTS
from appliance.web.realm import realm_transaction
from tests.integration.web_setup import prepared_cluster

CONTROL_LOGIN = "tandem_test"   # the harness server's login, the control login of these configs


@pytest.fixture(scope="module")
def cluster(pg_server):
    with prepared_cluster(pg_server, {"acme": "active", "globex": "active"}) as prepared:
        yield prepared


async def run_sql(request: web.Request) -> web.Response:
    """Run ?sql=... in the request's realm: {"rows": [...]} or {"error": ..., "sqlstate": ...}."""
    try:
        async with realm_transaction(request) as conn:
            rows = await conn.fetch(request.query["sql"])
    except asyncpg.PostgresError as exc:
        return web.json_response({"error": type(exc).__name__, "sqlstate": exc.sqlstate})
    return web.json_response({"rows": [list(r.values()) for r in rows]}, dumps=lambda o: json.dumps(o, default=str))


async def add_job(request: web.Request) -> web.Response:
    """Insert a job named ?name=..., then fail if ?fail=1 (the transaction must roll back)."""
    async with realm_transaction(request) as conn:
        await conn.execute("INSERT INTO scheduled_jobs (name, interval_s) VALUES ($1, 60)", request.query["name"])
        if request.query.get("fail"):
            raise web.HTTPConflict(text="failing on purpose")
    return web.json_response({"realm": request[REALM].kind})


@pytest.fixture
async def client(aiohttp_client, cluster):
    config = cluster.config
    # One pooled connection: every request below reuses the same one.
    config = config.model_copy(update={"database": config.database.model_copy(update={"pool_size": 1})})
    app = create_app(config, cluster.key)
    app.router.add_get("/test/sql", run_sql)
    app.router.add_post("/test/jobs", add_job)
    return await started(aiohttp_client, app)


async def started(aiohttp_client, app: web.Application):
    """The test client, once the app's tenant directory has loaded."""
    client = await aiohttp_client(app)
    for _ in range(200):
        if app[TENANTS].fresh:
            return client
        await asyncio.sleep(0.05)
    raise AssertionError("the tenant directory did not load")


async def sql(client, host: str, statement: str) -> dict:
    response = await client.get("/test/sql", params={"sql": statement}, headers={"Host": host})
    assert response.status == 200, await response.text()
    return await response.json()


ACME = "acme.tandem.test"
GLOBEX = "globex.tandem.test"
CONSOLE = "tandem.test"


@pytest.mark.parametrize("statement", [
    "SELECT * FROM t_globex.scheduled_jobs",
    "SELECT * FROM t_globex.worker_status",
    "INSERT INTO t_globex.scheduled_jobs (name, interval_s) VALUES ('x', 1)",
    "SELECT * FROM tandem.tenants",
    "SELECT * FROM tandem.users",
    "SELECT * FROM tandem.audit_log",
])
async def test_a_tenant_request_cannot_reach_other_schemas(client, statement):
    result = await sql(client, ACME, statement)
    assert result == {"error": "InsufficientPrivilegeError", "sqlstate": "42501"}


async def test_unqualified_names_resolve_in_the_request_realm(client):
    assert (await sql(client, ACME, "SELECT current_user, current_schemas(false)"))["rows"] == \
        [[(await _role(client, "acme")), ["t_acme"]]]
    assert (await sql(client, GLOBEX, "SELECT current_user, current_schemas(false)"))["rows"] == \
        [[(await _role(client, "globex")), ["t_globex"]]]
    # The control schema's tables are simply not there for a tenant...
    assert (await sql(client, ACME, "SELECT * FROM tenants"))["error"] == "UndefinedTableError"
    # ...and the console finds them unqualified.
    slugs = (await sql(client, CONSOLE, "SELECT slug FROM tenants ORDER BY slug"))["rows"]
    assert slugs == [["acme"], ["globex"]]


async def _role(client, slug: str) -> str:
    rows = (await sql(client, CONSOLE, f"SELECT role_name FROM tenants WHERE slug = '{slug}'"))["rows"]
    return rows[0][0]


async def test_the_console_never_runs_as_a_tenant_role(client):
    rows = (await sql(client, CONSOLE, "SELECT current_user, session_user, current_setting('role')"))["rows"]
    assert rows == [[CONTROL_LOGIN, CONTROL_LOGIN, "none"]]
    # Right after a tenant request on the same (only) pooled connection, too.
    assert (await sql(client, ACME, "SELECT current_user"))["rows"][0][0].endswith("_t_acme")
    rows = (await sql(client, CONSOLE, "SELECT current_user, current_schemas(false)"))["rows"]
    assert rows == [[CONTROL_LOGIN, ["tandem"]]]


async def test_the_pooled_connection_goes_back_to_the_control_login(client):
    app = client.server.app
    for statement in ("SELECT 1", "SELECT * FROM t_globex.scheduled_jobs"):   # success, then failure
        await sql(client, ACME, statement)
        async with app[DB_POOL].acquire() as conn:
            row = await conn.fetchrow("SELECT current_user, current_setting('role') AS role, "
                                      "current_setting('search_path') AS path, "
                                      "pg_backend_pid() AS pid")
        assert (row["current_user"], row["role"]) == (CONTROL_LOGIN, "none")
        assert "t_acme" not in row["path"]
        # It is the same connection the request used (the pool has one).
        assert (await sql(client, ACME, "SELECT pg_backend_pid()"))["rows"] == [[row["pid"]]]


async def test_a_request_transaction_commits_or_rolls_back_as_a_whole(client):
    ok = await client.post("/test/jobs", params={"name": "kept"}, headers={"Host": ACME})
    assert ok.status == 200
    failed = await client.post("/test/jobs", params={"name": "dropped", "fail": "1"}, headers={"Host": ACME})
    assert failed.status == 409
    names = [r[0] for r in (await sql(client, ACME, "SELECT name FROM scheduled_jobs"))["rows"]]
    assert "kept" in names and "dropped" not in names
    assert "kept" not in [r[0] for r in (await sql(client, GLOBEX, "SELECT name FROM scheduled_jobs"))["rows"]]


async def test_interleaved_requests_of_two_tenants_see_only_their_own_rows(aiohttp_client, cluster):
    config = cluster.config
    config = config.model_copy(update={"database": config.database.model_copy(update={"pool_size": 4})})
    app = create_app(config, cluster.key)
    app.router.add_get("/test/sql", run_sql)
    app.router.add_post("/test/jobs", add_job)
    client = await started(aiohttp_client, app)
    for host, prefix in ((ACME, "a"), (GLOBEX, "g")):
        for i in range(3):
            response = await client.post("/test/jobs", params={"name": f"{prefix}-{i}"}, headers={"Host": host})
            assert response.status == 200

    # Each request holds its transaction across a sleep, so 4 pooled connections are
    # handed from tenant to tenant while others are mid-transaction.
    statement = "SELECT name FROM scheduled_jobs, pg_sleep(0.01) WHERE name ~ '^[ag]-'"
    hosts = [ACME if i % 2 else GLOBEX for i in range(60)]
    results = await asyncio.gather(*(sql(client, host, statement) for host in hosts))
    for host, result in zip(hosts, results):
        names = {r[0] for r in result["rows"]}
        expected = {"a-0", "a-1", "a-2"} if host == ACME else {"g-0", "g-1", "g-2"}
        assert names == expected, (host, names)
