"""The tenant worker's sync jobs (appliance/sync/jobs.py as appliance/worker.py wires them): the
scheduler gets one job per enabled, unpaused integration, with connectors built from the
encrypted connection rows, egress allowed to the connections' hosts only, and it follows
changes to the integrations table."""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import SimpleNamespace

import pytest
from yarl import URL

from appliance import db, migrator, secrets, tenants
from appliance.connectors.base import EgressDenied
from appliance.outbound import OutboundClient
from appliance.scheduler import Scheduler
from appliance.sync.engine import Engine
from appliance.sync.jobs import SyncJobs
from tests.fakes.gitlab import GitLabFake
from tests.fakes.jira import JiraEmulator
from tests.fakes.server import serve


async def wait_until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def add_connections(pool, key, connections: dict[str, tuple[str, dict]]) -> dict[str, int]:
    """Connections named by their kind ("jira", "gitlab") -> (base URL, credentials), stored as
    the API stores them (credentials sealed for their row); returns kind -> connection id."""
    ids = {}
    for kind, (url, credentials) in connections.items():
        ids[kind] = await pool.fetchval(
            "INSERT INTO t_acme.connections (name, kind, base_url) VALUES ($1, $2, $3) RETURNING id", kind, kind, url)
        await pool.execute("UPDATE t_acme.connections SET credentials = $2 WHERE id = $1", ids[kind],
                           secrets.encrypt(key, credentials, schema="t_acme", connection_id=ids[kind]))
    return ids


def title_sync(ids: dict[str, int], jira_project: str, gitlab_project: str, start: str) -> str:
    """The spec of an hourly integration syncing Bug titles from Jira to GitLab issues."""
    return json.dumps({"side_a": {"connection_id": ids["jira"], "container": jira_project},
                       "side_b": {"connection_id": ids["gitlab"], "container": gitlab_project},
                       "type_mappings": [{"a_type": "Bug", "b_type": "issue"}],
                       "field_mappings": [{"a_field": "title", "b_field": "title"}],
                       "start": {"mode": start}, "schedule": {"interval_seconds": 3600}})


async def start_jobs(pool, key, outbound) -> tuple[Scheduler, SyncJobs, asyncio.Task]:
    """The tenant worker's sync jobs, webhooks included, on a scheduler running in a task."""
    scheduler = Scheduler(pool, "acme")
    jobs = SyncJobs(pool, scheduler, schema="t_acme", tenant="acme", key=key, outbound=outbound)
    scheduler.add("integrations", 0.1, jobs.refresh)
    scheduler.add("webhooks", 0.5, jobs.webhooks)
    return scheduler, jobs, asyncio.create_task(scheduler.run())


@pytest.fixture
async def tenant_pool(config, key):
    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        tenant = await tenants.create_tenant(config, key, conn, "acme")
    pool = await db.create_pool(config, key, role=tenant.role_name, max_size=4)
    yield pool
    await pool.close()


async def test_one_job_per_enabled_integration_following_changes(config, key, tenant_pool):
    pool = tenant_pool
    jira = JiraEmulator("server")
    gl = GitLabFake()
    alice = gl.add_user("alice")
    project = gl.add_project("acme/widgets", owner=alice)
    gl.add_label(project, "bug")
    async with serve(jira.app) as jira_url, serve(gl.app()) as gl_url, \
            OutboundClient(config, [], tenant="acme") as outbound:
        ids = await add_connections(pool, key, {"jira": (jira_url, {"token": jira.alice.token}),
                                                "gitlab": (gl_url, {"token": gl.add_token(alice)})})
        spec = {"side_a": {"connection_id": ids["jira"], "container": jira.projects["PROJ"].id},
                "side_b": {"connection_id": ids["gitlab"], "container": str(project.id)},
                "type_mappings": [{"a_type": "Bug", "b_type": "issue", "b_labels": ["bug"]}],
                "field_mappings": [{"a_field": "title", "b_field": "title"}],
                "start": {"mode": "all"}, "schedule": {"interval_seconds": 5}}
        integration = await pool.fetchval(
            "INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ('sync', false, $1) RETURNING id",
            json.dumps(spec))
        issue = jira.new_issue(jira.bob, jira.projects["PROJ"], {"summary": "Printer on fire",
                                                                  "issuetype": "10002"})

        scheduler = Scheduler(pool, "acme")
        jobs = SyncJobs(pool, scheduler, schema="t_acme", tenant="acme", key=key, outbound=outbound)
        scheduler.add("integrations", 0.1, jobs.refresh)
        running = asyncio.create_task(scheduler.run())
        try:
            await wait_until(lambda: outbound.allowed(URL(gl_url)) and outbound.allowed(URL(jira_url)))
            with pytest.raises(EgressDenied):
                outbound.for_connection("elsewhere", "https://example.com/", {})
            await asyncio.sleep(0.3)
            assert jobs.jobs == {} and project.issues == {}          # disabled: no job, nothing synced

            await pool.execute("UPDATE t_acme.integrations SET enabled = true, updated_at = now()")
            await wait_until(lambda: len(project.issues) == 1)
            assert [i.title for i in project.issues.values()] == ["Printer on fire"]
            assert list(jobs.jobs) == [integration]
            # The counterpart lands mid-run (GitLab's side is polled after it): the run then ends.
            for _ in range(200):
                run = await pool.fetchrow("SELECT status, trigger FROM t_acme.runs ORDER BY id LIMIT 1")
                if run["status"] != "running":
                    break
                await asyncio.sleep(0.05)
            assert (run["status"], run["trigger"]) == ("ok", "schedule")
            assert await pool.fetchval("SELECT interval_s FROM t_acme.scheduled_jobs WHERE name = $1",
                                       f"sync:{integration}") == 5

            # Paused: the job goes away; nothing more is synced.
            await pool.execute("UPDATE t_acme.integrations SET paused = true, updated_at = now()")
            await wait_until(lambda: jobs.jobs == {})
            runs = await pool.fetchval("SELECT count(*) FROM t_acme.runs")
            jira.change(issue, jira.bob, {"summary": "Printer on fire again"})
            await asyncio.sleep(0.3)
            assert await pool.fetchval("SELECT count(*) FROM t_acme.runs") == runs
            assert f"sync:{integration}" not in scheduler._entries
        finally:
            await scheduler.stop(1)
            await running


async def test_a_webhook_delivery_or_sync_now_runs_within_a_second(config, key, tenant_pool):
    pool = tenant_pool
    jira = JiraEmulator("server")
    gl = GitLabFake()
    alice = gl.add_user("alice")
    project = gl.add_project("acme/widgets", owner=alice)
    async with serve(jira.app) as jira_url, serve(gl.app()) as gl_url, \
            OutboundClient(config, [], tenant="acme") as outbound:
        ids = await add_connections(pool, key, {"jira": (jira_url, {"token": jira.alice.token}),
                                                "gitlab": (gl_url, {"token": gl.add_token(alice)})})
        integration = await pool.fetchval(
            "INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ('sync', true, $1) RETURNING id",
            title_sync(ids, jira.projects["PROJ"].id, str(project.id), "new"))
        scheduler, jobs, running = await start_jobs(pool, key, outbound)
        try:
            for _ in range(100):                                 # the hourly run, done at once
                if await pool.fetchval("SELECT count(*) FROM t_acme.runs WHERE status = 'ok'") == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the first run did not happen")
            issue = jira.new_issue(jira.bob, jira.projects["PROJ"], {"summary": "Fast", "issuetype": "10002"})
            started = asyncio.get_running_loop().time()
            await pool.execute("INSERT INTO t_acme.webhook_deliveries (integration_id, side, item_id) "
                               "VALUES ($1, 'a', $2)", integration, issue.id)
            await wait_until(lambda: len(project.issues) == 1, timeout=5)
            assert asyncio.get_running_loop().time() - started < 1.0
            assert [i.title for i in project.issues.values()] == ["Fast"]
            await wait_until(lambda: not jobs.engines[integration].busy)
            run = await pool.fetchrow("SELECT trigger, status, items_created FROM t_acme.runs "
                                      "ORDER BY id DESC LIMIT 1")
            assert (run["trigger"], run["status"], run["items_created"]) == ("webhook", "ok", 1)

            # "Sync now" from the API: a full run within a second, the request cleared.
            jira.new_issue(jira.bob, jira.projects["PROJ"], {"summary": "Now", "issuetype": "10002"})
            await pool.execute("UPDATE t_acme.integrations SET sync_requested_at = now()")
            await wait_until(lambda: len(project.issues) == 2, timeout=1)
            await wait_until(lambda: not jobs.engines[integration].busy)
            assert await pool.fetchval("SELECT trigger FROM t_acme.runs ORDER BY id DESC LIMIT 1") == "manual"
            assert await pool.fetchval("SELECT sync_requested_at FROM t_acme.integrations") is None
        finally:
            await jobs.stop()
            await scheduler.stop(1)
            await running


@contextlib.asynccontextmanager
async def one_linked_pair(config, key, pool, **budget):
    """Jira and GitLab emulators, their connections (`ids`), and an integration (run by the sync
    jobs, webhooks included; `budget`: OutboundClient's rate and burst) whose first run linked
    one Jira issue of PROJ (`linked`, "Linked") to GitLab's acme/widgets (`project`)."""
    jira = JiraEmulator("server")
    gl = GitLabFake()
    alice = gl.add_user("alice")
    project = gl.add_project("acme/widgets", owner=alice)
    proj = jira.projects["PROJ"]
    async with serve(jira.app) as jira_url, serve(gl.app()) as gl_url, \
            OutboundClient(config, [], tenant="acme", **budget) as outbound:
        ids = await add_connections(pool, key, {"jira": (jira_url, {"token": jira.alice.token}),
                                                "gitlab": (gl_url, {"token": gl.add_token(alice)})})
        linked = jira.new_issue(jira.bob, proj, {"summary": "Linked", "issuetype": "10002"})
        integration = await pool.fetchval(
            "INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ('sync', true, $1) RETURNING id",
            title_sync(ids, proj.id, str(project.id), "all"))
        scheduler, jobs, running = await start_jobs(pool, key, outbound)
        try:
            await wait_until(lambda: len(project.issues) == 1)          # the first run linked it
            await wait_until(lambda: integration in jobs.engines and not jobs.engines[integration].busy)
            yield SimpleNamespace(jira=jira, gl=gl, alice=alice, project=project, ids=ids, outbound=outbound,
                                  jobs=jobs, integration=integration, linked=linked,
                                  first=project.issues[min(project.issues)])
        finally:
            await jobs.stop()
            await scheduler.stop(1)
            await running


@contextlib.asynccontextmanager
async def backlog_behind_a_pair(config, key, pool, backlog: int):
    """one_linked_pair, then `backlog` new Jira issues of the same project for the next run to
    backfill. `rename()` edits the linked issue in Jira and delivers a webhook about it; `first`
    is its GitLab counterpart."""
    async with one_linked_pair(config, key, pool) as w:
        for n in range(backlog):
            w.jira.new_issue(w.jira.bob, w.jira.projects["PROJ"], {"summary": f"Backlog {n}", "issuetype": "10002"})

        async def rename() -> float:
            w.jira.change(w.linked, w.jira.bob, {"summary": "Linked, renamed"})
            delivered = asyncio.get_running_loop().time()
            await pool.execute("INSERT INTO t_acme.webhook_deliveries (integration_id, side, item_id) "
                               "VALUES ($1, 'a', $2)", w.integration, w.linked.id)
            return delivered

        w.rename = rename
        yield w


async def test_a_webhook_delivery_during_a_backfill_page_is_taken_before_the_page_ends(config, key, tenant_pool):
    """A poll page of 48 new items at an app that takes 0.3 s per request lasts about two
    seconds (8 at a time); an edit of an already linked item delivered by webhook meanwhile is
    synced alongside the page's items, not after all of them (Engine.ask_for_deliveries)."""
    pool = tenant_pool
    async with backlog_behind_a_pair(config, key, pool, 48) as w:
        w.gl.knobs.latency = 0.3
        await pool.execute("UPDATE t_acme.integrations SET sync_requested_at = now()")
        await wait_until(lambda: len(w.project.issues) >= 9)          # the page is under way
        await w.rename()
        await wait_until(lambda: w.first.title == "Linked, renamed", timeout=10)
        assert len(w.project.issues) < 1 + 48, "the delivery waited for the whole page"
        await wait_until(lambda: len(w.project.issues) == 1 + 48, timeout=20)
        await wait_until(lambda: not w.jobs.engines[w.integration].busy)
        assert await pool.fetchval("SELECT count(*) FROM t_acme.webhook_deliveries "
                                   "WHERE processed_at IS NULL") == 0
        run = await pool.fetchrow("SELECT trigger, status, items_created, items_updated FROM t_acme.runs "
                                  "ORDER BY id DESC LIMIT 1")
        assert tuple(run) == ("manual", "ok", 48, 1)


async def test_at_the_default_budget_a_webhook_deliverys_requests_go_ahead_of_the_backfills(config, key,
                                                                                            tenant_pool):
    """10 requests a second per app (the default budget) and a backfill of 60 items keeping
    8 creates queued: a delivery's requests (read the item, read the counterpart, update it)
    take the next tokens instead of queueing behind the backfill's, about 0.8 s each."""
    pool = tenant_pool
    async with backlog_behind_a_pair(config, key, pool, 60) as w:
        assert (w.outbound.rate, w.outbound.burst) == (10, 20)
        await asyncio.sleep(2.5)        # the budget's burst refills
        await pool.execute("UPDATE t_acme.integrations SET sync_requested_at = now()")
        await wait_until(lambda: len(w.project.issues) >= 1 + 30, timeout=20)    # the burst is spent
        delivered = await w.rename()
        await wait_until(lambda: w.first.title == "Linked, renamed", timeout=15)
        lag = asyncio.get_running_loop().time() - delivered
        assert len(w.project.issues) < 1 + 60, "the delivery waited for the backfill"
        # 0.5 s for the worker to see it, 3 requests at 0.1 s; queued behind the backfill's
        # 8, each of them would wait about 0.8 s.
        assert lag < 1.8, f"the delivery took {lag:.2f} s"
        await wait_until(lambda: len(w.project.issues) == 1 + 60, timeout=30)


async def test_a_backfill_takes_only_its_share_of_a_budget_other_integrations_share(config, key, tenant_pool):
    """Two integrations through the same Jira and GitLab credentials, so one budget per app (5
    requests a second here). While one backfills, keeping 8 creates queued, an edit the other's
    next run finds (no webhook: its poll) reaches GitLab in about the time its own requests
    take: its requests go every other turn, not behind the backfill's 8 (1.6 s each)."""
    pool = tenant_pool
    async with one_linked_pair(config, key, pool, rate=5, burst=5) as w:
        bulk, board = w.jira.add_project("BULK", "Bulk"), w.gl.add_project("acme/board", owner=w.alice)
        for n in range(80):
            w.jira.new_issue(w.jira.bob, bulk, {"summary": f"Backlog {n}", "issuetype": "10002"})
        await asyncio.sleep(1.2)        # the budget's burst refills
        await pool.execute("INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ('bulk', true, $1)",
                           title_sync(w.ids, bulk.id, str(board.id), "all"))
        await wait_until(lambda: len(board.issues) >= 12, timeout=20)     # the burst is spent
        w.jira.change(w.linked, w.jira.bob, {"summary": "Linked, renamed"})
        asked = asyncio.get_running_loop().time()
        await pool.execute("UPDATE t_acme.integrations SET sync_requested_at = now() WHERE id = $1", w.integration)
        await wait_until(lambda: w.first.title == "Linked, renamed", timeout=20)
        lag = asyncio.get_running_loop().time() - asked
        assert len(board.issues) < 80, "the edit waited for the backfill"
        # 0.5 s for the worker to take the request; GitLab: the counterpart read and the
        # update, each about 0.2 s by turns (1.6 s each behind the backfill's 8).
        assert lag < 2.2, f"the other integration's edit took {lag:.2f} s"
        await wait_until(lambda: len(board.issues) == 80, timeout=40)


async def test_a_busy_engine_is_asked_once_per_new_delivery(config, key, tenant_pool):
    """Deliveries a poll page holds back stay pending until the page ends; asking the engine
    again every half second would only make it read them again. A new delivery asks again."""
    pool = tenant_pool
    ids = await add_connections(pool, key, {"jira": ("https://jira.example", {"token": "t"}),
                                            "gitlab": ("https://gitlab.example", {"token": "t"})})
    integration = await pool.fetchval(
        "INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ('sync', true, $1) RETURNING id",
        title_sync(ids, "10000", "1", "all"))
    asked: list[int] = []
    busy = SimpleNamespace(busy=True, ask_for_deliveries=lambda: asked.append(1))
    async with OutboundClient(config, [], tenant="acme") as outbound:
        jobs = SyncJobs(pool, Scheduler(pool, "acme"), schema="t_acme", tenant="acme", key=key, outbound=outbound)
        jobs.engines[integration] = busy

        async def deliver_and_check(deliveries: int, checks: int) -> None:
            for _ in range(deliveries):
                await pool.execute("INSERT INTO t_acme.webhook_deliveries (integration_id, side, item_id) "
                                   "VALUES ($1, 'a', '10001')", integration)
            for _ in range(checks):
                await jobs._start_webhook_runs()

        await deliver_and_check(2, 3)
        assert len(asked) == 1
        await deliver_and_check(1, 2)
        assert len(asked) == 2
        await deliver_and_check(0, 2)
        assert len(asked) == 2 and jobs.webhook_tasks == {}


async def test_an_integration_changed_during_a_sync_now_run_never_runs_twice_at_once(config, key, tenant_pool,
                                                                                     monkeypatch):
    """An edit (here the interval) makes a new engine for the integration. The "Sync now" run of
    the old one is cancelled with its scheduled job, and the new engine's first run waits for it
    to end: two runs at once would both create the counterparts of the same items."""
    pool = tenant_pool
    jira, gl = JiraEmulator("server"), GitLabFake()
    alice = gl.add_user("alice")
    project, proj = gl.add_project("acme/widgets", owner=alice), jira.projects["PROJ"]
    running_runs, most = set(), [0]
    run_once = Engine._run_once

    async def counted(engine, trigger):
        running_runs.add(engine)
        most[0] = max(most[0], len(running_runs))
        try:
            return await run_once(engine, trigger)
        finally:
            running_runs.discard(engine)

    monkeypatch.setattr(Engine, "_run_once", counted)
    async with serve(jira.app) as jira_url, serve(gl.app()) as gl_url, \
            OutboundClient(config, [], tenant="acme", rate=10, burst=5) as outbound:     # 80 items: 8 s
        ids = await add_connections(pool, key, {"jira": (jira_url, {"token": jira.alice.token}),
                                                "gitlab": (gl_url, {"token": gl.add_token(alice)})})
        jira.new_issue(jira.bob, proj, {"summary": "First", "issuetype": "10002"})
        spec = json.loads(title_sync(ids, proj.id, str(project.id), "all"))
        await pool.execute("INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ('sync', true, $1)",
                           json.dumps(spec))
        scheduler, jobs, running = await start_jobs(pool, key, outbound)
        try:
            await wait_until(lambda: len(project.issues) == 1)
            await wait_until(lambda: not any(e.busy for e in jobs.engines.values()))
            for n in range(80):
                jira.new_issue(jira.bob, proj, {"summary": f"Backlog {n:03d}", "issuetype": "10002"})
            await pool.execute("UPDATE t_acme.integrations SET sync_requested_at = now()")
            await wait_until(lambda: len(project.issues) > 5, timeout=20)
            spec["schedule"]["interval_seconds"] = 5        # the new engine's job is due in 5 s
            await pool.execute("UPDATE t_acme.integrations SET spec = $1, updated_at = now()", json.dumps(spec))
            await wait_until(lambda: len(project.issues) >= 81, timeout=60)
            await wait_until(lambda: not any(e.busy for e in jobs.engines.values()))
        finally:
            await jobs.stop()
            await scheduler.stop(1)
            await running
    titles = sorted(issue.title for issue in project.issues.values())
    assert titles == sorted(["First", *(f"Backlog {n:03d}" for n in range(80))])
    assert await pool.fetch("SELECT error FROM t_acme.item_errors") == []
    assert most[0] == 1, "two runs of the integration at once"
    runs = await pool.fetch("SELECT trigger FROM t_acme.runs ORDER BY started_at")
    assert [r["trigger"] for r in runs][:3] == ["schedule", "manual", "schedule"]
