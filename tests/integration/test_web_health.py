"""The web app's probes, its JSON errors, and the plain-HTTP redirect listener,
over real HTTP on loopback against a real PostgreSQL (or none at all)."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import pytest
from aiohttp import web

from appliance import migrator
from appliance.config import load_config
from appliance.keys import MasterKey
from appliance.web.app import create_app
from appliance.web.redirect import create_redirect_app
from tests.harness import write_config


@pytest.fixture
def offline_config(cluster_name, data_dir):
    """A config whose database is a socket directory where no server runs."""
    nowhere = data_dir / "no-server-here"
    nowhere.mkdir()
    dsn = f"postgresql://tandem@/tandem?host={nowhere}&port=5432"
    return load_config(write_config(data_dir / "tandem.toml", dsn=dsn, cluster_name=cluster_name,
                                    data_dir=data_dir))


@pytest.fixture
def offline_key():
    return MasterKey(os.urandom(32))


async def eventually(probe, timeout: float = 10.0, interval: float = 0.1):
    """Await `probe()` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s (last: {last!r})")


async def ready_state(client) -> tuple[int, dict]:
    response = await client.get("/-/ready")
    return response.status, await response.json()


async def test_health_is_ok_without_a_database(aiohttp_client, offline_config, offline_key):
    client = await aiohttp_client(create_app(offline_config, offline_key))
    response = await client.get("/-/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_ready_is_503_while_the_database_is_unreachable(aiohttp_client, offline_config, offline_key):
    client = await aiohttp_client(create_app(offline_config, offline_key))
    status, body = await ready_state(client)
    assert status == 503
    assert body == {"status": "unavailable", "reason": "database unreachable"}
    # The liveness probe stays green meanwhile: the process is fine, do not restart it.
    assert (await client.get("/-/health")).status == 200


async def test_ready_follows_migrations(aiohttp_client, config, key):
    client = await aiohttp_client(create_app(config, key))

    async def pending():
        status, body = await ready_state(client)
        return (status, body) if body.get("reason") != "database unreachable" else None

    # A fresh, reachable database: everything is pending, and the reason says what to run.
    status, body = await eventually(pending)
    assert status == 503
    assert body["status"] == "unavailable"
    assert "pending" in body["reason"] and "tandem migrate" in body["reason"]

    await migrator.migrate(config, key)

    async def ready():
        status, body = await ready_state(client)
        return (status, body) if status == 200 else None

    assert await eventually(ready, timeout=5) == (200, {"status": "ready"})


async def test_ready_checks_the_database_at_most_once_a_second(aiohttp_client, config, key, monkeypatch):
    await migrator.migrate(config, key)
    checks = []
    real_status = migrator.status

    async def counted_status(conn):
        checks.append(time.monotonic())
        return await real_status(conn)
    monkeypatch.setattr(migrator, "status", counted_status)
    client = await aiohttp_client(create_app(config, key))

    async def ready():
        return (await client.get("/-/ready")).status == 200
    await eventually(ready)
    checks.clear()
    statuses = await asyncio.gather(*(client.get("/-/ready") for _ in range(50)))
    assert [r.status for r in statuses] == [200] * 50
    assert len(checks) <= 1
    await asyncio.sleep(1.1)
    checks.clear()
    assert (await client.get("/-/ready")).status == 200
    assert len(checks) == 1


async def test_unknown_path_is_a_json_404(aiohttp_client, offline_config, offline_key):
    client = await aiohttp_client(create_app(offline_config, offline_key))
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["message"]
    assert body["error"]["details"] == {}


async def test_wrong_method_is_a_json_405_naming_the_allowed_ones(aiohttp_client, offline_config, offline_key):
    client = await aiohttp_client(create_app(offline_config, offline_key))
    response = await client.post("/-/health")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    body = await response.json()
    assert body["error"]["code"] == "method_not_allowed"
    assert "GET" in body["error"]["details"]["allowed"]


async def test_internal_error_is_a_json_500_without_the_traceback(aiohttp_client, offline_config, offline_key,
                                                                  caplog):
    app = create_app(offline_config, offline_key)

    async def broken(request):
        raise RuntimeError("secret internal detail")
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="appliance.web.app"):
        # The console's host: the host router answers 404 for any other.
        response = await client.get("/broken", headers={"Host": "tandem.test"})
    assert response.status == 500
    text = await response.text()
    assert "secret internal detail" not in text and "Traceback" not in text
    body = await response.json()
    assert body["error"]["code"] == "internal_error"
    # The administrator finds the details in the log.
    assert any("secret internal detail" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_body_over_the_limit_is_a_json_413(aiohttp_client, cluster_name, data_dir, offline_key,
                                                 monkeypatch):
    monkeypatch.setenv("TANDEM_HTTP__MAX_BODY_MB", "1")
    config = load_config(write_config(data_dir / "tandem.toml", cluster_name=cluster_name, data_dir=data_dir,
                                      dsn=f"postgresql://tandem@/tandem?host={data_dir}&port=5432"))
    app = create_app(config, offline_key)

    async def upload(request):
        return web.json_response({"size": len(await request.read())})
    app.router.add_post("/upload", upload)
    client = await aiohttp_client(app)
    console = {"Host": "tandem.test"}  # the host router answers 404 for any other host
    small = await client.post("/upload", data=b"x" * 1000, headers=console)
    assert await small.json() == {"size": 1000}
    response = await client.post("/upload", data=b"x" * (1024 * 1024 + 1), headers=console)
    assert response.status == 413
    body = await response.json()
    assert body["error"]["code"] == "payload_too_large"
    assert "1 MB" in body["error"]["message"]


# ------------------------------------------------------------------ redirect listener

@pytest.mark.parametrize("host, path, location", [
    ("acme.tandem.test", "/", "https://acme.tandem.test:{port}/"),
    ("acme.tandem.test", "/api/v1/items?state=open&q=a%20b",
     "https://acme.tandem.test:{port}/api/v1/items?state=open&q=a%20b"),
    ("ACME.Tandem.Test.:80", "/login", "https://acme.tandem.test:{port}/login"),
    ("tandem.test", "/console", "https://tandem.test:{port}/console"),
])
async def test_redirect_goes_to_https_on_the_same_host(aiohttp_client, offline_config, host, path, location):
    client = await aiohttp_client(create_redirect_app(offline_config))
    port = offline_config.http.listen_addresses()[0][1]
    for method in ("GET", "POST"):
        response = await client.request(method, path, headers={"Host": host}, allow_redirects=False)
        assert response.status == 308
        assert response.headers["Location"] == location.format(port=port)


async def test_redirect_leaves_out_port_443(aiohttp_client, cluster_name, data_dir):
    config = load_config(write_config(data_dir / "tandem.toml", cluster_name=cluster_name, data_dir=data_dir,
                                      listen=["0.0.0.0:443"], dsn=f"postgresql://x@/y?host={data_dir}"))
    client = await aiohttp_client(create_redirect_app(config))
    response = await client.get("/a?b=c", headers={"Host": "acme.tandem.test"}, allow_redirects=False)
    assert response.status == 308
    assert response.headers["Location"] == "https://acme.tandem.test/a?b=c"


@pytest.mark.parametrize("host", [
    "evil.example", "tandem.test.evil.example", "eviltandem.test", "127.0.0.1", "[::1]:80",
    "acme..tandem.test", "acme.tandem.test:http", "-x.tandem.test", "",
])
async def test_redirect_refuses_foreign_hosts(aiohttp_client, offline_config, host):
    client = await aiohttp_client(create_redirect_app(offline_config))
    response = await client.get("/x", headers={"Host": host}, allow_redirects=False)
    assert response.status == 400
    assert "Location" not in response.headers
    body = await response.json()
    assert body["error"]["code"] == "bad_request"
    assert "tandem.test" in body["error"]["message"]
