"""Shared by the account and sign-in tests: a running web app (the real create_app, over
HTTP or real HTTPS) on a migrated database with tenants and users, and a `Browser`
that behaves like the panel (its own session cookie, the CSRF token, its site's
Origin) but sends exactly the headers a test asks for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from argon2 import PasswordHasher, Type

import appliance.web.endpoints  # noqa: F401  (registers the operations the app installs)
from appliance import accounts, auth, db, migrator, scope, tenants
from appliance.config import Config, load_config
from appliance.keys import MasterKey, ensure_key
from appliance.web.app import create_app
from tests.harness import write_config

DOMAIN = "tandem.test"            # tests.harness.write_config's cluster domain
PASSWORD = "correct horse battery staple"
ADMIN = "root@example.com"        # the console's admin


def host(slug: str | None) -> str:
    return f"{slug}.{DOMAIN}" if slug else DOMAIN


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def code(self) -> str | None:
        return self.body["error"]["code"] if isinstance(self.body, dict) and "error" in self.body else None

    def cookies(self) -> dict[str, Any]:
        """name -> Morsel of every Set-Cookie header."""
        jar = SimpleCookie()
        for value in self.headers.getall("Set-Cookie", []):
            jar.load(value)
        return dict(jar)


@dataclass
class Site:
    config: Config
    key: MasterKey
    server: Any
    session: aiohttp.ClientSession
    scheme: str

    @property
    def cookie_name(self) -> str:
        return "__Host-tandem_session" if self.scheme == "https" else "tandem_session"

    def browser(self, slug: str | None) -> "Browser":
        return Browser(self, host(slug))

    @contextlib.asynccontextmanager
    async def realm(self, slug: str | None):
        """A connection in the realm's scope (tenant role and schema, or the console)."""
        async with db.control(self.config, self.key) as conn:
            if slug is None:
                async with scope.console_transaction(conn):
                    yield conn
            else:
                tenant = await tenants.get_tenant(conn, slug)
                async with scope.tenant_transaction(conn, tenant.schema_name, tenant.role_name):
                    yield conn

    async def audit(self, slug: str | None, action_prefix: str = "") -> list[tuple[str, str, str, dict]]:
        """(actor, action, target, details) of the realm's audit log, oldest first."""
        async with self.realm(slug) as conn:
            rows = await conn.fetch("SELECT actor, action, target, details::text AS details FROM audit_log "
                                    "WHERE starts_with(action, $1) ORDER BY id", action_prefix)
        return [(r["actor"], r["action"], r["target"], json.loads(r["details"])) for r in rows]

    async def add_user(self, slug: str | None, email: str, role: str = "admin", password: str = PASSWORD) -> int:
        async with self.realm(slug) as conn:
            user = await accounts.create_user(conn, email, password, role, actor="test")
        return user.id


@dataclass
class Browser:
    site: Site
    host: str
    cookie: str | None = None       # the session cookie's value
    csrf: str | None = None
    token: str | None = None        # an API token to send as Bearer instead
    sent: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"{self.site.scheme}://{self.host}"

    async def call(self, method: str, path: str, json: Any = None, *, csrf: bool = True, origin: str | None = "",
                   headers: dict[str, str] | None = None) -> Reply:
        """One request as this browser. `origin`: "" its own site, None none, else that value."""
        sent = {"Host": self.host}
        if origin is not None:
            sent["Origin"] = origin or self.origin
        if csrf and self.csrf:
            sent["X-CSRF-Token"] = self.csrf
        if self.cookie:
            sent["Cookie"] = f"{self.site.cookie_name}={self.cookie}"
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        self.sent = sent
        async with self.site.session.request(method, self.site.server.make_url(path), json=json, headers=sent,
                                             ssl=False if self.site.scheme == "https" else None) as response:
            body = await response.json() if response.content_type == "application/json" else await response.text()
            reply = Reply(response.status, body, response.headers)
        morsel = reply.cookies().get(self.site.cookie_name)
        if morsel is not None:
            self.cookie = morsel.value or None
        return reply

    async def login(self, email: str, password: str = PASSWORD, **kwargs) -> Reply:
        reply = await self.call("POST", "/api/v1/auth/login", {"email": email, "password": password}, **kwargs)
        if reply.status == 200:
            self.csrf = reply.body["csrf_token"]
        return reply


async def eventually(probe, accept, seconds: float = 3.0):
    """Await `probe()` until `accept(result)` holds, at most `seconds`; returns that result.
    For a change made straight in the database: a web worker may answer from the sign-ins
    it cached until PostgreSQL's notification reaches it (appliance.auth), at the latest
    appliance.web.realm.CACHE_SECONDS later."""
    deadline = time.monotonic() + seconds
    while True:
        result = await probe()
        if accept(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


def server_tls(directory: Path) -> ssl.SSLContext:
    ca = trustme.CA()
    leaf = ca.issue_cert(DOMAIN, f"*.{DOMAIN}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


def make_config(database: str, cluster_name: str, data_dir: Path, **auth: Any) -> Config:
    settings = "".join(f"{name} = {value}\n" for name, value in auth.items())
    path = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                        extra=f"[auth]\n{settings}")
    return load_config(path)


async def start_site(aiohttp_server, config: Config, *, https: bool = False,
                     tenant_slugs: tuple[str, ...] = ("acme", "globex")) -> Site:
    """Migrate, create the tenants (each with admin@<slug>.example) and the console admin,
    serve create_app(config) and wait until the tenant directory has loaded."""
    key = ensure_key(config.security.key_file)
    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        await accounts.create_cluster_admin(conn, ADMIN, PASSWORD, "test")
        for slug in tenant_slugs:
            await tenants.create_tenant(config, key, conn, slug, admin_email=f"admin@{slug}.example",
                                        admin_password=PASSWORD)
    app = create_app(config, key)
    server = await aiohttp_server(app, ssl=server_tls(config.paths.data_dir) if https else None)
    session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    site = Site(config, key, server, session, "https" if https else "http")
    deadline = time.monotonic() + 10
    while True:
        reply = await site.browser(tenant_slugs[0] if tenant_slugs else None).call("GET", "/api/openapi.json")
        if reply.status == 200:
            return site
        assert time.monotonic() < deadline, f"the app never served: {reply.status} {reply.body}"
        await asyncio.sleep(0.05)


async def another_worker(site: Site, aiohttp_server, slug: str | None = "acme") -> Site:
    """A second web worker of `site`'s appliance: its own create_app (its own pool, tenant
    directory and cached sign-ins) on the same database, config and key; returned once
    it serves `slug`'s host (None: the console's)."""
    https = site.scheme == "https"
    server = await aiohttp_server(create_app(site.config, site.key),
                                  ssl=server_tls(site.config.paths.data_dir) if https else None)
    other = Site(site.config, site.key, server, site.session, site.scheme)
    deadline = time.monotonic() + 10
    while (reply := await other.browser(slug).call("GET", "/api/openapi.json")).status != 200:
        assert time.monotonic() < deadline, f"the second worker never served: {reply.status} {reply.body}"
        await asyncio.sleep(0.05)
    return other


# Cheap argon2id parameters, so that the many sign-ins of these tests take milliseconds;
# the appliance's own parameters are checked in test_accounts and where timing matters.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)


@pytest.fixture
async def site(request, monkeypatch, database, cluster_name, data_dir, aiohttp_server):
    """A running site over HTTPS with lockout_failures = 3; parametrise indirectly with
    {"https": False, "real_argon2": True, "trusted_proxies": [...], <auth setting>: value, ...}."""
    options = dict(getattr(request, "param", {}))
    https = options.pop("https", True)
    if "trusted_proxies" in options:
        monkeypatch.setenv("TANDEM_HTTP__TRUSTED_PROXIES", json.dumps(options.pop("trusted_proxies")))
    if not options.pop("real_argon2", False):
        monkeypatch.setattr(accounts, "HASHER", CHEAP_HASHER)
    auth._dummy_hash.cache_clear()   # made with whichever parameters are in force
    request.addfinalizer(auth._dummy_hash.cache_clear)
    config = make_config(database, cluster_name, data_dir, **{"lockout_failures": 3, **options})
    running = await start_site(aiohttp_server, config, https=https)
    yield running
    await running.session.close()


async def as_role(site: Site, role: str, slug: str = "acme") -> Browser:
    """A browser signed in on `slug`'s host as a user of `role` (the tenant's own admin, or a
    new user `<role>@<slug>.example`)."""
    email = f"{role}@{slug}.example"
    if role != "admin":
        await site.add_user(slug, email, role)
    browser = site.browser(slug)
    assert (await browser.login(email)).status == 200
    return browser
