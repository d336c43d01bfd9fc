"""Integrations as a tenant's editors and viewers see them: specs checked against the
connections with errors per field, switches, what the engine recorded (runs, links, events,
conflicts, failed items) and acting on it, and the webhook URL the apps call. Real app, real
PostgreSQL; the engine's tables are filled here the way the engine fills them."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

import pytest

from tests.integration.auth_setup import as_role, site  # noqa: F401  (site: fixture)

CONNECTIONS = "/api/v1/connections"
INTEGRATIONS = "/api/v1/integrations"


async def connections(editor) -> tuple[int, int]:
    jira = await editor.call("POST", CONNECTIONS, {"kind": "jira", "name": "Jira", "base_url": "https://jira.example",
                                                   "flavor": "cloud",
                                                   "auth": {"email": "bot@example.com", "api_token": "t"}})
    gitlab = await editor.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "GitLab",
                                                     "base_url": "https://gitlab.example", "token": "glpat-x"})
    assert jira.status == gitlab.status == 201
    return jira.body["id"], gitlab.body["id"]


def spec(jira: int, gitlab: int, **extra) -> dict:
    return {"side_a": {"connection_id": jira, "container": "10000"},
            "side_b": {"connection_id": gitlab, "container": "7"},
            "type_mappings": [{"a_type": "Bug", "b_type": "issue", "b_labels": ["bug"]}],
            "field_mappings": [{"a_field": "title", "b_field": "title"},
                               {"a_field": "status", "b_field": "status", "direction": "a_to_b",
                                "value_map": {"Done": "closed"}, "default_b": "opened"}],
            "conflict_policy": "hold", **extra}


@pytest.fixture
async def world(site):
    editor = await as_role(site, "editor")
    jira, gitlab = await connections(editor)
    created = await editor.call("POST", INTEGRATIONS, {"name": "Bugs", "spec": spec(jira, gitlab)})
    assert created.status == 201, created.body
    return site, editor, created.body


def hook_path(integration: dict, side: str) -> str:
    url = urlsplit(integration["webhook_urls"][side])
    return f"{url.path}?{url.query}"


async def test_create_read_change_switch_and_delete(world):
    site, editor, bugs = world
    assert (bugs["name"], bugs["enabled"], bugs["paused"], bugs["state"]) == ("Bugs", False, False, "disabled")
    assert bugs["spec"]["field_mappings"][1]["value_map"] == {"Done": "closed"}
    assert (bugs["open_conflicts"], bugs["failing_items"], bugs["last_run"]) == (0, 0, None)
    url = urlsplit(bugs["webhook_urls"]["a"])
    assert (url.scheme, url.netloc, url.query) == ("https", "acme.tandem.test", "side=a")
    assert url.path.startswith(f"/api/v1/hooks/{bugs['id']}/") and len(url.path.rsplit("/", 1)[1]) >= 32
    assert bugs["webhook_urls"]["b"] == bugs["webhook_urls"]["a"][:-1] + "b"

    path = f"{INTEGRATIONS}/{bugs['id']}"
    assert (await editor.call("POST", path + "/enable")).body["state"] == "active"
    assert (await editor.call("POST", path + "/pause")).body["state"] == "paused"
    resumed = await editor.call("POST", path + "/resume")
    assert (resumed.body["enabled"], resumed.body["paused"], resumed.body["state"]) == (True, False, "active")
    newer = {**bugs["spec"], "conflict_policy": "a_wins"}
    patched = await editor.call("PATCH", path, {"name": "All bugs", "spec": newer, "enabled": False})
    assert patched.status == 200, patched.body
    assert (patched.body["name"], patched.body["spec"]["conflict_policy"], patched.body["state"]) == (
        "All bugs", "a_wins", "disabled")
    assert (await editor.call("GET", path)).body == patched.body
    nulls = await editor.call("PATCH", path, {"name": None, "enabled": None, "paused": None, "spec": None})
    assert nulls.status == 422     # optional, not nullable: the schema says so and the API agrees
    assert {f["field"] for f in nulls.body["error"]["details"]["fields"]} == {"name", "enabled", "paused", "spec"}
    assert (await editor.call("GET", path)).body == patched.body
    assert [i["name"] for i in (await editor.call("GET", INTEGRATIONS)).body["items"]] == ["All bugs"]
    again = await editor.call("POST", INTEGRATIONS, {"name": "All bugs", "spec": bugs["spec"]})
    assert again.status == 409

    assert (await editor.call("DELETE", path)).status == 204
    assert (await editor.call("GET", path)).status == 404
    assert [a for _, a, _, _ in await site.audit("acme", "integration.")] == [
        "integration.create", "integration.enable", "integration.pause", "integration.resume",
        "integration.update", "integration.delete"]


async def test_viewers_read_but_cannot_write(world):
    site, editor, bugs = world
    viewer = await as_role(site, "viewer")
    path = f"{INTEGRATIONS}/{bugs['id']}"
    assert (await viewer.call("GET", path)).status == 200
    for suffix in ("/runs", "/links", "/events", "/conflicts", "/errors"):
        assert (await viewer.call("GET", path + suffix)).status == 200, suffix
    for method, suffix, body in [("POST", "", None), ("PATCH", "", {"name": "x"}), ("DELETE", "", None),
                                 ("POST", "/enable", None), ("POST", "/pause", None), ("POST", "/resume", None),
                                 ("POST", "/items/retry", {"side": "a", "item_id": "1"}),
                                 ("POST", "/conflicts/1/resolve", {"side": "a"})]:
        target = INTEGRATIONS if method == "POST" and not suffix else path + suffix
        payload = {"name": "x", "spec": bugs["spec"]} if target == INTEGRATIONS else body
        reply = await viewer.call(method, target, payload)
        assert reply.status == 403, (method, target, reply.body)
    assert (await site.browser("globex").call("GET", path)).status == 401
    other = await as_role(site, "admin", "globex")
    assert (await other.call("GET", path)).status == 404


SPEC_ERRORS = [  # (change to a valid spec, the field the 422 names)
    (lambda s: s["side_b"].update(connection_id=9999), "spec.side_b.connection_id"),
    (lambda s: s["side_a"].update(connection_id=2**63), "spec.side_a.connection_id"),
    (lambda s: s["type_mappings"][0].update(b_type="Bug"), "spec.type_mappings.0.b_type"),
    (lambda s: s["field_mappings"].append({"a_field": "priority", "b_field": "priority"}),
     "spec.field_mappings.2.b_field"),
    (lambda s: s["field_mappings"].append({"a_field": "weight", "b_field": "weight"}), "spec.field_mappings.2.a_field"),
    (lambda s: s.update(users={"match": "login"}), "spec.users.match"),
    (lambda s: s.update(schedule={"interval_seconds": 1}), "spec.schedule.interval_seconds"),
    (lambda s: s.update(conflict_policy="coin_toss"), "spec.conflict_policy"),
    (lambda s: s.pop("type_mappings"), "spec.type_mappings"),
    (lambda s: s.update(filters={"b": {"types": ["epic"]}}), "spec.filters.b.types"),
    (lambda s: s["side_b"].update(container="7\x00"), "spec"),
]


async def test_spec_errors_name_the_field(world):
    site, editor, bugs = world
    jira, gitlab = bugs["spec"]["side_a"]["connection_id"], bugs["spec"]["side_b"]["connection_id"]
    for number, (change, field) in enumerate(SPEC_ERRORS):
        body = spec(jira, gitlab)
        change(body)
        reply = await editor.call("POST", INTEGRATIONS, {"name": "Other", "spec": body})
        assert reply.status == 422, (number, reply.body)
        assert field in [f["field"] for f in reply.body["error"]["details"]["fields"]], (number, reply.body)
        patched = await editor.call("PATCH", f"{INTEGRATIONS}/{bugs['id']}", {"spec": body})
        assert patched.status == 422, (number, patched.body)
    # Custom fields are Jira's own.
    ok = spec(jira, gitlab)
    ok["field_mappings"].append({"a_field": "customfield_10010", "b_field": "weight"})
    assert (await editor.call("POST", INTEGRATIONS, {"name": "Custom", "spec": ok})).status == 201


async def test_sides_cannot_change_once_items_are_linked(world):
    site, editor, bugs = world
    moved = {**bugs["spec"], "side_b": {**bugs["spec"]["side_b"], "container": "8"}}
    async with site.realm("acme") as conn:
        await conn.execute("INSERT INTO links (integration_id, a_id, b_id, marker) VALUES ($1, '1', '1', 'm')",
                           bugs["id"])
    reply = await editor.call("PATCH", f"{INTEGRATIONS}/{bugs['id']}", {"spec": moved})
    assert reply.status == 409 and "new integration" in reply.body["error"]["message"]


async def engine_wrote(site, integration_id: int) -> dict:
    """Rows as the engine records them: a run, two links, events, a held conflict, a failed item."""
    async with site.realm("acme") as conn:
        run = await conn.fetchval(
            "INSERT INTO runs (integration_id, trigger, status, finished_at, items_seen, items_updated, api_calls, "
            "retries, rate_limit_wait_seconds, duration_seconds) VALUES ($1, 'schedule', 'partial', now(), 3, 1, "
            "12, 2, 1.5, 0.8) RETURNING id", integration_id)
        first = await conn.fetchval(
            "INSERT INTO links (integration_id, a_id, b_id, a_key, b_key, marker) VALUES ($1, '10001', '5', "
            "'PROJ-1', '#5', 'm1') RETURNING id", integration_id)
        second = await conn.fetchval(
            "INSERT INTO links (integration_id, a_id, b_id, a_key, b_key, marker, state) VALUES ($1, '10002', '6', "
            "'PROJ-2', '#6', 'm2', 'conflict') RETURNING id", integration_id)
        await conn.execute(
            "INSERT INTO events (integration_id, run_id, link_id, action, direction, item_key, fields, detail) VALUES "
            "($1, $2, $3, 'updated', 'a_to_b', 'PROJ-1', '{title}', 'Login page crashes: title changed on A'), "
            "($1, $2, $4, 'conflict', '', 'PROJ-2', '{status}', 'Export is slow: status changed on both sides')",
            integration_id, run, first, second)
        conflict = await conn.fetchval(
            "INSERT INTO conflicts (integration_id, link_id, field, a_value, b_value, base_value) VALUES "
            "($1, $2, 'status', '\"Done\"', '\"opened\"', '\"To Do\"') RETURNING id", integration_id, second)
        await conn.execute(
            "INSERT INTO item_errors (integration_id, side, item_id, item_key, attempts, error, next_attempt_at) "
            "VALUES ($1, 'b', '9', '#9', 4, 'GitLab refused the label', now() + interval '1 hour')", integration_id)
    return {"run": run, "links": (first, second), "conflict": conflict}


async def deliveries(site) -> list[tuple]:
    async with site.realm("acme") as conn:
        rows = await conn.fetch("SELECT integration_id, side, item_id, kind FROM webhook_deliveries ORDER BY id")
    return [tuple(r) for r in rows]


async def test_runs_links_events_conflicts_and_failed_items(world):
    site, editor, bugs = world
    made = await engine_wrote(site, bugs["id"])
    viewer = await as_role(site, "viewer")
    path = f"{INTEGRATIONS}/{bugs['id']}"

    got = (await viewer.call("GET", path)).body
    assert (got["open_conflicts"], got["failing_items"], got["last_run"]["id"]) == (1, 1, made["run"])
    runs = (await viewer.call("GET", path + "/runs")).body["items"]
    assert [(r["status"], r["api_calls"], r["retries"], r["rate_limit_wait_seconds"]) for r in runs] == [
        ("partial", 12, 2, 1.5)]
    links = await viewer.call("GET", path + "/links?limit=1")
    assert [(l["a_key"], l["b_key"], l["state"]) for l in links.body["items"]] == [("PROJ-2", "#6", "conflict")]
    older = await viewer.call("GET", path + f"/links?limit=1&cursor={links.body['next_cursor']}")
    assert [l["a_key"] for l in older.body["items"]] == ["PROJ-1"] and older.body["next_cursor"] is None
    assert [l["b_key"] for l in (await viewer.call("GET", path + "/links?q=%236")).body["items"]] == ["#6"]

    events = (await viewer.call("GET", path + "/events")).body["items"]
    assert [(e["item_key"], e["direction"], e["fields"]) for e in events] == [
        ("PROJ-2", "", ["status"]), ("PROJ-1", "a_to_b", ["title"])]
    by_key = (await viewer.call("GET", path + "/events?q=proj-1")).body["items"]
    by_title = (await viewer.call("GET", path + "/events?q=EXPORT IS")).body["items"]
    assert [e["item_key"] for e in by_key] == ["PROJ-1"] and [e["item_key"] for e in by_title] == ["PROJ-2"]
    assert (await viewer.call("GET", path + "/events?q=nothing-like-it")).body["items"] == []
    history = (await viewer.call("GET", path + f"/events?link_id={made['links'][1]}")).body["items"]
    assert [(e["item_key"], e["action"]) for e in history] == [("PROJ-2", "conflict")]

    conflicts = (await viewer.call("GET", path + "/conflicts")).body["items"]
    assert [(c["field"], c["a_value"], c["b_value"], c["base_value"], c["a_key"]) for c in conflicts] == [
        ("status", "Done", "opened", "To Do", "PROJ-2")]
    resolve = f"{path}/conflicts/{made['conflict']}/resolve"
    assert (await editor.call("POST", resolve, {"side": "c"})).status == 422
    resolved = await editor.call("POST", resolve, {"side": "a"})
    assert resolved.status == 200, resolved.body
    assert (resolved.body["state"], resolved.body["resolution"], resolved.body["resolved_value"],
            resolved.body["resolved_by"]) == ("resolved", "a", "Done", "editor@acme.example")
    assert (resolved.body["applied_at"]) is None
    assert (await editor.call("POST", resolve, {"side": "b"})).status == 409
    # A value of one's own (as side A holds it) instead of either side's.
    async with site.realm("acme") as conn:
        own = await conn.fetchval(
            "INSERT INTO conflicts (integration_id, link_id, field, a_value, b_value, base_value) VALUES "
            "($1, $2, 'title', '\"A title\"', '\"B title\"', '\"Old\"') RETURNING id", bugs["id"], made["links"][0])
    own_path = f"{path}/conflicts/{own}/resolve"
    for neither_or_both in ({}, {"side": "a", "value": "x"}, {"side": None}):
        assert (await editor.call("POST", own_path, neither_or_both)).status == 422, neither_or_both
    chosen = await editor.call("POST", own_path, {"value": "Merged title"})
    assert (chosen.body["resolution"], chosen.body["resolved_value"]) == ("value", "Merged title")
    assert (await viewer.call("GET", path + "/conflicts")).body["items"] == []
    assert len((await viewer.call("GET", path + "/conflicts?state=all")).body["items"]) == 2
    assert (await editor.call("POST", f"{path}/conflicts/999999/resolve", {"side": "a"})).status == 404

    failed = (await viewer.call("GET", path + "/errors")).body["items"]
    assert [(e["side"], e["item_key"], e["attempts"], e["error"]) for e in failed] == [
        ("b", "#9", 4, "GitLab refused the label")]
    retried = await editor.call("POST", path + "/items/retry", {"side": "b", "item_id": "9"})
    assert retried.status == 200
    assert retried.body["next_attempt_at"] < failed[0]["next_attempt_at"]
    assert (await editor.call("POST", path + "/items/retry", {"side": "a", "item_id": "9"})).status == 404
    assert await deliveries(site) == [(bugs["id"], "a", "10002", "conflict_resolved"),
                                      (bugs["id"], "a", "10001", "conflict_resolved"), (bugs["id"], "b", "9", "retry")]
    actions = [a for _, a, _, _ in await site.audit("acme", "integration.")]
    assert actions[-3:] == ["integration.conflict.resolve", "integration.conflict.resolve", "integration.item.retry"]


GITLAB_HOOK = {"object_kind": "issue", "project": {"id": 7}, "object_attributes": {"iid": 42, "action": "update"}}
JIRA_HOOK = {"webhookEvent": "jira:issue_updated", "issue": {"id": "10042", "fields": {"project": {"id": "10000"}}}}


async def test_webhooks_queue_deliveries_for_the_right_secret_only(world):
    site, editor, bugs = world
    app = site.browser("acme")               # the apps sign in to nothing
    gitlab_url, jira_url = hook_path(bugs, "b"), hook_path(bugs, "a")
    secret = gitlab_url.split("?")[0].rsplit("/", 1)[1]
    await editor.call("POST", f"{INTEGRATIONS}/{bugs['id']}/enable")

    gitlab = {"X-Gitlab-Event": "Issue Hook"}
    accepted = await app.call("POST", gitlab_url, GITLAB_HOOK, origin=None, headers=gitlab)
    assert accepted.status == 202, accepted.body
    assert accepted.body == {"queued": 1}
    signed = await app.call("POST", gitlab_url, GITLAB_HOOK, origin=None, headers={**gitlab, "X-Gitlab-Token": secret})
    assert signed.status == 202
    jira = await app.call("POST", jira_url, JIRA_HOOK, origin=None)
    assert jira.status == 202 and jira.body == {"queued": 1}
    # A Jira admin webhook configured with the secret signs the body (aiohttp sends json.dumps of it).
    signature = "sha256=" + hmac.new(secret.encode(), json.dumps(JIRA_HOOK).encode(), hashlib.sha256).hexdigest()
    signed_jira = await app.call("POST", jira_url, JIRA_HOOK, origin=None, headers={"X-Hub-Signature": signature})
    assert signed_jira.status == 202 and signed_jira.body == {"queued": 1}
    other_project = {**GITLAB_HOOK, "project": {"id": 8}}
    assert (await app.call("POST", gitlab_url, other_project, origin=None, headers=gitlab)).body == {"queued": 0}
    assert await deliveries(site) == [(bugs["id"], "b", "42", "updated"), (bugs["id"], "b", "42", "updated"),
                                      (bugs["id"], "a", "10042", "updated"), (bugs["id"], "a", "10042", "updated")]

    wrong_secret = gitlab_url.replace(secret, "x" * len(secret))
    unknown = gitlab_url.replace(f"/hooks/{bugs['id']}/", "/hooks/999999/")
    for path, headers in [(wrong_secret, gitlab), (unknown, gitlab),
                          (gitlab_url, {**gitlab, "X-Gitlab-Token": "not-the-secret"}),
                          (jira_url, {"X-Hub-Signature": "sha256=" + "0" * 64}),
                          (wrong_secret.replace("x" * len(secret), "%C3%A9%ED%A0%80"), gitlab)]:
        refused = await app.call("POST", path, GITLAB_HOOK, origin=None, headers=headers)
        assert refused.status == 404, (path, refused.body)
    assert len(await deliveries(site)) == 4
    # Another tenant's host does not know the integration at all.
    assert (await site.browser("globex").call("POST", gitlab_url, GITLAB_HOOK, origin=None,
                                              headers=gitlab)).status == 404

    # Disabled: accepted (so the app does not disable the hook) but nothing queued.
    await editor.call("PATCH", f"{INTEGRATIONS}/{bugs['id']}", {"enabled": False})
    assert (await app.call("POST", gitlab_url, GITLAB_HOOK, origin=None, headers=gitlab)).body == {"queued": 0}
    assert len(await deliveries(site)) == 4
    assert json.dumps(await site.audit("acme")).count(secret) == 0


async def test_sync_now_asks_the_worker_for_a_run_of_an_active_integration_only(world):
    site, editor, bugs = world
    path = f"{INTEGRATIONS}/{bugs['id']}/sync-now"
    refused = await editor.call("POST", path)
    assert refused.status == 409 and "disabled" in refused.body["error"]["message"]

    assert (await editor.call("POST", f"{INTEGRATIONS}/{bugs['id']}/enable")).status == 200
    accepted = await editor.call("POST", path)
    assert accepted.status == 202, accepted.body
    async with site.realm("acme") as conn:
        requested, updated = await conn.fetchrow("SELECT sync_requested_at, updated_at FROM integrations "
                                                 "WHERE id = $1", bugs["id"])
    assert requested is not None and requested.isoformat() == accepted.body["requested_at"].replace("Z", "+00:00")
    # The request must not look like an edit of the integration (that rebuilds its job).
    assert updated < requested

    viewer = await as_role(site, "viewer")
    assert (await viewer.call("POST", path)).status == 403
    assert [a for _, a, _, _ in await site.audit("acme", "integration.sync_now")] == ["integration.sync_now"]
