"""Webhook deliveries in the engine (appliance.sync.deliveries): several pairs at once, one pair's
items one after another, each item looked at once however many deliveries named it, and during
a poll page only the pairs the page no longer holds (set-up: tests/integration/sync_setup.py)."""

from __future__ import annotations

import time

from tests.integration.sync_setup import quiesce, world  # noqa: F401 (world: a fixture)


async def deliver(w, integration: int, side: str, item_id: str, times: int = 1) -> None:
    for _ in range(times):
        await w.pool.execute("INSERT INTO t_acme.webhook_deliveries (integration_id, side, item_id) "
                             "VALUES ($1, $2, $3)", integration, side, item_id)


async def pending(w) -> int:
    return await w.pool.fetchval("SELECT count(*) FROM t_acme.webhook_deliveries WHERE processed_at IS NULL")


async def test_deliveries_of_many_pairs_are_taken_several_at_once_and_each_item_once(world):
    w = world
    bugs = [await w.jira_issue(f"Bug {n}") for n in range(12)]
    row = await w.integration()
    engine = w.engine(row)
    await quiesce(engine)
    for n, bug in enumerate(bugs):
        await w.jira_edit(bug, {"summary": f"Bug {n}, edited"})
        await deliver(w, row["id"], "a", bug, times=3 if n == 0 else 1)
    reads: list[str] = []

    def record(request):
        if request.method == "GET" and "/rest/api/2/issue/" in request.path:
            reads.append(request.path.rsplit("/", 1)[1])
        return None

    w.jira.knobs.fault = record
    # Each pair costs at least 4 requests one after another (the Jira item, the GitLab issue and
    # its notes, the update): 12 pairs one at a time would take 12 x 4 x 0.15 = 7.2 s at least.
    w.jira.knobs.latency = w.gl.knobs.latency = 0.15
    started = time.monotonic()
    result = await engine.run_once("webhook")
    elapsed = time.monotonic() - started
    w.jira.knobs.latency = w.gl.knobs.latency = 0
    assert result.status == "ok" and result.counts["updated"] == 12
    assert sorted(i.title for i in w.gl_issues()) == sorted(f"Bug {n}, edited" for n in range(12))
    assert sorted(reads) == sorted(bugs)            # the item named three times was read once
    assert await pending(w) == 0
    assert elapsed < 4.0, f"deliveries took {elapsed:.1f} s: one pair at a time?"


async def test_one_pairs_items_delivered_together_are_merged_one_after_another(world):
    w = world
    bug = await w.jira_issue("Shared", description="first")
    row = await w.integration()
    engine = w.engine(row)
    await quiesce(engine)
    [issue] = w.gl_issues()
    await w.jira_edit(bug, {"summary": "Shared, renamed in Jira"})
    await w.gl_edit(issue.iid, description="second, from GitLab")
    w.jira.knobs.latency = w.gl.knobs.latency = 0.05     # both looks would overlap if run at once
    await deliver(w, row["id"], "a", bug)
    await deliver(w, row["id"], "b", str(issue.iid))
    result = await engine.run_once("webhook")
    w.jira.knobs.latency = w.gl.knobs.latency = 0
    assert result.status == "ok" and result.counts["conflicts"] == 0
    jira_issue = await w.tandem_jira.get_item(w.jira.projects["PROJ"].id, bug)
    assert issue.title == jira_issue.fields["title"] == "Shared, renamed in Jira"
    assert "second, from GitLab" in jira_issue.fields["description"] and "second, from GitLab" in issue.description
    assert (await quiesce(engine)).counts["updated"] == 0


async def test_during_a_poll_page_only_pairs_the_page_no_longer_holds_are_taken(world):
    w = world
    held, free = await w.jira_issue("Held by the page"), await w.jira_issue("Free")
    row = await w.integration()
    engine = w.engine(row)
    await quiesce(engine)            # the engine keeps the last run's sides and mapper
    by_title = {i.title: i for i in w.gl_issues()}
    await w.jira_edit(held, {"summary": "Held, edited"})
    await w.jira_edit(free, {"summary": "Free, edited"})
    new = await w.gl_issue("New in GitLab", labels="bug")     # no pair yet: the page may be making it
    await deliver(w, row["id"], "a", held)
    await deliver(w, row["id"], "b", str(by_title["Free"].iid))
    await deliver(w, row["id"], "b", new)
    await engine.deliveries.take("a", {held})
    assert by_title["Free"].title == "Free, edited" and by_title["Held by the page"].title == "Held by the page"
    assert len(w.jira.issues) == 2 and await pending(w) == 2
    await engine.deliveries.take()      # after the page: the rest
    assert by_title["Held by the page"].title == "Held, edited" and len(w.jira.issues) == 3
    assert await pending(w) == 0
