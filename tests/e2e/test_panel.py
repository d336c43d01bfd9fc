"""The panel in a real browser (Debian's Chromium driven by Playwright) against a real
appliance (`tandem run` from this checkout on the test PostgreSQL) and the Jira and GitLab
emulators: what a cluster admin and a tenant's people do, screen by screen, in order (each
test starts where the previous one left off). Screenshots of each main screen go to
tests/output/panel/ (not committed).

Every tab checks at the end that its page made no request to anything but its own
appliance host, and that the browser logged no errors (a refused inline style or script
under the CSP shows up there too)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from types import SimpleNamespace

import pytest
from aiohttp import web
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.panel_setup import ADMIN_EMAIL, PASSWORD, chromium, new_tab, panel_world
from tests.fakes.server import route_template

pytestmark = pytest.mark.e2e

REFUSED_TITLE = "Refused by GitLab"
SYNC_SECONDS = 60   # how long a test waits for the appliance to sync something
IMPORTED = 200      # issues imported at once: about 20 s to copy at the default request budget


@pytest.fixture(scope="module")
def world(pg_server):
    with panel_world(pg_server) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def state():
    """What the tests in this module hand on to each other: tabs, passwords, ids."""
    return SimpleNamespace()


def api(tab, method: str, path: str, body=None) -> tuple[int, object]:
    """A request from inside the page, with its session and CSRF token: what the panel can do."""
    status, text = tab.page.evaluate("""async ([method, path, body]) => {
        const me = await (await fetch('/api/v1/me')).json();
        const response = await fetch(path, {method, headers: {'Content-Type': 'application/json',
                                                              'X-CSRF-Token': me.csrf_token || ''},
                                            body: body === null ? undefined : JSON.stringify(body)});
        return [response.status, await response.text()];
    }""", [method, path, body])
    return status, json.loads(text) if text else None


def wait_until(predicate, message: str, timeout: float = SYNC_SECONDS):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.25)


def call(url: str, method: str, headers: dict, body: dict) -> dict:
    """A person's edit in Jira or GitLab, through the app's REST API."""
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else {}


def assert_clean(tab):
    assert tab.foreign_requests() == [], tab.foreign_requests()
    assert tab.errors == [], tab.errors


def test_a_cluster_admin_creates_a_tenant(world, browser, state):
    tab = state.console = new_tab(browser, world, None)
    page = tab.page
    tab.open("/")
    page.get_by_role("heading", name="Sign in").wait_for()
    tab.shot("00-console-sign-in")
    # By keyboard alone: the e-mail field has the focus, Tab moves on, Enter signs in.
    page.keyboard.type(ADMIN_EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Sign out").wait_for()
    page.get_by_role("heading", name="Tenants").wait_for()

    page.get_by_role("button", name="New tenant").click()
    page.get_by_label("Display name").fill("Acme")
    slug = page.get_by_role("textbox", name="Slug")
    assert slug.input_value() == "acme"          # suggested from the display name
    slug.fill("www")
    page.get_by_text('"www" is reserved').wait_for()   # said as you type, before any request
    tab.shot("01-console-slug-checked")
    slug.fill("acme")
    page.get_by_label("First admin e-mail").fill("ann@acme.example")
    page.get_by_role("button", name="Create tenant").click()
    password = page.get_by_label("first admin's password", exact=True)
    password.wait_for()
    state.ann_password = password.inner_text().strip()
    assert len(state.ann_password) >= 12
    page.get_by_role("button", name="Done").click()
    # The supervisor starts the new tenant's worker; the list follows it.
    page.get_by_role("table", name="Tenants").get_by_text("running").first.wait_for(timeout=30_000)
    tab.shot("02-console-tenants")
    tab.check_accessibility("02-console-tenants")

    page.get_by_role("link", name="Cluster health").click()
    page.get_by_role("heading", name="Doctor's findings").wait_for()
    page.get_by_role("table", name="Certificates").wait_for()
    tab.shot("03-console-health")
    tab.check_accessibility("03-console-health")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("table", name="Audit log entries").get_by_text("tenant.create").first.wait_for()
    tab.shot("04-console-audit")
    tab.check_accessibility("04-console-audit")
    assert_clean(tab)


def test_the_tenant_admin_adds_both_connections(world, browser, state):
    tab = state.ann = new_tab(browser, world, "acme")
    page = tab.page
    tab.open("/connections")
    tab.sign_in("ann@acme.example", state.ann_password)
    page.get_by_role("heading", name="Connections").wait_for()
    apps = world.apps
    for app, name, url, secret_label, secret in (
            ("Jira Data Center", "Jira", apps.jira_url, "Personal access token", apps.jira.alice.token),
            ("GitLab", "GitLab", apps.gitlab_url, "Access token", apps.gitlab_token)):
        page.get_by_role("button", name="Add connection").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("radio", name=app).check()
        dialog.get_by_label("Name").fill(name)
        dialog.get_by_label("Base URL").fill(url)
        dialog.get_by_label(secret_label).fill(secret)
        if name == "Jira":
            tab.shot("10-tenant-add-connection")
        dialog.get_by_role("button", name="Add connection").click()
        card = page.get_by_role("region", name=name)
        card.get_by_role("button", name="Test connection").click()
        card.get_by_text("Connection works").wait_for(timeout=SYNC_SECONDS * 1000)
    # What the credentials can see: the projects the builder will offer.
    page.get_by_role("region", name="Jira").get_by_text("PROJ").first.wait_for()
    page.get_by_role("region", name="GitLab").get_by_text("acme/widgets").first.wait_for()
    tab.shot("11-tenant-connections")
    tab.check_accessibility("11-tenant-connections")
    assert_clean(tab)


def _choose(page, label: str, text: str) -> None:
    """Pick the option showing `text` (case-sensitive: "PROJ" is not "Choose a project") in a
    native select once the app's list has loaded."""
    select = page.get_by_label(label)
    option = select.locator("option", has_text=re.compile(re.escape(text))).first
    option.wait_for(state="attached", timeout=SYNC_SECONDS * 1000)
    value = option.get_attribute("value")
    select.select_option(value=value)
    assert select.input_value() == value


def test_the_builder_previews_then_enables_and_items_arrive(world, browser, state):
    tab = state.ann
    page = tab.page
    page.get_by_role("link", name="Integrations").click()
    page.get_by_role("link", name="New integration").or_(page.get_by_role("button", name="New integration")).click()
    for side, connection, project in (("A", "Jira", "PROJ"), ("B", "GitLab", "widgets")):
        _choose(page, f"Side {side} connection", connection)
        _choose(page, f"Side {side} project", project)
        # The project is read from the app (types, fields, statuses) before the next step.
        card = page.locator(".mantine-Card-root").filter(has=page.get_by_role("heading", name=f"Side {side}"))
        card.get_by_text("item types,").wait_for(timeout=SYNC_SECONDS * 1000)
    tab.shot("20-builder-sides")
    tab.check_accessibility("20-builder-sides")
    for number, step in enumerate(("types", "fields"), 21):
        page.get_by_role("button", name="Next").click()
        tab.shot(f"{number}-builder-{step}")
        tab.check_accessibility(f"{number}-builder-{step}")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Status on side B for Done").wait_for(timeout=SYNC_SECONDS * 1000)
    page.get_by_text("Reading the people").wait_for(state="detached", timeout=SYNC_SECONDS * 1000)
    tab.shot("23-builder-values")
    tab.check_accessibility("23-builder-values")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Full history").check()
    page.get_by_label("Hold it for a person to decide (conflict inbox)").check()
    page.get_by_label("Poll every (seconds)").fill("5")
    tab.shot("24-builder-options")
    tab.check_accessibility("24-builder-options")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Integration name").fill("Jira to GitLab")
    page.get_by_role("button", name="Save and preview").click()
    page.get_by_text(re.compile(r"would create 3 item")).wait_for(timeout=SYNC_SECONDS * 1000)
    tab.shot("25-builder-preview")
    tab.check_accessibility("25-builder-preview")
    # The preview wrote nothing anywhere.
    assert world.apps.gitlab_project.issues == {}
    page.get_by_role("button", name="Enable", exact=True).click()
    page.wait_for_url(re.compile(r".*/integrations/\d+$"))
    state.integration = int(page.url.rstrip("/").rsplit("/", 1)[1])
    # The sides by the names the apps gave the projects when they were picked.
    page.get_by_text("Project (PROJ)").first.wait_for()
    page.get_by_text("Widgets (acme/widgets)").first.wait_for()

    wait_until(lambda: len(world.apps.gitlab_project.issues) == 3, "3 GitLab issues")
    page.get_by_role("tab", name="Linked items").click()
    table = page.get_by_role("table", name="Linked items")
    for key in ("PROJ-1", "PROJ-2", "PROJ-3", "#1", "#2", "#3"):
        table.get_by_role("link", name=re.compile(rf"^{key}\b")).wait_for(timeout=SYNC_SECONDS * 1000)
    tab.shot("26-integration-links")
    tab.check_accessibility("26-integration-links")
    page.get_by_role("tab", name="Runs").click()
    page.get_by_role("table", name="Runs").wait_for()
    tab.shot("27-integration-runs")
    tab.check_accessibility("27-integration-runs")
    page.get_by_role("tab", name="Overview").click()
    page.get_by_text("Throughput").first.wait_for()
    tab.shot("28-integration-overview")
    tab.check_accessibility("28-integration-overview")
    assert_clean(tab)


FOCUSED = """() => {
    const element = document.activeElement, style = getComputedStyle(element);
    return {role: element.getAttribute('role'), name: element.textContent.trim(),
            selected: element.getAttribute('aria-selected'),
            ring: (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none'};
}"""


def test_the_integration_page_works_by_keyboard(world, browser, state):
    tab = state.ann
    page = tab.page
    page.get_by_role("tab", name="Overview", selected=True).wait_for()
    # From the page's title, Tab walks the header's controls to the tabs list; focus shows.
    page.get_by_role("heading", name="Jira to GitLab").click()
    for _ in range(20):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        assert focused["ring"], f"no visible focus on {focused}"
        if focused["role"] == "tab":
            break
    assert focused == {"role": "tab", "name": "Overview", "selected": "true", "ring": True}, focused
    # The arrow keys move the focus along the tabs, and open the tab they reach.
    for key, name, content in (("ArrowRight", "Runs", "Runs"), ("ArrowRight", "Linked items", "Linked items"),
                               ("ArrowLeft", "Runs", "Runs")):
        page.keyboard.press(key)
        page.get_by_role("table", name=content).wait_for()
        page.get_by_role("tab", name=name, selected=True).wait_for()
        assert page.evaluate(FOCUSED) == {"role": "tab", "name": name, "selected": "true", "ring": True}
    page.keyboard.press("ArrowLeft")
    page.get_by_text("Throughput").first.wait_for()
    assert_clean(tab)


def test_an_edit_of_a_status_mapping_shows_what_changes_and_is_saved(world, browser, state):
    tab = state.ann
    page = tab.page
    page.get_by_role("link", name="Edit").click()
    page.get_by_role("button", name="Step 4: Values").click()
    select = page.get_by_label("Status on side B for Done")
    select.wait_for(timeout=SYNC_SECONDS * 1000)
    before = select.input_value()
    values = [v for v in select.locator("option").evaluate_all("os => os.map(o => o.value)") if v and v != before]
    assert values, "no other GitLab status to choose"
    select.select_option(values[0])
    page.get_by_role("button", name="Step 6: Review").click()
    page.get_by_text("What this edit changes").wait_for()
    # The edit's dry run, before anything is saved.
    page.get_by_role("button", name="Preview changes").click()
    page.get_by_text(re.compile(r"The next run would")).wait_for(timeout=SYNC_SECONDS * 1000)
    tab.shot("30-builder-edit-diff")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(rf".*/integrations/{state.integration}$"))   # saved: back on its page
    status, integration = api(tab, "GET", f"/api/v1/integrations/{state.integration}")
    assert status == 200
    status_map = next(m for m in integration["spec"]["field_mappings"] if m["a_field"] == "status")
    assert status_map["value_map"]["Done"] == values[0]
    assert_clean(tab)


def test_a_held_conflict_is_resolved_in_the_inbox(world, browser, state):
    tab = state.ann
    page = tab.page
    apps = world.apps
    issue = next(i for i in apps.gitlab_project.issues.values() if i.title == "Checkout fails on Safari")
    # The same field changed on both sides between two runs: the policy says hold.
    call(f"{apps.jira_url}/rest/api/2/issue/PROJ-1", "PUT", {"Authorization": f"Bearer {apps.jira.bob.token}"},
         {"fields": {"summary": "Checkout fails on Safari 17"}})
    call(f"{apps.gitlab_url}/api/v4/projects/{apps.gitlab_project.id}/issues/{issue.iid}", "PUT",
         {"PRIVATE-TOKEN": apps.gitlab_bob_token}, {"title": "Checkout fails on Safari and Firefox"})
    page.get_by_role("button", name="Sync now").click()
    page.get_by_role("tab", name=re.compile("^Conflicts")).click()
    card = page.get_by_role("article", name=re.compile("title of PROJ-1"))
    card.wait_for(timeout=SYNC_SECONDS * 1000)
    card.get_by_text("Checkout fails on Safari 17").wait_for()
    card.get_by_text("Checkout fails on Safari and Firefox").wait_for()
    tab.shot("40-integration-conflict")
    tab.check_accessibility("40-integration-conflict")
    card.get_by_text("Type my own value").click()
    card.get_by_label("Merged value").fill("Checkout fails on Safari 17 and Firefox")
    card.get_by_role("button", name=re.compile("^Resolve")).click()
    card.wait_for(state="detached", timeout=SYNC_SECONDS * 1000)
    page.get_by_role("button", name="Sync now").click()
    merged = "Checkout fails on Safari 17 and Firefox"
    wait_until(lambda: issue.title == merged and apps.jira.issues[apps.jira.keys["PROJ-1"]].fields["summary"] == merged,
               "the merged title on both sides")
    assert_clean(tab)


def test_a_failed_item_shows_its_error_and_is_retried(world, browser, state):
    tab = state.ann
    page = tab.page
    apps = world.apps

    async def refuse(request: web.Request):
        if request.method == "POST" and route_template(request).endswith("/issues"):
            if REFUSED_TITLE in (await request.json()).get("title", ""):
                return web.json_response({"message": {"title": ["is refused by a project rule"]}}, status=400)
        return None

    apps.gitlab.knobs.fault = refuse
    call(f"{apps.jira_url}/rest/api/2/issue", "POST", {"Authorization": f"Bearer {apps.jira.bob.token}"},
         {"fields": {"project": {"key": "PROJ"}, "issuetype": {"name": "Bug"}, "summary": REFUSED_TITLE}})
    page.get_by_role("button", name="Sync now").click()
    page.get_by_role("tab", name=re.compile("^Failed items")).click()
    failed = page.get_by_role("table", name="Failed items")
    failed.get_by_text("refused by a project rule").first.wait_for(timeout=SYNC_SECONDS * 1000)
    tab.shot("50-integration-failed-item")
    tab.check_accessibility("50-integration-failed-item")
    assert not any(i.title == REFUSED_TITLE for i in apps.gitlab_project.issues.values())
    apps.gitlab.knobs.fault = None           # the GitLab admin lifted the rule
    page.get_by_role("button", name=re.compile("^Retry")).first.click()
    wait_until(lambda: any(i.title == REFUSED_TITLE for i in apps.gitlab_project.issues.values()),
               "the retried item in GitLab")
    failed.get_by_text("refused by a project rule").wait_for(state="detached", timeout=SYNC_SECONDS * 1000)
    assert_clean(tab)


def test_a_bulk_import_shows_how_far_the_run_has_got_and_the_time_left(world, browser, state):
    """Issues imported into Jira while the integration is paused: once it resumes, its run copies
    them at the default request budget (10 a second to GitLab), and the page's bar says how many of
    about how many are done, and then the time left."""
    tab = state.ann
    page = tab.page
    apps = world.apps
    integration = f"/api/v1/integrations/{state.integration}"
    page.get_by_role("tab", name="Overview").click()
    assert api(tab, "POST", integration + "/pause")[0] == 200
    for n in range(IMPORTED):
        call(f"{apps.jira_url}/rest/api/2/issue", "POST", {"Authorization": f"Bearer {apps.jira.bob.token}"},
             {"fields": {"project": {"key": "PROJ"}, "issuetype": {"name": "Bug"}, "summary": f"Imported {n}"}})
    assert api(tab, "POST", integration + "/resume")[0] == 200
    bar = page.locator("[role=progressbar][aria-valuenow]")
    bar.wait_for(timeout=SYNC_SECONDS * 1000)
    words = wait_until(lambda: _said(bar, "left"), "the time left on the bar")
    tab.shot("55-integration-run-progress")
    tab.check_accessibility("55-integration-run-progress")
    found = re.search(r"^(\d+)%: Side [AB] \(.+\): ([\d,]+) of about ([\d,]+) changed items · (about \d+ min|less "
                      r"than a minute) left$", words)
    assert found, words
    percent, done, total = int(found[1]), int(found[2].replace(",", "")), int(found[3].replace(",", ""))
    # Jira's (or GitLab's) count of the poll: the imported issues, and those the overlap re-reads.
    assert IMPORTED <= total <= IMPORTED + 10 and 0 <= done <= total, words
    assert percent == done * 100 // total, words
    wait_until(lambda: sum(i.title.startswith("Imported ") for i in apps.gitlab_project.issues.values()) == IMPORTED,
               "the imported issues in GitLab")
    assert_clean(tab)


def _said(bar, word: str) -> str | None:
    """The bar's words when it is there and they hold `word`."""
    try:
        words = bar.get_attribute("aria-valuetext", timeout=1000)
    except PlaywrightTimeout:
        return None
    return words if words and word in words else None


def test_a_viewer_sees_no_edit_controls_and_the_api_refuses_them(world, browser, state):
    admin = state.ann
    page = admin.page
    page.get_by_role("link", name="Users").click()
    page.get_by_role("button", name="New user").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("E-mail").fill("vera@acme.example")
    dialog.get_by_role("combobox", name="Role").click()
    page.get_by_role("option", name="Viewer").click()
    dialog.get_by_label("Password", exact=True).fill(PASSWORD)
    dialog.get_by_role("button", name="Create user").click()
    page.get_by_role("table", name="Users").get_by_text("vera@acme.example").wait_for()
    admin.shot("60-tenant-users")
    admin.check_accessibility("60-tenant-users")

    viewer = new_tab(browser, world, "acme")
    viewer.open(f"/integrations/{state.integration}")
    viewer.sign_in("vera@acme.example")
    vpage = viewer.page
    vpage.get_by_role("tab", name="Linked items").wait_for()
    vpage.get_by_text("Lag").first.wait_for()
    for name in ("Sync now", "Pause", "Edit", "Delete"):
        assert vpage.get_by_role("button", name=name, exact=True).count() == 0, name
        assert vpage.get_by_role("link", name=name, exact=True).count() == 0, name
    vpage.get_by_role("link", name="Connections").click()
    vpage.get_by_role("region", name="Jira").wait_for()
    assert vpage.get_by_role("button", name="Add connection").count() == 0
    assert vpage.get_by_role("button", name="Test connection").count() == 0
    viewer.shot("61-viewer-connections")
    viewer.check_accessibility("61-viewer-connections")
    assert_clean(viewer)    # before the refusals below, which the browser logs as failed loads
    # The API refuses what the panel hides, with the session and CSRF token the viewer has.
    for method, path, body in (("POST", f"/api/v1/integrations/{state.integration}/sync-now", None),
                               ("POST", f"/api/v1/integrations/{state.integration}/pause", None),
                               ("DELETE", f"/api/v1/integrations/{state.integration}", None),
                               ("POST", "/api/v1/connections", {"kind": "gitlab", "name": "x",
                                                                "base_url": "http://127.0.0.1:9", "token": "t"})):
        status, body = api(viewer, method, path, body)
        assert status == 403 and body["error"]["code"] == "forbidden", (method, path, status, body)
    assert_clean(admin)
    assert_clean(state.console)
