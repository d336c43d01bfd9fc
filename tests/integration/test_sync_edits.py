"""Edits and deletes of what hangs off a linked pair, through the real engine between the Jira and
GitLab emulators: comment edits both ways (no echo, no growth), comment conflicts by policy,
comment and attachment deletes by the delete policy (and what GitLab cannot do), and item type
changes (set-up: tests/integration/sync_setup.py; Tandem is alice on both sides, people are bob,
carol, a Jira administrator, and alice's second GitLab token acting by hand)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.integration.sync_setup import quiesce, world  # noqa: F401 (world: a fixture)

HEADER = "*Bob Builder wrote:*\n\n"


class People:
    """What people do by hand, through the apps' REST APIs."""

    def __init__(self, w):
        self.w = w
        self.carol = w.jira.add_user("carol", "Carol Chief", "carol@example.com", admin=True)
        self.jira_carol = {"Authorization": f"Bearer {self.carol.token}"}
        self.gl_alice = {"PRIVATE-TOKEN": w.tokens["alice2"]}
        self.notes = f"{w.gl_url}/api/v4/projects/{w.widgets.id}/issues"

    async def jira_comment_edit(self, issue_id, comment_id, body, headers=None):
        await self.w.call("PUT", f"{self.w.jira_url}/rest/api/2/issue/{issue_id}/comment/{comment_id}",
                          headers or self.w.jira_bob, {"body": body})

    async def jira_comment_delete(self, issue_id, comment_id, headers=None):
        await self.w.call("DELETE", f"{self.w.jira_url}/rest/api/2/issue/{issue_id}/comment/{comment_id}",
                          headers or self.w.jira_bob)

    async def gl_note_edit(self, iid, note_id, body, headers=None):
        await self.w.call("PUT", f"{self.notes}/{iid}/notes/{note_id}", headers or self.w.gl_bob, {"body": body})

    async def gl_note_delete(self, iid, note_id, headers=None):
        await self.w.call("DELETE", f"{self.notes}/{iid}/notes/{note_id}", headers or self.w.gl_bob)


def notes(w, iid):
    """The GitLab issue's comments as stored (system notes and attachment link notes aside)."""
    return [n for n in w.widgets.notes.get(int(iid), []) if not n.system and "tandem:attachment" not in n.body]


async def jira_bodies(w, issue_id):
    return [c.body for c in await w.tandem_jira.list_comments(w.jira.projects["PROJ"].id, issue_id)]


async def gl_bodies(w, iid):
    return [c.body for c in await w.tandem_gl.list_comments(str(w.widgets.id), str(iid))]


async def events(w, action):
    return [(r["direction"], r["detail"]) for r in await w.pool.fetch(
        "SELECT direction, detail FROM t_acme.events WHERE action = $1 ORDER BY id", action)]


async def set_spec(w, key, value):
    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, $1::text[], $2::jsonb)",
                         [key], json.dumps(value))


async def assert_quiet(w, engine, runs=2):
    writes = w.tandem_writes()
    for _ in range(runs):
        result = await engine.run_once("test")
        assert result.status == "ok", result.error
    assert w.tandem_writes() == writes, "Tandem's own writes bounced back"


async def paired(w):
    """A Jira bug with bob's comment, its GitLab counterpart with bob's note, synced."""
    bug = await w.jira_issue("Printer on fire", labels=["ui"])
    await w.jira_comment(bug, "Smells like toner")
    engine = w.engine(await w.integration())
    await engine.run_once("test")
    [issue] = w.gl_issues()
    await w.gl_comment(issue.iid, "Seen it too")
    await quiesce(engine)
    assert await jira_bodies(w, bug) == ["Smells like toner", HEADER + "Seen it too"]
    assert await gl_bodies(w, issue.iid) == [HEADER + "Smells like toner", "Seen it too"]
    return bug, issue, engine


async def test_comment_edits_flow_both_ways_once_without_echo_or_growth(world):
    w, people = world, People(world)
    bug, issue, engine = await paired(w)
    jira_original, _ = w.jira.issues[bug].comments
    _, gl_original = notes(w, issue.iid)

    await people.jira_comment_edit(bug, jira_original.id, "Smells like *burnt* toner\n\n* check the fuser")
    await people.gl_note_edit(issue.iid, gl_original.id, "Seen it too, with `error 42`")
    result = await engine.run_once("test")
    assert result.status == "ok" and result.counts["comment_edits"] == 2 and result.counts["comments"] == 0
    [jira_text, jira_copy] = await jira_bodies(w, bug)
    assert jira_text == "Smells like **burnt** toner\n\n- check the fuser"
    assert jira_copy == HEADER + "Seen it too, with `error 42`"
    assert await gl_bodies(w, issue.iid) == [HEADER + jira_text, "Seen it too, with `error 42`"]
    assert len(notes(w, issue.iid)) == 2 and len(w.jira.issues[bug].comments) == 2, "edited, not added"
    assert [d for d, _ in await events(w, "comment_edited")] == ["a_to_b", "b_to_a"]
    await assert_quiet(w, engine)

    # Rich text, edited again and again: each side shows the same text, and it never grows.
    rich = ("## Repro\n\n1. open the tray\n2. print a page\n\n```\nerror 42\n```\n\n"
            "See [the log](https://example.com/log) and **ask** @bob")
    for round_ in range(3):
        await people.gl_note_edit(issue.iid, gl_original.id, f"{rich}\n\nround {round_}")
        await quiesce(engine)
        assert (await jira_bodies(w, bug))[1] == HEADER + f"{rich}\n\nround {round_}"
        assert (await gl_bodies(w, issue.iid))[1] == f"{rich}\n\nround {round_}"
    await assert_quiet(w, engine)
    assert len(await events(w, "comment_edited")) == 5


async def test_an_edit_gitlab_will_not_take_is_reported_once_and_later_edits_still_flow(world):
    w, people = world, People(world)
    bug, issue, engine = await paired(w)
    _, jira_copy = w.jira.issues[bug].comments
    _, gl_original = notes(w, issue.iid)

    # A Jira administrator edits the copy of bob's GitLab note: only bob may edit that note.
    await people.jira_comment_edit(bug, jira_copy.id, "*Bob Builder wrote:*\n\nSeen it too (checked by Carol)",
                                   people.jira_carol)
    result = await engine.run_once("test")
    assert result.status == "ok" and result.counts["errors"] == 0
    assert await gl_bodies(w, issue.iid) == [HEADER + "Smells like toner", "Seen it too"]
    [(direction, detail)] = await events(w, "comment_edited")
    assert direction == "a_to_b"
    assert "not copied to B: GitLab lets only the author of note" in detail and "(@bob) edit it" in detail
    await assert_quiet(w, engine)
    assert len(await events(w, "comment_edited")) == 1, "reported once, not retried"

    await people.gl_note_edit(issue.iid, gl_original.id, "Seen it too, fixed now")
    await quiesce(engine)
    assert (await jira_bodies(w, bug))[1] == HEADER + "Seen it too, fixed now"


@pytest.mark.parametrize("policy", ["a_wins", "b_wins", "newest", "hold"])
async def test_a_comment_edited_on_both_sides_follows_the_conflict_policy(world, policy):
    w, people = world, People(world)
    bug = await w.jira_issue("Printer on fire")
    await w.jira_comment(bug, "Smells like toner")
    engine = w.engine(await w.integration(policy=policy))
    await engine.run_once("test")
    [issue] = w.gl_issues()
    [jira_original] = w.jira.issues[bug].comments
    [gl_copy] = notes(w, issue.iid)
    await people.jira_comment_edit(bug, jira_original.id, "from Jira")
    await asyncio.sleep(0.01)                                  # the apps stamp milliseconds
    await people.gl_note_edit(issue.iid, gl_copy.id, HEADER + "from GitLab", people.gl_alice)
    result = await engine.run_once("test")
    assert result.status == "ok"
    jira_now, gl_now = await jira_bodies(w, bug), await gl_bodies(w, issue.iid)
    field = f"comment {jira_original.id}"
    if policy == "a_wins":
        assert (jira_now, gl_now) == (["from Jira"], [HEADER + "from Jira"])
    elif policy in ("b_wins", "newest"):                       # newest: GitLab's edit came later
        assert (jira_now, gl_now) == (["from GitLab"], [HEADER + "from GitLab"])
    else:
        assert (jira_now, gl_now) == (["from Jira"], [HEADER + "from GitLab"])
        row = await w.pool.fetchrow("SELECT * FROM t_acme.conflicts")
        assert (row["field"], row["state"]) == (field, "open")
        assert (json.loads(row["a_value"]), json.loads(row["b_value"]), json.loads(row["base_value"])) == \
            ("from Jira", "from GitLab", "Smells like toner")
        await assert_quiet(w, engine)
        assert await w.pool.fetchval("SELECT count(*) FROM t_acme.conflicts") == 1
        assert len(await events(w, "conflict")) == 1, "held once, not reported on every run"
        # A person picks GitLab's text in the conflict inbox; the next run applies it.
        await w.pool.execute("UPDATE t_acme.conflicts SET state = 'resolved', resolution = 'b', "
                             "resolved_by = 'ann', resolved_at = now()")
        await engine.run_once("test")
        assert await jira_bodies(w, bug) == ["from GitLab"]
        assert await w.pool.fetchval("SELECT applied_at IS NOT NULL FROM t_acme.conflicts") is True

        # Held again; then people settle it by hand: the conflict leaves the inbox by itself.
        await people.jira_comment_edit(bug, jira_original.id, "Jira, again")
        await people.gl_note_edit(issue.iid, gl_copy.id, HEADER + "GitLab, again", people.gl_alice)
        await engine.run_once("test")
        assert await w.pool.fetchval("SELECT count(*) FROM t_acme.conflicts WHERE state = 'open'") == 1
        await people.gl_note_edit(issue.iid, gl_copy.id, HEADER + "Jira, again", people.gl_alice)
        writes = w.tandem_writes()
        await engine.run_once("test")
        assert w.tandem_writes() == writes
        assert [tuple(r) for r in await w.pool.fetch(
            "SELECT state, resolved_by FROM t_acme.conflicts ORDER BY id")] == [("resolved", "ann"),
                                                                                ("resolved", "sides agree")]
    await assert_quiet(w, engine)
    assert len(w.jira.issues[bug].comments) == 1 and len(notes(w, issue.iid)) == 1


async def test_comment_deletes_follow_the_delete_policy(world):
    w, people = world, People(world)
    bug, issue, engine = await paired(w)
    jira_original, jira_copy = w.jira.issues[bug].comments
    gl_copy, gl_original = notes(w, issue.iid)

    # Policy "ignore" (the default): the counterpart stays, and is never copied back.
    await people.jira_comment_delete(bug, jira_original.id)
    await quiesce(engine)
    assert await gl_bodies(w, issue.iid) == [HEADER + "Smells like toner", "Seen it too"]
    assert await jira_bodies(w, bug) == [HEADER + "Seen it too"]
    assert await events(w, "comment_deleted") == [
        ("a_to_b", "comment by Bob Builder deleted on A; kept on B (delete policy ignore)")]
    await assert_quiet(w, engine)

    # Policy "delete": bob deletes his GitLab note, Tandem deletes its Jira copy.
    await set_spec(w, "delete_policy", "delete")
    await w.gl_comment(issue.iid, "Another one")
    await quiesce(engine)
    assert await jira_bodies(w, bug) == [HEADER + "Seen it too", HEADER + "Another one"]
    await people.gl_note_delete(issue.iid, gl_original.id)
    await quiesce(engine)
    assert await jira_bodies(w, bug) == [HEADER + "Another one"]
    # A Jira administrator deletes the copy of bob's note: alice owns the GitLab project, so
    # Tandem may delete bob's note there.
    [another] = w.jira.issues[bug].comments
    await people.jira_comment_delete(bug, another.id, people.jira_carol)
    await quiesce(engine)
    assert await gl_bodies(w, issue.iid) == [HEADER + "Smells like toner"]
    assert [d for d, _ in await events(w, "comment_deleted")] == ["a_to_b", "b_to_a", "a_to_b"]
    assert "deleted on A too (delete policy)" in (await events(w, "comment_deleted"))[1][1]
    await assert_quiet(w, engine)
    assert gl_copy.id in {n.id for n in notes(w, issue.iid)} and w.jira.issues[bug].comments == []


async def test_attachment_deletes_follow_the_policy_and_say_what_gitlab_cannot_do(world):
    w = world
    a_project, b_project = w.jira.projects["PROJ"].id, str(w.widgets.id)

    async def upload(connector, container, item_id, name, data):
        async def chunks():
            yield data
        return await connector.upload_attachment(container, item_id, name, chunks(), len(data), "text/plain")

    async def names(connector, container, item_id):
        return sorted(a.filename for a in (await connector.get_item(container, item_id)).attachments)

    bug = await w.jira_issue("With files")
    log = await upload(w.human_jira, a_project, bug, "log.txt", b"log\n" * 10)
    await w.integration()
    await set_spec(w, "attachments", {"enabled": True})
    await set_spec(w, "delete_policy", "delete")
    engine = w.engine(await w.pool.fetchrow("SELECT * FROM t_acme.integrations"))
    await engine.run_once("test")
    [issue] = w.gl_issues()
    iid = str(issue.iid)
    await upload(w.human_gl, b_project, iid, "shot.txt", b"shot")       # bob links it in a note of his
    await quiesce(engine)
    assert await names(w.tandem_jira, a_project, bug) == ["log.txt", "shot.txt"]
    assert await names(w.tandem_gl, b_project, iid) == ["log.txt", "shot.txt"]

    # Jira's file deleted: Tandem's own link note in GitLab goes.
    await w.call("DELETE", f"{w.jira_url}/rest/api/2/attachment/{log.id}", w.jira_bob)
    await quiesce(engine)
    assert await names(w.tandem_gl, b_project, iid) == ["shot.txt"]
    assert [n.author_id for n in w.widgets.notes[issue.iid] if "tandem:attachment" in n.body] == [w.bob.id]

    # The copy of bob's GitLab file deleted in Jira: GitLab has no way to unlink it from bob's note.
    [shot] = (await w.tandem_jira.get_item(a_project, bug)).attachments
    await w.call("DELETE", f"{w.jira_url}/rest/api/2/attachment/{shot.id}", w.jira_bob)
    result = await engine.run_once("test")
    assert result.status == "ok" and result.counts["errors"] == 0
    assert await names(w.tandem_gl, b_project, iid) == ["shot.txt"]
    assert await names(w.tandem_jira, a_project, bug) == [], "not copied back either"
    assert await events(w, "attachment_deleted") == [
        ("a_to_b", "'log.txt' deleted on A; removed on B too (delete policy)"),
        ("a_to_b", "'shot.txt' deleted on A; still on B: GitLab cannot remove 'shot.txt': it is linked from a "
                   "comment by @bob; remove the link there by hand")]
    await assert_quiet(w, engine)
    assert len(await events(w, "attachment_deleted")) == 2


async def test_a_type_change_on_either_side_changes_the_mapped_type(world):
    w = world
    a_project, b_project = w.jira.projects["PROJ"].id, str(w.widgets.id)
    bug = await w.jira_issue("Printer on fire", labels=["ui"])
    engine = w.engine(await w.integration())
    await engine.run_once("test")
    [issue] = w.gl_issues()
    assert sorted(issue.labels) == ["bug", "ui"]

    async def jira_type():
        return (await w.tandem_jira.get_item(a_project, bug, comments=False)).type

    # Bug -> Task in Jira: GitLab's issue loses the "bug" label that says Bug, keeps "ui".
    await w.jira_edit(bug, {"issuetype": {"name": "Task"}})
    result = await engine.run_once("test")
    assert result.counts["updated"] == 1 and sorted(issue.labels) == ["ui"] and issue.issue_type == "issue"
    [(direction, detail)] = [e for e in await events(w, "updated")]
    assert direction == "a_to_b" and "type: changed on A" in detail
    await assert_quiet(w, engine)

    # The "bug" label added in GitLab: the Jira issue becomes a Bug again.
    await w.gl_edit(issue.iid, labels="bug,ui")
    await quiesce(engine)
    assert await jira_type() == "Bug" and w.jira.issues[bug].fields["labels"] == ["ui"]

    # A GitLab type no mapping covers does not flow; the event says why.
    await w.gl_edit(issue.iid, issue_type="incident")
    await quiesce(engine)
    assert await jira_type() == "Bug"
    assert "changed on B to 'incident', which no type mapping covers; A keeps its type" in \
        (await w.pool.fetchval("SELECT detail FROM t_acme.events ORDER BY id DESC LIMIT 1"))
    await w.gl_edit(issue.iid, issue_type="issue")
    await assert_quiet(w, engine)
    assert await jira_type() == "Bug"

    # Story <-> GitLab task: changed differently on both sides is held, then resolved for A.
    await w.pool.execute("UPDATE t_acme.integrations SET spec = jsonb_set(spec, '{type_mappings}', "
                         "spec->'type_mappings' || '[{\"a_type\": \"Story\", \"b_type\": \"task\"}]')")
    await w.jira_edit(bug, {"issuetype": {"name": "Story"}})
    await w.gl_edit(issue.iid, labels="ui")                     # an issue without "bug": a Task
    result = await engine.run_once("test")
    assert result.counts["conflicts"] == 1
    assert await jira_type() == "Story" and sorted(issue.labels) == ["ui"] and issue.issue_type == "issue"
    row = await w.pool.fetchrow("SELECT field, a_value, b_value FROM t_acme.conflicts WHERE state = 'open'")
    assert (row["field"], json.loads(row["a_value"]), json.loads(row["b_value"])) == \
        ("type", {"type": "Story", "labels": []}, {"type": "issue", "labels": []})
    await w.pool.execute("UPDATE t_acme.conflicts SET state = 'resolved', resolution = 'a', resolved_by = 'ann', "
                         "resolved_at = now()")
    await engine.run_once("test")
    assert issue.issue_type == "task" and sorted(issue.labels) == ["ui"] and await jira_type() == "Story"
    await assert_quiet(w, engine)


async def test_a_comment_the_other_app_refuses_does_not_hold_back_the_ones_after_it(world):
    """Jira holds at most 32,767 characters in a comment. A GitLab note with a pasted log over
    that fails the item with Jira's reason, but the notes after it are copied, and the retry
    tries the refused one alone."""
    w = world
    await w.jira_issue("Printer")
    row = await w.integration()
    engine = w.engine(row)
    await quiesce(engine)
    [issue] = w.gl_issues()
    await w.gl_comment(issue.iid, "log:\n" + "x" * 40000)
    await w.gl_comment(issue.iid, "second: please look at this")
    await w.gl_edit(issue.iid, title="Printer (renamed)")
    result = await engine.run_once("test")
    assert result.counts["errors"] == 1
    [jira_issue] = w.jira.issues.values()
    assert jira_issue.fields["summary"] == "Printer (renamed)"
    assert [c.body for c in jira_issue.comments] == ["_Bob Builder wrote:_\n\nsecond: please look at this"]
    [error] = await w.pool.fetch("SELECT error, attempts FROM t_acme.item_errors")
    assert "1 comment(s) not copied" in error["error"] and "exceeds the allowed limit of 32,767" in error["error"]
    comment_posts = "/rest/api/2/issue/{issueIdOrKey}/comment"
    tried = w.jira.knobs.count("POST", comment_posts)
    await w.pool.execute("UPDATE t_acme.item_errors SET next_attempt_at = now()")
    await engine.run_once("test")
    assert w.jira.knobs.count("POST", comment_posts) > tried     # the refused one is tried again
    assert len(jira_issue.comments) == 1                          # and the one copied is not copied twice
    assert "exceeds the allowed limit" in await w.pool.fetchval("SELECT min(error) FROM t_acme.item_errors")
