"""SCRAM-SHA-256 password verifiers for PostgreSQL roles, computed on our side.

`CREATE ROLE ... PASSWORD '<verifier>'` stores a verifier as it is, so the
plaintext password never travels to the server and never appears in its logs
(log_statement = 'ddl' would print a plaintext PASSWORD clause). The format is
PostgreSQL's: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (all
base64), with the keys of RFC 5802 / RFC 7677.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

ITERATIONS = 4096  # PostgreSQL's default (scram_iterations) and RFC 7677's minimum
SALT_BYTES = 16

_B64 = r"[A-Za-z0-9+/]+={0,2}"
# What a verifier we produce looks like; checked before it is written into SQL.
VERIFIER = re.compile(rf"^SCRAM-SHA-256\$[0-9]+:{_B64}\${_B64}:{_B64}$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def keys(password: str, salt: bytes, iterations: int = ITERATIONS) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) for `password` (RFC 5802 section 3).

    Only ASCII passwords: PostgreSQL applies SASLprep, which leaves ASCII as it
    is; Tandem's role passwords are URL-safe base64, so nothing else is needed.
    Raises ValueError for anything else rather than compute a verifier that
    would not match.
    """
    if not password.isascii():
        raise ValueError("SCRAM verifiers are computed for ASCII passwords only")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def verifier(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The verifier PostgreSQL stores in pg_authid.rolpassword for `password`.

    A random 16-byte salt unless one is given (tests pass a fixed one).
    """
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    stored_key, server_key = keys(password, salt, iterations)
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def sql_literal(verifier_text: str) -> str:
    """`verifier_text` as an SQL string literal for CREATE/ALTER ROLE ... PASSWORD.

    Utility statements take no bind parameters, so this is the one value written
    into SQL text; it is accepted only in the exact shape `verifier()` produces
    (base64, '$' and ':'), which contains no quote or backslash.
    """
    if not VERIFIER.match(verifier_text):
        raise ValueError("not a SCRAM-SHA-256 verifier")
    return f"'{verifier_text}'"
