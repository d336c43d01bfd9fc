"""Credentials sealed at rest: they open only with the same master key, in the same tenant
schema, on the same connection row, and unaltered."""

from __future__ import annotations

import os

import pytest

from appliance import secrets
from appliance.errors import FatalError
from appliance.keys import MasterKey

KEY = MasterKey(bytes(range(32)))
CREDENTIALS = {"email": "bot@example.com", "api_token": "s3cr3t-token-value"}


def sealed(**where) -> bytes:
    return secrets.encrypt(KEY, CREDENTIALS, **({"schema": "t_acme", "connection_id": 7} | where))


def test_round_trip_and_no_plaintext_in_the_ciphertext():
    blob = sealed()
    assert secrets.decrypt(KEY, blob, schema="t_acme", connection_id=7) == CREDENTIALS
    assert blob[0] == secrets.VERSION
    assert b"s3cr3t" not in blob and b"bot@example.com" not in blob
    # A fresh nonce every time: sealing twice never gives the same bytes.
    assert sealed() != blob


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_a_tampered_byte_does_not_decrypt(position):
    blob = bytearray(sealed())
    blob[position] ^= 0x01
    with pytest.raises(secrets.SecretUnreadable) as caught:
        secrets.decrypt(KEY, bytes(blob), schema="t_acme", connection_id=7)
    assert isinstance(caught.value, FatalError)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("schema, connection_id", [("t_globex", 7), ("t_acme", 8), ("t_acme7", 0)])
def test_a_row_copied_to_another_tenant_or_connection_does_not_decrypt(schema, connection_id):
    with pytest.raises(secrets.SecretUnreadable, match="enter it again"):
        secrets.decrypt(KEY, sealed(), schema=schema, connection_id=connection_id)


def test_another_master_key_does_not_decrypt():
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(MasterKey(os.urandom(32)), sealed(), schema="t_acme", connection_id=7)


@pytest.mark.parametrize("blob", [None, b"", b"\x01short", b"\x02" + bytes(40)])
def test_missing_truncated_or_unknown_versions_are_refused(blob):
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(KEY, blob, schema="t_acme", connection_id=7)


def test_unserialisable_credentials_are_refused_without_echoing_them():
    with pytest.raises(secrets.SecretError) as caught:
        secrets.encrypt(KEY, {"token": object()}, schema="t_acme", connection_id=1)
    assert "object at" not in str(caught.value)
