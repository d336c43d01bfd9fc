import asyncio
import json
import os
import shutil
import time
from urllib.parse import urlsplit

import asyncpg
import pytest

from appliance import db, migrator, nodes, resources, tenants
from appliance.config import load_config
from appliance.errors import AlreadyExists, FatalError, InvalidIdentifier, MigrationError, NotFound
from appliance.keys import ensure_key
from tests.harness import tandem, write_config


@pytest.fixture
async def conn(config, key):
    await migrator.migrate(config, key)
    async with db.control(config, key) as connection:
        yield connection


async def _audit(conn, target):
    return [(r["actor"], r["action"]) for r in await conn.fetch(
        "SELECT actor, action FROM tandem.audit_log WHERE target = $1 ORDER BY id", target)]


async def test_create_makes_a_schema_owned_by_a_login_role(config, key, conn):
    tenant = await tenants.create_tenant(config, key, conn, "acme", display_name="Acme Corp", actor="ops@example.com")
    role = f"{config.cluster.name}_t_acme"
    assert (tenant.slug, tenant.schema_name, tenant.role_name, tenant.state, tenant.display_name) == \
        ("acme", "t_acme", role, "active", "Acme Corp")
    assert tenant.admin_id is None
    assert await tenants.get_tenant(conn, "acme") == tenants.Tenant(tenant.id, "acme", "t_acme", role, "active",
                                                                    "Acme Corp")

    assert await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 't_acme'") == role
    tables = {r["tablename"]: r["tableowner"] for r in await conn.fetch(
        "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 't_acme'")}
    assert {"schema_migrations", "scheduled_jobs", "worker_status", "users", "sessions", "api_tokens",
            "login_attempts", "audit_log"} <= set(tables)
    assert set(tables.values()) == {role}      # every table of the schema belongs to the tenant's role
    attrs = await conn.fetchrow("SELECT rolcanlogin, rolinherit, rolcreatedb, rolcreaterole, rolsuper, rolpassword "
                                "FROM pg_authid WHERE rolname = $1", role)
    assert attrs["rolcanlogin"] and not attrs["rolinherit"]
    assert not (attrs["rolcreatedb"] or attrs["rolcreaterole"] or attrs["rolsuper"])
    assert attrs["rolpassword"].startswith("SCRAM-SHA-256$4096:")
    assert await _audit(conn, "acme") == [("ops@example.com", "tenant.create")]
    assert await migrator.status(conn) == migrator.MigrationStatus(tenant_schemas=1)

    # The tenant logs in with the password derived from the master key and uses its schema.
    own = await db.connect(config, key, role=role)
    try:
        assert await own.fetchval("SHOW search_path") == '"$user", public'
        await own.execute("INSERT INTO t_acme.scheduled_jobs (name, interval_s) VALUES ('poll', 60)")
        assert await own.fetchval("SELECT count(*) FROM t_acme.scheduled_jobs") == 1
        assert await migrator.tenant_pending(own, "t_acme") == []
    finally:
        await own.close()


async def test_duplicates_and_leftovers_are_refused(config, key, conn):
    await tenants.create_tenant(config, key, conn, "acme")
    with pytest.raises(AlreadyExists, match="tenant 'acme' already exists"):
        await tenants.create_tenant(config, key, conn, "acme")

    leftover = f"{config.cluster.name}_t_ghost"
    await conn.execute(f'CREATE ROLE "{leftover}"')
    with pytest.raises(AlreadyExists, match=f"PostgreSQL role {leftover} already exists"):
        await tenants.create_tenant(config, key, conn, "ghost")
    with pytest.raises(InvalidIdentifier, match="reserved"):
        await tenants.create_tenant(config, key, conn, "admin")
    assert [t.slug for t in await tenants.list_tenants(conn)] == ["acme"]
    assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname IN ('t_ghost', 't_admin')") == 0


async def test_a_failing_tenant_migration_creates_nothing(config, key, conn, tmp_path):
    sql = tmp_path / "sql"
    shutil.copytree(resources.sql_dir(), sql)
    (sql / "tenant" / "0901_bad.sql").write_text("CREATE TABLE notes (body text);\nSELECT 1 / 0;\n")
    with pytest.raises(MigrationError) as failed:
        await tenants.create_tenant(config, key, conn, "acme", migrations_dir=sql)
    assert str(failed.value) == ("tenant acme not created: schema t_acme: migration 0901_bad.sql failed: "
                                 "division by zero")
    assert await tenants.list_tenants(conn) == []
    assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 't_acme'") == 0
    assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", config.cluster.name + "%") == 0
    assert await _audit(conn, "acme") == []
    # The connection is usable as before: its own role, no tenant search_path left over.
    assert await conn.fetchval("SELECT current_user") == await conn.fetchval("SELECT session_user")
    ok = await tenants.create_tenant(config, key, conn, "acme")
    assert ok.state == "active"
    assert await conn.fetchval("SELECT current_user") == await conn.fetchval("SELECT session_user")
    assert await conn.fetchval("SHOW search_path") == '"$user", public'


async def test_a_tenant_role_reaches_nothing_outside_its_schema(config, key, conn):
    acme = await tenants.create_tenant(config, key, conn, "acme")
    globex = await tenants.create_tenant(config, key, conn, "globex")
    await conn.execute("CREATE TABLE public.shared (id int)")
    own = await db.connect(config, key, role=acme.role_name)
    try:
        for statement in ("SELECT * FROM t_globex.scheduled_jobs",
                          "INSERT INTO t_globex.scheduled_jobs (name, interval_s) VALUES ('x', 1)",
                          "SELECT * FROM tandem.tenants",
                          "SELECT * FROM public.shared",
                          "CREATE TABLE public.mine (id int)",
                          "CREATE SCHEMA elsewhere",
                          f'SET ROLE "{globex.role_name}"'):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await own.execute(statement)
    finally:
        await own.close()


async def test_disable_enable(config, key, conn):
    await tenants.create_tenant(config, key, conn, "acme")
    await tenants.create_tenant(config, key, conn, "globex")
    disabled = await tenants.set_state(conn, "acme", "disabled", actor="cli")
    assert disabled.state == "disabled"
    assert [t.slug for t in await tenants.active_tenants(conn)] == ["globex"]
    await tenants.set_state(conn, "acme", "active", actor="cli")
    assert [t.slug for t in await tenants.active_tenants(conn)] == ["acme", "globex"]
    assert await _audit(conn, "acme") == [("cli", "tenant.create"), ("cli", "tenant.disable"),
                                          ("cli", "tenant.enable")]
    with pytest.raises(NotFound, match="no tenant 'nobody'"):
        await tenants.set_state(conn, "nobody", "disabled", actor="cli")
    with pytest.raises(FatalError, match="must be one of active, disabled"):
        await tenants.set_state(conn, "acme", "deleting", actor="cli")


async def test_delete_removes_everything_even_with_a_session_open(config, key, conn):
    tenant = await tenants.create_tenant(config, key, conn, "acme")
    session = await db.connect(config, key, role=tenant.role_name)
    started = time.monotonic()
    await tenants.delete_tenant(config, key, conn, "acme", actor="cli", wait_seconds=0.5)
    assert time.monotonic() - started < 5
    with pytest.raises((asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError,
                        asyncpg.InterfaceError)):
        await session.fetchval("SELECT 1")
    session.terminate()
    assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 't_acme'") == 0
    assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", tenant.role_name) == 0
    with pytest.raises(NotFound):
        await tenants.get_tenant(conn, "acme")
    assert await _audit(conn, "acme") == [("cli", "tenant.create"), ("cli", "tenant.delete.start"),
                                          ("cli", "tenant.delete")]
    # Nothing is left over: the slug can be used again.
    again = await tenants.create_tenant(config, key, conn, "acme")
    assert again.id != tenant.id


async def test_delete_waits_for_sessions_to_end_by_themselves(config, key, conn):
    tenant = await tenants.create_tenant(config, key, conn, "acme")
    session = await db.connect(config, key, role=tenant.role_name)

    async def worker_stops():  # as the supervisor would stop the worker after 'deleting'
        while (await tenants.get_tenant(conn_two, "acme")).state != "deleting":
            await asyncio.sleep(0.05)
        await session.close()

    conn_two = await db.connect(config, key)
    try:
        stopper = asyncio.create_task(worker_stops())
        started = time.monotonic()
        await tenants.delete_tenant(config, key, conn, "acme", actor="cli", wait_seconds=10)
        assert time.monotonic() - started < 5
        await stopper
    finally:
        await conn_two.close()
    with pytest.raises(NotFound):
        await tenants.get_tenant(conn, "acme")


async def test_list_shows_the_latest_worker_report(config, key, conn):
    acme = await tenants.create_tenant(config, key, conn, "acme")
    globex = await tenants.create_tenant(config, key, conn, "globex")
    await nodes.register_node(conn, "node-a", "host-a", 100, "0.1.0")
    await nodes.register_node(conn, "node-b", "host-b", 200, "0.1.0")
    assert await nodes.heartbeat(conn, "node-a", [
        nodes.WorkerReport(acme.id, "running", pid=4242, restarts=2, last_exit="exit 1"),
        nodes.WorkerReport(globex.id, "backoff", reason="boot failed: database unavailable"),
    ])
    await asyncio.sleep(0.01)
    assert await nodes.heartbeat(conn, "node-b", [nodes.WorkerReport(acme.id, "standby", pid=5151,
                                                                      reason="another node holds the lock")])
    rows = {r.slug: r for r in await tenants.list_tenants(conn)}
    assert (rows["acme"].worker_state, rows["acme"].node, rows["acme"].pid) == ("standby", "node-b", 5151)
    assert (rows["globex"].worker_state, rows["globex"].reason) == ("backoff", "boot failed: database unavailable")
    listed = json.loads(json.dumps(rows["globex"].as_dict()))
    assert listed["slug"] == "globex" and listed["state"] == "active" and listed["updated_at"]

    # node-a now runs only acme: its globex row goes; a row of a deleted tenant is dropped, not an error.
    assert await nodes.heartbeat(conn, "node-a", [nodes.WorkerReport(acme.id, "running", pid=4242),
                                                  nodes.WorkerReport(999999, "running", pid=1)])
    rows = {r.slug: r for r in await tenants.list_tenants(conn)}
    assert rows["globex"].worker_state is None and rows["globex"].restarts == 0
    assert await conn.fetchval("SELECT count(*) FROM tandem.tenant_workers") == 2
    assert not await nodes.heartbeat(conn, "unregistered", [])
    listed_nodes = await nodes.list_nodes(conn)
    assert [n["name"] for n in listed_nodes] == ["node-a", "node-b"]
    assert 0 <= listed_nodes[0]["seconds_since_heartbeat"] < 5


def test_cli_as_a_real_process(config_path):
    before = tandem("tenant", "create", "acme", config=config_path)
    assert before.returncode == 75 and "run `tandem migrate`" in before.stderr

    migrated = tandem("migrate", config=config_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied in tandem: 0001_control" in migrated.stdout

    created = tandem("tenant", "create", "acme", "--name", "Acme", config=config_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created tenant acme: https://acme.tandem.test/ (schema t_acme, role ")

    listed = tandem("tenant", "list", config=config_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split("\n")[0].split() == ["SLUG", "STATE", "WORKER", "NODE", "PID", "RESTARTS", "REASON"]
    assert listed.stdout.split("\n")[1].split() == ["acme", "active", "-", "-", "-", "0"]

    admin = tandem("admin", "create", "x@example.com", config=config_path)
    assert admin.returncode == 0, admin.stderr
    lines = admin.stdout.splitlines()
    assert lines[0] == "created cluster admin x@example.com"
    assert lines[1].startswith("password (shown once): ") and len(lines[1].split(": ")[1]) >= 12

    again = tandem("migrate", config=config_path)
    assert again.stdout.strip() == "nothing to do: schema tandem and 1 tenant schema are current"
    assert os.stat(config_path.parent / "master.key").st_mode & 0o777 == 0o600


async def test_a_control_login_without_superuser_does_it_all(pg_server, database, cluster_name, data_dir):
    """A real install's external DSN: a login with CREATEROLE that owns the database, no superuser."""
    control_role, password = f"{cluster_name}_control", "control-login-password"
    dbname = urlsplit(database).path.lstrip("/")
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(f'CREATE ROLE "{control_role}" LOGIN CREATEROLE PASSWORD \'{password}\'')
        await admin.execute(f'ALTER DATABASE "{dbname}" OWNER TO "{control_role}"')
    finally:
        await admin.close()
    dsn = f"postgresql://{control_role}:{password}@/{dbname}?{urlsplit(database).query}"
    config = load_config(write_config(data_dir / "tandem.toml", dsn=dsn, cluster_name=cluster_name, data_dir=data_dir))
    key = ensure_key(config.security.key_file)

    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        acme = await tenants.create_tenant(config, key, conn, "acme")
        await migrator.ensure_current(conn)
        assert [t.slug for t in await tenants.list_tenants(conn)] == ["acme"]
        session = await db.connect(config, key, role=acme.role_name)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await session.execute("SELECT * FROM tandem.tenants")
        await tenants.set_state(conn, "acme", "disabled", actor="cli")
        await tenants.delete_tenant(config, key, conn, "acme", actor="cli", wait_seconds=0.2)
        session.terminate()
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", acme.role_name) == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 't_acme'") == 0
