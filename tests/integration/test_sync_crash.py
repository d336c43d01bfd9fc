"""Crash safety of the sync with a real tenant worker (issue 4): `tandem run` syncs a 1,000-issue
Jira backfill (2 comments each) into GitLab while the test kills the tenant worker with SIGKILL
at 20+ random moments; the supervisor restarts it each time. After the last kill and quiescence,
what people see in GitLab: every Jira issue exactly once (no duplicate, none missing, nothing
extra), each with its 2 comments exactly once, and the field edits made in Jira during the
backfill arrived.

The moments are random (seeded; the seed is printed and CRASH_TEST_SEED replays it) and spread
over the backfill: each kill waits until GitLab's issue count has grown by a random number since
the previous one, then a random delay more, so kills land while issues and comments are being
written (the seed also drives which issues get edited in Jira meanwhile). The Jira
issues carry a history (created 10 minutes apart over a week), as a real full-history backfill
does, so the worker's cursor moves as it goes.

Two in-process tests (tests/integration/sync_setup.py) pin the two windows the kills found, at
the exact instant: after a pair is linked but before its comments are copied, and after a
counterpart is created but before it is linked while the source is edited meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from appliance import db, migrator, secrets, tenants
from appliance.config import load_config
from appliance.keys import ensure_key
from appliance.sync.engine import Engine
from tests.fakes.gitlab import GitLabFake
from tests.fakes.jira import JiraEmulator
from tests.fakes.jira_state import Comment
from tests.fakes.server import serve
from tests.harness import write_config
from tests.integration.sync_setup import Crash, quiesce, world  # noqa: F401 (world: a fixture)
from tests.integration.test_supervisor import Appliance

ITEMS = 1000
COMMENTS = 2
KILLS = 20
# Kills planned at most (the backfill may end first; at least KILLS must land before it does).
MAX_KILLS = 21
# Kill n comes once GitLab's issue count has grown by a random 1..KILL_STEP since kill n-1, and a
# random 0..KILL_DELAY seconds later (so it lands anywhere in an issue's create, link, comments:
# about 20 ms at 8 items at a time). The backfill goes on during that delay (at a few hundred
# items a second), so together they must leave room for KILLS kills before its end.
KILL_STEP = 20
KILL_DELAY = 0.05
# Field edits in Jira on issues already copied: after these kill numbers, this many issues each
# (GitLab's count grows between kills, so after kill n at least n issues are there to edit).
EDIT_AFTER_KILLS = (6, 10, 14, 18)
EDITS_PER_ROUND = 5
MARKER = re.compile(r"<!-- tandem:sync:([0-9a-f]+) -->")


async def until(predicate, timeout: float, what: str, interval: float = 0.02):
    """Await a true value of `predicate()` (sync or async), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(interval)


def seed_jira(jira: JiraEmulator, moment: list) -> list:
    """ITEMS Bug issues with COMMENTS comments each, created 10 minutes apart over the past week
    (straight into the emulator's state: the backfill is under test, not the seeding)."""
    project = jira.projects["PROJ"]
    first = datetime.now(timezone.utc) - timedelta(minutes=10 * ITEMS + 60)
    issues = []
    for i in range(ITEMS):
        moment[0] = first + timedelta(minutes=10 * i)
        issue = jira.new_issue(jira.bob, project, {"summary": f"Item {i:04d}", "issuetype": "10002",
                                                   "description": f"What happened to item {i:04d}."})
        for j in range(1, COMMENTS + 1):
            at = moment[0] + timedelta(minutes=j)
            issue.comments.append(Comment(str(next(jira._other_ids)), jira.bob, f"Comment {j} on item {i:04d}",
                                          at, at, jira.bob))
            issue.updated = at
        issues.append(issue)
    moment[0] = None
    return issues


@pytest.fixture
def appliance_config(database, cluster_name, data_dir):
    """The appliance's config: plain HTTP, one web worker, a request budget the emulators can
    take (the default, 10 a second, would make a backfill of 1,000 issues take minutes), and a
    supervisor that restarts a killed worker within a fraction of a second (production backs
    off up to a minute), with room for a loaded machine (a worker slow to boot or to beat
    must not be taken for a failed one)."""
    path = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                        tls_mode="off", workers=1, extra="[outbound]\nrequests_per_second = 5000\nburst = 500\n")
    text = path.read_text()
    for old, new in (("restart_backoff_max_seconds = 2", "restart_backoff_max_seconds = 0.25"),
                     ("heartbeat_seconds = 0.5", "heartbeat_seconds = 1"),
                     ("boot_failures_before_failed = 3", "boot_failures_before_failed = 20")):
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return path


async def test_kill_9_during_a_backfill_leaves_no_duplicate_and_loses_nothing(appliance_config):
    seed = int(os.environ.get("CRASH_TEST_SEED") or random.SystemRandom().randrange(10 ** 6))
    print(f"\ncrash test seed: {seed} (CRASH_TEST_SEED={seed} replays its random choices)")
    rng = random.Random(seed)
    started = time.monotonic()
    config = load_config(appliance_config)
    key = ensure_key(config.security.key_file)
    await migrator.migrate(config, key)
    async with db.control(config, key) as conn:
        tenant = await tenants.create_tenant(config, key, conn, "acme")
    pool = await db.create_pool(config, key, role=tenant.role_name, max_size=2)

    moment: list = [None]
    jira = JiraEmulator("server", clock=lambda: moment[0] or datetime.now(timezone.utc))
    issues = seed_jira(jira, moment)
    gl = GitLabFake()
    alice = gl.add_user("alice", name="Alice Admin")
    project = gl.add_project("acme/widgets", owner=alice)
    gl.add_label(project, "bug")
    app = None
    async with serve(jira.app) as jira_url, serve(gl.app()) as gl_url, aiohttp.ClientSession() as http:
        try:
            ids = {}
            for name, url, credentials in (("jira", jira_url, {"token": jira.alice.token}),
                                           ("gitlab", gl_url, {"token": gl.add_token(alice)})):
                ids[name] = await pool.fetchval(
                    "INSERT INTO t_acme.connections (name, kind, base_url) VALUES ($1, $1, $2) RETURNING id",
                    name, url)
                await pool.execute("UPDATE t_acme.connections SET credentials = $2 WHERE id = $1", ids[name],
                                   secrets.encrypt(key, credentials, schema="t_acme", connection_id=ids[name]))
            spec = {"side_a": {"connection_id": ids["jira"], "container": jira.projects["PROJ"].id},
                    "side_b": {"connection_id": ids["gitlab"], "container": str(project.id)},
                    "type_mappings": [{"a_type": "Bug", "b_type": "issue", "b_labels": ["bug"]}],
                    "field_mappings": [{"a_field": "title", "b_field": "title"},
                                       {"a_field": "description", "b_field": "description"}],
                    "comments": {"enabled": True, "direction": "both"},
                    "start": {"mode": "all"}, "schedule": {"interval_seconds": 5}}
            integration = await pool.fetchval(
                "INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ('backfill', true, $1) RETURNING id",
                json.dumps(spec))
            print(f"set-up: {time.monotonic() - started:.1f} s")

            app = Appliance(appliance_config)
            expected = {issue.id: (issue.fields["summary"], issue.fields["description"]) for issue in issues}
            original = {issue.id: issue.fields["summary"] for issue in issues}
            by_title = {issue.fields["summary"]: issue for issue in issues}     # every title an issue had
            edits = []

            async def edit_copied(round_no: int) -> None:
                """As bob, through Jira's REST API: new summary and description on issues that are
                in GitLab already (their next sync is an update)."""
                copied = sorted({by_title[i.title].id for i in project.issues.values() if i.title in by_title})
                for issue_id in rng.sample(copied, EDITS_PER_ROUND):
                    issue = jira.issues[issue_id]
                    fields = {"summary": f"{original[issue_id]} edited in round {round_no}",
                              "description": f"Edited in round {round_no}: {original[issue_id]} is fine now."}
                    async with http.put(f"{jira_url}/rest/api/2/issue/{issue.id}", json={"fields": fields},
                                        headers={"Authorization": f"Bearer {jira.bob.token}"}) as response:
                        assert response.status == 204, await response.text()
                    expected[issue.id] = (fields["summary"], fields["description"])
                    by_title[fields["summary"]] = issue
                    edits.append(issue.key)

            kills, kill_counts, in_flight = 0, [], set()
            backfill_started = time.monotonic()
            previous = 0
            while kills < MAX_KILLS:
                pid = await until(lambda: app.tenant_pid("acme"), 15, "a tenant worker")
                target = min(previous + rng.randint(1, KILL_STEP), ITEMS)
                await until(lambda: len(project.issues) >= target, 30,
                            f"GitLab's issue count to reach {target} (kill {kills + 1})")
                await asyncio.sleep(rng.uniform(0, KILL_DELAY))
                if len(project.issues) >= ITEMS:
                    break           # the backfill is over: a kill now would not be mid-backfill
                if app.tenant_pid("acme") != pid:
                    continue        # it died by itself: that is not one of ours
                os.kill(pid, signal.SIGKILL)
                kills += 1
                await until(lambda: app.tenant_pid("acme") != pid, 5, "the killed worker to be reaped")
                previous = len(project.issues)
                kill_counts.append(previous)
                # Creates the kill caught between their intent and their link (for the record).
                in_flight |= {(r["kind"], r["id"]) for r in await pool.fetch(
                    "SELECT kind, id FROM t_acme.intents WHERE state = 'pending'")}
                if kills in EDIT_AFTER_KILLS:
                    await edit_copied(EDIT_AFTER_KILLS.index(kills) + 1)
            last_kill = time.monotonic()
            print(f"kills: {kills} in {last_kill - backfill_started:.1f} s, "
                  f"GitLab issue count at each: {kill_counts}; creates caught in flight: "
                  f"{dict(Counter(kind for kind, _ in in_flight))}")
            assert kills >= KILLS, f"the backfill ended after {kills} kills; {KILLS} wanted mid-backfill"

            # Quiescence: "sync now" until a whole run (both sides polled) changes nothing.
            await until(lambda: len(project.issues) >= ITEMS, 120, "the backfill to reach every issue")
            quiet = None
            for _ in range(10):
                last = await pool.fetchval("SELECT coalesce(max(id), 0) FROM t_acme.runs")
                await pool.execute("UPDATE t_acme.integrations SET sync_requested_at = now()")
                run = await until(lambda: pool.fetchrow(
                    "SELECT * FROM t_acme.runs WHERE id > $1 AND status <> 'running' AND trigger = 'manual' "
                    "ORDER BY id LIMIT 1", last), 120, "a sync-now run to finish")
                if run["status"] == "ok" and not (run["items_created"] or run["items_updated"]
                                                 or run["comments_created"]):
                    quiet = run
                    break
            assert quiet is not None, "the sync never quiesced"
            print(f"quiet {time.monotonic() - last_kill:.1f} s after the last kill; "
                  f"total {time.monotonic() - started:.1f} s")

            # Every Jira issue exactly once in GitLab, and nothing else there.
            gl_issues = list(project.issues.values())
            assert len(gl_issues) == ITEMS
            titles = Counter(i.title for i in gl_issues)
            assert titles == Counter(summary for summary, _ in expected.values())
            markers = Counter(m for i in gl_issues for m in MARKER.findall(i.description or ""))
            assert len(markers) == ITEMS and set(markers.values()) == {1}
            # The edits arrived (title and description), and nothing else changed.
            by_summary = {summary: (issue_id, description) for issue_id, (summary, description) in expected.items()}
            for issue in gl_issues:
                _, description = by_summary[issue.title]
                assert MARKER.sub("", issue.description).strip() == description, issue.title
                assert "bug" in issue.labels
            assert len(edits) == len(EDIT_AFTER_KILLS) * EDITS_PER_ROUND
            # Each copy carries its issue's comments, each exactly once; none came back to Jira.
            for issue in gl_issues:
                notes = [n.body for n in project.notes.get(issue.iid, []) if not n.system]
                number = issue.title[5:9]
                copied = Counter(j for body in notes for j in range(1, COMMENTS + 1)
                                 if f"Comment {j} on item {number}" in body)
                assert len(notes) == COMMENTS and copied == Counter(range(1, COMMENTS + 1)), (issue.title, notes)
                assert all(body.startswith("*Bob Builder wrote:*") for body in notes)
            assert all(len(issue.comments) == COMMENTS for issue in issues)
            assert jira.writes_by(jira.alice) == []         # Tandem's account: nothing bounced back
            # What the panel shows: 1,000 pairs, 2,000 comment pairs, no item in error.
            assert await pool.fetchval("SELECT count(*) FROM t_acme.links WHERE integration_id = $1",
                                       integration) == ITEMS
            assert await pool.fetchval("SELECT count(*) FROM t_acme.comment_links") == ITEMS * COMMENTS
            assert await pool.fetchval("SELECT count(*) FROM t_acme.item_errors") == 0
            interrupted = await pool.fetchval("SELECT count(*) FROM t_acme.runs WHERE error LIKE 'interrupted%'")
            print(f"runs interrupted: {interrupted}; edits: {len(edits)} on {len(set(edits))} issues")
        finally:
            if app is not None:
                failing = sys.exc_info()[0] is not None
                code = await asyncio.to_thread(app.stop)
                if failing or code != 0:
                    print(app.log()[-20000:])
            await pool.close()


# -- the windows the kills found, hit at the exact instant (in-process) ---------------------------


async def test_a_crash_after_the_link_before_the_comments_loses_no_comment(world):
    w = world
    bug = await w.jira_issue("Printer on fire")
    await w.jira_comment(bug, "first")
    await w.jira_comment(bug, "second")
    row = await w.integration()

    async def dies_copying_comments(connection):
        connector = await w.connectors(connection)

        async def crash(*args, **kwargs):
            raise Crash()
        connector.add_comment = crash
        return connector

    with pytest.raises(Crash):
        await Engine(w.pool, dies_copying_comments, row, schema="t_acme", tenant="acme").run_once("test")
    [issue] = w.gl_issues()
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.links") == 1 and not w.widgets.notes.get(issue.iid)

    await quiesce(w.engine(row))
    notes = [n.body for n in w.widgets.notes.get(issue.iid, []) if not n.system]
    assert len(notes) == 2 and "first" in notes[0] and "second" in notes[1]
    assert len(w.gl_issues()) == 1 and len(w.jira.issues[bug].comments) == 2


async def test_an_edit_made_while_a_create_was_interrupted_arrives(world):
    w = world
    bug = await w.jira_issue("Printer on fire", description="It smokes.")
    row = await w.integration()

    def fault(point):
        if point == "item_created":
            raise Crash()

    with pytest.raises(Crash):
        await w.engine(row, fault=fault).run_once("test")
    await w.jira_edit(bug, {"summary": "Printer on fire again", "description": "It burns."})
    await quiesce(w.engine(row))
    [issue] = w.gl_issues()
    assert issue.title == "Printer on fire again" and issue.description.startswith("It burns.")

    # The other way: the recovery run reaches the Jira counterpart first and links it by its
    # marker; the GitLab issue's edit made meanwhile arrives all the same.
    iid = await w.gl_issue("Scanner jammed", labels="bug")
    with pytest.raises(Crash):
        await w.engine(row, fault=fault).run_once("test")
    await w.gl_edit(iid, title="Scanner jammed twice")
    await quiesce(w.engine(row))
    assert sorted(i.fields["summary"] for i in w.jira.issues.values()) == ["Printer on fire again",
                                                                           "Scanner jammed twice"]
    assert len(w.gl_issues()) == 2
