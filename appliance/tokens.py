"""Per-user API tokens, in the `api_tokens` table of the request's realm.

A token is `tdm_` + 43 random URL-safe characters (256 bits). It is shown once, at
creation; the table keeps its sha256 (to find it) and its first 8 characters (so
people can tell their tokens apart in lists). A token acts with its user's current
role, stops at `expires_at` or `revoked_at`, and stops while its user is disabled.

Every function takes a connection inside a transaction already confined to one
realm (appliance.scope), with unqualified table names, like appliance.sessions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from appliance.errors import NotFound

PREFIX = "tdm_"
TOKEN_BYTES = 32
SHOWN_CHARS = 8
# Shape of a token we could have issued; anything else is refused without a query.
_SHAPE = re.compile(r"^tdm_[A-Za-z0-9_-]{32,128}$")
# last_used_at is written at most this often per token.
TOUCH_EVERY = timedelta(minutes=1)

_COLUMNS = ("t.id, t.user_id, u.email AS user_email, t.name, t.prefix, t.created_at, t.expires_at, "
            "t.last_used_at, t.revoked_at")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def looks_like_token(value: str) -> bool:
    return bool(_SHAPE.match(value))


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user_id: int
    user_email: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class TokenOwner:
    """Who a presented token acts for."""

    token_id: int
    user_id: int
    email: str
    role: str
    display_name: str


async def create(conn: asyncpg.Connection, user_id: int, name: str, lifetime: timedelta) -> tuple[str, TokenInfo]:
    """A new token for `user_id`: (the token itself, to show once; its stored info)."""
    token = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token_id = await conn.fetchval(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + $5::interval) RETURNING id",
        user_id, name, token_hash(token), token[:SHOWN_CHARS], lifetime)
    return token, await get(conn, token_id)


async def get(conn: asyncpg.Connection, token_id: int) -> TokenInfo:
    """Raises NotFound."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id "
                              "WHERE t.id = $1", token_id)
    if row is None:
        raise NotFound(f"no API token {token_id}")
    return TokenInfo(**dict(row))


async def list_tokens(conn: asyncpg.Connection, *, user_id: int | None, limit: int,
                      before_id: int | None = None) -> list[TokenInfo]:
    """Tokens of `user_id` (None: of everyone in the realm), newest first, up to
    `limit`, starting after id `before_id`; revoked and expired ones included."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE ($1::bigint IS NULL OR t.user_id = $1) AND ($2::bigint IS NULL OR t.id < $2) "
        "ORDER BY t.id DESC LIMIT $3", user_id, before_id, limit)
    return [TokenInfo(**dict(r)) for r in rows]


async def revoke(conn: asyncpg.Connection, token_id: int) -> bool:
    """Revoke a token; False when it was already revoked. Raises NotFound."""
    done = await conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
                              token_id)
    if done == "UPDATE 0":
        await get(conn, token_id)
        return False
    return True


async def lookup(conn: asyncpg.Connection, token: str) -> TokenOwner | None:
    """Who `token` acts for, or None (malformed, unknown, revoked, expired, user
    disabled). Records the use, at most once per TOUCH_EVERY."""
    if not looks_like_token(token):
        return None
    row = await conn.fetchrow(
        "SELECT t.id, (t.last_used_at IS NULL OR t.last_used_at < now() - $2::interval) AS stale, "
        "       u.id AS user_id, u.email, u.role, u.display_name "
        "FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND u.disabled_at IS NULL",
        token_hash(token), TOUCH_EVERY)
    if row is None:
        return None
    if row["stale"]:
        await conn.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = $1", row["id"])
    return TokenOwner(row["id"], row["user_id"], row["email"], row["role"], row["display_name"])
