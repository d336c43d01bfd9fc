"""Tenants: the row in `tandem.tenants`, the PostgreSQL role and the schema.

A tenant `acme` of cluster `cluster1` is schema `t_acme`, owned by role
`cluster1_t_acme`, which can log in (password derived from the master key) and
reach nothing outside its schema: no USAGE on `tandem` or on other tenants'
schemas, no CREATE anywhere else. PostgreSQL enforces it, not our code.
The control login is a member of every tenant role, so it can `SET ROLE` to it
for migrations and web requests.

All functions take a control-login connection outside any transaction; changes
are audited in the transaction that makes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from appliance import accounts, audit, migrator, scope, scram
from appliance.errors import AlreadyExists, ConfigurationError, FatalError, MigrationError, NotFound
from appliance.identifiers import quote_ident, tenant_role, tenant_schema, validate_slug

log = logging.getLogger(__name__)

STATES = ("active", "disabled")
_COLUMNS = "t.id, t.slug, t.schema_name, t.role_name, t.state, t.display_name"


@dataclass(frozen=True)
class Tenant:
    id: int
    slug: str
    schema_name: str
    role_name: str
    state: str            # active | disabled | deleting
    display_name: str


@dataclass(frozen=True)
class TenantInfo(Tenant):
    """A tenant with what the most recent supervisor report says of its worker."""

    worker_state: str | None = None
    node: str | None = None
    pid: int | None = None
    restarts: int = 0
    reason: str | None = None
    last_exit: str | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data


@dataclass(frozen=True)
class CreatedTenant(Tenant):
    """What create_tenant made: the tenant, and the id of its first admin when it named one."""

    admin_id: int | None = None


def _tenant(row: asyncpg.Record) -> Tenant:
    return Tenant(row["id"], row["slug"], row["schema_name"], row["role_name"], row["state"],
                  row["display_name"])


async def get_tenant(conn: asyncpg.Connection, slug: str) -> Tenant:
    """The tenant `slug` in any state; raises NotFound."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM tandem.tenants t WHERE t.slug = $1", slug)
    if row is None:
        raise NotFound(f"no tenant {slug!r} (see `tandem tenant list`)")
    return _tenant(row)


async def active_tenants(conn: asyncpg.Connection) -> list[Tenant]:
    """Tenants that should have a running worker (for the supervisor), by slug."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM tandem.tenants t WHERE t.state = 'active' ORDER BY t.slug")
    return [_tenant(r) for r in rows]


async def list_tenants(conn: asyncpg.Connection) -> list[TenantInfo]:
    """Every tenant by slug, with the most recently updated worker report (any node)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS}, w.state AS worker_state, w.node, w.pid, coalesce(w.restarts, 0) AS restarts, "
        "       w.reason, w.last_exit, w.updated_at "
        "FROM tandem.tenants t "
        "LEFT JOIN LATERAL (SELECT * FROM tandem.tenant_workers w WHERE w.tenant_id = t.id "
        "                   ORDER BY w.updated_at DESC LIMIT 1) w ON true "
        "ORDER BY t.slug")
    return [TenantInfo(**dict(r)) for r in rows]


async def create_tenant(config, key, conn: asyncpg.Connection, slug: str, display_name: str = "",
                        actor: str = "cli", *, migrations_dir=None, admin_email: str | None = None,
                        admin_password: str | None = None, client_addr: str | None = None) -> CreatedTenant:
    """Create tenant `slug`: row, role, schema, its migrations and, with `admin_email`
    and `admin_password`, its first admin user, in one transaction.

    Atomic on purpose: the supervisor (which starts a worker for every committed
    active row) never sees a tenant whose schema is not migrated yet, and a failed
    migration leaves nothing behind. Holds the migration lock throughout, so it
    waits for a running `tandem migrate`. `migrations_dir` is for tests.

    Raises InvalidIdentifier (bad slug), AlreadyExists (slug taken, or its role or
    schema left over in the server), ConfigurationError (the server would let the
    new role create objects outside its schema), MigrationError (nothing created),
    accounts.InvalidEmail / PasswordRejected (checked first: nothing created).
    """
    validate_slug(slug)
    if admin_email is not None:
        if admin_password is None:
            raise ValueError("admin_email needs admin_password")
        admin_email = accounts.normalise_email(admin_email)
        accounts.check_password(admin_password, admin_email, config.auth.password_min_length)
    schema = tenant_schema(slug)
    role = tenant_role(config.cluster.name, slug)
    qrole, qschema = quote_ident(role), quote_ident(schema)
    # Computed here: only the verifier reaches the server (and its logs).
    password = scram.sql_literal(scram.verifier(key.role_password(role)))
    async with migrator.migration_lock(conn):
        await _check_free(conn, slug, schema, role)
        try:
            async with conn.transaction():
                tenant_id = await conn.fetchval(
                    "INSERT INTO tandem.tenants (slug, schema_name, role_name, display_name) "
                    "VALUES ($1, $2, $3, $4) RETURNING id", slug, schema, role, display_name)
                await conn.execute(f"CREATE ROLE {qrole} LOGIN NOINHERIT NOCREATEDB NOCREATEROLE "
                                   f"PASSWORD {password}")
                await _refuse_open_schemas(conn, role)
                # The database's name is not one of ours (an external DSN names it);
                # the server quotes it.
                database = await conn.fetchval("SELECT quote_ident(current_database())")
                await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {qrole}")
                await conn.execute(f"GRANT {qrole} TO CURRENT_USER")
                await conn.execute(f"CREATE SCHEMA {qschema} AUTHORIZATION {qrole}")
                await audit.record(conn, actor, "tenant.create", slug,
                                   {"schema": schema, "role": role, "display_name": display_name,
                                    "admin": admin_email}, client_addr)
                applied = await migrator.apply_tenant(conn, schema, role, migrations_dir)
                admin_id = None
                if admin_email is not None:
                    admin_id = await _first_admin(config, conn, schema, role, admin_email, admin_password,
                                                  actor, client_addr)
        except (asyncpg.UniqueViolationError, asyncpg.DuplicateObjectError, asyncpg.DuplicateSchemaError) as exc:
            # Another admin created it between our check and our transaction.
            raise AlreadyExists(f"tenant {slug!r} already exists ({exc})") from exc
        except MigrationError as exc:
            raise MigrationError(f"tenant {slug} not created: {exc}") from exc
    log.info("created tenant %s (schema %s, role %s, %d migrations)", slug, schema, role, len(applied),
             extra={"tenant": slug})
    return CreatedTenant(tenant_id, slug, schema, role, "active", display_name, admin_id)


async def _first_admin(config, conn: asyncpg.Connection, schema: str, role: str, email: str, password: str,
                       actor: str, client_addr: str | None) -> int:
    """The new tenant's first admin, inside create_tenant's transaction, as the tenant."""
    async with scope.tenant_transaction(conn, schema, role):
        user = await accounts.create_user(conn, email, password, "admin", actor=actor, client_addr=client_addr,
                                          min_length=config.auth.password_min_length)
    # SET LOCAL made in a savepoint outlives it: back to the control login for the rest.
    await conn.execute("SET LOCAL ROLE NONE")
    await conn.execute("SET LOCAL search_path TO DEFAULT")
    return user.id


async def _check_free(conn: asyncpg.Connection, slug: str, schema: str, role: str) -> None:
    row = await conn.fetchrow("SELECT state FROM tandem.tenants WHERE slug = $1", slug)
    if row is not None:
        being = " and is being deleted" if row["state"] == "deleting" else ""
        raise AlreadyExists(f"tenant {slug!r} already exists{being}")
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        raise AlreadyExists(f"PostgreSQL role {role} already exists (left over from an earlier tenant "
                            f"{slug!r}?); drop it (DROP OWNED BY {role}; DROP ROLE {role}) or pick another slug")
    if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
        raise AlreadyExists(f"schema {schema} already exists (left over from an earlier tenant {slug!r}?); "
                            f"drop it (DROP SCHEMA {schema} CASCADE) or pick another slug")


async def _refuse_open_schemas(conn: asyncpg.Connection, role: str) -> None:
    """Fail closed when the server grants CREATE on a schema to every role (PostgreSQL
    before 15 does so on `public`): a tenant role must not be able to create anything
    outside its own schema."""
    open_schemas = [r["nspname"] for r in await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE has_schema_privilege($1, oid, 'CREATE') ORDER BY 1", role)]
    if open_schemas:
        names = ", ".join(open_schemas)
        raise ConfigurationError(f"every role may create objects in schema {names}, so tenants would not be "
                                 f"isolated; as the schema owner run: REVOKE CREATE ON SCHEMA {names} FROM PUBLIC")


async def set_state(conn: asyncpg.Connection, slug: str, state: str, actor: str, *,
                    client_addr: str | None = None) -> Tenant:
    """Enable ("active") or disable ("disabled") a tenant; the supervisor starts or stops
    its worker within seconds. `client_addr` (an IP address) goes into the audit entry.
    Raises NotFound, FatalError (being deleted, bad state)."""
    if state not in STATES:
        raise FatalError(f"tenant state must be one of {', '.join(STATES)}, not {state!r}")
    async with conn.transaction():
        before = await conn.fetchval("SELECT state FROM tandem.tenants WHERE slug = $1 FOR UPDATE", slug)
        if before is None:
            raise NotFound(f"no tenant {slug!r} (see `tandem tenant list`)")
        if before == "deleting":
            raise FatalError(f"tenant {slug!r} is being deleted")
        row = await conn.fetchrow(f"UPDATE tandem.tenants t SET state = $2, updated_at = now() WHERE t.slug = $1 "
                                  f"RETURNING {_COLUMNS}", slug, state)
        await audit.record(conn, actor, "tenant.enable" if state == "active" else "tenant.disable", slug,
                           {"from": before, "to": state}, client_addr)
    log.info("tenant %s: %s -> %s (%s)", slug, before, state, actor, extra={"tenant": slug})
    return _tenant(row)


async def delete_tenant(config, key, conn: asyncpg.Connection, slug: str, actor: str,
                        wait_seconds: float = 30, *, client_addr: str | None = None) -> None:
    """Delete a tenant and all its data: schema, role, row.

    First marks it 'deleting' (committed: the supervisor stops its worker), waits up to
    `wait_seconds` for the role's sessions to end, terminates those left, then drops
    everything in one transaction. Also finishes a deletion that was interrupted.
    Raises NotFound.
    """
    tenant = await get_tenant(conn, slug)
    qrole, qschema = quote_ident(tenant.role_name), quote_ident(tenant.schema_name)
    if tenant.state != "deleting":
        async with conn.transaction():
            await conn.execute("UPDATE tandem.tenants SET state = 'deleting', updated_at = now() WHERE id = $1",
                               tenant.id)
            await audit.record(conn, actor, "tenant.delete.start", slug, {"from": tenant.state}, client_addr)
    log.info("deleting tenant %s: waiting up to %.0f s for its sessions to end", slug, wait_seconds,
             extra={"tenant": slug})
    await _end_sessions(conn, tenant, wait_seconds)
    async with conn.transaction():
        await conn.execute(f"DROP SCHEMA IF EXISTS {qschema} CASCADE")
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", tenant.role_name):
            await conn.execute(f"DROP OWNED BY {qrole}")
            await conn.execute(f"DROP ROLE {qrole}")
        await conn.execute("DELETE FROM tandem.tenants WHERE id = $1", tenant.id)
        await audit.record(conn, actor, "tenant.delete", slug, {"schema": tenant.schema_name,
                                                                "role": tenant.role_name}, client_addr)
    log.info("deleted tenant %s", slug, extra={"tenant": slug})


async def _end_sessions(conn: asyncpg.Connection, tenant: Tenant, wait_seconds: float) -> None:
    query = "SELECT pid FROM pg_stat_activity WHERE usename = $1"
    deadline = time.monotonic() + wait_seconds
    while await conn.fetchval(f"SELECT count(*) FROM ({query}) s", tenant.role_name):
        if time.monotonic() >= deadline:
            # Membership in the role lets the control login signal its backends;
            # the 5 s timeout waits until each one has gone.
            ended = await conn.fetch(f"SELECT pid, pg_terminate_backend(pid, 5000) AS ok FROM ({query}) s",
                                     tenant.role_name)
            log.warning("deleting tenant %s: terminated %d sessions still open after %.0f s", tenant.slug,
                        len(ended), wait_seconds, extra={"tenant": tenant.slug})
            return
        await asyncio.sleep(0.2)
