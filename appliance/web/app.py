"""The aiohttp application each web worker serves: `create_app(config, key)`.

One factory. Every resource is opened and closed in a `cleanup_ctx` generator, so
start-up and shutdown mirror each other. The app starts even when the database is
unreachable: the control-login pool is opened in the background and retried, and
until it exists `/-/ready` says so (the load balancer keeps traffic away) while
`/-/health` stays 200 (the process is alive; do not restart it).

Errors leave as JSON `{"error": {"code", "message", "details"}}` with the right
status, from the first route on; a failure inside a handler is logged with its
traceback and the client only sees a 500 with a generic message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from http import HTTPStatus
from typing import Any, AsyncIterator

import asyncpg
from aiohttp import web

from appliance import db
from appliance.config import Config
from appliance.errors import DatabaseUnavailable
from appliance.keys import MasterKey
from appliance.web import health
from appliance.web.keys import CONFIG, DB_POOL, MASTER_KEY, READINESS

log = logging.getLogger(__name__)

# Retry delays for the first connection to the database: quick at first (a server
# that is just starting), then at most every RETRY_MAX seconds.
RETRY_FIRST = 0.25
RETRY_MAX = 10.0
POOL_CLOSE_SECONDS = 5.0

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
            raise DatabaseUnavailable(f"database unreachable: {self.last_error}")
        return self.pool.acquire(timeout=self._config.database.connect_timeout_seconds)

    async def connect_forever(self) -> None:
        delay = RETRY_FIRST
        while self.pool is None:
            try:
                self.pool = await db.create_pool(self._config, self._key, min_size=1,
                                                 application_name="tandem web")
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


async def _hsts(request: web.Request, response: web.StreamResponse) -> None:
    seconds = request.app[CONFIG].tls.hsts_seconds
    if seconds and request.secure:
        response.headers.setdefault("Strict-Transport-Security", f"max-age={seconds}")


def create_app(config: Config, key: MasterKey) -> web.Application:
    """The web application for `config`. Does no I/O: resources open when the app starts
    (AppRunner.setup / the test client) and close when it is cleaned up."""
    app = web.Application(middlewares=[json_errors], client_max_size=config.http.max_body_mb * 1024 * 1024)
    app[CONFIG] = config
    app[MASTER_KEY] = key
    app[DB_POOL] = ControlPool(config, key)
    app[READINESS] = health.Readiness(app[DB_POOL])
    app.cleanup_ctx.append(_control_pool)
    if config.tls.mode != "off":
        # Behind a TLS-terminating load balancer (mode "off") the balancer owns this header.
        app.on_response_prepare.append(_hsts)
    health.add_routes(app)
    return app
