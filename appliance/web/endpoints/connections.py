"""Connections to the apps: /api/v1/connections, tenant realm. Viewers read, editors write.

A connection is one app account: kind ("jira" | "gitlab"), base URL, non-secret options and a
credential. The credential is sealed with appliance.secrets (bound to the tenant schema and the
row id) and never leaves the appliance again: answers say only which credential fields are set.

"Test connection" (POST .../{id}/test) runs the connector's test() through an OutboundClient
whose allow-list holds only that connection's host, stores what it saw (account, when, ok,
detail) on the row and answers it with the containers and permissions. A refused credential
is an answer with ok=false and the app's reason, never a 5xx.

`remote()` builds that same per-request connector for the builder's discovery calls
(appliance/web/endpoints/builder.py).

Deleting a connection that an integration uses answers 409 naming those integrations (in the
message, and as `details.integrations = [{"id", "name"}]`).
Every change is recorded in the tenant's audit log (without the credential).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal, Union

import asyncpg
from aiohttp import web
from pydantic import Field, RootModel, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from yarl import URL

from appliance import audit, secrets
from appliance.connectors.base import Connector, ConnectorError, EgressDenied, RemoteAuthError, RetriableRemoteError
from appliance.outbound import OutboundClient, RetryPolicy
from appliance.db import jsonb
from appliance.sync.connections import CredentialUnusable, connector_for, host_of
from appliance.web.api import (API, ApiError, ApiModel, Context, Page, PageQuery, ValidationFailed, decode_cursor,
                               omittable)
from appliance.web.keys import CONFIG, MASTER_KEY

log = logging.getLogger(__name__)

TAG = "connections"
CONNECTIONS = "/api/v1/connections"
# "Test connection" is interactive: a person waits for it, so fail fast rather than retry long.
TEST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0, max_wait=5.0, connect_timeout=10.0,
                         read_timeout=20.0)
TEST_SECONDS = 60


def _base_url(value: str) -> str:
    url = URL(value.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise PydanticCustomError("base_url", "must be an http(s) URL such as https://jira.example.com")
    if url.user or url.password:
        raise PydanticCustomError("base_url", "must not contain a user name or password; use the credential fields")
    if url.query_string or url.fragment:
        raise PydanticCustomError("base_url", "must not have a query or a fragment")
    return str(url).rstrip("/")


def _name(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return None if value is None else value.strip()


class JiraAuth(ApiModel):
    """Exactly one of: `email` + `api_token` (Jira Cloud), `token` (Data Center / Server
    personal access token), `username` + `password` (Data Center / Server)."""

    email: str | None = Field(default=None, min_length=3, max_length=254)
    api_token: str | None = Field(default=None, min_length=1, max_length=4096)
    token: str | None = Field(default=None, min_length=1, max_length=4096)
    username: str | None = Field(default=None, min_length=1, max_length=255)
    password: str | None = Field(default=None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one_shape(self) -> JiraAuth:
        given = frozenset(k for k in ("email", "api_token", "token", "username", "password")
                          if getattr(self, k) is not None)
        if given not in (frozenset({"email", "api_token"}), frozenset({"token"}),
                         frozenset({"username", "password"})):
            raise PydanticCustomError("jira_auth", "give email + api_token (Jira Cloud), token (a Data Center / "
                                                   "Server personal access token), or username + password")
        return self

    def stored(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


class JiraConnectionCreate(ApiModel):
    kind: Literal["jira"]
    name: str = Field(min_length=1, max_length=100)
    base_url: str = Field(max_length=2000, description="e.g. https://acme.atlassian.net")
    flavor: Literal["cloud", "server"] | None = Field(default=None, description="null: detected from serverInfo.")
    auth: JiraAuth

    _check_url = field_validator("base_url")(_base_url)
    _check_name = field_validator("name")(_name)


class GitLabConnectionCreate(ApiModel):
    kind: Literal["gitlab"]
    name: str = Field(min_length=1, max_length=100)
    base_url: str = Field(max_length=2000, description="e.g. https://gitlab.example.com")
    token: str = Field(min_length=1, max_length=4096, description="A personal, group or project access token "
                                                                   "with the api scope.")
    status_scope: str | None = Field(default=None, max_length=100, pattern=r"^[^\s:]*$",
                                     description='Scoped-label prefix of statuses (default "status"; "" off).')

    _check_url = field_validator("base_url")(_base_url)
    _check_name = field_validator("name")(_name)


class ConnectionCreate(RootModel[Annotated[Union[JiraConnectionCreate, GitLabConnectionCreate],
                                          Field(discriminator="kind")]]):
    """A new connection; the fields depend on `kind`."""

    @classmethod
    def model_validate_json(cls, json_data, **kwargs):
        # Report fields as the client wrote them ("base_url"), not under the union's tag
        # ("jira.base_url"). Raising ValidationFailed here reaches the client as the 422.
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            raise ValidationFailed.many(_problems(exc)) from None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = list(error["loc"])
        if loc and loc[0] in ("jira", "gitlab"):
            loc = loc[1:]
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            out.append(("kind", 'must be "jira" or "gitlab"'))
            continue
        out.append((".".join(str(p) for p in loc) or "body", error["msg"]))
    return out


class ConnectionPatch(ApiModel):
    """Only the fields given change. `auth` (Jira) or `token` (GitLab) rotates the credential."""

    # Only flavor and status_scope take null ("back to the default").
    name: str = omittable(min_length=1, max_length=100)
    base_url: str = omittable(max_length=2000)
    flavor: Literal["cloud", "server"] | None = Field(default=None, description="Jira; null: auto-detect.")
    status_scope: str | None = Field(default=None, max_length=100, pattern=r"^[^\s:]*$", description="GitLab.")
    auth: JiraAuth = omittable(description="Jira: a new credential.")
    token: str = omittable(min_length=1, max_length=4096, description="GitLab: a new token.")

    _check_name = field_validator("name")(_name)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _base_url(value)


class Account(ApiModel):
    id: str
    name: str
    email: str | None
    login: str | None


class LastTest(ApiModel):
    at: datetime
    ok: bool
    detail: str


class IntegrationRef(ApiModel):
    id: int
    name: str


class ConnectionOut(ApiModel):
    id: int
    name: str
    kind: Literal["jira", "gitlab"]
    base_url: str
    options: dict[str, Any] = Field(description='Non-secret settings: Jira "flavor", GitLab "status_scope".')
    credential_fields: list[str] = Field(description="Which credential fields are set (never their values); "
                                                     "empty when the stored credential cannot be read here.")
    account: Account | None = Field(description="Who the credential was at the last test.")
    last_test: LastTest | None
    used_by: list[IntegrationRef] = Field(description="Integrations using this connection.")
    created_at: datetime
    updated_at: datetime


class Container(ApiModel):
    id: str
    key: str
    name: str
    url: str


class TestResult(ApiModel):
    ok: bool
    detail: str = Field(description="One line for a person: the app and version, or what is wrong.")
    account: Account | None
    containers: list[Container]
    permissions: list[str]
    tested_at: datetime


_COLUMNS = ("id, name, kind, base_url, options::text AS options, credentials, account::text AS account, "
            "last_test_at, last_test_ok, last_test_detail, created_at, updated_at")
_USERS = ("SELECT id, name FROM integrations WHERE (spec->'side_a'->>'connection_id')::bigint = $1 "
          "OR (spec->'side_b'->>'connection_id')::bigint = $1 ORDER BY name")


def _missing(ctx: Context) -> ApiError:
    return ApiError(404, f"There is no connection {ctx.path['id']}.")


async def load_connection(conn: asyncpg.Connection, connection_id: int, *,
                          lock: bool = False) -> asyncpg.Record | None:
    """The connection's row (what connector_for takes), or None."""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM connections WHERE id = $1"
                               + (" FOR UPDATE" if lock else ""), connection_id)


async def _out(conn: asyncpg.Connection, ctx: Context, row: asyncpg.Record) -> ConnectionOut:
    try:
        fields = sorted(secrets.decrypt(ctx.request.app[MASTER_KEY], row["credentials"], schema=ctx.realm.schema,
                                        connection_id=row["id"]))
    except secrets.SecretError:
        fields = []
    users = await conn.fetch(_USERS, row["id"])
    last = (LastTest(at=row["last_test_at"], ok=bool(row["last_test_ok"]), detail=row["last_test_detail"] or "")
            if row["last_test_at"] is not None else None)
    account = jsonb(row["account"])
    return ConnectionOut(id=row["id"], name=row["name"], kind=row["kind"], base_url=row["base_url"],
                         options=jsonb(row["options"]) or {}, credential_fields=fields,
                         account=Account(**{k: account.get(k) for k in ("id", "name", "email", "login")})
                         if account else None, last_test=last,
                         used_by=[IntegrationRef(id=u["id"], name=u["name"]) for u in users],
                         created_at=row["created_at"], updated_at=row["updated_at"])


def _seal(ctx: Context, credentials: dict[str, str], connection_id: int) -> bytes:
    return secrets.encrypt(ctx.request.app[MASTER_KEY], credentials, schema=ctx.realm.schema,
                           connection_id=connection_id)


@contextlib.asynccontextmanager
async def remote(request: web.Request, ctx: Context, row: asyncpg.Record) -> AsyncIterator[Connector]:
    """The connector of connection `row` for one interactive request of the web tier: its own
    OutboundClient whose allow-list holds only that connection's host, retrying briefly
    (TEST_RETRY). Raises what connector_for raises (CredentialUnusable, ...)."""
    outbound = OutboundClient(request.app[CONFIG], [host_of(row["base_url"])], retry=TEST_RETRY,
                              tenant=ctx.realm.slug)
    async with outbound:
        yield connector_for(row, request.app[MASTER_KEY], outbound, ctx.realm.schema)


def _explain(exc: ConnectorError) -> str:
    """What a failed test tells the admin; connector messages carry no secret (appliance.outbound)."""
    if isinstance(exc, CredentialUnusable):
        return f"The stored credential cannot be used: {exc}"
    if isinstance(exc, EgressDenied):
        return f"Not allowed to reach the app: {exc}"
    if isinstance(exc, RemoteAuthError):
        return f"The app refused the credential: {exc}"
    if isinstance(exc, RetriableRemoteError):
        return f"Could not reach the app (try again later): {exc}"
    return f"The app answered unexpectedly: {exc}"


@API.operation("GET", CONNECTIONS, summary="List connections", tags=[TAG], realm="tenant", role="viewer",
               query=PageQuery, response=Page[ConnectionOut], description="By name.")
async def list_connections(request: web.Request, ctx: Context) -> Page[ConnectionOut]:
    limit = ctx.query.limit
    after = decode_cursor(ctx.query.cursor, str, int) if ctx.query.cursor else None
    if after is not None and "\x00" in after[0]:
        raise ValidationFailed("cursor", "not a cursor of this list; start again without one")
    async with ctx.transaction() as conn:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM connections WHERE $1::text IS NULL OR (name, id) > ($1, $2) "
                                "ORDER BY name, id LIMIT $3", after and after[0], after and after[1], limit + 1)
        items = [await _out(conn, ctx, r) for r in rows]
    return Page[ConnectionOut].of(items, limit, key=lambda c: (c.name, c.id))


@API.operation("POST", CONNECTIONS, summary="Create a connection", tags=[TAG], realm="tenant", role="editor",
               body=ConnectionCreate, response=ConnectionOut, status=201,
               errors={409: "A connection with this name exists."})
async def create_connection(request: web.Request, ctx: Context) -> ConnectionOut:
    body = ctx.body.root
    if body.kind == "jira":
        options = {"flavor": body.flavor} if body.flavor else {}
        credentials = body.auth.stored()
    else:
        options = {"status_scope": body.status_scope} if body.status_scope is not None else {}
        credentials = {"token": body.token}
    name = body.name
    async with ctx.transaction() as conn:
        try:
            # The id is part of the ciphertext's associated data, so the row exists first.
            connection_id = await conn.fetchval(
                "INSERT INTO connections (name, kind, base_url, options) VALUES ($1, $2, $3, $4::jsonb) RETURNING id",
                name, body.kind, body.base_url, json.dumps(options))
        except asyncpg.UniqueViolationError:
            raise ApiError(409, f"A connection named {name!r} exists.") from None
        await conn.execute("UPDATE connections SET credentials = $2 WHERE id = $1", connection_id,
                           _seal(ctx, credentials, connection_id))
        await audit.log_event(conn, ctx.actor, "connection.create", name,
                              {"connection_id": connection_id, "kind": body.kind, "base_url": body.base_url,
                               "options": options, "credential_fields": sorted(credentials)}, ctx.client_addr)
        return await _out(conn, ctx, await load_connection(conn, connection_id))


@API.operation("GET", CONNECTIONS + "/{id}", summary="One connection", tags=[TAG], realm="tenant", role="viewer",
               response=ConnectionOut)
async def get_connection(request: web.Request, ctx: Context) -> ConnectionOut:
    async with ctx.transaction() as conn:
        row = await load_connection(conn, ctx.path["id"])
        if row is None:
            raise _missing(ctx)
        return await _out(conn, ctx, row)


@API.operation("PATCH", CONNECTIONS + "/{id}", summary="Change a connection or rotate its credential", tags=[TAG],
               realm="tenant", role="editor", body=ConnectionPatch, response=ConnectionOut,
               errors={409: "A connection with this name exists."})
async def update_connection(request: web.Request, ctx: Context) -> ConnectionOut:
    body, given = ctx.body, ctx.body.model_fields_set
    async with ctx.transaction() as conn:
        row = await load_connection(conn, ctx.path["id"], lock=True)
        if row is None:
            raise _missing(ctx)
        kind = row["kind"]
        wrong = [(f, f"not a setting of {kind} connections") for f in sorted(given)
                 if f in ({"status_scope", "token"} if kind == "jira" else {"flavor", "auth"})]
        if wrong:
            raise ValidationFailed.many(wrong)
        options = jsonb(row["options"]) or {}
        for option in ("flavor", "status_scope"):
            if option in given:
                value = getattr(body, option)
                if value is None:
                    options.pop(option, None)
                else:
                    options[option] = value
        name = body.name if "name" in given else row["name"]
        base_url = body.base_url if "base_url" in given else row["base_url"]
        rotated = {"auth", "token"} & given
        credentials = row["credentials"]
        if rotated:
            stored = body.auth.stored() if kind == "jira" else {"token": body.token}
            credentials = _seal(ctx, stored, row["id"])
        try:
            await conn.execute(
                "UPDATE connections SET name = $2, base_url = $3, options = $4::jsonb, credentials = $5, "
                "updated_at = now() WHERE id = $1", row["id"], name, base_url, json.dumps(options), credentials)
        except asyncpg.UniqueViolationError:
            raise ApiError(409, f"A connection named {name!r} exists.") from None
        changes = sorted((given - {"auth", "token"}) | ({"credential"} if rotated else set()))
        await audit.log_event(conn, ctx.actor, "connection.update", name,
                              {"connection_id": row["id"], "changed": changes, "base_url": base_url,
                               "options": options}, ctx.client_addr)
        return await _out(conn, ctx, await load_connection(conn, row["id"]))


@API.operation("DELETE", CONNECTIONS + "/{id}", summary="Delete a connection", tags=[TAG], realm="tenant",
               role="editor", errors={409: "Integrations use this connection; the message names them."})
async def delete_connection(request: web.Request, ctx: Context) -> None:
    async with ctx.transaction() as conn:
        row = await load_connection(conn, ctx.path["id"], lock=True)
        if row is None:
            raise _missing(ctx)
        users = await conn.fetch(_USERS, row["id"])
        if users:
            names = ", ".join(f"{u['name']!r} (id {u['id']})" for u in users)
            raise ApiError(409, f"Connection {row['name']!r} is used by integration(s) {names}; change or delete "
                                "them first.", {"integrations": [{"id": u["id"], "name": u["name"]} for u in users]})
        await conn.execute("DELETE FROM connections WHERE id = $1", row["id"])
        await audit.log_event(conn, ctx.actor, "connection.delete", row["name"],
                              {"connection_id": row["id"], "kind": row["kind"]}, ctx.client_addr)


@API.operation("POST", CONNECTIONS + "/{id}/test", summary="Test a connection", tags=[TAG], realm="tenant",
               role="editor", response=TestResult,
               description="Signs in to the app with the stored credential and reports who it is, which "
                           "containers it sees and what it may do. A refused credential answers ok=false.")
async def test_connection(request: web.Request, ctx: Context) -> TestResult:
    async with ctx.transaction() as conn:
        row = await load_connection(conn, ctx.path["id"])
    if row is None:
        raise _missing(ctx)
    ok, detail, account, containers, permissions = False, "", None, [], []
    try:
        async with remote(request, ctx, row) as connector, asyncio.timeout(TEST_SECONDS):
            report = await connector.test()
        ok, detail = report.ok, report.detail
        account = report.account.to_dict() if report.account else None
        containers = [c.to_dict() for c in report.containers]
        permissions = list(report.permissions)
    except ConnectorError as exc:
        detail = _explain(exc)
    except TimeoutError:
        detail = f"The app did not answer within {TEST_SECONDS} seconds."
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # JSON, but not the JSON this kind of app sends: most likely the base URL points elsewhere.
        log.info("connection %s: test got an answer of unexpected shape (%s)", row["id"], type(exc).__name__,
                 extra={"tenant": ctx.realm.slug})
        detail = f"The answers are not what a {row['kind']} server sends; check the base URL."
    log.info("connection %s tested: ok=%s", row["id"], ok, extra={"tenant": ctx.realm.slug})
    async with ctx.transaction() as conn:
        tested_at = await conn.fetchval(
            "UPDATE connections SET account = COALESCE($2::jsonb, account), last_test_at = now(), "
            "last_test_ok = $3, last_test_detail = $4 WHERE id = $1 RETURNING last_test_at",
            row["id"], json.dumps(account) if account else None, ok, detail)
        if tested_at is None:
            raise _missing(ctx)
        await audit.log_event(conn, ctx.actor, "connection.test", row["name"],
                              {"connection_id": row["id"], "ok": ok}, ctx.client_addr)
    return TestResult(ok=ok, detail=detail, account=Account(**account) if account else None,
                      containers=[Container(**c) for c in containers], permissions=permissions,
                      tested_at=tested_at)
