"""A real appliance for the browser tests, and the browser.

`PanelWorld` starts what an administrator and a tenant would have: a migrated database on
the test PostgreSQL, `tandem run` from this checkout (supervisor, web worker, tenant
workers) serving the built panel over HTTPS with its self-signed certificate, a cluster
admin, and the Jira and GitLab emulators on loopback, seeded with a project each.

Chromium (Debian's, never a downloaded one) resolves the cluster's host names to
127.0.0.1 and nothing else, and each `Tab` records every request its page makes, so a
test can say that nothing left the appliance's own host.

Run `python -m tests.e2e.panel_setup` to get the same world to look at by hand: it prints
the URLs and sign-ins and keeps running until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from tests.fakes.gitlab import DEVELOPER, GitLabFake
from tests.fakes.jira import JiraEmulator
from tests.fakes.server import serve_in_thread
from tests.harness import (ROOT, PostgresServer, free_port, https_get, tandem, tandem_command, wait_for,
                           world_dir, write_config)

CHROMIUM = "/usr/bin/chromium"
DOMAIN = "tandem.test"
ADMIN_EMAIL = "root@example.com"
PASSWORD = "correct horse battery staple"
OUTPUT = ROOT / "tests" / "output" / "panel"
VIEWPORT = {"width": 1280, "height": 860}
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
# Every WCAG 2.x level A and AA rule axe has (2.0, 2.1 and 2.2 each tag their own).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
AXE_BLOCKING = ("serious", "critical")
# Headless on a closed network: nothing in the background may try to reach anything.
CHROMIUM_ARGS = [
    f"--host-resolver-rules=MAP {DOMAIN} 127.0.0.1, MAP *.{DOMAIN} 127.0.0.1, EXCLUDE localhost",
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
]


@dataclass
class Emulators:
    jira: JiraEmulator
    jira_url: str
    gitlab: GitLabFake
    gitlab_url: str
    gitlab_token: str          # alice's: the one Tandem's connection uses
    gitlab_bob_token: str      # bob's: a person editing in GitLab
    gitlab_project: object


@dataclass
class PanelWorld:
    port: int
    config: Path
    process: subprocess.Popen
    apps: Emulators
    log: Path

    def url(self, slug: str | None = None, path: str = "/") -> str:
        return f"https://{slug + '.' if slug else ''}{DOMAIN}:{self.port}{path}"

    def host(self, slug: str | None = None) -> str:
        return urlsplit(self.url(slug)).netloc


@contextlib.contextmanager
def emulators() -> Iterator[Emulators]:
    jira = JiraEmulator("server")
    # Internal values: issue type ids 10002 Bug and 10001 Task (tests/fakes/jira_state.py).
    for n, summary in enumerate(("Checkout fails on Safari", "Export to CSV", "Typo on the pricing page"), 1):
        jira.new_issue(jira.bob, jira.projects["PROJ"], {"summary": summary, "issuetype": "10002" if n != 2 else "10001",
                                                          "description": f"Seeded issue {n}."})
    gl = GitLabFake()
    alice, bob = gl.add_user("alice", name="Alice Admin"), gl.add_user("bob", name="Bob Builder")
    project = gl.add_project("acme/widgets", owner=alice)
    gl.add_member(project, bob, DEVELOPER)
    for label in ("bug", "feature", "status::doing"):
        gl.add_label(project, label)
    token, bob_token = gl.add_token(alice), gl.add_token(bob)
    with serve_in_thread(jira.app) as jira_url, serve_in_thread(gl.app) as gitlab_url:
        yield Emulators(jira, jira_url, gl, gitlab_url, token, bob_token, project)


@contextlib.contextmanager
def panel_world(pg: PostgresServer) -> Iterator[PanelWorld]:
    if not (ROOT / "frontend" / "dist" / ".vite" / "manifest.json").exists():
        raise RuntimeError("the panel is not built: run `python3 build.py test` (or `build.py client`)")
    database = pg.create_database()
    cluster = "p" + secrets.token_hex(4)
    data_dir = world_dir("tandem-panel-")
    port = free_port()
    config = write_config(data_dir / "tandem.toml", dsn=pg.dsn(database), cluster_name=cluster, data_dir=data_dir,
                          listen=[f"127.0.0.1:{port}"], workers=1)
    for args, stdin in ((("migrate",), None), (("admin", "create", ADMIN_EMAIL, "--password-stdin"), PASSWORD)):
        done = tandem(*args, config=config, input=stdin)
        assert done.returncode == 0, done.stderr
    log = data_dir / "appliance.log"
    with emulators() as apps, open(log, "w") as out:
        command = tandem_command("--config", str(config), "run")
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        world = PanelWorld(port, config, process, apps, log)
        try:
            wait_for(lambda: _status(world.url(path="/-/ready")) == 200, timeout=60, message="/-/ready")
            yield world
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            pg.drop_database(database, role_prefix=cluster + "_")
            shutil.rmtree(data_dir, ignore_errors=True)


def _status(url: str) -> int | None:
    try:
        return https_get(url.replace(f"https://{DOMAIN}", "https://127.0.0.1"))[0]
    except OSError:
        return None


@dataclass
class Tab:
    """A browser context (its own cookies) on one host, with every request it made."""

    world: PanelWorld
    slug: str | None
    context: object
    page: object
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)     # console errors (CSP refusals too) and page errors

    def open(self, path: str = "/") -> None:
        self.page.goto(self.world.url(self.slug, path))

    def foreign_requests(self) -> list[str]:
        """Requests that went anywhere but this tab's own appliance host."""
        own = self.world.host(self.slug)
        return [url for url in self.requests
                if not url.startswith(("data:", "blob:")) and urlsplit(url).netloc != own]

    def shot(self, name: str) -> Path:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def check_accessibility(self, name: str) -> dict:
        """Run axe-core's WCAG 2 A/AA rules on the page as it is now; the whole result goes to
        tests/output/panel/axe-<name>.json. Fails on any serious or critical violation, naming
        the rule, its help text and the first elements it found.

        axe's source is evaluated through the DevTools protocol (Playwright's evaluate), which
        the page's CSP does not govern; a <script> tag would be refused, as it should be."""
        page = self.page
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(AXE.read_text())
        result = page.evaluate("tags => window.axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / f"axe-{name}.json").write_text(json.dumps(result, indent=1))
        blocking = [v for v in result["violations"] if v["impact"] in AXE_BLOCKING]
        assert not blocking, f"axe on {name} ({page.url}):\n" + "\n".join(
            f"  {v['id']} ({v['impact']}): {v['help']}; "
            + ", ".join(" ".join(map(str, node["target"])) for node in v["nodes"][:3])
            + (f" and {len(v['nodes']) - 3} more" if len(v["nodes"]) > 3 else "")
            for v in blocking)
        return result

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        page = self.page
        page.get_by_label("E-mail").fill(email)
        page.get_by_role("textbox", name="Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Sign out").wait_for()


OPEN_TABS: list[Tab] = []   # for the failure report (tests/e2e/conftest.py)


def new_tab(browser, world: PanelWorld, slug: str | None) -> Tab:
    context = browser.new_context(ignore_https_errors=True, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = Tab(world, slug, context, page)
    context.on("request", lambda request: tab.requests.append(request.url))
    page.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    OPEN_TABS.append(tab)
    return tab


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def main() -> int:
    pg = PostgresServer()
    pg.start()
    try:
        with panel_world(pg) as world:
            print(f"""
  console   {world.url()}   {ADMIN_EMAIL} / {PASSWORD}
  jira      {world.apps.jira_url}   token {world.apps.jira.alice.token}
  gitlab    {world.apps.gitlab_url}   token {world.apps.gitlab_token}
  log       {world.log}
  (Chromium: --host-resolver-rules="MAP *.{DOMAIN} 127.0.0.1, MAP {DOMAIN} 127.0.0.1"; Ctrl-C stops)
""", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                world.process.wait()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
