"""API tokens: /api/v1/tokens, both realms, every role.

Anyone signed in may make tokens for themselves (a token acts with its user's
current role, so it grants nothing the user lacks; viewers need them for read-only
tools). A token is shown once, in the answer that creates it. Tokens are created
from a signed-in browser session only: a leaked token cannot mint itself successors.
Lists show your own tokens; admins see everyone's in the realm (filter with
`user_id`) and may revoke any.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from pydantic import Field

from appliance import audit, tokens
from appliance.errors import NotFound
from appliance.web.api import API, ApiError, ApiModel, Context, Page, PageQuery, ValidationFailed, decode_cursor
from appliance.web.endpoints.auth import NO_NUL
from appliance.web.keys import CONFIG

TAG = "tokens"
TOKENS = "/api/v1/tokens"
DEFAULT_DAYS = 90


class TokenCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL,
                      description="What the token is for, e.g. \"backup script\".")
    expires_in_days: int = Field(default=DEFAULT_DAYS, ge=1,
                                 description="Lifetime in days; at most the configured auth.token_max_days "
                                             f"(365 by default); {DEFAULT_DAYS} when omitted (or that maximum, "
                                             "if lower).")


class TokenOut(ApiModel):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    user_id: int
    user_email: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    revoked_at: datetime | None
    active: bool = Field(description="Neither revoked nor expired.")


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself (`tdm_...`), shown this once: it is stored hashed.")


class TokenQuery(PageQuery):
    user_id: int | None = Field(default=None, ge=1, description="Admins: only this user's tokens "
                                                                "(default: everyone's). Others see their own.")


def token_out(info: tokens.TokenInfo, now: datetime) -> TokenOut:
    return TokenOut(id=info.id, name=info.name, prefix=info.prefix, user_id=info.user_id, user_email=info.user_email,
                    created_at=info.created_at, expires_at=info.expires_at, last_used_at=info.last_used_at,
                    revoked_at=info.revoked_at, active=info.revoked_at is None and info.expires_at > now)


@API.operation("POST", TOKENS, summary="Create an API token", tags=[TAG], realm="any", role="viewer",
               body=TokenCreate, response=TokenCreated, status=201,
               errors={403: "Tokens are created from a signed-in session, not with another token."})
async def create_token(request: web.Request, ctx: Context) -> TokenCreated:
    principal = ctx.principal
    if principal.via != "session":
        raise ApiError(403, "API tokens are created from a signed-in session, not with another token.")
    max_days = request.app[CONFIG].auth.token_max_days
    fields = ctx.body.model_fields_set
    days = ctx.body.expires_in_days if "expires_in_days" in fields else min(DEFAULT_DAYS, max_days)
    if days > max_days:
        raise ValidationFailed("expires_in_days", f"at most {max_days} days (auth.token_max_days)")
    async with ctx.transaction() as conn:
        token, info = await tokens.create(conn, principal.user_id, ctx.body.name.strip(), timedelta(days=days))
        await audit.log_event(conn, ctx.actor, "token.create", principal.email,
                              {"token_id": info.id, "name": info.name, "prefix": info.prefix, "days": days},
                              ctx.client_addr)
        now = await conn.fetchval("SELECT now()")
    return TokenCreated(**token_out(info, now).model_dump(), token=token)


@API.operation("GET", TOKENS, summary="List API tokens", tags=[TAG], realm="any", role="viewer", query=TokenQuery,
               response=Page[TokenOut], description="Newest first; revoked and expired ones included.")
async def list_tokens(request: web.Request, ctx: Context) -> Page[TokenOut]:
    principal = ctx.principal
    limit = ctx.query.limit
    before = decode_cursor(ctx.query.cursor, int)[0] if ctx.query.cursor else None
    user_id = ctx.query.user_id if principal.role == "admin" else principal.user_id
    async with ctx.transaction() as conn:
        rows = await tokens.list_tokens(conn, user_id=user_id, limit=limit + 1, before_id=before)
        now = await conn.fetchval("SELECT now()")
    return Page[TokenOut].of([token_out(r, now) for r in rows], limit, key=lambda t: (t.id,))


@API.operation("DELETE", TOKENS + "/{id}", summary="Revoke an API token", tags=[TAG], realm="any", role="viewer",
               description="Your own tokens; admins any in the realm. Revoking a revoked token changes nothing.")
async def revoke_token(request: web.Request, ctx: Context) -> None:
    principal = ctx.principal
    token_id = ctx.path["id"]
    missing = ApiError(404, f"There is no API token {token_id} of yours.")
    async with ctx.transaction() as conn:
        try:
            info = await tokens.get(conn, token_id)
        except NotFound:
            raise missing from None
        if info.user_id != principal.user_id and principal.role != "admin":
            raise missing
        if await tokens.revoke(conn, token_id):
            await audit.log_event(conn, ctx.actor, "token.revoke", info.user_email,
                                  {"token_id": info.id, "name": info.name, "prefix": info.prefix}, ctx.client_addr)
