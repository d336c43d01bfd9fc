"""Accounts: tenant users and cluster admins, the password policy and hashing.

Both realms keep the same `users` table (the console's in schema `tandem`, each
tenant's in its own schema), so one code path serves both: every function below
except the `*_cluster_admin*` wrappers takes a connection inside a transaction
already confined to one realm (appliance.scope.tenant_transaction or
console_transaction) and uses unqualified table names. Changes are audited in the
same transaction (appliance.audit.log_event), so a change and its audit row are
committed together. In the console every user is an admin (the table says so).

Passwords are hashed with argon2id (argon2-cffi) with explicit parameters, so a
library upgrade never silently changes them; `needs_rehash` tells the login code
when a stored hash is weaker than the current parameters. Hashing takes tens of
milliseconds of CPU on purpose: async code uses the *_async variants, which run it
in the default executor.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from appliance import audit, scope, sessions
from appliance.errors import AlreadyExists, FatalError, NotFound

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 12
ROLES = ("viewer", "editor", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
# RFC 9106's second recommended option (64 MiB, 3 passes), 4 lanes.
HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16,
                        type=Type.ID)

# The most common passwords long enough to pass the length rule (breach lists),
# compared case-insensitively.
COMMON_PASSWORDS = frozenset({
    "123456789012", "1234567890123", "12345678901234", "123456123456", "123123123123", "1q2w3e4r5t6y",
    "1qaz2wsx3edc", "abcdefghijkl", "abc123abc123", "password1234", "password12345", "password123!",
    "passwordpassword", "qwertyuiop12", "qwertyuiopasdf", "qwertyuiopasdfghjkl", "qwerty123456",
    "iloveyou1234", "administrator", "administrator1", "letmein12345", "welcome12345", "changeme1234",
    "trustno1trustno1", "zaq12wsxcde3", "q1w2e3r4t5y6", "asdfghjkl123", "monkey123456", "football1234",
    "baseball1234", "superman1234", "starwars1234", "princess1234", "sunshine1234", "dragon123456",
    "1234567890", "123456789", "12345678", "password", "password1", "password123", "qwertyuiop",
    "iloveyou", "sunshine", "princess", "football", "baseball", "welcome1", "letmein1", "trustno1",
    "11111111", "00000000", "1qaz2wsx", "qwerty123", "abc12345", "passw0rd", "p@ssw0rd", "p@ssword",
    "superman", "starwars", "whatever", "michael1", "computer", "internet", "changeme", "welcome123",
    "password!", "p@ssw0rd123", "qazwsxedc", "zaq1zaq1", "asdfghjkl", "qwerty12345", "1q2w3e4r",
})
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_USER_COLUMNS = ("id, email, role, display_name, disabled_at, locked_until, failed_logins, last_login_at, "
                 "password_changed_at, created_at, updated_at")


class PasswordRejected(FatalError):
    """The password breaks the policy; the message says which rule."""


class InvalidEmail(FatalError):
    pass


class InvalidRole(FatalError):
    pass


class LastAdmin(FatalError):
    """The change would leave the realm without an active admin (HTTP 409)."""


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    display_name: str
    disabled_at: datetime | None
    locked_until: datetime | None
    failed_logins: int
    last_login_at: datetime | None
    password_changed_at: datetime
    created_at: datetime
    updated_at: datetime

    @property
    def locked(self) -> bool:
        """Locked out after too many failed sign-ins, as of the last attempt."""
        return self.locked_until is not None and self.locked_until > datetime.now(timezone.utc)


def _user(row: asyncpg.Record) -> User:
    return User(**dict(row))


# --- rules and hashing ---------------------------------------------------------------------------

def normalise_email(email: str) -> str:
    """`email` stripped; raises InvalidEmail unless it looks like local@domain.tld."""
    email = (email or "").strip()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidEmail(f"{email[:80]!r} is not an e-mail address (like name@example.com)")
    return email


def check_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise InvalidRole(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def check_password(password: str, email: str = "", min_length: int = MIN_PASSWORD_LENGTH) -> None:
    """Raise PasswordRejected saying why `password` is not acceptable for `email`.
    `min_length` is the config's auth.password_min_length."""
    if len(password) < min_length:
        raise PasswordRejected(f"the password is too short: at least {min_length} characters")
    if len(password) > 1024:
        raise PasswordRejected("the password is too long: at most 1024 characters")
    lowered = password.lower()
    if email:
        address = email.strip().lower()
        if lowered in (address, address.partition("@")[0]):
            raise PasswordRejected("the password must not be the e-mail address or its part before the @")
    if len(set(password)) == 1:
        raise PasswordRejected("the password must not be one character repeated")
    if lowered in COMMON_PASSWORDS:
        raise PasswordRejected("the password is one of the most common passwords; choose another")


def generate_password(min_length: int = MIN_PASSWORD_LENGTH) -> str:
    """A random password that passes the policy: at least 20 characters (>= 120 bits)."""
    length = max(20, min_length)
    return secrets.token_urlsafe(math.ceil(length * 3 / 4))[:length]


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches; False for a mismatch or a malformed hash."""
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than HASHER's: rehash at next login."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, hash_password, password)


async def verify_password_async(password_hash: str, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, verify_password, password_hash, password)


# --- users of the connection's realm -------------------------------------------------------------

async def create_user(conn: asyncpg.Connection, email: str, password: str, role: str, *, actor: str,
                      min_length: int = MIN_PASSWORD_LENGTH, display_name: str = "",
                      client_addr: str | None = None) -> User:
    """Create a user of the realm; e-mail addresses are unique ignoring case.

    Raises InvalidEmail, InvalidRole, PasswordRejected, AlreadyExists; the
    caller's transaction stays usable after each.
    """
    email = normalise_email(email)
    check_role(role)
    check_password(password, email, min_length)
    if await conn.fetchval("SELECT 1 FROM users WHERE lower(email) = lower($1)", email):
        raise AlreadyExists(f"a user {email} already exists")
    password_hash = await hash_password_async(password)
    try:
        async with conn.transaction():  # a savepoint: a lost race leaves the caller's transaction usable
            row = await conn.fetchrow(
                f"INSERT INTO users (email, password_hash, role, display_name) VALUES ($1, $2, $3, $4) "
                f"RETURNING {_USER_COLUMNS}", email, password_hash, role, display_name.strip())
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"a user {email} already exists") from None
    await audit.log_event(conn, actor, "user.create", email, {"role": role}, client_addr)
    log.info("created user %s (%s) by %s", email, role, actor)
    return _user(row)


async def list_users(conn: asyncpg.Connection, *, limit: int | None = None,
                     after: tuple[str, int] | None = None, role: str | None = None) -> list[User]:
    """Users (only those with `role`, if given) by e-mail address ignoring case, then
    id; `after` = (email, id) of the last row of the previous page."""
    email, last_id = after if after is not None else (None, None)
    rows = await conn.fetch(
        f"SELECT {_USER_COLUMNS} FROM users "
        "WHERE ($1::text IS NULL OR (lower(email), id) > (lower($1), $2::bigint)) "
        "  AND ($4::text IS NULL OR role = $4) "
        "ORDER BY lower(email), id LIMIT $3", email, last_id, limit, role)
    return [_user(r) for r in rows]


async def get_user(conn: asyncpg.Connection, user_id: int) -> User:
    """Raises NotFound."""
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
    if row is None:
        raise NotFound(f"no user {user_id}")
    return _user(row)


async def find_user(conn: asyncpg.Connection, email: str) -> User:
    """The user with this e-mail address (ignoring case); raises NotFound."""
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = lower($1)",
                              (email or "").strip())
    if row is None:
        raise NotFound(f"no user {email.strip()}")
    return _user(row)


async def _lock_user(conn: asyncpg.Connection, user_id: int) -> User:
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE", user_id)
    if row is None:
        raise NotFound(f"no user {user_id}")
    return _user(row)


async def _keep_an_admin(conn: asyncpg.Connection, user: User, doing: str) -> None:
    """Raise LastAdmin when `user` is the realm's only active admin."""
    if user.role != "admin" or user.disabled_at is not None:
        return
    # Locks every active admin row (in id order), so two admins demoting each other
    # at once cannot both succeed.
    admins = await conn.fetch("SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL "
                              "ORDER BY id FOR UPDATE")
    if not any(r["id"] != user.id for r in admins):
        raise LastAdmin(f"cannot {doing} {user.email}: the only active admin; make another user admin first")


async def update_user(conn: asyncpg.Connection, user_id: int, *, actor: str, role: str | None = None,
                      display_name: str | None = None, disabled: bool | None = None,
                      client_addr: str | None = None) -> User:
    """Change a user's role, display name or disabled state (None: unchanged).

    Disabling ends the user's sessions at once (tokens stop working while the user
    is disabled). Raises NotFound, InvalidRole, LastAdmin (demoting or disabling the
    last active admin).
    """
    user = await _lock_user(conn, user_id)
    if role is not None and role != user.role:
        check_role(role)
        await _keep_an_admin(conn, user, f"make {role}")
        await conn.execute("UPDATE users SET role = $2, updated_at = now() WHERE id = $1", user_id, role)
        await audit.log_event(conn, actor, "user.role_change", user.email, {"from": user.role, "to": role},
                              client_addr)
    if display_name is not None and display_name.strip() != user.display_name:
        await conn.execute("UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1",
                           user_id, display_name.strip())
        await audit.log_event(conn, actor, "user.update", user.email,
                              {"display_name": display_name.strip()}, client_addr)
    if disabled is not None and disabled != (user.disabled_at is not None):
        if disabled:
            await _keep_an_admin(conn, user, "disable")
            await conn.execute("UPDATE users SET disabled_at = now(), updated_at = now() WHERE id = $1", user_id)
            ended = await sessions.revoke_for_user(conn, user_id)
            await audit.log_event(conn, actor, "user.disable", user.email, {"sessions_ended": ended}, client_addr)
        else:
            await conn.execute("UPDATE users SET disabled_at = NULL, updated_at = now() WHERE id = $1", user_id)
            await audit.log_event(conn, actor, "user.enable", user.email, {}, client_addr)
    return await get_user(conn, user_id)


async def delete_user(conn: asyncpg.Connection, user_id: int, *, actor: str, client_addr: str | None = None) -> User:
    """Delete a user with its sessions and tokens; returns what it was.
    Raises NotFound, LastAdmin."""
    user = await _lock_user(conn, user_id)
    await _keep_an_admin(conn, user, "delete")
    await conn.execute("DELETE FROM users WHERE id = $1", user_id)
    await audit.log_event(conn, actor, "user.delete", user.email, {"role": user.role}, client_addr)
    return user


async def reset_password(conn: asyncpg.Connection, user_id: int, password: str | None = None, *, actor: str,
                         min_length: int = MIN_PASSWORD_LENGTH, client_addr: str | None = None) -> str | None:
    """An admin sets a user's password (`password`, or a generated one, which is
    returned: show it once). Ends all the user's sessions and lifts a lock-out
    (the failures were against the old password). Raises NotFound, PasswordRejected."""
    user = await _lock_user(conn, user_id)
    generated = password is None
    password = generate_password(min_length) if generated else password
    check_password(password, user.email, min_length)
    await _store_password(conn, user.id, await hash_password_async(password))
    ended = await sessions.revoke_for_user(conn, user.id)
    await _lift_lock(conn, user)
    await audit.log_event(conn, actor, "user.password_reset", user.email,
                          {"generated": generated, "sessions_ended": ended}, client_addr)
    return password if generated else None


async def change_password(conn: asyncpg.Connection, user_id: int, new_password: str, *, keep_session: str | None,
                          min_length: int = MIN_PASSWORD_LENGTH, client_addr: str | None = None) -> None:
    """A user changes their own password (the caller has checked the current one).
    Ends the user's other sessions; `keep_session` (the one asking) stays.
    Raises NotFound, PasswordRejected."""
    user = await _lock_user(conn, user_id)
    check_password(new_password, user.email, min_length)
    current_hash = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
    if await verify_password_async(current_hash, new_password):
        raise PasswordRejected("the new password must differ from the current one")
    await _store_password(conn, user.id, await hash_password_async(new_password))
    ended = await sessions.revoke_for_user(conn, user.id, keep=keep_session)
    await audit.log_event(conn, user.email, "user.password_change", user.email, {"sessions_ended": ended},
                          client_addr)


async def _store_password(conn: asyncpg.Connection, user_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() "
                       "WHERE id = $1", user_id, password_hash)


async def unlock_user(conn: asyncpg.Connection, user_id: int, *, actor: str, client_addr: str | None = None) -> User:
    """Lift a lock-out: the failed sign-ins so far no longer count. Raises NotFound."""
    user = await _lock_user(conn, user_id)
    await _lift_lock(conn, user)
    await audit.log_event(conn, actor, "user.unlock", user.email,
                          {"was_locked": user.locked, "failed_logins": user.failed_logins}, client_addr)
    return await get_user(conn, user_id)


async def _lift_lock(conn: asyncpg.Connection, user: User) -> None:
    # appliance.auth counts failures since the last success or unlock in login_attempts.
    await conn.execute("INSERT INTO login_attempts (email, outcome) VALUES ($1, 'unlock')", user.email.lower())
    await conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1", user.id)


# --- the console's admins, from a plain control-login connection ---------------------------------

async def create_cluster_admin(conn: asyncpg.Connection, email: str, password: str, actor: str,
                               min_length: int = MIN_PASSWORD_LENGTH) -> int:
    """Create a cluster admin from a control-login connection outside a transaction;
    returns its id. Raises InvalidEmail, PasswordRejected, AlreadyExists."""
    async with scope.console_transaction(conn):
        user = await create_user(conn, email, password, "admin", actor=actor, min_length=min_length)
    return user.id


async def list_cluster_admins(conn: asyncpg.Connection) -> list[User]:
    """Every cluster admin by e-mail address, from a control-login connection."""
    async with scope.console_transaction(conn):
        return await list_users(conn)
