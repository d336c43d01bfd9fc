"""Cluster admins (the people who manage tenants in the cluster console) and the
password rules and hashing every Tandem account uses.

Passwords are hashed with argon2id (argon2-cffi) with explicit parameters, so a
library upgrade never silently changes them; `needs_rehash` tells the login code
when a stored hash is weaker than the current parameters. Hashing takes tens of
milliseconds of CPU on purpose: web code calls verify_password in an executor.
"""

from __future__ import annotations

import logging
import re

import asyncpg
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from appliance import audit
from appliance.errors import AlreadyExists, FatalError

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 12
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
})
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


class PasswordRejected(FatalError):
    """The password breaks the policy; the message says which rule."""


class InvalidEmail(FatalError):
    pass


def normalise_email(email: str) -> str:
    """`email` stripped; raises InvalidEmail unless it looks like local@domain.tld."""
    email = (email or "").strip()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidEmail(f"{email[:80]!r} is not an e-mail address (like name@example.com)")
    return email


def check_password(password: str, email: str = "") -> None:
    """Raise PasswordRejected saying why `password` is not acceptable for `email`."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if email:
        address = email.strip().lower()
        if lowered in (address, address.partition("@")[0]):
            raise PasswordRejected("the password must not be the e-mail address or its part before the @")
    if len(set(password)) == 1:
        raise PasswordRejected("the password must not be one character repeated")
    if lowered in COMMON_PASSWORDS:
        raise PasswordRejected("the password is one of the most common passwords; choose another")


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
    return HASHER.check_needs_rehash(password_hash)


async def create_cluster_admin(conn: asyncpg.Connection, email: str, password: str, actor: str) -> int:
    """Create a cluster admin; returns its id. E-mail addresses are unique ignoring case.

    Raises InvalidEmail, PasswordRejected, AlreadyExists.
    """
    email = normalise_email(email)
    check_password(password, email)
    if await conn.fetchval("SELECT 1 FROM tandem.cluster_admins WHERE lower(email) = lower($1)", email):
        raise AlreadyExists(f"cluster admin {email} already exists")
    password_hash = hash_password(password)
    try:
        async with conn.transaction():
            admin_id = await conn.fetchval(
                "INSERT INTO tandem.cluster_admins (email, password_hash) VALUES ($1, $2) RETURNING id",
                email, password_hash)
            await audit.record(conn, actor, "cluster_admin.create", email)
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"cluster admin {email} already exists") from None
    log.info("created cluster admin %s (%s)", email, actor)
    return admin_id


async def list_cluster_admins(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Rows with id, email, created_at, disabled_at, by e-mail address."""
    return await conn.fetch("SELECT id, email, created_at, disabled_at FROM tandem.cluster_admins "
                            "ORDER BY lower(email)")
