"""Console endpoints for cluster admins, under /api/v1/cluster/admins.
Realm "console", role "admin".

Cluster admins are the console realm's users (table `tandem.users`, every row an
admin), so these run appliance.accounts in `ctx.transaction()` (console scope); the
audit entries (user.create, user.disable, user.enable, user.unlock) land in
`tandem.audit_log` with the acting admin's e-mail and the client's address.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import Field

from appliance import accounts
from appliance.errors import NotFound
from appliance.web.api import API, ApiError, ApiModel, Context, Page, PageQuery, ValidationFailed, decode_cursor
from appliance.web.keys import CONFIG

TAG = "cluster"
ADMINS = "/api/v1/cluster/admins"


class AdminOut(ApiModel):
    id: int
    email: str
    display_name: str
    disabled: bool
    locked: bool = Field(description="Locked out after too many failed sign-ins; POST .../unlock lifts it.")
    locked_until: datetime | None
    failed_logins: int
    last_login_at: datetime | None
    password_changed_at: datetime
    created_at: datetime


class AdminCreate(ApiModel):
    email: str = Field(max_length=254, json_schema_extra={"format": "email"})
    display_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, max_length=1024, description="Generated when omitted.")


class AdminCreated(ApiModel):
    admin: AdminOut
    password: str | None = Field(description="The generated password, shown this once; null when you gave one.")


def admin_out(user: accounts.User) -> AdminOut:
    return AdminOut(id=user.id, email=user.email, display_name=user.display_name,
                    disabled=user.disabled_at is not None, locked=user.locked, locked_until=user.locked_until,
                    failed_logins=user.failed_logins, last_login_at=user.last_login_at,
                    password_changed_at=user.password_changed_at, created_at=user.created_at)


def _not_found(user_id: int) -> ApiError:
    return ApiError(404, f"There is no cluster admin {user_id}.")


@API.operation("GET", ADMINS, summary="List cluster admins", tags=[TAG], realm="console", role="admin",
               query=PageQuery, response=Page[AdminOut])
async def list_admins(request: web.Request, ctx: Context) -> Page[AdminOut]:
    limit = ctx.query.limit
    after = decode_cursor(ctx.query.cursor, str, int) if ctx.query.cursor else None
    async with ctx.transaction() as conn:
        users = await accounts.list_users(conn, limit=limit + 1, after=after)
    return Page[AdminOut].of([admin_out(u) for u in users], limit, key=lambda a: (a.email.lower(), a.id))


@API.operation("POST", ADMINS, summary="Create a cluster admin", tags=[TAG], realm="console", role="admin",
               body=AdminCreate, response=AdminCreated, status=201,
               errors={409: "A cluster admin with this e-mail address exists."})
async def create_admin(request: web.Request, ctx: Context) -> AdminCreated:
    body = ctx.body
    min_length = request.app[CONFIG].auth.password_min_length
    password = body.password
    generated = None
    if password is None:
        password = generated = accounts.generate_password(min_length)
    async with ctx.transaction() as conn:
        try:
            user = await accounts.create_user(conn, body.email, password, "admin", actor=ctx.actor,
                                              min_length=min_length, display_name=body.display_name,
                                              client_addr=ctx.client_addr)
        except accounts.InvalidEmail as exc:
            raise ValidationFailed("email", str(exc)) from None
        except accounts.PasswordRejected as exc:
            raise ValidationFailed("password", str(exc)) from None
    return AdminCreated(admin=admin_out(user), password=generated)


async def _set_disabled(ctx: Context, disabled: bool) -> AdminOut:
    user_id = ctx.path["id"]
    if disabled and ctx.principal.user_id == user_id:
        # Signing yourself out for good is never what was meant; another admin can.
        raise ApiError(409, "You cannot disable your own account; another admin can.")
    async with ctx.transaction() as conn:
        try:
            user = await accounts.update_user(conn, user_id, actor=ctx.actor, disabled=disabled,
                                              client_addr=ctx.client_addr)
        except NotFound:
            raise _not_found(user_id) from None
        except accounts.LastAdmin as exc:
            raise ApiError(409, str(exc)) from None
    return admin_out(user)


@API.operation("POST", ADMINS + "/{id}/disable", summary="Disable a cluster admin", tags=[TAG], realm="console",
               role="admin", response=AdminOut,
               errors={409: "Your own account, or the last active admin."},
               description="Ends the admin's sessions at once; their API tokens stop working while disabled.")
async def disable_admin(request: web.Request, ctx: Context) -> AdminOut:
    return await _set_disabled(ctx, True)


@API.operation("POST", ADMINS + "/{id}/enable", summary="Enable a cluster admin again", tags=[TAG],
               realm="console", role="admin", response=AdminOut)
async def enable_admin(request: web.Request, ctx: Context) -> AdminOut:
    return await _set_disabled(ctx, False)


@API.operation("POST", ADMINS + "/{id}/unlock", summary="Lift a cluster admin's lock-out", tags=[TAG],
               realm="console", role="admin", response=AdminOut,
               description="The failed sign-ins so far stop counting against the account.")
async def unlock_admin(request: web.Request, ctx: Context) -> AdminOut:
    user_id = ctx.path["id"]
    async with ctx.transaction() as conn:
        try:
            user = await accounts.unlock_user(conn, user_id, actor=ctx.actor, client_addr=ctx.client_addr)
        except NotFound:
            raise _not_found(user_id) from None
    return admin_out(user)
