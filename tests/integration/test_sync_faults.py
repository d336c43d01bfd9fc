"""The sync engine under failure: a crash right after each kind of remote create, 5xx and 429
rates, an item the app refuses, a revoked credential, a delete seen through a webhook delivery
(set-up: tests/integration/sync_setup.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from appliance.connectors.jira import JiraConnector
from appliance.sync.engine import Engine, SyncRunFailed
from tests.fakes.gitlab import MAINTAINER
from tests.integration.sync_setup import Crash, quiesce, world  # noqa: F401 (world: a fixture)
async def test_a_crash_right_after_a_remote_create_leaves_exactly_one_counterpart(world):
    w = world
    await w.jira_issue("From Jira")
    await w.gl_issue("From GitLab", labels="bug")
    row = await w.integration()
    crashes = []

    def fault(point):
        if point == "item_created":
            crashes.append(point)
            raise Crash()

    with pytest.raises(Crash):
        await w.engine(row, fault=fault).run_once("test")
    assert len(w.gl_issues()) == 2 and len(w.jira.issues) == 1  # created on GitLab; the link never committed
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.links") == 0
    assert await w.pool.fetchval("SELECT state FROM t_acme.intents") == "pending"
    await quiesce(w.engine(row))
    assert len(w.gl_issues()) == 2 and len(w.jira.issues) == 2
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.links") == 2
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.intents WHERE state = 'pending'") == 0

    # The other way: the GitLab issue's Jira counterpart is created, then the crash. The
    # recovery run reaches the Jira side first and links the counterpart by its marker.
    await w.gl_issue("Second from GitLab")
    with pytest.raises(Crash):
        await w.engine(row, fault=fault).run_once("test")
    assert len(w.jira.issues) == 3
    await quiesce(w.engine(row))
    assert len(w.jira.issues) == 3 and len(w.gl_issues()) == 3
    linked = await w.pool.fetchval("SELECT count(*) FROM t_acme.events WHERE action = 'linked'")
    assert linked == 1 and len(crashes) == 2


async def crash_after_the_comment_copy(w, row) -> None:
    """A run that dies right after copying a comment (before recording it), then runs to quiet."""
    def fault(point):
        if point == "comment_created":
            raise Crash()

    with pytest.raises(Crash):
        await w.engine(row, fault=fault).run_once("test")
    await quiesce(w.engine(row))


async def test_a_crash_right_after_a_comment_copy_does_not_duplicate_it(world):
    w = world
    bug = await w.jira_issue("With comments")
    row = await w.integration()
    await w.engine(row).run_once("test")
    await w.jira_comment(bug, "first")
    await crash_after_the_comment_copy(w, row)
    [issue] = w.gl_issues()
    copies = [n.body for n in w.widgets.notes.get(issue.iid, []) if not n.system]
    assert len(copies) == 1 and "first" in copies[0]
    assert len(w.jira.issues[bug].comments) == 1


async def test_a_crash_right_after_a_comment_copy_to_jira_does_not_duplicate_it(world):
    # Jira's search carries comments without their marker property: the recovery must still
    # recognise the copy a crash left unrecorded on the Jira side.
    w = world
    iid = await w.gl_issue("With comments")
    row = await w.integration()
    await w.engine(row).run_once("test")
    await w.gl_comment(iid, "first")
    await crash_after_the_comment_copy(w, row)
    [bug] = w.jira.issues.values()
    assert len(bug.comments) == 1 and "first" in str(bug.comments[0].body)
    assert len([n for n in w.widgets.notes[int(iid)] if not n.system]) == 1


async def test_a_crash_right_after_an_attachment_upload_does_not_upload_it_twice(world):
    w = world
    bug = await w.jira_issue("With a log")
    data = b"0123456789" * 30

    async def chunks():
        yield data

    await w.human_jira.upload_attachment(w.jira.projects["PROJ"].id, bug, "build-log.txt", chunks(), len(data),
                                         "text/plain")
    row = await w.integration()
    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, '{attachments}', "
                         "'{\"enabled\": true}')")

    def fault(point):
        if point == "attachment_uploaded":
            raise Crash()

    with pytest.raises(Crash):
        await w.engine(row, fault=fault).run_once("test")
    await w.jira_edit(bug, {"summary": "With a log!"})
    await quiesce(w.engine(row))
    [issue] = w.gl_issues()
    copy = await w.tandem_gl.get_item(str(w.widgets.id), str(issue.iid))
    assert [(a.filename, a.size) for a in copy.attachments] == [("build-log.txt", 300)]
    assert "paired with the copy already there" in await w.pool.fetchval(
        "SELECT detail FROM t_acme.events WHERE action = 'attachment'")


async def test_fault_rates_converge_and_waits_show_in_run_stats(world):
    w = world
    for i in range(4):
        await w.jira_issue(f"jira {i}")
        await w.gl_issue(f"gitlab {i}", labels="bug")
    for knobs in (w.jira.knobs, w.gl.knobs):
        knobs.error_rate, knobs.rate_limit_rate, knobs.retry_after = 0.10, 0.05, 0.05
    engine = w.engine(await w.integration())
    for _ in range(12):
        result = await engine.run_once("test")
        if result.status == "ok" and not any(result.counts[k] for k in ("created", "updated", "comments")):
            break
    for knobs in (w.jira.knobs, w.gl.knobs):
        knobs.error_rate = knobs.rate_limit_rate = 0
    assert result.status == "ok"
    assert sorted(i.fields["summary"] for i in w.jira.issues.values()) == \
        sorted([f"jira {i}" for i in range(4)] + [f"gitlab {i}" for i in range(4)])
    assert sorted(i.title for i in w.gl_issues()) == sorted(i.fields["summary"] for i in w.jira.issues.values())
    stats = await w.pool.fetchrow("SELECT sum(retries) AS retries, sum(rate_limit_wait_seconds) AS waited, "
                                  "sum(api_calls) AS calls FROM t_acme.runs")
    assert stats["retries"] > 0 and stats["waited"] > 0 and stats["calls"] > 0
    assert w.jira.knobs.failures[503] + w.gl.knobs.failures[503] > 0
    assert w.jira.knobs.failures[429] + w.gl.knobs.failures[429] > 0


async def test_an_item_the_app_refuses_fails_alone_and_is_retried(world):
    w = world
    creates = []

    def refuse_the_second_create(request):     # (and the third)
        # GitLab refusing one item's create (e.g. a validation rule): 400 with its message.
        if request.method == "POST" and request.path.endswith("/issues") and \
                request.headers.get("PRIVATE-TOKEN") == w.tokens["alice"]:
            creates.append(request.path)
            if len(creates) in (2, 3):                       # the item's create, and its first retry
                return web.json_response({"message": {"title": ["is not allowed here"]}}, status=400)
        return None

    w.gl.knobs.fault = refuse_the_second_create
    await w.jira_issue("fine")
    bad = await w.jira_issue("bad title")
    engine = w.engine(await w.integration())
    result = await engine.run_once("test")
    assert result.status == "partial" and result.counts["errors"] == 1 and result.counts["created"] == 1
    error = await w.pool.fetchrow("SELECT * FROM t_acme.item_errors")
    assert error["item_id"] == bad and error["attempts"] == 1 and error["item_key"] == "PROJ-2"
    assert "side B" in error["error"] and "is not allowed here" in error["error"]
    assert error["next_attempt_at"] > error["last_failed_at"]
    backoff = error["next_attempt_at"] - error["last_failed_at"]
    assert (await engine.run_once("test")).counts["errors"] == 0      # not due yet: not retried
    await w.pool.execute("UPDATE t_acme.item_errors SET next_attempt_at = now()")
    assert (await engine.run_once("test")).counts["errors"] == 1      # retried, refused again
    again = await w.pool.fetchrow("SELECT * FROM t_acme.item_errors")
    assert again["attempts"] == 2 and again["next_attempt_at"] - again["last_failed_at"] > backoff * 1.2
    await w.jira_edit(bad, {"summary": "short now"})
    await w.pool.execute("UPDATE t_acme.item_errors SET next_attempt_at = now()")
    await engine.run_once("test")
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.item_errors") == 0
    assert sorted(i.title for i in w.gl_issues()) == ["fine", "short now"]


async def test_a_revoked_credential_stops_only_its_integration(world):
    w = world
    first = w.engine(await w.integration("first"))
    second = w.engine(await w.integration("second", b=w.gl_conn2, b_container=str(w.other.id),
                                          a_container=w.jira.projects["OPS"].id))
    w.gl.revoke(w.tokens["alice"])
    await w.jira_issue("for first")
    await w.jira_issue("for second", project="OPS")
    with pytest.raises(SyncRunFailed, match=r"side B \(connection 'gitlab'\): credential refused"):
        await first.run_once("test")
    ok = await second.run_once("test")
    assert ok.status == "ok" and [i.title for i in w.gl_issues(w.other)] == ["for second"]
    assert w.gl_issues(w.widgets) == []
    run = await w.pool.fetchrow("SELECT status, error FROM t_acme.runs WHERE integration_id = $1", first.id)
    assert run["status"] == "failed" and "credential refused" in run["error"] and "401" in run["error"]


async def test_a_webhook_delivery_about_a_deleted_item_closes_its_counterpart(world):
    w = world
    bug = await w.jira_issue("Going away")
    row = await w.integration()
    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, '{delete_policy}', '\"close\"')")
    engine = w.engine(row)
    await engine.run_once("test")
    [issue] = w.gl_issues()
    assert issue.state == "opened"
    del w.jira.issues[bug]                                     # deleted in Jira; polls cannot see that
    await w.pool.execute("INSERT INTO t_acme.webhook_deliveries (integration_id, side, item_id, kind) "
                         "VALUES ($1, 'a', $2, 'deleted')", row["id"], bug)
    result = await engine.run_once("webhook")
    assert result.status == "ok" and issue.state == "closed"
    assert await w.pool.fetchval("SELECT state FROM t_acme.links") == "deleted"
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.webhook_deliveries WHERE processed_at IS NULL") == 0
    detail = await w.pool.fetchval("SELECT detail FROM t_acme.events WHERE action = 'deleted'")
    assert "was deleted on side A" in detail and "set to closed (close policy)" in detail
    await w.gl_edit(issue.iid, title="edited after the delete")
    await quiesce(engine)                                      # a deleted pair is left alone
    assert len(w.jira.issues) == 0 and len(w.gl_issues()) == 1


@pytest.mark.parametrize("policy,users", [("delete", True), ("close", False)])
async def test_access_lost_to_a_project_stops_the_run_and_deletes_nothing(world, policy, users):
    """GitLab answers 404 for every issue of a project its account was removed from: that is
    not a mass delete. Each way the engine meets those 404s (loading the project's users, its
    poll, a webhook about one of its issues, reading the counterpart of a Jira edit) stops the
    run with the reason and leaves every pair and counterpart as it was; with access back, all
    flows on."""
    w = world
    bugs = [await w.jira_issue(f"Bug {n}") for n in range(3)]
    row = await w.integration()
    change = "jsonb_set(spec, '{delete_policy}', $1::jsonb)"
    if not users:       # nothing that needs the users' directory: the project's first 404 comes later
        change = f"jsonb_set(jsonb_set({change}, '{{field_mappings}}', (spec->'field_mappings') - 4 - 3 - 1), " \
                 "'{comments,enabled}', 'false')"
    await w.pool.execute(f"UPDATE t_acme.integrations SET spec = {change}", f'"{policy}"')
    engine = w.engine(row)
    await engine.run_once("test")
    assert len(w.gl_issues()) == 3
    statuses = {key: issue.fields["status"] for key, issue in w.jira.issues.items()}
    access = w.widgets.members.pop(w.alice.id)                 # alice's token can no longer see the project
    not_visible = r"side B \(connection 'gitlab'\): project not visible: the project \(id '\d+'\) is gone"
    with pytest.raises(SyncRunFailed, match=not_visible):
        await engine.run_once("reconcile")
    [iid] = [r["b_id"] for r in await w.pool.fetch("SELECT b_id FROM t_acme.links WHERE a_id = $1", bugs[0])]
    await w.jira_edit(bugs[1], {"summary": "Bug 1, edited"})
    for side, item in (("b", iid), ("a", bugs[1])):
        await w.pool.execute("INSERT INTO t_acme.webhook_deliveries (integration_id, side, item_id, kind) "
                             "VALUES ($1, $2, $3, 'updated')", row["id"], side, item)
        with pytest.raises(SyncRunFailed, match=not_visible):
            await engine.run_once("webhook")
    assert {key: issue.fields["status"] for key, issue in w.jira.issues.items()} == statuses
    assert len(w.gl_issues()) == 3
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.links WHERE state = 'active'") == 3
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.events WHERE action = 'deleted'") == 0

    w.widgets.members[w.alice.id] = access
    await w.gl_edit(iid, title="Bug 0, seen again")
    await quiesce(engine)
    assert w.jira.issues[bugs[0]].fields["summary"] == "Bug 0, seen again"
    assert [i.title for i in w.gl_issues()] == ["Bug 0, seen again", "Bug 1, edited", "Bug 2"]


async def test_a_delete_the_account_may_not_make_is_reported_and_syncing_goes_on(world):
    """GitLab lets only a project's Owners delete issues. Under delete policy "delete", a
    Maintainer account's 403 leaves that counterpart alone with an event saying so: it is not a
    refused credential, and stopping would stop the integration on every run."""
    w = world
    gone, kept = await w.jira_issue("Going away"), await w.jira_issue("Staying")
    row = await w.integration()
    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, '{delete_policy}', '\"delete\"')")
    engine = w.engine(row)
    await engine.run_once("test")
    assert len(w.gl_issues()) == 2
    w.widgets.members[w.alice.id] = MAINTAINER
    del w.jira.issues[gone]
    await w.pool.execute("INSERT INTO t_acme.webhook_deliveries (integration_id, side, item_id, kind) "
                         "VALUES ($1, 'a', $2, 'deleted')", row["id"], gone)
    result = await engine.run_once("webhook")
    assert result.status == "ok" and len(w.gl_issues()) == 2
    detail = await w.pool.fetchval("SELECT detail FROM t_acme.events WHERE action = 'deleted'")
    assert "left alone: the connection's account may not delete it" in detail and "403" in detail
    assert await w.pool.fetchval("SELECT state FROM t_acme.links WHERE a_id = $1", gone) == "deleted"
    await w.jira_edit(kept, {"summary": "Staying, edited"})
    assert (await engine.run_once("test")).status == "ok"
    assert sorted(i.title for i in w.gl_issues()) == ["Going away", "Staying, edited"]


async def test_an_edit_made_while_tandem_writes_the_item_is_still_copied(world):
    """Jira's update is a PUT, then a read of the issue. A person's edit of another field that
    lands in between is in that read: the pair is not marked in step up to it, so the next poll
    copies it (before, only the six-hourly reconciliation did)."""
    w = world
    bug = await w.jira_issue("Printer", description="as filed")
    row = await w.integration()
    await quiesce(w.engine(row))
    [issue] = w.gl_issues()
    await w.gl_edit(issue.iid, title="Printer (renamed in GitLab)")
    armed = [True]

    async def racing(connection):
        connector = await w.connectors(connection)
        if connection["kind"] == "jira":
            send = connector._json

            async def _json(method, path, *args, **kwargs):
                answer = await send(method, path, *args, **kwargs)
                if armed[0] and method == "PUT" and path == f"issue/{bug}":
                    armed[0] = False        # bob edits right after Tandem's PUT, before its read
                    await w.jira_edit(bug, {"description": "bob's new description"})
                return answer
            connector._json = _json
        return connector

    engine = Engine(w.pool, racing, row, schema="t_acme", tenant="acme", page_size=3)
    await engine.run_once("test")
    assert not armed[0] and w.jira.issues[bug].fields["summary"] == "Printer (renamed in GitLab)"
    await engine.run_once("test")
    assert issue.description.startswith("bob's new description")


async def test_a_delivery_and_the_poll_never_look_at_one_pair_at_once(world):
    """A webhook names GitLab issue Y while a poll is under way; a later page of that poll brings
    Jira issue X, Y's pair, before the delivery's look has ended. The poll's look at X waits for
    it: both at once copied Y's new note to Jira twice."""
    w = world
    bugs = [await w.jira_issue(f"Bug {n}") for n in range(4)]
    row = await w.integration()
    await quiesce(w.engine(row))
    x = bugs[3]
    y = next(i.iid for i in w.gl_issues() if i.title == "Bug 3")
    for bug in bugs[:3]:
        await w.jira_edit(bug, {"description": "edited before X"})     # the pages before X's
    await w.jira_edit(x, {"description": "X edited in Jira"})
    await w.gl_comment(y, "a note bob adds in GitLab")
    await w.pool.execute("INSERT INTO t_acme.webhook_deliveries (integration_id, side, item_id) "
                         "VALUES ($1, 'b', $2)", row["id"], str(y))
    slow = {"read": True, "comment": True}

    async def timed(connection):
        connector = await w.connectors(connection)
        if connection["kind"] == "gitlab":
            read = connector.get_item

            async def get_item(container, item_id, **options):
                if slow["read"] and item_id == str(y):
                    slow["read"] = False
                    await asyncio.sleep(0.4)        # the delivery's read of Y takes a moment
                return await read(container, item_id, **options)
            connector.get_item = get_item
        else:
            add = connector.add_comment

            async def add_comment(*args, **kwargs):
                if slow["comment"]:
                    slow["comment"] = False
                    await asyncio.sleep(0.8)        # and Jira takes its time with the copy
                return await add(*args, **kwargs)
            connector.add_comment = add_comment
        return connector

    engine = Engine(w.pool, timed, row, schema="t_acme", tenant="acme", page_size=1)
    engine.ask_for_deliveries()         # as SyncJobs asks a busy engine
    result = await engine.run_once("schedule")
    assert result.status == "ok" and result.counts["errors"] == 0
    await quiesce(w.engine(row))
    bodies = [c.body for c in w.jira.issues[x].comments]
    assert len(bodies) == 1 and bodies[0].endswith("a note bob adds in GitLab")
    assert await w.pool.fetch("SELECT error FROM t_acme.item_errors") == []


async def test_an_item_the_connector_cannot_read_fails_alone_and_the_poll_goes_on(world, monkeypatch):
    """Data of one issue the connector cannot convert (a field shape it does not know) used to
    fail the whole page, and so every poll of that side, at the same place. It fails alone: the
    others sync, the cursor passes it, and its retry syncs it once it can be read."""
    w = world
    bugs = [await w.jira_issue(f"Bug {n}") for n in range(5)]
    convert = JiraConnector._item

    def odd(self, issue):
        if str(issue["id"]) == bugs[2]:
            raise ValueError("unexpected shape of field customfield_10099")
        return convert(self, issue)

    monkeypatch.setattr(JiraConnector, "_item", odd)
    row = await w.integration()
    engine = w.engine(row)
    result = await engine.run_once("test")
    assert result.status == "partial" and result.counts["created"] == 4
    assert sorted(i.title for i in w.gl_issues()) == ["Bug 0", "Bug 1", "Bug 3", "Bug 4"]
    [error] = await w.pool.fetch("SELECT item_id, error FROM t_acme.item_errors")
    assert error["item_id"] == bugs[2] and "unexpected shape of field customfield_10099" in error["error"]
    since = await w.pool.fetchval("SELECT since FROM t_acme.cursors WHERE side = 'a'")
    assert since >= w.jira.issues[bugs[4]].updated            # the cursor went past it

    monkeypatch.setattr(JiraConnector, "_item", convert)       # a fixed connector, say
    await w.pool.execute("UPDATE t_acme.item_errors SET next_attempt_at = now()")
    await engine.run_once("test")
    assert len(w.gl_issues()) == 5 and await w.pool.fetch("SELECT 1 FROM t_acme.item_errors") == []


async def test_gitlabs_note_limit_slows_the_backfill_down_and_loses_nothing(world):
    """GitLab limits notes per user and minute (here 4 a second) and its 429 names no wait. The
    budget pauses all the integration's requests, longer while the 429s keep coming: every
    comment arrives once, no item fails, and the waits show in the run's stats."""
    w = world
    bugs = [await w.jira_issue(f"Bug {n}") for n in range(6)]
    for bug in bugs:
        await w.jira_comment(bug, f"first on {bug}")
        await w.jira_comment(bug, f"second on {bug}")
    w.gl.notes_limit = (4, 1.0)
    engine = w.engine(await w.integration())
    result = await engine.run_once("test")
    assert result.counts["errors"] == 0 and result.counts["created"] == 6
    notes = [n.body for issue in w.gl_issues() for n in w.widgets.notes.get(issue.iid, [])]
    assert len(notes) == 12 and len(set(notes)) == 12
    waited = await w.pool.fetchval("SELECT rate_limit_wait_seconds FROM t_acme.runs WHERE id = $1", result.run_id)
    assert waited >= 0.5 and result.retries > 0
