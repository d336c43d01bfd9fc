"""Who is asking: sign-in, the auth middleware, CSRF, roles.

Realms. Every lookup runs in the request's realm (`realm_transaction`): a tenant's
`users`, `sessions`, `api_tokens`, `login_attempts` in its own schema, the console's
in `tandem`. So a session cookie or API token of acme is simply unknown on
globex's host (401), and PostgreSQL would refuse the lookup anyway.

The middleware (`middleware`, after the host router) sets request[PRINCIPAL]:
- `Authorization: Bearer tdm_...` -> the token's user (appliance.tokens); when the
  header is there, the cookie is not looked at;
- else the session cookie -> the session's user (appliance.sessions), enforcing idle
  and absolute expiry; the user's current role and disabled state count, so a
  disabled user's sessions and tokens stop (within CACHE_SECONDS, below);
- else None. Bad credentials are not an error here: operations that need a role
  answer 401 (appliance.web.api), and sign-in works with a stale cookie.
Each web worker keeps the sign-ins the database accepted for up to CACHE_SECONDS
(appliance.web.realm.PrincipalCache, held by the worker's TenantDirectory), so a
busy session or token costs a worker a database check or two a second, not one
per request. A cached sign-in is forgotten sooner: in this worker, for the whole
realm, when any signed-in unsafe request of that realm ends (sign-out, password
change, a user disabled or given another role through the API); in every worker,
as soon as PostgreSQL notifies channel tandem_auth (triggers in
sql/tenant/0004_auth_notify.sql and sql/control/0003_auth_notify.sql: a session
or token revoked, shortened or deleted; a user disabled, deleted or changed; by
the API, the CLI or plain SQL). So an ended session or token is refused by every
worker within CACHE_SECONDS even if its notification is lost; idle and absolute
expiry are that exact too.
For unsafe methods (POST/PUT/PATCH/DELETE) it refuses with 403 "csrf_failed":
a session without an `X-CSRF-Token` header equal to the session's token, or
without an Origin (or, lacking it, Referer) equal to the request's own origin;
and any request whose Origin/Referer names another site (this also covers sign-in
forms posted from elsewhere). Token requests are exempt: a browser never attaches
them by itself.

Cookie: `__Host-tandem_session` on HTTPS (Secure; Path=/; no Domain, so host-only;
HttpOnly; SameSite=Lax), `tandem_session` on plain HTTP (tls.mode "off" without
X-Forwarded-Proto https). It is a browser-session cookie (no Max-Age): closing
the browser ends it client-side; the server ends it at the idle or absolute limit.

Sign-in (`authenticate`): per client address, at most auth.address_attempts_per_minute
attempts a minute (429 "too_many_requests", Retry-After). Per e-mail address,
auth.lockout_failures failed attempts (since the last success or admin unlock,
within auth.lockout_minutes) lock it until the oldest of them is lockout_minutes
old: 429 "account_locked" with Retry-After, whatever password is given, and
attempts meanwhile do not count as failures. Failures are counted by the e-mail
address typed (in login_attempts), whether or not it has an account, so unknown
addresses get exactly the answers real ones get: the same 401 for a wrong password
and an unknown address (after the same argon2 work, against a dummy hash), the
same lock-out. A disabled account answers the same 401.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable, Literal

import asyncpg
from aiohttp import web
from yarl import URL

from appliance import accounts, audit, metrics, sessions, tokens
from appliance.web.keys import CONFIG, PRINCIPAL, REALM, TENANTS

log = logging.getLogger(__name__)

SECURE_COOKIE = "__Host-tandem_session"
PLAIN_COOKIE = "tandem_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ROLE_RANK = accounts.ROLE_RANK
# Advisory lock class (two-key form: never collides with one-key locks) serialising
# the attempt counting of one client address.
_ADDRESS_LOCK_CLASS = 0x74646D6C
ADDRESS_WINDOW = timedelta(minutes=1)
_EMAIL_MAX = 254
# Private to this module: what the handler asked to do with the session cookie
# (("set", token) or ("clear", "")), applied by the middleware to the response.
_COOKIE_ACTIONS = web.RequestKey("tandem_auth_cookie_actions", list)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, in the request's realm. Console principals are admins."""

    user_id: int
    email: str
    role: str
    realm_kind: Literal["console", "tenant"]
    via: Literal["session", "token"]
    session_id: str | None = None
    token_id: int | None = None
    csrf_token: str | None = None
    display_name: str = ""


def has_role(principal: Principal | None, role: str) -> bool:
    """viewer < editor < admin."""
    return principal is not None and ROLE_RANK.get(principal.role, -1) >= ROLE_RANK[role]


def client_ip(request: web.Request) -> str | None:
    """The client's IP address (request.remote after trusted X-Forwarded-For), None when
    the transport has none."""
    try:
        return str(ipaddress.ip_address(request.remote or ""))
    except ValueError:
        return None


def realm_transaction(request: web.Request):
    from appliance.web.realm import realm_transaction as transaction  # realm.py imports the web package
    return transaction(request)


# --- errors this module answers with -------------------------------------------------------------

class AuthRefusal(Exception):
    """A refusal with its own error code ("account_locked", "csrf_failed", ...). Raised by
    the sign-in code; the middleware turns it into the JSON error response."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    def response(self) -> web.Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return web.json_response({"error": {"code": self.code, "message": self.message, "details": {}}},
                                 status=self.status, headers=headers)


BAD_CREDENTIALS = "The e-mail address or the password is wrong."


# --- cookies -------------------------------------------------------------------------------------

def cookie_name(request: web.Request) -> str:
    return SECURE_COOKIE if request.secure else PLAIN_COOKIE


# A Cookie header that is our session cookie alone, with a value we could have issued:
# read without the general cookie parser (a good share of a cached request's cost).
_SOLE_COOKIE = {name: re.compile(re.escape(name) + r"=([A-Za-z0-9_-]{1,128})") for name in (SECURE_COOKIE,
                                                                                             PLAIN_COOKIE)}


def session_cookie(request: web.Request) -> str | None:
    """The session cookie's value as sent, or None."""
    header = request.headers.get("Cookie")
    if header is None:
        return None
    name = cookie_name(request)
    if sole := _SOLE_COOKIE[name].fullmatch(header):
        return sole.group(1)
    return request.cookies.get(name)


def set_session_cookie(request: web.Request, token: str) -> None:
    """Have the middleware put `token` in the session cookie of this request's response."""
    _cookie_actions(request).append(("set", token))


def clear_session_cookie(request: web.Request) -> None:
    _cookie_actions(request).append(("clear", ""))


def _cookie_actions(request: web.Request) -> list:
    try:
        return request[_COOKIE_ACTIONS]
    except KeyError:
        raise RuntimeError("session cookies are set inside appliance.auth.middleware only") from None


def _apply_cookie(request: web.Request, response: web.StreamResponse, action: str, token: str) -> None:
    secure = request.secure
    name = cookie_name(request)
    if action == "set":
        response.set_cookie(name, token, path="/", secure=secure, httponly=True, samesite="Lax")
    else:
        response.del_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")


# --- the middleware ------------------------------------------------------------------------------

@web.middleware
async def middleware(request: web.Request, handler) -> web.StreamResponse:
    """Set request[PRINCIPAL], enforce CSRF on unsafe methods (see the module docstring).
    Requests without a realm (probes, metrics) pass untouched."""
    realm = request.get(REALM)
    if realm is None:
        return await handler(request)
    request[_COOKIE_ACTIONS] = []
    principal, stale_cookie = await _identify(request, realm.kind)
    request[PRINCIPAL] = principal
    if request.method in UNSAFE_METHODS:
        problem = csrf_problem(request, principal)
        if problem is not None:
            log.info("CSRF check failed for %s %s: %s", request.method, request.path, problem,
                     extra={"tenant": realm.slug} if realm.slug else {})
            return AuthRefusal(403, "csrf_failed", f"Refused as a possible cross-site request: {problem}.").response()
    try:
        response = await handler(request)
    except AuthRefusal as refusal:
        response = refusal.response()
    finally:
        if request.method in UNSAFE_METHODS and (principal is not None or request[PRINCIPAL] is not None):
            # Whatever a signed-in request changed has committed: this worker's next request
            # of the realm reads sign-ins afresh (other workers hear it from the database's
            # triggers). Anonymous requests cannot end a sign-in, so they cannot flush it.
            request.app[TENANTS].principals.invalidate(realm.schema)
    actions = request[_COOKIE_ACTIONS]
    if not actions and stale_cookie:
        actions = [("clear", "")]  # tell the browser to stop sending a dead session
    for action, token in actions:
        _apply_cookie(request, response, action, token)
    return response


async def _identify(request: web.Request, realm_kind: str) -> tuple[Principal | None, bool]:
    """(principal or None, whether a session cookie was sent that is not valid)."""
    cache = request.app[TENANTS].principals
    schema = request[REALM].schema
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not tokens.looks_like_token(token):
            return None, False
        credential = "token " + tokens.token_hash(token)
        if (principal := cache.get(schema, credential)) is not None:
            return principal, False

        async def token_owner() -> Principal | None:
            async with realm_transaction(request) as conn:
                owner = await tokens.lookup(conn, token)
            if owner is None:
                return None
            return Principal(owner.user_id, owner.email, owner.role, realm_kind, "token",
                             token_id=owner.token_id, display_name=owner.display_name)
        return await cache.lookup(schema, credential, token_owner), False
    cookie = session_cookie(request)
    if not cookie:
        return None, False
    credential = "session " + sessions.session_id(cookie)
    if (principal := cache.get(schema, credential)) is not None:
        return principal, False

    async def session_owner() -> Principal | None:
        idle = timedelta(minutes=request.app[CONFIG].auth.session_idle_minutes)
        async with realm_transaction(request) as conn:
            session = await sessions.lookup(conn, cookie, idle=idle)
        if session is None:
            return None
        return Principal(session.user_id, session.email, session.role, realm_kind, "session",
                         session_id=session.id, csrf_token=session.csrf_token, display_name=session.display_name)
    principal = await cache.lookup(schema, credential, session_owner)
    return principal, principal is None


def _origin_of(value: str) -> tuple[str, str, int | None] | None:
    try:
        url = URL(value)
    except (ValueError, TypeError):
        return None
    if not url.scheme or not url.host:
        return None
    return url.scheme.lower(), url.host.lower().rstrip("."), url.port


def own_origin(request: web.Request) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of the request as the browser addressed it."""
    return _origin_of(f"{request.scheme}://{request.host}")


def csrf_problem(request: web.Request, principal: Principal | None) -> str | None:
    """Why this unsafe request must be refused as cross-site, or None (see module docstring)."""
    if principal is not None and principal.via == "token":
        return None
    origin = request.headers.get("Origin")
    claimed = origin if origin is not None else request.headers.get("Referer")
    if principal is not None:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), (principal.csrf_token or "").encode()):
            return f"the {CSRF_HEADER} header is missing or wrong"
        if claimed is None:
            return "the request has no Origin or Referer header"
    if claimed is not None:
        source = _origin_of(claimed)
        if source is None or source != own_origin(request):
            return f"it comes from {(origin or 'the page ' + claimed)[:200]!r}, not from this site"
    return None


# --- sign-in -------------------------------------------------------------------------------------

@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password: unknown e-mail addresses are verified against it, so
    they take as long as real ones."""
    return accounts.hash_password(accounts.generate_password(32))


@dataclass(frozen=True)
class _Attempt:
    id: int
    user: asyncpg.Record | None


async def authenticate(request: web.Request, email: str, password: str, *,
                       on_success: Callable[[asyncpg.Connection, asyncpg.Record], Awaitable[Any]] | None = None,
                       purpose: str = "login") -> Any:
    """Check `email` + `password` in the request's realm, with throttling and lock-out.

    On success, `on_success(conn, user_row)` runs in the transaction that records the
    success (returns its result). Raises AuthRefusal: 429 too_many_requests or
    account_locked (with Retry-After), 401 unauthorized for everything else.
    `purpose` names the attempt in the audit log ("login", "password_change").
    """
    settings = request.app[CONFIG].auth
    realm_kind = request[REALM].kind
    address = client_ip(request)
    key = (email or "").strip().lower()[:_EMAIL_MAX]
    async with realm_transaction(request) as conn:
        refusal, attempt = await _begin(conn, settings, address, key, purpose)
    if refusal is not None:
        metrics.login(realm_kind, "throttled" if refusal.code == "too_many_requests" else "locked")
        raise refusal
    user = attempt.user
    if user is not None:
        password_hash = user["password_hash"]
    else:  # the first call makes it (~a password hash of CPU): not on the event loop
        password_hash = await asyncio.get_running_loop().run_in_executor(None, _dummy_hash)
    matched = await accounts.verify_password_async(password_hash, password)
    ok = matched and user is not None and user["disabled_at"] is None
    rehashed = None
    if ok and accounts.needs_rehash(user["password_hash"]):
        rehashed = await accounts.hash_password_async(password)
    async with realm_transaction(request) as conn:
        if ok:
            result = await _succeeded(conn, attempt, rehashed, address, purpose, on_success)
        else:
            reason = "unknown_user" if user is None else ("disabled" if matched else "wrong_password")
            await _failed(conn, settings, attempt, key, address, purpose, reason)
    metrics.login(realm_kind, "success" if ok else "failure")
    if not ok:
        raise AuthRefusal(401, "unauthorized", BAD_CREDENTIALS)
    return result


def _seconds_until(moment, now) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


async def _begin(conn: asyncpg.Connection, settings, address: str | None, key: str,
                 purpose: str) -> tuple[AuthRefusal | None, _Attempt | None]:
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _ADDRESS_LOCK_CLASS, address or "")
    lockout = timedelta(minutes=settings.lockout_minutes)
    await conn.execute("DELETE FROM login_attempts WHERE at < now() - $1::interval",
                       max(lockout, ADDRESS_WINDOW) + timedelta(minutes=1))
    limit = settings.address_attempts_per_minute
    same_address = "client_addr = $1::inet" if address else "client_addr IS NULL AND $1::inet IS NULL"
    row = await conn.fetchrow(
        "SELECT count(*) AS attempts, (array_agg(at ORDER BY at DESC))[$2] AS nth, now() AS now "
        f"FROM login_attempts WHERE {same_address} AND at > now() - $3::interval AND outcome <> 'unlock'",
        address, limit, ADDRESS_WINDOW)
    if row["attempts"] >= limit:
        log.warning("sign-in attempts from %s throttled (%d in a minute)", address, row["attempts"])
        return AuthRefusal(429, "too_many_requests", "Too many sign-in attempts from your address; wait a "
                           "little and try again.", _seconds_until(row["nth"] + ADDRESS_WINDOW, row["now"])), None
    locked_until, now, _ = await _lock_state(conn, settings, key)
    if locked_until is not None:
        await conn.execute("INSERT INTO login_attempts (client_addr, email, outcome) VALUES ($1, $2, 'locked')",
                           address, key)
        await audit.log_event(conn, key, f"{purpose}.failure", key, {"reason": "locked"}, address)
        return AuthRefusal(429, "account_locked", "Too many failed sign-ins for this account: it is locked for "
                           "a while (an administrator can unlock it).", _seconds_until(locked_until, now)), None
    user = await conn.fetchrow("SELECT id, email, password_hash, disabled_at FROM users "
                               "WHERE lower(email) = lower($1)", key)
    attempt_id = await conn.fetchval("INSERT INTO login_attempts (client_addr, email, outcome) "
                                     "VALUES ($1, $2, 'pending') RETURNING id", address, key)
    return None, _Attempt(attempt_id, user)


async def _lock_state(conn: asyncpg.Connection, settings, key: str):
    """(locked until or None, the database's now, failures counted) for e-mail `key`.
    Attempts still being checked ("pending") count as failures, so parallel guesses
    cannot overshoot the limit."""
    row = await conn.fetchrow(
        "SELECT count(*) AS failures, (array_agg(a.at ORDER BY a.at DESC))[$3] AS nth, now() AS now "
        "FROM login_attempts a WHERE a.email = $1 AND a.outcome IN ('failure', 'pending') "
        "  AND a.at > now() - $2::interval "
        "  AND a.id > coalesce((SELECT max(b.id) FROM login_attempts b "
        "                       WHERE b.email = $1 AND b.outcome IN ('success', 'unlock')), 0)",
        key, timedelta(minutes=settings.lockout_minutes), settings.lockout_failures)
    locked_until = None
    if row["failures"] >= settings.lockout_failures:
        locked_until = row["nth"] + timedelta(minutes=settings.lockout_minutes)
    return locked_until, row["now"], row["failures"]


async def _succeeded(conn: asyncpg.Connection, attempt: _Attempt, rehashed: str | None, address: str | None,
                     purpose: str, on_success) -> Any:
    user = attempt.user
    await conn.execute("UPDATE login_attempts SET outcome = 'success' WHERE id = $1", attempt.id)
    await conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL, "
                       "last_login_at = CASE WHEN $3 THEN now() ELSE last_login_at END, "
                       "password_hash = coalesce($2, password_hash) WHERE id = $1",
                       user["id"], rehashed, purpose == "login")
    result = await on_success(conn, user) if on_success is not None else None
    if purpose == "login":  # other purposes audit what the success let them do
        await audit.log_event(conn, user["email"], "login.success", user["email"], {}, address)
    return result


async def _failed(conn: asyncpg.Connection, settings, attempt: _Attempt, key: str, address: str | None,
                  purpose: str, reason: str) -> None:
    await conn.execute("UPDATE login_attempts SET outcome = 'failure' WHERE id = $1", attempt.id)
    locked_until, _, failures = await _lock_state(conn, settings, key)
    if attempt.user is not None:
        await conn.execute("UPDATE users SET failed_logins = $2, locked_until = $3 WHERE id = $1",
                           attempt.user["id"], failures, locked_until)
    await audit.log_event(conn, key, f"{purpose}.failure", key, {"reason": reason}, address)
    if locked_until is not None:
        log.warning("sign-in for %s locked until %s after %d failures", key, locked_until.isoformat(), failures)
        await audit.log_event(conn, key, "login.lockout", key, {"failures": failures,
                                                                "until": locked_until.isoformat()}, address)


async def login(request: web.Request, email: str, password: str) -> tuple[Principal, sessions.NewSession]:
    """Sign in: `authenticate`, then a new session, whose token the middleware puts in
    the response's cookie (replacing the browser's previous session). Raises AuthRefusal."""
    settings = request.app[CONFIG].auth
    address = client_ip(request)

    async def start_session(conn: asyncpg.Connection, user: asyncpg.Record):
        row = await conn.fetchrow("SELECT id, email, role, display_name FROM users WHERE id = $1", user["id"])
        session = await sessions.create(conn, user["id"], absolute=timedelta(hours=settings.session_absolute_hours),
                                        client_addr=address, user_agent=request.headers.get("User-Agent", ""))
        return row, session

    row, session = await authenticate(request, email, password, on_success=start_session)
    previous = request[PRINCIPAL]
    if previous is not None and previous.via == "session":
        async with realm_transaction(request) as conn:
            await sessions.revoke(conn, previous.session_id)
    set_session_cookie(request, session.token)
    principal = Principal(row["id"], row["email"], row["role"], request[REALM].kind, "session",
                          session_id=session.id, csrf_token=session.csrf_token, display_name=row["display_name"])
    request[PRINCIPAL] = principal
    return principal, session


async def logout(request: web.Request) -> None:
    """End the request's session (if it came with one) and clear the cookie."""
    principal = request[PRINCIPAL]
    if principal is not None and principal.via == "session":
        async with realm_transaction(request) as conn:
            await sessions.revoke(conn, principal.session_id)
            await audit.log_event(conn, principal.email, "logout", principal.email, {}, client_ip(request))
    clear_session_cookie(request)
