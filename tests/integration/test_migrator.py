import asyncio
import hashlib
import shutil
import time

import pytest

from appliance import db, migrator, resources, tenants
from appliance.errors import MigrationError, MigrationsPending
from appliance.identifiers import tenant_role

# The migrations this binary ships; the tests add their own as 09xx files after them.
CONTROL = [m.name for m in migrator.load_migrations("control")]
TENANT = [m.name for m in migrator.load_migrations("tenant")]


def _migrations(n: int) -> str:
    return f"{n} migration{'' if n == 1 else 's'}"


@pytest.fixture
def sql_copy(tmp_path):
    """A copy of the bundled migrations, to edit into older or newer histories."""
    path = tmp_path / "sql"
    shutil.copytree(resources.sql_dir(), path)
    return path


async def test_fresh_database_then_nothing_to_do(config, key):
    async with db.control(config, key) as conn:
        before = await migrator.status(conn)
        assert before.control_pending == CONTROL and before.tenant_pending == {}
        assert not before.current
        assert before.describe() == f"{_migrations(len(CONTROL))} pending in 1 schema: run `tandem migrate`"
        with pytest.raises(MigrationsPending, match="run `tandem migrate`"):
            await migrator.ensure_current(conn)

    report = await migrator.migrate(config, key)
    assert report.lines()[0] == f"applied in tandem: {', '.join(CONTROL)}"
    assert report.lines()[1].startswith(f"{_migrations(len(CONTROL))} in 1 schema applied in ")

    async with db.control(config, key) as conn:
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'tandem'")}
        assert {"schema_migrations", "tenants", "nodes", "tenant_workers", "users", "audit_log"} <= tables
        recorded = await conn.fetch("SELECT name, checksum, applied_at FROM tandem.schema_migrations ORDER BY name")
        expected = [(name, hashlib.sha256((resources.sql_dir() / "control" / f"{name}.sql").read_bytes()).hexdigest())
                    for name in CONTROL]
        assert [(r["name"], r["checksum"]) for r in recorded] == expected
        assert all(r["applied_at"] is not None for r in recorded)
        after = await migrator.status(conn)
        assert after.current and after.describe() == "migrations current (schema tandem and 0 tenant schemas)"
        await migrator.ensure_current(conn)

    again = await migrator.migrate(config, key)
    assert again.lines() == ["nothing to do: schema tandem and 0 tenant schemas are current"]


async def test_dry_run_lists_and_changes_nothing(config, key, sql_copy):
    report = await migrator.migrate(config, key, dry_run=True)
    assert report.lines() == [f"would apply in tandem: {', '.join(CONTROL)}",
                              f"dry run: {_migrations(len(CONTROL))} in 1 schema pending; nothing was changed"]
    async with db.control(config, key) as conn:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'tandem'") == 0

        await migrator.migrate(config, key)
        await tenants.create_tenant(config, key, conn, "acme")
        (sql_copy / "tenant" / "0901_notes.sql").write_text("CREATE TABLE notes (body text);\n")
        report = await migrator.migrate(config, key, dry_run=True, migrations_dir=sql_copy)
        assert report.lines() == ["would apply in t_acme: 0901_notes",
                                  "dry run: 1 migration in 1 schema pending; nothing was changed"]
        assert await conn.fetchval("SELECT to_regclass('t_acme.notes')") is None
        assert await conn.fetchval("SELECT count(*) FROM t_acme.schema_migrations") == len(TENANT)


async def test_a_failing_file_is_rolled_back_and_named_with_its_line(config, key, sql_copy):
    (sql_copy / "control" / "0901_broken.sql").write_text(
        "-- a comment\nCREATE TABLE fine (id int);\nCREATE TABLE broken (id int,,);\n")
    with pytest.raises(MigrationError) as failed:
        await migrator.migrate(config, key, migrations_dir=sql_copy)
    message = str(failed.value)
    assert "schema tandem: migration 0901_broken.sql failed (line 3): syntax error" in message
    async with db.control(config, key) as conn:
        # The shipped ones stay applied; nothing of 0901 is left behind.
        rows = await conn.fetch("SELECT name FROM tandem.schema_migrations ORDER BY name")
        assert [r["name"] for r in rows] == CONTROL
        assert await conn.fetchval("SELECT to_regclass('tandem.fine')") is None


@pytest.mark.parametrize("kind, schema, file", [("control", "tandem", "0001_control.sql"),
                                                ("tenant", "t_acme", "0001_tenant.sql")])
async def test_an_edited_file_is_refused(config, key, sql_copy, kind, schema, file):
    await migrator.migrate(config, key, migrations_dir=sql_copy)
    async with db.control(config, key) as conn:
        await tenants.create_tenant(config, key, conn, "acme")
        with open(sql_copy / kind / file, "a") as edited:
            edited.write("\n-- a harmless-looking edit\n")
        expected = f"schema {schema}: migration {file} was edited after it was applied"
        with pytest.raises(MigrationError, match=expected):
            await migrator.status(conn, sql_copy)
        with pytest.raises(MigrationError, match=expected):
            await migrator.ensure_current(conn, sql_copy)
    with pytest.raises(MigrationError, match=expected):
        await migrator.migrate(config, key, migrations_dir=sql_copy)


async def test_an_applied_migration_missing_from_the_binary_is_refused(config, key, sql_copy):
    (sql_copy / "control" / "0901_extra.sql").write_text("CREATE TABLE extra (id int);\n")
    (sql_copy / "control" / "0902_more.sql").write_text("CREATE TABLE more (id int);\n")
    await migrator.migrate(config, key, migrations_dir=sql_copy)
    (sql_copy / "control" / "0901_extra.sql").unlink()
    with pytest.raises(MigrationError, match="schema tandem: applied migration 0901_extra is missing from this binary"):
        await migrator.migrate(config, key, migrations_dir=sql_copy)


async def test_a_database_newer_than_the_binary_is_refused(config, key, sql_copy):
    (sql_copy / "tenant" / "0901_notes.sql").write_text("CREATE TABLE notes (body text);\n")
    await migrator.migrate(config, key, migrations_dir=sql_copy)
    async with db.control(config, key) as conn:
        await tenants.create_tenant(config, key, conn, "acme")
        await migrator.apply_tenant(conn, "t_acme", tenant_role(config.cluster.name, "acme"), sql_copy)
        expected = ("schema t_acme: database is newer than this binary (applied 0901_notes; "
                    f"this binary knows up to {TENANT[-1]}): upgrade tandem")
        with pytest.raises(MigrationError) as refused:
            await migrator.ensure_current(conn)  # the bundled migrations: the "older binary"
        assert str(refused.value) == expected
        # The tenant worker's own check, as the tenant role, says the same.
        tenant_conn = await db.connect(config, key, role=tenant_role(config.cluster.name, "acme"))
        try:
            with pytest.raises(MigrationError, match="database is newer than this binary"):
                await migrator.tenant_pending(tenant_conn, "t_acme")
            assert await migrator.tenant_pending(tenant_conn, "t_acme", sql_copy) == []
        finally:
            await tenant_conn.close()
    with pytest.raises(MigrationError, match="upgrade tandem"):
        await migrator.migrate(config, key)


async def test_concurrent_runs_serialise(config, key, sql_copy):
    # Long enough that the second run starts while the first holds the lock.
    (sql_copy / "control" / "0901_slow.sql").write_text("SELECT pg_sleep(0.5);\nCREATE TABLE slow (id int);\n")
    first, second = await asyncio.gather(migrator.migrate(config, key, migrations_dir=sql_copy),
                                         migrator.migrate(config, key, migrations_dir=sql_copy))
    reports = sorted([first, second], key=lambda r: r.count)
    assert reports[0].lines()[0].startswith("nothing to do")
    assert reports[1].applied == {"tandem": CONTROL + ["0901_slow"]}
    async with db.control(config, key) as conn:
        rows = await conn.fetch("SELECT name FROM tandem.schema_migrations ORDER BY name")
        assert [r["name"] for r in rows] == CONTROL + ["0901_slow"]


async def test_fifty_tenant_schemas_with_bounded_parallelism_then_a_failure(config, key, sql_copy):
    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        started = time.monotonic()
        for i in range(50):
            await tenants.create_tenant(config, key, conn, f"t{i:02d}")
        created = time.monotonic() - started

        # Each file records which server backend applied it, and takes a moment.
        (sql_copy / "tenant" / "0901_audit.sql").write_text(
            "SELECT pg_sleep(0.02);\nCREATE TABLE applied_by AS SELECT pg_backend_pid() AS pid;\n")
        pending = await migrator.status(conn, sql_copy)
        assert len(pending.tenant_pending) == 50 and pending.control_pending == []
        assert pending.describe() == "50 migrations pending in 50 schemas: run `tandem migrate`"

        started = time.monotonic()
        report = await migrator.migrate(config, key, migrations_dir=sql_copy)
        elapsed = time.monotonic() - started
        print(f"\ncreated 50 tenants in {created:.2f} s; migrated 50 tenant schemas in {elapsed:.2f} s "
              f"({config.database.migrate_parallelism} at a time)")
        assert len(report.applied) == 50 and report.lines()[-1].startswith("50 migrations in 50 schemas applied")
        union = " UNION ALL ".join(f"SELECT pid FROM t_t{i:02d}.applied_by" for i in range(50))
        backends = await conn.fetchval(f"SELECT count(DISTINCT pid) FROM ({union}) s")
        assert backends == config.database.migrate_parallelism
        owners = await conn.fetch("SELECT DISTINCT tableowner FROM pg_tables WHERE tablename = 'applied_by'")
        assert len(owners) == 50  # each schema's table belongs to its own tenant role
        assert (await migrator.status(conn, sql_copy)).current

        # A migration that fails in one schema: no new work starts after it.
        (sql_copy / "tenant" / "0902_fails_once.sql").write_text(
            "SELECT pg_sleep(0.02);\nCREATE TABLE third (id int);\n"
            "DO $$ BEGIN IF current_schema() = 't_t07' THEN RAISE EXCEPTION 'boom in %', current_schema(); "
            "END IF; END $$;\n")
        with pytest.raises(MigrationError) as failed:
            await migrator.migrate(config, key, migrations_dir=sql_copy)
        assert str(failed.value).startswith("schema t_t07: migration 0902_fails_once.sql failed: boom in t_t07")
        assert "stopped before" in str(failed.value)
        done = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE tablename = 'third'")
        assert done < 30, f"{done} schemas migrated after the failure was known"
        assert await conn.fetchval("SELECT to_regclass('t_t07.third')") is None
        after = await migrator.status(conn, sql_copy)
        assert after.tenant_pending["t_t07"] == ["0902_fails_once"]
        assert len(after.tenant_pending) == 50 - done


async def test_status_skips_deleting_tenants_and_sees_disabled_ones(config, key, sql_copy):
    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        for slug in ("on", "off", "gone"):
            await tenants.create_tenant(config, key, conn, slug)
        await tenants.set_state(conn, "off", "disabled", actor="test")
        await conn.execute("UPDATE tandem.tenants SET state = 'deleting' WHERE slug = 'gone'")
        (sql_copy / "tenant" / "0901_notes.sql").write_text("CREATE TABLE notes (body text);\n")
        result = await migrator.status(conn, sql_copy)
        assert result.tenant_pending == {"t_off": ["0901_notes"], "t_on": ["0901_notes"]}
        assert result.tenant_schemas == 2
