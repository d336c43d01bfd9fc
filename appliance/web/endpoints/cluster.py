"""Console endpoints under /api/v1/cluster/: tenants and cluster health.
Realm "console", role "admin" (cluster admins: appliance/web/endpoints/cluster_admins.py).

Where the queries run: reads go through `ctx.transaction()` (the console scope: the
control login, search_path `tandem`). Creating, enabling/disabling and deleting a
tenant run on a control-login connection taken from the pool OUTSIDE any
transaction, because appliance.tenants runs its own: create takes the migration
lock (a session-level advisory lock) before its transaction, and delete must COMMIT
the tenant's 'deleting' state (so every supervisor stops its worker) before it waits
for the worker's sessions to end and drops schema and role. It is the same login a
console transaction uses (that scope only sets search_path), and it holds the rights
for the DDL (CREATE/DROP ROLE and SCHEMA). Every change is audited in
`tandem.audit_log` with the admin's e-mail address and the client's address, in the
transaction that makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timezone
from typing import AsyncIterator, Literal

import asyncpg
from aiohttp import web
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from appliance import accounts, doctor, migrator, nodes, scope, tenants, tls
from appliance.errors import FatalError, InvalidIdentifier, NotFound
from appliance.identifiers import SLUG_MAX, validate_slug
from appliance.web.api import API, ApiError, ApiModel, Context, Page, PageQuery, ValidationFailed, decode_cursor
from appliance.web.keys import CONFIG, DB_POOL, MASTER_KEY

log = logging.getLogger(__name__)

TAG = "cluster"
TENANTS = "/api/v1/cluster/tenants"
TenantState = Literal["active", "disabled", "deleting"]
WorkerState = Literal[nodes.WORKER_STATES]
# What appliance.identifiers.validate_slug accepts, reserved names aside (for the document).
SLUG_PATTERN = f"^[a-z0-9](?:[a-z0-9-]{{0,{SLUG_MAX - 2}}}[a-z0-9])?$"
# Worker states that mean "not doing its job", listed under health.failures.
FAILING = ("failed", "backoff")


# --- models ------------------------------------------------------------------------------------

class Worker(ApiModel):
    """The latest report of a tenant's worker, from the supervisor of the node running it."""

    state: WorkerState
    node: str | None
    pid: int | None
    restarts: int = Field(description="Restarts since the node's supervisor started.")
    reason: str | None = Field(description="Why it is in this state (failed, backoff, standby).")
    last_exit: str | None = Field(description='How its last process ended, e.g. "exit 3 (boot failure)".')
    updated_at: datetime | None


class TenantIntegrations(ApiModel):
    total: int
    active: int = Field(description="Enabled and not paused.")
    failing: int = Field(description="Active ones whose last run failed (e.g. a credential refused).")


class TenantOut(ApiModel):
    slug: str
    display_name: str
    state: TenantState
    schema_name: str
    worker: Worker | None = Field(description="Null: no node has reported a worker for it (yet). Its `reason` "
                                              "and `last_exit` are the last error of a failed or restarting "
                                              "worker.")
    integrations: TenantIntegrations | None = Field(
        description="Null when they cannot be counted (the tenant is being deleted, or its schema is not migrated).")


class TenantQuery(PageQuery):
    state: TenantState | None = Field(default=None, description="Only tenants in this state.")


class TenantCreate(ApiModel):
    slug: str = Field(description="Lower-case DNS label: the tenant's host is <slug>.<cluster domain>.",
                      # Documents the shape; validate_slug decides (and words the error).
                      json_schema_extra={"pattern": SLUG_PATTERN, "maxLength": SLUG_MAX})
    display_name: str = Field(max_length=200)
    admin_email: str | None = Field(default=None, max_length=254, json_schema_extra={"format": "email"},
                                    description="The tenant's first admin; none when omitted.")
    admin_password: str | None = Field(default=None, max_length=1024,
                                       description="The first admin's password; generated when omitted.")

    @field_validator("slug")
    @classmethod
    def _slug(cls, slug: str) -> str:
        try:
            return validate_slug(slug)
        except InvalidIdentifier as exc:
            # The message as validate_slug words it (the CLI says the same).
            raise PydanticCustomError("invalid_slug", "{reason}", {"reason": str(exc)}) from None


class FirstAdmin(ApiModel):
    id: int
    email: str
    password: str | None = Field(description="The generated password, shown this once; null when you gave one.")


class TenantCreated(ApiModel):
    tenant: TenantOut
    admin: FirstAdmin | None


class DeleteConfirmation(ApiModel):
    confirm: str = Field(description="The tenant's slug again, so that a slip of the finger deletes nothing.")


class Node(ApiModel):
    name: str
    hostname: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    alive: bool = Field(description="Heard from within the supervisor's heartbeat timeout.")


class WorkerFailure(ApiModel):
    tenant: str
    node: str
    state: WorkerState
    reason: str | None
    last_exit: str | None
    restarts: int
    updated_at: datetime


class Workers(ApiModel):
    by_state: dict[str, int] = Field(description="Tenant workers in each state, over all nodes.")
    restarts: int = Field(description="Restarts of all workers, as the nodes' supervisors count them.")
    without_worker: list[str] = Field(description="Active tenants no node reports a worker for.")


class Database(ApiModel):
    reachable: bool
    server_version: str


class Migrations(ApiModel):
    current: bool
    pending: int
    summary: str


class Certificate(ApiModel):
    path: str
    names: list[str] = Field(description="The DNS names it is valid for.")
    not_after: datetime | None = Field(description="When it expires; null when it cannot be read.")
    days_left: int | None
    problem: str = Field(description='Why it cannot be served; "" when it can.')


class DoctorFinding(ApiModel):
    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str
    fix: str = Field(description='What the administrator can do; "" when ok.')


class Health(ApiModel):
    status: Literal["ok", "degraded"] = Field(
        description="degraded: no live node, a worker failing, or migrations pending. Certificates and "
                    "doctor's findings are reported beside it, each with its own status.")
    checked_at: datetime
    nodes: list[Node]
    workers: Workers
    failures: list[WorkerFailure]
    database: Database
    migrations: Migrations
    certificates: list[Certificate] = Field(description="The TLS certificates the web workers serve (the "
                                                        "configured files or the self-signed one); empty with "
                                                        'tls.mode = "off".')
    doctor: list[DoctorFinding] = Field(description="`tandem doctor`'s checks a running node can make on "
                                                    "itself (files, key, disk, certificates, outbound CA), "
                                                    "run now on the node that answers.")


# --- helpers -----------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def control_connection(request: web.Request) -> AsyncIterator[asyncpg.Connection]:
    """A control-login connection outside any transaction (see the module docstring)."""
    async with request.app[DB_POOL].acquire() as conn:
        yield conn


def tenant_out(info: tenants.TenantInfo, counts: TenantIntegrations | None = None) -> TenantOut:
    worker = None
    if info.worker_state is not None:
        worker = Worker(state=info.worker_state, node=info.node, pid=info.pid, restarts=info.restarts,
                        reason=info.reason, last_exit=info.last_exit, updated_at=info.updated_at)
    return TenantOut(slug=info.slug, display_name=info.display_name, state=info.state,
                     schema_name=info.schema_name, worker=worker, integrations=counts)


_COUNTS = ("SELECT count(*) AS total, count(*) FILTER (WHERE enabled AND NOT paused) AS active, "
           "count(*) FILTER (WHERE enabled AND NOT paused AND (SELECT r.status FROM runs r "
           "WHERE r.integration_id = i.id AND r.status <> 'running' ORDER BY r.id DESC LIMIT 1) = 'failed') AS failing "
           "FROM integrations i")


async def integration_counts(request: web.Request, infos: list[tenants.TenantInfo]) -> dict[str, TenantIntegrations]:
    """Each tenant's integrations, counted in that tenant's own scope (its role and schema, on a
    connection outside any other transaction: SET LOCAL ROLE must not outlive the count)."""
    out: dict[str, TenantIntegrations] = {}
    async with control_connection(request) as conn:
        for info in infos:
            if info.state == "deleting":
                continue
            try:
                async with scope.tenant_transaction(conn, info.schema_name, info.role_name):
                    if await conn.fetchval("SELECT to_regclass('integrations') IS NOT NULL"):
                        out[info.slug] = TenantIntegrations(**dict(await conn.fetchrow(_COUNTS)))
            except asyncpg.PostgresError as exc:   # e.g. dropped meanwhile
                log.info("tenant %s: integrations not counted: %s", info.slug, exc, extra={"tenant": info.slug})
    return out


async def tenant_info(request: web.Request, conn: asyncpg.Connection, slug: str) -> TenantOut:
    for info in await tenants.list_tenants(conn):
        if info.slug == slug:
            return tenant_out(info, (await integration_counts(request, [info])).get(slug))
    raise ApiError(404, f"There is no tenant {slug!r}.")


# --- tenants -----------------------------------------------------------------------------------

@API.operation("GET", TENANTS, summary="List tenants with their workers", tags=[TAG], realm="console",
               role="admin", query=TenantQuery, response=Page[TenantOut])
async def list_tenants(request: web.Request, ctx: Context) -> Page[TenantOut]:
    query = ctx.query
    after = decode_cursor(query.cursor, str)[0] if query.cursor else None
    async with ctx.transaction() as conn:
        rows = await tenants.list_tenants(conn)
    # A cluster has tens or hundreds of tenants, not millions: paging the list here keeps
    # one query (the one the CLI uses) for both. Sorted again by code point: the database
    # collation may order '-' differently, and the cursor compares in Python.
    rows = sorted((r for r in rows if (after is None or r.slug > after) and query.state in (None, r.state)),
                  key=lambda r: r.slug)
    rows = rows[:query.limit + 1]
    counts = await integration_counts(request, rows[:query.limit])
    return Page[TenantOut].of([tenant_out(r, counts.get(r.slug)) for r in rows], query.limit,
                              key=lambda t: (t.slug,))


@API.operation("POST", TENANTS, summary="Create a tenant (and its first admin)", tags=[TAG], realm="console",
               role="admin", body=TenantCreate, response=TenantCreated, status=201,
               errors={409: "The slug is taken (or its schema or role is left over from an earlier tenant)."},
               description="Creates the tenant's schema and role and runs its migrations, in one transaction. "
                           "With `admin_email`, also its first admin; without `admin_password` a password is "
                           "generated and returned in this response only.")
async def create_tenant(request: web.Request, ctx: Context) -> TenantCreated:
    body = ctx.body
    email = password = generated = None
    if body.admin_email is not None:
        try:
            email = accounts.normalise_email(body.admin_email)
        except accounts.InvalidEmail as exc:
            raise ValidationFailed("admin_email", str(exc)) from None
        min_length = request.app[CONFIG].auth.password_min_length
        password = body.admin_password
        if password is None:
            password = generated = accounts.generate_password(min_length)
        try:
            accounts.check_password(password, email, min_length)
        except accounts.PasswordRejected as exc:
            raise ValidationFailed("admin_password", str(exc)) from None
    elif body.admin_password is not None:
        raise ValidationFailed("admin_password", "a password needs admin_email (the account it is for)")
    config, key = request.app[CONFIG], request.app[MASTER_KEY]
    async with control_connection(request) as conn:
        created = await tenants.create_tenant(config, key, conn, body.slug, body.display_name, ctx.actor,
                                              admin_email=email, admin_password=password,
                                              client_addr=ctx.client_addr)
        out = await tenant_info(request, conn, body.slug)
    log.info("tenant %s created by %s", body.slug, ctx.actor, extra={"tenant": body.slug})
    admin = None
    if email is not None:
        admin = FirstAdmin(id=created.admin_id, email=email, password=generated)
    return TenantCreated(tenant=out, admin=admin)


@API.operation("GET", TENANTS + "/{slug}", summary="One tenant with its worker", tags=[TAG], realm="console",
               role="admin", response=TenantOut)
async def get_tenant(request: web.Request, ctx: Context) -> TenantOut:
    async with ctx.transaction() as conn:
        infos = [i for i in await tenants.list_tenants(conn) if i.slug == ctx.path["slug"]]
    if not infos:
        raise ApiError(404, f"There is no tenant {ctx.path['slug']!r}.")
    return tenant_out(infos[0], (await integration_counts(request, infos)).get(infos[0].slug))


async def _set_state(request: web.Request, ctx: Context, state: str) -> TenantOut:
    slug = ctx.path["slug"]
    async with control_connection(request) as conn:
        try:
            await tenants.set_state(conn, slug, state, ctx.actor, client_addr=ctx.client_addr)
        except NotFound:
            raise ApiError(404, f"There is no tenant {slug!r}.") from None
        except FatalError as exc:  # being deleted
            raise ApiError(409, f"Tenant {slug!r} is being deleted.") from exc
        return await tenant_info(request, conn, slug)


@API.operation("POST", TENANTS + "/{slug}/disable", summary="Disable a tenant", tags=[TAG], realm="console",
               role="admin", response=TenantOut, errors={409: "The tenant is being deleted."},
               description="Its host answers 404 and its worker stops within seconds; its data stays.")
async def disable_tenant(request: web.Request, ctx: Context) -> TenantOut:
    return await _set_state(request, ctx, "disabled")


@API.operation("POST", TENANTS + "/{slug}/enable", summary="Enable a tenant", tags=[TAG], realm="console",
               role="admin", response=TenantOut, errors={409: "The tenant is being deleted."})
async def enable_tenant(request: web.Request, ctx: Context) -> TenantOut:
    return await _set_state(request, ctx, "active")


@API.operation("DELETE", TENANTS + "/{slug}", summary="Delete a tenant and all its data", tags=[TAG],
               realm="console", role="admin", body=DeleteConfirmation,
               description='Irreversible. The body repeats the slug: `{"confirm": "<slug>"}`. Stops the '
                           "tenant's worker, then drops its schema and role; answers when it is gone.")
async def delete_tenant(request: web.Request, ctx: Context) -> None:
    slug = ctx.path["slug"]
    if ctx.body.confirm != slug:
        raise ValidationFailed("confirm", f"type the tenant's slug ({slug}) to confirm the deletion")
    config, key = request.app[CONFIG], request.app[MASTER_KEY]
    async with control_connection(request) as conn:
        try:
            await tenants.delete_tenant(config, key, conn, slug, ctx.actor, client_addr=ctx.client_addr)
        except NotFound:
            raise ApiError(404, f"There is no tenant {slug!r}.") from None
    log.info("tenant %s deleted by %s", slug, ctx.actor, extra={"tenant": slug})


# --- health ------------------------------------------------------------------------------------

@API.operation("GET", "/api/v1/cluster/health",
               summary="Nodes, tenant workers, database, migrations, certificates, doctor's findings",
               tags=[TAG], realm="console", role="admin", response=Health)
async def cluster_health(request: web.Request, ctx: Context) -> Health:
    timeout = request.app[CONFIG].supervisor.heartbeat_timeout
    async with ctx.transaction() as conn:
        server_version = await conn.fetchval("SHOW server_version")
        node_rows = await nodes.list_nodes(conn)
        infos = await tenants.list_tenants(conn)
        worker_rows = await conn.fetch(
            "SELECT t.slug, w.node, w.state, w.restarts, w.reason, w.last_exit, w.updated_at "
            "FROM tenant_workers w JOIN tenants t ON t.id = w.tenant_id ORDER BY t.slug, w.node")
        status = await migrator.status(conn)
    node_list = [Node(**{k: v for k, v in row.items() if k != "seconds_since_heartbeat"},
                      heartbeat_age_seconds=round(max(row["seconds_since_heartbeat"], 0.0), 3),
                      alive=row["seconds_since_heartbeat"] <= timeout)
                 for row in node_rows]
    by_state = dict.fromkeys(nodes.WORKER_STATES, 0)
    for row in worker_rows:
        by_state[row["state"]] += 1
    reported = {row["slug"] for row in worker_rows}
    failures = [WorkerFailure(tenant=row["slug"], node=row["node"], state=row["state"], reason=row["reason"],
                              last_exit=row["last_exit"], restarts=row["restarts"], updated_at=row["updated_at"])
                for row in worker_rows if row["state"] in FAILING]
    workers = Workers(by_state=by_state, restarts=sum(row["restarts"] for row in worker_rows),
                      without_worker=[i.slug for i in infos if i.state == "active" and i.slug not in reported])
    config = request.app[CONFIG]
    certs = await asyncio.to_thread(tls.certificate_info, config)
    findings = await asyncio.to_thread(doctor.run_local_checks, config)
    healthy = any(n.alive for n in node_list) and not failures and status.current
    return Health(status="ok" if healthy else "degraded", checked_at=datetime.now(timezone.utc),
                  nodes=node_list, workers=workers, failures=failures,
                  database=Database(reachable=True, server_version=server_version),
                  migrations=Migrations(current=status.current, pending=status.count, summary=status.describe()),
                  certificates=[Certificate(path=str(c.path), names=list(c.names), not_after=c.not_after,
                                            days_left=c.days_left, problem=c.problem) for c in certs],
                  doctor=[DoctorFinding(**f.as_dict()) for f in findings])
