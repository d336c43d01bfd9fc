"""The Jira emulator, checked two ways: driven by the official `jira` client library (where the
library and the emulator disagree, the emulator is wrong), and by direct HTTP for what the library
hides (429 + Retry-After, error bodies, minute-granularity JQL, time zones, webhooks)."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web
from jira import JIRA, JIRAError

from tests.fakes.jira import JiraEmulator
from tests.fakes.server import serve, serve_in_thread


def connect(emu: JiraEmulator, url: str, user=None) -> JIRA:
    user = user or emu.alice
    if emu.cloud:
        return JIRA(server=url, basic_auth=emu.basic_auth(user), max_retries=0)
    return JIRA(server=url, token_auth=user.token, max_retries=0)


@pytest.mark.parametrize("flavor", ["cloud", "server"])
def test_library_create_update_transition_comment_attach(flavor):
    emu = JiraEmulator(flavor)
    with serve_in_thread(emu.app) as url:
        jira = connect(emu, url)
        assert jira._is_cloud == (flavor == "cloud")
        issue = jira.create_issue(project="PROJ", summary="Printer on fire", issuetype={"name": "Bug"},
                                  description="Smoke everywhere", labels=["hardware"],
                                  priority={"name": "High"}, duedate="2026-12-24",
                                  customfield_10010=3, customfield_10011={"value": "Red"})
        assert issue.key == "PROJ-1" and issue.id.isdigit()
        assert (issue.fields.summary, issue.fields.description) == ("Printer on fire", "Smoke everywhere")
        assert issue.fields.issuetype.name == "Bug" and issue.fields.priority.name == "High"
        assert issue.fields.status.name == "To Do" and issue.fields.customfield_10011.value == "Red"
        assert issue.fields.reporter.displayName == "Alice Admin"

        issue.update(fields={"summary": "Printer fixed", "assignee": (
            {"accountId": emu.bob.account_id} if emu.cloud else {"name": "bob"})},
            update={"labels": [{"add": "urgent"}, {"remove": "hardware"}]})
        issue = jira.issue("PROJ-1", expand="changelog")
        assert issue.fields.summary == "Printer fixed" and issue.fields.labels == ["urgent"]
        assert issue.fields.assignee.displayName == "Bob Builder"
        changed = {item.field for h in issue.changelog.histories for item in h.items}
        assert {"summary", "labels", "assignee"} <= changed

        assert [t["name"] for t in jira.transitions(issue)] == ["Start Progress", "Done"]
        with pytest.raises(JIRAError) as refused:
            jira.transition_issue(issue, "Done")
        assert refused.value.status_code == 400 and refused.value.text == "Resolution is required."
        jira.transition_issue(issue, "Done", fields={"resolution": {"name": "Won't Do"}})
        issue = jira.issue("PROJ-1")
        assert (issue.fields.status.name, issue.fields.resolution.name) == ("Done", "Won't Do")
        assert issue.fields.status.statusCategory.key == "done"
        jira.transition_issue(issue, "Reopen")
        assert jira.issue("PROJ-1").fields.resolution is None

        comment = jira.add_comment(issue, "Ordered toner")
        assert jira.comments(issue)[0].body == "Ordered toner"
        comment.update(body="Ordered more toner")
        assert jira.comment(issue.key, comment.id).body == "Ordered more toner"
        # "Edit own comments" for everyone, "Edit / Delete all comments" for administrators: bob
        # may change only his own; Jira says no with a 400 (its API description lists no 403).
        as_bob = connect(emu, url, emu.bob)
        for change in (lambda c: c.update(body="No toner"), lambda c: c.delete()):
            with pytest.raises(JIRAError) as refused:
                change(as_bob.comment(issue.key, comment.id))
            assert refused.value.status_code == 400 and "do not have the permission" in refused.value.text
        bobs = as_bob.add_comment(issue, "Toner arrived")
        jira.comment(issue.key, bobs.id).update(body="Toner arrived (noted by an admin)")
        assert as_bob.comment(issue.key, bobs.id).body == "Toner arrived (noted by an admin)"
        bobs.delete()
        comment.delete()
        assert jira.comments(issue) == []
        with pytest.raises(JIRAError) as gone:
            jira.comment(issue.key, comment.id)
        assert gone.value.status_code == 404

        attachment = jira.add_attachment(issue, io.BytesIO(b"\x00log\xff" * 1000), filename="log.bin")
        assert attachment.size == 5000
        assert jira.attachment(attachment.id).get() == b"\x00log\xff" * 1000
        jira.delete_attachment(attachment.id)
        assert jira.issue("PROJ-1").fields.attachment == []
        with pytest.raises(JIRAError) as gone:
            jira.attachment(attachment.id)
        assert gone.value.status_code == 404

        issue.update(fields={"issuetype": {"name": "Task"}})
        assert jira.issue("PROJ-1").fields.issuetype.name == "Task"

        jira.add_issue_property(issue, "tandem.sync", {"marker": "m-1"})
        assert jira.issue_property(issue.key, "tandem.sync").value.marker == "m-1"
        assert [p.key for p in jira.issue_properties(issue.key)] == ["tandem.sync"]

        issue.delete()
        with pytest.raises(JIRAError) as gone:
            jira.issue("PROJ-1")
        assert gone.value.status_code == 404


@pytest.mark.parametrize("flavor", ["cloud", "server"])
def test_library_search_updated_since_with_pagination(flavor):
    clock = {"now": datetime(2026, 11, 28, 20, 0, tzinfo=timezone.utc)}
    emu = JiraEmulator(flavor, clock=lambda: clock["now"])
    with serve_in_thread(emu.app) as url:
        jira = connect(emu, url)
        for n in range(7):
            clock["now"] += timedelta(minutes=1, seconds=13)
            jira.create_issue(project="PROJ", summary=f"item {n}", issuetype={"name": "Task"})
        clock["now"] += timedelta(minutes=5)
        jira.issue("PROJ-2").update(summary="item 1 edited")
        # 21:00 UTC is 22:00 in Berlin: the JQL literal is read in the user's zone.
        jql = 'project = PROJ AND updated >= "2026/11/28 21:04" ORDER BY updated ASC'
        everything = jira.search_issues(jql, maxResults=False)
        assert [i.key for i in everything] == ["PROJ-4", "PROJ-5", "PROJ-6", "PROJ-7", "PROJ-2"]
        if emu.cloud:
            first = jira.enhanced_search_issues(jql, maxResults=2)
            assert [i.key for i in first] == ["PROJ-4", "PROJ-5"] and first.nextPageToken
            second = jira.enhanced_search_issues(jql, maxResults=2, nextPageToken=first.nextPageToken)
            assert [i.key for i in second] == ["PROJ-6", "PROJ-7"]
        else:
            page = jira.search_issues(jql, startAt=2, maxResults=2)
            assert [i.key for i in page] == ["PROJ-6", "PROJ-7"] and page.total == 5
        assert [i.key for i in jira.search_issues('key in (PROJ-3, PROJ-1) ORDER BY key ASC')] == \
            ["PROJ-1", "PROJ-3"]


@pytest.mark.parametrize("flavor", ["cloud", "server"])
def test_library_metadata(flavor):
    emu = JiraEmulator(flavor)
    with serve_in_thread(emu.app) as url:
        jira = connect(emu, url)
        assert [p.key for p in jira.projects()] == ["PROJ"]
        assert {t.name for t in jira.project("PROJ").issueTypes} == {"Task", "Bug", "Story"}
        fields = {f["id"]: f for f in jira.fields()}
        assert fields["customfield_10010"]["name"] == "Story Points" and fields["customfield_10010"]["custom"]
        assert [s.name for s in jira.statuses()] == ["To Do", "In Progress", "Done"]
        assert [p.name for p in jira.priorities()][0] == "Highest"
        assert {v.name for v in jira.project_versions("PROJ")} == {"1.0", "2.0"}
        if emu.cloud:
            assert [u.displayName for u in jira.search_users(query="bob")] == ["Bob Builder"]
        else:
            assert [u.name for u in jira.search_users(user="bob")] == ["bob"]
        assert jira.myself()["timeZone"] == "Europe/Berlin"
        jira.create_issue(project="PROJ", summary="s", issuetype={"name": "Task"})
        editable = jira.editmeta("PROJ-1")["fields"]
        assert {"summary", "labels", "customfield_10011"} <= set(editable) and "status" not in editable
        assert [o["value"] for o in editable["customfield_10011"]["allowedValues"]] == ["Red", "Blue"]
        if emu.cloud:
            meta = jira.createmeta(projectKeys="PROJ", expand="projects.issuetypes.fields")
            bug = next(t for t in meta["projects"][0]["issuetypes"] if t["name"] == "Bug")
            assert bug["fields"]["summary"]["required"] is True
        else:
            types = jira.project_issue_types("PROJ")
            assert [t.name for t in types] == ["Task", "Bug", "Story"]
            fields = {f.fieldId: f for f in jira.project_issue_fields("PROJ", types[1].id)}
            assert fields["summary"].required and not fields["labels"].required


def test_library_sees_the_configured_server_zone():
    clock = lambda: datetime(2026, 7, 1, 12, 0, 0, 5000, tzinfo=timezone.utc)   # noqa: E731
    emu = JiraEmulator("server", tz="Asia/Kolkata", clock=clock)
    with serve_in_thread(emu.app) as url:
        jira = connect(emu, url)
        issue = jira.create_issue(project="PROJ", summary="s", issuetype={"name": "Task"})
        assert issue.fields.created == "2026-07-01T17:30:00.005+0530"
        assert jira.server_info()["serverTimeZone"] == "Asia/Kolkata"


def test_library_rejects_bad_credentials():
    emu = JiraEmulator("server")
    with serve_in_thread(emu.app) as url:
        with pytest.raises(JIRAError) as denied:
            JIRA(server=url, basic_auth=("alice", "wrong"), max_retries=0)
        assert denied.value.status_code == 401


# -- direct HTTP --------------------------------------------------------------------------------

@pytest.fixture(params=["cloud", "server"])
async def jira_http(request):
    emu = JiraEmulator(request.param)
    async with serve(emu.app) as url, aiohttp.ClientSession(
            headers={"Authorization": emu.auth_header(emu.alice)}) as session:
        yield emu, url + ("/rest/api/3" if emu.cloud else "/rest/api/2"), session


def body(emu: JiraEmulator, text: str):
    if not emu.cloud:
        return text
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": text}]}]}


def search(emu: JiraEmulator, api: str) -> str:
    """Cloud removed the legacy /search in 2025 (410); its enhanced search is /search/jql."""
    return f"{api}/search/jql" if emu.cloud else f"{api}/search"


async def create(emu, api, session, summary="Task", **fields) -> dict:
    payload = {"project": {"key": "PROJ"}, "issuetype": {"name": "Task"}, "summary": summary, **fields}
    async with session.post(f"{api}/issue", json={"fields": payload}) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def test_rate_limit_and_server_errors(jira_http):
    emu, api, session = jira_http
    emu.knobs.fail_next(1, 429, retry_after=7)
    async with session.get(f"{api}/myself") as response:
        assert response.status == 429 and response.headers["Retry-After"] == "7"
        assert (await response.json())["errorMessages"] == ["Rate limit exceeded."]
    emu.knobs.fail_next(1, 503)
    async with session.get(f"{api}/myself") as response:
        assert response.status == 503
    async with session.get(f"{api}/myself") as response:
        assert response.status == 200
    assert emu.knobs.count("GET", f"/rest/api/{'3' if emu.cloud else '2'}/myself") == 3
    assert emu.knobs.failures == {429: 1, 503: 1}


async def test_error_bodies_and_permissions(jira_http):
    emu, api, session = jira_http
    async with session.post(f"{api}/issue", json={"fields": {
            "project": {"key": "PROJ"}, "issuetype": {"name": "Task"}}}) as response:
        assert response.status == 400
        assert await response.json() == {"errorMessages": [],
                                         "errors": {"summary": "You must specify a summary of the issue."}}
    async with session.get(f"{api}/issue/PROJ-999") as response:
        assert response.status == 404
        assert (await response.json())["errorMessages"] == [
            "Issue does not exist or you do not have permission to see it."]
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{api}/myself") as response:
            assert response.status == 401
        async with anonymous.get(f"{api}/myself", headers={"Authorization": "Basic YWxpY2U6bm9wZQ=="}) as r:
            assert r.status == 401 and r.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"
    issue = await create(emu, api, session)
    emu.bob.access["PROJ"] = "read"
    bob = {"Authorization": emu.auth_header(emu.bob)}
    async with session.get(f"{api}/issue/{issue['key']}", headers=bob) as response:
        assert response.status == 200
    # A change bob may not make is refused as the API description lists it per operation: 400
    # for an edit, a transition and a comment (their 403s are for other cases), 403 for the rest.
    refusals = [("PUT", f"/issue/{issue['key']}", {"fields": {"summary": "x"}}, 400),
                ("POST", f"/issue/{issue['key']}/transitions", {"transition": {"id": "11"}}, 400),
                ("POST", f"/issue/{issue['key']}/comment", {"body": body(emu, "hi")}, 400),
                ("POST", "/issue", {"fields": {"project": {"key": "PROJ"}, "issuetype": {"name": "Task"},
                                               "summary": "x"}}, 403),
                ("DELETE", f"/issue/{issue['key']}", None, 403),
                ("PUT", f"/issue/{issue['key']}/properties/k", {"a": 1}, 403)]
    for method, path, payload, status in refusals:
        async with session.request(method, f"{api}{path}", json=payload, headers=bob) as response:
            assert response.status == status, (method, path)
            assert "permission" in (await response.json())["errorMessages"][0]
    emu.bob.access["PROJ"] = "none"
    async with session.post(search(emu, api), json={"jql": "project = PROJ"}, headers=bob) as response:
        assert response.status == 400
        assert (await response.json())["errorMessages"] == [
            "The value 'PROJ' does not exist for the field 'project'."]
    assert [w.issue_key for w in emu.writes_by(emu.alice)] == [issue["key"]]
    assert emu.writes_by(emu.bob) == []


async def test_timestamps_in_server_zone_and_minute_granularity_jql(jira_http):
    emu, api, session = jira_http
    moment = {"now": datetime(2026, 11, 28, 20, 32, 45, 123456, tzinfo=timezone.utc)}
    emu.clock = lambda: moment["now"]
    issue = await create(emu, api, session)
    async with session.get(f"{api}/issue/{issue['id']}") as response:
        fields = (await response.json())["fields"]
    assert fields["updated"] == "2026-11-28T21:32:45.123+0100"   # Berlin, winter time, milliseconds
    assert fields["created"] == fields["updated"]

    async def keys(jql):
        async with session.post(search(emu, api), json={"jql": jql, "fields": ["*all"]}) as response:
            assert response.status == 200, await response.text()
            return [i["key"] for i in (await response.json())["issues"]]
    assert await keys('updated >= "2026/11/28 21:32"') == [issue["key"]]
    assert await keys('updated >= "2026-11-28 21:33"') == []
    assert await keys('updated > "2026/11/28 20:32"') == [issue["key"]]   # not UTC
    async with session.post(search(emu, api), json={"jql": 'updated >= "2026/11/28 21:32:10"'}) as r:
        assert r.status == 400 and "Valid formats include: 'yyyy/MM/dd HH:mm'" in (
            await r.json())["errorMessages"][0]
    async with session.get(f"{api}/serverInfo") as response:
        assert (await response.json())["serverTime"].endswith("+0100")


async def test_description_formats_by_flavour(jira_http):
    emu, api, session = jira_http
    issue = await create(emu, api, session, description=body(emu, "Hello world"))
    async with session.get(f"{api}/issue/{issue['id']}") as response:
        assert (await response.json())["fields"]["description"] == body(emu, "Hello world")
    if emu.cloud:
        async with session.post(f"{api}/issue", json={"fields": {
                "project": {"key": "PROJ"}, "issuetype": {"name": "Task"}, "summary": "s",
                "description": "a plain string"}}) as response:
            assert response.status == 400
            assert "Atlassian Document" in (await response.json())["errors"]["description"]
        v2 = api.replace("/rest/api/3", "/rest/api/2")
        async with session.get(f"{v2}/issue/{issue['id']}") as response:
            assert (await response.json())["fields"]["description"] == "Hello world"


async def test_property_search_and_enhanced_search(jira_http):
    emu, api, session = jira_http
    first = await create(emu, api, session, summary="one")
    await create(emu, api, session, summary="two")
    async with session.put(f"{api}/issue/{first['key']}/properties/tandem.sync",
                           json={"marker": "abc"}) as response:
        assert response.status == 201
    jql = 'project = PROJ AND issue.property[tandem.sync].marker = "abc"'

    async def found(jql, headers=None):
        async with session.get(search(emu, api), params={"jql": jql, "properties": "tandem.sync",
                                                       "fields": "summary"}, headers=headers) as r:
            assert r.status == 200, await r.text()
            return [(i["key"], i.get("properties")) for i in (await r.json())["issues"]]

    # Jira indexes a property for JQL only where an app declares it: elsewhere the clause is
    # valid and matches nothing.
    assert await found(jql) == []
    emu.indexed_properties.add("tandem.sync")
    assert await found(jql) == [(first["key"], {"tandem.sync": {"marker": "abc"}})]
    assert await found('project = PROJ AND issue.property[tandem.sync].marker != "abc"') == []

    # creator / reporter and currentUser() (the searching user), as Jira has them.
    bob = {"Authorization": emu.auth_header(emu.bob)}
    async with session.post(f"{api}/issue", headers=bob, json={"fields": {
            "project": {"key": "PROJ"}, "issuetype": {"name": "Task"}, "summary": "bob's"}}) as response:
        bobs = await response.json()
    mine = "project = PROJ AND creator = currentUser() ORDER BY created DESC, key DESC"
    assert [k for k, _ in await found(mine)] == ["PROJ-2", "PROJ-1"]
    assert [k for k, _ in await found(mine, bob)] == [bobs["key"]]
    assert [k for k, _ in await found("reporter in (currentUser()) AND creator != bob", bob)] == []
    async with session.get(search(emu, api), params={"jql": "status = currentUser()"}) as response:
        assert response.status == 400
    async with session.get(search(emu, api), params={"jql": "creator = nobodyKnows()"}) as response:
        assert response.status == 400
        assert (await response.json())["errorMessages"] == ["Unable to find JQL function 'nobodyKnows()'."]
    if emu.cloud:
        async with session.get(f"{api}/search/jql", params={"jql": "project = PROJ ORDER BY id ASC",
                                                            "maxResults": "1"}) as response:
            page = await response.json()
        assert page["issues"] == [{"id": first["id"]}] and page["isLast"] is False
        async with session.get(f"{api}/search", params={"jql": "project = PROJ"}) as response:
            assert response.status == 410 and "/search/jql" in (await response.json())["errorMessages"][0]


async def test_webhook_delivery(jira_http):
    emu, api, session = jira_http
    received: list[dict] = []
    got = asyncio.Event()

    async def hook(request):
        received.append(await request.json())
        got.set()
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook/{secret}", hook)
    async with serve(receiver) as hook_url:
        if emu.cloud:
            async with session.post(f"{api}/webhook", json={"url": f"{hook_url}/hook/s3cret", "webhooks": [
                    {"events": ["jira:issue_created", "jira:issue_updated", "comment_created"],
                     "jqlFilter": "project = PROJ"}]}) as response:
                assert "createdWebhookId" in (await response.json())["webhookRegistrationResult"][0]
        else:
            root = api.replace("/rest/api/2", "")
            async with session.post(f"{root}/rest/webhooks/1.0/webhook", json={
                    "name": "tandem", "url": f"{hook_url}/hook/s3cret",
                    "events": ["jira:issue_created", "jira:issue_updated", "comment_created"],
                    "filters": {"issue-related-events-section": "project = PROJ"}}) as response:
                assert response.status == 201
        issue = await create(emu, api, session)
        async with session.post(f"{api}/issue/{issue['key']}/comment",
                                json={"body": body(emu, "hi")}) as response:
            assert response.status == 201
        await emu.drain()
    assert [r["webhookEvent"] for r in received] == ["jira:issue_created", "comment_created"]
    assert received[0]["issue"]["key"] == issue["key"] and received[1]["comment"]["body"] == "hi"
    assert [d["status"] for d in emu.deliveries] == [204, 204]


async def test_changelog_properties_comments_and_attachment_content(jira_http):
    emu, api, session = jira_http
    issue = await create(emu, api, session, summary="before")
    async with session.put(f"{api}/issue/{issue['key']}", json={"fields": {"summary": "after"}}) as r:
        assert r.status == 204
    if emu.cloud:
        async with session.get(f"{api}/issue/{issue['key']}/changelog") as response:
            page = await response.json()
        assert page["total"] == 1 and page["values"][0]["items"][0]["fromString"] == "before"
    async with session.put(f"{api}/issue/{issue['key']}/properties/k", json={"a": 1}) as response:
        assert response.status == 201
    async with session.delete(f"{api}/issue/{issue['key']}/properties/k") as response:
        assert response.status == 204
    async with session.get(f"{api}/issue/{issue['key']}/properties/k") as response:
        assert response.status == 404
        assert (await response.json())["errorMessages"] == ["The property with key 'k' does not exist."]
    for n in range(3):
        async with session.post(f"{api}/issue/{issue['key']}/comment", json={"body": body(emu, f"c{n}")}):
            pass
    async with session.get(f"{api}/issue/{issue['key']}/comment", params={"startAt": "1", "maxResults": "1"}) as r:
        page = await r.json()
    assert (page["total"], page["startAt"], [c["body"] for c in page["comments"]]) == (3, 1, [body(emu, "c1")])
    async with session.delete(f"{api}/issue/{issue['key']}/comment/{page['comments'][0]['id']}") as response:
        assert response.status == 204

    form = aiohttp.FormData()
    form.add_field("file", b"payload", filename="a.txt", content_type="text/plain")
    async with session.post(f"{api}/issue/{issue['key']}/attachments", data=form) as response:
        assert response.status == 403 and await response.text() == "XSRF check failed"
    form = aiohttp.FormData()
    form.add_field("file", b"payload", filename="a.txt", content_type="text/plain")
    async with session.post(f"{api}/issue/{issue['key']}/attachments", data=form,
                            headers={"X-Atlassian-Token": "no-check"}) as response:
        attachment = (await response.json())[0]
    async with session.get(attachment["content"], allow_redirects=False) as response:
        if emu.cloud:   # Cloud sends content through its media service unless redirect=false
            assert response.status == 303 and "/media/file/" in response.headers["Location"]
        else:
            assert response.status == 200 and await response.read() == b"payload"
    async with session.get(attachment["content"], params={"redirect": "false"}) as response:
        assert response.status == 200 and await response.read() == b"payload"
    if not emu.cloud:
        async with session.post(f"{api}/search", json={"jql": "project = PROJ",
                                                       "properties": ["k"]}) as response:
            assert response.status == 400


async def test_approximate_count_on_cloud_only(jira_http):
    emu, api, session = jira_http
    for summary in ("one", "two", "three"):
        await create(emu, api, session, summary=summary)
    count = f"{api}/search/approximate-count"
    async with session.post(count, json={"jql": "project = PROJ"}) as response:
        if not emu.cloud:   # Data Center has no such endpoint
            assert response.status == 404
            return
        assert response.status == 200 and await response.json() == {"count": 3}
    async with session.post(count, json={"jql": "project = PROJ AND key != PROJ-2"}) as response:
        assert await response.json() == {"count": 2}
    async with session.post(count, json={"jql": "project = PROJ AND"}) as response:
        assert response.status == 400
        assert (await response.json())["errorMessages"] == [
            "Error in the JQL Query: Expecting a field name."]
    async with session.post(count, json={"jql": "ORDER BY key DESC"}) as response:
        assert response.status == 400 and "Unbounded JQL" in (await response.json())["errorMessages"][0]
    emu.bob.access["PROJ"] = "none"
    async with session.post(count, json={"jql": "project = PROJ"},
                            headers={"Authorization": emu.auth_header(emu.bob)}) as response:
        assert response.status == 400
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.post(count, json={"jql": "project = PROJ"}) as response:
            assert response.status == 401
    assert emu.knobs.count("POST", "/rest/api/3/search/approximate-count") == 6


async def test_create_metadata_and_assignable_users_are_paged_as_the_api_description_says(jira_http):
    emu, api, session = jira_http
    values = "fields" if emu.cloud else "values"
    meta = f"{api}/issue/createmeta/PROJ/issuetypes/10002"

    async def page(url, **params):
        async with session.get(url, params={k: str(v) for k, v in params.items()}) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    first = await page(meta)
    assert (first["startAt"], first["maxResults"], len(first[values])) == (0, 50, first["total"])
    middle = await page(meta, startAt=3, maxResults=4)
    assert (middle["startAt"], middle["maxResults"], middle["total"]) == (3, 4, first["total"])
    assert middle[values] == first[values][3:7]
    assert emu.cloud or middle["isLast"] is False
    assert (await page(meta, maxResults=500))["maxResults"] == 200
    emu.meta_max_results = 5        # a site with more fields than a page holds
    assert len((await page(meta, maxResults=200))[values]) == 5

    # The users in [startAt, startAt + maxResults), then only the assignable ones among them.
    for n in range(20):
        user = emu.add_user(f"user{n:02d}", f"User {n:02d}", f"user{n:02d}@example.com")
        if n % 2:
            user.access["PROJ"] = "read"
    login = "query" if emu.cloud else "username"
    users = f"{api}/user/assignable/search"
    shown = await page(users, project="PROJ", **{login: "user"}, startAt=0, maxResults=10)
    assert [u["displayName"] for u in shown] == [f"User {n:02d}" for n in range(0, 10, 2)]
    shown = await page(users, project="PROJ", **{login: "user"}, startAt=10, maxResults=10)
    assert [u["displayName"] for u in shown] == [f"User {n:02d}" for n in range(10, 20, 2)]
    assert await page(users, project="PROJ", **{login: "user"}, startAt=20, maxResults=10) == []


def test_library_reads_every_page_of_the_create_metadata():
    emu = JiraEmulator("server")
    emu.meta_max_results = 3
    with serve_in_thread(emu.app) as url:
        fields = connect(emu, url).project_issue_fields("PROJ", "10002", maxResults=False)
        assert {"summary", "customfield_10013", "fixVersions"} <= {f.fieldId for f in fields}


async def test_restricted_comments_and_subtasks(jira_http):
    emu, api, session = jira_http
    issue = await create(emu, api, session)
    comments = f"{api}/issue/{issue['key']}/comment"
    role = {"type": "role", "value": "Developers"}
    async with session.post(comments, json={"body": body(emu, "internal"), "visibility": role}) as response:
        assert response.status == 201
        comment = await response.json()
    assert comment["visibility"] == role
    async with session.put(f"{comments}/{comment['id']}", json={"body": body(emu, "still internal")}) as r:
        assert (await r.json())["visibility"] == role    # an edit without visibility keeps it
    async with session.post(comments, json={"body": body(emu, "public")}) as response:
        assert "visibility" not in await response.json()
    async with session.post(comments, json={"body": body(emu, "x"), "visibility": {"type": "team"}}) as r:
        assert r.status == 400 and "commentLevel" in (await r.json())["errors"]
    async with session.get(comments) as response:
        assert [c.get("visibility") for c in (await response.json())["comments"]] == [role, None]

    parent = emu.issues[issue["id"]]
    sub = emu.new_issue(emu.bob, emu.projects["PROJ"], {"summary": "sub", "issuetype": "10004",
                                                        "parent": parent.id})
    async with session.get(f"{api}/issue/{parent.key}") as response:
        fields = (await response.json())["fields"]
    assert [s["key"] for s in fields["subtasks"]] == [sub.key] and "parent" not in fields
    async with session.get(f"{api}/issue/{sub.key}") as response:
        fields = (await response.json())["fields"]
    assert fields["parent"]["key"] == parent.key and fields["issuetype"]["subtask"] is True
    async with session.delete(f"{api}/issue/{parent.key}") as response:
        assert response.status == 400 and "deleteSubtasks" in (await response.json())["errorMessages"][0]
    assert set(emu.issues) == {parent.id, sub.id}
    async with session.delete(f"{api}/issue/{parent.key}", params={"deleteSubtasks": "true"}) as response:
        assert response.status == 204
    assert emu.issues == {}
