"""The panel's HTML shell and assets as the web workers serve them (appliance.web.panel):
on both realms' hosts, with the request's CSP nonce, the boot block, and the caching rules;
the API's and probes' paths keep their own answers."""

from __future__ import annotations

import json
import re

import pytest

from appliance import resources
from tests.integration.auth_setup import ADMIN, as_role, site  # noqa: F401  (fixture)

SCRIPT = "index-Ab12Cd34.js"
STYLE = "index-Ef56Gh78.css"


@pytest.fixture
def built_panel(tmp_path, monkeypatch):
    """A panel build as Vite lays it out (manifest + hashed assets), in place of frontend/dist."""
    root = tmp_path / "dist"
    (root / ".vite").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "assets" / SCRIPT).write_text("console.log('panel')")
    (root / "assets" / STYLE).write_text("body{margin:0}")
    (root / ".vite" / "manifest.json").write_text(json.dumps(
        {"index.html": {"file": f"assets/{SCRIPT}", "isEntry": True, "css": [f"assets/{STYLE}"]}}))
    monkeypatch.setattr(resources, "panel_dir", lambda: root)
    return root


def boot_of(html: str) -> dict:
    match = re.search(r'<script id="tandem-boot" type="application/json" nonce="([^"]+)">(.*?)</script>', html, re.S)
    assert match, html
    return {"nonce": match.group(1), **json.loads(match.group(2))}


async def test_the_shell_names_the_build_with_this_requests_nonce(built_panel, site):
    for slug, realm in ((None, "console"), ("acme", "tenant")):
        for path in ("/", "/integrations/7/links", "/tenants?x=1"):
            reply = await site.browser(slug).call("GET", path)
            assert reply.status == 200, (slug, path, reply.body)
            assert reply.headers["Content-Type"].startswith("text/html")
            assert reply.headers["Cache-Control"] == "no-store"
            boot = boot_of(reply.body)
            assert boot["realm"] == realm and boot["tenant"] == slug and boot["domain"] == "tandem.test"
            assert boot["csrf"] is None   # not signed in
            policy = reply.headers["Content-Security-Policy"]
            assert f"'nonce-{boot['nonce']}'" in policy and "default-src 'self'" in policy
            assert f'<script type="module" src="/assets/{SCRIPT}" nonce="{boot["nonce"]}">' in reply.body
            assert f'<link rel="stylesheet" href="/assets/{STYLE}">' in reply.body
    again = boot_of((await site.browser(None).call("GET", "/")).body)
    assert again["nonce"] != boot["nonce"]


async def test_a_signed_in_browser_gets_its_csrf_token_in_the_shell(built_panel, site):
    browser = await as_role(site, "editor")
    boot = boot_of((await browser.call("GET", "/connections")).body)
    assert boot["csrf"] == browser.csrf and boot["tenant"] == "acme"


async def test_assets_are_immutable_and_nothing_else_is_an_asset(built_panel, site):
    browser = site.browser("acme")
    reply = await browser.call("GET", f"/assets/{SCRIPT}")
    assert reply.status == 200 and reply.body == "console.log('panel')"
    assert reply.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert reply.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert (await browser.call("GET", f"/assets/{STYLE}")).headers["Content-Type"].startswith("text/css")
    for path in ("/assets/missing.js", "/assets/..%2F.vite%2Fmanifest.json", "/assets/.vite"):
        assert (await browser.call("GET", path)).status == 404, path


async def test_api_and_probe_paths_keep_their_own_answers(built_panel, site):
    browser = site.browser("acme")
    missing = await browser.call("GET", "/api/v1/no-such-thing")
    assert missing.status == 404 and missing.code == "not_found"
    posted = await browser.call("POST", "/api/v1/no-such-thing", {})
    assert posted.status in (403, 404)   # CSRF refuses an anonymous POST before routing could
    assert (await browser.call("GET", "/-/health")).status == 200
    unknown_host = await site.browser("nobody").call("GET", "/")
    assert unknown_host.status == 404 and unknown_host.code == "not_found"


@pytest.fixture
def no_panel(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "panel_dir", lambda: tmp_path / "not-built")


async def test_without_a_build_the_shell_says_how_to_build_it_and_the_api_works(no_panel, site):
    browser = site.browser("acme")
    reply = await browser.call("GET", "/")
    assert reply.status == 503 and "python3 build.py" in reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert (await browser.login("admin@acme.example")).status == 200
    assert (await browser.call("GET", "/api/v1/me")).body["tenant"] == "acme"
