"""What the panel's builder and integration page ask of the API: discovery of both sides through a
connection (containers, a container's types/fields/statuses, its users) against the Jira and
GitLab emulators, with the apps' errors shown clearly; value-map suggestions from what both sides
described; an integration's overview, progress of a run in progress, and its time series; links
found by title. Real app, real PostgreSQL, real emulators on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from appliance import db, tenants
from appliance.outbound import OutboundClient, RetryPolicy
from appliance.scheduler import Scheduler
from appliance.sync.jobs import SyncJobs
from tests.fakes.gitlab import DEVELOPER, GitLabFake
from tests.fakes.jira import JiraEmulator
from tests.fakes.server import serve
from tests.integration.auth_setup import as_role, site  # noqa: F401  (site: fixture)
from tests.integration.sync_setup import spec

CONNECTIONS = "/api/v1/connections"
INTEGRATIONS = "/api/v1/integrations"


def gitlab_world():
    fake = GitLabFake()
    alice, bob = fake.add_user("alice", name="Alice Admin"), fake.add_user("bob", name="Bob Builder")
    widgets = fake.add_project("acme/widgets", owner=alice)
    fake.add_member(widgets, bob, DEVELOPER)
    for label in ("bug", "status::doing"):
        fake.add_label(widgets, label)
    return fake, widgets, fake.add_token(alice)


async def add_connections(editor, jira_url: str, gitlab_url: str, gitlab_token: str) -> tuple[int, int]:
    jira = await editor.call("POST", CONNECTIONS, {"kind": "jira", "name": "Jira", "base_url": jira_url,
                                                   "flavor": "server", "auth": {"token": "alice-token"}})
    gitlab = await editor.call("POST", CONNECTIONS, {"kind": "gitlab", "name": "GitLab", "base_url": gitlab_url,
                                                     "token": gitlab_token})
    assert jira.status == gitlab.status == 201, (jira.body, gitlab.body)
    return jira.body["id"], gitlab.body["id"]


async def test_builder_discovers_both_sides_and_suggests_value_maps(site):
    jira = JiraEmulator("server")
    gitlab, widgets, token = gitlab_world()
    editor = await as_role(site, "editor")
    async with serve(jira.app) as jira_url, serve(gitlab.app()) as gitlab_url:
        jira_id, gitlab_id = await add_connections(editor, jira_url, gitlab_url, token)
        listed = await editor.call("GET", f"{CONNECTIONS}/{jira_id}/containers")
        assert listed.status == 200, listed.body
        assert [(c["id"], c["key"], c["name"]) for c in listed.body["containers"]] == [("10000", "PROJ", "Project")]
        assert listed.body["containers"][0]["url"] == f"{jira_url}/browse/PROJ"
        gl_listed = (await editor.call("GET", f"{CONNECTIONS}/{gitlab_id}/containers")).body["containers"]
        assert [(c["id"], c["key"]) for c in gl_listed] == [(str(widgets.id), "acme/widgets")]

        a = await editor.call("GET", f"{CONNECTIONS}/{jira_id}/containers/10000")
        assert a.status == 200, a.body
        assert a.body["item_types"] == ["Task", "Bug", "Story"]
        assert a.body["statuses"] == [{"name": "To Do", "category": "todo"},
                                      {"name": "In Progress", "category": "in_progress"},
                                      {"name": "Done", "category": "done"}]
        assert a.body["priorities"] == ["Highest", "High", "Medium", "Low", "Lowest"]
        fields = {f["id"]: f for f in a.body["fields"]}
        assert fields["customfield_10010"]["custom"] is True and fields["customfield_10010"]["type"] == "number"
        assert fields["title"]["required"] is True
        b = (await editor.call("GET", f"{CONNECTIONS}/{gitlab_id}/containers/{widgets.id}")).body
        assert [s["name"] for s in b["statuses"]] == ["opened", "status::doing", "closed"]
        assert b["labels"] == ["bug"] and {f["id"]: f["writable"] for f in b["fields"]}["reporter"] is False

        a_users = (await editor.call("GET", f"{CONNECTIONS}/{jira_id}/containers/10000/users")).body
        assert [u["login"] for u in a_users["users"]] == ["alice", "bob"] and a_users["truncated"] is False
        one = (await editor.call("GET", f"{CONNECTIONS}/{jira_id}/containers/10000/users?q=bo")).body
        assert [u["name"] for u in one["users"]] == ["Bob Builder"]
        capped = (await editor.call("GET", f"{CONNECTIONS}/{jira_id}/containers/10000/users?limit=1")).body
        assert len(capped["users"]) == 1 and capped["truncated"] is True
        b_users = (await editor.call("GET", f"{CONNECTIONS}/{gitlab_id}/containers/{widgets.id}/users")).body

        viewer = await as_role(site, "viewer")
        suggested = await viewer.call("POST", f"{INTEGRATIONS}/suggest", {
            "a": {"statuses": a.body["statuses"], "priorities": a.body["priorities"], "users": a_users["users"]},
            "b": {"statuses": b["statuses"], "priorities": b["priorities"], "users": b_users["users"]}})
        assert suggested.status == 200, suggested.body
    statuses = suggested.body["statuses"]
    assert statuses["value_map"] == {"To Do": "opened", "In Progress": "status::doing", "Done": "closed"}
    assert {p["reason"] for p in statuses["pairs"]} == {"same_category"}
    assert statuses["unmapped_a"] == statuses["unmapped_b"] == []
    # GitLab has no priorities: every Jira priority is left for a person.
    assert suggested.body["priorities"]["unmapped_a"] == a.body["priorities"]
    assert suggested.body["priorities"]["value_map"] == {}
    users = suggested.body["users"]
    assert [(p["a"]["login"], p["b"]["login"], p["reason"]) for p in users["pairs"]] == [
        ("alice", "alice", "same_login"), ("bob", "bob", "same_login")]
    assert users["map"] == {"alice@example.com": "alice", "bob@example.com": "bob"}
    # The suggestion fits the spec: an integration with these maps is accepted as is.
    body = spec(jira_id, gitlab_id, str(widgets.id), a_container="10000")
    body["field_mappings"][2]["value_map"] = statuses["value_map"]
    body["users"]["map"] = users["map"]
    created = await editor.call("POST", INTEGRATIONS, {"name": "Suggested", "spec": body})
    assert created.status == 201, created.body


async def test_discovery_shows_what_the_app_says_and_is_for_editors(site):
    gitlab, widgets, token = gitlab_world()
    editor = await as_role(site, "editor")
    viewer = await as_role(site, "viewer")
    async with serve(gitlab.app()) as gitlab_url:
        _, gitlab_id = await add_connections(editor, "https://jira.invalid", gitlab_url, token)
        misdirected = (await editor.call("POST", CONNECTIONS, {"kind": "jira", "name": "Not Jira",
                                                               "base_url": gitlab_url, "auth": {"token": token}})).body
        base = f"{CONNECTIONS}/{gitlab_id}/containers"
        for path in (base, f"{base}/{widgets.id}", f"{base}/{widgets.id}/users"):
            assert (await viewer.call("GET", path)).status == 403, path
        missing = await editor.call("GET", f"{base}/999")
        assert missing.status == 404 and "999" in missing.body["error"]["message"], missing.body
        assert (await editor.call("GET", f"{CONNECTIONS}/4242/containers")).status == 404

        confused = await editor.call("GET", f"{CONNECTIONS}/{misdirected['id']}/containers")
        assert confused.status == 502 and confused.body["error"]["code"] == "remote_unexpected", confused.body
        assert "base URL" in confused.body["error"]["message"]

        gitlab.knobs.fail_next(1, 429, retry_after=30)     # longer than an interactive request waits
        limited = await editor.call("GET", base)
        assert limited.status == 502 and limited.body["error"]["code"] == "remote_unavailable", limited.body
        assert limited.headers["Retry-After"] == "30"

        gitlab.revoke(token)
        refused = await editor.call("GET", base)
        assert refused.status == 502 and refused.body["error"]["code"] == "remote_auth", refused.body
        assert "GitLab" in refused.body["error"]["message"] and token not in json.dumps(refused.body)
        assert refused.body["error"]["details"] == {"connection_id": gitlab_id, "connection": "GitLab",
                                                    "kind": "gitlab"}
    gone = await editor.call("GET", base)
    assert gone.status == 502 and gone.body["error"]["code"] == "remote_unavailable", gone.body
    assert "try again later" in gone.body["error"]["message"]


async def test_suggest_validates_its_input(site):
    viewer = await as_role(site, "viewer")
    bad = await viewer.call("POST", f"{INTEGRATIONS}/suggest",
                            {"a": {"statuses": [{"name": "x", "category": "someday"}]}, "b": {}})
    assert bad.status == 422 and bad.body["error"]["details"]["fields"][0]["field"].startswith("a.statuses.0")
    empty = await viewer.call("POST", f"{INTEGRATIONS}/suggest", {"a": {}, "b": {}})
    assert empty.status == 200 and empty.body["statuses"] == {"pairs": [], "unmapped_a": [], "unmapped_b": [],
                                                              "value_map": {}, "reverse_map": {}}


async def seeded(site, editor) -> int:
    """An integration (its apps are never called) with runs, links and the worker's schedule."""
    jira_id, gitlab_id = await add_connections(editor, "https://jira.example", "https://gitlab.example", "glpat-x")
    created = await editor.call("POST", INTEGRATIONS, {"name": "Bugs", "enabled": True,
                                                       "spec": spec(jira_id, gitlab_id, "7")})
    assert created.status == 201, created.body
    iid = created.body["id"]
    async with site.realm("acme") as conn:
        ago = "now() - make_interval(mins => $2)"
        for minutes, status, created_n, updated, errors, calls, waited in (
                (200, "ok", 5, 1, 0, 40, 0.0), (95, "failed", 0, 0, 0, 2, 0.0), (35, "partial", 2, 3, 1, 30, 2.5),
                (5, "ok", 0, 4, 0, 12, 0.5)):
            await conn.execute(
                "INSERT INTO runs (integration_id, trigger, status, started_at, finished_at, items_seen, "
                f"items_created, items_updated, errors, api_calls, rate_limit_wait_seconds) VALUES ($1, 'schedule', "
                f"$3, {ago} - interval '10 seconds', {ago}, $4, $5, $6, $7, $8, $9)",
                iid, minutes, status, created_n + updated, created_n, updated, errors, calls, waited)
        await conn.execute(
            "INSERT INTO runs (integration_id, trigger, status, items_seen, items_created, poll_side, poll_started_at, "
            "poll_items_done, poll_items_total, poll_items_per_second) VALUES ($1, 'manual', 'running', 40, 25, 'b', "
            "now() - interval '60 seconds', 30, 300, 0.5)", iid)
        await conn.execute(
            "INSERT INTO links (integration_id, a_id, b_id, a_key, b_key, a_url, b_url, marker, base_a, base_b, state) "
            "VALUES ($1, '10001', '5', 'PROJ-1', '#5', 'https://jira.example/browse/PROJ-1', "
            "'https://gitlab.example/acme/widgets/-/issues/5', 'm1', '{\"title\": \"Login page crashes\"}', "
            "'{\"title\": \"Login page crashes\"}', 'active'), "
            "($1, '10002', '6', 'PROJ-2', '#6', '', '', 'm2', '{\"title\": \"Export is slow\"}', "
            "'{\"title\": \"Export is SLOW (b)\"}', 'conflict')", iid)
        await conn.execute("INSERT INTO scheduled_jobs (name, interval_s, next_run_at) VALUES "
                           "($1, 60, now() + interval '42 seconds')", f"sync:{iid}")
    return iid


async def test_overview_and_series_for_the_integration_page(site):
    editor = await as_role(site, "editor")
    iid = await seeded(site, editor)
    viewer = await as_role(site, "viewer")
    overview = await viewer.call("GET", f"{INTEGRATIONS}/{iid}/overview")
    assert overview.status == 200, overview.body
    o = overview.body
    assert (o["name"], o["state"]) == ("Bugs", "active")
    assert (o["current_run"]["status"], o["current_run"]["items_seen"], o["current_run"]["items_created"]) == (
        "running", 40, 25)
    now = datetime.now(timezone.utc)
    # Side B's poll: 30 of 300 items, lately 0.5 items/s, so 540 s left.
    progress = o["current_run"]["progress"]
    assert (progress["side"], progress["items_done"], progress["items_total"]) == ("b", 30, 300), progress
    assert (progress["items_per_second"], progress["seconds_left"]) == (0.5, 540.0), progress
    assert 59 <= (now - datetime.fromisoformat(progress["started_at"])).total_seconds() < 70
    assert o["last_run"]["status"] == "ok" and o["last_run"]["items_updated"] == 4 and o["last_run"]["progress"] is None
    assert 30 < (datetime.fromisoformat(o["next_run_at"]) - now).total_seconds() <= 42
    assert 290 <= o["lag_seconds"] < 330 and datetime.fromisoformat(o["last_success_at"]) < now
    assert o["links"] == {"total": 2, "active": 1, "conflict": 1, "error": 0, "deleted": 0}
    assert (o["open_conflicts"], o["failing_items"], o["pending_webhooks"]) == (0, 0, 0)
    assert o["last_24h"] == {"runs": 4, "failed_runs": 1, "items_created": 7, "items_updated": 8,
                             "comments_created": 0, "errors": 1, "api_calls": 84, "rate_limit_wait_seconds": 3.0}

    series = await viewer.call("GET", f"{INTEGRATIONS}/{iid}/series?hours=6")
    assert series.status == 200, series.body
    s = series.body
    assert (s["hours"], s["bucket_seconds"]) == (6, 900)
    starts = [datetime.fromisoformat(b["start"]) for b in s["buckets"]]
    assert all(b - a == timedelta(seconds=900) for a, b in zip(starts, starts[1:]))
    assert starts[0] <= now - timedelta(hours=6) < starts[0] + timedelta(seconds=900) and starts[-1] <= now
    totals = {k: sum(b[k] for b in s["buckets"]) for k in ("runs", "failed_runs", "items_synced", "errors",
                                                           "api_calls", "rate_limit_wait_seconds")}
    # The four finished runs, and the running one in the current bucket.
    assert totals == {"runs": 5, "failed_runs": 1, "items_synced": 15 + 25, "errors": 1, "api_calls": 84,
                      "rate_limit_wait_seconds": 3.0}
    busiest = max(s["buckets"], key=lambda b: b["api_calls"])
    assert busiest["api_calls"] == 40 and busiest["items_synced"] == 6
    # Lag grows while nothing succeeds: at the end of the failed run's bucket it is ~105 min (since the
    # first success 200 min ago), and it drops back after the next success.
    failed = next(b for b in s["buckets"] if b["failed_runs"])
    assert 95 * 60 <= failed["lag_seconds"] <= 120 * 60, failed
    assert s["buckets"][-1]["lag_seconds"] == pytest.approx(o["lag_seconds"], abs=60)
    first_success = now - timedelta(minutes=200)
    before = [b for b in s["buckets"] if datetime.fromisoformat(b["start"]) + timedelta(seconds=900) < first_success]
    assert before and all(b["lag_seconds"] is None for b in before)
    assert (await viewer.call("GET", f"{INTEGRATIONS}/{iid}/series?hours=0")).status == 422
    assert (await viewer.call("GET", f"{INTEGRATIONS}/{iid}/series?hours=720")).body["bucket_seconds"] == 43200
    assert (await viewer.call("GET", f"{INTEGRATIONS}/9999/overview")).status == 404

    # Paused: no next run.
    await editor.call("POST", f"{INTEGRATIONS}/{iid}/pause")
    paused = (await viewer.call("GET", f"{INTEGRATIONS}/{iid}/overview")).body
    assert paused["state"] == "paused" and paused["next_run_at"] is None


async def test_links_are_found_by_key_or_title_on_either_side_with_both_urls(site):
    editor = await as_role(site, "editor")
    iid = await seeded(site, editor)
    path = f"{INTEGRATIONS}/{iid}/links"
    by_title = (await editor.call("GET", path + "?q=login%20PAGE")).body["items"]
    assert [(l["a_key"], l["b_key"], l["a_title"]) for l in by_title] == [("PROJ-1", "#5", "Login page crashes")]
    assert (by_title[0]["a_url"], by_title[0]["b_url"]) == ("https://jira.example/browse/PROJ-1",
                                                            "https://gitlab.example/acme/widgets/-/issues/5")
    only_b = (await editor.call("GET", path + "?q=(b)")).body["items"]
    assert [(l["a_key"], l["b_title"]) for l in only_b] == [("PROJ-2", "Export is SLOW (b)")]
    assert [l["a_key"] for l in (await editor.call("GET", path + "?q=proj-2")).body["items"]] == ["PROJ-2"]
    assert (await editor.call("GET", path + "?q=nothing")).body["items"] == []


ISSUES = 30


def poll_gauges() -> dict[str, float | None]:
    labels = {"tenant": "acme", "integration": "Backfill", "side": "a"}
    return {kind: REGISTRY.get_sample_value(f"sync_poll_items_{kind}", labels) for kind in ("done", "expected")}


async def test_a_running_backfill_shows_its_progress(site):
    """The tenant worker's SyncJobs records a run's counts and its poll's progress while it
    runs; the overview and the runs list show them, and the final counts once it ends."""
    jira = JiraEmulator("server")
    gitlab, widgets, token = gitlab_world()
    editor = await as_role(site, "editor")
    async with db.control(site.config, site.key) as conn:
        tenant = await tenants.get_tenant(conn, "acme")
    pool = await db.create_pool(site.config, site.key, role=tenant.role_name, max_size=4)
    try:
        async with serve(jira.app) as jira_url, serve(gitlab.app()) as gitlab_url, \
                OutboundClient(site.config, [], retry=RetryPolicy(max_attempts=3, base_delay=0.01), rate=1000,
                               burst=1000, tenant="acme") as outbound:
            jira_id, gitlab_id = await add_connections(editor, jira_url, gitlab_url, token)
            for n in range(ISSUES):
                jira.new_issue(jira.bob, jira.projects["PROJ"], {"summary": f"Backfilled {n}", "issuetype": "10002"})
            created = await editor.call("POST", INTEGRATIONS, {
                "name": "Backfill", "enabled": True, "spec": spec(jira_id, gitlab_id, str(widgets.id),
                                                                   a_container="10000")})
            iid = created.body["id"]
            jobs = SyncJobs(pool, Scheduler(pool, "acme"), schema=tenant.schema_name, tenant="acme", key=site.key,
                            outbound=outbound)
            await jobs.refresh()
            jira.knobs.latency = gitlab.knobs.latency = 0.03
            engine = jobs.engines[iid]
            engine.page_size = 10       # several pages: the first one carries Jira's count of them all
            run = asyncio.create_task(engine.run_once("manual"))
            try:
                deadline = time.monotonic() + 30
                # Items are worked on several at a time: wait for the first one done, not just seen.
                while getattr(engine, "counts", {}).get("created", 0) < 1:
                    assert time.monotonic() < deadline and not run.done(), "the backfill made no progress"
                    await asyncio.sleep(0.05)
                await jobs.record_progress()
                during = (await editor.call("GET", f"{INTEGRATIONS}/{iid}/overview")).body
                gauges_during = poll_gauges()
                result = await run
            finally:
                run.cancel()
    finally:
        await pool.close()
    current = during["current_run"]
    assert current is not None and current["status"] == "running", during
    assert 1 <= current["items_created"] <= current["items_seen"] and current["items_created"] <= ISSUES, current
    # Side A's poll, with the count Jira's search gave on its first page.
    progress = current["progress"]
    assert (progress["side"], progress["items_total"]) == ("a", ISSUES), progress
    assert 0 <= progress["items_done"] < ISSUES, progress
    # The gauges follow the poll, for dashboards: the count, and at least what the run recorded.
    assert gauges_during["expected"] == ISSUES and progress["items_done"] <= gauges_during["done"] <= ISSUES
    assert poll_gauges() == {"done": 0, "expected": 0}, "a finished poll leaves its gauges at 0"
    after = (await editor.call("GET", f"{INTEGRATIONS}/{iid}/overview")).body
    assert after["current_run"] is None
    # Seen: the Jira issues, then their GitLab counterparts on side B's poll.
    assert (after["last_run"]["status"], after["last_run"]["items_seen"], after["last_run"]["items_created"]) == (
        "ok", 2 * ISSUES, ISSUES), result
    assert after["last_run"]["progress"] is None
    async with site.realm("acme") as conn:
        row = await conn.fetchrow("SELECT poll_side, poll_started_at, poll_items_done, poll_items_total FROM runs "
                                  "WHERE id = $1", current["id"])
    assert list(row.values()) == [None] * 4, "a finished run keeps no poll progress"
    runs = (await editor.call("GET", f"{INTEGRATIONS}/{iid}/runs")).body["items"]
    assert [r["id"] for r in runs] == [current["id"]]
