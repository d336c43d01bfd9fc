"""The GitLab connector (appliance/connectors/gitlab.py) against the GitLab emulator, through the
real OutboundClient: what the engine will see and what lands in GitLab."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from aiohttp import web

from appliance.config import OutboundConfig
from appliance.connectors.base import (NotSupported, RemoteAuthError, RemoteItemError, RemoteNotFound,
                                       RetriableRemoteError, WebhookEvent)
from appliance.connectors.gitlab import GitLabConnector
from appliance.outbound import OutboundClient, RetryPolicy
from tests.fakes import gitlab as gitlab_fake
from tests.fakes.gitlab import DEVELOPER, GitLabFake
from tests.fakes.server import serve

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_wait=5)


@pytest.fixture
async def world():
    fake = GitLabFake()
    alice = fake.add_user("alice", name="Alice Liddell")
    bob = fake.add_user("bob", name="Bob Builder")
    project = fake.add_project("acme/widgets", owner=alice)
    fake.add_member(project, bob, DEVELOPER)
    fake.add_project("acme/other", owner=bob)
    fake.add_label(project, "bug")
    fake.add_label(project, "status::doing")
    fake.add_label(project, "status::done")
    fake.add_milestone(project, "v1.0")
    token = fake.add_token(alice)
    config = SimpleNamespace(outbound=OutboundConfig())
    async with serve(fake.app()) as url, \
            OutboundClient(config, ["127.0.0.1"], retry=FAST, rate=1000, burst=1000, tenant="acme") as client:
        def connector(secret: str = token, **options) -> GitLabConnector:
            http = client.for_connection(f"gitlab-{secret[-6:]}", url, GitLabConnector.auth_headers({"token": secret}))
            return GitLabConnector(http, options)
        yield SimpleNamespace(fake=fake, url=url, client=client, connector=connector, gl=connector(),
                              project=project, pid=str(project.id), alice=alice, bob=bob, token=token)


async def test_test_reports_account_projects_and_access(world):
    report = await world.gl.test()
    assert report.ok and report.account.login == "alice" and report.account.id == str(world.alice.id)
    assert [c.key for c in report.containers] == ["acme/widgets"]
    assert report.permissions == ["read", "comment", "attach", "write", "admin", "delete"]
    assert "GitLab 17.6.1-ee as @alice" in report.detail and "acme/widgets (Owner)" in report.detail

    bob = await world.connector(world.fake.add_token(world.bob)).test()
    assert sorted(c.key for c in bob.containers) == ["acme/other", "acme/widgets"]
    assert "acme/widgets (Developer)" in bob.detail and "acme/other (Owner)" in bob.detail

    bot, project_token = world.fake.add_project_token(world.project)
    scoped = await world.connector(project_token).test()
    assert scoped.ok and scoped.account.login == bot.username
    assert [c.key for c in scoped.containers] == ["acme/widgets"] and "(Maintainer)" in scoped.detail
    assert "delete" not in scoped.permissions and "admin" in scoped.permissions

    world.fake.revoke(world.token)
    refused = await world.gl.test()
    assert not refused.ok and refused.account is None and "401" in refused.detail
    assert world.token not in refused.detail


async def test_describe_statuses_labels_and_users(world):
    info = await world.gl.describe(world.pid)
    assert [s.name for s in info.statuses] == ["opened", "status::doing", "status::done", "closed"]
    assert [s.category for s in info.statuses] == ["todo", "in_progress", "done", "done"]
    assert info.labels == ["bug"] and info.key == "acme/widgets" and "issue" in info.item_types
    fields = {f.id: f for f in info.fields}
    assert fields["milestone"].options == ["v1.0"] and fields["reporter"].writable is False
    users = await world.gl.list_users(world.pid, "bob")
    assert [(u.login, u.name) for u in users] == [("bob", "Bob Builder")]
    assert [c.key for c in await world.gl.list_containers()] == ["acme/widgets"]
    without = await world.connector(status_scope="").describe(world.pid)
    assert [s.name for s in without.statuses] == ["opened", "closed"]
    assert without.labels == ["bug", "status::doing", "status::done"]


async def test_create_get_update_with_marker_footer(world):
    gl, fake = world.gl, world.fake
    fields = {"title": "Crash", "description": "It **crashes**.", "status": "status::doing",
              "labels": ["bug", "needs-info"], "assignees": [{"id": str(world.bob.id), "name": "Bob Builder"}],
              "milestone": "v1.0", "due_date": "2026-12-24", "weight": 2, "confidential": False}
    item = await gl.create_item(world.pid, "incident", fields, "m-1f2e")
    assert item.marker == "m-1f2e" and item.key == "#1" and item.type == "incident"
    stored = fake.issue(world.project, 1)
    assert stored.description == "It **crashes**.\n\n<!-- tandem:sync:m-1f2e -->"
    assert sorted(stored.labels) == ["bug", "needs-info", "status::doing"]
    got = await gl.get_item(world.pid, item.id)
    assert got.fields["description"] == "It **crashes**." and got.marker == "m-1f2e"
    assert got.fields["status"] == "status::doing" and got.fields["labels"] == ["bug", "needs-info"]
    assert [a["login"] for a in got.fields["assignees"]] == ["bob"]
    assert got.fields["reporter"]["login"] == "alice"
    assert (got.fields["milestone"], got.fields["due_date"], got.fields["weight"]) == ("v1.0", "2026-12-24", 2)
    assert got.created_at.tzinfo == timezone.utc and got.comments == [] and got.attachments == []

    updated = await gl.update_item(world.pid, item.id, {"description": "Fixed wording.", "status": "closed"})
    assert updated.fields["description"] == "Fixed wording." and updated.fields["status"] == "closed"
    assert stored.description.endswith("<!-- tandem:sync:m-1f2e -->") and stored.state == "closed"
    assert "status::doing" not in stored.labels and updated.updated_at > got.updated_at
    reopened = await gl.update_item(world.pid, item.id, {"status": "status::done", "labels": ["bug"]})
    assert (reopened.fields["status"], reopened.fields["labels"], stored.state) == ("status::done", ["bug"], "opened")
    plain = await gl.update_item(world.pid, item.id, {"status": "opened", "milestone": None, "due_date": None,
                                                      "assignees": [], "weight": None})
    assert plain.fields["status"] == "opened" and stored.labels == ["bug"]
    assert (plain.fields["milestone"], plain.fields["due_date"], plain.fields["assignees"]) == (None, None, [])

    with pytest.raises(RemoteItemError) as err:
        await gl.update_item(world.pid, item.id, {"status": "In Review"})
    assert "use opened, closed, or status::<name>" in str(err.value)
    closed = await gl.create_item(world.pid, "issue", {"title": "Done already", "status": "closed"}, "m-2")
    assert closed.fields["status"] == "closed" and fake.issue(world.project, 2).state == "closed"
    with pytest.raises(RemoteItemError) as err:
        await gl.create_item(world.pid, "issue", {"title": "x", "milestone": "v9"}, "m-3")
    assert "v9" in str(err.value)
    with pytest.raises(RemoteItemError) as err:
        await gl.create_item(world.pid, "issue", {"title": "  "}, "m-4")
    assert err.value.status == 400 and err.value.details == {"title": "can't be blank"}


async def test_comments_exclude_system_notes_and_carry_markers(world):
    gl = world.gl
    item = await gl.create_item(world.pid, "issue", {"title": "Talk"}, "m-c")
    await gl.update_item(world.pid, item.id, {"labels": ["bug"], "status": "closed"})  # system notes
    mine = await gl.add_comment(world.pid, item.id, "From Jira: *hello*", "c-77")
    assert mine.marker == "c-77" and mine.body == "From Jira: *hello*" and not mine.system
    bob = world.connector(world.fake.add_token(world.bob))
    human = await bob.add_comment(world.pid, item.id, "Human reply", "")
    assert human.marker is None and human.author.login == "bob"
    comments = await gl.list_comments(world.pid, item.id)
    assert [(c.body, c.marker) for c in comments] == [("From Jira: *hello*", "c-77"), ("Human reply", None)]
    notes = world.fake.projects[world.project.id].notes[int(item.id)]
    assert sum(n.system for n in notes) >= 2, "the emulator did write system notes"
    assert notes[-2].body == "From Jira: *hello*\n\n<!-- tandem:sync:c-77 -->"
    full = await gl.get_item(world.pid, item.id)
    assert [c.id for c in full.comments] == [mine.id, human.id]


async def test_changed_since_inclusive_stable_and_complete(world):
    gl, fake = world.gl, world.fake
    start = datetime(2026, 11, 28, 21, 32, 0, 123456, tzinfo=timezone.utc)
    now = [start]
    fake.clock = lambda: now[0]
    for n in range(5):  # five issues in the same millisecond: a bulk import
        await gl.create_item(world.pid, "issue", {"title": f"bulk {n}"}, f"b{n}")
    for n in range(5, 12):
        now[0] = start + timedelta(seconds=n)
        await gl.create_item(world.pid, "issue", {"title": f"later {n}"}, f"b{n}")

    seen, cursor, pages = [], None, 0
    while True:
        page = await gl.changed_since(world.pid, start, cursor, page_size=2)
        pages += 1
        seen += [i.id for i in page.items]
        if pages == 2:
            # An edit while paging: the issue moves to the end, and is returned again there.
            now[0] = start + timedelta(seconds=30)
            await gl.update_item(world.pid, "4", {"title": "bulk 3, edited"})
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen[:3] == ["5", "4", "3"], "one instant: GitLab breaks the tie by id, descending"
    assert seen.count("4") == 2 and seen[-1] == "4"
    assert sorted(set(seen), key=int) == [str(n) for n in range(1, 13)], "nothing lost"
    later = await gl.changed_since(world.pid, start + timedelta(seconds=11, microseconds=-1), None)
    assert [i.id for i in later.items] == ["12", "4"], "inclusive of the instant, ordered by update"
    assert (await gl.changed_since(world.pid, start + timedelta(seconds=31), None)).items == []


async def test_first_page_of_a_poll_carries_gitlabs_count(world, monkeypatch):
    gl, fake = world.gl, world.fake
    start = datetime(2026, 11, 28, 21, 32, 0, 123456, tzinfo=timezone.utc)
    now = [start]
    fake.clock = lambda: now[0]
    for n in range(7):
        now[0] = start + timedelta(seconds=n)
        await gl.create_item(world.pid, "issue", {"title": f"issue {n}"}, f"m{n}")

    async def poll(since, page_size):
        pages = [await gl.changed_since(world.pid, since, None, page_size=page_size)]
        while pages[-1].next_cursor:
            pages.append(await gl.changed_since(world.pid, since, pages[-1].next_cursor, page_size=page_size))
        return pages

    pages = await poll(None, 3)
    assert [p.total for p in pages] == [7, None, None]
    assert [i.id for p in pages for i in p.items] == [str(n) for n in range(1, 8)]
    assert [p.total for p in await poll(start + timedelta(seconds=4), 2)] == [3, None]
    # GitLab stops counting beyond 10,000 rows and leaves X-Total out: one issues_statistics
    # request counts them then, on the first page only, and only when more pages follow.
    monkeypatch.setattr(gitlab_fake, "MAX_COUNTED", 5)
    statistics = ("GET", "/api/v4/projects/{id}/issues_statistics")
    before = fake.knobs.count(*statistics)
    pages = await poll(None, 3)
    assert [p.total for p in pages] == [7, None, None]
    assert [i.id for p in pages for i in p.items] == [str(n) for n in range(1, 8)]
    assert [p.total for p in await poll(start + timedelta(seconds=1), 4)] == [6, None]
    assert [p.total for p in await poll(start + timedelta(seconds=4), 2)] == [3, None], "X-Total counted these"
    assert fake.knobs.count(*statistics) == before + 2

    # A count GitLab refuses or cannot give leaves the total out, not the poll.
    for status in (400, 503):
        fake.knobs.fault = lambda request, status=status: (
            web.json_response({"message": "no"}, status=status) if request.path.endswith("/issues_statistics")
            else None)
        pages = await poll(None, 3)
        assert [p.total for p in pages] == [None, None, None], status
        assert [i.id for p in pages for i in p.items] == [str(n) for n in range(1, 8)]
    fake.knobs.fault = None


async def test_find_by_marker_after_a_crash_between_create_and_link(world):
    item = await world.gl.create_item(world.pid, "issue", {"title": "Orphan", "description": "body"}, "abc-123")
    del item  # the worker dies here: the link was never recorded
    knobs = world.fake.knobs
    before = knobs.count("GET", "/api/v4/user")
    recovered = await world.connector().find_by_marker(world.pid, "abc-123")
    assert recovered is not None and recovered.id == "1" and recovered.fields["description"] == "body"
    assert knobs.count("GET", "/api/v4/user") == before, "found by the description search alone"

    # A search that lags behind (an index not yet updated): the account's newest issues are checked.
    def lagging_search(request: web.Request):
        if "search" in request.query:
            return web.json_response([], headers={"X-Total": "0", "X-Next-Page": ""})
        return None
    knobs.fault = lagging_search
    again = await world.gl.find_by_marker(world.pid, "abc-123")
    assert again is not None and again.id == "1"
    knobs.fault = None
    assert await world.gl.find_by_marker(world.pid, "abc-12") is None, "markers are verified exactly"
    assert await world.gl.find_by_marker(world.pid, "zzz-999") is None


async def test_attachments_upload_link_list_and_download(world):
    gl = world.gl
    item = await gl.create_item(world.pid, "issue", {"title": "With files"}, "m-a")
    data = hashlib.sha256(b"seed").digest() * 5000  # 160 kB

    async def chunks():
        for offset in range(0, len(data), 7000):
            yield data[offset:offset + 7000]

    world.fake.knobs.fail_next(1, status=429, retry_after=0)  # the multipart body is sent again
    ref = await gl.upload_attachment(world.pid, item.id, "trace.bin", chunks(), len(data), "application/octet-stream")
    assert ref.filename == "trace.bin" and ref.size == len(data) and ref.author.login == "alice"
    assert world.fake.knobs.count("POST", "/api/v4/projects/{id}/uploads") == 2
    got = await gl.get_item(world.pid, item.id)
    assert [(a.id, a.size) for a in got.attachments] == [(ref.id, len(data))]
    assert got.comments == [], "the link note of an attachment is not a comment"
    downloaded = b"".join([chunk async for chunk in gl.download_attachment(got.attachments[0])])
    assert downloaded == data

    # A file a person attached in GitLab (linked in the description) is listed too.
    secret = "0123456789abcdef0123456789abcdef"
    from tests.fakes.gitlab import Upload
    world.project.uploads[secret] = Upload(99, secret, "shot.png", b"\x89PNG", "image/png", world.alice.id,
                                           datetime.now(timezone.utc))
    await gl.update_item(world.pid, item.id, {"description": f"See ![shot](/uploads/{secret}/shot.png)"})
    got = await gl.get_item(world.pid, item.id)
    assert [(a.filename, a.mime_type) for a in got.attachments] == [("shot.png", "image/png"),
                                                                     ("trace.bin", "application/octet-stream")]
    assert b"".join([c async for c in gl.download_attachment(got.attachments[0])]) == b"\x89PNG"
    spaced = await gl.upload_attachment(world.pid, item.id, "crash log (1).txt", chunks(), len(data), "text/plain")
    assert spaced.filename == "crash_log__1_.txt", "the name GitLab stored, as get_item lists it"
    listed = (await gl.get_item(world.pid, item.id)).attachments
    assert [a.filename for a in listed][-1] == "crash_log__1_.txt"
    assert b"".join([c async for c in gl.download_attachment(listed[-1])]) == data
    gone = got.attachments[0]
    del world.project.uploads[secret]
    with pytest.raises(RemoteNotFound):
        [c async for c in gl.download_attachment(gone)]


async def test_retries_rate_limits_and_error_classes(world):
    gl, knobs = world.gl, world.fake.knobs
    await gl.create_item(world.pid, "issue", {"title": "One"}, "m-1")
    stats = world.client.stats(gl.http.connection_id)
    before = stats.snapshot()
    knobs.fail_next(2, status=503)
    assert (await gl.get_item(world.pid, "1")).fields["title"] == "One"
    knobs.fail_next(1, status=429, retry_after=0)
    assert (await gl.get_item(world.pid, "1", comments=False)).fields["title"] == "One"
    delta = stats - before
    assert delta.retries == 3 and delta.rate_limited == 1

    knobs.fail_next(1, status=502)
    with pytest.raises(RetriableRemoteError):
        await gl.create_item(world.pid, "issue", {"title": "Two"}, "m-2")  # a create is not retried blindly
    assert await gl.find_by_marker(world.pid, "m-2") is None and len(world.project.issues) == 1

    with pytest.raises(RemoteNotFound):
        await gl.get_item(world.pid, "42")
    developer = world.connector(world.fake.add_token(world.bob))
    with pytest.raises(RemoteAuthError) as err:
        await developer.delete_item(world.pid, "1")
    assert err.value.status == 403
    await gl.delete_item(world.pid, "1")
    assert world.project.issues == {}
    world.fake.revoke(world.token)
    with pytest.raises(RemoteAuthError) as err:
        await gl.get_item(world.pid, "1")
    assert err.value.status == 401 and world.token not in str(err.value)


async def test_webhooks_verified_and_parsed_from_real_deliveries(world):
    received: list[tuple[dict, bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with serve(app) as hook_url:
        response = await world.gl.http.request("POST", f"api/v4/projects/{world.pid}/hooks", expect=(201,),
                                               json={"url": f"{hook_url}/hook", "token": "whsec-1",
                                                     "issues_events": True, "note_events": True})
        assert response.json()["issues_events"] is True
        item = await world.gl.create_item(world.pid, "issue", {"title": "Hooked"}, "m-h")
        await world.gl.add_comment(world.pid, item.id, "hello", "c-h")
        await world.gl.update_item(world.pid, item.id, {"status": "closed"})
        await world.fake.drain_hooks()
    gl = world.gl
    assert len(received) == 3
    for headers, body in received:
        assert await gl.verify_webhook(headers, body, "whsec-1")
        assert not await gl.verify_webhook(headers, body, "whsec-2")
    assert not await gl.verify_webhook({}, received[0][1], "whsec-1")
    events = [await gl.parse_webhook(h, b) for h, b in received]
    assert events == [[WebhookEvent(world.pid, item.id, "created")], [WebhookEvent(world.pid, item.id, "comment")],
                      [WebhookEvent(world.pid, item.id, "updated")]]
    assert await gl.parse_webhook({"X-Gitlab-Event": "Issue Hook"}, b"not json") == []
    assert await gl.parse_webhook({"X-Gitlab-Event": "Push Hook"}, received[0][1]) == []


async def test_comment_edit_and_delete_follow_gitlab_rights(world):
    gl = world.gl
    item = await gl.create_item(world.pid, "issue", {"title": "Talk"}, "m-e")
    mine = await gl.add_comment(world.pid, item.id, "From Jira: hello", "c-1")
    edited = await gl.update_comment(world.pid, item.id, mine.id, "From Jira: hello again")
    assert (edited.id, edited.body, edited.marker) == (mine.id, "From Jira: hello again", "c-1")
    notes = world.fake.projects[world.project.id].notes[int(item.id)]
    assert notes[-1].body == "From Jira: hello again\n\n<!-- tandem:sync:c-1 -->", "the marker footer stays"

    bob = world.connector(world.fake.add_token(world.bob))
    human = await bob.add_comment(world.pid, item.id, "Human reply", "")
    calls = world.fake.knobs.count("PUT", "/api/v4/projects/{id}/issues/{iid}/notes/{note_id}")
    assert calls == 1, "the edit above"
    with pytest.raises(NotSupported) as refused:
        await gl.update_comment(world.pid, item.id, human.id, "rewritten")
    assert "only the author" in str(refused.value) and "@bob" in str(refused.value)
    assert world.fake.knobs.count("PUT", "/api/v4/projects/{id}/issues/{iid}/notes/{note_id}") == calls, \
        "refused before asking (GitLab's 403 would read as a revoked token)"
    with pytest.raises(NotSupported):
        await bob.delete_comment(world.pid, item.id, mine.id)   # bob is a Developer, not the author
    await gl.delete_comment(world.pid, item.id, human.id)         # alice owns the project
    await gl.delete_comment(world.pid, item.id, mine.id)
    assert await gl.list_comments(world.pid, item.id) == []
    with pytest.raises(RemoteNotFound):
        await gl.delete_comment(world.pid, item.id, mine.id)


async def test_attachment_delete_unlinks_only_tandems_own_notes_and_type_change(world):
    gl = world.gl
    item = await gl.create_item(world.pid, "issue", {"title": "Files"}, "m-f")

    async def chunks():
        yield b"trace"

    ref = await gl.upload_attachment(world.pid, item.id, "trace.txt", chunks(), 5, "text/plain")
    bob = world.connector(world.fake.add_token(world.bob))
    upload = await bob.upload_attachment(world.pid, item.id, "bob.txt", chunks(), 5, "text/plain")
    listed = (await gl.get_item(world.pid, item.id)).attachments
    assert sorted(a.filename for a in listed) == ["bob.txt", "trace.txt"]
    await gl.delete_attachment(world.pid, item.id, ref)
    assert [a.filename for a in (await gl.get_item(world.pid, item.id)).attachments] == ["bob.txt"]
    with pytest.raises(NotSupported) as refused:
        await gl.delete_attachment(world.pid, item.id, upload)
    assert "linked from a comment by @bob" in str(refused.value)

    secret = "0123456789abcdef0123456789abcdef"
    await gl.update_item(world.pid, item.id, {"description": f"See [log](/uploads/{secret}/log.txt)"})
    [in_description] = [a for a in (await gl.get_item(world.pid, item.id)).attachments if a.filename == "log.txt"]
    with pytest.raises(NotSupported) as refused:
        await gl.delete_attachment(world.pid, item.id, in_description)
    assert "linked from the issue's description" in str(refused.value)

    changed = await gl.update_item(world.pid, item.id, {"type": "incident", "title": "Outage"})
    assert (changed.type, changed.fields["title"], changed.marker) == ("incident", "Outage", "m-f")


async def test_internal_notes_stay_in_gitlab(world):
    """An internal note (`internal: true`, formerly `confidential: true`) is visible to project
    members only: it is no comment to copy, its files are no attachments, and Tandem never
    edits or deletes it, even where GitLab would let its account."""
    gl, fake = world.gl, world.fake
    item = await gl.create_item(world.pid, "issue", {"title": "Escalation"}, "m-i")
    public = await gl.add_comment(world.pid, item.id, "Public reply", "c-1")
    notes = f"api/v4/projects/{world.pid}/issues/{item.id}/notes"
    bob = world.connector(fake.add_token(world.bob))
    await bob.http.request("POST", notes, json={"body": "Customer is on the old contract", "internal": True},
                           expect=(201,))
    secret = "fedcba9876543210fedcba9876543210"
    own = (await gl.http.request("POST", notes, expect=(201,), json={
        "body": f"Contract: [contract.pdf](/uploads/{secret}/contract.pdf)", "internal": True})).json()
    assert own["internal"] is True and own["confidential"] is True

    comments = await gl.list_comments(world.pid, item.id)
    assert [c.body for c in comments] == ["Public reply"]
    got = await gl.get_item(world.pid, item.id)
    assert [c.id for c in got.comments] == [public.id]
    assert got.attachments == [], "a file linked from an internal note is private too"

    writes = len(fake.writes_by(world.token))
    with pytest.raises(NotSupported) as refused:
        await gl.update_comment(world.pid, item.id, str(own["id"]), "rewritten")
    assert "internal" in str(refused.value)
    with pytest.raises(NotSupported):
        await gl.delete_comment(world.pid, item.id, str(own["id"]))   # alice owns the project
    assert len(fake.writes_by(world.token)) == writes, "refused before asking GitLab"
    stored = [n for n in world.project.notes[int(item.id)] if n.internal]
    assert [n.body for n in stored] == ["Customer is on the old contract",
                                        f"Contract: [contract.pdf](/uploads/{secret}/contract.pdf)"]
    # Older GitLab names the flag `confidential` only.
    legacy = {"id": 1, "body": "x", "system": False, "confidential": True}
    assert not GitLabConnector.is_comment(legacy)


async def test_group_milestones_are_offered_and_written(world):
    """Milestones of the project's group and its parent groups are the common set-up: describe
    offers them and items carry and take them, as they do the project's own."""
    gl, fake = world.gl, world.fake
    fake.add_group_milestone("acme", "2026.Q4")
    fake.add_group_milestone("elsewhere", "Not ours")
    info = await gl.describe(world.pid)
    assert sorted({f.id: f for f in info.fields}["milestone"].options) == ["2026.Q4", "v1.0"]
    item = await gl.create_item(world.pid, "issue", {"title": "Planned", "milestone": "2026.Q4"}, "m-g")
    assert item.fields["milestone"] == "2026.Q4"
    assert (await gl.get_item(world.pid, item.id)).fields["milestone"] == "2026.Q4"
    moved = await gl.update_item(world.pid, item.id, {"milestone": "v1.0"})
    assert moved.fields["milestone"] == "v1.0"
    back = await gl.update_item(world.pid, item.id, {"milestone": "2026.Q4"})
    assert back.fields["milestone"] == "2026.Q4"
    with pytest.raises(RemoteItemError) as err:
        await gl.update_item(world.pid, item.id, {"milestone": "Not ours"})
    assert "Not ours" in str(err.value)

    # A project in a subgroup: its subgroup's and the top group's milestones.
    nested = fake.add_project("acme/team/gadgets", owner=world.alice)
    fake.add_group_milestone("acme/team", "Sprint 7")
    info = await gl.describe(str(nested.id))
    assert sorted({f.id: f for f in info.fields}["milestone"].options) == ["2026.Q4", "Sprint 7"]
    made = await gl.create_item(str(nested.id), "issue", {"title": "Sprint work", "milestone": "Sprint 7"}, "m-n")
    assert (await gl.get_item(str(nested.id), made.id)).fields["milestone"] == "Sprint 7"


async def test_upload_links_read_absolute_and_round_trip(world):
    """GitLab links an upload project-relative (`/uploads/<secret>/<file>`), meaningless in the
    other app: the text Tandem reads has it absolute (the project's web URL in front). Written
    back, GitLab stores the relative form again, so read -> write -> read gives the same text,
    and what a write returns is what the next read gives (no echo)."""
    gl, fake = world.gl, world.fake
    web = f"{world.url}/acme/widgets"
    shot, log = "0123456789abcdef0123456789abcdef", "abcdef0123456789abcdef0123456789"
    for secret, name in ((shot, "shot.png"), (log, "log.txt")):
        world.project.uploads[secret] = gitlab_fake.Upload(len(world.project.uploads) + 1, secret, name, b"data",
                                                           "text/plain", world.bob.id, datetime.now(timezone.utc))
    item = await gl.create_item(world.pid, "issue", {"title": "Screens"}, "m-u")
    bob = world.connector(world.fake.add_token(world.bob))
    other = "http://elsewhere.example/acme/other/uploads/" + "1" * 32 + "/x.png"
    raw = (f"See ![shot](/uploads/{shot}/shot.png) and [old]({other}).\n\n"
           f"`/uploads/{shot}/shot.png` is the path.")
    await bob.http.request("PUT", f"api/v4/projects/{world.pid}/issues/{item.id}", json={"description": raw + (
        "\n\n<!-- tandem:sync:m-u -->")})
    await bob.add_comment(world.pid, item.id, f"Log: [log.txt](/uploads/{log}/log.txt)", "")

    got = await gl.get_item(world.pid, item.id)
    expected = (f"See ![shot]({web}/uploads/{shot}/shot.png) and [old]({other}).\n\n"
                f"`/uploads/{shot}/shot.png` is the path.")
    assert got.fields["description"] == expected
    assert [c.body for c in got.comments] == [f"Log: [log.txt]({web}/uploads/{log}/log.txt)"]
    assert [c.body for c in await gl.list_comments(world.pid, item.id)] == [c.body for c in got.comments]
    assert sorted(a.id for a in got.attachments) == sorted([f"{shot}/shot.png", f"{log}/log.txt"])
    assert b"".join([c async for c in gl.download_attachment(got.attachments[0])]) == b"data"

    # read -> write -> read: the same text; GitLab keeps its own (relative) form.
    written = await gl.update_item(world.pid, item.id, {"description": expected + " Edited."})
    assert written.fields["description"] == expected + " Edited."
    assert fake.issue(world.project, int(item.id)).description == raw + " Edited.\n\n<!-- tandem:sync:m-u -->"
    again = await gl.get_item(world.pid, item.id)
    assert again.fields["description"] == written.fields["description"] and again.marker == "m-u"
    assert sorted(a.id for a in again.attachments) == sorted(a.id for a in got.attachments)

    body = f"From Jira: ![shot]({web}/uploads/{shot}/shot.png)"
    mine = await gl.add_comment(world.pid, item.id, body, "c-u")
    assert mine.body == body
    assert world.project.notes[int(item.id)][-1].body == (f"From Jira: ![shot](/uploads/{shot}/shot.png)"
                                                          "\n\n<!-- tandem:sync:c-u -->")
    edited = await gl.update_comment(world.pid, item.id, mine.id, body + " (edited)")
    assert edited.body == body + " (edited)"
    listed = {c.id: c.body for c in await gl.list_comments(world.pid, item.id)}
    assert listed[mine.id] == edited.body and listed[got.comments[0].id] == got.comments[0].body


async def test_changed_since_survives_an_edit_in_a_tie_longer_than_a_page(world):
    """More issues than a page (GitLab's largest is 100) share one updated_at (a bulk edit);
    edits during the pass move some of them to the end, which shifts the rest of that instant
    forward: none may be skipped."""
    gl, fake = world.gl, world.fake
    start = datetime(2026, 11, 28, 21, 32, 0, 123456, tzinfo=timezone.utc)
    now = [start]
    fake.clock = lambda: now[0]
    for n in range(250):
        await gl.create_item(world.pid, "issue", {"title": f"bulk {n}"}, f"t{n}")

    seen, cursor, pages, edited = [], None, 0, []
    while True:
        page = await gl.changed_since(world.pid, start, cursor, page_size=50)
        pages += 1
        seen += [i.id for i in page.items]
        if pages in (2, 3, 4):
            # An issue already returned is edited: it leaves the instant for a later one.
            now[0] += timedelta(seconds=1)
            iid = seen[pages * 7]
            await gl.update_item(world.pid, iid, {"title": f"edited {iid}"})
            edited.append(iid)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages < 40
    assert sorted(set(seen), key=int) == [str(n) for n in range(1, 251)], "nothing skipped"
    assert all(seen.count(iid) == 2 for iid in edited) and seen[-3:] == edited
    assert len(seen) == 253


async def test_an_issue_that_cannot_be_converted_is_marked_not_dropped(world, monkeypatch):
    """changed_since puts an item marked `unreadable` where an issue's data could not be
    converted, so the engine fails that item alone and the poll goes on past it."""
    gl = world.gl
    for n in range(3):
        await gl.create_item(world.pid, "issue", {"title": f"issue {n}"}, f"m{n}")
    updated = (await gl.get_item(world.pid, "2")).updated_at
    convert = GitLabConnector.to_item

    def odd(self, issue, *args, **kwargs):
        if issue["iid"] == 2:
            raise KeyError("milestone")
        return convert(self, issue, *args, **kwargs)

    monkeypatch.setattr(GitLabConnector, "to_item", odd)
    page = await gl.changed_since(world.pid, None, None)
    assert [(i.id, i.key, i.unreadable) for i in page.items] == [
        ("1", "#1", None), ("2", "#2", "KeyError: 'milestone'"), ("3", "#3", None)]
    assert page.items[1].updated_at == updated      # so the cursor may pass it
