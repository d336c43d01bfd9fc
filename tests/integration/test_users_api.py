"""A tenant admin managing users through /api/v1/users, and reading the audit log at
/api/v1/audit: what they see, what is refused and why, what is audited. Real app,
real PostgreSQL."""

from __future__ import annotations

import pytest

from appliance import accounts
from tests.integration.auth_setup import ADMIN, PASSWORD, site  # noqa: F401  (fixture)

USERS = "/api/v1/users"
AUDIT = "/api/v1/audit"


@pytest.fixture
async def admin(site):
    browser = site.browser("acme")
    assert (await browser.login("admin@acme.example")).status == 200
    return browser


def fields(reply) -> list[str]:
    return [f["field"] for f in reply.body["error"]["details"]["fields"]]


async def test_create_a_user_with_a_generated_password(site, admin):
    created = await admin.call("POST", USERS, {"email": " Ed@Acme.Example ", "role": "editor",
                                               "display_name": "Ed"})
    assert created.status == 201
    user, password = created.body["user"], created.body["password"]
    assert (user["email"], user["role"], user["display_name"]) == ("Ed@Acme.Example", "editor", "Ed")
    assert (user["disabled"], user["locked"], user["last_login_at"]) == (False, False, None)
    assert len(password) >= 20
    # The password is shown once: never in a read.
    assert password not in str((await admin.call("GET", f"{USERS}/{user['id']}")).body)
    editor = site.browser("acme")
    assert (await editor.login("ed@acme.example", password)).status == 200

    given = await admin.call("POST", USERS, {"email": "vic@acme.example", "role": "viewer", "password": PASSWORD})
    assert given.status == 201 and given.body["password"] is None
    assert (await site.browser("acme").login("vic@acme.example")).status == 200
    assert [(a[0], a[2], a[3]) for a in await site.audit("acme", "user.create")][1:] == [
        ("admin@acme.example", "Ed@Acme.Example", {"role": "editor"}),
        ("admin@acme.example", "vic@acme.example", {"role": "viewer"})]


async def test_creation_is_refused_with_the_field_and_the_reason(site, admin):
    assert (await admin.call("POST", USERS, {"email": "ed@acme.example", "role": "editor"})).status == 201
    duplicate = await admin.call("POST", USERS, {"email": "ED@acme.example", "role": "viewer"})
    assert (duplicate.status, duplicate.code) == (409, "conflict")
    assert "ED@acme.example already exists" in duplicate.body["error"]["message"]

    cases = [
        ({"email": "not-an-address", "role": "viewer"}, ["email"], "is not an e-mail address"),
        ({"email": "x@acme.example", "role": "owner"}, ["role"], "'viewer', 'editor' or 'admin'"),
        ({"email": "x@acme.example", "role": "viewer", "password": "short"}, ["password"], "at least 12"),
        ({"email": "x@acme.example", "role": "viewer", "password": "x@acme.example"}, ["password"], "e-mail"),
        ({"email": "x@acme.example", "role": "viewer", "password": "zzzzzzzzzzzzzzzz"}, ["password"], "repeated"),
        ({"email": "x@acme.example", "role": "viewer", "password": "Password1234"}, ["password"], "common"),
        ({"email": "x@acme.example", "role": "viewer", "admin": True}, ["admin"], "Extra inputs"),
        ({"role": "viewer"}, ["email"], "Field required"),
    ]
    for body, where, why in cases:
        reply = await admin.call("POST", USERS, body)
        assert (reply.status, reply.code) == (422, "validation_error"), body
        assert fields(reply) == where and why in reply.body["error"]["message"], reply.body
    listed = await admin.call("GET", USERS)
    assert [u["email"] for u in listed.body["items"]] == ["admin@acme.example", "ed@acme.example"]


@pytest.mark.parametrize("site", [{"password_min_length": 20}], indirect=True)
async def test_the_minimum_length_comes_from_the_config(site, admin):
    short = await admin.call("POST", USERS, {"email": "x@acme.example", "role": "viewer",
                                             "password": "nineteen characters"})
    assert short.status == 422 and "at least 20 characters" in short.body["error"]["message"]
    ok = await admin.call("POST", USERS, {"email": "x@acme.example", "role": "viewer",
                                          "password": "twenty characters ok"})
    assert ok.status == 201


async def test_list_paginates_by_email_and_filters_by_role(site, admin):
    for name, role in [("dora", "viewer"), ("bob", "editor"), ("Carl", "viewer"), ("erin", "admin")]:
        await site.add_user("acme", f"{name}@acme.example", role)
    emails, cursor = [], None
    while True:
        page = await admin.call("GET", f"{USERS}?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200 and len(page.body["items"]) <= 2
        emails += [u["email"] for u in page.body["items"]]
        cursor = page.body["next_cursor"]
        if not cursor:
            break
    assert emails == ["admin@acme.example", "bob@acme.example", "Carl@acme.example", "dora@acme.example",
                      "erin@acme.example"]
    viewers = await admin.call("GET", f"{USERS}?role=viewer")
    assert [u["email"] for u in viewers.body["items"]] == ["Carl@acme.example", "dora@acme.example"]
    assert (await admin.call("GET", f"{USERS}?limit=0")).status == 422
    assert (await admin.call("GET", f"{USERS}?role=owner")).status == 422


async def test_change_role_name_and_disabled_state(site, admin):
    user_id = await site.add_user("acme", "ed@acme.example", "editor")
    path = f"{USERS}/{user_id}"
    changed = await admin.call("PATCH", path, {"role": "viewer", "display_name": "Ed Smith"})
    assert changed.status == 200
    assert (changed.body["role"], changed.body["display_name"]) == ("viewer", "Ed Smith")
    disabled = await admin.call("PATCH", path, {"disabled": True})
    assert disabled.body["disabled"] is True and disabled.body["disabled_at"] is not None
    assert (await site.browser("acme").login("ed@acme.example")).status == 401
    assert (await admin.call("PATCH", path, {"disabled": False})).body["disabled"] is False
    assert (await site.browser("acme").login("ed@acme.example")).status == 200
    assert (await admin.call("PATCH", path, {})).status == 200          # nothing to change
    assert (await admin.call("PATCH", path, {"role": "root"})).status == 422
    assert (await admin.call("PATCH", f"{USERS}/999999", {"role": "viewer"})).status == 404
    assert [(a[1], a[3]) for a in await site.audit("acme", "user.") if a[2] == "ed@acme.example"][1:] == [
        ("user.role_change", {"from": "editor", "to": "viewer"}),
        ("user.update", {"display_name": "Ed Smith"}),
        ("user.disable", {"sessions_ended": 0}),
        ("user.enable", {})]


async def test_a_tenant_always_keeps_an_active_admin(site, admin):
    me = (await admin.call("GET", "/api/v1/auth/me")).body["id"]
    for method, path, body in [("PATCH", f"{USERS}/{me}", {"role": "editor"}),
                               ("DELETE", f"{USERS}/{me}", None)]:
        reply = await admin.call(method, path, body)
        assert (reply.status, reply.code) == (409, "conflict"), (method, body)
        assert "only active admin" in reply.body["error"]["message"]
    yourself = await admin.call("PATCH", f"{USERS}/{me}", {"disabled": True})
    assert (yourself.status, yourself.body["error"]["message"]) == (
        409, "You cannot disable your own account; another admin can.")
    # The rule holds below the API too (the CLI, another admin racing): disabling the last admin.
    async with site.realm("acme") as conn:
        with pytest.raises(accounts.LastAdmin, match="the only active admin"):
            await accounts.update_user(conn, me, actor="test", disabled=True)
    # With a second admin, the first may step down.
    second = await site.add_user("acme", "second@acme.example", "admin")
    assert (await admin.call("PATCH", f"{USERS}/{me}", {"role": "editor"})).status == 200
    boss = site.browser("acme")
    await boss.login("second@acme.example")
    assert (await boss.call("DELETE", f"{USERS}/{second}")).status == 409
    assert (await admin.call("GET", USERS)).status == 403                 # no longer an admin


async def test_delete_a_user(site, admin):
    user_id = await site.add_user("acme", "ed@acme.example", "editor")
    editor = site.browser("acme")
    await editor.login("ed@acme.example")
    assert (await admin.call("DELETE", f"{USERS}/{user_id}")).status == 204
    assert (await admin.call("GET", f"{USERS}/{user_id}")).status == 404
    assert (await admin.call("DELETE", f"{USERS}/{user_id}")).status == 404
    assert (await editor.call("GET", "/api/v1/auth/me")).status == 401
    assert ("admin@acme.example", "user.delete", "ed@acme.example", {"role": "editor"}) in await site.audit("acme")


async def test_reset_password_with_a_given_password_lifts_a_lock_out(site, admin):
    user_id = await site.add_user("acme", "ed@acme.example", "editor")
    for _ in range(3):
        await site.browser("acme").login("ed@acme.example", "guess-guess-guess")
    assert (await site.browser("acme").login("ed@acme.example")).code == "account_locked"
    weak = await admin.call("POST", f"{USERS}/{user_id}/reset-password", {"password": "ed@acme.example"})
    assert weak.status == 422 and fields(weak) == ["password"]
    reset = await admin.call("POST", f"{USERS}/{user_id}/reset-password", {"password": "a fresh passphrase"})
    assert (reset.status, reset.body) == (200, {"password": None})
    assert (await site.browser("acme").login("ed@acme.example", "a fresh passphrase")).status == 200
    entry = [a for a in await site.audit("acme", "user.password_reset")][0]
    assert entry[:3] == ("admin@acme.example", "user.password_reset", "ed@acme.example")
    assert entry[3] == {"generated": False, "sessions_ended": 0}


async def test_the_users_api_is_a_tenants(site):
    console = site.browser(None)
    await console.login(ADMIN)
    assert (await console.call("GET", USERS)).status == 404
    assert (await console.call("POST", USERS, {"email": "x@example.com", "role": "admin"})).status == 404


async def test_the_audit_log_newest_first_with_filters(site, admin):
    for n in range(3):
        await admin.call("POST", USERS, {"email": f"u{n}@acme.example", "role": "viewer"})
    await site.browser("acme").login("u0@acme.example", "guess-guess-guess")
    entries = (await admin.call("GET", AUDIT)).body["items"]
    assert [e["action"] for e in entries] == ["login.failure", "user.create", "user.create", "user.create",
                                              "login.success", "user.create"]
    assert entries[0]["details"] == {"reason": "wrong_password"} and entries[0]["client_addr"] == "127.0.0.1"
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)

    pages, cursor = [], None
    while True:
        page = await admin.call("GET", f"{AUDIT}?limit=4" + (f"&cursor={cursor}" if cursor else ""))
        pages.append([e["id"] for e in page.body["items"]])
        cursor = page.body["next_cursor"]
        if not cursor:
            break
    assert pages == [[e["id"] for e in entries[:4]], [e["id"] for e in entries[4:]]]

    by_action = (await admin.call("GET", f"{AUDIT}?action=user.create")).body["items"]
    assert [e["target"] for e in by_action] == ["u2@acme.example", "u1@acme.example", "u0@acme.example",
                                                "admin@acme.example"]
    logins = (await admin.call("GET", f"{AUDIT}?action=login.")).body["items"]
    assert [e["action"] for e in logins] == ["login.failure", "login.success"]
    by_actor = (await admin.call("GET", f"{AUDIT}?actor=CLI")).body["items"]
    assert [(e["actor"], e["target"]) for e in by_actor] == [("cli", "admin@acme.example")]

    # The console's log is the cluster's: tenants, console sign-ins; never a tenant's entries.
    console = site.browser(None)
    await console.login(ADMIN)
    cluster = (await console.call("GET", AUDIT)).body["items"]
    assert [(e["action"], e["target"]) for e in cluster][:3] == [("login.success", ADMIN), ("tenant.create", "globex"),
                                                                 ("tenant.create", "acme")]
    assert not any(e["target"].endswith("acme.example") for e in cluster)
