"""The aiohttp application each web worker serves: `create_app(config, key)`.

One factory. Every resource is opened and closed in a `cleanup_ctx` generator, so
start-up and shutdown mirror each other. The app starts even when the database is
unreachable: the control-login pool is opened in the background and retried, and
until it exists `/-/ready` says so (the load balancer keeps traffic away) while
`/-/health` stays 200 (the process is alive; do not restart it).

Errors leave as JSON `{"error": {"code", "message", "details"}}` with the right
status, from the first route on; a failure inside a handler is logged with its
traceback and the client only sees a 500 with a generic message; a database that
went away is a 503 with Retry-After, never a 500.

Middlewares, outermost first (each sees what the ones inside it answer):
1. metrics: counts and times every response, whoever made it;
2. CSP nonce: request[CSP_NONCE] (the security headers go on in on_response_prepare,
   so every response carries them, errors and 404s included);
3. json_errors: exceptions become the JSON error shape;
4. forwarded: X-Forwarded-For/-Proto from trusted proxies only (request.remote, .secure);
5. host router: request[REALM], or the 404 / 503 (fails closed);
6. auth (appliance.auth): request[PRINCIPAL], CSRF.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from http import HTTPStatus
from typing import Any, AsyncIterator

import asyncpg
from aiohttp import web

from appliance import auth, db, metrics
from appliance.config import Config
from appliance.errors import DatabaseUnavailable
from appliance.keys import MasterKey
from appliance.web import endpoints  # noqa: F401  (registers every operation on API)
from appliance.web import health, panel, security
from appliance.web.api import API
from appliance.web.keys import CONFIG, DB_POOL, MASTER_KEY, READINESS, TENANTS
from appliance.web.realm import TenantDirectory, finish_on_cancel
from appliance.web.router import forwarded_middleware, host_router

log = logging.getLogger(__name__)

# Retry delays for the first connection to the database: quick at first (a server
# that is just starting), then at most every RETRY_MAX seconds.
RETRY_FIRST = 0.25
RETRY_MAX = 10.0
POOL_CLOSE_SECONDS = 5.0

# Exceptions that mean "the database is not there right now" wherever they surface:
# the client gets 503 (try again), not 500 (our bug). Pool exhaustion times out as
# asyncio.TimeoutError and is the same thing from the client's side.
DATABASE_AWAY = (DatabaseUnavailable, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError,
                 asyncpg.TooManyConnectionsError, ConnectionError, asyncio.TimeoutError)

# status -> (code, message shown to the client when the handler gave none).
ERRORS = {
    400: ("bad_request", "The request is not valid."),
    401: ("unauthorized", "Sign in first."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept this method."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "The request body has an unsupported content type."),
    422: ("unprocessable_entity", "The request body is not valid."),
    429: ("too_many_requests", "Too many requests; try again later."),
    500: ("internal_error", "Internal error; the administrator can find the details in the log."),
    503: ("unavailable", "The service is unavailable right now; try again later."),
}


def error_response(status: int, message: str | None = None, details: Any = None, *,
                   headers: dict[str, str] | None = None) -> web.Response:
    """The JSON error every Tandem endpoint answers with."""
    code, default = ERRORS.get(status) or (_code_for(status), HTTPStatus(status).phrase + ".")
    details = details if details is not None else {}
    body = {"error": {"code": code, "message": message or default, "details": details}}
    return web.json_response(body, status=status, headers=headers)


def _code_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Turn 4xx/5xx HTTPExceptions and unexpected exceptions into the JSON error shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except DATABASE_AWAY as exc:
        log.warning("%s %s: database unavailable: %s", request.method, request.path, exc or type(exc).__name__)
        return error_response(503, headers={"Retry-After": "5"})
    except Exception:
        log.exception("internal error in %s %s", request.method, request.path)
        return error_response(500)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    details: Any = None
    message = None
    # A handler that wrote its own text (HTTPBadRequest(text="...")) meant it for the client.
    if exc.text and exc.text != f"{exc.status}: {exc.reason}":
        message = exc.text
    if isinstance(exc, web.HTTPMethodNotAllowed):
        details = {"allowed": sorted(exc.allowed_methods)}
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit_mb = request.app[CONFIG].http.max_body_mb
        message = f"The request body is larger than {limit_mb} MB ([http] max_body_mb)."
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
    return error_response(exc.status, message, details, headers=headers)


class ControlPool:
    """The web worker's pool of control-login connections, held in `app[DB_POOL]`.

    `pool` is None until the database has answered once; `connect_forever()` (run in
    the background by the app) keeps trying until it does. Once created, asyncpg
    reconnects the pool's connections by itself after an outage.
    """

    def __init__(self, config: Config, key: MasterKey):
        self._config = config
        self._key = key
        self.pool: asyncpg.Pool | None = None
        self.last_error = "not connected yet"

    def acquire(self):
        """`async with holder.acquire() as conn`; raises DatabaseUnavailable while there is no pool."""
        if self.pool is None:
            raise DatabaseUnavailable(f"not connected to the control database yet: {self.last_error}")
        return self.pool.acquire(timeout=self._config.database.connect_timeout_seconds)

    async def connect_forever(self) -> None:
        delay = RETRY_FIRST
        while self.pool is None:
            try:
                self.pool = await finish_on_cancel(db.create_pool(self._config, self._key, min_size=1,
                                                                  application_name="tandem web"))
            except Exception as exc:  # unreachable, auth refused, no such database: all retried
                error = str(exc) or type(exc).__name__
                if error != self.last_error:
                    # Said once per distinct problem, not once per retry.
                    log.warning("control database not available yet, retrying: %s", error)
                self.last_error = error
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
        log.info("connected to the control database (%s)", db.describe_target(self._config))

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
        except asyncio.TimeoutError:
            log.warning("control database connections still busy after %ss; closing them", POOL_CLOSE_SECONDS)
            pool.terminate()


async def _control_pool(app: web.Application) -> AsyncIterator[None]:
    holder = app[DB_POOL]
    task = asyncio.create_task(holder.connect_forever(), name="control database pool")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await holder.close()


async def _tenant_directory(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[TENANTS].run(), name="tenant directory")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _hsts(request: web.Request, response: web.StreamResponse) -> None:
    seconds = request.app[CONFIG].tls.hsts_seconds
    if seconds and request.secure:
        response.headers.setdefault("Strict-Transport-Security", f"max-age={seconds}")


def create_app(config: Config, key: MasterKey) -> web.Application:
    """The web application for `config`. Does no I/O: resources open when the app starts
    (AppRunner.setup / the test client) and close when it is cleaned up."""
    serve_metrics = config.metrics.enabled and not config.metrics.listen
    exempt = [config.metrics.path] if serve_metrics else []
    middlewares = [security.nonce_middleware, json_errors, forwarded_middleware(config),
                   host_router(config, exempt=exempt), auth.middleware]
    if config.metrics.enabled:
        middlewares.insert(0, metrics.middleware)
    app = web.Application(middlewares=middlewares, client_max_size=config.http.max_body_mb * 1024 * 1024)
    app[CONFIG] = config
    app[MASTER_KEY] = key
    app[DB_POOL] = ControlPool(config, key)
    app[READINESS] = health.Readiness(app[DB_POOL])
    app[TENANTS] = TenantDirectory(config, key, app[DB_POOL])
    app.cleanup_ctx.append(_control_pool)
    app.cleanup_ctx.append(_tenant_directory)
    security.install(app)
    if config.tls.mode != "off":
        # Behind a TLS-terminating load balancer (mode "off") the balancer owns this header.
        app.on_response_prepare.append(_hsts)
    health.add_routes(app)
    if serve_metrics:
        app.router.add_get(config.metrics.path, metrics.scrape_handler(config, lambda r: r.app[DB_POOL]))
    API.install(app)
    panel.install(app)  # last: its shell answers every GET path the routes above do not
    return app


def create_metrics_app(config: Config, database: ControlPool) -> web.Application:
    """The app of the separate `[metrics] listen` listener (plain HTTP): the metrics at
    `[metrics] path` for `[metrics] allow`, JSON 404 for everything else. `database` is
    the main app's pool holder (the main app opens and closes it)."""
    app = web.Application(middlewares=[security.nonce_middleware, json_errors])
    app[CONFIG] = config
    security.install(app)
    app.router.add_get(config.metrics.path, metrics.scrape_handler(config, lambda _request: database))
    return app
