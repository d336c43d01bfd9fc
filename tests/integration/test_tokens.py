"""API tokens as an ops tool and an admin see them: shown once and stored hashed,
usable as `Authorization: Bearer`, expiring, revocable, with their last use recorded;
a user sees their own, an admin everyone's. Real app, real PostgreSQL. A web worker
trusts a token it checked for up to a second (appliance.auth); a revocation reaches
every worker through PostgreSQL's notification."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from appliance.web.keys import TENANTS
from appliance.web.realm import CACHE_SECONDS
from tests.integration.auth_setup import another_worker, eventually, site  # noqa: F401  (fixture)

TOKENS = "/api/v1/tokens"
ME = "/api/v1/auth/me"


async def signed_in(site, email: str = "admin@acme.example"):
    browser = site.browser("acme")
    assert (await browser.login(email)).status == 200
    return browser


def tool(site, token: str, slug: str = "acme"):
    browser = site.browser(slug)
    browser.token = token
    return browser


async def test_a_token_is_shown_once_and_stored_hashed(site):
    admin = await signed_in(site)
    created = await admin.call("POST", TOKENS, {"name": " nightly export ", "expires_in_days": 30})
    assert created.status == 201
    token = created.body["token"]
    assert token.startswith("tdm_") and len(token) >= 4 + 32
    assert created.body["prefix"] == token[:8] and created.body["name"] == "nightly export"
    assert created.body["active"] is True and created.body["last_used_at"] is None

    listed = await admin.call("GET", TOKENS)
    assert [t["id"] for t in listed.body["items"]] == [created.body["id"]]
    assert "token" not in listed.body["items"][0]
    assert token not in str(listed.body)
    async with site.realm("acme") as conn:
        row = await conn.fetchrow("SELECT token_hash, prefix, extract(epoch FROM expires_at - created_at) AS life "
                                  "FROM api_tokens")
        rows_text = str(await conn.fetch("SELECT * FROM api_tokens"))
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["life"] == 30 * 86400
    assert token not in rows_text
    assert await site.audit("acme", "token.") == [
        ("admin@acme.example", "token.create", "admin@acme.example",
         {"token_id": created.body["id"], "name": "nightly export", "prefix": token[:8], "days": 30})]


async def test_a_token_acts_as_its_user_and_records_its_use(site):
    admin = await signed_in(site)
    token = (await admin.call("POST", TOKENS, {"name": "ci"})).body["token"]
    script = tool(site, token)
    me = await script.call("GET", ME)
    assert me.status == 200
    assert (me.body["email"], me.body["via"], me.body["csrf_token"]) == ("admin@acme.example", "token", None)
    assert not me.cookies()
    listed = (await admin.call("GET", TOKENS)).body["items"][0]
    assert listed["last_used_at"] is not None
    # Recorded at most once a minute.
    async def used_ago(moved_back: str) -> float:
        async with site.realm("acme") as conn:
            await conn.execute("UPDATE api_tokens SET last_used_at = now() - $1::text::interval", moved_back)
        await asyncio.sleep(CACHE_SECONDS)   # past the worker's cached sign-in: the next call looks it up
        assert (await script.call("GET", ME)).status == 200
        async with site.realm("acme") as conn:
            return await conn.fetchval("SELECT extract(epoch FROM now() - last_used_at) FROM api_tokens")
    assert 29 < await used_ago("30 seconds") < 60
    assert await used_ago("61 seconds") < 5


async def test_default_and_longest_lifetimes(site):
    admin = await signed_in(site)
    default = await admin.call("POST", TOKENS, {"name": "default"})
    assert default.status == 201
    too_long = await admin.call("POST", TOKENS, {"name": "forever", "expires_in_days": 366})
    assert too_long.status == 422
    assert too_long.body["error"]["details"]["fields"] == [
        {"field": "expires_in_days", "message": "at most 365 days (auth.token_max_days)"}]
    for body in ({"name": ""}, {"name": "x", "expires_in_days": 0}, {"expires_in_days": 3}):
        assert (await admin.call("POST", TOKENS, body)).status == 422, body
    async with site.realm("acme") as conn:
        assert await conn.fetchval("SELECT extract(epoch FROM expires_at - created_at) FROM api_tokens") == 90 * 86400


@pytest.mark.parametrize("site", [{"token_max_days": 7}], indirect=True)
async def test_the_default_lifetime_never_exceeds_the_configured_maximum(site):
    admin = await signed_in(site)
    assert (await admin.call("POST", TOKENS, {"name": "short"})).status == 201
    assert (await admin.call("POST", TOKENS, {"name": "long", "expires_in_days": 8})).status == 422
    async with site.realm("acme") as conn:
        assert await conn.fetchval("SELECT extract(epoch FROM expires_at - created_at) FROM api_tokens") == 7 * 86400


async def test_revoked_and_expired_tokens_are_refused(site):
    admin = await signed_in(site)
    revoked = (await admin.call("POST", TOKENS, {"name": "revoked"})).body
    expired = (await admin.call("POST", TOKENS, {"name": "expired"})).body
    assert (await tool(site, revoked["token"]).call("GET", ME)).status == 200

    assert (await admin.call("DELETE", f"{TOKENS}/{revoked['id']}")).status == 204
    reply = await tool(site, revoked["token"]).call("GET", ME)
    assert (reply.status, reply.code) == (401, "unauthorized")
    assert (await admin.call("DELETE", f"{TOKENS}/{revoked['id']}")).status == 204   # again: nothing changes

    async with site.realm("acme") as conn:
        await conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
                           expired["id"])
    reply = await eventually(lambda: tool(site, expired["token"]).call("GET", ME), lambda r: r.status == 401)
    assert reply.status == 401
    states = {t["name"]: (t["active"], t["revoked_at"] is not None)
              for t in (await admin.call("GET", TOKENS)).body["items"]}
    assert states == {"revoked": (False, True), "expired": (False, False)}
    assert [(a[1], a[3]["name"]) for a in await site.audit("acme", "token.revoke")] == [("token.revoke", "revoked")]


async def test_a_token_of_a_disabled_user_stops_working(site):
    await site.add_user("acme", "vic@acme.example", "viewer")
    viewer = await signed_in(site, "vic@acme.example")
    token = (await viewer.call("POST", TOKENS, {"name": "dashboard"})).body["token"]
    admin = await signed_in(site)
    user_id = (await viewer.call("GET", ME)).body["id"]
    assert (await admin.call("PATCH", f"/api/v1/users/{user_id}", {"disabled": True})).status == 200
    assert (await tool(site, token).call("GET", ME)).status == 401
    assert (await admin.call("PATCH", f"/api/v1/users/{user_id}", {"disabled": False})).status == 200
    assert (await tool(site, token).call("GET", ME)).status == 200


async def test_a_revoked_token_is_refused_by_every_worker_within_a_second(site, aiohttp_server):
    """The second worker trusts what it cached for a minute here: only PostgreSQL's
    notification can make it refuse in time."""
    other = await another_worker(site, aiohttp_server)
    other.server.app[TENANTS].principals.seconds = 60
    admin = await signed_in(site)
    created = (await admin.call("POST", TOKENS, {"name": "ci"})).body
    there = tool(other, created["token"])
    assert (await there.call("GET", ME)).status == 200 and (await there.call("GET", ME)).status == 200
    assert (await admin.call("DELETE", f"{TOKENS}/{created['id']}")).status == 204
    started = time.monotonic()
    reply = await eventually(lambda: there.call("GET", ME), lambda r: r.status == 401)
    assert (reply.status, reply.code) == (401, "unauthorized")
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("header", ["Bearer tdm_short", "Bearer " + "tdm_" + "A" * 43, "Basic YWRtaW46YWRtaW4=",
                                    "Bearer", "tdm_" + "A" * 43])
async def test_malformed_or_unknown_authorization_is_nobody(site, header):
    reply = await site.browser("acme").call("GET", ME, headers={"Authorization": header})
    assert (reply.status, reply.code) == (401, "unauthorized")


async def test_tokens_are_made_from_a_session_not_from_another_token(site):
    admin = await signed_in(site)
    token = (await admin.call("POST", TOKENS, {"name": "ci"})).body["token"]
    reply = await tool(site, token).call("POST", TOKENS, {"name": "successor"})
    assert reply.status == 403 and "session" in reply.body["error"]["message"]


async def test_users_see_their_own_tokens_and_admins_everyones(site):
    await site.add_user("acme", "vic@acme.example", "viewer")
    viewer, admin = await signed_in(site, "vic@acme.example"), await signed_in(site)
    mine = (await viewer.call("POST", TOKENS, {"name": "vic's"})).body
    theirs = (await admin.call("POST", TOKENS, {"name": "admin's"})).body

    assert [t["name"] for t in (await viewer.call("GET", TOKENS)).body["items"]] == ["vic's"]
    # A viewer asking for someone else's still gets only their own.
    assert [t["name"] for t in (await viewer.call("GET", f"{TOKENS}?user_id={theirs['user_id']}")).body["items"]] \
        == ["vic's"]
    assert [t["name"] for t in (await admin.call("GET", TOKENS)).body["items"]] == ["admin's", "vic's"]
    filtered = await admin.call("GET", f"{TOKENS}?user_id={mine['user_id']}")
    assert [(t["name"], t["user_email"]) for t in filtered.body["items"]] == [("vic's", "vic@acme.example")]

    refused = await viewer.call("DELETE", f"{TOKENS}/{theirs['id']}")
    assert refused.status == 404
    assert (await tool(site, theirs["token"]).call("GET", ME)).status == 200
    assert (await admin.call("DELETE", f"{TOKENS}/{mine['id']}")).status == 204
    assert (await tool(site, mine["token"]).call("GET", ME)).status == 401
    assert [(a[0], a[2]) for a in await site.audit("acme", "token.revoke")] == [
        ("admin@acme.example", "vic@acme.example")]


async def test_token_lists_paginate_newest_first(site):
    admin = await signed_in(site)
    for n in range(5):
        assert (await admin.call("POST", TOKENS, {"name": f"t{n}"})).status == 201
    names, cursor = [], None
    while True:
        page = await admin.call("GET", TOKENS + "?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200 and len(page.body["items"]) <= 2
        names += [t["name"] for t in page.body["items"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert names == ["t4", "t3", "t2", "t1", "t0"]
    assert (await admin.call("GET", TOKENS + "?cursor=garbage")).status == 422
