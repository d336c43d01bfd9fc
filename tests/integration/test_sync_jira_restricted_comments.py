"""Jira comments restricted to a role or group, through the sync engine: private discussion
stays in Jira (set-up: tests/integration/sync_setup.py)."""

from __future__ import annotations

import pytest

from tests.integration.sync_setup import quiesce, world  # noqa: F401 (world: a fixture)


@pytest.mark.parametrize("world", ["server", "cloud"], indirect=True)
async def test_a_restricted_jira_comment_is_neither_copied_nor_touched(world):
    w = world
    bug = await w.jira_issue("Printer on fire")
    await w.jira_comment(bug, "Smells like toner")
    comments = f"{w.jira_url}/rest/api/2/issue/{bug}/comment"
    private = await w.call("POST", comments, w.jira_bob, {
        "body": "Internal: the vendor's contract ends in March", "visibility": {"type": "role", "value": "Developers"}})
    row = await w.integration()
    await quiesce(w.engine(row))
    [printer] = w.gl_issues()
    [note] = [n.body for n in w.widgets.notes[printer.iid] if not n.system]
    assert note.startswith("*Bob Builder wrote:*\n\nSmells like toner")

    # Edited, or deleted, it still never crosses, and Tandem never writes to it.
    await w.call("PUT", f"{comments}/{private['id']}", w.jira_bob, {"body": "Internal: it ends in April"})
    await w.gl_comment(printer.iid, "Fixed")
    await quiesce(w.engine(row))
    assert not any("April" in n.body or "March" in n.body for n in w.widgets.notes[printer.iid])
    assert w.gl_issues() == [printer] and len(w.jira.issues[bug].comments) == 3     # "Fixed" crossed
    kept = next(c for c in w.jira.issues[bug].comments if c.id == private["id"])
    assert (w.jira.render.plain(kept.body), kept.visibility) == ("Internal: it ends in April",
                                                                 {"type": "role", "value": "Developers"})
    assert [x.route for x in w.jira.writes_by(w.jira.alice) if x.route.endswith("/comment/{id}")] == []
