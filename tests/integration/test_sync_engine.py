"""The sync engine (appliance/sync/engine.py) between the Jira and GitLab emulators: creates,
edits both ways, conflicts by policy, echo, random interleavings through the real engine,
attachments, preview and reconciliation (set-up: tests/integration/sync_setup.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random

import aiohttp
import pytest
from prometheus_client import REGISTRY

from appliance.sync.engine import Engine

from tests.integration.sync_setup import DESCRIPTION, STATUS, quiesce, world  # noqa: F401 (world: a fixture)
async def test_creates_both_ways_with_mapped_fields_and_comments(world):
    w = world
    bug = await w.jira_issue("Printer on fire", description="Steps:\n* plug in\n* press *power*",
                             labels=["ui"], assignee="bob")
    await w.jira_comment(bug, "Smells like toner")
    await w.gl_issue("Login broken", description=DESCRIPTION, labels="api,status::doing", assignee_ids=[w.bob.id])
    row = await w.integration()
    engine = w.engine(row)

    def metrics():
        labels = {"tenant": "acme", "integration": "jira-gitlab"}
        return {"created": REGISTRY.get_sample_value("sync_items_total", {**labels, "action": "created"}) or 0,
                "runs": REGISTRY.get_sample_value("sync_runs_total", {**labels, "status": "ok"}) or 0,
                "calls": REGISTRY.get_sample_value("sync_api_calls_total", labels) or 0}

    before = metrics()
    result = await engine.run_once("test")
    assert result.status == "ok" and result.counts["created"] == 2 and result.counts["comments"] == 1

    [login, printer] = sorted(w.gl_issues(), key=lambda i: i.title)
    assert printer.title == "Printer on fire"
    assert set(printer.labels) == {"bug", "ui"} and printer.assignee_ids == [w.bob.id]
    gl_printer = await w.tandem_gl.get_item(str(w.widgets.id), str(printer.iid))
    assert gl_printer.fields["description"] == "Steps:\n\n- plug in\n- press **power**"
    assert [c.body for c in gl_printer.comments] == ["*Bob Builder wrote:*\n\nSmells like toner"]

    jira_login = next(i for i in w.jira.issues.values() if i.fields["summary"] == "Login broken")
    item = await w.tandem_jira.get_item(w.jira.projects["PROJ"].id, jira_login.id)
    assert item.type == "Task"                                  # an issue without the bug label
    assert item.fields["status"] == "In Progress" and item.fields["labels"] == ["api"]
    assert item.fields["description"] == DESCRIPTION
    assert [a["login"] for a in item.fields["assignees"]] == ["bob"]

    links = await w.pool.fetch("SELECT a_key, b_key, state FROM t_acme.links ORDER BY id")
    assert {(r["a_key"], r["state"]) for r in links} == {("PROJ-1", "active"), (item.key, "active")}
    run = await w.pool.fetchrow("SELECT * FROM t_acme.runs WHERE id = $1", result.run_id)
    assert run["status"] == "ok" and run["items_created"] == 2 and run["api_calls"] > 0 and run["finished_at"]
    after = metrics()
    assert after["created"] - before["created"] == 2 and after["runs"] - before["runs"] == 1
    assert after["calls"] - before["calls"] == run["api_calls"]
    actions = [r["action"] for r in await w.pool.fetch("SELECT action FROM t_acme.events ORDER BY id")]
    assert actions.count("created") == 2 and actions.count("comment") == 1

    # Edits flow both ways, field by field, comments too.
    await w.gl_edit(printer.iid, state_event="close", title="Printer on fire (again)")
    await w.jira_edit(bug, {"labels": ["ui", "hardware"]})
    await w.gl_comment(printer.iid, "Fixed by replacing the fuser")
    await quiesce(engine)
    jira_bug = await w.tandem_jira.get_item(w.jira.projects["PROJ"].id, bug)
    assert jira_bug.fields["status"] == "Done" and jira_bug.fields["title"] == "Printer on fire (again)"
    assert jira_bug.fields["labels"] == ["hardware", "ui"]
    assert [c.body for c in jira_bug.comments][-1] == "*Bob Builder wrote:*\n\nFixed by replacing the fuser"
    assert printer.state == "closed" and set(printer.labels) == {"bug", "ui", "hardware"}
    assert len(w.gl_issues()) == 2 and len(w.jira.issues) == 2
    assert len([n for n in w.widgets.notes[printer.iid] if not n.system]) == 2

    # Echo: quiet runs make no writes at all, and Tandem's writes never bounce back.
    writes = w.tandem_writes()
    for _ in range(3):
        quiet = await engine.run_once("test")
        assert quiet.counts["updated"] == quiet.counts["created"] == quiet.counts["comments"] == 0
    assert w.tandem_writes() == writes
    assert len(w.jira.writes_by(w.jira.bob)) == 3 and len(w.gl.writes_by(w.tokens["bob"])) == 3


async def title_edited_on_both_sides(w, **gitlab_edits):
    """A synced pair whose title was then edited on both sides; (Jira id, engine, GitLab issue)."""
    bug = await w.jira_issue("Original title")
    engine = w.engine(await w.integration())
    await engine.run_once("test")
    [issue] = w.gl_issues()
    await w.jira_edit(bug, {"summary": "Title from Jira"})
    await w.gl_edit(issue.iid, title="Title from GitLab", **gitlab_edits)
    return bug, engine, issue


async def test_a_field_edited_on_both_sides_is_held_then_resolved(world):
    w = world
    bug, engine, issue = await title_edited_on_both_sides(w, labels="bug,ui")
    writes = w.tandem_writes()
    result = await engine.run_once("test")
    assert result.counts["conflicts"] == 1
    # Held: the title stays as each person wrote it; the label (changed on one side) flowed.
    assert w.jira.issues[bug].fields["summary"] == "Title from Jira" and issue.title == "Title from GitLab"
    assert w.jira.issues[bug].fields["labels"] == ["ui"]
    conflict = await w.pool.fetchrow("SELECT * FROM t_acme.conflicts")
    assert (conflict["field"], conflict["state"]) == ("title", "open")
    assert json.loads(conflict["a_value"]) == "Title from Jira"
    assert json.loads(conflict["b_value"]) == "Title from GitLab"
    assert json.loads(conflict["base_value"]) == "Original title"
    assert await w.pool.fetchval("SELECT state FROM t_acme.links") == "conflict"
    await engine.run_once("test")                              # still held, not duplicated, nothing written
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.conflicts") == 1
    assert w.tandem_writes() == writes + 1

    # A person picks GitLab's title in the conflict inbox; the next look applies it.
    await w.pool.execute("UPDATE t_acme.conflicts SET state = 'resolved', resolution = 'b', resolved_by = 'ann', "
                         "resolved_at = now()")
    result = await engine.run_once("test")                     # no edit needed: the resolution brings the pair
    assert result.counts["updated"] == 1
    assert w.jira.issues[bug].fields["summary"] == "Title from GitLab"
    assert await w.pool.fetchval("SELECT applied_at IS NOT NULL FROM t_acme.conflicts") is True
    assert await w.pool.fetchval("SELECT state FROM t_acme.links") == "active"


@pytest.mark.parametrize("settle", ["agree", "undo"])
async def test_a_held_conflict_people_settle_themselves_leaves_the_inbox(world, settle):
    """Held, then people make the two titles agree (or undo one side's edit, which then
    flows): the conflict is closed as settled by the sides, not left open in the inbox."""
    w = world
    bug, engine, issue = await title_edited_on_both_sides(w)
    assert (await engine.run_once("test")).counts["conflicts"] == 1
    if settle == "agree":
        await w.gl_edit(issue.iid, title="Title from Jira")
    else:
        await w.gl_edit(issue.iid, title="Original title")
    await engine.run_once("test")
    assert w.jira.issues[bug].fields["summary"] == issue.title == "Title from Jira"
    conflict = await w.pool.fetchrow("SELECT state, resolved_by FROM t_acme.conflicts")
    assert (conflict["state"], conflict["resolved_by"]) == ("resolved", "sides agree")
    assert await w.pool.fetchval("SELECT state FROM t_acme.links") == "active"


async def test_newest_policy_settles_and_records_the_conflict(world):
    w = world
    bug = await w.jira_issue("Original")
    engine = w.engine(await w.integration(policy="newest"))
    await engine.run_once("test")
    [issue] = w.gl_issues()
    await w.jira_edit(bug, {"summary": "older from Jira"})
    await asyncio.sleep(0.01)                                  # the apps stamp milliseconds; ties go to A
    await w.gl_edit(issue.iid, title="newer from GitLab")
    await quiesce(engine)
    assert w.jira.issues[bug].fields["summary"] == "newer from GitLab" == issue.title
    row = await w.pool.fetchrow("SELECT state, resolution, resolved_value FROM t_acme.conflicts")
    assert (row["state"], row["resolution"], json.loads(row["resolved_value"])) == \
        ("resolved", "newest", "newer from GitLab")


async def test_preview_shows_the_writes_of_the_next_run_and_makes_none(world):
    from appliance.sync.preview import preview
    w = world
    bug = await w.jira_issue("Printer on fire", labels=["ui"])
    engine = w.engine(await w.integration())
    before = (w.tandem_writes(), await w.pool.fetchval("SELECT count(*) FROM t_acme.runs"))
    plan = await preview(engine)
    assert plan == [{"action": "create", "side": "b", "source": "PROJ-1", "type": "issue",
                     "fields": {"title": "Printer on fire", "description": "", "status": "opened",
                                "labels": ["bug", "ui"], "assignees": []}}]
    assert (w.tandem_writes(), await w.pool.fetchval("SELECT count(*) FROM t_acme.runs")) == before
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.cursors") == 0 and w.gl_issues() == []

    await engine.run_once("test")
    [issue] = w.gl_issues()
    await w.jira_edit(bug, {"summary": "Printer on fire!"})
    await w.gl_edit(issue.iid, state_event="close")
    assert await preview(engine) == [
        {"action": "update", "side": "a", "item": "PROJ-1", "source": "#1", "fields": {"status": "Done"},
         "old": {"status": "To Do"}, "why": "status: changed on B"},
        {"action": "update", "side": "b", "item": "#1", "source": "PROJ-1", "fields": {"title": "Printer on fire!"},
         "old": {"title": "Printer on fire"}, "why": "title: changed on A"}]
    assert issue.title == "Printer on fire" and w.jira.issues[bug].fields["status"] != "10001"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_interleavings_through_the_real_engine(world, seed):
    """People edit title, status and labels of three pairs on both sides at random, with runs in
    between (policy a_wins). After every run each field holds the last edit of the side that
    edited it (A's when both did), on both sides; quiet runs write nothing."""
    w = world
    rng = random.Random(seed)
    for i in range(2):
        await w.jira_issue(f"jira {i}")
    await w.gl_issue("gitlab 0", labels="bug")
    engine = w.engine(await w.integration(policy="a_wins"))
    await engine.run_once("test")
    links = await w.pool.fetch("SELECT a_id, b_id FROM t_acme.links ORDER BY id")
    assert len(links) == 3
    a_project, b_project = w.jira.projects["PROJ"].id, str(w.widgets.id)

    async def read(pair):
        a = await w.tandem_jira.get_item(a_project, pair["a_id"], comments=False)
        b = await w.tandem_gl.get_item(b_project, pair["b_id"], comments=False)
        return ({"title": a.fields["title"], "status": a.fields["status"], "labels": a.fields["labels"]},
                {"title": b.fields["title"], "status": b.fields["status"],
                 "labels": [x for x in b.fields["labels"] if x != "bug"]})

    synced = [await read(pair) for pair in links]
    for pair, (a, b) in zip(links, synced):
        assert a["title"] == b["title"] and STATUS[a["status"]] == b["status"]
    edits: list[dict] = [{} for _ in links]
    counter = 0
    for _ in range(16):
        if rng.random() < 0.7:
            index, side = rng.randrange(len(links)), rng.choice("ab")
            field = rng.choice(["title", "status", "labels"])
            counter += 1
            value = {"title": f"{side}{counter}", "status": rng.choice(sorted(STATUS)),
                     "labels": sorted(rng.sample(["ui", "api", "db"], rng.randint(0, 2)))}[field]
            if side == "a":
                await w.human_jira.update_item(a_project, links[index]["a_id"], {field: value})
            else:
                out = STATUS[value] if field == "status" else (sorted([*value, "bug"]) if field == "labels" else value)
                await w.human_gl.update_item(b_project, links[index]["b_id"], {field: out})
            edits[index].setdefault(field, {})[side] = value
            continue
        await engine.run_once("test")
        for index, pair in enumerate(links):
            a, b = await read(pair)
            for field in ("title", "status", "labels"):
                made = edits[index].get(field, {})
                expected = made.get("a", made.get("b", synced[index][0][field]))
                assert a[field] == expected, (seed, index, field, made)
                assert b[field] == (STATUS[expected] if field == "status" else expected), (seed, index, field)
            synced[index] = (a, b)
            edits[index] = {}
    await engine.run_once("test")                              # the edits made after the last run
    writes = w.tandem_writes()
    quiet = await engine.run_once("test")
    assert quiet.counts["updated"] == 0 and w.tandem_writes() == writes


async def test_attachments_stream_across_once_within_the_size_cap(world):
    w = world

    async def upload(connector, container, item_id, name, data):
        async def chunks():
            yield data[:100]
            yield data[100:]
        return await connector.upload_attachment(container, item_id, name, chunks(), len(data), "text/plain")

    async def content(connector, ref):
        return b"".join([chunk async for chunk in connector.download_attachment(ref)])

    a_project, b_project = w.jira.projects["PROJ"].id, str(w.widgets.id)
    bug = await w.jira_issue("With a log")
    log_data, big, shot = b"line\n" * 120, b"x" * 2000, bytes(range(100))
    await upload(w.human_jira, a_project, bug, "log.txt", log_data)
    await upload(w.human_jira, a_project, bug, "big.bin", big)
    issue = await w.gl_issue("With a screenshot")
    await upload(w.human_gl, b_project, issue, "shot.png", shot)
    row = await w.integration()
    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, '{attachments}', "
                         "'{\"enabled\": true, \"max_bytes\": 1000}')")
    engine = w.engine(row)
    result = await engine.run_once("test")
    assert result.counts["attachments"] == 2
    links = {r["a_id"]: r["b_id"] for r in await w.pool.fetch("SELECT a_id, b_id FROM t_acme.links")}
    gl_copy = await w.tandem_gl.get_item(b_project, links[bug])
    assert [(a.filename, a.size) for a in gl_copy.attachments] == [("log.txt", 600)]
    assert await content(w.tandem_gl, gl_copy.attachments[0]) == log_data
    assert [c.body for c in gl_copy.comments] == []               # the upload's link note is not a comment
    jira_copy = await w.tandem_jira.get_item(a_project, next(a for a, b in links.items() if b == issue))
    assert [(a.filename, a.size) for a in jira_copy.attachments] == [("shot.png", 100)]
    assert await content(w.tandem_jira, jira_copy.attachments[0]) == shot
    shas = await w.pool.fetch("SELECT filename, sha256 FROM t_acme.attachment_links ORDER BY filename")
    assert [(r["filename"], r["sha256"]) for r in shas] == [
        ("log.txt", hashlib.sha256(log_data).hexdigest()), ("shot.png", hashlib.sha256(shot).hexdigest())]

    writes = w.tandem_writes()
    await quiesce(engine)
    await w.jira_edit(bug, {"summary": "With a log (edited)"})       # the pair is looked at again
    await quiesce(engine)
    assert w.tandem_writes() == writes + 1                           # the title only; no upload again
    assert len((await w.tandem_gl.get_item(b_project, links[bug])).attachments) == 1
    skipped = await w.pool.fetch("SELECT detail FROM t_acme.events WHERE action = 'attachment_skipped'")
    assert len(skipped) == 1 and "'big.bin' is 2000 bytes, over the limit of 1000" in skipped[0]["detail"]


async def test_files_people_link_in_gitlab_copy_across_with_the_size_cap_kept(world):
    """GitLab lists no size for a file a person uploads and links in Markdown (its UI's way): the
    engine reads it to learn the size, never past the cap, and a file over the cap is not read
    again until the cap is raised."""
    w = world
    b_project = str(w.widgets.id)

    async def person_uploads(name: str, data: bytes) -> str:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
        async with w.http.post(f"{w.gl_url}/api/v4/projects/{b_project}/uploads", data=form,
                               headers=w.gl_bob) as response:
            assert response.status == 201, await response.text()
            return (await response.json())["markdown"]

    issue = await w.gl_issue("Crash on save")
    small, big = bytes(range(256)) * 3, b"z" * 1500
    await w.gl_comment(issue, f"Trace attached: {await person_uploads('trace.bin', small)}")
    await w.gl_comment(issue, f"And the dump {await person_uploads('core.bin', big)}")
    row = await w.integration()
    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, '{attachments}', "
                         "'{\"enabled\": true, \"max_bytes\": 1000}')")
    engine = w.engine(row)
    downloads = "/api/v4/projects/{id}/uploads/{secret}/{filename}"
    result = await engine.run_once("test")
    assert result.counts["attachments"] == 1 and result.counts["errors"] == 0
    [a_id] = [r["a_id"] for r in await w.pool.fetch("SELECT a_id FROM t_acme.links")]
    jira_copy = await w.tandem_jira.get_item(w.jira.projects["PROJ"].id, a_id)
    assert [(a.filename, a.size) for a in jira_copy.attachments] == [("trace.bin", 768)]
    assert b"".join([c async for c in w.tandem_jira.download_attachment(jira_copy.attachments[0])]) == small
    [pair] = await w.pool.fetch("SELECT size, sha256 FROM t_acme.attachment_links")
    assert (pair["size"], pair["sha256"]) == (768, hashlib.sha256(small).hexdigest())
    [skipped] = await w.pool.fetch("SELECT detail FROM t_acme.events WHERE action = 'attachment_skipped'")
    assert "'core.bin' is larger than the limit of 1000" in skipped["detail"]

    read = w.gl.knobs.count("GET", downloads)
    await w.gl_edit(issue, title="Crash on save (again)")          # the pair is looked at again
    await quiesce(engine)
    assert w.gl.knobs.count("GET", downloads) == read              # the file over the cap is not read again
    assert len(await w.pool.fetch("SELECT 1 FROM t_acme.events WHERE action = 'attachment_skipped'")) == 1

    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, '{attachments,max_bytes}', '2000')")
    await w.gl_edit(issue, title="Crash on save (dump wanted)")
    await quiesce(engine)
    jira_copy = await w.tandem_jira.get_item(w.jira.projects["PROJ"].id, a_id)
    assert sorted((a.filename, a.size) for a in jira_copy.attachments) == [("core.bin", 1500), ("trace.bin", 768)]


async def test_a_reconcile_run_heals_a_change_the_polls_missed(world):
    w = world
    bug = await w.jira_issue("Before")
    engine = w.engine(await w.integration())
    await engine.run_once("test")
    # An edit the cursor has already passed (as behind a clock skew larger than the overlap).
    await w.jira_edit(bug, {"summary": "After"})
    await w.pool.execute("UPDATE t_acme.cursors SET since = now() + interval '1 hour'")
    await engine.run_once("schedule")
    [issue] = w.gl_issues()
    assert issue.title == "Before"
    result = await engine.run_once("reconcile")
    assert result.counts["updated"] == 1 and issue.title == "After"


async def test_a_backfill_lists_no_comments_it_already_holds(world):
    # The search page carries each issue's comments, and a counterpart created in the same look
    # has none but Tandem's copies: neither is listed. A comment added later still crosses.
    w = world
    bugs = [await w.jira_issue(f"Printer {n} on fire") for n in range(3)]
    for bug in bugs:
        await w.jira_comment(bug, "first")
        await w.jira_comment(bug, "second")
    row = await w.integration()
    result = await w.engine(row).run_once("test")
    assert result.status == "ok" and result.counts["created"] == 3 and result.counts["comments"] == 6
    comment_lists = ("GET", "/rest/api/2/issue/{issueIdOrKey}/comment")
    note_lists = ("GET", "/api/v4/projects/{id}/issues/{iid}/notes")
    assert w.jira.knobs.requests[comment_lists] == 0
    # The GitLab poll of the same run sees the new issues (our notes moved them) and lists each
    # once; finding only our own copies there, it reads no counterpart (Engine._quiet).
    assert w.gl.knobs.requests[note_lists] == 3
    assert w.jira.knobs.requests[("GET", "/rest/api/2/issue/{issueIdOrKey}")] == 0
    times = await w.pool.fetch("SELECT b_id, b_updated_at FROM t_acme.links")
    shown = {str(i.iid): i.updated_at.replace(microsecond=i.updated_at.microsecond // 1000 * 1000)
             for i in w.gl_issues()}      # GitLab shows milliseconds
    assert {r["b_id"]: r["b_updated_at"] for r in times} == shown
    for issue in w.gl_issues():
        notes = [n.body for n in w.widgets.notes[issue.iid] if not n.system]
        assert len(notes) == 2 and "first" in notes[0] and "second" in notes[1]

    await w.jira_comment(bugs[1], "third")
    await quiesce(w.engine(row))
    issue = next(i for i in w.gl_issues() if i.title == "Printer 1 on fire")
    notes = [n.body for n in w.widgets.notes[issue.iid] if not n.system]
    assert len(notes) == 3 and all(text in note for note, text in zip(notes, ("first", "second", "third")))
    assert all(len(w.jira.issues[bug].comments) == 2 + (bug == bugs[1]) for bug in bugs)


async def test_comment_news_on_an_item_whose_fields_did_not_change_still_crosses(world):
    """Engine._quiet lets a changed item go with only its update time recorded when nothing on
    it is new to the pair; a new, edited or deleted comment is news, and takes the full look."""
    w = world
    bug = await w.jira_issue("Printer on fire")
    row = await w.integration()
    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, '{delete_policy}', '\"delete\"')")
    engine = w.engine(row)
    await quiesce(engine)
    [issue] = w.gl_issues()

    def jira_comments() -> list[str]:
        return [c.body.split("\n\n", 1)[1] for c in w.jira.issues[bug].comments]     # after the author line

    await w.gl_comment(issue.iid, "Smells like toner")
    note_lists = ("GET", "/api/v4/projects/{id}/issues/{iid}/notes")
    listed = w.gl.knobs.requests[note_lists]
    assert (await engine.run_once("test")).counts["comments"] == 1
    assert w.gl.knobs.requests[note_lists] == listed + 1     # the full look reuses _quiet's listing
    await quiesce(engine)
    assert jira_comments() == ["Smells like toner"]
    [note] = [n for n in w.widgets.notes[issue.iid] if not n.system]
    await w.call("PUT", f"{w.gl_url}/api/v4/projects/{w.widgets.id}/issues/{issue.iid}/notes/{note.id}", w.gl_bob,
                 {"body": "Smells like burnt toner"})
    await quiesce(engine)
    assert jira_comments() == ["Smells like burnt toner"]
    await w.call("DELETE", f"{w.gl_url}/api/v4/projects/{w.widgets.id}/issues/{issue.iid}/notes/{note.id}",
                 w.gl_bob)
    await quiesce(engine)
    assert jira_comments() == []
    assert w.jira.issues[bug].fields["summary"] == issue.title == "Printer on fire"


async def test_a_comment_added_while_tandem_writes_the_item_is_not_lost(world):
    # The counterpart's comments came with its read; a person's comment made between that read
    # and Tandem's write (whose read-back update time the pair then records) is listed, not missed.
    w = world
    bug = await w.jira_issue("Printer on fire")
    row = await w.integration()
    await quiesce(w.engine(row))
    [issue] = w.gl_issues()
    await w.gl_edit(issue.iid, title="Printer on fire again")

    async def comment_before_the_write(connection):
        connector = await w.connectors(connection)
        update = connector.update_item

        async def update_item(container, item_id, changes):
            if item_id == bug:
                await w.jira_comment(bug, "Meanwhile: smoke")
            return await update(container, item_id, changes)
        connector.update_item = update_item
        return connector

    result = await Engine(w.pool, comment_before_the_write, row, schema="t_acme", tenant="acme").run_once("test")
    assert result.counts["updated"] == 1 and w.jira.issues[bug].fields["summary"] == "Printer on fire again"
    await quiesce(w.engine(row))
    [note] = [n.body for n in w.widgets.notes.get(issue.iid, []) if not n.system]
    assert note.startswith("*Bob Builder wrote:*\n\nMeanwhile: smoke")
