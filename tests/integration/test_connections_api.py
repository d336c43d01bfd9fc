"""Connections as a tenant's editors and viewers see them: credentials go in and never come
back out (nor sit in the database in plain text), "test connection" reports what the
credential can see in the Jira and GitLab emulators, a connection an integration uses cannot
be deleted. Real app, real PostgreSQL, real emulators on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from appliance import secrets
from tests.fakes.gitlab import GitLabFake
from tests.fakes.jira import JiraEmulator
from tests.fakes.server import serve
from tests.integration.auth_setup import as_role, site  # noqa: F401  (site: fixture)

CONNECTIONS = "/api/v1/connections"
JIRA_TOKEN = "jira-api-token-do-not-leak"


def jira_body(base_url: str = "https://jira.example.com", **extra) -> dict:
    return {"kind": "jira", "name": "Jira", "base_url": base_url,
            "auth": {"email": "bot@example.com", "api_token": JIRA_TOKEN}, **extra}


async def test_create_list_get_patch_delete_and_never_show_the_credential(site):
    editor = await as_role(site, "editor")
    created = await editor.call("POST", CONNECTIONS, jira_body("https://jira.example.com/", flavor="cloud"))
    assert created.status == 201, created.body
    conn = created.body
    assert (conn["kind"], conn["name"], conn["base_url"], conn["options"]) == (
        "jira", "Jira", "https://jira.example.com", {"flavor": "cloud"})
    assert conn["credential_fields"] == ["api_token", "email"]
    assert conn["last_test"] is None and conn["used_by"] == []
    gitlab = await editor.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "GitLab",
                                                      "base_url": "https://gitlab.example.com",
                                                      "token": "glpat-secret-value"})
    assert gitlab.status == 201 and gitlab.body["credential_fields"] == ["token"]

    listed = await editor.call("GET", CONNECTIONS)
    assert [c["name"] for c in listed.body["items"]] == ["GitLab", "Jira"]
    got = await editor.call("GET", f"{CONNECTIONS}/{conn['id']}")
    assert got.body == conn
    everything = json.dumps([created.body, gitlab.body, listed.body, got.body])
    assert JIRA_TOKEN not in everything and "glpat-secret-value" not in everything

    # Stored sealed: no plaintext in the row, and it opens only for this schema and row.
    async with site.realm("acme") as db:
        row = await db.fetchrow("SELECT * FROM connections WHERE id = $1", conn["id"])
        schema = await db.fetchval("SELECT current_schema()")
    assert JIRA_TOKEN.encode() not in bytes(row["credentials"]) and JIRA_TOKEN not in str(dict(row))
    assert secrets.decrypt(site.key, row["credentials"], schema=schema, connection_id=conn["id"]) == {
        "email": "bot@example.com", "api_token": JIRA_TOKEN}
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(site.key, row["credentials"], schema=schema, connection_id=gitlab.body["id"])

    # Rename, switch to auto-detection, rotate to a server PAT.
    patched = await editor.call("PATCH", f"{CONNECTIONS}/{conn['id']}",
                                {"name": "Jira DC", "flavor": None, "auth": {"token": "pat-rotated"}})
    assert patched.status == 200, patched.body
    assert (patched.body["name"], patched.body["options"], patched.body["credential_fields"]) == (
        "Jira DC", {}, ["token"])
    assert "pat-rotated" not in json.dumps(patched.body)
    wrong_kind = await editor.call("PATCH", f"{CONNECTIONS}/{conn['id']}", {"token": "x", "status_scope": "s"})
    assert wrong_kind.status == 422
    assert {f["field"] for f in wrong_kind.body["error"]["details"]["fields"]} == {"token", "status_scope"}
    clash = await editor.call("PATCH", f"{CONNECTIONS}/{conn['id']}", {"name": "GitLab"})
    assert clash.status == 409
    nulls = await editor.call("PATCH", f"{CONNECTIONS}/{conn['id']}", {"name": None, "base_url": None, "auth": None})
    assert nulls.status == 422     # only flavor and status_scope take null ("back to the default")
    assert {f["field"] for f in nulls.body["error"]["details"]["fields"]} == {"name", "base_url", "auth"}

    assert (await editor.call("DELETE", f"{CONNECTIONS}/{conn['id']}")).status == 204
    assert (await editor.call("GET", f"{CONNECTIONS}/{conn['id']}")).status == 404
    actions = [(a, t, d.get("changed")) for _, a, t, d in await site.audit("acme", "connection.")]
    assert actions == [("connection.create", "Jira", None), ("connection.create", "GitLab", None),
                       ("connection.update", "Jira DC", ["credential", "flavor", "name"]),
                       ("connection.delete", "Jira DC", None)]
    assert JIRA_TOKEN not in json.dumps(await site.audit("acme"))


async def test_viewers_read_but_cannot_write(site):
    editor = await as_role(site, "editor")
    conn = (await editor.call("POST", CONNECTIONS, jira_body())).body
    viewer = await as_role(site, "viewer")
    assert (await viewer.call("GET", CONNECTIONS)).status == 200
    assert (await viewer.call("GET", f"{CONNECTIONS}/{conn['id']}")).body["credential_fields"] == [
        "api_token", "email"]
    for method, path, body in [("POST", CONNECTIONS, jira_body(name="Other")),
                               ("PATCH", f"{CONNECTIONS}/{conn['id']}", {"name": "x"}),
                               ("DELETE", f"{CONNECTIONS}/{conn['id']}", None),
                               ("POST", f"{CONNECTIONS}/{conn['id']}/test", None)]:
        reply = await viewer.call(method, path, body)
        assert reply.status == 403, (method, path, reply.body)
    # Another tenant sees nothing of it.
    other = await as_role(site, "admin", "globex")
    assert (await other.call("GET", f"{CONNECTIONS}/{conn['id']}")).status == 404


INVALID = [  # (body, the fields the 422 names)
    ({"kind": "jira", "name": "J", "base_url": "ftp://jira", "auth": {"token": "t"}}, {"base_url"}),
    ({"kind": "jira", "name": "J", "base_url": "https://u:p@jira", "auth": {"token": "t"}}, {"base_url"}),
    ({"kind": "jira", "name": "J", "base_url": "https://jira", "auth": {"email": "a@b.c"}}, {"auth"}),
    ({"kind": "jira", "name": "J", "base_url": "https://jira", "auth": {"token": "t", "password": "p"}}, {"auth"}),
    ({"kind": "jira", "name": "", "base_url": "https://jira", "flavor": "cloudy", "auth": {"token": "t"}},
     {"name", "flavor"}),
    ({"kind": "gitlab", "name": "G", "base_url": "https://gitlab"}, {"token"}),
    ({"kind": "gitlab", "name": "   ", "base_url": "https://gitlab", "token": "t"}, {"name"}),
    ({"kind": "gitlab", "name": "G", "base_url": "https://gitlab", "token": "t", "auth": {}}, {"auth"}),
    ({"kind": "github", "name": "G", "base_url": "https://github.com", "token": "t"}, {"kind"}),
]


async def test_validation_errors_name_each_field(site):
    editor = await as_role(site, "editor")
    for body, fields in INVALID:
        reply = await editor.call("POST", CONNECTIONS, body)
        assert reply.status == 422, (body, reply.body)
        assert {f["field"] for f in reply.body["error"]["details"]["fields"]} == fields, (body, reply.body)
    assert (await editor.call("GET", CONNECTIONS)).body["items"] == []


@pytest.mark.parametrize("flavor", ["cloud", "server"])
async def test_jira_test_connection_ok_and_with_a_bad_token(site, flavor):
    emulator = JiraEmulator(flavor=flavor)
    editor = await as_role(site, "editor")
    auth = ({"email": "alice@example.com", "api_token": "alice-token"} if flavor == "cloud"
            else {"username": "alice", "password": "alice-pass"})
    async with serve(emulator.app) as base_url:
        conn = (await editor.call("POST", CONNECTIONS, {"kind": "jira", "name": "Jira", "base_url": base_url,
                                                        "auth": auth})).body
        tested = await editor.call("POST", f"{CONNECTIONS}/{conn['id']}/test")
        assert tested.status == 200, tested.body
        assert tested.body["ok"] is True, tested.body
        assert tested.body["account"]["name"] == "Alice Admin"
        assert [c["key"] for c in tested.body["containers"]] == ["PROJ"]
        assert "write" in tested.body["permissions"]
        stored = (await editor.call("GET", f"{CONNECTIONS}/{conn['id']}")).body
        assert stored["last_test"]["ok"] is True and stored["account"]["name"] == "Alice Admin"

        bad = {**auth, ("api_token" if flavor == "cloud" else "password"): "wrong"}
        await editor.call("PATCH", f"{CONNECTIONS}/{conn['id']}", {"auth": bad})
        refused = await editor.call("POST", f"{CONNECTIONS}/{conn['id']}/test")
    assert refused.status == 200, refused.body
    assert refused.body["ok"] is False and refused.body["containers"] == []
    assert refused.body["detail"], refused.body
    after = (await editor.call("GET", f"{CONNECTIONS}/{conn['id']}")).body
    assert after["last_test"]["ok"] is False and after["last_test"]["detail"] == refused.body["detail"]
    assert "wrong" not in refused.body["detail"] and "alice-pass" not in json.dumps(after)


async def test_gitlab_test_connection_ok_bad_token_and_unreachable(site):
    fake = GitLabFake()
    alice = fake.add_user("alice", name="Alice Liddell")
    fake.add_project("acme/widgets", owner=alice)
    token = fake.add_token(alice)
    editor = await as_role(site, "editor")
    async with serve(fake.app()) as base_url:
        conn = (await editor.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "GitLab", "base_url": base_url,
                                                        "token": token})).body
        tested = await editor.call("POST", f"{CONNECTIONS}/{conn['id']}/test")
        assert tested.status == 200 and tested.body["ok"] is True, tested.body
        assert tested.body["account"]["login"] == "alice"
        assert [c["key"] for c in tested.body["containers"]] == ["acme/widgets"]
        assert "write" in tested.body["permissions"]

        # A Jira connection pointed at GitLab: a clear "no", not a server error.
        misdirected = (await editor.call("POST", CONNECTIONS, {"kind": "jira", "name": "Not Jira", "base_url": base_url,
                                                               "auth": {"token": token}})).body
        confused = await editor.call("POST", f"{CONNECTIONS}/{misdirected['id']}/test")
        assert confused.status == 200 and confused.body["ok"] is False and confused.body["detail"], confused.body

        fake.revoke(token)
        refused = await editor.call("POST", f"{CONNECTIONS}/{conn['id']}/test")
        assert refused.status == 200 and refused.body["ok"] is False
        assert "GitLab refused the token" in refused.body["detail"]
        assert token not in json.dumps(refused.body)
    # The emulator is gone: the port refuses connections.
    gone = await editor.call("POST", f"{CONNECTIONS}/{conn['id']}/test")
    assert gone.status == 200 and gone.body["ok"] is False
    assert gone.body["detail"].startswith("Could not reach the app"), gone.body


async def test_a_connection_in_use_cannot_be_deleted(site):
    editor = await as_role(site, "editor")
    jira = (await editor.call("POST", CONNECTIONS, jira_body())).body
    gitlab = (await editor.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "GitLab",
                                                      "base_url": "https://gitlab.example.com", "token": "t"})).body
    spec = {"side_a": {"connection_id": jira["id"], "container": "10000"},
            "side_b": {"connection_id": gitlab["id"], "container": "1"},
            "type_mappings": [{"a_type": "Bug", "b_type": "issue"}]}
    integration = await editor.call("POST", "/api/v1/integrations", {"name": "Bugs", "spec": spec})
    assert integration.status == 201, integration.body
    refused = await editor.call("DELETE", f"{CONNECTIONS}/{jira['id']}")
    assert refused.status == 409
    assert "Bugs" in refused.body["error"]["message"]
    assert refused.body["error"]["details"]["integrations"] == [{"id": integration.body["id"], "name": "Bugs"}]
    assert (await editor.call("GET", f"{CONNECTIONS}/{jira['id']}")).body["used_by"] == [
        {"id": integration.body["id"], "name": "Bugs"}]
    assert (await editor.call("DELETE", f"/api/v1/integrations/{integration.body['id']}")).status == 204
    assert (await editor.call("DELETE", f"{CONNECTIONS}/{jira['id']}")).status == 204


async def test_a_credential_copied_to_another_row_or_tenant_does_not_open(site):
    acme = await as_role(site, "editor")
    globex = await as_role(site, "admin", "globex")
    body = {"kind": "gitlab", "name": "GitLab", "base_url": "http://127.0.0.1:9", "token": "glpat-acme-only"}
    mine = (await acme.call("POST", CONNECTIONS, body)).body
    second = (await acme.call("POST", CONNECTIONS, {**body, "name": "Second"})).body
    theirs = (await globex.call("POST", CONNECTIONS, {**body, "token": "glpat-globex"})).body
    assert mine["id"] == theirs["id"]         # ids are per tenant: only the schema tells them apart
    async with site.realm("acme") as conn:
        sealed = await conn.fetchval("SELECT credentials FROM connections WHERE id = $1", mine["id"])
        await conn.execute("UPDATE connections SET credentials = $2 WHERE id = $1", second["id"], sealed)
    async with site.realm("globex") as conn:
        await conn.execute("UPDATE connections SET credentials = $2 WHERE id = $1", theirs["id"], sealed)

    for browser, connection in ((acme, second), (globex, theirs)):
        shown = (await browser.call("GET", f"{CONNECTIONS}/{connection['id']}")).body
        assert shown["credential_fields"] == []
        tested = await browser.call("POST", f"{CONNECTIONS}/{connection['id']}/test")
        assert tested.status == 200 and tested.body["ok"] is False
        assert tested.body["detail"].startswith("The stored credential cannot be used"), tested.body
        assert "enter it again" in tested.body["detail"] and "glpat" not in tested.body["detail"]
    assert (await acme.call("GET", f"{CONNECTIONS}/{mine['id']}")).body["credential_fields"] == ["token"]
