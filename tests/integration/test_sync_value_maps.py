"""Value maps that send several Jira statuses to one GitLab state, through the real engine and
the emulators (set-up: tests/integration/sync_setup.py): a change on GitLab lands on the Jira
status the integration's reverse_map names, whatever order PostgreSQL stored the map in, and a
Jira status that already maps to GitLab's new state is left alone."""

from __future__ import annotations

import json

from tests.integration.sync_setup import spec, world  # noqa: F401 (world: a fixture)

# GitLab only knows open and closed: two Jira statuses share "opened". Stored as jsonb, the
# keys come back as "Done", "To Do", "In Progress" (shortest first), so "first A value found"
# would be "To Do"; the integration says a reopened issue goes back to "In Progress".
OPEN_CLOSED = {"To Do": "opened", "In Progress": "opened", "Done": "closed"}


async def engine_with(w, reverse_map):
    body = spec(w.jira_conn, w.gl_conn, str(w.widgets.id), a_container=w.jira.projects["PROJ"].id)
    body["field_mappings"][2] = {"a_field": "status", "b_field": "status", "value_map": OPEN_CLOSED,
                                 "reverse_map": reverse_map}
    row = await w.pool.fetchrow("INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ($1, true, $2) "
                                "RETURNING *", "jira-gitlab", json.dumps(body))
    stored = json.loads(row["spec"]) if isinstance(row["spec"], str) else row["spec"]
    assert list(stored["field_mappings"][2]["value_map"]) == ["Done", "To Do", "In Progress"]
    return w.engine(row)


async def jira_status(w, issue_id) -> str:
    return (await w.tandem_jira.get_item(w.jira.projects["PROJ"].id, issue_id, comments=False)).fields["status"]


async def test_a_gitlab_reopen_lands_on_the_jira_status_the_reverse_map_names(world):
    w = world
    bug = await w.jira_issue("Printer on fire")
    engine = await engine_with(w, {"opened": "In Progress"})
    await engine.run_once("test")
    [issue] = w.gl_issues()
    assert issue.state == "opened" and await jira_status(w, bug) == "To Do"

    await w.gl_edit(issue.iid, state_event="close")
    await engine.run_once("test")
    assert await jira_status(w, bug) == "Done"

    await w.gl_edit(issue.iid, state_event="reopen")
    result = await engine.run_once("test")
    assert result.counts["updated"] == 1 and result.counts["conflicts"] == 0
    assert await jira_status(w, bug) == "In Progress" and issue.state == "opened"


async def test_no_write_when_the_jira_status_already_maps_to_the_new_gitlab_state(world):
    w = world
    bug = await w.jira_issue("Printer on fire")
    engine = await engine_with(w, {"opened": "In Progress"})
    await engine.run_once("test")
    [issue] = w.gl_issues()
    await w.gl_edit(issue.iid, state_event="close")
    await engine.run_once("test")
    assert await jira_status(w, bug) == "Done"

    # Both reopen before the next run: Jira goes back to "To Do", GitLab to "opened". They agree,
    # so Jira keeps "To Do" (not the reverse map's "In Progress") and nothing is written.
    await w.human_jira.update_item(w.jira.projects["PROJ"].id, bug, {"status": "To Do"})
    await w.gl_edit(issue.iid, state_event="reopen")
    writes = w.tandem_writes()
    result = await engine.run_once("test")
    assert result.counts["updated"] == 0 and result.counts["conflicts"] == 0
    assert w.tandem_writes() == writes
    assert await jira_status(w, bug) == "To Do" and issue.state == "opened"
    assert await w.pool.fetchval("SELECT count(*) FROM t_acme.conflicts") == 0


async def test_a_label_added_on_gitlab_keeps_the_jira_labels_that_already_map(world):
    w = world
    body = spec(w.jira_conn, w.gl_conn, str(w.widgets.id), a_container=w.jira.projects["PROJ"].id)
    body["field_mappings"][3]["value_map"] = {"urgent": "hot", "critical": "hot"}
    row = await w.pool.fetchrow("INSERT INTO t_acme.integrations (name, enabled, spec) VALUES ($1, true, $2) "
                                "RETURNING *", "labels", json.dumps(body))
    engine = w.engine(row)
    bug = await w.jira_issue("Printer on fire", labels=["urgent"])
    await engine.run_once("test")
    [issue] = w.gl_issues()
    assert sorted(issue.labels) == ["bug", "hot"]

    await w.gl_edit(issue.iid, add_labels="ui")
    await engine.run_once("test")
    # "hot" still stands for Jira's "urgent": only "ui" is new (not "critical", first in sorted order).
    item = await w.tandem_jira.get_item(w.jira.projects["PROJ"].id, bug, comments=False)
    assert item.fields["labels"] == ["ui", "urgent"]
    assert sorted(issue.labels) == ["bug", "hot", "ui"]
