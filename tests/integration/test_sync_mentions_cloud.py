"""Mentions through the real engine between Jira Cloud (REST v3, Atlassian Document Format) and
GitLab, where Jira knows people only by accountId, and older accounts have accountIds of the shape
"557058:<uuid>" that no "@login" can hold (appliance.richtext.account_login spells them as logins).
Set-up: tests/integration/sync_setup.py with the Cloud flavour of the Jira emulator; Tandem is
alice on both sides, people act as bob.

People: alice and bob (24-hex accountIds) and carol ("557058:<uuid>") are on both sides; zed
("712020:<uuid>") is only in Jira, dana only in GitLab. GitLab does not show its users' e-mail
addresses to a project member, so the integration pairs Jira e-mails with GitLab logins in its
users map (the way an admin connects Jira Cloud to GitLab)."""

from __future__ import annotations

import json

import pytest

from appliance.richtext import account_login
from tests.fakes.gitlab import DEVELOPER
from tests.integration.sync_setup import quiesce, world  # noqa: F401 (world: a fixture)
from tests.integration.test_sync_mentions import HEADER, assert_quiet, gl_description, gl_note_bodies

pytestmark = pytest.mark.parametrize("world", ["cloud"], indirect=True)


async def cloud_world(w):
    """The people of the module docstring, and an integration whose users map pairs them."""
    assert w.jira.cloud
    w.carol = w.jira.add_user("carol", "Carol Brown", "carol@example.com", account_prefix="557058")
    w.zed = w.jira.add_user("zed", "Zed Zebra", "zed@example.com", account_prefix="712020")
    for login in ("carol", "dana"):
        w.gl.add_member(w.widgets, w.gl.add_user(login), DEVELOPER)
    row = await w.integration()
    spec = json.loads(row["spec"]) if isinstance(row["spec"], str) else dict(row["spec"])
    spec["users"] = {"match": "email", "map": {f"{login}@example.com": login for login in ("alice", "bob", "carol")}}
    row = await w.pool.fetchrow("UPDATE t_acme.integrations SET spec = $1 WHERE id = $2 RETURNING *",
                                json.dumps(spec), row["id"])
    return w.engine(row)


def mention(user) -> dict:
    return {"type": "mention", "attrs": {"id": user.account_id, "text": "@" + user.display_name,
                                         "accessLevel": ""}}


def adf(*paragraphs) -> dict:
    """An ADF document of paragraphs, each a list of strings (text) and mention nodes."""
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": p} if isinstance(p, str) else p for p in para]}
        for para in paragraphs]}


def mention_ids(node) -> list[str]:
    """The accountIds mentioned in an ADF node, in document order."""
    if not isinstance(node, dict):
        return []
    if node.get("type") == "mention":
        return [node["attrs"]["id"]]
    return [i for child in node.get("content") or [] for i in mention_ids(child)]


def shown(node) -> str:
    """An ADF node's text as a reader sees it, mentions as "@<accountId>"."""
    if node.get("type") == "text":
        return node["text"]
    if node.get("type") == "mention":
        return "@<" + node["attrs"]["id"] + ">"
    return ("\n" if node.get("type") == "doc" else "").join(shown(c) for c in node.get("content") or [])


async def jira_v3(w, path):
    async with w.http.get(f"{w.jira_url}/rest/api/3/{path}", headers=w.jira_bob) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def jira_create(w, summary, description):
    fields = {"project": {"key": "PROJ"}, "issuetype": {"name": "Bug"}, "summary": summary,
              "description": description}
    return (await w.call("POST", f"{w.jira_url}/rest/api/3/issue", w.jira_bob, {"fields": fields}))["id"]


def escaped_text(user) -> str:
    """How GitLab shows a mention of a Jira person it does not have: text, escaped in Markdown."""
    return "\\@" + account_login(user.account_id).replace("_", "\\_")


async def test_account_id_mentions_map_both_ways_and_round_trips_are_stable(world):
    w = world
    engine = await cloud_world(w)
    assert ":" in w.carol.account_id and ":" in w.zed.account_id and ":" not in w.jira.bob.account_id
    bug = await jira_create(w, "Printer on fire", adf(
        ["Ask ", mention(w.carol), " and ", mention(w.jira.bob), ", ping ", mention(w.zed), "."]))
    result = await quiesce(engine)
    assert result.status == "ok", result.error
    [issue] = w.gl_issues()
    first = f"Ask @carol and @bob, ping {escaped_text(w.zed)}."
    assert await gl_description(w, issue.iid) == first
    await assert_quiet(w, engine)

    # A GitLab mention of carol comes back as an ADF mention of her accountId, dana (not in Jira)
    # as text; zed, who reached GitLab as text, is still a mention in Jira.
    await w.gl_edit(issue.iid, description=first + "\n\nThanks @carol and @dana!")
    assert (await quiesce(engine)).status == "ok"
    doc = (await jira_v3(w, f"issue/{bug}"))["fields"]["description"]
    assert mention_ids(doc) == [w.carol.account_id, w.jira.bob.account_id, w.zed.account_id, w.carol.account_id]
    assert shown(doc) == (f"Ask @<{w.carol.account_id}> and @<{w.jira.bob.account_id}>, ping @<{w.zed.account_id}>."
                          f"\nThanks @<{w.carol.account_id}> and @dana!")
    assert await gl_description(w, issue.iid) == first + "\n\nThanks @carol and @dana!"
    await assert_quiet(w, engine)

    # Edits elsewhere in the text, on each side in turn: the mentions stay exactly what they were.
    seen = []
    for n in range(2):
        doc = (await jira_v3(w, f"issue/{bug}"))["fields"]["description"]
        doc["content"][0]["content"][0]["text"] = f"Ask ({n}a) "
        await w.call("PUT", f"{w.jira_url}/rest/api/3/issue/{bug}", w.jira_bob, {"fields": {"description": doc}})
        assert (await quiesce(engine)).status == "ok"
        gitlab = await gl_description(w, issue.iid)
        await w.gl_edit(issue.iid, description=gitlab.replace(f"({n}a)", f"({n}b)"))
        assert (await quiesce(engine)).status == "ok"
        await assert_quiet(w, engine)
        seen.append(((await jira_v3(w, f"issue/{bug}"))["fields"]["description"], await gl_description(w, issue.iid)))
    for n, (doc, gitlab) in enumerate(seen):
        assert mention_ids(doc) == [w.carol.account_id, w.jira.bob.account_id, w.zed.account_id,
                                    w.carol.account_id]
        assert gitlab == first.replace("Ask", f"Ask ({n}b)") + "\n\nThanks @carol and @dana!"
        assert shown(doc).startswith(f"Ask ({n}b) @<{w.carol.account_id}>")
    assert len({len(json.dumps(doc)) for doc, _ in seen}) == 1


async def test_comment_mentions_of_account_ids_map_both_ways(world):
    w = world
    engine = await cloud_world(w)
    bug = await jira_create(w, "Toner empty", adf(["See comments."]))
    await w.call("POST", f"{w.jira_url}/rest/api/3/issue/{bug}/comment", w.jira_bob,
                 {"body": adf(["Ask ", mention(w.carol), " or ", mention(w.zed), "."])})
    assert (await quiesce(engine)).status == "ok"
    [issue] = w.gl_issues()
    assert gl_note_bodies(w, issue.iid) == [HEADER + f"Ask @carol or {escaped_text(w.zed)}."]

    await w.gl_comment(issue.iid, "Done, @carol: ask @dana or @bob.")
    assert (await quiesce(engine)).status == "ok"
    comments = (await jira_v3(w, f"issue/{bug}/comment"))["comments"]
    assert [mention_ids(c["body"]) for c in comments] == [[w.carol.account_id, w.zed.account_id],
                                                          [w.carol.account_id, w.jira.bob.account_id]]
    assert shown(comments[1]["body"]).endswith(f"Done, @<{w.carol.account_id}>: ask @dana or "
                                               f"@<{w.jira.bob.account_id}>.")
    await assert_quiet(w, engine)
