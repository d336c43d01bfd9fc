"""Host routing as a client sees it: which Host reaches which realm, the one 404 for
everything that is not a served realm, tenants appearing and disappearing within
seconds, 503 (not 404) while the tenant list cannot be read, and X-Forwarded-*
believed from trusted proxies only.

The app is the real one (create_app: real TenantDirectory, LISTEN/NOTIFY, real
PostgreSQL) plus one test-only route, /test/realm, that says what the router decided.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web

from appliance import db, tenants
from appliance.config import load_config
from appliance.web import realm as realm_module
from appliance.web.app import create_app
from appliance.web.keys import REALM, TENANTS
from appliance.web.router import client_address, forwarded_client, networks
from tests.harness import write_config
from tests.integration.web_setup import prepared_cluster, raw_get

DOMAIN = "tandem.test"   # tests.harness.write_config's default


@pytest.fixture(scope="module")
def cluster(pg_server):
    with prepared_cluster(pg_server, {"acme": "active", "globex": "disabled", "gone": "deleting"}) as prepared:
        yield prepared


async def show_realm(request: web.Request) -> web.Response:
    realm = request[REALM]
    return web.json_response({"kind": realm.kind, "slug": realm.slug, "host": realm.host,
                              "client": client_address(request), "secure": request.secure})


def app_for(config, key) -> web.Application:
    app = create_app(config, key)
    app.router.add_get("/test/realm", show_realm)
    return app


async def eventually(probe, timeout: float, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s (last: {last!r})")


@pytest.fixture
async def server(aiohttp_server, cluster):
    app = app_for(cluster.config, cluster.key)
    server = await aiohttp_server(app)
    # Serving tenants starts with the first load of the directory.
    async def loaded():
        return app[TENANTS].fresh
    await eventually(loaded, timeout=10)
    return server


# -- the routing table -------------------------------------------------------------------------

TENANT_ACME = ("tenant", "acme")
CONSOLE = ("console", None)
NOTHING = None

ROUTING = [
    ("acme.tandem.test", TENANT_ACME),
    ("ACME.Tandem.TEST", TENANT_ACME),                 # upper case: normalised
    ("acme.tandem.test.", TENANT_ACME),                # trailing dot (fully qualified)
    ("acme.tandem.test:8443", TENANT_ACME),            # with port
    ("acme.tandem.test.:443", TENANT_ACME),
    ("tandem.test", CONSOLE),                          # the bare cluster domain
    ("Tandem.Test:443", CONSOLE),
    ("nosuch.tandem.test", NOTHING),                   # unknown slug
    ("globex.tandem.test", NOTHING),                   # disabled tenant
    ("gone.tandem.test", NOTHING),                     # being deleted
    ("ac me.tandem.test", NOTHING),                    # malformed: space
    ("ac_me.tandem.test", NOTHING),                    # malformed: underscore
    ("acme..tandem.test", NOTHING),                    # empty label
    (".tandem.test", NOTHING),
    ("a" * 64 + ".tandem.test", NOTHING),              # label longer than 63
    ("b" * 41 + ".tandem.test", NOTHING),              # a valid label, but too long for a slug
    ("-acme.tandem.test", NOTHING),
    ("www.tandem.test", NOTHING),                      # reserved slug
    ("acme.tandem.test:https", NOTHING),               # malformed port
    ("127.0.0.1", NOTHING),                            # IP literals
    ("127.0.0.1:8443", NOTHING),
    ("[::1]", NOTHING),
    ("[::1]:8443", NOTHING),
    ("x.acme.tandem.test", NOTHING),                   # deeper subdomain
    ("acme.example.com", NOTHING),                     # foreign domains
    ("acme.tandem.test.evil.example", NOTHING),
    ("eviltandem.test", NOTHING),                      # ends with the domain, but not at a dot
    ("", NOTHING),                                     # empty Host
]


@pytest.mark.parametrize("host, expected", ROUTING, ids=[repr(h) for h, _ in ROUTING])
async def test_host_routing(server, host, expected):
    response = await raw_get(server.port, "/test/realm", host)
    if expected is NOTHING:
        assert response.status == 404
        # Identical to the answer for a tenant that never existed: nothing to tell them apart.
        reference = await raw_get(server.port, "/test/realm", "nosuch.tandem.test")
        assert response.body == reference.body
        assert response.headers["content-type"] == reference.headers["content-type"]
        assert json.loads(response.body)["error"]["code"] == "not_found"
        assert b"acme" not in response.body and b"globex" not in response.body
    else:
        assert response.status == 200, response.body
        body = json.loads(response.body)
        assert (body["kind"], body["slug"]) == expected
        # The normalised host: lower case, no port, no trailing dot.
        assert body["host"] == ("acme." + DOMAIN if expected == TENANT_ACME else DOMAIN)


async def test_no_host_header(server):
    # HTTP/1.0 may omit it: no realm. (HTTP/1.1 must send one; aiohttp's parser answers 400.)
    response = await raw_get(server.port, "/test/realm", None, version="1.0")
    reference = await raw_get(server.port, "/test/realm", "nosuch.tandem.test")
    assert response.status == 404
    assert response.body == reference.body
    assert (await raw_get(server.port, "/test/realm", None)).status == 400


@pytest.mark.parametrize("host", ["nosuch.tandem.test", "globex.tandem.test", "127.0.0.1", "[::1]:443", ""])
async def test_probes_answer_for_any_host(server, host):
    assert (await raw_get(server.port, "/-/health", host)).status == 200
    # /-/ready needs no realm either (load balancers probe it by IP).
    assert (await raw_get(server.port, "/-/ready", host)).status in (200, 503)
    assert b"not_found" not in (await raw_get(server.port, "/-/ready", host)).body


async def test_unknown_path_on_a_tenant_host_is_the_same_404(server):
    # Outside /api/ and /-/ every GET path is the panel's (its router says "nothing here").
    unknown_tenant = await raw_get(server.port, "/test/realm", "nosuch.tandem.test")
    unknown_path = await raw_get(server.port, "/api/no/such/path", "acme.tandem.test")
    assert unknown_path.status == unknown_tenant.status == 404
    assert unknown_path.body == unknown_tenant.body


# -- tenants coming and going --------------------------------------------------------------------

async def status_of(server, host: str) -> int:
    return (await raw_get(server.port, "/test/realm", host)).status


async def test_a_new_tenant_answers_and_a_disabled_one_stops_within_5_seconds(server, cluster):
    config, key = cluster.config, cluster.key
    assert await status_of(server, "fresh.tandem.test") == 404
    async with db.control(config, key) as conn:
        await tenants.create_tenant(config, key, conn, "fresh")
        created = time.monotonic()
        await eventually(lambda: _is(server, "fresh.tandem.test", 200), timeout=5)
        appeared = time.monotonic() - created

        await tenants.set_state(conn, "fresh", "disabled", "test")
        disabled = time.monotonic()
        await eventually(lambda: _is(server, "fresh.tandem.test", 404), timeout=5)
        vanished = time.monotonic() - disabled

        await tenants.set_state(conn, "fresh", "active", "test")
        await eventually(lambda: _is(server, "fresh.tandem.test", 200), timeout=5)
        await tenants.delete_tenant(config, key, conn, "fresh", "test", wait_seconds=0)
        await eventually(lambda: _is(server, "fresh.tandem.test", 404), timeout=5)
    # NOTIFY makes it immediate in practice; the polling net alone would take ~2 s.
    assert appeared < 1.5 and vanished < 1.5, (appeared, vanished)


async def test_changes_arrive_without_notifications(server, cluster):
    """The LISTEN connection is killed and its notifications lost: the periodic reload
    still brings a new tenant within 5 s, and the listener comes back."""
    config, key = cluster.config, cluster.key
    async with db.control(config, key) as conn:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'tandem web tenants' AND datname = current_database()")
        assert killed >= 1
        # Change the table without the trigger firing: no notification at all.
        await conn.execute("ALTER TABLE tandem.tenants DISABLE TRIGGER tenants_notify")
        try:
            await tenants.create_tenant(config, key, conn, "quiet")
            started = time.monotonic()
            await eventually(lambda: _is(server, "quiet.tandem.test", 200), timeout=5)
            assert time.monotonic() - started < 5
        finally:
            await conn.execute("ALTER TABLE tandem.tenants ENABLE TRIGGER tenants_notify")

        async def listening():
            return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                       "'tandem web tenants' AND datname = current_database()") >= 1
        await eventually(listening, timeout=5)
        # ...and notifications work again: a disable shows well before the next reload.
        await tenants.set_state(conn, "quiet", "disabled", "test")
        await eventually(lambda: _is(server, "quiet.tandem.test", 404), timeout=5)


async def _is(server, host: str, status: int) -> bool:
    return await status_of(server, host) == status


# -- database away: 503, never "does not exist" ---------------------------------------------------

async def test_tenant_hosts_answer_503_while_the_database_is_away(aiohttp_server, pg_server, monkeypatch):
    monkeypatch.setattr(realm_module, "MAX_AGE_SECONDS", 1.0)
    monkeypatch.setattr(realm_module, "REFRESH_SECONDS", 0.3)
    with prepared_cluster(pg_server, {"acme": "active"}) as prepared:
        app = app_for(prepared.config, prepared.key)
        server = await aiohttp_server(app)
        await eventually(lambda: _is(server, "acme.tandem.test", 200), timeout=10)
        assert await status_of(server, "nosuch.tandem.test") == 404

        admin = await pg_server.connect()
        try:
            await admin.execute(f'ALTER DATABASE "{prepared.database}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                                prepared.database)
            await eventually(lambda: _is(server, "acme.tandem.test", 503), timeout=5)
            for host in ("acme.tandem.test", "nosuch.tandem.test", "globex.tandem.test"):
                response = await raw_get(server.port, "/test/realm", host)
                assert response.status == 503, host
                assert json.loads(response.body)["error"]["code"] == "unavailable"
                assert response.headers["retry-after"] == "5"
            # The console's routing needs no database.
            assert await status_of(server, "tandem.test") == 200

            await admin.execute(f'ALTER DATABASE "{prepared.database}" ALLOW_CONNECTIONS true')
            await eventually(lambda: _is(server, "acme.tandem.test", 200), timeout=10)
            assert await status_of(server, "nosuch.tandem.test") == 404
        finally:
            await admin.execute(f'ALTER DATABASE "{prepared.database}" ALLOW_CONNECTIONS true')
            await admin.close()
            await server.close()


async def test_tenant_hosts_answer_503_before_the_database_was_ever_reached(aiohttp_server, cluster_name,
                                                                           data_dir, key):
    nowhere = data_dir / "no-server-here"
    nowhere.mkdir()
    config = load_config(write_config(data_dir / "offline.toml", cluster_name=cluster_name, data_dir=data_dir,
                                      dsn=f"postgresql://tandem@/tandem?host={nowhere}&port=5432"))
    server = await aiohttp_server(app_for(config, key))
    assert await status_of(server, "acme.tandem.test") == 503
    assert await status_of(server, "tandem.test") == 200
    assert await status_of(server, "127.0.0.1") == 404   # not a realm at all: no database needed


# -- X-Forwarded-For / X-Forwarded-Proto ---------------------------------------------------------

@pytest.mark.parametrize("trusted, xff, proto, client, secure", [
    ([], "203.0.113.7", "https", "127.0.0.1", False),                     # no trusted proxies: ignored
    (["10.0.0.0/8"], "203.0.113.7", "https", "127.0.0.1", False),         # peer not trusted: ignored
    (["127.0.0.1"], "203.0.113.7", "https", "203.0.113.7", True),
    (["127.0.0.1"], None, "https", "127.0.0.1", True),
    (["127.0.0.1"], "203.0.113.7", None, "203.0.113.7", False),
    (["127.0.0.1"], "198.51.100.1, 203.0.113.7", "http", "203.0.113.7", False),   # client-supplied part skipped
    (["127.0.0.1", "10.0.0.0/8"], "203.0.113.7, 10.1.2.3", "https", "203.0.113.7", True),  # proxy chain
    (["127.0.0.1"], "not-an-address", "gopher", "127.0.0.1", False),      # garbage: the peer stays
    (["127.0.0.1"], "2001:db8::5", "HTTPS", "2001:db8::5", True),
])
async def test_forwarded_headers_only_from_trusted_proxies(aiohttp_server, trusted, xff, proto, client, secure,
                                                            data_dir, cluster_name, key):
    # No database: the console's routing does not need one.
    nowhere = data_dir / "no-server-here"
    nowhere.mkdir()
    path = write_config(data_dir / "proxy.toml", cluster_name=cluster_name, data_dir=data_dir,
                        dsn=f"postgresql://tandem@/tandem?host={nowhere}&port=5432")
    text = path.read_text().replace("[tls]", f"trusted_proxies = {json.dumps(trusted)}\n\n[tls]")
    path.write_text(text)
    config = load_config(path)
    assert config.http.trusted_proxies == trusted
    server = await aiohttp_server(app_for(config, key))
    headers = {}
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    response = await raw_get(server.port, "/test/realm", "tandem.test", headers)
    body = json.loads(response.body)
    assert (body["client"], body["secure"]) == (client, secure)


def test_forwarded_client_reads_from_the_right():
    trusted = networks(["127.0.0.1", "10.0.0.0/8"])
    assert forwarded_client("127.0.0.1", ["1.1.1.1, 2.2.2.2", "10.0.0.9"], trusted) == "2.2.2.2"
    assert forwarded_client("127.0.0.1", ["10.0.0.1, 10.0.0.2"], trusted) == "10.0.0.1"
    assert forwarded_client("127.0.0.1", [], trusted) is None
    assert forwarded_client("127.0.0.1", ["1.1.1.1, unknown"], trusted) is None
