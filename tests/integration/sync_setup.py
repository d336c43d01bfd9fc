"""Shared set-up of the sync engine tests (tests/integration/test_sync_*.py): the Jira emulator
(Data Center flavour; Cloud with `@pytest.mark.parametrize("world", ["cloud"], indirect=True)`)
and the GitLab emulator, a real tenant schema reached through the tenant
role's pool, the real OutboundClient. People act through the apps' REST APIs (or connectors) as
bob; Tandem is alice on both sides."""

from __future__ import annotations

import json
from types import SimpleNamespace

import aiohttp
import pytest

from appliance import db, migrator, tenants
from appliance.config import OutboundConfig
from appliance.connectors.gitlab import GitLabConnector
from appliance.connectors.jira import JiraConnector
from appliance.outbound import OutboundClient, RetryPolicy
from appliance.sync.engine import Engine
from tests.fakes.gitlab import DEVELOPER, GitLabFake
from tests.fakes.jira import JiraEmulator
from tests.fakes.server import serve

FAST = RetryPolicy(max_attempts=8, base_delay=0.005, max_delay=0.02, max_wait=5, unannounced_wait=0.1,
                   unannounced_max=0.4)
STATUS = {"To Do": "opened", "In Progress": "status::doing", "Done": "closed"}
DESCRIPTION = "Steps:\n\n- plug in\n- press **power**\n\nSee [docs](https://example.com/docs)."


def spec(a_connection: int, b_connection: int, b_container: str, *, policy: str = "hold",
         a_container: str = "10000") -> dict:
    return {
        "side_a": {"connection_id": a_connection, "container": a_container},
        "side_b": {"connection_id": b_connection, "container": b_container},
        "type_mappings": [{"a_type": "Bug", "b_type": "issue", "b_labels": ["bug"]},
                          {"a_type": "Task", "b_type": "issue"}],
        "field_mappings": [
            {"a_field": "title", "b_field": "title"},
            {"a_field": "description", "b_field": "description"},
            {"a_field": "status", "b_field": "status", "value_map": STATUS},
            {"a_field": "labels", "b_field": "labels"},
            {"a_field": "assignees", "b_field": "assignees"},
        ],
        "users": {"match": "login"},
        "comments": {"enabled": True, "direction": "both"},
        "start": {"mode": "all"},
        "conflict_policy": policy,
        "schedule": {"interval_seconds": 5},
    }


class Crash(BaseException):
    """Ends a run the way kill -9 would: nothing after the fault point runs."""


@pytest.fixture
async def world(config, key, request):
    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        tenant = await tenants.create_tenant(config, key, conn, "acme")
    pool = await db.create_pool(config, key, role=tenant.role_name, max_size=4, session_state=False)
    jira = JiraEmulator(getattr(request, "param", "server"))
    jira.add_project("OPS", "Operations")
    gl = GitLabFake()
    alice, bob = gl.add_user("alice", name="Alice Admin"), gl.add_user("bob", name="Bob Builder")
    widgets, other = gl.add_project("acme/widgets", owner=alice), gl.add_project("acme/other", owner=alice)
    for project in (widgets, other):
        gl.add_member(project, bob, DEVELOPER)
        for label in ("bug", "ui", "api", "status::doing"):
            gl.add_label(project, label)
    tokens = {"alice": gl.add_token(alice), "bob": gl.add_token(bob), "alice2": gl.add_token(alice)}
    outbound = SimpleNamespace(outbound=OutboundConfig())
    async with serve(jira.app) as jira_url, serve(gl.app()) as gl_url, \
            OutboundClient(outbound, ["127.0.0.1"], retry=FAST, rate=1000, burst=1000, tenant="acme") as client, \
            aiohttp.ClientSession() as http:
        secrets = {}

        async def connection(name, kind, url, credentials):
            row = await pool.fetchrow(
                "INSERT INTO t_acme.connections (name, kind, base_url) VALUES ($1, $2, $3) RETURNING *",
                name, kind, url)
            secrets[row["id"]] = credentials
            return row["id"]

        async def connectors(row):
            cls = JiraConnector if row["kind"] == "jira" else GitLabConnector
            headers = cls.auth_headers(secrets[row["id"]])
            return cls(client.for_connection(f"conn-{row['id']}", row["base_url"], headers), {})

        def jira_credentials(user):
            return {"email": user.email, "token": user.token} if jira.cloud else {"token": user.token}

        jira_conn = await connection("jira", "jira", jira_url, jira_credentials(jira.alice))
        gl_conn = await connection("gitlab", "gitlab", gl_url, {"token": tokens["alice"]})
        gl_conn2 = await connection("gitlab-2", "gitlab", gl_url, {"token": tokens["alice2"]})

        async def integration(name="jira-gitlab", *, a=jira_conn, b=gl_conn, b_container=str(widgets.id),
                              a_container=jira.projects["PROJ"].id, **options):
            row = await pool.fetchrow(
                "INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ($1, true, $2) RETURNING *",
                name, json.dumps(spec(a, b, b_container, a_container=a_container, **options)))
            return row

        def engine(row, **options) -> Engine:
            return Engine(pool, connectors, row, schema="t_acme", tenant="acme", page_size=3, **options)

        # -- what people do, through the REST APIs as bob --
        jira_bob = {"Authorization": jira.auth_header(jira.bob) if jira.cloud else f"Bearer {jira.bob.token}"}
        gl_bob = {"PRIVATE-TOKEN": tokens["bob"]}

        async def call(method, url, headers, body=None):
            async with http.request(method, url, headers=headers, json=body) as response:
                assert response.status < 300, await response.text()
                return await response.json() if response.status != 204 else None

        async def jira_issue(summary, *, issuetype="Bug", description=None, labels=(), assignee=None,
                             project="PROJ"):
            fields = {"project": {"key": project}, "issuetype": {"name": issuetype}, "summary": summary,
                      "labels": list(labels)}
            if description:
                fields["description"] = description
            if assignee:
                fields["assignee"] = {"name": assignee}
            return (await call("POST", f"{jira_url}/rest/api/2/issue", jira_bob, {"fields": fields}))["id"]

        async def jira_edit(issue_id, fields):
            await call("PUT", f"{jira_url}/rest/api/2/issue/{issue_id}", jira_bob, {"fields": fields})

        async def jira_comment(issue_id, body):
            await call("POST", f"{jira_url}/rest/api/2/issue/{issue_id}/comment", jira_bob, {"body": body})

        async def gl_issue(title, *, project=widgets, **fields):
            data = await call("POST", f"{gl_url}/api/v4/projects/{project.id}/issues", gl_bob,
                              {"title": title, **fields})
            return str(data["iid"])

        async def gl_edit(iid, project=widgets, **fields):
            await call("PUT", f"{gl_url}/api/v4/projects/{project.id}/issues/{iid}", gl_bob, fields)

        async def gl_comment(iid, body, project=widgets):
            await call("POST", f"{gl_url}/api/v4/projects/{project.id}/issues/{iid}/notes", gl_bob, {"body": body})

        # -- what Tandem sees, through connectors as alice --
        tandem_jira = await connectors(await pool.fetchrow("SELECT * FROM t_acme.connections WHERE id = $1",
                                                           jira_conn))
        tandem_gl = await connectors(await pool.fetchrow("SELECT * FROM t_acme.connections WHERE id = $1",
                                                         gl_conn))

        human_jira = JiraConnector(client.for_connection("bob-jira", jira_url,
                                                         JiraConnector.auth_headers(jira_credentials(jira.bob))))
        human_gl = GitLabConnector(client.for_connection("bob-gitlab", gl_url,
                                                         GitLabConnector.auth_headers({"token": tokens["bob"]})))

        def gl_issues(project=widgets):
            return sorted(project.issues.values(), key=lambda i: i.iid)

        def tandem_writes() -> int:
            return len(jira.writes_by(jira.alice)) + len(gl.writes_by(tokens["alice"])) + \
                len(gl.writes_by(tokens["alice2"]))

        try:
            yield SimpleNamespace(**locals())
        finally:
            await pool.close()


async def quiesce(engine: Engine, runs: int = 6):
    """Run until a run changes nothing; return the last run's result."""
    for _ in range(runs):
        result = await engine.run_once("test")
        if not any(result.counts[k] for k in ("created", "updated", "comments")):
            return result
    raise AssertionError("no quiescence")
