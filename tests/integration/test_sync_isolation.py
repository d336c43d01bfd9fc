"""Tenants' syncs stay apart, and a tenant worker reaches only the hosts of its connections as
they are now.

Two tenants (their own schemas and roles, their own pools and OutboundClients, as their tenant
workers have) each sync their own Jira emulator with their own GitLab emulator, at the same time,
with the same connection ids and container ids on both sides, so that anything keyed by id alone
would mix them up. The emulators count requests per credential. Connections and integrations are
made through the API (credentials sealed per tenant schema); the tenant worker's SyncJobs builds
the engines and the allow-list."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import pytest
from yarl import URL

from appliance import db, tenants
from appliance.connectors.base import EgressDenied
from appliance.connectors.gitlab import GitLabConnector
from appliance.connectors.jira import JiraConnector
from appliance.outbound import OutboundClient, RetryPolicy
from appliance.scheduler import Scheduler
from appliance.sync.jobs import SyncJobs
from tests.fakes.gitlab import GitLabFake
from tests.fakes.jira import JiraEmulator
from tests.fakes.server import ANONYMOUS, fingerprint, serve
from tests.integration.auth_setup import Browser, Site, as_role, site  # noqa: F401  (site: fixture)
from tests.integration.sync_setup import spec

CONNECTIONS = "/api/v1/connections"
INTEGRATIONS = "/api/v1/integrations"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_wait=2)
ITEMS = 8


@contextlib.asynccontextmanager
async def tenant_worker(site: Site, slug: str):
    """What a tenant worker has: the tenant role's pool, its own OutboundClient (nothing allowed
    until SyncJobs reads the connections) and SyncJobs (whose scheduler is not run: tests start
    the runs themselves)."""
    async with db.control(site.config, site.key) as conn:
        tenant = await tenants.get_tenant(conn, slug)
    pool = await db.create_pool(site.config, site.key, role=tenant.role_name, max_size=4)
    try:
        async with OutboundClient(site.config, [], retry=FAST, rate=1000, burst=1000, tenant=slug) as outbound:
            yield SyncJobs(pool, Scheduler(pool, slug), schema=tenant.schema_name, tenant=slug, key=site.key,
                           outbound=outbound)
    finally:
        await pool.close()


def credential_of(headers: dict[str, str]) -> str:
    """The emulators' name for the credential these auth headers carry (tests.fakes.server)."""
    return fingerprint(headers.get("Authorization") or headers.get("PRIVATE-TOKEN"))


@dataclass
class Apps:
    slug: str
    jira: JiraEmulator
    gitlab: GitLabFake
    project: Any
    jira_token: str
    gitlab_token: str

    @property
    def credentials(self) -> dict[str, str]:
        return {"jira": credential_of(JiraConnector.auth_headers({"token": self.jira_token})),
                "gitlab": credential_of(GitLabConnector.auth_headers({"token": self.gitlab_token}))}


def apps_of(slug: str) -> Apps:
    jira = JiraEmulator("server")
    bot = jira.add_user(f"{slug}-bot", f"{slug.title()} Bot", f"bot@{slug}.example")
    for n in range(ITEMS):
        jira.new_issue(jira.bob, jira.projects["PROJ"], {"summary": f"{slug} item {n}", "issuetype": "10002"})
    gitlab = GitLabFake()
    owner = gitlab.add_user(f"{slug}-bot", name=f"{slug.title()} Bot")
    project = gitlab.add_project(f"{slug}/widgets", owner=owner)
    gitlab.add_label(project, "status::doing")
    return Apps(slug, jira, gitlab, project, bot.token, gitlab.add_token(owner))


async def connect(browser: Browser, apps: Apps, jira_url: str, gitlab_url: str) -> dict:
    jira = await browser.call("POST", CONNECTIONS, {"kind": "jira", "name": "Jira", "base_url": jira_url,
                                                    "flavor": "server", "auth": {"token": apps.jira_token}})
    gitlab = await browser.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "GitLab", "base_url": gitlab_url,
                                                      "token": apps.gitlab_token})
    assert jira.status == gitlab.status == 201, (jira.body, gitlab.body)
    integration = await browser.call("POST", INTEGRATIONS, {
        "name": "Sync", "enabled": True,
        "spec": spec(jira.body["id"], gitlab.body["id"], str(apps.project.id), a_container="10000")})
    assert integration.status == 201, integration.body
    return {"jira": jira.body["id"], "gitlab": gitlab.body["id"], "integration": integration.body["id"]}


async def test_two_tenants_syncing_at_once_never_see_each_others_data_or_credentials(site):
    acme, globex = apps_of("acme"), apps_of("globex")
    browsers = {"acme": await as_role(site, "editor", "acme"), "globex": await as_role(site, "admin", "globex")}
    async with serve(acme.jira.app) as acme_jira, serve(acme.gitlab.app()) as acme_gitlab, \
            serve(globex.jira.app) as globex_jira, serve(globex.gitlab.app()) as globex_gitlab, \
            tenant_worker(site, "acme") as acme_jobs, tenant_worker(site, "globex") as globex_jobs:
        ids = {"acme": await connect(browsers["acme"], acme, acme_jira, acme_gitlab),
               "globex": await connect(browsers["globex"], globex, globex_jira, globex_gitlab)}
        # Same ids in both tenants: only the schema tells them apart.
        assert ids["acme"] == ids["globex"]
        assert acme.project.id == globex.project.id
        for apps in (acme, globex):
            apps.jira.knobs.latency = apps.gitlab.knobs.latency = 0.005   # so that the two runs interleave
        await asyncio.gather(acme_jobs.refresh(), globex_jobs.refresh())

        # Each worker may reach its own apps only.
        for jobs, own, other in ((acme_jobs, (acme_jira, acme_gitlab), (globex_jira, globex_gitlab)),
                                 (globex_jobs, (globex_jira, globex_gitlab), (acme_jira, acme_gitlab))):
            assert all(jobs.outbound.allowed(URL(url)) for url in own)
            assert not any(jobs.outbound.allowed(URL(url)) for url in other)

        iid = ids["acme"]["integration"]
        for _ in range(2):      # the backfill, then a pass that must find nothing left to do
            results = await asyncio.gather(acme_jobs.engines[iid].run_once("test"),
                                           globex_jobs.engines[iid].run_once("test"))
            assert [r.status for r in results] == ["ok", "ok"], results
        assert [r.counts["created"] for r in results] == [0, 0]

    for apps, other in ((acme, globex), (globex, acme)):
        titles = sorted(issue.title for issue in apps.project.issues.values())
        assert titles == sorted(f"{apps.slug} item {n}" for n in range(ITEMS)), (apps.slug, titles)
        # Each emulator heard only its own tenant's credential (and anonymous calls such as serverInfo).
        for app, knobs in (("jira", apps.jira.knobs), ("gitlab", apps.gitlab.knobs)):
            heard = set(knobs.by_credential)
            assert apps.credentials[app] in heard, (apps.slug, app)
            assert heard <= {apps.credentials[app], ANONYMOUS}, (apps.slug, app, heard)
            assert other.credentials[app] not in heard
        assert len(apps.gitlab.writes_by(apps.gitlab_token)) >= ITEMS
        assert apps.gitlab.writes_by(other.gitlab_token) == []

    # What each tenant's API shows: its own pairs only.
    for slug, apps in (("acme", acme), ("globex", globex)):
        links = (await browsers[slug].call("GET", f"{INTEGRATIONS}/{iid}/links?limit=50")).body["items"]
        assert len(links) == ITEMS
        assert {link["a_title"] for link in links} == {f"{slug} item {n}" for n in range(ITEMS)}
        jira_url = acme_jira if slug == "acme" else globex_jira
        assert all(link["a_url"].startswith(jira_url) for link in links)


async def test_a_deleted_or_moved_connections_host_is_refused_without_a_restart(site):
    editor = await as_role(site, "editor")
    fake = GitLabFake()
    owner = fake.add_user("bot")
    project = fake.add_project("acme/widgets", owner=owner)
    token = fake.add_token(owner)
    async with serve(fake.app()) as gitlab_url, serve(GitLabFake().app()) as elsewhere, \
            tenant_worker(site, "acme") as jobs:
        gitlab = (await editor.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "GitLab", "base_url": gitlab_url,
                                                          "token": token})).body
        other = (await editor.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "Other", "base_url": elsewhere,
                                                         "token": "glpat-other"})).body
        await jobs.refresh()
        async with site.realm("acme") as conn:
            row = await conn.fetchrow("SELECT * FROM connections WHERE id = $1", gitlab["id"])
        connector = await jobs.connector(row)         # made while allowed, as a run in progress holds it
        assert (await connector.describe(str(project.id))).key == "acme/widgets"
        heard = fake.knobs.total

        assert (await editor.call("DELETE", f"{CONNECTIONS}/{gitlab['id']}")).status == 204
        await jobs.refresh()
        with pytest.raises(EgressDenied):
            await connector.describe(str(project.id))
        with pytest.raises(EgressDenied):
            await jobs.connector(row)
        assert fake.knobs.total == heard              # refused before anything left the appliance
        assert jobs.outbound.allowed(URL(elsewhere))  # the other connection is untouched

        # Moved: the old address is refused, the new one allowed.
        moved = await editor.call("PATCH", f"{CONNECTIONS}/{other['id']}", {"base_url": gitlab_url})
        assert moved.status == 200, moved.body
        await jobs.refresh()
        assert jobs.outbound.allowed(URL(gitlab_url)) and not jobs.outbound.allowed(URL(elsewhere))
