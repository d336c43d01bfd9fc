import base64
import hashlib
import hmac

import pytest

from appliance import scram

# RFC 7677 section 3: user "user", password "pencil".
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
AUTH_MESSAGE = ("n=user,r=rOprNGfwEbeRWgbNEkqO,"
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").encode()
CLIENT_PROOF = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_SIGNATURE = base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def test_keys_match_rfc7677_exchange():
    stored_key, server_key = scram.keys("pencil", SALT, 4096)
    # The server checks the proof with StoredKey and signs with ServerKey (RFC 5802 section 3).
    assert hmac.new(server_key, AUTH_MESSAGE, hashlib.sha256).digest() == SERVER_SIGNATURE
    client_signature = hmac.new(stored_key, AUTH_MESSAGE, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(CLIENT_PROOF, client_signature))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_verifier_format_and_fresh_salt():
    text = scram.verifier("pencil", salt=SALT)
    assert text.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")
    assert scram.sql_literal(text) == f"'{text}'"
    assert scram.verifier("pencil") != scram.verifier("pencil")  # random salt


@pytest.mark.parametrize("text", ["pencil", "SCRAM-SHA-256$4096:abc$def:gh'i", "md5abc"])
def test_only_verifiers_become_literals(text):
    with pytest.raises(ValueError):
        scram.sql_literal(text)


def test_non_ascii_password_refused():
    with pytest.raises(ValueError):
        scram.verifier("pässword")
