"""The cluster console's API (/api/v1/cluster/...) as a signed-in cluster admin sees it:
the real app (host router, auth, CSRF) on the console host, a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from appliance import accounts, db, migrator, nodes, scope, tenants, tls
from appliance.errors import InvalidIdentifier
from appliance.identifiers import validate_slug
from appliance.web.app import create_app
from appliance.web.keys import DB_POOL
from appliance.web.keys import TENANTS as TENANT_DIRECTORY

CONSOLE = "tandem.test"           # the cluster domain of tests.harness.write_config
ADMIN = "root@example.com"
ADMIN_PASSWORD = "console-admin-secret-1"
TENANTS = "/api/v1/cluster/tenants"
ADMINS = "/api/v1/cluster/admins"


class Browser:
    """A client of one host that signs in like the panel does: its own session cookie,
    then the CSRF token from /auth/me on every unsafe request, with the site's own
    Origin. Several browsers share one test client, so each keeps its cookie itself."""

    def __init__(self, client, host: str):
        self.client = client
        self.host = host
        self.csrf: str | None = None
        self.cookies: dict[str, str] = {}

    async def request(self, method: str, path: str, json=None, **headers) -> tuple[int, dict | None]:
        headers = {"Host": self.host, "Origin": f"http://{self.host}", **headers}
        if self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        self.client.session.cookie_jar.clear()
        response = await self.client.request(method, path, json=json, headers=headers, cookies=self.cookies)
        for name, morsel in response.cookies.items():
            if morsel.value:
                self.cookies[name] = morsel.value
            else:
                self.cookies.pop(name, None)
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body

    async def login(self, email: str, password: str) -> int:
        status, _ = await self.request("POST", "/api/v1/auth/login", {"email": email, "password": password})
        if status == 200:
            _, me = await self.request("GET", "/api/v1/auth/me")
            self.csrf = me["csrf_token"]
        return status


async def until(probe, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


@pytest.fixture
async def app_client(aiohttp_client, config, key):
    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        await accounts.create_cluster_admin(conn, ADMIN, ADMIN_PASSWORD, "test")
    client = await aiohttp_client(create_app(config, key))
    await started(client.app)
    return client


async def started(app) -> None:
    """Wait until the app's background start-up is done: its database pool is open and
    its tenant directory loaded (they open after the app starts; until then requests
    that need them answer 503)."""
    async def done():
        return app[DB_POOL].pool is not None and app[TENANT_DIRECTORY].fresh
    assert await until(done), "the app did not finish starting"


@pytest.fixture
async def console(app_client):
    browser = Browser(app_client, CONSOLE)
    assert await browser.login(ADMIN, ADMIN_PASSWORD) == 200
    return browser


async def audit_rows(config, key, prefix: str) -> list[tuple]:
    async with db.control(config, key) as conn:
        rows = await conn.fetch("SELECT actor, action, target, host(client_addr) AS addr FROM tandem.audit_log "
                                "WHERE action LIKE $1 ORDER BY id", prefix + "%")
    return [tuple(r.values()) for r in rows]


# --- tenants ---

async def test_tenant_life_cycle_through_the_console(console, app_client, config, key):
    status, created = await console.request("POST", TENANTS, {"slug": "acme", "display_name": "Acme Corp",
                                                              "admin_email": "boss@acme.example"})
    assert status == 201, created
    assert created["tenant"] == {"slug": "acme", "display_name": "Acme Corp", "state": "active",
                                 "schema_name": "t_acme", "worker": None,
                                 "integrations": {"total": 0, "active": 0, "failing": 0}}
    password = created["admin"]["password"]
    assert created["admin"]["email"] == "boss@acme.example"
    assert len(password) >= 20
    # The first admin signs in on the tenant's own host with the password shown once.
    acme = Browser(app_client, "acme.tandem.test")
    assert await until(lambda: _serves(app_client, "acme.tandem.test"))
    assert await acme.login("boss@acme.example", password) == 200
    _, me = await acme.request("GET", "/api/v1/auth/me")
    assert me["role"] == "admin"
    # ... and it is never shown again.
    status, one = await console.request("GET", f"{TENANTS}/acme")
    assert status == 200 and "password" not in str(one)

    status, disabled = await console.request("POST", f"{TENANTS}/acme/disable")
    assert status == 200 and disabled["state"] == "disabled"
    assert await until(lambda: _gone(app_client, "acme.tandem.test")), "a disabled tenant's host still answers"
    status, enabled = await console.request("POST", f"{TENANTS}/acme/enable")
    assert status == 200 and enabled["state"] == "active"

    status, error = await console.request("DELETE", f"{TENANTS}/acme", {"confirm": "acme-typo"})
    assert status == 422
    assert error["error"]["details"]["fields"] == [
        {"field": "confirm", "message": "type the tenant's slug (acme) to confirm the deletion"}]
    assert (await console.request("GET", f"{TENANTS}/acme"))[0] == 200
    status, _ = await console.request("DELETE", f"{TENANTS}/acme", {"confirm": "acme"})
    assert status == 204
    status, error = await console.request("GET", f"{TENANTS}/acme")
    assert status == 404 and error["error"]["code"] == "not_found"
    async with db.control(config, key) as conn:
        assert not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 't_acme'")

    assert await audit_rows(config, key, "tenant.") == [
        (ADMIN, "tenant.create", "acme", "127.0.0.1"),
        (ADMIN, "tenant.disable", "acme", "127.0.0.1"),
        (ADMIN, "tenant.enable", "acme", "127.0.0.1"),
        (ADMIN, "tenant.delete.start", "acme", "127.0.0.1"),
        (ADMIN, "tenant.delete", "acme", "127.0.0.1"),
    ]


async def _serves(client, host: str) -> bool:
    return (await client.get("/api/openapi.json", headers={"Host": host})).status == 200


async def _gone(client, host: str) -> bool:
    return (await client.get("/api/openapi.json", headers={"Host": host})).status == 404


async def test_first_admin_with_a_chosen_password_or_none_at_all(console, app_client):
    status, created = await console.request("POST", TENANTS, {
        "slug": "globex", "display_name": "Globex", "admin_email": "hank@globex.example",
        "admin_password": "globex-chosen-password"})
    assert status == 201
    assert created["admin"]["password"] is None     # not echoed
    globex = Browser(app_client, "globex.tandem.test")
    assert await until(lambda: _serves(app_client, "globex.tandem.test"))
    assert await globex.login("hank@globex.example", "globex-chosen-password") == 200

    status, created = await console.request("POST", TENANTS, {"slug": "initech", "display_name": ""})
    assert status == 201
    assert created["admin"] is None


def _slug_message(slug: str) -> str:
    with pytest.raises(InvalidIdentifier) as caught:
        validate_slug(slug)
    return str(caught.value)


async def test_bad_slug_is_422_on_slug_with_the_reason(console):
    for slug in ["Acme", "-acme", "acme_corp", "pg-acme", "", "xn--acme", "a" * 41, "www"]:
        status, error = await console.request("POST", TENANTS, {"slug": slug, "display_name": "X"})
        assert status == 422, slug
        assert error["error"]["details"]["fields"] == [{"field": "slug", "message": _slug_message(slug)}]


async def test_taken_slug_is_409(console):
    assert (await console.request("POST", TENANTS, {"slug": "acme", "display_name": "A"}))[0] == 201
    status, error = await console.request("POST", TENANTS, {"slug": "acme", "display_name": "B"})
    assert status == 409
    assert error["error"]["code"] == "conflict" and "acme" in error["error"]["message"]


async def test_bad_first_admin_creates_nothing(console):
    for extra, field in [
        ({"admin_email": "not-an-address"}, "admin_email"),
        ({"admin_email": "boss@acme.example", "admin_password": "short"}, "admin_password"),
        ({"admin_email": "boss@acme.example", "admin_password": "boss@acme.example"}, "admin_password"),
        ({"admin_password": "a-fine-long-password"}, "admin_password"),
        ({"colour": "blue"}, "colour"),
    ]:
        status, error = await console.request("POST", TENANTS, {"slug": "acme", "display_name": "A", **extra})
        assert status == 422, extra
        assert [f["field"] for f in error["error"]["details"]["fields"]] == [field]
    assert (await console.request("GET", f"{TENANTS}/acme"))[0] == 404


async def test_tenant_list_pages_and_filters(console, config, key):
    for slug in ("delta", "alpha", "charlie", "ab", "bravo", "a-c", "echo"):
        assert (await console.request("POST", TENANTS, {"slug": slug, "display_name": slug.title()}))[0] == 201
    assert (await console.request("POST", f"{TENANTS}/charlie/disable"))[0] == 200
    seen, cursor = [], None
    while True:
        status, page = await console.request("GET", f"{TENANTS}?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(page["items"]) <= 2
        seen += [t["slug"] for t in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    # By code point, whatever the database's collation does with '-'.
    assert seen == ["a-c", "ab", "alpha", "bravo", "charlie", "delta", "echo"]
    status, page = await console.request("GET", f"{TENANTS}?state=disabled")
    assert [t["slug"] for t in page["items"]] == ["charlie"]
    status, error = await console.request("GET", f"{TENANTS}?cursor=garbage")
    assert status == 422 and error["error"]["details"]["fields"][0]["field"] == "cursor"


async def test_tenant_list_shows_the_workers_state(console, config, key):
    assert (await console.request("POST", TENANTS, {"slug": "acme", "display_name": "A"}))[0] == 201
    async with db.control(config, key) as conn:
        tenant = await tenants.get_tenant(conn, "acme")
        await nodes.register_node(conn, "node-a", "host-a", 4242, "0.1.0")
        await nodes.heartbeat(conn, "node-a", [nodes.WorkerReport(
            tenant.id, "backoff", pid=None, restarts=3, last_exit="exit 1", reason="crashed at start")])
    status, page = await console.request("GET", TENANTS)
    worker = page["items"][0]["worker"]
    assert {k: worker[k] for k in ("state", "node", "restarts", "reason", "last_exit")} == {
        "state": "backoff", "node": "node-a", "restarts": 3, "reason": "crashed at start", "last_exit": "exit 1"}


async def test_unknown_tenant_is_404_for_every_operation(console):
    for method, path, body in [("GET", f"{TENANTS}/nope", None), ("POST", f"{TENANTS}/nope/disable", None),
                               ("POST", f"{TENANTS}/nope/enable", None),
                               ("DELETE", f"{TENANTS}/nope", {"confirm": "nope"})]:
        status, error = await console.request(method, path, body)
        assert status == 404, (method, path)
        assert error["error"]["message"] == "There is no tenant 'nope'."


# --- who may ---

async def test_console_needs_a_signed_in_admin(app_client):
    anonymous = Browser(app_client, CONSOLE)
    for method, path in [("GET", TENANTS), ("POST", TENANTS), ("GET", "/api/v1/cluster/health"),
                         ("GET", ADMINS)]:
        status, error = await anonymous.request(method, path, {"slug": "x", "display_name": "x"})
        assert status == 401 and error["error"]["code"] == "unauthorized", (method, path)


async def test_console_paths_do_not_exist_on_a_tenant_host(console, app_client):
    assert (await console.request("POST", TENANTS, {"slug": "acme", "display_name": "A",
                                                    "admin_email": "boss@acme.example"}))[0] == 201
    assert await until(lambda: _serves(app_client, "acme.tandem.test"))
    acme = Browser(app_client, "acme.tandem.test")
    for path in (TENANTS, "/api/v1/cluster/health", ADMINS, "/api/v1/no-such-path"):
        status, error = await acme.request("GET", path)
        assert status == 404 and error["error"]["code"] == "not_found"


async def test_unsafe_request_without_csrf_token_is_refused(console):
    console.csrf = None
    status, error = await console.request("POST", TENANTS, {"slug": "acme", "display_name": "A"})
    assert status == 403 and error["error"]["code"] == "csrf_failed"


# --- health ---

async def test_health_reports_nodes_workers_database_and_migrations(console, config, key):
    for slug in ("acme", "globex", "initech"):
        assert (await console.request("POST", TENANTS, {"slug": slug, "display_name": slug}))[0] == 201
    async with db.control(config, key) as conn:
        acme = await tenants.get_tenant(conn, "acme")
        globex = await tenants.get_tenant(conn, "globex")
        initech = await tenants.get_tenant(conn, "initech")
        await nodes.register_node(conn, "node-a", "host-a", 100, "0.1.0")
        await nodes.heartbeat(conn, "node-a", [nodes.WorkerReport(t.id, "running", pid=101, restarts=1)
                                               for t in (acme, globex, initech)])
    status, health = await console.request("GET", "/api/v1/cluster/health")
    assert status == 200
    assert health["status"] == "ok" and health["failures"] == []
    assert health["workers"]["by_state"] == {"starting": 0, "running": 3, "standby": 0, "backoff": 0, "failed": 0,
                                             "stopping": 0, "stopped": 0}

    # globex fails to boot, initech's worker is gone, and a second node stopped reporting.
    async with db.control(config, key) as conn:
        await nodes.heartbeat(conn, "node-a", [
            nodes.WorkerReport(acme.id, "running", pid=101, restarts=2),
            nodes.WorkerReport(globex.id, "failed", restarts=5, boot_failures=5, last_exit="exit 3 (boot failure)",
                               reason="could not load its configuration")])
        await nodes.register_node(conn, "node-b", "host-b", 200, "0.1.0")
        await conn.execute("UPDATE tandem.nodes SET heartbeat_at = now() - interval '1 hour' WHERE name = 'node-b'")
    status, health = await console.request("GET", "/api/v1/cluster/health")
    assert status == 200
    assert health["status"] == "degraded"
    by_name = {n["name"]: n for n in health["nodes"]}
    assert by_name["node-a"]["alive"] is True and by_name["node-a"]["heartbeat_age_seconds"] < 60
    assert by_name["node-b"]["alive"] is False and by_name["node-b"]["heartbeat_age_seconds"] >= 3600
    assert health["workers"]["by_state"]["running"] == 1
    assert health["workers"]["by_state"]["failed"] == 1
    assert health["workers"]["restarts"] == 7
    assert health["workers"]["without_worker"] == ["initech"]
    assert health["failures"] == [{
        "tenant": "globex", "node": "node-a", "state": "failed", "reason": "could not load its configuration",
        "last_exit": "exit 3 (boot failure)", "restarts": 5, "updated_at": health["failures"][0]["updated_at"]}]
    assert health["database"]["reachable"] is True
    assert health["database"]["server_version"].split(".")[0].isdigit()
    assert health["migrations"] == {"current": True, "pending": 0,
                                    "summary": "migrations current (schema tandem and 3 tenant schemas)"}
    checked = datetime.fromisoformat(health["checked_at"])
    assert abs(checked - datetime.now(timezone.utc)) < timedelta(minutes=1)


async def test_health_reports_certificate_expiry_and_doctors_findings(console, config):
    status, health = await console.request("GET", "/api/v1/cluster/health")
    assert status == 200
    # Self-signed mode before the first `tandem run`: nothing generated yet, and doctor says so.
    [cert] = health["certificates"]
    assert cert["not_after"] is None and cert["days_left"] is None and "generates it" in cert["problem"]
    findings = {f["name"]: f for f in health["doctor"]}
    assert findings[f"certificate {cert['path']}"]["status"] == "warn"
    assert findings["key file"]["status"] == "ok" and findings["config"]["status"] == "ok"
    assert "disk space" in findings and not any(name.startswith("listen") for name in findings)
    assert not any(name.startswith("database") for name in findings)   # the database has its own section

    tls.ensure_self_signed(config)
    status, health = await console.request("GET", "/api/v1/cluster/health")
    [cert] = health["certificates"]
    assert cert["problem"] == "" and "tandem.test" in cert["names"] and "*.tandem.test" in cert["names"]
    expires = datetime.fromisoformat(cert["not_after"])
    assert cert["days_left"] == (expires - datetime.now(timezone.utc)).days and cert["days_left"] > 300
    finding = {f["name"]: f for f in health["doctor"]}[f"certificate {cert['path']}"]
    assert finding["status"] == "ok" and f"{cert['days_left']} days left" in finding["detail"]


async def test_tenant_list_counts_each_tenants_integrations(console, config, key):
    for slug in ("acme", "globex"):
        assert (await console.request("POST", TENANTS, {"slug": slug, "display_name": slug}))[0] == 201
    async with db.control(config, key) as conn:
        tenant = await tenants.get_tenant(conn, "acme")
        async with scope.tenant_transaction(conn, tenant.schema_name, tenant.role_name):
            ids = [await conn.fetchval("INSERT INTO integrations (name, enabled, paused, spec) VALUES ($1, $2, $3, "
                                       "'{}') RETURNING id", name, enabled, paused)
                   for name, enabled, paused in (("one", True, False), ("two", True, False), ("off", False, False),
                                                 ("held", True, True))]
            # "one" failed last time (after an earlier success); "two" failed before but is fine now.
            await conn.execute("INSERT INTO runs (integration_id, trigger, status, finished_at) VALUES "
                               "($1, 'schedule', 'ok', now()), ($1, 'schedule', 'failed', now()), "
                               "($2, 'schedule', 'failed', now()), ($2, 'schedule', 'ok', now()), "
                               "($2, 'schedule', 'running', NULL)", ids[0], ids[1])
    status, page = await console.request("GET", TENANTS)
    counts = {t["slug"]: t["integrations"] for t in page["items"]}
    assert counts == {"acme": {"total": 4, "active": 2, "failing": 1},
                      "globex": {"total": 0, "active": 0, "failing": 0}}
    status, one = await console.request("GET", f"{TENANTS}/acme")
    assert status == 200 and one["integrations"] == counts["acme"]
    # A tenant being deleted is not counted (its schema may be going away).
    async with db.control(config, key) as conn:
        await conn.execute("UPDATE tandem.tenants SET state = 'deleting' WHERE slug = 'globex'")
    status, page = await console.request("GET", TENANTS)
    assert {t["slug"]: t["integrations"] for t in page["items"]}["globex"] is None


# --- cluster admins ---

async def test_admin_management(console, app_client, config, key):
    status, created = await console.request("POST", ADMINS, {"email": "second@example.com",
                                                             "display_name": "Second"})
    assert status == 201
    second_password = created["password"]
    second = created["admin"]
    assert second["email"] == "second@example.com" and second["disabled"] is False
    other = Browser(app_client, CONSOLE)
    assert await other.login("second@example.com", second_password) == 200
    assert (await other.request("GET", TENANTS))[0] == 200

    status, error = await console.request("POST", ADMINS, {"email": "SECOND@example.com"})
    assert status == 409
    status, error = await console.request("POST", ADMINS, {"email": "third@example.com", "password": "short"})
    assert status == 422 and error["error"]["details"]["fields"][0]["field"] == "password"

    status, page = await console.request("GET", f"{ADMINS}?limit=1")
    assert [a["email"] for a in page["items"]] == [ADMIN] and page["next_cursor"]
    status, page = await console.request("GET", f"{ADMINS}?limit=1&cursor={page['next_cursor']}")
    assert [a["email"] for a in page["items"]] == ["second@example.com"] and page["next_cursor"] is None

    status, disabled = await console.request("POST", f"{ADMINS}/{second['id']}/disable")
    assert status == 200 and disabled["disabled"] is True
    # Their session ends at once, and they cannot sign in again.
    assert (await other.request("GET", TENANTS))[0] == 401
    assert await Browser(app_client, CONSOLE).login("second@example.com", second_password) == 401
    status, enabled = await console.request("POST", f"{ADMINS}/{second['id']}/enable")
    assert status == 200 and enabled["disabled"] is False

    _, me = await console.request("GET", "/api/v1/auth/me")
    status, error = await console.request("POST", f"{ADMINS}/{me['id']}/disable")
    assert status == 409 and "your own account" in error["error"]["message"]
    assert (await console.request("POST", f"{ADMINS}/999999/disable"))[0] == 404
    assert (await console.request("POST", f"{ADMINS}/999999/unlock"))[0] == 404

    assert [(a, action, t) for a, action, t, _ in await audit_rows(config, key, "user.") if a == ADMIN] == [
        (ADMIN, "user.create", "second@example.com"),
        (ADMIN, "user.disable", "second@example.com"),
        (ADMIN, "user.enable", "second@example.com"),
    ]


async def test_unlock_lifts_a_lock_out(console, app_client, config):
    status, created = await console.request("POST", ADMINS, {"email": "forgetful@example.com",
                                                             "password": "the-right-password"})
    assert status == 201
    admin_id = created["admin"]["id"]
    stranger = Browser(app_client, CONSOLE)
    for _ in range(config.auth.lockout_failures):
        assert await stranger.login("forgetful@example.com", "a-wrong-password!") == 401
    assert await stranger.login("forgetful@example.com", "the-right-password") == 429
    status, listed = await console.request("GET", ADMINS)
    assert {a["email"]: a["locked"] for a in listed["items"]}["forgetful@example.com"] is True
    status, unlocked = await console.request("POST", f"{ADMINS}/{admin_id}/unlock")
    assert status == 200 and unlocked["locked"] is False
    assert await stranger.login("forgetful@example.com", "the-right-password") == 200
