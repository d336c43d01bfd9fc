"""Sign-in, sign-out, who am I, change my password: /api/v1/auth/..., both realms.

The host decides the realm: on a tenant's host these are that tenant's users, on
the console's host the cluster admins. The work is appliance.auth's (throttling,
lock-out, sessions, the cookie); these handlers shape the input and the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from appliance import accounts, auth
from appliance.web.api import API, ApiError, ApiModel, Context, ValidationFailed
from appliance.web.keys import CONFIG

TAG = "auth"
# PostgreSQL text cannot hold NUL: such input is refused up front (422), never a 500.
NO_NUL = r"^[^\x00]*$"


class LoginBody(ApiModel):
    email: str = Field(min_length=1, max_length=254, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=1024)


class Me(ApiModel):
    """The signed-in user, as this host knows them."""

    id: int
    email: str
    display_name: str
    role: Literal["viewer", "editor", "admin"]
    realm: Literal["console", "tenant"]
    tenant: str | None = Field(description="The tenant's slug; null in the cluster console.")
    via: Literal["session", "token"] = Field(description="How this request was authenticated.")
    csrf_token: str | None = Field(description="Send it as the X-CSRF-Token header with every POST, PUT, PATCH "
                                               "and DELETE of this session; null for API tokens.")


class LoginResult(Me):
    session_expires_at: datetime = Field(description="When the session ends at the latest (it ends earlier "
                                                     "when unused for the configured idle time).")


class PasswordChange(ApiModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


def me(ctx: Context) -> Me:
    principal = ctx.principal
    # Not validated here (GET /me is the hottest path): the API checks every response
    # against its model before sending it.
    return Me.model_construct(id=principal.user_id, email=principal.email, display_name=principal.display_name,
                              role=principal.role, realm=ctx.realm.kind, tenant=ctx.realm.slug, via=principal.via,
                              csrf_token=principal.csrf_token)


@API.operation("POST", "/api/v1/auth/login", summary="Sign in", tags=[TAG], realm="any", role=None,
               body=LoginBody, response=LoginResult,
               errors={401: "The e-mail address or the password is wrong (the same answer whether or not the "
                            "address has an account; also for a disabled account).",
                       429: "Too many attempts from this client address (code too_many_requests), or too many "
                            "failed sign-ins for this e-mail address (code account_locked); see Retry-After."},
               description="Starts a session: the response sets the session cookie (host-only, Secure, "
                           "HttpOnly, SameSite=Lax) and carries the CSRF token for unsafe requests.")
async def login(request: web.Request, ctx: Context) -> LoginResult:
    principal, session = await auth.login(request, ctx.body.email, ctx.body.password)
    ctx.principal = principal
    return LoginResult(**me(ctx).model_dump(), session_expires_at=session.expires_at)


@API.operation("POST", "/api/v1/auth/logout", summary="Sign out", tags=[TAG], realm="any", role=None,
               description="Ends this session and clears its cookie; answers 204 even without one.")
async def logout(request: web.Request, ctx: Context) -> None:
    await auth.logout(request)


@API.operation("GET", "/api/v1/auth/me", summary="Who am I", tags=[TAG], realm="any", role="viewer", response=Me)
async def get_me(request: web.Request, ctx: Context) -> Me:
    return me(ctx)


@API.operation("GET", "/api/v1/me", summary="Who am I (short for /api/v1/auth/me)", tags=[TAG], realm="any",
               role="viewer", response=Me)
async def get_me_short(request: web.Request, ctx: Context) -> Me:
    return me(ctx)


@API.operation("POST", "/api/v1/auth/password", summary="Change my password", tags=[TAG], realm="any",
               role="viewer", body=PasswordChange,
               errors={403: "The current password is wrong.",
                       429: "Too many failed attempts (code account_locked or too_many_requests); see Retry-After."},
               description="Needs the current password (wrong guesses count towards the account's lock-out). "
                           "Ends every other session of the account; this one stays.")
async def change_password(request: web.Request, ctx: Context) -> None:
    principal = ctx.principal
    settings = request.app[CONFIG].auth
    try:
        accounts.check_password(ctx.body.new_password, principal.email, settings.password_min_length)
    except accounts.PasswordRejected as exc:
        raise ValidationFailed("new_password", str(exc)) from None
    try:
        await auth.authenticate(request, principal.email, ctx.body.current_password, purpose="password_change")
    except auth.AuthRefusal as refusal:
        if refusal.status == 401:
            raise ApiError(403, "The current password is wrong.") from None
        raise
    async with ctx.transaction() as conn:
        try:
            await accounts.change_password(conn, principal.user_id, ctx.body.new_password,
                                           keep_session=principal.session_id,
                                           min_length=settings.password_min_length, client_addr=ctx.client_addr)
        except accounts.PasswordRejected as exc:
            raise ValidationFailed("new_password", str(exc)) from None

