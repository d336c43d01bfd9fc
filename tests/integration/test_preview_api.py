"""POST /api/v1/integrations/{id}/preview: the writes the next run would make, made by nothing.

Real app and PostgreSQL, the Jira (Data Center) and GitLab emulators on 127.0.0.1; people make
items through the apps' REST APIs as bob, Tandem's connections are alice. After a preview the
apps have seen no write by Tandem's credentials and the engine's tables are as they were.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import aiohttp
import pytest

from appliance import db, tenants
from appliance.outbound import OutboundClient
from appliance.sync.connections import connector_for
from appliance.sync.engine import Engine
from tests.fakes.gitlab import DEVELOPER, GitLabFake
from tests.fakes.jira import JiraEmulator
from tests.fakes.server import serve
from tests.integration.auth_setup import site  # noqa: F401  (fixture)
from tests.integration.sync_setup import spec
from tests.integration.auth_setup import as_role
from tests.integration.test_integrations_api import CONNECTIONS, INTEGRATIONS

ENGINE_TABLES = ("links", "intents", "runs", "cursors", "events", "conflicts", "item_errors")


@pytest.fixture
async def apps(site):
    jira = JiraEmulator("server")
    gl = GitLabFake()
    alice, bob = gl.add_user("alice", name="Alice Admin"), gl.add_user("bob", name="Bob Builder")
    widgets = gl.add_project("acme/widgets", owner=alice)
    gl.add_member(widgets, bob, DEVELOPER)
    for label in ("bug", "ui"):
        gl.add_label(widgets, label)
    tokens = {"alice": gl.add_token(alice), "bob": gl.add_token(bob)}
    editor = await as_role(site, "editor")
    async with serve(jira.app) as jira_url, serve(gl.app()) as gl_url, aiohttp.ClientSession() as http:
        jira_conn = await editor.call("POST", CONNECTIONS, {"kind": "jira", "name": "Jira", "base_url": jira_url,
                                                           "flavor": "server", "auth": {"token": jira.alice.token}})
        gl_conn = await editor.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "GitLab", "base_url": gl_url,
                                                         "token": tokens["alice"]})
        assert jira_conn.status == gl_conn.status == 201, (jira_conn.body, gl_conn.body)
        created = await editor.call("POST", INTEGRATIONS, {"name": "Jira-GitLab", "spec": spec(
            jira_conn.body["id"], gl_conn.body["id"], str(widgets.id), a_container=jira.projects["PROJ"].id)})
        assert created.status == 201, created.body

        async def call(method, url, headers, body):
            async with http.request(method, url, headers=headers, json=body) as response:
                assert response.status < 300, await response.text()
                return await response.json()

        async def run_engine():
            """One real run of the engine, as the tenant worker makes it."""
            async with db.control(site.config, site.key) as conn:
                tenant = await tenants.get_tenant(conn, "acme")
            pool = await db.create_pool(site.config, site.key, role=tenant.role_name, max_size=2)
            try:
                async with OutboundClient(site.config, ["127.0.0.1"], tenant="acme") as outbound:
                    async def connectors(row):
                        return connector_for(row, site.key, outbound, tenant.schema_name)
                    row = await pool.fetchrow(f"SELECT * FROM {tenant.schema_name}.integrations")
                    return await Engine(pool, connectors, row, schema=tenant.schema_name).run_once("test")
            finally:
                await pool.close()

        async def jira_edit(key, fields):
            async with http.put(f"{jira_url}/rest/api/2/issue/{key}", json={"fields": fields},
                                headers={"Authorization": f"Bearer {jira.bob.token}"}) as response:
                assert response.status == 204, await response.text()

        async def jira_issue(summary, labels=()):
            fields = {"project": {"key": "PROJ"}, "issuetype": {"name": "Bug"}, "summary": summary,
                      "labels": list(labels)}
            return (await call("POST", f"{jira_url}/rest/api/2/issue", {"Authorization": f"Bearer {jira.bob.token}"},
                               {"fields": fields}))["key"]

        async def gl_issue(title, **fields):
            return (await call("POST", f"{gl_url}/api/v4/projects/{widgets.id}/issues",
                               {"PRIVATE-TOKEN": tokens["bob"]}, {"title": title, **fields}))["iid"]

        def tandem_writes() -> int:
            return len(jira.writes_by(jira.alice)) + len(gl.writes_by(tokens["alice"]))

        async def engine_tables() -> dict[str, int]:
            async with site.realm("acme") as conn:
                return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ENGINE_TABLES}

        yield SimpleNamespace(site=site, editor=editor, jira=jira, gl=gl, widgets=widgets, tokens=tokens,
                              integration=created.body, path=f"{INTEGRATIONS}/{created.body['id']}",
                              gitlab_connection=gl_conn.body["id"], jira_issue=jira_issue, gl_issue=gl_issue,
                              run_engine=run_engine, jira_edit=jira_edit, tandem_writes=tandem_writes,
                              engine_tables=engine_tables)


async def test_preview_lists_the_creates_on_both_sides_and_writes_nothing(apps):
    w = apps
    jira_key = await w.jira_issue("Printer on fire", labels=["ui"])
    iid = await w.gl_issue("Paper jam", labels="bug")
    before = await w.engine_tables()
    writes_before = len(w.jira.writes) + len(w.gl.writes_by(w.tokens["bob"]))

    reply = await w.editor.call("POST", w.path + "/preview")

    assert reply.status == 200, reply.body
    assert reply.body == {
        "creates": [
            {"side": "b", "source": jira_key, "type": "issue",
             "fields": {"title": "Printer on fire", "description": "", "status": "opened", "labels": ["bug", "ui"],
                        "assignees": []}},
            {"side": "a", "source": f"#{iid}", "type": "Bug",
             "fields": {"title": "Paper jam", "description": "", "status": "To Do", "labels": [], "assignees": []}}],
        "updates": [], "links": [], "conflicts": []}
    assert w.tandem_writes() == 0
    assert len(w.jira.writes) + len(w.gl.writes_by(w.tokens["bob"])) == writes_before
    assert sorted(i.title for i in w.widgets.issues.values()) == ["Paper jam"]
    assert await w.engine_tables() == before == dict.fromkeys(ENGINE_TABLES, 0)
    # Previewing again shows the same: nothing moved a cursor or recorded a create.
    assert (await w.editor.call("POST", w.path + "/preview")).body == reply.body
    assert [a for _, a, _, _ in await w.site.audit("acme", "integration.")] == ["integration.create"]


async def test_preview_of_an_edit_shows_old_and_new_values(apps):
    w = apps
    jira_key = await w.jira_issue("Printer on fire")
    result = await w.run_engine()
    assert result.counts["created"] == 1 and [i.title for i in w.widgets.issues.values()] == ["Printer on fire"]
    [issue] = w.widgets.issues.values()
    await w.jira_edit(jira_key, {"summary": "Printer on fire!"})
    writes, before = w.tandem_writes(), await w.engine_tables()

    reply = await w.editor.call("POST", w.path + "/preview")

    assert reply.status == 200, reply.body
    assert reply.body == {"creates": [], "links": [], "conflicts": [], "updates": [
        {"side": "b", "item": f"#{issue.iid}", "source": jira_key, "why": "title: changed on A",
         "fields": {"title": {"old": "Printer on fire", "new": "Printer on fire!"}}}]}
    assert issue.title == "Printer on fire"
    assert w.tandem_writes() == writes and await w.engine_tables() == before


async def test_a_refused_credential_is_a_409_naming_the_side(apps):
    w = apps
    await w.gl_issue("Paper jam")
    patched = await w.editor.call("PATCH", f"{CONNECTIONS}/{w.gitlab_connection}", {"token": "glpat-wrong"})
    assert patched.status == 200, patched.body
    before = await w.engine_tables()

    reply = await w.editor.call("POST", w.path + "/preview")

    assert reply.status == 409, reply.body
    message = reply.body["error"]["message"]
    assert message.startswith("Side B (connection 'GitLab'): the app refused the credential"), message
    assert "glpat-wrong" not in message
    assert w.tandem_writes() == 0 and await w.engine_tables() == before


async def test_unknown_integration_is_404_and_viewers_may_not_preview(apps):
    w = apps
    missing = await w.editor.call("POST", f"{INTEGRATIONS}/{w.integration['id'] + 1000}/preview")
    assert missing.status == 404, missing.body
    assert missing.body["error"]["message"] == f"There is no integration {w.integration['id'] + 1000}."
    viewer = await as_role(w.site, "viewer")
    assert (await viewer.call("POST", w.path + "/preview")).status == 403


async def test_preview_of_an_unsaved_spec_previews_it_and_stores_nothing(apps):
    w = apps
    jira_key = await w.jira_issue("Printer on fire")
    await w.run_engine()
    await w.jira_edit(jira_key, {"summary": "Printer on fire!"})
    stored = (await w.editor.call("GET", w.path)).body
    writes, before = w.tandem_writes(), await w.engine_tables()
    assert len((await w.editor.call("POST", w.path + "/preview", {})).body["updates"]) == 1

    # The edit makes titles flow from GitLab only: Jira's new title would no longer be copied.
    edited = json.loads(json.dumps(stored["spec"]))
    edited["field_mappings"][0]["direction"] = "b_to_a"
    reply = await w.editor.call("POST", w.path + "/preview", {"spec": edited})

    assert reply.status == 200, reply.body
    assert reply.body == {"creates": [], "updates": [], "links": [], "conflicts": []}
    assert (await w.editor.call("GET", w.path)).body["spec"] == stored["spec"]
    assert [a for _, a, _, _ in await w.site.audit("acme", "integration.")] == ["integration.create"]
    assert w.tandem_writes() == writes and await w.engine_tables() == before


def _edit(spec: dict, change) -> dict:
    copy = json.loads(json.dumps(spec))
    change(copy)
    return copy


@pytest.mark.parametrize(("change", "status", "field"), [
    (lambda s: s["field_mappings"][2].update(reverse_map={"opened": "Done"}), 422,
     "spec.field_mappings.2.reverse_map"),
    (lambda s: s["side_b"].update(connection_id=4242), 422, "spec.side_b.connection_id"),
    (lambda s: s.update(type_mappings=[]), 422, "spec.type_mappings"),
    (lambda s: s["side_b"].update(container="4242"), 409, None),     # items are linked: sides are fixed
])
async def test_an_unsaved_spec_is_checked_exactly_as_patch_checks_it(apps, change, status, field):
    w = apps
    await w.jira_issue("Printer on fire")
    await w.run_engine()
    stored, writes = (await w.editor.call("GET", w.path)).body, w.tandem_writes()
    bad = _edit(stored["spec"], change)

    previewed = await w.editor.call("POST", w.path + "/preview", {"spec": bad})
    patched = await w.editor.call("PATCH", w.path, {"spec": bad})

    assert previewed.status == patched.status == status, (previewed.body, patched.body)
    assert previewed.body["error"] == patched.body["error"]
    if field is not None:
        assert [f["field"] for f in previewed.body["error"]["details"]["fields"]] == [field]
    assert (await w.editor.call("GET", w.path)).body["spec"] == stored["spec"]
    assert w.tandem_writes() == writes
