"""Rich text with mentions through the real engine between the Jira (Server, wiki markup) and GitLab
emulators: a mention arrives as a mention of the mapped user (same login, or an explicit pair of
the integration's users map), a mention of someone the other side does not have arrives as text,
and edit round trips neither grow nor degrade the text, in descriptions and in comments
(set-up: tests/integration/sync_setup.py; Tandem is alice on both sides, people act as bob).

People: alice and bob have the same login on both sides; Jira's "cbrown" is GitLab's "carol"
(users.map); "zed" is only in Jira, "dana" only in GitLab."""

from __future__ import annotations

import json
import re

from tests.fakes.gitlab import DEVELOPER
from tests.integration.sync_setup import quiesce, world  # noqa: F401 (world: a fixture)

WIKI = ("h2. Plan\n\n"
        "# unplug it\n# wait a *minute*\n\n"
        "* ask [~bob]\n* tell [~cbrown]\n\n"
        "{code:python}\nprint('@bob stays code')\n{code}\n\n"
        "See [the runbook|https://example.com/runbook] and ping [~zed].")
GITLAB = ("## Plan\n\n"
          "1. unplug it\n2. wait a **minute**\n\n"
          "- ask @bob\n- tell @carol\n\n"
          "```python\nprint('@bob stays code')\n```\n\n"
          "See [the runbook](https://example.com/runbook) and ping \\@zed.")
HEADER = "*Bob Builder wrote:*\n\n"


async def mentions_world(w):
    """The people of the module docstring, and an integration that maps cbrown to carol."""
    w.jira.add_user("cbrown", "Carol Brown", "carol.brown@example.com")
    w.jira.add_user("zed", "Zed Zebra", "zed@example.com")
    for login in ("carol", "dana"):
        w.gl.add_member(w.widgets, w.gl.add_user(login), DEVELOPER)
    row = await w.integration()
    spec = json.loads(row["spec"]) if isinstance(row["spec"], str) else dict(row["spec"])
    spec["users"] = {"match": "login", "map": {"cbrown": "carol"}}
    row = await w.pool.fetchrow("UPDATE t_acme.integrations SET spec = $1 WHERE id = $2 RETURNING *",
                                json.dumps(spec), row["id"])
    return w.engine(row)


async def gl_description(w, iid):
    return (await w.tandem_gl.get_item(str(w.widgets.id), str(iid), comments=False)).fields["description"]


async def jira_wiki(w, issue_id):
    """The Jira issue's description as the REST API gives it (wiki markup)."""
    async with w.http.get(f"{w.jira_url}/rest/api/2/issue/{issue_id}", headers=w.jira_bob) as response:
        return (await response.json())["fields"]["description"]


async def jira_comments(w, issue_id):
    async with w.http.get(f"{w.jira_url}/rest/api/2/issue/{issue_id}/comment", headers=w.jira_bob) as response:
        return (await response.json())["comments"]


async def jira_comment_bodies(w, issue_id):
    return [c["body"] for c in await jira_comments(w, issue_id)]


async def jira_comment_ids(w, issue_id):
    return [c["id"] for c in await jira_comments(w, issue_id)]


def gl_note_bodies(w, iid):
    return [n.body.split("\n\n<!-- tandem:sync:")[0] for n in w.widgets.notes.get(int(iid), []) if not n.system]


async def assert_quiet(w, engine):
    writes = w.tandem_writes()
    for _ in range(2):
        result = await engine.run_once("test")
        assert result.status == "ok", result.error
    assert w.tandem_writes() == writes, "a quiet run wrote something"


async def test_description_mentions_map_both_ways_and_round_trips_are_stable(world):
    w = world
    engine = await mentions_world(w)
    bug = await w.jira_issue("Printer on fire", description=WIKI)
    result = await quiesce(engine)
    assert result.status == "ok", result.error
    [issue] = w.gl_issues()
    # GitLab's bob and carol are mentioned; zed, whom GitLab does not have, is escaped text.
    assert await gl_description(w, issue.iid) == GITLAB
    await assert_quiet(w, engine)

    # A GitLab edit mentioning alice and dana comes back as Jira's alice, and dana as text; Jira's
    # mentions of cbrown and zed are still mentions (zed came to GitLab as text).
    await w.gl_edit(issue.iid, description=GITLAB + "\n\nThanks @alice and @dana!")
    assert (await quiesce(engine)).status == "ok"
    wiki = await jira_wiki(w, bug)
    assert wiki.endswith("ping [~zed].\n\nThanks [~alice] and @dana!")
    assert "* ask [~bob]\n* tell [~cbrown]" in wiki and "h2. Plan" in wiki and "{code:python}" in wiki
    assert await gl_description(w, issue.iid) == GITLAB + "\n\nThanks @alice and @dana!"
    await assert_quiet(w, engine)

    # Three round trips of edits elsewhere in the text: each side's text is what its own app last
    # said plus the edit, nothing doubles, no escape piles up.
    seen = []
    for n in range(3):
        wiki = await jira_wiki(w, bug)
        await w.jira_edit(bug, {"description": re.sub(r"h2\. Plan.*", f"h2. Plan {n}a", wiki, count=1)})
        assert (await quiesce(engine)).status == "ok"
        gitlab = await gl_description(w, issue.iid)
        await w.gl_edit(issue.iid, description=re.sub(r"## Plan.*", f"## Plan {n}b", gitlab, count=1))
        assert (await quiesce(engine)).status == "ok"
        await assert_quiet(w, engine)
        seen.append((await jira_wiki(w, bug), await gl_description(w, issue.iid)))
    for n, (wiki, gitlab) in enumerate(seen):
        assert gitlab == GITLAB.replace("## Plan", f"## Plan {n}b") + "\n\nThanks @alice and @dana!"
        assert wiki == seen[0][0].replace("h2. Plan 0b", f"h2. Plan {n}b")
    assert len({len(wiki) for wiki, _ in seen}) == 1 and len({len(gl) for _, gl in seen}) == 1
    assert seen[-1][0].count("[~zed]") == seen[-1][0].count("[~alice]") == 1
    assert "\\" not in seen[-1][0] and seen[-1][1].count("\\@") == 1


JIRA_NOTE = "h3. Status {n}\n\n* [~bob] checks\n* [~cbrown] orders toner\n\nAsk [~zed]."
GL_COPY = HEADER + "### Status {n}\n\n- @bob checks\n- @carol orders toner\n\nAsk \\@zed."
GL_NOTE = "Done {n}, @alice: see `@bob` and ask @dana or @carol."
JIRA_COPY = "_Bob Builder wrote:_\n\nDone {n}, [~alice]: see {{{{@bob}}}} and ask @dana or [~cbrown]."


async def test_comment_mentions_map_both_ways_and_edits_are_stable(world):
    w = world
    engine = await mentions_world(w)
    bug = await w.jira_issue("Printer on fire")
    await w.jira_comment(bug, JIRA_NOTE.format(n=0))
    assert (await quiesce(engine)).status == "ok"
    [issue] = w.gl_issues()
    assert gl_note_bodies(w, issue.iid) == [GL_COPY.format(n=0)]

    await w.gl_comment(issue.iid, GL_NOTE.format(n=0))
    assert (await quiesce(engine)).status == "ok"
    assert await jira_comment_bodies(w, bug) == [JIRA_NOTE.format(n=0), JIRA_COPY.format(n=0)]
    await assert_quiet(w, engine)

    # Bob edits both of his comments, each in its own app, three times: the copies follow with
    # their mentions mapped, and nothing grows.
    jira_id = (await jira_comment_ids(w, bug))[0]
    note_id = next(n.id for n in w.widgets.notes[int(issue.iid)] if not n.system and n.body.startswith("Done"))
    rounds = []
    for n in range(1, 4):
        await w.call("PUT", f"{w.jira_url}/rest/api/2/issue/{bug}/comment/{jira_id}", w.jira_bob,
                     {"body": JIRA_NOTE.format(n=n)})
        assert (await quiesce(engine)).status == "ok"
        await w.call("PUT", f"{w.gl_url}/api/v4/projects/{w.widgets.id}/issues/{issue.iid}/notes/{note_id}",
                     w.gl_bob, {"body": GL_NOTE.format(n=n)})
        assert (await quiesce(engine)).status == "ok"
        await assert_quiet(w, engine)
        rounds.append((await jira_comment_bodies(w, bug), gl_note_bodies(w, issue.iid)))
    for n, (jira, gitlab) in enumerate(rounds, 1):
        assert jira == [JIRA_NOTE.format(n=n), JIRA_COPY.format(n=n)]
        assert gitlab == [GL_COPY.format(n=n), GL_NOTE.format(n=n)]
    assert len({tuple(map(len, jira + gitlab)) for jira, gitlab in rounds}) == 1
