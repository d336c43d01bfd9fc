"""Signing in and staying safe, as a browser and an attacker see it: the real app over
real HTTPS (and plain HTTP), real PostgreSQL, tenants acme and globex and the console.

Covers: the session cookie's attributes, /auth/me, the same 401 for an unknown e-mail
address and a wrong password, lock-out and its lifting, per-address throttling,
sign-out, password change, CSRF, roles, and credentials of one realm replayed on
another."""

from __future__ import annotations

import statistics
import time

import pytest

from appliance import metrics
from tests.integration.auth_setup import ADMIN, PASSWORD, site  # noqa: F401  (fixture)

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


@pytest.mark.parametrize("site, name, secure", [({"https": True}, "__Host-tandem_session", True),
                                                ({"https": False}, "tandem_session", False)],
                         indirect=["site"])
async def test_sign_in_sets_a_host_only_http_only_cookie(site, name, secure):
    browser = site.browser("acme")
    reply = await browser.login("Admin@Acme.Example")   # e-mail addresses ignore case
    assert reply.status == 200, reply.body
    assert reply.body["email"] == "admin@acme.example" and reply.body["role"] == "admin"
    assert reply.body["realm"] == "tenant" and reply.body["tenant"] == "acme" and reply.body["via"] == "session"

    cookies = reply.cookies()
    assert list(cookies) == [name]
    morsel = cookies[name]
    assert len(morsel.value) >= 43
    assert morsel["path"] == "/" and morsel["httponly"] is True and morsel["samesite"] == "Lax"
    assert bool(morsel["secure"]) is secure
    assert morsel["domain"] == ""                 # host-only: never sent to another tenant's host
    assert morsel["max-age"] == "" and morsel["expires"] == ""   # a browser-session cookie
    raw = reply.headers.getall("Set-Cookie")[0]
    assert "Domain" not in raw

    me = await browser.call("GET", ME)
    assert me.status == 200
    assert me.body == {"id": reply.body["id"], "email": "admin@acme.example", "display_name": "", "role": "admin",
                       "realm": "tenant", "tenant": "acme", "via": "session", "csrf_token": reply.body["csrf_token"]}
    assert (await browser.call("GET", "/api/v1/me")).body == me.body

    # The cookie token is not what the database keeps.
    async with site.realm("acme") as conn:
        assert await conn.fetchval("SELECT count(*) FROM sessions WHERE id = $1", browser.cookie) == 0
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 1
    assert await site.audit("acme", "login.") == [("admin@acme.example", "login.success", "admin@acme.example", {})]


@pytest.mark.parametrize("site", [{"https": False, "trusted_proxies": ["127.0.0.1"]}], indirect=True)
async def test_behind_a_tls_terminating_proxy_the_cookie_is_secure(site):
    """Plain HTTP from a trusted proxy that says the browser used HTTPS: the HTTPS cookie,
    and the browser's https:// Origin is this site's."""
    browser = site.browser("acme")
    reply = await browser.login("admin@acme.example", origin="https://acme.tandem.test",
                                headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert reply.status == 200
    morsel = reply.cookies()["__Host-tandem_session"]
    assert morsel["secure"] is True and morsel["domain"] == ""
    # The throttle and the audit log see the browser's address, not the proxy's.
    assert [(a[1], a[3]) for a in await site.audit("acme", "login.")] == [("login.success", {})]
    async with site.realm("acme") as conn:
        assert await conn.fetchval("SELECT host(client_addr) FROM login_attempts") == "203.0.113.9"
        assert await conn.fetchval("SELECT host(client_addr) FROM audit_log WHERE action = 'login.success'") == \
            "203.0.113.9"


async def test_console_sign_in_is_the_cluster_admins(site):
    console = site.browser(None)
    reply = await console.login(ADMIN)
    assert reply.status == 200
    assert (reply.body["realm"], reply.body["tenant"], reply.body["role"]) == ("console", None, "admin")
    # A tenant's user is nobody in the console, and a cluster admin nobody in a tenant.
    assert (await site.browser(None).login("admin@acme.example")).status == 401
    assert (await site.browser("acme").login(ADMIN)).status == 401
    assert [a[1] for a in await site.audit(None, "login.")] == ["login.success", "login.failure"]


async def timed_login(site, email: str, password: str):
    started = time.perf_counter()
    reply = await site.browser("acme").login(email, password)
    return reply, time.perf_counter() - started


@pytest.mark.parametrize("site", [{"real_argon2": True}], indirect=True)
async def test_unknown_email_and_wrong_password_answer_alike(site):
    await site.add_user("acme", "gone@acme.example", "viewer")
    async with site.realm("acme") as conn:
        await conn.execute("UPDATE users SET disabled_at = now() WHERE email = 'gone@acme.example'")
    wrong, unknown, disabled = [], [], []
    for _ in range(3):
        wrong.append(await timed_login(site, "admin@acme.example", "not the password at all"))
        unknown.append(await timed_login(site, "nobody@acme.example", "not the password at all"))
    disabled.append(await timed_login(site, "gone@acme.example", PASSWORD))  # the right password

    replies = [reply for reply, _ in wrong + unknown + disabled]
    assert {reply.status for reply in replies} == {401}
    assert all(reply.body == replies[0].body for reply in replies)
    assert replies[0].body == {"error": {"code": "unauthorized", "message": "The e-mail address or the password "
                                                                           "is wrong.", "details": {}}}
    assert not any(reply.cookies() for reply in replies)
    # An unknown address costs the same password hashing as a real one.
    known_time = statistics.median(t for _, t in wrong)
    unknown_time = statistics.median(t for _, t in unknown)
    assert 0.5 < unknown_time / known_time < 2, (known_time, unknown_time)

    reasons = [(a[2], a[3]["reason"]) for a in await site.audit("acme", "login.failure")]
    assert reasons == [("admin@acme.example", "wrong_password"), ("nobody@acme.example", "unknown_user")] * 3 + [
        ("gone@acme.example", "disabled")]


def sign_ins_counted() -> dict[str, float]:
    """logins_total{realm="tenant"} by outcome, as Prometheus would scrape it from this process."""
    return {outcome: metrics.REGISTRY.get_sample_value("logins_total", {"realm": "tenant", "outcome": outcome}) or 0
            for outcome in ("success", "failure", "locked", "throttled")}


async def test_lock_out_after_failures_then_an_admin_unlocks(site):
    counted = sign_ins_counted()
    user_id = await site.add_user("acme", "ed@acme.example", "editor")
    attacker = site.browser("acme")
    for _ in range(3):                                   # auth.lockout_failures = 3
        assert (await attacker.login("ed@acme.example", "guess-guess-guess")).status == 401
    locked = await site.browser("acme").login("ed@acme.example", PASSWORD)   # even the right password
    assert locked.status == 429 and locked.code == "account_locked"
    assert 14 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60          # auth.lockout_minutes = 15
    assert not locked.cookies()

    # An address without an account locks exactly alike: the answer reveals nothing.
    for _ in range(3):
        assert (await attacker.login("ghost@acme.example", "guess-guess-guess")).status == 401
    ghost = await attacker.login("ghost@acme.example", PASSWORD)
    assert (ghost.status, ghost.body) == (locked.status, locked.body)

    # Attempts while locked do not extend the lock.
    assert (await attacker.login("ed@acme.example", "guess-guess-guess")).code == "account_locked"

    admin = site.browser("acme")
    assert (await admin.login("admin@acme.example")).status == 200
    shown = await admin.call("GET", f"/api/v1/users/{user_id}")
    assert shown.body["locked"] is True and shown.body["failed_logins"] == 3
    unlocked = await admin.call("POST", f"/api/v1/users/{user_id}/unlock")
    assert unlocked.status == 200 and unlocked.body["locked"] is False and unlocked.body["failed_logins"] == 0
    assert (await site.browser("acme").login("ed@acme.example", PASSWORD)).status == 200

    actions = [(a[1], a[2]) for a in await site.audit("acme") if a[2] == "ed@acme.example"]
    assert actions == [("user.create", "ed@acme.example")] + [("login.failure", "ed@acme.example")] * 3 + [
        ("login.lockout", "ed@acme.example"), ("login.failure", "ed@acme.example"),
        ("login.failure", "ed@acme.example"), ("user.unlock", "ed@acme.example"),
        ("login.success", "ed@acme.example")]
    lockout = [a for a in await site.audit("acme", "login.lockout") if a[2] == "ed@acme.example"][0]
    assert lockout[3]["failures"] == 3
    assert [a[3]["reason"] for a in await site.audit("acme", "login.failure") if a[2] == "ed@acme.example"] == [
        "wrong_password"] * 3 + ["locked"] * 2
    now = sign_ins_counted()
    assert {outcome: now[outcome] - counted[outcome] for outcome in now} == {
        "success": 2, "failure": 6, "locked": 3, "throttled": 0}


async def test_a_success_resets_the_failure_count(site):
    browser = site.browser("acme")
    for _ in range(2):
        assert (await browser.login("admin@acme.example", "guess-guess-guess")).status == 401
    assert (await browser.login("admin@acme.example")).status == 200
    for _ in range(2):
        assert (await browser.login("admin@acme.example", "guess-guess-guess")).status == 401
    assert (await browser.login("admin@acme.example")).status == 200


@pytest.mark.parametrize("site", [{"address_attempts_per_minute": 4, "lockout_failures": 10}], indirect=True)
async def test_sign_in_attempts_are_throttled_per_client_address(site):
    browser = site.browser("acme")
    for email in ("admin@acme.example", "a@acme.example", "b@acme.example"):
        assert (await browser.login(email, "guess-guess-guess")).status == 401
    assert (await browser.login("admin@acme.example")).status == 200
    throttled = await browser.login("admin@acme.example")           # right password, fifth attempt
    assert throttled.status == 429 and throttled.code == "too_many_requests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert not throttled.cookies()
    # Throttled attempts are not recorded (no growth under a flood), and another realm counts apart.
    async with site.realm("acme") as conn:
        assert await conn.fetchval("SELECT count(*) FROM login_attempts") == 4
    assert (await site.browser("globex").login("admin@globex.example")).status == 200
    # Once the oldest attempt is a minute old, one more is allowed.
    async with site.realm("acme") as conn:
        await conn.execute("UPDATE login_attempts SET at = at - interval '61 seconds' "
                           "WHERE id = (SELECT min(id) FROM login_attempts)")
    assert (await browser.login("admin@acme.example")).status == 200


async def test_sign_out_revokes_the_session_and_clears_the_cookie(site):
    browser = site.browser("acme")
    await browser.login("admin@acme.example")
    cookie = browser.cookie
    reply = await browser.call("POST", "/api/v1/auth/logout")
    assert reply.status == 204
    cleared = reply.cookies()[site.cookie_name]
    assert cleared.value == "" and cleared["max-age"] == "0"
    assert browser.cookie is None

    replay = site.browser("acme")
    replay.cookie = cookie
    me = await replay.call("GET", ME)
    assert me.status == 401 and me.code == "unauthorized"
    # The browser is told to drop the dead cookie.
    assert me.cookies()[site.cookie_name]["max-age"] == "0"
    assert [a[1] for a in await site.audit("acme", "log")] == ["login.success", "logout"]
    # Signing out without a session is harmless.
    assert (await site.browser("acme").call("POST", "/api/v1/auth/logout")).status == 204


async def test_change_password_keeps_this_session_and_ends_the_others(site):
    laptop, phone = site.browser("acme"), site.browser("acme")
    await laptop.login("admin@acme.example")
    await phone.login("admin@acme.example")
    change = "/api/v1/auth/password"
    new = "a brand new passphrase"

    wrong = await laptop.call("POST", change, {"current_password": "not it at all", "new_password": new})
    assert wrong.status == 403 and wrong.body["error"]["message"] == "The current password is wrong."
    weak = await laptop.call("POST", change, {"current_password": PASSWORD, "new_password": "short"})
    assert weak.status == 422 and weak.body["error"]["details"]["fields"][0]["field"] == "new_password"
    same = await laptop.call("POST", change, {"current_password": PASSWORD, "new_password": PASSWORD})
    assert same.status == 422 and "differ" in same.body["error"]["message"]

    assert (await laptop.call("POST", change, {"current_password": PASSWORD, "new_password": new})).status == 204
    assert (await laptop.call("GET", ME)).status == 200
    assert (await phone.call("GET", ME)).status == 401
    assert (await site.browser("acme").login("admin@acme.example", PASSWORD)).status == 401
    assert (await site.browser("acme").login("admin@acme.example", new)).status == 200
    changes = await site.audit("acme", "user.password_change")
    assert changes == [("admin@acme.example", "user.password_change", "admin@acme.example", {"sessions_ended": 1})]
    assert [a[3]["reason"] for a in await site.audit("acme", "password_change.failure")] == ["wrong_password"]


# --- CSRF ----------------------------------------------------------------------------------------

TOKENS = "/api/v1/tokens"


async def test_csrf_needs_the_token_header_and_the_sites_origin(site):
    browser = site.browser("acme")
    await browser.login("admin@acme.example")
    body = {"name": "ci"}

    cases = {
        "no token": dict(csrf=False),
        "wrong token": dict(csrf=False, headers={"X-CSRF-Token": "x" * 43}),
        "other site": dict(origin="https://evil.example"),
        "other tenant": dict(origin="https://globex.tandem.test"),
        "http downgrade": dict(origin="http://acme.tandem.test"),
        "other port": dict(origin="https://acme.tandem.test:8443"),
        "null origin": dict(origin="null"),
        "no origin or referer": dict(origin=None),
        "foreign referer": dict(origin=None, headers={"Referer": "https://evil.example/acme.tandem.test"}),
    }
    for why, options in cases.items():
        reply = await browser.call("POST", TOKENS, body, **options)
        assert (reply.status, reply.code) == (403, "csrf_failed"), why
    async with site.realm("acme") as conn:
        assert await conn.fetchval("SELECT count(*) FROM api_tokens") == 0

    assert (await browser.call("POST", TOKENS, body)).status == 201
    referer = await browser.call("POST", TOKENS, body, origin=None,
                                 headers={"Referer": "https://acme.tandem.test/settings/tokens"})
    assert referer.status == 201
    # Safe methods need neither.
    assert (await browser.call("GET", TOKENS, csrf=False, origin="https://evil.example")).status == 200


async def test_a_bearer_token_needs_no_csrf_token(site):
    browser = site.browser("acme")
    await browser.login("admin@acme.example")
    created = await browser.call("POST", TOKENS, {"name": "ci"})
    script = site.browser("acme")
    script.token = created.body["token"]
    second = await browser.call("POST", TOKENS, {"name": "other"})
    reply = await script.call("DELETE", f"{TOKENS}/{second.body['id']}", origin="https://evil.example")
    assert reply.status == 204


async def test_a_sign_in_form_posted_from_another_site_is_refused(site):
    reply = await site.browser("acme").login("admin@acme.example", origin="https://evil.example")
    assert (reply.status, reply.code) == (403, "csrf_failed")
    assert not reply.cookies()
    assert (await site.browser("acme").login("admin@acme.example", origin=None)).status == 200  # API clients


# --- realms and roles ----------------------------------------------------------------------------

async def test_credentials_of_one_tenant_mean_nothing_on_another(site):
    await site.add_user("acme", "ed@acme.example", "editor")
    acme = site.browser("acme")
    await acme.login("admin@acme.example")
    token = (await acme.call("POST", TOKENS, {"name": "ci"})).body["token"]
    editor = site.browser("acme")
    await editor.login("ed@acme.example")

    for credentials in ({"cookie": acme.cookie, "csrf": acme.csrf}, {"token": token},
                        {"cookie": editor.cookie, "csrf": editor.csrf}):
        for slug in ("globex", None):
            replay = site.browser(slug)
            for name, value in credentials.items():
                setattr(replay, name, value)
            me = await replay.call("GET", ME)
            assert (me.status, me.code) == (401, "unauthorized"), (credentials, slug)
            assert (await replay.call("GET", TOKENS)).status == 401
            if slug is not None:
                assert (await replay.call("GET", "/api/v1/users")).status == 401
    # ...while they keep working at home.
    assert (await acme.call("GET", ME)).status == 200
    at_home = site.browser("acme")
    at_home.token = token
    assert (await at_home.call("GET", ME)).body["via"] == "token"


async def test_roles_are_enforced(site):
    await site.add_user("acme", "vic@acme.example", "viewer")
    await site.add_user("acme", "ed@acme.example", "editor")
    viewer, editor = site.browser("acme"), site.browser("acme")
    await viewer.login("vic@acme.example")
    await editor.login("ed@acme.example")

    denied = await viewer.call("POST", "/api/v1/users", {"email": "new@acme.example", "role": "admin"})
    assert (denied.status, denied.code) == (403, "forbidden")
    assert "admin" in denied.body["error"]["message"]
    for browser in (viewer, editor):
        assert (await browser.call("GET", "/api/v1/users")).status == 403
        assert (await browser.call("GET", "/api/v1/audit")).status == 403
        assert (await browser.call("POST", "/api/v1/users/1/unlock")).status == 403
    # Anyone may make API tokens for themselves: a token has its user's role, nothing more.
    made = await viewer.call("POST", TOKENS, {"name": "read-only dashboard"})
    assert made.status == 201
    tool = site.browser("acme")
    tool.token = made.body["token"]
    assert (await tool.call("GET", ME)).body["role"] == "viewer"
    assert (await tool.call("POST", "/api/v1/users", {"email": "x@acme.example", "role": "admin"})).status == 403
    async with site.realm("acme") as conn:
        assert await conn.fetchval("SELECT count(*) FROM users") == 3

    # Nobody signed in: 401; the console's API is not on a tenant's host at all.
    assert (await site.browser("acme").call("GET", "/api/v1/users")).status == 401
    assert (await editor.call("GET", "/api/v1/cluster/tenants")).status == 404
