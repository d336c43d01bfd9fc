"""Server-side sessions end when they should: idle and absolute expiry, a disabled
user, an admin's password reset, a new sign-in from the same browser; and a session
in use stays alive. Expiry is tested by moving the session's timestamps back in the
database (the configured minimum is a minute), through the real app and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.integration.auth_setup import site  # noqa: F401  (fixture)

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
    assert (await browser.call("GET", ME)).status == 200     # used in time: alive, and marked used
    assert await last_seen_age(site) < 5
    await shift(site, "last_seen_at", "10 minutes 1 second")
    reply = await browser.call("GET", ME)
    assert (reply.status, reply.code) == (401, "unauthorized")
    assert reply.cookies()[site.cookie_name]["max-age"] == "0"
    # Signing in again works with the dead cookie still in the browser.
    assert (await browser.login("admin@acme.example")).status == 200


async def test_last_seen_is_written_at_most_once_a_minute(site):
    browser = await signed_in(site)
    await shift(site, "last_seen_at", "30 seconds")
    assert (await browser.call("GET", ME)).status == 200
    assert 29 < await last_seen_age(site) < 60                # recent enough: not rewritten
    await shift(site, "last_seen_at", "31 seconds")
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
    assert (await browser.call("GET", ME)).status == 401


async def test_disabling_a_user_ends_their_sessions_at_once(site):
    await site.add_user("acme", "ed@acme.example", "editor")
    editor = await signed_in(site, "ed@acme.example")
    admin = await signed_in(site)
    async with site.realm("acme") as conn:
        user_id = await conn.fetchval("SELECT id FROM users WHERE email = 'ed@acme.example'")
    # Even a disable made straight in the database (no revocation) stops the session.
    cookie = editor.cookie
    async with site.realm("acme") as conn:
        await conn.execute("UPDATE users SET disabled_at = now() WHERE id = $1", user_id)
    assert (await editor.call("GET", ME)).status == 401
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
