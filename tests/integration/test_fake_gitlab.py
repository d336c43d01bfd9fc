"""The GitLab emulator (tests/fakes/gitlab.py) checked by driving it with the official client,
python-gitlab: where the library and the emulator disagree, the emulator is wrong. Plus direct
HTTP checks of what the library hides: error bodies, pagination headers, timestamps, 429s and
webhook deliveries."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gitlab
import pytest
import requests

from tests.fakes.gitlab import DEVELOPER, GUEST, GitLabFake
from tests.fakes.server import fingerprint, serve_in_thread

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def world():
    fake = GitLabFake()
    alice = fake.add_user("alice", name="Alice Liddell")
    bob = fake.add_user("bob", name="Bob Builder")
    project = fake.add_project("acme/widgets", owner=alice)
    fake.add_member(project, bob, DEVELOPER)
    fake.add_project("acme/secret")  # nobody above is a member
    token = fake.add_token(alice)
    with serve_in_thread(fake.app) as url:
        yield fake, url, token, project, bob


def client(url: str, token: str) -> gitlab.Gitlab:
    return gitlab.Gitlab(url, private_token=token, retry_transient_errors=False)


def test_auth_user_version_and_projects(world):
    fake, url, token, project, _ = world
    gl = client(url, token)
    gl.auth()
    assert gl.user.username == "alice"
    assert gl.version()[0] == "17.6.1-ee"
    projects = gl.projects.list(membership=True, get_all=True)
    assert [p.path_with_namespace for p in projects] == ["acme/widgets"]
    by_path = gl.projects.get("acme/widgets")
    assert by_path.id == project.id and by_path.permissions["project_access"]["access_level"] == 50
    with pytest.raises(gitlab.GitlabGetError) as err:
        gl.projects.get("acme/secret")
    assert err.value.response_code == 404 and "404 Project Not Found" in str(err.value)

    with pytest.raises(gitlab.GitlabAuthenticationError):
        client(url, "glpat-wrong").auth()
    bearer = gitlab.Gitlab(url, oauth_token=token)
    bearer.auth()
    assert bearer.user.username == "alice"


def test_issue_lifecycle_through_the_library(world):
    fake, url, token, project, bob = world
    gl = client(url, token)
    p = gl.projects.get(project.id)
    milestone = p.milestones.create({"title": "v1.0"})
    issue = p.issues.create({"title": "Crash on start", "description": "It *crashes*.",
                             "labels": ["bug", "status::todo"], "assignee_ids": [bob.id],
                             "milestone_id": milestone.id, "due_date": "2026-12-24", "weight": 3,
                             "confidential": True, "issue_type": "incident"})
    assert issue.iid == 1 and issue.state == "opened"
    assert issue.labels == ["bug", "status::todo"] and issue.assignees[0]["username"] == "bob"
    assert issue.milestone["title"] == "v1.0" and issue.due_date == "2026-12-24" and issue.weight == 3
    assert issue.confidential is True and issue.issue_type == "incident"
    assert TIMESTAMP.match(issue.created_at) and issue.created_at == issue.updated_at
    assert issue.references["full"] == "acme/widgets#1"
    assert sorted(label.name for label in p.labels.list(get_all=True)) == ["bug", "status::todo"]

    first_updated = issue.updated_at
    time.sleep(0.002)
    issue.title = "Crash on start-up"
    issue.save()
    assert issue.title == "Crash on start-up" and issue.updated_at > first_updated
    p.issues.update(issue.iid, {"add_labels": "status::doing", "remove_labels": "bug"})
    issue = p.issues.get(issue.iid)
    assert issue.labels == ["status::doing"], "a scoped label replaces its sibling"

    issue.state_event = "close"
    issue.save()
    assert issue.state == "closed" and TIMESTAMP.match(issue.closed_at)
    assert issue.attributes["closed_by"]["username"] == "alice"
    issue.state_event = "reopen"
    issue.save()
    assert issue.state == "opened" and issue.closed_at is None

    note = issue.notes.create({"body": "Seen on 1.2 as well"})
    assert note.system is False and note.author["username"] == "alice"
    before = issue.updated_at
    note.body = "Seen on 1.2 and 1.3"
    note.save()
    issue = p.issues.get(issue.iid)
    assert issue.updated_at >= before and issue.user_notes_count == 1
    notes = issue.notes.list(get_all=True, sort="asc", order_by="created_at")
    system = [n.body for n in notes if n.system]
    assert "closed" in system and "reopened" in system
    assert any(b.startswith("changed title from") for b in system)
    assert any(b.startswith("added ~") and "removed ~" in b for b in system)
    assert [n.body for n in notes if not n.system] == ["Seen on 1.2 and 1.3"]
    issue.notes.delete(note.id)
    assert [n for n in issue.notes.list(get_all=True) if not n.system] == []

    issue.issue_type = "task"
    issue.save()
    assert p.issues.get(issue.iid).issue_type == "task"

    # Deleting needs the Owner role: bob (Developer) is refused, alice (Owner) may.
    bob_token = fake.add_token(fake.users[bob.id])
    with pytest.raises(gitlab.GitlabDeleteError) as err:
        client(url, bob_token).projects.get(project.id, lazy=True).issues.delete(issue.iid)
    assert err.value.response_code == 403
    p.issues.delete(issue.iid)
    with pytest.raises(gitlab.GitlabGetError) as err:
        p.issues.get(issue.iid)
    assert err.value.response_code == 404

    writes = fake.writes_by(token)
    assert writes and all(w.method in ("POST", "PUT", "DELETE") for w in writes)
    assert fake.writes_by(bob_token) == [], "a refused write is not a write"


def test_only_the_author_edits_a_note(world):
    fake, url, token, project, bob = world
    bob_token = fake.add_token(fake.users[bob.id])
    p = client(url, token).projects.get(project.id)
    issue = p.issues.create({"title": "Notes"})
    as_bob = client(url, bob_token).projects.get(project.id, lazy=True).issues.get(issue.iid, lazy=True)
    bobs = as_bob.notes.create({"body": "bob's note"})
    alices = issue.notes.create({"body": "alice's note"})

    # Editing: the author only; alice owns the project and still may not edit bob's note.
    note = issue.notes.get(bobs.id)
    note.body = "rewritten by alice"
    with pytest.raises(gitlab.GitlabUpdateError) as err:
        note.save()
    assert err.value.response_code == 403
    note = as_bob.notes.get(bobs.id)
    before = p.issues.get(issue.iid).updated_at
    time.sleep(0.002)
    note.body = "bob's note, edited"
    note.save()
    assert issue.notes.get(bobs.id).body == "bob's note, edited"
    assert p.issues.get(issue.iid).updated_at > before, "an edited note touches its issue"

    # Deleting: the author or a maintainer; bob (Developer) may not delete alice's note.
    with pytest.raises(gitlab.GitlabDeleteError) as err:
        as_bob.notes.get(alices.id).delete()
    assert err.value.response_code == 403
    issue.notes.get(bobs.id).delete()
    alices.delete()
    assert [n.body for n in issue.notes.list(get_all=True) if not n.system] == []
    with pytest.raises(gitlab.GitlabGetError) as err:
        issue.notes.get(alices.id)
    assert err.value.response_code == 404


def test_internal_notes_through_the_library(world):
    fake, url, token, project, bob = world
    guest = fake.add_user("gus")
    fake.add_member(project, guest, GUEST)
    p = client(url, token).projects.get(project.id)
    issue = p.issues.create({"title": "Escalation"})
    public = issue.notes.create({"body": "Public reply"})
    internal = issue.notes.create({"body": "Customer is on the old contract", "internal": True})
    assert (public.internal, public.confidential) == (False, False)
    assert (internal.internal, internal.confidential) == (True, True), "GitLab returns both names"
    legacy = issue.notes.create({"body": "Older clients say confidential", "confidential": True})
    assert legacy.internal is True
    overridden = issue.notes.create({"body": "internal wins", "confidential": True, "internal": False})
    assert overridden.internal is False

    # Only members from Planner up (and the author) see internal notes; a guest does not.
    as_bob = client(url, fake.add_token(bob)).projects.get(project.id, lazy=True).issues.get(issue.iid, lazy=True)
    assert [n.body for n in as_bob.notes.list(get_all=True, sort="asc") if not n.system] == [
        "Public reply", "Customer is on the old contract", "Older clients say confidential", "internal wins"]
    as_guest = client(url, fake.add_token(guest)).projects.get(project.id, lazy=True).issues.get(
        issue.iid, lazy=True)
    assert [n.body for n in as_guest.notes.list(get_all=True, sort="asc")] == ["Public reply", "internal wins"]
    with pytest.raises(gitlab.GitlabGetError) as err:
        as_guest.notes.get(internal.id)
    assert err.value.response_code == 404
    internal.body = "Customer is on the new contract"
    internal.save()
    assert issue.notes.get(internal.id).internal is True, "an edit keeps it internal"


def test_group_milestones_through_the_library(world):
    fake, url, token, project, _ = world
    p = client(url, token).projects.get(project.id)
    own = p.milestones.create({"title": "v1.0"})
    group = fake.add_group_milestone("acme", "2026.Q4")
    elsewhere = fake.add_group_milestone("other", "Not ours")
    assert [m.title for m in p.milestones.list(get_all=True)] == ["v1.0"], "project milestones only by default"
    for flag in ("include_ancestors", "include_parent_milestones"):
        listed = p.milestones.list(get_all=True, **{flag: True})
        assert sorted(m.title for m in listed) == ["2026.Q4", "v1.0"], flag
    [found] = p.milestones.list(title="2026.Q4", include_ancestors=True)
    assert found.id == group.id and found.group_id
    assert "/groups/acme/-/milestones/" in found.web_url
    with pytest.raises(gitlab.GitlabListError) as err:
        p.milestones.list(include_ancestors=True, include_parent_milestones=True)
    assert err.value.response_code == 400
    with pytest.raises(gitlab.GitlabCreateError):
        p.milestones.create({"title": "2026.Q4"})   # titles are unique across the project and its groups

    issue = p.issues.create({"title": "Planned", "milestone_id": group.id})
    assert issue.milestone["title"] == "2026.Q4" and issue.milestone["group_id"] == found.group_id
    assert [i.iid for i in p.issues.list(milestone="2026.Q4", get_all=True)] == [issue.iid]
    issue.milestone_id = own.id
    issue.save()
    assert issue.milestone["title"] == "v1.0"
    with pytest.raises(gitlab.GitlabUpdateError) as err:
        p.issues.update(issue.iid, {"milestone_id": elsewhere.id})
    assert err.value.response_code == 404


def issues_a_second_apart(world, count: int, more=lambda n: {}):
    """`count` issues ("issue 0", ...; `more(n)`: other fields of issue n) made through the
    library at 21:32:01.123456, :02.123456, ...; returns the project (python-gitlab) and the
    emulator's clock (`current[0]`, held at the last issue's time)."""
    fake, url, token, project, _ = world
    start = datetime(2026, 11, 28, 21, 32, 0, 123456, tzinfo=timezone.utc)
    current = [start]
    fake.clock = lambda: current[0]
    p = client(url, token).projects.get(project.id)
    for n in range(count):
        current[0] = start + timedelta(seconds=n + 1)
        p.issues.create({"title": f"issue {n}", **more(n)})
    return p, current


def test_updated_after_is_inclusive_and_pages_follow_links(world):
    p, current = issues_a_second_apart(world, 7)
    current[0] += timedelta(seconds=1)
    p.issues.update(2, {"title": "issue 1, edited"})  # now the most recently updated

    third = p.issues.get(3).updated_at
    assert third == "2026-11-28T21:32:03.123Z"
    seen = [i.iid for i in p.issues.list(updated_after=third, order_by="updated_at", sort="asc",
                                         per_page=2, iterator=True)]
    assert seen == [3, 4, 5, 6, 7, 2], "updated_after is 'on or after', oldest first, all pages"
    before = [i.iid for i in p.issues.list(updated_before=third, order_by="updated_at", sort="asc",
                                           get_all=True)]
    assert before == [1], "the stored value keeps microseconds: .123456 > .123, so issue 3 is after"
    assert [i.iid for i in p.issues.list(iids=[2, 5], get_all=True)] == [5, 2]


def test_issues_statistics_count_what_the_list_keeps_by_state(world):
    fake, url, _, project, bob = world
    p, _ = issues_a_second_apart(world, 6, lambda n: {"assignee_ids": [bob.id]} if n < 2 else {})
    p.issues.update(1, {"state_event": "close"})
    theirs = client(url, fake.add_token(bob)).projects.get(project.id)
    theirs.issues.create({"title": "bob's"})

    def counts(**filters) -> dict:
        return p.issues_statistics.get(**filters).statistics["counts"]

    assert counts(scope="all") == {"all": 7, "closed": 1, "opened": 6}
    assert counts(scope="all", state="opened") == {"all": 7, "closed": 1, "opened": 6}, "state is ignored"
    assert counts() == {"all": 6, "closed": 1, "opened": 5}, "scope defaults to created_by_me"
    after = p.issues.get(4).updated_at      # then 5 and 6, and 1 and bob's, closed and made at 6 s
    assert counts(scope="all", updated_after=after)["all"] == len(
        p.issues.list(updated_after=after, get_all=True)) == 5
    assert theirs.issues_statistics.get(scope="assigned_to_me").statistics["counts"]["all"] == 2
    with pytest.raises(gitlab.GitlabGetError) as err:
        p.issues_statistics.get(scope="everything")
    assert err.value.response_code == 400


def test_upload_and_fetch(world):
    fake, url, token, project, _ = world
    p = client(url, token).projects.get(project.id)
    data = bytes(range(256)) * 40
    info = p.upload("trace.bin", filedata=data)
    assert set(info) >= {"alt", "url", "markdown", "full_path"}
    assert info["alt"] == "trace" and info["markdown"] == f"[trace.bin]({info['url']})"
    secret, filename = info["url"].split("/")[2:4]
    headers = {"PRIVATE-TOKEN": token}
    api = requests.get(f"{url}/api/v4/projects/{project.id}/uploads/{secret}/{filename}", headers=headers)
    assert api.status_code == 200 and api.content == data
    web_route = requests.get(url + info["full_path"], headers=headers)
    assert web_route.status_code == 200 and web_route.content == data
    assert requests.get(url + info["full_path"]).status_code == 404
    image = p.upload("shot.png", filedata=b"\x89PNG\r\n\x1a\n")
    assert image["markdown"] == f"![shot]({image['url']})"


def test_error_shapes(world):
    fake, url, token, project, bob = world
    api = f"{url}/api/v4"
    headers = {"PRIVATE-TOKEN": token}
    cases = [
        ("GET", "/user", {}, None, 401, {"message": "401 Unauthorized"}),
        ("GET", "/projects/999", headers, None, 404, {"message": "404 Project Not Found"}),
        ("POST", f"/projects/{project.id}/issues", headers, {}, 400, {"error": "title is missing"}),
        ("POST", f"/projects/{project.id}/issues", headers, {"title": " "}, 400,
         {"message": {"title": ["can't be blank"]}}),
        ("GET", f"/projects/{project.id}/issues/42", headers, None, 404, {"message": "404 Not found"}),
        ("GET", "/projects/1/no_such_route", headers, None, 404, {"error": "404 Not Found"}),
        ("GET", f"/projects/{project.id}/issues?sort=sideways", headers, None, 400,
         {"error": "sort does not have a valid value"}),
    ]
    for method, path, hdrs, body, status, expected in cases:
        response = requests.request(method, api + path, headers=hdrs, json=body)
        assert (response.status_code, response.json()) == (status, expected), (method, path)

    guest = fake.add_user("gus")
    fake.add_member(project, guest, GUEST)
    response = requests.post(f"{api}/projects/{project.id}/hooks", json={"url": "http://x"},
                             headers={"PRIVATE-TOKEN": fake.add_token(guest)})
    assert (response.status_code, response.json()) == (403, {"message": "403 Forbidden"})
    read_only = fake.add_token(fake.users[1], scopes=("read_api",))
    response = requests.post(f"{api}/projects/{project.id}/issues", json={"title": "x"},
                             headers={"PRIVATE-TOKEN": read_only})
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
    fake.revoke(token)
    assert requests.get(f"{api}/user", headers=headers).status_code == 401


def test_pagination_headers_and_keyset(world):
    fake, url, token, project, _ = world
    for n in range(5):
        fake.add_project(f"acme/p{n}", owner=fake.users[1])
    headers = {"PRIVATE-TOKEN": token}
    response = requests.get(f"{url}/api/v4/projects", params={"per_page": 2, "page": 2, "membership": "true"},
                            headers=headers)
    h = response.headers
    assert (h["X-Page"], h["X-Per-Page"], h["X-Next-Page"], h["X-Prev-Page"]) == ("2", "2", "3", "1")
    assert (h["X-Total"], h["X-Total-Pages"]) == ("6", "3")
    assert {link["rel"] for link in requests.utils.parse_header_links(h["Link"])} == {"prev", "next", "first", "last"}
    assert all(TIMESTAMP.match(p["created_at"]) for p in response.json())

    seen, next_url = [], f"{url}/api/v4/projects?pagination=keyset&order_by=id&sort=asc&per_page=4"
    while next_url:
        page = requests.get(next_url, headers=headers)
        seen += [p["id"] for p in page.json()]
        next_url = page.links.get("next", {}).get("url")
    assert seen == sorted(seen) and len(seen) == 6
    library = client(url, token).projects.list(pagination="keyset", order_by="id", sort="asc", per_page=4,
                                               iterator=True)
    assert [p.id for p in library] == seen
    bad = requests.get(f"{url}/api/v4/projects?pagination=keyset&order_by=name", headers=headers)
    assert bad.status_code == 400


def test_rate_limit_and_counters(world):
    fake, url, token, project, _ = world
    fake.knobs.fail_next(1, status=429, retry_after=7)
    response = requests.get(f"{url}/api/v4/projects/{project.id}", headers={"PRIVATE-TOKEN": token})
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.headers["RateLimit-Remaining"] == "0" and int(response.headers["RateLimit-Reset"]) > time.time()
    assert response.text == "Retry later\n"
    # python-gitlab itself honours Retry-After when asked to retry: the emulator speaks its dialect.
    fake.knobs.fail_next(1, status=429, retry_after=0)
    assert gitlab.Gitlab(url, private_token=token).projects.get(project.id).id == project.id
    assert fake.knobs.count("GET", "/api/v4/projects/{id}") == 3
    assert fake.knobs.by_credential[fingerprint(token)] == 3
    fake.knobs.fail_next(1, status=502)
    assert requests.get(f"{url}/api/v4/user", headers={"PRIVATE-TOKEN": token}).status_code == 502


def test_webhook_deliveries(world):
    fake, url, token, project, _ = world
    received: list[tuple[dict, dict]] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        p = client(url, token).projects.get(project.id)
        hook = p.hooks.create({"url": f"http://127.0.0.1:{server.server_port}/hook", "token": "s3cret",
                               "issues_events": True, "note_events": True})
        assert hook.issues_events and hook.note_events and "token" not in hook.attributes
        issue = p.issues.create({"title": "Hooked"})
        note = issue.notes.create({"body": "a comment"})
        note.body = "an edited comment"
        note.save()
        issue.state_event = "close"
        issue.save()
        deadline = time.monotonic() + 5
        while len(received) < 4 and time.monotonic() < deadline:
            arrived.wait(0.1)
    finally:
        server.shutdown()
    events = [(h["X-Gitlab-Event"], h["X-Gitlab-Token"], b["object_kind"]) for h, b in received]
    assert events == [("Issue Hook", "s3cret", "issue"), ("Note Hook", "s3cret", "note"),
                      ("Note Hook", "s3cret", "note"), ("Issue Hook", "s3cret", "issue")]
    assert [b["object_attributes"].get("action") for _, b in received] == ["open", "create", "update", "close"]
    assert received[1][1]["issue"]["iid"] == issue.iid and received[1][1]["object_attributes"]["note"] == "a comment"
    assert received[2][1]["object_attributes"]["note"] == "an edited comment"
    assert received[3][1]["changes"]["state_id"] == {"previous": 1, "current": 2}
