"""Connection credentials, encrypted at rest.

A credential (a JSON object such as {"token": "..."} or {"email": ..., "api_token": ...}) is
stored in `connections.credentials` as

    version (1 byte, VERSION) || nonce (12 random bytes) || AES-256-GCM ciphertext + 16-byte tag

with the key `MasterKey.derive("secrets:v1")` and associated data naming the version, the
tenant schema and the connection id. The associated data is not stored: it is what the row
must *be* to decrypt, so a ciphertext copied into another tenant's schema or onto another
connection row fails to decrypt instead of lending its credential to the wrong place.

Callers: the web tier (appliance.web.endpoints.connections) encrypts on create and rotation;
appliance.sync.connections decrypts when it builds a connector. Neither logs a plaintext; the
errors here never carry one either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.errors import FatalError
from appliance.keys import MasterKey

VERSION = 1
PURPOSE = "secrets:v1"
NONCE_BYTES = 12
TAG_BYTES = 16


class SecretError(FatalError):
    """A credential cannot be sealed or opened; the message never contains the secret."""


class SecretUnreadable(SecretError):
    """The stored ciphertext does not open: tampered with, copied from another tenant or
    connection, or sealed under another master key. The admin must enter the credential again."""


def _cipher(key: MasterKey) -> AESGCM:
    return AESGCM(key.derive(PURPOSE))


def associated_data(schema: str, connection_id: int) -> bytes:
    """What a ciphertext is bound to: format version, tenant schema, connection id."""
    if not schema or "\x00" in schema:
        raise SecretError("a credential is bound to a tenant schema; none was given")
    return b"tandem:connection-credentials\x00%d\x00%s\x00%d" % (VERSION, schema.encode(), int(connection_id))


def encrypt(key: MasterKey, credentials: Mapping[str, Any], *, schema: str, connection_id: int) -> bytes:
    """Seal `credentials` (JSON-serialisable mapping) for connection `connection_id` of the
    tenant whose schema is `schema`. Raises SecretError if they are not JSON-serialisable."""
    try:
        plaintext = json.dumps(dict(credentials), separators=(",", ":"), sort_keys=True).encode()
    except (TypeError, ValueError):
        raise SecretError("credentials must be a JSON object of plain values") from None
    nonce = os.urandom(NONCE_BYTES)
    sealed = _cipher(key).encrypt(nonce, plaintext, associated_data(schema, connection_id))
    return bytes([VERSION]) + nonce + sealed


def decrypt(key: MasterKey, blob: bytes | None, *, schema: str, connection_id: int) -> dict[str, Any]:
    """Open what `encrypt` sealed for the same schema and connection id. Raises
    SecretUnreadable for anything that does not open (or is missing, or of an unknown version)."""
    if not blob:
        raise SecretUnreadable(f"connection {connection_id} has no stored credential; enter it again")
    blob = bytes(blob)
    if blob[0] != VERSION:
        raise SecretUnreadable(f"connection {connection_id}: credential format version {blob[0]} is not "
                               f"known to this version of Tandem")
    if len(blob) < 1 + NONCE_BYTES + TAG_BYTES:
        raise SecretUnreadable(f"connection {connection_id}: the stored credential is truncated; enter it again")
    nonce, sealed = blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:]
    try:
        plaintext = _cipher(key).decrypt(nonce, sealed, associated_data(schema, connection_id))
    except InvalidTag:
        raise SecretUnreadable(f"connection {connection_id}: the stored credential does not decrypt here "
                               "(altered, copied from elsewhere, or sealed with another master key); "
                               "enter it again") from None
    value = json.loads(plaintext)
    if not isinstance(value, dict):
        raise SecretUnreadable(f"connection {connection_id}: the stored credential is not an object")
    return value
