"""A tenant's users: /api/v1/users, tenant realm, admins only (lists included: the
list shows who can sign in, their roles and lock-outs, which is an admin's business).

Everything runs in the tenant's scope (`ctx.transaction()`), through appliance.accounts,
which audits each change in the tenant's audit log with the acting admin and the
client's address. Cluster admins are managed under /api/v1/cluster/admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from appliance import accounts
from appliance.errors import NotFound
from appliance.web.api import API, ApiError, ApiModel, Context, Page, PageQuery, ValidationFailed, decode_cursor
from appliance.web.endpoints.auth import NO_NUL
from appliance.web.keys import CONFIG

TAG = "users"
USERS = "/api/v1/users"
Role = Literal["viewer", "editor", "admin"]


class UserOut(ApiModel):
    id: int
    email: str
    display_name: str
    role: Role
    disabled: bool
    disabled_at: datetime | None
    locked: bool = Field(description="Locked out after too many failed sign-ins; POST .../unlock lifts it.")
    locked_until: datetime | None
    failed_logins: int = Field(description="Failed sign-ins since the last success or unlock.")
    last_login_at: datetime | None
    password_changed_at: datetime
    created_at: datetime
    updated_at: datetime


def _email(value: str) -> str:
    try:
        return accounts.normalise_email(value)
    except accounts.InvalidEmail as exc:
        raise PydanticCustomError("invalid_email", "{reason}", {"reason": str(exc)}) from None


class UserCreate(ApiModel):
    email: str = Field(max_length=254, json_schema_extra={"format": "email"})
    role: Role
    display_name: str = Field(default="", max_length=200, pattern=NO_NUL)
    password: str | None = Field(default=None, max_length=1024,
                                 description="Generated (and returned once) when omitted.")

    _check_email = field_validator("email")(_email)


class UserCreated(ApiModel):
    user: UserOut
    password: str | None = Field(description="The generated password, shown this once; null when you gave one.")


class UserPatch(ApiModel):
    role: Role | None = Field(default=None, description="Omitted or null: unchanged.")
    display_name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    disabled: bool | None = Field(default=None, description="true ends the user's sessions at once; their API "
                                                            "tokens stop working while disabled.")


class PasswordReset(ApiModel):
    password: str | None = Field(default=None, max_length=1024,
                                 description="The new password; generated (and returned once) when omitted.")


class PasswordResetResult(ApiModel):
    password: str | None = Field(description="The generated password, shown this once; null when you gave one.")


class UserQuery(PageQuery):
    role: Role | None = Field(default=None, description="Only users with this role.")


def user_out(user: accounts.User) -> UserOut:
    return UserOut(id=user.id, email=user.email, display_name=user.display_name, role=user.role,
                   disabled=user.disabled_at is not None, disabled_at=user.disabled_at, locked=user.locked,
                   locked_until=user.locked_until if user.locked else None, failed_logins=user.failed_logins,
                   last_login_at=user.last_login_at, password_changed_at=user.password_changed_at,
                   created_at=user.created_at, updated_at=user.updated_at)


def _missing(ctx: Context) -> ApiError:
    return ApiError(404, f"There is no user {ctx.path['id']}.")


@API.operation("GET", USERS, summary="List users", tags=[TAG], realm="tenant", role="admin", query=UserQuery,
               response=Page[UserOut], description="By e-mail address.")
async def list_users(request: web.Request, ctx: Context) -> Page[UserOut]:
    limit = ctx.query.limit
    after = decode_cursor(ctx.query.cursor, str, int) if ctx.query.cursor else None
    if after is not None and "\x00" in after[0]:
        raise ValidationFailed("cursor", "not a cursor of this list; start again without one")
    async with ctx.transaction() as conn:
        users = await accounts.list_users(conn, limit=limit + 1, after=after, role=ctx.query.role)
    return Page[UserOut].of([user_out(u) for u in users], limit, key=lambda u: (u.email, u.id))


@API.operation("POST", USERS, summary="Create a user", tags=[TAG], realm="tenant", role="admin", body=UserCreate,
               response=UserCreated, status=201, errors={409: "A user with this e-mail address exists."})
async def create_user(request: web.Request, ctx: Context) -> UserCreated:
    body = ctx.body
    min_length = request.app[CONFIG].auth.password_min_length
    generated = None if body.password is not None else accounts.generate_password(min_length)
    async with ctx.transaction() as conn:
        try:
            user = await accounts.create_user(conn, body.email, body.password or generated, body.role,
                                              actor=ctx.actor, min_length=min_length,
                                              display_name=body.display_name, client_addr=ctx.client_addr)
        except accounts.PasswordRejected as exc:
            raise ValidationFailed("password", str(exc)) from None
    return UserCreated(user=user_out(user), password=generated)


@API.operation("GET", USERS + "/{id}", summary="One user", tags=[TAG], realm="tenant", role="admin",
               response=UserOut)
async def get_user(request: web.Request, ctx: Context) -> UserOut:
    async with ctx.transaction() as conn:
        try:
            return user_out(await accounts.get_user(conn, ctx.path["id"]))
        except NotFound:
            raise _missing(ctx) from None


@API.operation("PATCH", USERS + "/{id}", summary="Change a user's role, name or disabled state", tags=[TAG],
               realm="tenant", role="admin", body=UserPatch, response=UserOut,
               errors={409: "The change would leave the tenant without an active admin, or disable your own "
                            "account."})
async def update_user(request: web.Request, ctx: Context) -> UserOut:
    body = ctx.body
    if body.disabled and ctx.path["id"] == ctx.principal.user_id:
        # Locking yourself out for good is never what was meant; another admin can.
        raise ApiError(409, "You cannot disable your own account; another admin can.")
    async with ctx.transaction() as conn:
        try:
            user = await accounts.update_user(conn, ctx.path["id"], actor=ctx.actor, role=body.role,
                                              display_name=body.display_name, disabled=body.disabled,
                                              client_addr=ctx.client_addr)
        except NotFound:
            raise _missing(ctx) from None
        except accounts.LastAdmin as exc:
            raise ApiError(409, str(exc)) from None
    return user_out(user)


@API.operation("DELETE", USERS + "/{id}", summary="Delete a user", tags=[TAG], realm="tenant", role="admin",
               errors={409: "The user is the tenant's last active admin."},
               description="Deletes the user with their sessions and API tokens.")
async def delete_user(request: web.Request, ctx: Context) -> None:
    async with ctx.transaction() as conn:
        try:
            await accounts.delete_user(conn, ctx.path["id"], actor=ctx.actor, client_addr=ctx.client_addr)
        except NotFound:
            raise _missing(ctx) from None
        except accounts.LastAdmin as exc:
            raise ApiError(409, str(exc)) from None


@API.operation("POST", USERS + "/{id}/unlock", summary="Lift a user's lock-out", tags=[TAG], realm="tenant",
               role="admin", response=UserOut,
               description="The failed sign-ins so far stop counting against the account.")
async def unlock_user(request: web.Request, ctx: Context) -> UserOut:
    async with ctx.transaction() as conn:
        try:
            return user_out(await accounts.unlock_user(conn, ctx.path["id"], actor=ctx.actor,
                                                       client_addr=ctx.client_addr))
        except NotFound:
            raise _missing(ctx) from None


@API.operation("POST", USERS + "/{id}/reset-password", summary="Set a user's password", tags=[TAG],
               realm="tenant", role="admin", body=PasswordReset, response=PasswordResetResult,
               description="Sets the given password or a generated one (returned once), ends all the user's "
                           "sessions and lifts a lock-out.")
async def reset_password(request: web.Request, ctx: Context) -> PasswordResetResult:
    min_length = request.app[CONFIG].auth.password_min_length
    async with ctx.transaction() as conn:
        try:
            generated = await accounts.reset_password(conn, ctx.path["id"], ctx.body.password, actor=ctx.actor,
                                                      min_length=min_length, client_addr=ctx.client_addr)
        except NotFound:
            raise _missing(ctx) from None
        except accounts.PasswordRejected as exc:
            raise ValidationFailed("password", str(exc)) from None
    return PasswordResetResult(password=generated)
