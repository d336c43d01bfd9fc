"""Browser tests: on a failure, every open page is photographed (tests/output/panel/failed-*.png)
so that what the browser showed can be looked at, not guessed."""

from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        from tests.e2e.panel_setup import OPEN_TABS, OUTPUT
        for tab in OPEN_TABS:
            if tab.errors:
                report.sections.append(("browser console", f"{tab.page.url}: " + "\n".join(tab.errors)))
        browser = item.funcargs.get("browser")
        if browser is not None:
            OUTPUT.mkdir(parents=True, exist_ok=True)
            for n, context in enumerate(browser.contexts):
                for m, page in enumerate(context.pages):
                    path = OUTPUT / f"failed-{item.name}-{n}-{m}.png"
                    page.screenshot(path=str(path), full_page=True)
                    report.sections.append(("browser", f"{page.url} -> {path}"))
    return report
