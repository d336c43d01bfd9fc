"""Server-side sign-in sessions, in the `sessions` table of the request's realm.

The browser holds a random token in a cookie; the table holds only its sha256
(`id`), so a copy of the table signs nobody in. A session ends at the first of:
`expires_at` (absolute, `auth.session_absolute_hours` after sign-in), no use for
`auth.session_idle_minutes` (by `last_seen_at`), `revoked_at` (sign-out, password
change or reset, user disabled), the user being disabled or deleted.

Every function takes a connection inside a transaction already confined to one
realm (appliance.scope), and uses unqualified table names: the same code serves
the console (schema `tandem`) and every tenant.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

TOKEN_BYTES = 32
# last_seen_at is written at most this often per session (cheap requests), and at
# least twice per idle period, so a session in use never looks idle.
TOUCH_EVERY = timedelta(minutes=1)
# Ended sessions are deleted this long after they ended (at the user's next sign-in).
KEEP_ENDED = timedelta(days=1)


def session_id(token: str) -> str:
    """The stored id of the cookie token `token`."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class NewSession:
    """A session just created; `token` goes into the cookie and is never stored."""

    id: str
    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class ActiveSession:
    id: str
    csrf_token: str
    expires_at: datetime
    user_id: int
    email: str
    role: str
    display_name: str


async def create(conn: asyncpg.Connection, user_id: int, *, absolute: timedelta, client_addr: str | None,
                 user_agent: str = "") -> NewSession:
    """Start a session for `user_id` lasting at most `absolute`; also deletes the user's
    sessions that ended more than KEEP_ENDED ago."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf_token = secrets.token_urlsafe(TOKEN_BYTES)
    await conn.execute(
        "DELETE FROM sessions WHERE user_id = $1 AND (coalesce(revoked_at, expires_at) < now() - $2::interval)",
        user_id, KEEP_ENDED)
    row = await conn.fetchrow(
        "INSERT INTO sessions (id, user_id, csrf_token, expires_at, client_addr, user_agent) "
        "VALUES ($1, $2, $3, now() + $4::interval, $5::inet, $6) RETURNING id, expires_at",
        session_id(token), user_id, csrf_token, absolute, client_addr, user_agent[:300])
    return NewSession(row["id"], token, csrf_token, row["expires_at"])


async def lookup(conn: asyncpg.Connection, token: str, *, idle: timedelta) -> ActiveSession | None:
    """The live session whose cookie token is `token`, or None (unknown, revoked,
    idle for `idle`, past its absolute end, user disabled). Marks it used, at most
    once per min(TOUCH_EVERY, idle / 2)."""
    row = await conn.fetchrow(
        "SELECT s.id, s.csrf_token, s.expires_at, s.last_seen_at < now() - $3::interval AS stale, "
        "       u.id AS user_id, u.email, u.role, u.display_name "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() "
        "  AND s.last_seen_at > now() - $2::interval AND u.disabled_at IS NULL",
        session_id(token), idle, min(TOUCH_EVERY, idle / 2))
    if row is None:
        return None
    if row["stale"]:
        await conn.execute("UPDATE sessions SET last_seen_at = now() WHERE id = $1", row["id"])
    return ActiveSession(row["id"], row["csrf_token"], row["expires_at"], row["user_id"], row["email"],
                         row["role"], row["display_name"])


async def revoke(conn: asyncpg.Connection, sid: str) -> bool:
    """End one session (sign-out); True when it was live."""
    done = await conn.execute("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", sid)
    return done != "UPDATE 0"


async def revoke_for_user(conn: asyncpg.Connection, user_id: int, *, keep: str | None = None) -> int:
    """End every live session of `user_id` except `keep`; returns how many ended."""
    done = await conn.execute(
        "UPDATE sessions SET revoked_at = now() "
        "WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() AND id IS DISTINCT FROM $2",
        user_id, keep)
    return int(done.split()[-1])
