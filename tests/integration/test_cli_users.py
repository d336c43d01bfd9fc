"""`tandem tenant create --admin-email`, `tandem user ...` and `tandem admin ...` as an
administrator runs them: real processes against a real PostgreSQL; what they print,
their exit codes, and what a sign-in then finds in the database."""

from __future__ import annotations

import json

import pytest

from appliance import accounts, db, scope, tenants
from tests.harness import tandem

PASSWORD = "correct horse battery staple"


def ok(result) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


async def tenant_user(config, key, slug: str, email: str):
    """(the user, its password hash) as stored in the tenant's schema."""
    async with db.control(config, key) as conn:
        tenant = await tenants.get_tenant(conn, slug)
        async with scope.tenant_transaction(conn, tenant.schema_name, tenant.role_name):
            user = await accounts.find_user(conn, email)
            password_hash = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id)
            audit = [tuple(r) for r in await conn.fetch("SELECT actor, action, target FROM audit_log ORDER BY id")]
    return user, password_hash, audit


@pytest.fixture
def migrated(config_path):
    ok(tandem("migrate", config=config_path))
    return config_path


async def test_tenant_create_with_its_first_admin(migrated, config, key):
    out = ok(tandem("tenant", "create", "acme", "--admin-email", "Boss@Acme.Example", "--password-stdin",
                    config=migrated, input=PASSWORD + "\n"))
    assert out.splitlines()[1:] == ["created admin Boss@Acme.Example of tenant acme"]
    assert "password" not in out
    user, password_hash, audit = await tenant_user(config, key, "acme", "boss@acme.example")
    assert (user.email, user.role) == ("Boss@Acme.Example", "admin")
    assert accounts.verify_password(password_hash, PASSWORD)
    assert audit == [("cli", "user.create", "Boss@Acme.Example")]

    generated = ok(tandem("tenant", "create", "globex", "--admin-email", "it@globex.example", config=migrated))
    line = generated.splitlines()[-1]
    assert line.startswith("password (shown once): ")
    _, password_hash, _ = await tenant_user(config, key, "globex", "it@globex.example")
    assert accounts.verify_password(password_hash, line.split(": ", 1)[1])

    # A password the policy refuses creates nothing at all.
    refused = tandem("tenant", "create", "initech", "--admin-email", "x@initech.example", "--password-stdin",
                     config=migrated, input="short\n")
    assert refused.returncode == 1 and "too short: at least 12 characters" in refused.stderr
    async with db.control(config, key) as conn:
        assert [t.slug for t in await tenants.list_tenants(conn)] == ["acme", "globex"]
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 't_initech'") == 0


async def test_user_commands(migrated, config, key):
    ok(tandem("tenant", "create", "acme", config=migrated))
    created = ok(tandem("user", "create", "--tenant", "acme", "--email", "ed@acme.example", "--role", "editor",
                        "--name", "Ed", config=migrated))
    lines = created.splitlines()
    assert lines[0] == "created user of tenant acme ed@acme.example (editor)"
    password = lines[1].removeprefix("password (shown once): ")
    assert len(password) >= 20
    _, password_hash, _ = await tenant_user(config, key, "acme", "ed@acme.example")
    assert accounts.verify_password(password_hash, password)

    ok(tandem("user", "create", "--tenant", "acme", "--email", "vic@acme.example", "--role", "viewer",
              "--password-stdin", config=migrated, input=PASSWORD + "\n"))
    duplicate = tandem("user", "create", "--tenant", "acme", "--email", "ED@acme.example", "--role", "viewer",
                       config=migrated)
    assert duplicate.returncode == 1 and "ED@acme.example already exists" in duplicate.stderr
    bad_role = tandem("user", "create", "--tenant", "acme", "--email", "x@acme.example", "--role", "owner",
                      config=migrated)
    assert bad_role.returncode == 2 and "invalid choice: 'owner'" in bad_role.stderr
    unknown = tandem("user", "list", "--tenant", "nope", config=migrated)
    assert unknown.returncode == 1 and "no tenant 'nope'" in unknown.stderr

    ok(tandem("user", "disable", "--tenant", "acme", "--email", "vic@acme.example", config=migrated))
    async with db.control(config, key) as conn:   # a lock-out, as failed sign-ins leave it
        tenant = await tenants.get_tenant(conn, "acme")
        async with scope.tenant_transaction(conn, tenant.schema_name, tenant.role_name):
            await conn.execute("UPDATE users SET locked_until = now() + interval '10 minutes', failed_logins = 5 "
                               "WHERE email = 'ed@acme.example'")
    table = ok(tandem("user", "list", "--tenant", "acme", config=migrated)).splitlines()
    assert table[0].split() == ["EMAIL", "ROLE", "STATE", "LAST", "LOGIN", "CREATED", "NAME"]
    assert [row.split()[:4] for row in table[1:]] == [["ed@acme.example", "editor", "locked", "-"],
                                                       ["vic@acme.example", "viewer", "disabled", "-"]]
    listed = json.loads(ok(tandem("user", "list", "--tenant", "acme", "--json", config=migrated)))
    assert [(u["email"], u["state"], u["display_name"]) for u in listed] == [
        ("ed@acme.example", "locked", "Ed"), ("vic@acme.example", "disabled", "")]

    assert ok(tandem("user", "unlock", "--tenant", "acme", "--email", "ed@acme.example",
                     config=migrated)).strip() == "user of tenant acme ed@acme.example unlocked"
    ok(tandem("user", "enable", "--tenant", "acme", "--email", "vic@acme.example", config=migrated))
    reset = ok(tandem("user", "reset-password", "--tenant", "acme", "--email", "VIC@acme.example",
                      config=migrated)).splitlines()
    assert reset[0] == "password of user of tenant acme vic@acme.example reset; its sessions ended"
    new_password = reset[1].removeprefix("password (shown once): ")
    user, password_hash, audit = await tenant_user(config, key, "acme", "vic@acme.example")
    assert user.disabled_at is None and accounts.verify_password(password_hash, new_password)
    ed, _, _ = await tenant_user(config, key, "acme", "ed@acme.example")
    assert not ed.locked and ed.failed_logins == 0
    assert [a[1] for a in audit] == ["user.create", "user.create", "user.disable", "user.unlock", "user.enable",
                                     "user.password_reset"]
    assert {a[0] for a in audit} == {"cli"}
    missing = tandem("user", "disable", "--tenant", "acme", "--email", "nobody@acme.example", config=migrated)
    assert missing.returncode == 1 and "no user nobody@acme.example" in missing.stderr


async def test_cluster_admin_commands_keep_working(migrated, config, key):
    ok(tandem("admin", "create", "root@example.com", "--password-stdin", config=migrated, input=PASSWORD + "\n"))
    ok(tandem("admin", "create", "ops@example.com", config=migrated))
    ok(tandem("admin", "disable", "ops@example.com", config=migrated))
    table = ok(tandem("admin", "list", config=migrated)).splitlines()
    assert [row.split()[:3] for row in table[1:]] == [["ops@example.com", "admin", "disabled"],
                                                       ["root@example.com", "admin", "active"]]
    # The last active admin stays.
    last = tandem("admin", "disable", "root@example.com", config=migrated)
    assert last.returncode == 1 and "the only active admin" in last.stderr
    async with db.control(config, key) as conn:
        admins = await accounts.list_cluster_admins(conn)
        actions = [(r["action"], r["target"]) for r in await conn.fetch(
            "SELECT action, target FROM tandem.audit_log ORDER BY id")]
    assert [(a.email, a.disabled_at is None) for a in admins] == [("ops@example.com", False),
                                                                  ("root@example.com", True)]
    assert actions == [("user.create", "root@example.com"), ("user.create", "ops@example.com"),
                       ("user.disable", "ops@example.com")]
