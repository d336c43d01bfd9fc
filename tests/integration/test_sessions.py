"""Server-side sessions end when they should: idle and absolute expiry, a disabled
user, an admin's password reset, a new sign-in from the same browser; and a session
in use stays alive. Expiry is tested by moving the session's timestamps back in the
database (the configured minimum is a minute), through the real app and PostgreSQL.
A web worker trusts a session it checked for up to a second (appliance.auth): what
the API changes counts at once, what is changed straight in the database counts as
soon as PostgreSQL's notification arrives (`eventually`), and with two workers
(two apps) a revocation in one is refused by the other within that second."""

from __future__ import annotations

import asyncio
import time

import pytest

from appliance.web.keys import TENANTS
from appliance.web.realm import CACHE_SECONDS
from tests.integration.auth_setup import ADMIN, Browser, another_worker, eventually, site  # noqa: F401  (fixture)

ME = "/api/v1/auth/me"


async def signed_in(site, email: str = "admin@acme.example"):
    browser = site.browser("acme")
    assert (await browser.login(email)).status == 200
    return browser


async def shift(site, column: str, interval: str, email: str = "admin@acme.example") -> None:
    """Move `column` of the user's sessions back by `interval`."""
    assert column in ("last_seen_at", "expires_at", "created_at")
    async with site.realm("acme") as conn:
        await conn.execute(f"UPDATE sessions SET {column} = {column} - $1::text::interval "
                           "WHERE user_id = (SELECT id FROM users WHERE email = $2)", interval, email)


async def last_seen_age(site) -> float:
    async with site.realm("acme") as conn:
        return await conn.fetchval("SELECT extract(epoch FROM now() - last_seen_at) FROM sessions")


@pytest.mark.parametrize("site", [{"session_idle_minutes": 10}], indirect=True)
async def test_an_idle_session_ends(site):
    browser = await signed_in(site)
    await shift(site, "last_seen_at", "9 minutes")

    async def use_and_age():
        assert (await browser.call("GET", ME)).status == 200   # used in time: alive, and marked used
        return await last_seen_age(site)
    assert await eventually(use_and_age, lambda age: age < 5) < 5
    await shift(site, "last_seen_at", "10 minutes 1 second")
    reply = await eventually(lambda: browser.call("GET", ME), lambda r: r.status == 401)
    assert (reply.status, reply.code) == (401, "unauthorized")
    assert reply.cookies()[site.cookie_name]["max-age"] == "0"
    # Signing in again works with the dead cookie still in the browser.
    assert (await browser.login("admin@acme.example")).status == 200


async def test_last_seen_is_written_at_most_once_a_minute(site):
    browser = await signed_in(site)
    await shift(site, "last_seen_at", "30 seconds")
    await asyncio.sleep(CACHE_SECONDS)   # past a sign-in this worker may have cached: the next GET checks
    assert (await browser.call("GET", ME)).status == 200
    assert 29 < await last_seen_age(site) < 60                # recent enough: not rewritten
    await shift(site, "last_seen_at", "31 seconds")
    await asyncio.sleep(CACHE_SECONDS)   # past a sign-in this worker may have cached: the next GET checks
    assert (await browser.call("GET", ME)).status == 200
    assert await last_seen_age(site) < 5


@pytest.mark.parametrize("site", [{"session_absolute_hours": 2}], indirect=True)
async def test_a_session_ends_at_its_absolute_limit_however_busy(site):
    browser = await signed_in(site)
    async with site.realm("acme") as conn:
        lifetime = await conn.fetchval("SELECT extract(epoch FROM expires_at - created_at) FROM sessions")
    assert lifetime == 2 * 3600
    await shift(site, "expires_at", "1 hour 59 minutes")
    assert (await browser.call("GET", ME)).status == 200
    await shift(site, "expires_at", "1 minute 1 second")
    assert (await eventually(lambda: browser.call("GET", ME), lambda r: r.status == 401)).status == 401


async def test_disabling_a_user_ends_their_sessions(site):
    await site.add_user("acme", "ed@acme.example", "editor")
    editor = await signed_in(site, "ed@acme.example")
    admin = await signed_in(site)
    async with site.realm("acme") as conn:
        user_id = await conn.fetchval("SELECT id FROM users WHERE email = 'ed@acme.example'")
    # Even a disable made straight in the database (no revocation) stops the session.
    cookie = editor.cookie
    async with site.realm("acme") as conn:
        await conn.execute("UPDATE users SET disabled_at = now() WHERE id = $1", user_id)
    assert (await eventually(lambda: editor.call("GET", ME), lambda r: r.status == 401)).status == 401
    async with site.realm("acme") as conn:
        await conn.execute("UPDATE users SET disabled_at = NULL WHERE id = $1", user_id)
    editor.cookie = cookie  # the browser was told to drop it; replay it
    assert (await editor.call("GET", ME)).status == 200

    # Through the API the sessions are also revoked: enabling again does not revive them.
    assert (await admin.call("PATCH", f"/api/v1/users/{user_id}", {"disabled": True})).status == 200
    assert (await editor.call("GET", ME)).status == 401
    assert (await admin.call("PATCH", f"/api/v1/users/{user_id}", {"disabled": False})).status == 200
    editor.cookie = cookie
    assert (await editor.call("GET", ME)).status == 401
    assert (await editor.login("ed@acme.example")).status == 200


async def test_a_role_change_applies_to_live_sessions(site):
    await site.add_user("acme", "ed@acme.example", "editor")
    editor = await signed_in(site, "ed@acme.example")
    admin = await signed_in(site)
    assert (await editor.call("GET", "/api/v1/users")).status == 403
    user_id = (await editor.call("GET", ME)).body["id"]
    assert (await admin.call("PATCH", f"/api/v1/users/{user_id}", {"role": "admin"})).status == 200
    assert (await editor.call("GET", "/api/v1/users")).status == 200


async def test_a_password_reset_ends_every_session_of_the_user(site):
    await site.add_user("acme", "ed@acme.example", "editor")
    first, second = await signed_in(site, "ed@acme.example"), await signed_in(site, "ed@acme.example")
    admin = await signed_in(site)
    user_id = (await first.call("GET", ME)).body["id"]
    reset = await admin.call("POST", f"/api/v1/users/{user_id}/reset-password", {})
    assert reset.status == 200 and len(reset.body["password"]) >= 20
    assert (await first.call("GET", ME)).status == 401 and (await second.call("GET", ME)).status == 401
    assert (await admin.call("GET", ME)).status == 200
    assert (await site.browser("acme").login("ed@acme.example")).status == 401
    assert (await site.browser("acme").login("ed@acme.example", reset.body["password"])).status == 200


async def test_signing_in_again_replaces_the_browsers_session(site):
    browser = await signed_in(site)
    old_cookie = browser.cookie
    assert (await browser.login("admin@acme.example")).status == 200
    assert browser.cookie != old_cookie
    stale = site.browser("acme")
    stale.cookie = old_cookie
    assert (await stale.call("GET", ME)).status == 401
    assert (await browser.call("GET", ME)).status == 200


async def test_a_forged_or_malformed_cookie_is_nobody(site):
    await signed_in(site)
    for value in ("x", "A" * 43, "%00%ff", "a" * 5000):
        forged = site.browser("acme")
        forged.cookie = value
        reply = await forged.call("GET", ME)
        assert (reply.status, reply.code) == (401, "unauthorized"), value


async def test_every_worker_refuses_an_ended_session_within_a_second(site, aiohttp_server):
    """Two web workers; the second trusts what it cached for a minute here, so only
    PostgreSQL's notification can make it refuse in time."""
    other = await another_worker(site, aiohttp_server)
    other.server.app[TENANTS].principals.seconds = 60
    await site.add_user("acme", "ed@acme.example", "editor")
    admin, editor = await signed_in(site), await signed_in(site, "ed@acme.example")
    admin_there = Browser(other, admin.host, cookie=admin.cookie, csrf=admin.csrf)
    editor_there = Browser(other, editor.host, cookie=editor.cookie, csrf=editor.csrf)
    for browser in (admin_there, editor_there, admin_there, editor_there):   # now cached there
        assert (await browser.call("GET", ME)).status == 200

    async def refused_there(browser: Browser) -> float:
        started = time.monotonic()
        reply = await eventually(lambda: browser.call("GET", ME), lambda r: r.status == 401)
        assert (reply.status, reply.code) == (401, "unauthorized")
        return time.monotonic() - started

    # Signed out through the first worker.
    assert (await admin.call("POST", "/api/v1/auth/logout")).status == 204
    assert await refused_there(admin_there) < 1.0
    # Disabled straight in the database (no session revoked): the user's row notifies.
    async with site.realm("acme") as conn:
        await conn.execute("UPDATE users SET disabled_at = now() WHERE email = 'ed@acme.example'")
    assert await refused_there(editor_there) < 1.0
    # And a session the second worker signs out ends on the first at once (its own cache too).
    newcomer = Browser(other, admin.host)
    assert (await newcomer.login("admin@acme.example")).status == 200
    here = Browser(site, admin.host, cookie=newcomer.cookie, csrf=newcomer.csrf)
    assert (await here.call("GET", ME)).status == 200
    cookie = newcomer.cookie
    assert (await newcomer.call("POST", "/api/v1/auth/logout")).status == 204
    newcomer.cookie = cookie   # the browser was told to drop it; replay it
    assert (await newcomer.call("GET", ME)).status == 401
    assert await refused_there(here) < 1.0


async def test_a_cluster_admin_signed_out_on_one_worker_is_refused_by_the_other(site, aiohttp_server):
    """The console's sessions (control schema) notify like a tenant's."""
    other = await another_worker(site, aiohttp_server, slug=None)
    other.server.app[TENANTS].principals.seconds = 60
    admin = site.browser(None)
    assert (await admin.login(ADMIN)).status == 200
    there = Browser(other, admin.host, cookie=admin.cookie, csrf=admin.csrf)
    assert (await there.call("GET", ME)).status == 200 and (await there.call("GET", ME)).status == 200
    assert (await admin.call("POST", "/api/v1/auth/logout")).status == 204
    started = time.monotonic()
    reply = await eventually(lambda: there.call("GET", ME), lambda r: r.status == 401)
    assert (reply.status, reply.code) == (401, "unauthorized")
    assert time.monotonic() - started < 1.0
