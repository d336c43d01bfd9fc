"""Security headers on every response the app makes, whoever made it (a handler, the
host router's 404, the error middleware's 500, aiohttp's 405 and 413, the probes'
503), a fresh CSP nonce per request, `Cache-Control: no-store` on the API, and the
request size limit as a JSON 413."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from appliance.config import load_config
from appliance.web.app import create_app
from appliance.web.keys import CSP_NONCE
from tests.harness import write_config

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CSP = re.compile(r"^default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'; "
                 r"object-src 'none'; script-src 'self' 'nonce-([A-Za-z0-9_-]{22})'; "
                 r"style-src 'self' 'nonce-([A-Za-z0-9_-]{22})'$")
CONSOLE = {"Host": "tandem.test"}


@pytest.fixture
def offline_config(cluster_name, data_dir, monkeypatch):
    """No database (the headers must not depend on one) and a 1 MB body limit."""
    monkeypatch.setenv("TANDEM_HTTP__MAX_BODY_MB", "1")
    nowhere = data_dir / "no-server-here"
    nowhere.mkdir()
    return load_config(write_config(data_dir / "tandem.toml", cluster_name=cluster_name, data_dir=data_dir,
                                    dsn=f"postgresql://tandem@/tandem?host={nowhere}&port=5432"))


@pytest.fixture
async def client(aiohttp_client, offline_config, key):
    app = create_app(offline_config, key)

    async def page(request):
        return web.json_response({"nonce": request[CSP_NONCE]})

    async def broken(request):
        raise RuntimeError("boom")

    async def upload(request):
        return web.json_response({"size": len(await request.read())})

    async def stream(request):
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"chunk")
        return response

    async def framed(request):
        # A handler's own value wins over the default.
        return web.Response(text="x", headers={"Referrer-Policy": "no-referrer"})

    app.router.add_get("/test/page", page)
    app.router.add_get("/test/broken", broken)
    app.router.add_post("/test/upload", upload)
    app.router.add_get("/test/stream", stream)
    app.router.add_get("/test/framed", framed)
    app.router.add_get("/api/v1/test/thing", page)
    return await aiohttp_client(app)


def assert_secure(response) -> str:
    """Every expected header is there; returns the CSP nonce."""
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))
    assert "camera=()" in response.headers["Permissions-Policy"]
    match = CSP.match(response.headers["Content-Security-Policy"])
    assert match, response.headers["Content-Security-Policy"]
    assert match.group(1) == match.group(2)
    return match.group(1)


@pytest.mark.parametrize("method, path, headers, status", [
    ("GET", "/test/page", CONSOLE, 200),
    ("GET", "/-/health", {}, 200),
    ("GET", "/-/ready", {}, 503),                          # no database
    ("GET", "/test/page", {"Host": "x.acme.tandem.test"}, 404),   # the host router's 404
    ("GET", "/test/page", {"Host": "acme.tandem.test"}, 503),     # tenant list unreadable
    ("GET", "/api/no/such/path", CONSOLE, 404),
    ("POST", "/-/health", {}, 405),
    ("GET", "/test/broken", CONSOLE, 500),
    ("GET", "/test/stream", CONSOLE, 200),
    ("GET", "/api/openapi.json", CONSOLE, 200),
])
async def test_every_response_carries_the_security_headers(client, method, path, headers, status):
    response = await client.request(method, path, headers=headers)
    assert response.status == status
    assert_secure(response)


async def test_the_nonce_is_fresh_per_request_and_the_one_the_handler_sees(client):
    nonces = set()
    for _ in range(5):
        response = await client.get("/test/page", headers=CONSOLE)
        nonce = assert_secure(response)
        assert (await response.json())["nonce"] == nonce
        nonces.add(nonce)
    assert len(nonces) == 5


async def test_api_responses_are_not_stored(client):
    ok = await client.get("/api/v1/test/thing", headers=CONSOLE)
    missing = await client.get("/api/v1/no/such/thing", headers=CONSOLE)
    assert ok.status == 200 and missing.status == 404
    assert ok.headers["Cache-Control"] == missing.headers["Cache-Control"] == "no-store"
    # Outside the API the browser may cache (the panel's hashed assets will rely on it).
    assert "Cache-Control" not in (await client.get("/test/page", headers=CONSOLE)).headers


async def test_a_handler_may_set_its_own_value(client):
    response = await client.get("/test/framed", headers=CONSOLE)
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_body_over_the_limit_is_a_json_413_with_the_headers(client):
    small = await client.post("/test/upload", data=b"x" * 1000, headers=CONSOLE)
    assert await small.json() == {"size": 1000}
    response = await client.post("/test/upload", data=b"x" * (1024 * 1024 + 1), headers=CONSOLE)
    assert response.status == 413
    body = await response.json()
    assert body["error"]["code"] == "payload_too_large"
    assert "1 MB" in body["error"]["message"]
    assert_secure(response)


async def test_error_bodies_carry_no_internals(client):
    response = await client.get("/test/broken", headers=CONSOLE)
    text = await response.text()
    assert response.status == 500
    assert "boom" not in text and "Traceback" not in text and "RuntimeError" not in text
