"""The panel in a real browser (Debian's Chromium driven by Playwright) against a real
appliance (`tandem run` from this checkout on the test PostgreSQL) and the Jira and GitLab
emulators: what a cluster admin and a tenant's people do, screen by screen. Screenshots
of each main screen go to tests/output/panel/ (not committed)."""

from __future__ import annotations

import pytest

from tests.e2e.panel_setup import ADMIN_EMAIL, chromium, new_tab, panel_world

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(pg_server):
    with panel_world(pg_server) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


def test_the_console_signs_in_and_everything_it_loads_comes_from_its_own_host(world, browser):
    tab = new_tab(browser, world, None)
    tab.open("/")
    tab.page.get_by_role("heading", name="Sign in").wait_for()
    tab.shot("00-console-sign-in")
    tab.sign_in(ADMIN_EMAIL)
    assert tab.foreign_requests() == []
    assert tab.errors == []
