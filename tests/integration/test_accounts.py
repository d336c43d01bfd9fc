import pytest
from argon2 import PasswordHasher

from appliance import accounts, audit, db, migrator
from appliance.errors import AlreadyExists, FatalError

GOOD = "correct horse battery"


@pytest.fixture
async def conn(config, key):
    await migrator.migrate(config, key)
    async with db.control(config, key) as connection:
        yield connection


async def test_create_and_verify(conn):
    admin_id = await accounts.create_cluster_admin(conn, " Ops@Example.com ", GOOD, actor="cli")
    row = await conn.fetchrow("SELECT email, password_hash, role FROM tandem.users WHERE id = $1", admin_id)
    assert row["role"] == "admin"
    assert row["email"] == "Ops@Example.com"
    assert row["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert GOOD not in row["password_hash"]
    assert accounts.verify_password(row["password_hash"], GOOD)
    assert not accounts.verify_password(row["password_hash"], GOOD + "!")
    assert not accounts.verify_password("not a hash", GOOD)
    assert not accounts.needs_rehash(row["password_hash"])
    assert accounts.needs_rehash(PasswordHasher(time_cost=1, memory_cost=8192).hash(GOOD))

    listed = await accounts.list_cluster_admins(conn)
    assert [(r.email, r.role, r.disabled_at) for r in listed] == [("Ops@Example.com", "admin", None)]
    assert listed[0].created_at is not None

    entries = await audit.recent(conn, target="Ops@Example.com")
    assert [(e["actor"], e["action"], e["details"]) for e in entries] == [("cli", "user.create", {"role": "admin"})]
    assert GOOD not in str(entries)


async def test_duplicate_ignores_case(conn):
    await accounts.create_cluster_admin(conn, "ops@example.com", GOOD, actor="cli")
    with pytest.raises(AlreadyExists, match="OPS@example.com already exists"):
        await accounts.create_cluster_admin(conn, "OPS@example.com", "another good passphrase", actor="cli")
    assert len(await accounts.list_cluster_admins(conn)) == 1


@pytest.mark.parametrize("email, password, why", [
    ("jane@example.com", "short1!", "too short: at least 12 characters"),
    ("jane.doe@example.com", "Jane.Doe@Example.com", "must not be the e-mail address"),
    ("jane.doe.smith@example.com", "Jane.Doe.Smith", "must not be the e-mail address or its part before the @"),
    ("jane@example.com", "aaaaaaaaaaaaaaaa", "one character repeated"),
    ("jane@example.com", "Password1234", "most common passwords"),
    ("jane@example.com", "qwertyuiop12", "most common passwords"),
])
async def test_password_policy(conn, email, password, why):
    with pytest.raises(accounts.PasswordRejected, match=why) as rejected:
        await accounts.create_cluster_admin(conn, email, password, actor="cli")
    assert isinstance(rejected.value, FatalError)
    assert await accounts.list_cluster_admins(conn) == []


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "two@@example.com", "sp ace@example.com"])
async def test_email_must_be_an_address(conn, email):
    with pytest.raises(accounts.InvalidEmail, match="is not an e-mail address"):
        await accounts.create_cluster_admin(conn, email, GOOD, actor="cli")


async def test_audit_record_keeps_details_and_address(conn):
    await audit.record(conn, "ops@example.com", "tenant.disable", "acme", {"from": "active", "to": "disabled"},
                       client_addr="192.0.2.7")
    await audit.record(conn, "cli", "tenant.enable", "acme")
    entries = await audit.recent(conn, limit=10)
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("cli", "tenant.enable", "acme"), ("ops@example.com", "tenant.disable", "acme")]
    assert entries[1]["details"] == {"from": "active", "to": "disabled"} and entries[1]["client_addr"] == "192.0.2.7"
    assert entries[0]["details"] == {} and entries[0]["client_addr"] is None
    with pytest.raises(ValueError):
        await audit.record(conn, "cli", "x", client_addr="not an address")


async def test_upgrading_keeps_the_cluster_admins(config, key, tmp_path):
    """A database migrated by the previous release (0001 only) keeps its admins, who can
    still sign in, and new ones get the next ids."""
    import shutil
    from appliance import resources, scope
    old = tmp_path / "sql"
    shutil.copytree(resources.sql_dir(), old)
    for kind in ("control", "tenant"):
        for path in sorted((old / kind).glob("*.sql"))[1:]:
            path.unlink()
    await migrator.migrate(config, key, migrations_dir=old)
    old_hash = accounts.hash_password(GOOD)
    async with db.control(config, key) as conn:
        await conn.execute("INSERT INTO tandem.cluster_admins (email, password_hash) VALUES ($1, $2)",
                           "old@example.com", old_hash)
    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        new_id = await accounts.create_cluster_admin(conn, "new@example.com", GOOD, actor="cli")
        admins = await accounts.list_cluster_admins(conn)
        async with scope.console_transaction(conn):
            stored = await conn.fetchval("SELECT password_hash FROM users WHERE email = 'old@example.com'")
    assert [(a.id, a.email, a.role, a.failed_logins, a.locked) for a in admins] == [
        (new_id, "new@example.com", "admin", 0, False), (1, "old@example.com", "admin", 0, False)]
    assert new_id == 2 and stored == old_hash and accounts.verify_password(stored, GOOD)
